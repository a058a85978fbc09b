//! Where video and sound come from: the built-in synthetic camera, a file (MP4 with its sound,
//! or Annex B H.264), or an RTSP camera. Each source runs on its own and sends pictures and
//! sound frames ([`Media`]), paced in real time, into a channel; a full channel drops them
//! rather than stall the source.
//!
//! A camera on the network reboots, a Wi-Fi link drops, an encoder program crashes: an RTSP or
//! command source that fails or ends is connected again, with a growing wait between tries
//! (1 s doubling to 60 s), for as long as the camera runs. Its [`Health`] says since when it is
//! lost and why, and the pictures after it comes back carry on the same clock, so recording
//! resumes without a backwards jump.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keyhole_core::Timestamp;
use keyhole_media::{Codec, TIMESCALE, h264, mp4};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

use keyhole_sound::OpusEncoder;

use crate::sound::{Media, Sound, Tone};
use crate::video::VideoError;
use crate::video::synthetic::{SyntheticCamera, SyntheticSettings};

/// Which video source to use, and how.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// The built-in synthetic camera.
    Synthetic {
        /// Picture width, a multiple of 16 (320 by default).
        #[serde(default = "default_width")]
        width: u32,
        /// Picture height, a multiple of 16 (240 by default).
        #[serde(default = "default_height")]
        height: u32,
        /// Frames per second (15 by default).
        #[serde(default = "default_fps")]
        fps: u32,
        /// A visitor walks through the picture for 3 seconds every this many seconds; never
        /// when absent (then only the control endpoint brings one).
        #[serde(default)]
        visit_every_s: Option<u32>,
        /// Printable text written into every key frame as an H.264 SEI message, and played in
        /// the sound as tones (see `sound::Tone`), so a test can search the server for the
        /// plaintext; none when absent.
        #[serde(default)]
        marker: Option<String>,
        /// Sound: a low hum, and a chime while a visitor walks through, encoded as Opus at
        /// 16 kHz (on by default).
        #[serde(default = "default_sound")]
        sound: bool,
    },
    /// A video file, played in real time.
    File {
        /// An `.mp4` file, or anything else read as an Annex B H.264 stream.
        path: PathBuf,
        /// Frames per second of an Annex B stream (which carries no times); 15 by default.
        #[serde(default = "default_fps")]
        fps: u32,
        /// Start again at the end (a camera that never stops).
        #[serde(default, rename = "loop")]
        repeat: bool,
    },
    /// A program writing H.264 (Annex B) to its standard output, read as it arrives: a
    /// Raspberry Pi camera through `rpicam-vid`, or any encoder. When it exits or cannot be
    /// started, it is started again.
    Command {
        /// The program and its arguments, e.g.
        /// `["rpicam-vid", "-t", "0", "-n", "--codec", "h264", "--inline", "-o", "-"]`.
        command: Vec<String>,
        /// Frames per second of the stream (Annex B carries no times); 15 by default.
        #[serde(default = "default_fps")]
        fps: u32,
    },
    /// An RTSP camera (H.264 or H.265), over TCP. A session that fails or ends is started
    /// again.
    Rtsp {
        /// `rtsp://host:port/path`; credentials may be in the URL.
        url: String,
        /// The same camera's H.264 substream, for motion detection and thumbnails only (the
        /// camera decodes H.264 alone: an H.265 main stream needs one for either).
        #[serde(default)]
        motion_url: Option<String>,
    },
}

fn default_width() -> u32 {
    320
}
fn default_height() -> u32 {
    240
}
fn default_fps() -> u32 {
    15
}
fn default_sound() -> bool {
    true
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self::Synthetic {
            width: default_width(),
            height: default_height(),
            fps: default_fps(),
            visit_every_s: None,
            marker: None,
            sound: default_sound(),
        }
    }
}

