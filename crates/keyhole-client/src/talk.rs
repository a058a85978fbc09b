//! Talking back through a camera (PROTOCOL.md §8.4). The device watches the camera live (the
//! view need not be shown) so that it holds a moment of the camera's own clock, signed and
//! fresh — the newest checkpoint that names its request — and names it, with the time since, in
//! every frame it sends: the camera can then tell sound held back or played again by its own
//! clock. The sound is encoded as Opus in 20 ms packets, sealed to the camera's live challenge
//! under the epoch's viewing key, paced as spoken, and relayed by the server unopened.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use keyhole_core::envelope::Suite;
use keyhole_core::talk::{Spoken, TalkSealer};
use keyhole_core::{CameraId, Timestamp};
use keyhole_sound::OpusEncoder;
use rand_core::OsRng;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::ClientError;
use crate::owner::{LiveOutcome, Owner};

/// Bits a second of the Opus sound sent: clear speech.
pub const TALK_BITRATE: u32 = 24_000;
/// Milliseconds of sound in one packet.
const PACKET_MS: u32 = 20;

/// What a talk session sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TalkOutcome {
    /// Opus packets sent, 20 ms each.
    pub packets: u64,
    /// Bytes the server passed to the camera.
    pub bytes: u64,
}

fn failed(e: impl std::fmt::Display) -> ClientError {
    ClientError::Talk(e.to_string())
}

/// The newest moment of the camera's clock this device saw in a live view of it, and when: what
/// talk-back names. A live view's progress ([`Owner::watch_live_with`]) feeds it.
#[derive(Debug, Default)]
pub struct CameraTime {
    at: Mutex<Option<(Timestamp, Instant)>>,
    ready: tokio::sync::Notify,
}

impl CameraTime {
    /// Takes the camera's clock from a live view's outcome so far, once a checkpoint named the
    /// view's request.
    pub fn saw(&self, outcome: &LiveOutcome) {
        if let Some(clock) = outcome.camera_clock {
            *self.at.lock().unwrap_or_else(PoisonError::into_inner) = Some((clock, Instant::now()));
            self.ready.notify_one();
        }
    }

    /// The moment, and the milliseconds since this device saw it.
    fn now(&self) -> Option<(Timestamp, u32)> {
        let seen = *self.at.lock().unwrap_or_else(PoisonError::into_inner);
        seen.map(|(clock, at)| {
            (
                clock,
                u32::try_from(at.elapsed().as_millis()).unwrap_or(u32::MAX),
            )
        })
    }

    /// Waits up to `wait` for a first moment.
    async fn ready(&self, wait: Duration) -> bool {
        if self.now().is_some() {
            return true;
        }
        tokio::time::timeout(wait, self.ready.notified())
            .await
            .is_ok()
    }
}

impl Owner {
    /// Talks through `camera`'s speaker: reads raw signed 16-bit little-endian mono PCM at
    /// `rate` (8000, 12000, 16000, 24000 or 48000) from `pcm` to its end, and sends it as it
    /// would be spoken, in real time. Watches the camera live meanwhile (nothing is shown) for
    /// the camera's time, waiting up to `wait_secs` for the view to confirm this device's
    /// request.
    ///
    /// # Errors
    /// No key for the camera's current epoch, a head that does not verify, a camera that does
    /// not answer or listen, a live view that ends first, an unreadable input.
    pub async fn talk(
        &self,
        camera: &CameraId,
        pcm: &mut (dyn AsyncRead + Unpin + Send),
        rate: u32,
        wait_secs: u64,
    ) -> Result<TalkOutcome, ClientError> {
        let seen = CameraTime::default();
        let mut saw = |outcome: &LiveOutcome| seen.saw(outcome);
        let mut unseen = std::io::sink();
        let watching = self.watch_live_with(camera, wait_secs, None, &mut unseen, &mut saw);
        let speaking = self.talk_seeing(camera, pcm, rate, &seen, wait_secs);
        tokio::select! {
            watched = watching => Err(match watched {
                Err(e) => failed(format!("the live view talk-back relies on failed: {e}")),
                Ok(_) => failed("the camera's live view ended before the talking did"),
            }),
            spoke = speaking => spoke,
        }
    }

