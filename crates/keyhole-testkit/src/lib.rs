//! Test harness for end-to-end tests: the real server, in process, on 127.0.0.1:0 over plain
//! HTTP (loopback only), with its own temporary data folder, stopped when dropped. A
//! [`TestServer::backdoor`] opens the same storage directly, to play a server that misbehaves.
//!
//! [`capture::Capture`] records every byte to and from the server at the socket.
//! [`hostile::HostileProxy`] stands in front of the server and tampers with what it serves.
//! [`postgres::Postgres`] runs a throwaway PostgreSQL server.
//! [`process`] runs the workspace's binaries (`keyhole-server`, `keyhole-camera`) as processes,
//! as users run them; [`ffprobe`] checks an MP4 with ffmpeg's prober.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![allow(
    clippy::expect_used,
    clippy::panic,
    reason = "a harness that cannot start should fail the test loudly"
)]

use std::path::Path;

pub mod capture;
pub mod hostile;
pub mod postgres;
pub mod process;
pub mod s3;
pub mod snapshots;

use keyhole_server::{AppState, Config};

/// A running server.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    config: Config,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    /// Starts the server on the embedded storage in `data_dir`.
    ///
    /// # Panics
    /// If the storage cannot be opened or no loopback port is free.
    pub async fn start(data_dir: &Path) -> Self {
        Self::start_on(data_dir, "127.0.0.1:0").await
    }

    /// Starts the server on `addr` (to bring a stopped server back at the same URL).
    ///
    /// # Panics
    /// If the storage cannot be opened or the address is taken.
    pub async fn start_on(data_dir: &Path, addr: &str) -> Self {
        let config = Config {
            data_dir: data_dir.to_owned(),
            insecure_http: true,
            ..Config::default()
        };
        Self::start_with(config, addr).await
    }

    /// Starts the server with `config` (plain HTTP) on `addr`.
    ///
    /// # Panics
    /// If the storage cannot be opened or the address is taken.
    pub async fn start_with(config: Config, addr: &str) -> Self {
        let state = AppState::open(config.clone())
            .await
            .expect("opening the server's storage");
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("binding a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("bound address"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            keyhole_server::serve_http(listener, state, shutdown)
                .await
                .expect("serving");
        });
        Self {
            url,
            config,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `url` joined with `path`.
    #[must_use]
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.url)
    }

    /// The server's storage, opened directly, bypassing every check the API makes.
    ///
    /// # Panics
    /// If the storage cannot be opened.
    pub async fn backdoor(&self) -> AppState {
        AppState::open(self.config.clone())
            .await
            .expect("opening the server's storage")
    }

    /// Stops the server and waits until it has.
    ///
    /// # Panics
    /// If the server task failed.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("the server task");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// ffprobe's view of an MP4 file's video stream: (decoded frames, width, height), checking that
/// the codec is H.264 or H.265 and that ffprobe reports no error. `None` when ffprobe is not installed
/// (the check is skipped), except under CI (`CI` set), where that fails the test.
///
/// # Panics
/// If ffprobe fails or reports an error or another codec.
#[must_use]
pub fn ffprobe(mp4: &Path) -> Option<(u64, u32, u32)> {
    use std::process::Command;
    if Command::new("ffprobe").arg("-version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffprobe is required (see .ci/run)"
        );
        eprintln!("ffprobe not installed: MP4 check skipped");
        return None;
    }
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-of", "csv=p=0"])
        .arg(mp4)
        .output()
        .expect("running ffprobe");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.is_empty(),
        "ffprobe: {stderr}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let fields: Vec<&str> = text.trim().split(',').collect();
    assert!(
        matches!(fields.first(), Some(&("h264" | "hevc"))),
        "ffprobe: {text}"
    );
    let number = |i: usize| -> u64 {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("ffprobe field {i} in {text:?}"))
    };
    let dimension = |i| u32::try_from(number(i)).expect("a picture dimension");
    Some((number(3), dimension(1), dimension(2)))
}

/// Checks that an MP4 file's sound plays with its pictures: ffprobe finds a video stream and an
/// audio stream, ffmpeg decodes both without a complaint, the sound starts no more than
/// `within` seconds after the pictures and lasts as long as they do to within `within` seconds.
/// Returns the sound's codec name (`opus`, `aac`). `None` when ffmpeg is not installed, as for
/// [`ffprobe`].
///
/// # Panics
/// If any of that does not hold.
#[must_use]
pub fn assert_sound_in_step(mp4: &Path, within: f64) -> Option<String> {
    use std::process::Command;
    ffprobe(mp4)?;
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries"])
        .args([
            "stream=codec_type,codec_name,start_time,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(mp4)
        .output()
        .expect("running ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let streams: Vec<(String, String, f64, f64)> = text
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let seconds = |i: usize| f.get(i).and_then(|v| v.parse().ok()).unwrap_or(f64::NAN);
            let field = |i: usize| f.get(i).copied().unwrap_or_default().to_owned();
            (field(1), field(0), seconds(2), seconds(3))
        })
        .collect();
    let [(video, _, v_start, v_len), (audio, codec, a_start, a_len)] = &streams[..] else {
        panic!("a video and a sound stream expected: {text}");
    };
    assert_eq!(
        (video.as_str(), audio.as_str()),
        ("video", "audio"),
        "{text}"
    );
    assert!(
        *a_start >= *v_start && a_start - v_start <= within,
        "the sound starts with the pictures: {text}"
    );
    assert!(
        (a_len - v_len).abs() <= within,
        "sound and pictures last alike: {text}"
    );
    let decoded = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(mp4)
        .args(["-f", "null", "-"])
        .output()
        .expect("running ffmpeg");
    assert!(
        decoded.status.success() && decoded.stderr.is_empty(),
        "ffmpeg decodes {mp4:?}: {}",
        String::from_utf8_lossy(&decoded.stderr)
    );
    Some(codec.clone())
}

/// Whether `marker` is heard in `pcm` (mono at `rate`) as tones of `bit_ms` each, `zero_hz` for
/// a 0 and `one_hz` for a 1, first byte first and most significant bit first: each bit's window
/// goes to the louder of the two frequencies (Goertzel), at every eighth of a bit of offset,
/// and the marker's bits are looked for in what is heard.
#[must_use]
pub fn hears_marker(
    pcm: &[i16],
    rate: u32,
    bit_ms: u32,
    (zero_hz, one_hz): (u32, u32),
    marker: &[u8],
) -> bool {
    let bit_len = (rate * bit_ms / 1000).max(8) as usize;
    let power = |window: &[i16], hz: u32| {
        let coeff = 2.0 * (std::f64::consts::TAU * f64::from(hz) / f64::from(rate)).cos();
        let (mut s1, mut s2) = (0.0f64, 0.0f64);
        for x in window {
            let s0 = f64::from(*x) + coeff * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        s1 * s1 + s2 * s2 - coeff * s1 * s2
    };
    let wanted: Vec<bool> = marker
        .iter()
        .flat_map(|byte| (0..8).rev().map(move |bit| byte >> bit & 1 == 1))
        .collect();
    (0..8).any(|eighth| {
        let heard: Vec<bool> = pcm
            .get(eighth * bit_len / 8..)
            .unwrap_or_default()
            .chunks_exact(bit_len)
            .map(|window| power(window, one_hz) > power(window, zero_hz))
            .collect();
        !wanted.is_empty() && heard.windows(wanted.len()).any(|w| w == wanted.as_slice())
    })
}