/// Why a source stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// Encoding or decoding failed.
    #[error(transparent)]
    Video(#[from] VideoError),
    /// Encoding sound failed.
    #[error(transparent)]
    Sound(#[from] keyhole_sound::SoundError),
    /// The file could not be read or is not video we understand.
    #[error("{0}")]
    File(String),
    /// The source command could not run, or stopped.
    #[error("source command: {0}")]
    Command(String),
    /// The RTSP camera failed.
    #[error("RTSP: {0}")]
    Rtsp(String),
}

/// A running source: its pictures and sound, and a switch for the synthetic scene's visitor.
#[derive(Debug)]
pub struct RunningSource {
    /// Pictures and sound, in order; closed when the source ends (a file without `loop`).
    pub media: mpsc::Receiver<Media>,
    /// Sets the synthetic camera's visitor walking (ignored by other sources).
    pub visitor: Arc<AtomicBool>,
    /// Asks for a key frame next, as a battery camera's sensor gives when it powers up on a
    /// wake (honoured by the synthetic source; other sources deliver their next key frame).
    pub wake: Arc<AtomicBool>,
    /// Whether the source is delivering, or lost since when and why.
    pub health: watch::Receiver<Health>,
    /// Resolves with the source's end: `Ok` at the end of a file, `Err` on failure.
    pub done: tokio::task::JoinHandle<Result<(), SourceError>>,
    /// Pictures of the camera's substream, for motion detection and thumbnails only, when one
    /// is configured.
    pub motion: Option<mpsc::Receiver<Media>>,
}

/// Whether a source delivers pictures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Health {
    /// Delivering (or starting).
    #[default]
    Delivering,
    /// Lost: no pictures since `since`, for the reason given; being connected again.
    Lost {
        /// When it was lost.
        since: Timestamp,
        /// Why, in one line.
        why: String,
    },
}

/// The first wait before connecting a lost source again; it doubles up to [`RETRY_MAX`].
const RETRY_MIN: Duration = Duration::from_secs(1);
/// The longest wait between tries.
const RETRY_MAX: Duration = Duration::from_secs(60);

/// Starts `config`'s source.
///
/// # Errors
/// A source that cannot start (a missing file, a bad picture size).
pub fn start(config: &SourceConfig) -> Result<RunningSource, SourceError> {
    let (tx, media) = mpsc::channel(256);
    let visitor = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(AtomicBool::new(false));
    let (health_tx, health) = watch::channel(Health::Delivering);
    let done = match config.clone() {
        SourceConfig::Synthetic {
            width,
            height,
            fps,
            visit_every_s,
            marker,
            sound,
        } => {
            let sound = if sound {
                Some(OpusEncoder::new(SYNTHETIC_SOUND_RATE, 24_000)?)
            } else {
                None
            };
            let mut camera = SyntheticCamera::new(SyntheticSettings {
                width,
                height,
                fps,
                keyframe_interval: fps,
            })?;
            let tone = match &marker {
                Some(marker) => Tone::with_marker(marker.as_bytes()),
                None => Tone::default(),
            };
            if let Some(marker) = marker {
                camera.set_marker(marker.as_bytes())?;
            }
            let (visitor, wake) = (visitor.clone(), wake.clone());
            tokio::task::spawn_blocking(move || {
                synthetic(camera, sound, tone, visit_every_s, &visitor, &wake, &tx)
            })
        }
        SourceConfig::File { path, fps, repeat } => {
            let media = read_file(&path, fps)?;
            tokio::task::spawn_blocking(move || play(&media, repeat, &tx))
        }
        SourceConfig::Command { command, fps } => {
            tokio::spawn(supervise(tx, health_tx, move |tx| {
                let command = command.clone();
                async move {
                    let child = spawn_command(&command)?;
                    tokio::task::spawn_blocking(move || read_command(child, fps, &tx))
                        .await
                        .map_err(|e| SourceError::Command(e.to_string()))?
                }
            }))
        }
        SourceConfig::Rtsp { url, .. } => tokio::spawn(supervise(tx, health_tx, move |tx| {
            crate::rtsp::stream(url.clone(), true, tx)
        })),
    };
    let motion = match config {
        SourceConfig::Rtsp {
            motion_url: Some(url),
            ..
        } => {
            // Its own reconnecting session; its losses are said in the log only, the main
            // stream's health being what the owner is told.
            let (motion_tx, motion) = mpsc::channel(64);
            let (lost, _) = watch::channel(Health::Delivering);
            let url = url.clone();
            tokio::spawn(supervise(motion_tx, lost, move |tx| {
                crate::rtsp::stream(url.clone(), false, tx)
            }));
            Some(motion)
        }
        _ => None,
    };
    Ok(RunningSource {
        media,
        visitor,
        wake,
        health,
        done,
        motion,
    })
}

