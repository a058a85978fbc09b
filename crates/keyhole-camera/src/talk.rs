//! Talk-back on the camera (PROTOCOL.md §8.4): the camera long-polls the server for a talk
//! stream, opens it — only a holder of its current epoch's viewing key makes one that opens —
//! refuses sound more than five seconds late by its own clock (held back or played again), and
//! plays the rest through its speaker: a file, a command, or both (`[talk]` in the
//! configuration).

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use keyhole_core::live::FRAME_HEADER_LEN;
use keyhole_core::talk::{HEADER_LEN, MAX_BODY, TalkError, TalkOpener};
use rand_core::OsRng;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, mpsc};

use crate::agent::Agent;
use crate::config::TalkConfig;
use keyhole_sound::OpusDecoder;

/// Decoded packets (20 ms each) waiting for a slow speaker.
const SPEAKER_QUEUE: usize = 50;
/// How long a talk stream may go quiet (no bytes at all) before the camera stops listening.
const IDLE: Duration = Duration::from_secs(10);

/// Why a talk session ended early.
#[derive(Debug, thiserror::Error)]
pub enum TalkEnded {
    /// The session was refused.
    #[error("refused: {0}")]
    Refused(String),
    /// The stream broke off or went quiet.
    #[error("the talk stream broke off: {0}")]
    Stream(String),
    /// The speaker could not be opened or written.
    #[error("the speaker failed: {0}")]
    Speaker(String),
}

/// Where the sound goes during one session.
struct Speaker {
    file: Option<tokio::fs::File>,
    command: Option<tokio::process::Child>,
}

impl Speaker {
    async fn open(config: &TalkConfig) -> Result<Self, TalkEnded> {
        let failed = |e: std::io::Error| TalkEnded::Speaker(e.to_string());
        let file = match &config.file {
            Some(path) => Some(
                tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await
                    .map_err(failed)?,
            ),
            None => None,
        };
        let command = match &config.command {
            Some(command) => Some(
                tokio::process::Command::new("sh")
                    .arg("-c")
                    .arg(command)
                    .stdin(Stdio::piped())
                    .kill_on_drop(true)
                    .spawn()
                    .map_err(failed)?,
            ),
            None => None,
        };
        Ok(Self { file, command })
    }

    async fn play(&mut self, pcm: &[i16]) -> Result<(), TalkEnded> {
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let failed = |e: std::io::Error| TalkEnded::Speaker(e.to_string());
        if let Some(file) = &mut self.file {
            file.write_all(&bytes).await.map_err(failed)?;
        }
        if let Some(stdin) = self.command.as_mut().and_then(|c| c.stdin.as_mut()) {
            stdin.write_all(&bytes).await.map_err(failed)?;
        }
        Ok(())
    }

    /// Flushes the file and lets the command play to the end.
    async fn finish(mut self) -> Result<(), TalkEnded> {
        let failed = |e: std::io::Error| TalkEnded::Speaker(e.to_string());
        if let Some(file) = &mut self.file {
            file.flush().await.map_err(failed)?;
            file.sync_data().await.map_err(failed)?;
        }
        if let Some(mut child) = self.command.take() {
            drop(child.stdin.take());
            child.wait().await.map_err(failed)?;
        }
        Ok(())
    }
}

