//! Where video comes from: the built-in synthetic camera, a file (MP4 or Annex B H.264), or an
//! RTSP camera. Each source runs on its own and sends access units, paced in real time, into a
//! channel; a full channel drops pictures rather than stall the source.
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
use keyhole_media::{AccessUnit, TIMESCALE, h264, mp4};
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

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
        /// Printable text written into every key frame as an H.264 SEI message, so a test can
        /// search the server for the video's plaintext; none when absent.
        #[serde(default)]
        marker: Option<String>,
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
    /// An RTSP camera (H.264), over TCP. A session that fails or ends is started again.
    Rtsp {
        /// `rtsp://host:port/path`; credentials may be in the URL.
        url: String,
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

impl Default for SourceConfig {
    fn default() -> Self {
        Self::Synthetic {
            width: default_width(),
            height: default_height(),
            fps: default_fps(),
            visit_every_s: None,
            marker: None,
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

/// A running source: its pictures, and a switch for the synthetic scene's visitor.
#[derive(Debug)]
pub struct RunningSource {
    /// Pictures, in order; closed when the source ends (a file without `loop`).
    pub pictures: mpsc::Receiver<AccessUnit>,
    /// Sets the synthetic camera's visitor walking (ignored by other sources).
    pub visitor: Arc<AtomicBool>,
    /// Asks for a key frame next, as a battery camera's sensor gives when it powers up on a
    /// wake (honoured by the synthetic source; other sources deliver their next key frame).
    pub wake: Arc<AtomicBool>,
    /// Whether the source is delivering, or lost since when and why.
    pub health: watch::Receiver<Health>,
    /// Resolves with the source's end: `Ok` at the end of a file, `Err` on failure.
    pub done: tokio::task::JoinHandle<Result<(), SourceError>>,
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
    let (tx, pictures) = mpsc::channel(256);
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
        } => {
            let mut camera = SyntheticCamera::new(SyntheticSettings {
                width,
                height,
                fps,
                keyframe_interval: fps,
            })?;
            if let Some(marker) = marker {
                camera.set_marker(marker.as_bytes())?;
            }
            let (visitor, wake) = (visitor.clone(), wake.clone());
            tokio::task::spawn_blocking(move || {
                synthetic(camera, visit_every_s, &visitor, &wake, &tx)
            })
        }
        SourceConfig::File { path, fps, repeat } => {
            let pictures = read_file(&path, fps)?;
            tokio::task::spawn_blocking(move || play(&pictures, repeat, &tx))
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
        SourceConfig::Rtsp { url } => tokio::spawn(supervise(tx, health_tx, move |tx| {
            crate::rtsp::stream(url.clone(), tx)
        })),
    };
    Ok(RunningSource {
        pictures,
        visitor,
        wake,
        health,
        done,
    })
}

/// Runs `connect` (one session of a source, sending into the sender it is given) again and
/// again for as long as `tx` has a receiver: when a session fails or ends, `health` says the
/// source is lost, and the next try comes after a wait that doubles from [`RETRY_MIN`] to
/// [`RETRY_MAX`] (back to the least once pictures flow again). Pictures of every session go on
/// from the clock of the one before, plus the time it was lost.
async fn supervise<F, S>(
    tx: mpsc::Sender<AccessUnit>,
    health: watch::Sender<Health>,
    mut connect: F,
) -> Result<(), SourceError>
where
    F: FnMut(mpsc::Sender<AccessUnit>) -> S,
    S: std::future::Future<Output = Result<(), SourceError>> + Send + 'static,
{
    let mut retry = RETRY_MIN;
    // The last picture's time, and when the source was lost.
    let mut last: Option<u64> = None;
    let mut lost_at: Option<Instant> = None;
    loop {
        let (session_tx, mut session) = mpsc::channel::<AccessUnit>(256);
        let running = tokio::spawn(connect(session_tx));
        let mut base: Option<(u64, u64)> = None;
        while let Some(mut au) = session.recv().await {
            let (first, start) = *base.get_or_insert_with(|| {
                let gap = lost_at.map_or(0, |t| {
                    u64::try_from(t.elapsed().as_millis()).unwrap_or(u64::MAX)
                        * u64::from(TIMESCALE)
                        / 1000
                });
                // One picture's worth after the last at least, so times never repeat.
                let start = last.map_or(0, |l| l + gap.max(u64::from(TIMESCALE / 15)));
                (au.dts, start)
            });
            au.dts = start + au.dts.saturating_sub(first);
            last = Some(au.dts);
            if lost_at.take().is_some() {
                retry = RETRY_MIN;
                health.send_replace(Health::Delivering);
            }
            if !send(&tx, au) {
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

/// Sends `au` unless the receiver is gone (then the source stops); drops it when the receiver
/// is behind.
fn send(tx: &mpsc::Sender<AccessUnit>, au: AccessUnit) -> bool {
    !matches!(tx.try_send(au), Err(mpsc::error::TrySendError::Closed(_)))
}

fn synthetic(
    mut camera: SyntheticCamera,
    visit_every_s: Option<u32>,
    visitor: &AtomicBool,
    wake: &AtomicBool,
    tx: &mpsc::Sender<AccessUnit>,
) -> Result<(), SourceError> {
    let fps = u64::from(camera.settings().fps);
    let start = Instant::now();
    for frame in 0u64.. {
        let scheduled = visit_every_s.is_some_and(|every| {
            let second = frame / fps;
            every > 0 && second % u64::from(every) >= u64::from(every.saturating_sub(3))
        });
        camera.set_motion(scheduled || visitor.load(Ordering::Relaxed));
        if wake.swap(false, Ordering::Relaxed) {
            camera.force_key_frame();
        }
        let au = camera.next_frame()?;
        if !send(tx, au) {
            break;
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

/// Reads a whole video file into access units.
///
/// # Errors
/// A file that cannot be read, or holds no H.264 we can use.
pub fn read_file(path: &std::path::Path, fps: u32) -> Result<Vec<AccessUnit>, SourceError> {
    let bytes =
        std::fs::read(path).map_err(|e| SourceError::File(format!("{}: {e}", path.display())))?;
    let pictures = if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("mp4"))
    {
        mp4::read(&bytes)
            .map_err(|e| SourceError::File(format!("{}: {e}", path.display())))?
            .access_units
    } else {
        let ticks = u64::from(TIMESCALE / fps.clamp(1, 120));
        h264::group_access_units(h264::split_annex_b(&bytes), ticks)
    };
    if !pictures.iter().any(|a| a.keyframe) {
        return Err(SourceError::File(format!(
            "{}: no H.264 key frame found",
            path.display()
        )));
    }
    Ok(pictures)
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
    tx: &mpsc::Sender<AccessUnit>,
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
        if !reader.push(&buf[..n]).into_iter().all(|au| send(tx, au)) {
            break Ok(());
        }
    };
    child.kill().ok();
    child.wait().ok();
    outcome
}

fn play(
    pictures: &[AccessUnit],
    repeat: bool,
    tx: &mpsc::Sender<AccessUnit>,
) -> Result<(), SourceError> {
    let first = pictures.first().map_or(0, |a| a.dts);
    let last = pictures.last().map_or(0, |a| a.dts);
    let step = pictures
        .get(1)
        .map_or(u64::from(TIMESCALE / 15), |a| a.dts.saturating_sub(first))
        .max(1);
    let length = last - first + step;
    let start = Instant::now();
    for round in 0u64.. {
        for au in pictures {
            let mut au = au.clone();
            au.dts = au.dts - first + round * length;
            pace(start, au.dts * 1_000_000 / u64::from(TIMESCALE));
            if !send(tx, au) {
                return Ok(());
            }
        }
        if !repeat {
            break;
        }
    }
    Ok(())
}