/// Runs `connect` (one session of a source, sending into the sender it is given) again and
/// again for as long as `tx` has a receiver: when a session fails or ends, `health` says the
/// source is lost, and the next try comes after a wait that doubles from [`RETRY_MIN`] to
/// [`RETRY_MAX`] (back to the least once pictures flow again). Pictures and sound of every
/// session go on from the clock of the one before, plus the time it was lost.
async fn supervise<F, S>(
    tx: mpsc::Sender<Media>,
    health: watch::Sender<Health>,
    mut connect: F,
) -> Result<(), SourceError>
where
    F: FnMut(mpsc::Sender<Media>) -> S,
    S: std::future::Future<Output = Result<(), SourceError>> + Send + 'static,
{
    let mut retry = RETRY_MIN;
    // The last picture's time, and when the source was lost.
    let mut last: Option<u64> = None;
    let mut lost_at: Option<Instant> = None;
    loop {
        let (session_tx, mut session) = mpsc::channel::<Media>(256);
        let running = tokio::spawn(connect(session_tx));
        let mut base: Option<(u64, u64)> = None;
        while let Some(mut media) = session.recv().await {
            let (first, start) = *base.get_or_insert_with(|| {
                let gap = lost_at.map_or(0, |t| {
                    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
                        * u64::from(TIMESCALE)
                        / 1000
                });
                // One picture's worth after the last at least, so times never repeat.
                let start = last.map_or(0, |l| l + gap.max(u64::from(TIMESCALE / 15)));
                (media.time(), start)
            });
            let time = start + media.time().saturating_sub(first);
            media.set_time(time);
            last = Some(last.map_or(time, |l| l.max(time)));
            if lost_at.take().is_some() {
                retry = RETRY_MIN;
                health.send_replace(Health::Delivering);
            }
            if !send(&tx, media) {
                running.abort();
                return Ok(());
            }
        }
        let why = match running.await {
            Ok(Ok(())) => "the stream ended".to_owned(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        if tx.is_closed() {
            return Ok(());
        }
        if lost_at.is_none() {
            lost_at = Some(Instant::now());
            health.send_replace(Health::Lost {
                since: crate::now(),
                why: why.clone(),
            });
        }
        eprintln!(
            "keyhole-camera: video source lost ({why}); trying again in {} s",
            retry.as_secs()
        );
        tokio::select! {
            () = tokio::time::sleep(retry) => {}
            () = tx.closed() => return Ok(()),
        }
        retry = (retry * 2).min(RETRY_MAX);
    }
}

/// Sends `media` unless the receiver is gone (then the source stops); drops it when the
/// receiver is behind.
fn send(tx: &mpsc::Sender<Media>, media: Media) -> bool {
    !matches!(
        tx.try_send(media),
        Err(mpsc::error::TrySendError::Closed(_))
    )
}

/// The synthetic camera's sound rate: wideband, as doorbells record speech.
const SYNTHETIC_SOUND_RATE: u32 = 16_000;

fn synthetic(
    mut camera: SyntheticCamera,
    mut sound: Option<OpusEncoder>,
    mut tone: Tone,
    visit_every_s: Option<u32>,
    visitor: &AtomicBool,
    wake: &AtomicBool,
    tx: &mpsc::Sender<Media>,
) -> Result<(), SourceError> {
    let fps = u64::from(camera.settings().fps);
    let rate = u64::from(SYNTHETIC_SOUND_RATE);
    let start = Instant::now();
    for frame in 0u64.. {
        let scheduled = visit_every_s.is_some_and(|every| {
            let second = frame / fps;
            every > 0 && second % u64::from(every) >= u64::from(every.saturating_sub(3))
        });
        let visiting = scheduled || visitor.load(Ordering::Relaxed);
        camera.set_motion(visiting);
        if wake.swap(false, Ordering::Relaxed) {
            camera.force_key_frame();
        }
        let au = camera.next_frame()?;
        let at = au.dts;
        if !send(tx, Media::Picture(au)) {
            break;
        }
        // The sound heard while this picture shows, sent right after it: a 20 ms packet is
        // sent once all its samples are made.
        if let Some(encoder) = &mut sound {
            let samples =
                usize::try_from((frame + 1) * rate / fps - frame * rate / fps).unwrap_or(0);
            let pcm = tone.next(samples, SYNTHETIC_SOUND_RATE, visiting);
            for packet in Sound::encode(encoder, at, &pcm)? {
                if !send(tx, Media::Sound(packet)) {
                    return Ok(());
                }
            }
        }
        pace(start, (frame + 1) * 1_000_000 / fps);
    }
    Ok(())
}

fn pace(start: Instant, due_us: u64) {
    let due = start + Duration::from_micros(due_us);
    let now = Instant::now();
    if due > now {
        std::thread::sleep(due - now);
    }
}

/// Reads a whole video file into pictures and, from an MP4 file with an AAC or Opus track,
/// sound, in time order: an MP4 file (H.264 or H.265), or an Annex B stream, H.265 when its
/// name ends `.hevc`, `.h265` or `.265`, else H.264.
///
/// # Errors
/// A file that cannot be read, or holds no video we can use.
pub fn read_file(path: &std::path::Path, fps: u32) -> Result<Vec<Media>, SourceError> {
    let bytes =
        std::fs::read(path).map_err(|e| SourceError::File(format!("{}: {e}", path.display())))?;
    let (pictures, audio) = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"))
    {
        let movie =
            mp4::read(&bytes).map_err(|e| SourceError::File(format!("{}: {e}", path.display())))?;
        (movie.access_units, movie.audio)
    } else {
        let ticks = u64::from(TIMESCALE / fps.clamp(1, 120));
        let hevc = path.extension().is_some_and(|e| {
            ["hevc", "h265", "265"]
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        });
        let codec = if hevc { Codec::H265 } else { Codec::H264 };
        (
            h264::group_access_units_of(codec, h264::split_annex_b(&bytes), ticks),
            None,
        )
    };
    if !pictures.iter().any(|a| a.keyframe) {
        return Err(SourceError::File(format!(
            "{}: no key frame found (H.264, or H.265 in a file named .hevc)",
            path.display()
        )));
    }
    let mut media: Vec<Media> = pictures.into_iter().map(Media::Picture).collect();
    if let Some(audio) = audio {
        let config = Arc::new(audio.config);
        media.extend(audio.frames.into_iter().map(|frame| {
            Media::Sound(Sound {
                config: config.clone(),
                frame,
            })
        }));
        // Stable: a picture stays before the sound that starts with it.
        media.sort_by_key(Media::time);
    }
    Ok(media)
}

fn spawn_command(command: &[String]) -> Result<std::process::Child, SourceError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| SourceError::Command("it is empty".into()))?;
    std::process::Command::new(program)
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| SourceError::Command(format!("cannot run {program}: {e}")))
}