/// Listens for talk streams for as long as the camera runs, telling `status_changed` the
/// agent's status after each.
pub async fn listen(
    agent: Arc<Mutex<Agent>>,
    config: TalkConfig,
    status_changed: crate::live::StatusChanged,
) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let link = agent.lock().await.link();
        match link.talk_next(60).await {
            Ok(Some(stream)) => {
                backoff = Duration::from_secs(1);
                let (sound, played) = mpsc::channel(SPEAKER_QUEUE);
                let speaker = tokio::spawn(play(config.clone(), played));
                let heard = hear(&agent, stream, config.rate, sound).await;
                let spoke = speaker
                    .await
                    .unwrap_or_else(|e| Err(TalkEnded::Speaker(e.to_string())));
                if let Err(e) = heard.and(spoke) {
                    eprintln!("keyhole-camera: talk: {e}");
                }
                status_changed(agent.lock().await.status().clone());
            }
            Ok(None) => backoff = Duration::from_secs(1),
            Err(e) => {
                eprintln!("keyhole-camera: talk: {e}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

/// Plays what `sound` brings through the file or command `config` names, opened with the
/// session's first sound; then lets the command play to the end.
async fn play(config: TalkConfig, mut sound: mpsc::Receiver<Vec<i16>>) -> Result<(), TalkEnded> {
    let mut speaker = None;
    while let Some(pcm) = sound.recv().await {
        if speaker.is_none() {
            speaker = Some(Speaker::open(&config).await?);
        }
        if let Some(speaker) = speaker.as_mut() {
            speaker.play(&pcm).await?;
        }
    }
    match speaker {
        Some(speaker) => speaker.finish().await,
        None => Ok(()),
    }
}

/// Reads bytes into `buf` until it holds `n`; `false` if the stream ended first.
async fn fill(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut Vec<u8>,
    n: usize,
) -> Result<bool, TalkEnded> {
    while buf.len() < n {
        match tokio::time::timeout(IDLE, body.next()).await {
            Err(_) => return Err(TalkEnded::Stream("no sound for 10 seconds".into())),
            Ok(None) => return Ok(false),
            Ok(Some(Err(e))) => return Err(TalkEnded::Stream(e.to_string())),
            Ok(Some(Ok(chunk))) => buf.extend_from_slice(&chunk),
        }
    }
    Ok(true)
}

/// Takes one talk session from `stream`: checks and opens it frame by frame, refuses what is
/// late, and sends each packet's sound, decoded to mono PCM at `rate`, to `speaker` as it comes.
/// Counts sessions, frames played and frames refused in the agent's status.
///
/// # Errors
/// A session refused, a stream that breaks off, a speaker that stopped taking sound.
pub async fn hear(
    agent: &Arc<Mutex<Agent>>,
    stream: reqwest::Response,
    rate: u32,
    speaker: mpsc::Sender<Vec<i16>>,
) -> Result<(), TalkEnded> {
    let mut body = stream.bytes_stream();
    let mut buf = Vec::new();
    if !fill(&mut body, &mut buf, HEADER_LEN).await? {
        return Err(TalkEnded::Stream("it ended inside its header".into()));
    }
    let opened = agent
        .lock()
        .await
        .open_talk(&buf[..HEADER_LEN], &mut OsRng)
        .await;
    let mut opener = match opened {
        Ok(opener) => opener,
        Err(why) => {
            agent.lock().await.talk_heard(0, 0, 1);
            return Err(TalkEnded::Refused(why));
        }
    };
    buf.drain(..HEADER_LEN);
    let mut decoder = OpusDecoder::new(rate).map_err(|e| TalkEnded::Speaker(e.to_string()))?;
    let (mut played, mut refused) = (0u64, 0u64);
    let ended = loop {
        let heard = match next_frame(&mut body, &mut buf, &mut opener).await {
            Ok(Some(Heard::Sound(heard))) => heard,
            Ok(Some(Heard::Refused(why))) => {
                refused += 1;
                eprintln!("keyhole-camera: talk: a frame refused: {why}");
                continue;
            }
            Ok(None) => {
                break Err(TalkEnded::Stream(
                    "it stopped before its final frame".into(),
                ));
            }
            Err(e) => break Err(e),
        };
        // Late sound is not played: the relay held it back, or plays it again.
        if let Err(why) = heard.spoken.lag_ms(crate::now()) {
            refused += 1;
            eprintln!("keyhole-camera: talk: a frame refused: {why}");
        } else if !heard.spoken.audio.is_empty() {
            let pcm = match decoder.decode(&heard.spoken.audio) {
                Ok(pcm) => pcm,
                Err(e) => break Err(TalkEnded::Refused(e.to_string())),
            };
            if speaker.send(pcm).await.is_err() {
                break Err(TalkEnded::Speaker("it stopped taking sound".into()));
            }
            played += 1;
        }
        if heard.last {
            break Ok(());
        }
    };
    agent.lock().await.talk_heard(1, played, refused);
    ended
}

enum Heard {
    Sound(keyhole_core::talk::Heard),
    Refused(TalkError),
}

/// The next frame, opened or refused; `None` when the stream ends.
async fn next_frame(
    body: &mut (impl futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Unpin),
    buf: &mut Vec<u8>,
    opener: &mut TalkOpener,
) -> Result<Option<Heard>, TalkEnded> {
    if !fill(body, buf, FRAME_HEADER_LEN).await? {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
    // Longer than any frame: the rest of the stream cannot be framed.
    if len > MAX_BODY {
        return Err(TalkEnded::Refused(format!(
            "a talk frame of {len} bytes, longer than any ({MAX_BODY})"
        )));
    }
    if !fill(body, buf, FRAME_HEADER_LEN + len).await? {
        return Ok(None);
    }
    let frame: Vec<u8> = buf.drain(..FRAME_HEADER_LEN + len).collect();
    Ok(Some(match opener.open_frame(&frame) {
        Ok(heard) => Heard::Sound(heard),
        Err(e) => Heard::Refused(e),
    }))
}