    /// [`Owner::talk`] while a live view of the camera runs elsewhere and feeds `seen` (the
    /// viewer's page), waiting up to `wait_secs` for its first moment.
    ///
    /// # Errors
    /// As [`Owner::talk`].
    pub async fn talk_seeing(
        &self,
        camera: &CameraId,
        pcm: &mut (dyn AsyncRead + Unpin + Send),
        rate: u32,
        seen: &CameraTime,
        wait_secs: u64,
    ) -> Result<TalkOutcome, ClientError> {
        let wait = Duration::from_secs(wait_secs);
        let mut encoder = OpusEncoder::new(rate, TALK_BITRATE).map_err(failed)?;
        let (epoch, viewing, challenge) = self.live_challenge(camera, wait).await?;
        let sealer = TalkSealer::start(
            *camera,
            epoch,
            &challenge,
            viewing,
            Suite::ChaCha20Poly1305,
            &mut OsRng,
        )
        .map_err(failed)?;
        if !seen.ready(wait).await {
            return Err(failed(format!(
                "the camera did not confirm a live view within {wait_secs} s, so there is no \
                 fresh time of its own to name (is it online?)"
            )));
        }
        self.speak(camera, sealer, &mut encoder, pcm, rate, seen)
            .await
    }

    /// Streams the session to the server while encoding and sealing `pcm` in real time.
    async fn speak(
        &self,
        camera: &CameraId,
        mut sealer: TalkSealer,
        encoder: &mut OpusEncoder,
        pcm: &mut (dyn AsyncRead + Unpin + Send),
        rate: u32,
        seen: &CameraTime,
    ) -> Result<TalkOutcome, ClientError> {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
        let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async {
            rx.recv().await.map(|item| (item, rx))
        }));
        let path = format!("/v1/cameras/{camera}/talk");
        let sent = self.api.put_stream(&path, body);
        let produce = async {
            let gone = |_| failed("the server stopped taking the talk stream");
            tx.send(Ok(sealer.header().to_vec())).await.map_err(gone)?;
            let per_packet = usize::try_from(rate * PACKET_MS / 1000).unwrap_or(usize::MAX);
            let mut buf = vec![0u8; per_packet * 2];
            // Paced from the first packet read: sound read as it is spoken is sent at once, a
            // file no faster than it plays.
            let mut start = None;
            let mut packets = 0u64;
            loop {
                let n = read_up_to(pcm, &mut buf).await?;
                if n == 0 {
                    break;
                }
                // The last piece is padded with silence to a whole packet.
                let mut samples: Vec<i16> = buf[..n]
                    .chunks_exact(2)
                    .map(|b| i16::from_le_bytes([b[0], b[1]]))
                    .collect();
                samples.resize(per_packet, 0);
                let at = packets * u64::from(PACKET_MS) * 90;
                for sound in encoder.push(at, &samples).map_err(failed)? {
                    let start = *start.get_or_insert_with(tokio::time::Instant::now);
                    tokio::time::sleep_until(
                        start + Duration::from_millis(packets * u64::from(PACKET_MS)),
                    )
                    .await;
                    let (clock, since_ms) = seen.now().ok_or_else(|| failed("no camera time"))?;
                    let spoken = Spoken {
                        seen: clock,
                        since_ms,
                        audio: sound.data,
                    };
                    let frame = sealer.seal(&spoken, false).map_err(failed)?;
                    tx.send(Ok(frame)).await.map_err(gone)?;
                    packets += 1;
                }
                if n < buf.len() {
                    break;
                }
            }
            let (clock, since_ms) = seen.now().ok_or_else(|| failed("no camera time"))?;
            let end = Spoken {
                seen: clock,
                since_ms,
                audio: Vec::new(),
            };
            tx.send(Ok(sealer.seal(&end, true).map_err(failed)?))
                .await
                .map_err(gone)?;
            drop(tx);
            Ok::<_, ClientError>(packets)
        };
        let (answer, produced) = tokio::join!(sent, produce);
        // The server's refusal says more than the broken stream it caused.
        let answer = answer?;
        let packets = produced?;
        Ok(TalkOutcome {
            packets,
            bytes: answer["bytes"].as_u64().unwrap_or(0),
        })
    }
}

/// Reads until `buf` is full or the input ends; how many bytes were read.
async fn read_up_to(
    input: &mut (dyn AsyncRead + Unpin + Send),
    buf: &mut [u8],
) -> Result<usize, ClientError> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = input.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