/// Reads the command's H.264 as it arrives; stops it when the camera no longer listens.
fn read_command(
    mut child: std::process::Child,
    fps: u32,
    tx: &mpsc::Sender<Media>,
) -> Result<(), SourceError> {
    use std::io::Read;
    let mut stdout = child
        .stdout
        .take()
        .ok_or_else(|| SourceError::Command("it has no output".into()))?;
    let mut reader = h264::AnnexBReader::new(u64::from(TIMESCALE / fps.clamp(1, 120)));
    let mut buf = vec![0u8; 64 * 1024];
    let outcome = loop {
        let n = match stdout.read(&mut buf) {
            Ok(0) => break Err(SourceError::Command("it ended".into())),
            Ok(n) => n,
            Err(e) => break Err(SourceError::Command(format!("reading its output: {e}"))),
        };
        if !reader
            .push(&buf[..n])
            .into_iter()
            .all(|au| send(tx, Media::Picture(au)))
        {
            break Ok(());
        }
    };
    child.kill().ok();
    child.wait().ok();
    outcome
}

/// Plays `media` (in time order) in real time, again and again with `repeat`, each round
/// lasting from the first picture to one picture after the last.
fn play(media: &[Media], repeat: bool, tx: &mpsc::Sender<Media>) -> Result<(), SourceError> {
    let times: Vec<u64> = media
        .iter()
        .filter(|m| matches!(m, Media::Picture(_)))
        .map(Media::time)
        .collect();
    let first = media.first().map_or(0, Media::time);
    let last = times.last().copied().unwrap_or(first);
    let step = times
        .get(1)
        .map_or(u64::from(TIMESCALE / 15), |t| t.saturating_sub(first))
        .max(1);
    let length = last - first + step;
    let start = Instant::now();
    for round in 0u64.. {
        for item in media {
            let mut item = item.clone();
            let time = item.time() - first + round * length;
            // Sound past the round's last picture would overlap the next round's.
            if time >= (round + 1) * length {
                continue;
            }
            item.set_time(time);
            pace(start, time * 1_000_000 / u64::from(TIMESCALE));
            if !send(tx, item) {
                return Ok(());
            }
        }
        if !repeat {
            break;
        }
    }
    Ok(())
}
