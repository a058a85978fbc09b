//! The `keyhole-camera` binary as a process, against the real server and the owner's client:
//! each source through trigger → seal → spool → upload, decrypted by the owner to MP4 that
//! ffprobe plays; killed mid-recording and mid-upload, and with the server away, it loses and
//! duplicates nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use keyhole_client::Owner;
use keyhole_client::core::envelope::ObjectKind;
use keyhole_client::core::event::{EventDetails, EventKind};
use keyhole_client::core::recovery::KdfParams;
use keyhole_client::core::report::{Checked, Report};
use keyhole_client::core::{CameraId, ObjectId, Timestamp};
use keyhole_http::Endpoint;
use keyhole_media::{AccessUnit, mp4};
use keyhole_testkit::TestServer;
use keyhole_testkit::process::CameraProcess as Camera;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const BIN: &str = env!("CARGO_BIN_EXE_keyhole-camera");

/// The `keyhole-camera` binary of this package, configured with `settings` in `dir`.
fn camera_process(dir: &Path, settings: &str) -> Camera {
    Camera::new(Path::new(BIN), dir, settings)
}

async fn owner_with_camera(
    server_url: &str,
    username: &str,
    camera: &Camera,
    rng: &mut ChaCha20Rng,
) -> (Owner, CameraId) {
    owner_with_camera_via(server_url, server_url, username, camera, rng).await
}

/// The owner talks to `server_url`; the camera is given `camera_url` (a proxy in front).
async fn owner_with_camera_via(
    server_url: &str,
    camera_url: &str,
    username: &str,
    camera: &Camera,
    rng: &mut ChaCha20Rng,
) -> (Owner, CameraId) {
    let endpoint = Endpoint {
        url: server_url.to_owned(),
        pin: None,
        allow_plain_http: false,
    };
    let (mut owner, _) = Owner::create(
        &endpoint,
        username,
        "correct horse battery",
        "phone",
        KdfParams::MINIMUM,
        Timestamp(1_795_735_205_000),
        rng,
    )
    .await
    .unwrap();
    let code = owner.start_pairing(camera_url, None, rng).await.unwrap();
    let printed = camera.pair(&code.to_text());
    assert!(
        printed.contains(&owner.account_code().to_string()),
        "the camera shows the account code to compare: {printed}"
    );
    let id = owner
        .finish_pairing(&code, "Front door", Timestamp(1_795_735_206_000), rng)
        .await
        .unwrap();
    (owner, id)
}

/// Everything the server holds for the camera, verified: the report and each object's plaintext.
async fn fetch_all(owner: &mut Owner, camera: &CameraId) -> (Report, Vec<(ObjectKind, Vec<u8>)>) {
    owner.sync_camera(camera).await.unwrap();
    let report = owner.verify(camera).await.unwrap();
    assert!(report.is_clean(), "{report}");
    let mut objects = Vec::new();
    for entry in &report.entries {
        let header = entry.header.as_ref().unwrap();
        let mut plain = Vec::new();
        let checked = owner
            .export(camera, &header.object_id, &mut plain)
            .await
            .unwrap();
        assert!(matches!(checked, Checked::Verified(_)));
        objects.push((header.kind, plain));
    }
    (report, objects)
}

fn events(objects: &[(ObjectKind, Vec<u8>)]) -> Vec<EventDetails> {
    objects
        .iter()
        .filter(|(k, _)| *k == ObjectKind::Event)
        .map(|(_, p)| EventDetails::decode(p).unwrap())
        .collect()
}

fn clips(objects: &[(ObjectKind, Vec<u8>)]) -> Vec<Vec<u8>> {
    objects
        .iter()
        .filter(|(k, _)| *k == ObjectKind::Clip)
        .map(|(_, p)| p.clone())
        .collect()
}

/// Starts `camera`, lets three seconds of stream go by (the pre-roll then starts in the middle
/// of the stream, not at its first picture, and after its sound began), rings the doorbell,
/// waits for the press and its clip to upload, stops the camera and returns everything the
/// owner then opens.
async fn ring_after_pre_roll(
    camera: &mut Camera,
    owner: &mut Owner,
    camera_id: &CameraId,
) -> Vec<(ObjectKind, Vec<u8>)> {
    camera.start().await;
    camera.wait_for_pictures(45).await;
    camera.post("/doorbell").await;
    camera
        .wait_for("the event to upload", 30, |s| {
            s["events"] == 1 && s["uploaded"] == 2
        })
        .await;
    camera.stop();
    fetch_all(owner, camera_id).await.1
}

/// Checks a decrypted clip as [`check_clip`] does, and that it has sound in `codec` (as ffprobe
/// names it) in step with the pictures.
fn check_clip_with_sound(
    dir: &Path,
    clip: &[u8],
    size: (u32, u32),
    codec: &str,
) -> Vec<AccessUnit> {
    let pictures = check_clip(dir, clip, size);
    let path = dir.join(format!("clip-{}.mp4", clip.len()));
    if let Some(found) = keyhole_testkit::assert_sound_in_step(&path, 1.0 / 15.0) {
        assert_eq!(found, codec);
    }
    assert!(mp4::read(clip).unwrap().audio.is_some());
    pictures
}

/// Checks a decrypted clip: a valid MP4 that ffprobe decodes frame for frame.
fn check_clip(dir: &Path, clip: &[u8], size: (u32, u32)) -> Vec<AccessUnit> {
    let video = mp4::read(clip).unwrap();
    assert_eq!((video.width, video.height), size);
    assert!(
        video.access_units[0].keyframe,
        "a clip starts at a key frame"
    );
    let path = dir.join(format!("clip-{}.mp4", clip.len()));
    std::fs::write(&path, clip).unwrap();
    if let Some((frames, w, h)) = keyhole_testkit::ffprobe(&path) {
        assert_eq!((w, h), size);
        assert_eq!(frames, video.access_units.len() as u64);
    }
    video.access_units
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synthetic_camera_seals_motion_and_doorbell_events_that_play() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(1);
    let mut camera = camera_process(
        dir.path(),
        "[source]\nkind = \"synthetic\"\nwidth = 320\nheight = 240\nfps = 15\n\
         [record]\nmode = \"events\"\n[clip]\npre_roll_s = 1.0\npost_roll_s = 1.0\nmax_s = 10.0\ncooldown_s = 30.0\n\
         [motion]\nsensitivity = 60\n",
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    camera.start().await;

    // Nobody there: no motion, no clip.
    let quiet = camera.wait_for_pictures(30).await;
    assert_eq!(quiet["events"], 0, "{quiet}");
    assert_eq!(quiet["recording"], false);

    // A visitor walks through: motion starts a clip. They ring while it records: the press is
    // an event of its own, uploaded at once, before the clip is finished.
    camera.post("/visitor/start").await;
    camera
        .wait_for("motion to start a clip", 10, |s| s["recording"] == true)
        .await;
    camera.post("/doorbell").await;
    camera
        .wait_for("the press to upload while the clip records", 20, |s| {
            s["events"] == 1 && s["spool_objects"] == 0 && s["uploaded"] == 1
        })
        .await;
    camera.post("/visitor/stop").await;
    camera
        .wait_for("the clip and the motion event to upload", 20, |s| {
            s["events"] == 2 && s["spool_objects"] == 0 && s["uploaded"] == 3
        })
        .await;
    // The cool-down holds motion back, but not the doorbell: a press alone, at once, then its
    // clip.
    camera.post("/doorbell").await;
    let status = camera
        .wait_for("the second press and its clip to upload", 20, |s| {
            s["events"] == 3 && s["spool_objects"] == 0 && s["uploaded"] == 5
        })
        .await;
    assert_eq!(status["alerts"], serde_json::json!([]));
    assert_eq!(status["epoch"], 1);
    camera.stop();

    let (report, objects) = fetch_all(&mut owner, &camera_id).await;
    assert_eq!(report.entries.len(), 5);
    let kinds: Vec<ObjectKind> = objects.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        kinds,
        [
            ObjectKind::Event,
            ObjectKind::Clip,
            ObjectKind::Event,
            ObjectKind::Event,
            ObjectKind::Clip
        ],
        "each press is sealed before the clip that shows it"
    );
    let events = events(&objects);
    assert_eq!(
        events.iter().map(|e| e.kind).collect::<Vec<_>>(),
        [EventKind::Doorbell, EventKind::Motion, EventKind::Doorbell],
        "the press during motion stays an event of its own"
    );
    let clip_ids: Vec<ObjectId> = report
        .entries
        .iter()
        .map(|e| e.header.as_ref().unwrap())
        .filter(|h| h.kind == ObjectKind::Clip)
        .map(|h| h.object_id)
        .collect();
    for (event, clip_id) in events.iter().zip([clip_ids[0], clip_ids[0], clip_ids[1]]) {
        assert_eq!(event.clip, Some(clip_id), "each event names its clip");
        assert_eq!(
            &event.thumbnail_jpeg[..2],
            &[0xff, 0xd8],
            "a JPEG thumbnail"
        );
    }
    // A press is sealed as it begins (duration 0: its clip shows the rest); motion when it
    // ends, its clip extended by the press: pre-roll 1 s (back to a key frame, at most 1 s
    // more), post-roll 1 s after the last trigger.
    assert_eq!((events[0].duration_ms, events[2].duration_ms), (0, 0));
    assert!(
        (1_000..=10_000).contains(&events[1].duration_ms),
        "{}",
        events[1].duration_ms
    );
    for clip in clips(&objects) {
        let frames = check_clip_with_sound(dir.path(), &clip, (320, 240), "opus");
        assert!(frames.len() >= 15, "{} frames", frames.len());
    }

    // Factory reset: refused without confirmation, then everything is erased.
    let refused = camera
        .command()
        .arg("reset")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(camera.offline_status()["camera_id"].is_string());
    let reset = camera.command().args(["reset", "--yes"]).output().unwrap();
    assert!(reset.status.success());
    let after = camera.command().args(["status"]).output().unwrap();
    assert!(!after.status.success());
    assert!(
        String::from_utf8_lossy(&after.stderr).contains("not paired"),
        "{}",
        String::from_utf8_lossy(&after.stderr)
    );
    server.stop().await;
}

/// Frames of a synthetic H.264 stream, made in the test.
fn synthetic_stream(frames: usize) -> Vec<AccessUnit> {
    use keyhole_camera::video::synthetic::{SyntheticCamera, SyntheticSettings};
    let mut cam = SyntheticCamera::new(SyntheticSettings {
        width: 320,
        height: 240,
        fps: 15,
        keyframe_interval: 15,
    })
    .unwrap();
    cam.set_motion(true);
    (0..frames).map(|_| cam.next_frame().unwrap()).collect()
}

/// Whether `clip`'s pictures are a run of `source`'s pictures, byte for byte (parameter sets
/// aside: the MP4 keeps them in its header).
fn is_run_of(clip: &[AccessUnit], source: &[AccessUnit]) -> bool {
    let pictures =
        |au: &AccessUnit| -> Vec<Vec<u8>> { au.picture_nals().map(<[u8]>::to_vec).collect() };
    let source: Vec<_> = source.iter().map(pictures).collect();
    let clip: Vec<_> = clip.iter().map(pictures).collect();
    // The file loops, so the run may wrap around.
    let doubled: Vec<_> = source.iter().chain(&source).cloned().collect();
    clip.len() <= source.len() * 2
        && doubled
            .windows(clip.len().min(doubled.len()))
            .any(|w| w == clip.as_slice())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_sources_on_a_battery_camera_give_clips_of_exactly_the_captured_frames() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(2);
    let source = synthetic_stream(60);
    let annex_b: Vec<u8> = source.iter().flat_map(AccessUnit::to_annex_b).collect();
    std::fs::write(dir.path().join("door.h264"), &annex_b).unwrap();
    std::fs::write(
        dir.path().join("door.mp4"),
        mp4::write(&source, None).unwrap(),
    )
    .unwrap();

    for file in ["door.h264", "door.mp4"] {
        let cam_dir = dir.path().join(file.replace('.', "-"));
        std::fs::create_dir_all(&cam_dir).unwrap();
        let mut camera = camera_process(
            &cam_dir,
            &format!(
                "profile = \"battery\"\n[source]\nkind = \"file\"\npath = {:?}\nfps = 15\nloop = true\n\
                 [clip]\npost_roll_s = 1.5\n",
                dir.path().join(file)
            ),
        );
        let (mut owner, camera_id) =
            owner_with_camera(&server.url, &file.replace('.', "-"), &camera, rng).await;
        camera.start().await;
        // Asleep: pictures go by, nothing is recorded.
        assert_eq!(camera.wait_for_pictures(10).await["recording"], false);
        // The motion sensor wakes it.
        camera.post("/trigger").await;
        camera
            .wait_for("the event to upload", 20, |s| {
                s["events"] == 1 && s["uploaded"] == 2
            })
            .await;
        camera.stop();
        let (_, objects) = fetch_all(&mut owner, &camera_id).await;
        let events = events(&objects);
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, EventKind::External);
        let clips = clips(&objects);
        let frames = check_clip(dir.path(), &clips[0], (320, 240));
        // No pre-roll on battery: from the first key frame after waking, 1.5 s of post-roll.
        assert!((15..=40).contains(&frames.len()), "{}", frames.len());
        assert!(
            is_run_of(&frames, &source),
            "{file}: the clip holds exactly the captured pictures"
        );
    }
    server.stop().await;
}

/// An MP4 file with AAC sound, as ffmpeg makes it: four seconds of a test picture and a tone.
/// `None` without ffmpeg (outside CI).
fn ffmpeg_movie_with_aac(path: &Path) -> Option<()> {
    let made = Command::new("ffmpeg")
        .args(["-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc=duration=4:size=320x240:rate=15")
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=16000:duration=4",
        ])
        .args([
            "-c:v", "libx264", "-g", "15", "-bf", "0", "-c:a", "aac", "-ac", "1",
        ])
        .arg(path)
        .output();
    match made {
        Ok(out) if out.status.success() => Some(()),
        _ if std::env::var_os("CI").is_some() => panic!("ffmpeg is required (see .ci/run)"),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_with_aac_sound_is_recorded_with_its_sound_as_it_came() {
    let dir = tempfile::tempdir().unwrap();
    let movie = dir.path().join("door.mp4");
    if ffmpeg_movie_with_aac(&movie).is_none() {
        return;
    }
    let source = mp4::read(&std::fs::read(&movie).unwrap()).unwrap();
    let source_sound = source.audio.expect("ffmpeg's file has sound");
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(12);
    let mut camera = camera_process(
        dir.path(),
        &format!(
            "profile = \"battery\"\n[source]\nkind = \"file\"\npath = {movie:?}\nloop = true\n\
             [clip]\npost_roll_s = 1.5\n"
        ),
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    camera.start().await;
    camera.post("/trigger").await;
    camera
        .wait_for("the event to upload", 20, |s| {
            s["events"] == 1 && s["uploaded"] == 2
        })
        .await;
    camera.stop();
    let (_, objects) = fetch_all(&mut owner, &camera_id).await;
    let clip = &clips(&objects)[0];
    check_clip_with_sound(dir.path(), clip, (320, 240), "aac");
    // Passed through: the same configuration, and every frame one of the file's.
    let sound = mp4::read(clip).unwrap().audio.unwrap();
    assert_eq!(sound.config, source_sound.config);
    assert!(sound.frames.len() >= 15, "{} frames", sound.frames.len());
    for frame in &sound.frames {
        assert!(
            source_sound.frames.iter().any(|f| f.data == frame.data),
            "a frame the file does not have"
        );
    }
    server.stop().await;
}

/// An H.265 camera's stream, as x265 makes it (four seconds, a key frame a second): as raw Annex
/// B and as an `hvc1` MP4. `None` without ffmpeg (outside CI).
fn ffmpeg_h265(dir: &Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let raw = dir.join("door.hevc");
    let movie = dir.join("door-h265.mp4");
    let made = Command::new("ffmpeg")
        .args(["-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i"])
        .arg("testsrc=duration=4:size=320x240:rate=15")
        .args(["-pix_fmt", "yuv420p", "-c:v", "libx265", "-x265-params"])
        .arg("log-level=none:keyint=15:min-keyint=15:bframes=0:scenecut=0")
        .args(["-f", "hevc"])
        .arg(&raw)
        .output();
    match made {
        Ok(out) if out.status.success() => {}
        _ if std::env::var_os("CI").is_some() => panic!("ffmpeg is required (see .ci/run)"),
        _ => return None,
    }
    let muxed = Command::new("ffmpeg")
        .args(["-nostdin", "-y", "-v", "error", "-i"])
        .arg(&raw)
        .args(["-c", "copy", "-tag:v", "hvc1"])
        .arg(&movie)
        .output()
        .ok()?;
    assert!(muxed.status.success());
    Some((raw, movie))
}

/// An H.265 source (an `.hevc` stream, an `hvc1` MP4) is recorded as H.265: the owner's clip is
/// an `hvc1` MP4 that ffprobe decodes frame for frame, of exactly the source's pictures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_source_is_recorded_as_h265() {
    let dir = tempfile::tempdir().unwrap();
    let Some((raw, movie)) = ffmpeg_h265(dir.path()) else {
        return;
    };
    let source = mp4::read(&std::fs::read(&movie).unwrap())
        .unwrap()
        .access_units;
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(14);
    for file in [&raw, &movie] {
        let name = file
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .replace('.', "-");
        let cam_dir = dir.path().join(&name);
        std::fs::create_dir_all(&cam_dir).unwrap();
        let mut camera = camera_process(
            &cam_dir,
            &format!(
                "profile = \"battery\"\n[source]\nkind = \"file\"\npath = {file:?}\nfps = 15\n\
                 loop = true\n[clip]\npost_roll_s = 1.5\n"
            ),
        );
        let (mut owner, camera_id) = owner_with_camera(&server.url, &name, &camera, rng).await;
        camera.start().await;
        camera.post("/trigger").await;
        camera
            .wait_for("the event to upload", 20, |s| {
                s["events"] == 1 && s["uploaded"] == 2
            })
            .await;
        camera.stop();
        let (_, objects) = fetch_all(&mut owner, &camera_id).await;
        let clip = &clips(&objects)[0];
        assert_eq!(
            mp4::read(clip).unwrap().config.codec(),
            keyhole_media::Codec::H265,
            "{name}"
        );
        let frames = check_clip(dir.path(), clip, (320, 240));
        assert!(frames.len() >= 15, "{name}: {} pictures", frames.len());
        let pictures = |au: &AccessUnit| -> Vec<Vec<u8>> {
            au.picture_nals()
                .map(|n| n[..n.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1)].to_vec())
                .collect()
        };
        for frame in &frames {
            assert!(
                source.iter().any(|s| pictures(s) == pictures(frame)),
                "{name}: a picture the source does not have"
            );
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_camera_and_absent_server_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let server = TestServer::start(&server_dir).await;
    let addr = server.url.trim_start_matches("http://").to_owned();
    let rng = &mut ChaCha20Rng::seed_from_u64(5);
    let mut camera = camera_process(
        dir.path(),
        "[source]\nkind = \"synthetic\"\nwidth = 640\nheight = 480\nfps = 15\n\
         [record]\nmode = \"events\"\n[clip]\npre_roll_s = 0.0\npost_roll_s = 0.6\nmax_s = 2.0\ncooldown_s = 0.0\n\
         [motion]\nenabled = false\n",
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;

    // The camera learns its record, then the server goes away.
    camera.start().await;
    camera.post("/trigger").await;
    camera
        .wait_for("a first upload", 20, |s| s["uploaded"] == 2)
        .await;
    server.stop().await;

    // Events while the server is away spool up; the camera is killed mid-recording, twice.
    for _ in 0..2 {
        if !camera.is_running() {
            camera.start().await;
        }
        for _ in 0..3 {
            camera.post("/trigger").await;
            camera.wait_for_pictures(13).await;
        }
        camera.post("/trigger").await;
        camera
            .wait_for("recording", 10, |s| s["recording"] == true)
            .await;
        camera.kill();
    }
    let spooled = camera.offline_status();
    let sealed = spooled["sealed"].as_u64().unwrap();
    assert!(spooled["spool_objects"].as_u64().unwrap() >= 4, "{spooled}");
    assert_eq!(spooled["dropped"], 0);

    // The server returns; the camera is killed again and again while uploading.
    let server = TestServer::start_on(&server_dir, &addr).await;
    for round in 0..4 {
        camera.start().await;
        camera.post("/trigger").await;
        camera.wait_for_pictures(2 + 3 * round).await;
        camera.kill();
    }
    camera.start().await;
    let status = camera
        .wait_for("the spool to drain", 30, |s| {
            s["spool_objects"] == 0 && s["recording"] == false
        })
        .await;
    camera.stop();
    let status_sealed = status["sealed"].as_u64().unwrap();
    assert!(status_sealed >= sealed);

    // Everything sealed is on the server exactly once, in one unbroken chain.
    let (report, objects) = fetch_all(&mut owner, &camera_id).await;
    let sequences: Vec<u64> = report
        .entries
        .iter()
        .map(|e| e.header.as_ref().unwrap().sequence)
        .collect();
    let final_sealed = camera.offline_status()["sealed"].as_u64().unwrap();
    assert_eq!(sequences, (1..=final_sealed).collect::<Vec<_>>());
    for clip in clips(&objects) {
        check_clip(dir.path(), &clip, (640, 480));
    }
    for event in events(&objects) {
        assert_eq!(event.kind, EventKind::External);
    }
    server.stop().await;
}

/// GStreamer's RTSP server on a loopback port, stopped when dropped; `None` (test skipped)
/// without GStreamer outside CI.
struct RtspServer(Child, u16);

impl RtspServer {
    /// Starts it on a port the server binds and reports.
    fn start() -> Option<Self> {
        Self::start_on(0)
    }

    /// Starts it on `port`, or any free one for 0 (a given port brings a stopped server back at
    /// the same address).
    fn start_on(port: u16) -> Option<Self> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/rtsp_server.py");
        // Debian's interpreter: it has the GObject bindings.
        let python = "/usr/bin/python3";
        let usable = Command::new(python)
            .args([
                "-c",
                "import gi; gi.require_version('GstRtspServer', '1.0'); \
                 from gi.repository import GstRtspServer",
            ])
            .output()
            .is_ok_and(|o| o.status.success());
        if !usable {
            assert!(
                std::env::var_os("CI").is_none(),
                "GStreamer's RTSP server is required (see .ci/run)"
            );
            eprintln!("GStreamer RTSP server not installed: RTSP test skipped");
            return None;
        }
        let mut child = Command::new(python)
            .arg(script)
            .arg(port.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let bound = line
            .trim()
            .strip_prefix("ready ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the RTSP server said {line:?}"));
        assert!(
            port == 0 || bound == port,
            "asked for {port}, bound {bound}"
        );
        Some(Self(child, bound))
    }
}

impl Drop for RtspServer {
    fn drop(&mut self) {
        self.0.kill().ok();
        self.0.wait().ok();
    }
}

/// A camera whose video comes from a program's standard output, as a Raspberry Pi camera's does
/// from `rpicam-vid`: here ffmpeg encoding a test pattern to H.264 in real time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_source_streams_h264_from_a_pipe() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffmpeg is required (see .ci/run)"
        );
        eprintln!("ffmpeg not installed: command source test skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(8);
    let mut camera = camera_process(
        dir.path(),
        "[source]\nkind = \"command\"\nfps = 15\ncommand = [\"ffmpeg\", \"-hide_banner\", \
         \"-loglevel\", \"error\", \"-re\", \"-f\", \"lavfi\", \"-i\", \
         \"testsrc2=size=320x240:rate=15\", \"-c:v\", \"libx264\", \"-tune\", \"zerolatency\", \"-g\", \"15\", \"-bf\", \"0\", \
         \"-f\", \"h264\", \"-\"]\n\
         [record]\nmode = \"events\"\n[clip]\npre_roll_s = 1.0\npost_roll_s = 1.5\n[motion]\nenabled = false\n",
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    let objects = ring_after_pre_roll(&mut camera, &mut owner, &camera_id).await;
    assert_eq!(events(&objects)[0].kind, EventKind::Doorbell);
    let frames = check_clip(dir.path(), &clips(&objects)[0], (320, 240));
    assert!((35..=80).contains(&frames.len()), "{} frames", frames.len());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtsp_camera_events_decrypt_to_playable_mp4() {
    let Some(rtsp) = RtspServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(6);
    let mut camera = camera_process(
        dir.path(),
        &format!(
            "[source]\nkind = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{}/door\"\n\
             [record]\nmode = \"events\"\n[clip]\npre_roll_s = 1.0\npost_roll_s = 1.5\n[motion]\nenabled = false\n",
            rtsp.1
        ),
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    let objects = ring_after_pre_roll(&mut camera, &mut owner, &camera_id).await;
    let events = events(&objects);
    assert_eq!(events[0].kind, EventKind::Doorbell);
    assert_eq!(&events[0].thumbnail_jpeg[..2], &[0xff, 0xd8]);
    let frames = check_clip(dir.path(), &clips(&objects)[0], (640, 360));
    // Pre-roll (1 s back to a key frame) and 1.5 s after the press, at 15 frames a second.
    assert!((35..=80).contains(&frames.len()), "{} frames", frames.len());
    server.stop().await;
}

/// An RTSP camera's sound is recorded with its pictures: AAC as it comes, G.711 (which no
/// browser plays from MP4) encoded as Opus on the camera; and an H.265 camera with G.711 is
/// recorded as H.265 with Opus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtsp_camera_s_sound_is_kept_aac_as_it_comes_and_g711_as_opus() {
    let Some(rtsp) = RtspServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(13);
    for (mount, codec, video) in [
        ("door-aac", "aac", keyhole_media::Codec::H264),
        ("door-pcmu", "opus", keyhole_media::Codec::H264),
        ("door-h265-pcmu", "opus", keyhole_media::Codec::H265),
    ] {
        let cam_dir = dir.path().join(mount);
        std::fs::create_dir_all(&cam_dir).unwrap();
        let mut camera = camera_process(
            &cam_dir,
            &format!(
                "[source]\nkind = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{}/{mount}\"\n\
                 [record]\nmode = \"events\"\n[clip]\npre_roll_s = 1.0\npost_roll_s = 1.5\n[motion]\nenabled = false\n",
                rtsp.1
            ),
        );
        let (mut owner, camera_id) = owner_with_camera(&server.url, mount, &camera, rng).await;
        // The pre-roll from the middle of the stream: a stream's sound may start a little
        // after its pictures.
        let objects = ring_after_pre_roll(&mut camera, &mut owner, &camera_id).await;
        let clip = &clips(&objects)[0];
        check_clip_with_sound(dir.path(), clip, (640, 360), codec);
        assert_eq!(mp4::read(clip).unwrap().config.codec(), video, "{mount}");
    }
    server.stop().await;
}

/// An H.265 camera sees motion on its H.264 substream (`motion_url`), as NVRs do: the ball moving
/// in the substream makes a motion event, with a thumbnail from the substream, whose clip is the
/// main stream's H.265; a doorbell press's thumbnail comes from the substream too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_camera_sees_motion_on_its_h264_substream() {
    let Some(rtsp) = RtspServer::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(15);
    let mut camera = camera_process(
        dir.path(),
        &format!(
            "[source]\nkind = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{0}/door-h265-pcmu\"\n\
             motion_url = \"rtsp://127.0.0.1:{0}/door\"\n[record]\nmode = \"events\"\n\
             [clip]\npre_roll_s = 0.5\npost_roll_s = 1.0\nmax_s = 3.0\n\
             [motion]\nenabled = true\nsensitivity = 100\n",
            rtsp.1
        ),
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    camera.start().await;
    camera
        .wait_for("a motion event to upload", 60, |s| {
            s["events"].as_u64() >= Some(1) && s["uploaded"].as_u64() >= Some(2)
        })
        .await;
    // A press takes its thumbnail from the substream too.
    let before = camera.status().await.unwrap()["events"].as_u64().unwrap();
    camera.post("/doorbell").await;
    camera
        .wait_for("the press to upload", 30, |s| {
            s["events"].as_u64() > Some(before) && s["spool_objects"] == 0
        })
        .await;
    camera.stop();
    let (_, objects) = fetch_all(&mut owner, &camera_id).await;
    let events = events(&objects);
    assert_eq!(events[0].kind, EventKind::Motion);
    assert_eq!(&events[0].thumbnail_jpeg[..2], &[0xff, 0xd8], "a thumbnail");
    let press = events
        .iter()
        .find(|e| e.kind == EventKind::Doorbell)
        .expect("the press");
    assert_eq!(
        &press.thumbnail_jpeg[..2],
        &[0xff, 0xd8],
        "the press's thumbnail"
    );
    let clip = &clips(&objects)[0];
    assert_eq!(
        mp4::read(clip).unwrap().config.codec(),
        keyhole_media::Codec::H265
    );
    check_clip(dir.path(), clip, (640, 360));
    server.stop().await;
}

/// The owner removes the camera while it runs: it stops by itself, saying what to do, instead of
/// retrying refused uploads for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_camera_stops_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(13);
    let mut camera = camera_process(
        dir.path(),
        "[source]\nkind = \"synthetic\"\n[record]\nmode = \"events\"\n\
         [clip]\npre_roll_s = 0.0\npost_roll_s = 1.0\n[motion]\nenabled = false\n",
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    let mut stderr = camera.start_with_stderr().await;
    camera
        .wait_for("the camera to start", 20, |s| s["uploaded"] == 0)
        .await;
    camera.post("/doorbell").await;
    camera
        .wait_for("the event to upload", 30, |s| s["uploaded"] == 2)
        .await;

    owner
        .remove_camera(&camera_id, true, keyhole_client::now())
        .await
        .unwrap();
    camera.post("/doorbell").await;
    let exited = camera.exited_within(30).await;
    assert!(!exited.success());
    let mut said = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut said).unwrap();
    assert!(
        said.contains("removed by its owner")
            && said.contains("reset it with `keyhole-camera reset` and pair it again"),
        "{said}"
    );
    server.stop().await;
}

/// The RTSP camera goes away mid-recording and comes back: the agent keeps running, says the
/// source is lost (status and an alert event), connects again by itself, records again, and the
/// owner sees the gap as events, not as silence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rtsp_camera_that_drops_is_followed_and_the_gap_is_shown() {
    let Some(rtsp) = RtspServer::start() else {
        return;
    };
    let port = rtsp.1;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(11);
    let mut camera = camera_process(
        dir.path(),
        &format!(
            "[source]\nkind = \"rtsp\"\nurl = \"rtsp://127.0.0.1:{port}/door\"\n\
             [record]\nmode = \"events\"\n[clip]\npre_roll_s = 0.0\npost_roll_s = 1.0\n[motion]\nenabled = false\n"
        ),
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    camera.start().await;
    camera.post("/doorbell").await;
    camera
        .wait_for("the first event to upload", 30, |s| s["uploaded"] == 2)
        .await;

    // The RTSP camera goes away: the agent says so and keeps running.
    drop(rtsp);
    let lost = camera
        .wait_for("the source to be lost", 30, |s| {
            s["source_lost_since"].is_string()
        })
        .await;
    assert!(lost["source_problem"].is_string(), "{lost}");
    // It comes back at the same address: the agent connects again by itself.
    let _rtsp = RtspServer::start_on(port).unwrap();
    camera
        .wait_for("the source to be back", 60, |s| {
            s["source_lost_since"].is_null()
        })
        .await;
    camera.post("/doorbell").await;
    // Two doorbell clips with their events, and the two alerts: lost, then back.
    camera
        .wait_for("the second event and the alerts to upload", 30, |s| {
            s["uploaded"] == 6
        })
        .await;
    camera.stop();

    let (report, objects) = fetch_all(&mut owner, &camera_id).await;
    assert!(report.is_clean(), "{report}");
    let events = events(&objects);
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Doorbell,
            EventKind::Alert,
            EventKind::Alert,
            EventKind::Doorbell
        ]
    );
    assert!(
        events[1].note.starts_with("video source lost: "),
        "{:?}",
        events[1].note
    );
    assert!(
        events[2].note.starts_with("video source back after "),
        "{:?}",
        events[2].note
    );
    assert_eq!(
        events[2].started_at, events[1].started_at,
        "the gap starts at the loss"
    );
    assert!(events[2].duration_ms > 0);
    // Recording resumed: the clip after the gap plays.
    check_clip(dir.path(), &clips(&objects)[1], (640, 360));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_on_request_from_a_sleeping_camera_plays_and_is_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(7);
    // A battery camera: asleep, yet it answers a request for live view.
    let mut camera = camera_process(
        dir.path(),
        "profile = \"battery\"\n[source]\nkind = \"synthetic\"\nwidth = 320\nheight = 240\nfps = 15\n",
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    camera.start().await;
    owner.sync_camera(&camera_id).await.unwrap();

    let mut video = Vec::new();
    let outcome = owner
        .watch_live(&camera_id, 20, Some(Duration::from_secs(3)), &mut video)
        .await
        .unwrap();
    assert!(outcome.frames >= 30, "{outcome:?}");
    assert_eq!(outcome.bytes, video.len() as u64);
    // Fragmented MP4 that plays from its first picture, with its sound.
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &video).unwrap();
    if let Some((pictures, w, h)) = keyhole_testkit::ffprobe(&path) {
        assert_eq!((w, h), (320, 240));
        assert!(pictures >= 30, "{pictures} pictures in 3 s");
    }
    if let Some(codec) = keyhole_testkit::assert_sound_in_step(&path, 0.1) {
        assert_eq!(codec, "opus");
    }
    // Nothing was recorded: live view is not stored.
    let status = camera.status().await.unwrap();
    assert_eq!(status["sealed"], 0, "{status}");
    camera.stop();
    assert!(owner.verify(&camera_id).await.unwrap().entries.is_empty());
    server.stop().await;
}

/// An H.265 camera's live view is H.265: fragmented MP4 with an `hvc1` track, which ffprobe
/// decodes from its first picture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h265_camera_streams_live_as_h265() {
    let dir = tempfile::tempdir().unwrap();
    let Some((raw, _)) = ffmpeg_h265(dir.path()) else {
        return;
    };
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(16);
    let mut camera = camera_process(
        dir.path(),
        &format!(
            "profile = \"battery\"\n[source]\nkind = \"file\"\npath = {raw:?}\nfps = 15\n\
             loop = true\n"
        ),
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    camera.start().await;
    owner.sync_camera(&camera_id).await.unwrap();
    let mut video = Vec::new();
    let outcome = owner
        .watch_live(&camera_id, 20, Some(Duration::from_secs(3)), &mut video)
        .await
        .unwrap();
    assert!(outcome.frames >= 30, "{outcome:?}");
    assert!(
        video.windows(4).any(|w| w == b"hvcC"),
        "the stream's track is H.265"
    );
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &video).unwrap();
    if let Some((pictures, w, h)) = keyhole_testkit::ffprobe(&path) {
        assert_eq!((w, h), (320, 240));
        assert!(pictures >= 30, "{pictures} pictures in 3 s");
    }
    camera.stop();
    server.stop().await;
}

/// A loopback TCP proxy in front of the server whose camera-to-server direction can be slowed
/// to a crawl, so a test can stop the camera in the middle of an upload.
struct SlowProxy {
    url: String,
    slow: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Holds everything the camera sends (after noting its request lines) until cleared.
    stalled: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Bumped to drop every open connection (at the camera's next bytes).
    cut: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Every request line the camera sent (`METHOD /path`), in order.
    requests: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

/// Finds the request lines (`METHOD /path HTTP/1.1`) in what a client sent so far, and notes
/// each `Upload-Offset` header as `resume <offset>`.
fn request_lines(sent: &[u8], scanned: &mut usize, out: &std::sync::Mutex<Vec<String>>) {
    const END: &[u8] = b" HTTP/1.1\r\n";
    while let Some(at) = sent[*scanned..]
        .windows(END.len())
        .position(|w| w == END)
        .map(|p| p + *scanned)
    {
        // The line starts at its method (a body before it may not end with a newline).
        let start = ["GET /", "PUT /", "POST /", "DELETE /"]
            .iter()
            .filter_map(|m| {
                sent[*scanned..at]
                    .windows(m.len())
                    .rposition(|w| w == m.as_bytes())
                    .map(|p| p + *scanned)
            })
            .max()
            .unwrap_or(at);
        out.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&sent[start..at]).into_owned());
        *scanned = at + END.len();
        let head_end = sent[*scanned..]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(sent.len(), |p| p + *scanned);
        let head = String::from_utf8_lossy(&sent[*scanned..head_end]).to_lowercase();
        if let Some(offset) = head.lines().find_map(|l| l.strip_prefix("upload-offset: ")) {
            out.lock().unwrap().push(format!("resume {offset}"));
        }
    }
}

impl SlowProxy {
    async fn start(target: &str) -> Self {
        use std::sync::atomic::Ordering;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let slow = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stalled = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let requests = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let cutting = cut.clone();
        let target = target.trim_start_matches("http://").to_owned();
        let flag = slow.clone();
        let stall = stalled.clone();
        let log = requests.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(&target).await else {
                    continue;
                };
                let flag = flag.clone();
                let stall = stall.clone();
                let log = log.clone();
                let cutting = cutting.clone();
                let generation = cutting.load(Ordering::Relaxed);
                tokio::spawn(async move {
                    let (mut client_rx, mut client_tx) = client.into_split();
                    let (mut server_rx, mut server_tx) = server.into_split();
                    let up = async move {
                        let mut buf = vec![0u8; 4096];
                        let (mut sent, mut scanned) = (Vec::new(), 0);
                        loop {
                            let n = client_rx.read(&mut buf).await.unwrap_or(0);
                            if n == 0 {
                                break;
                            }
                            if cutting.load(Ordering::Relaxed) != generation {
                                break;
                            }
                            sent.extend_from_slice(&buf[..n]);
                            request_lines(&sent, &mut scanned, &log);
                            while stall.load(Ordering::Relaxed) {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            if flag.load(Ordering::Relaxed) {
                                // About 20 KB/s.
                                tokio::time::sleep(Duration::from_millis(200)).await;
                            }
                            if server_tx.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        server_tx.shutdown().await.ok();
                    };
                    let down = async move {
                        tokio::io::copy(&mut server_rx, &mut client_tx).await.ok();
                    };
                    // A cut ends both directions at once.
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                    }
                });
            }
        });
        Self {
            url,
            slow,
            stalled,
            cut,
            requests,
            task,
        }
    }
}

impl Drop for SlowProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn partial_uploads(server_dir: &Path) -> Vec<u64> {
    std::fs::read_dir(server_dir.join("blobs/partial"))
        .map(|d| {
            d.filter_map(|e| e.ok()?.metadata().ok().map(|m| m.len()))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits until `proxy` has seen a request line starting with `prefix` after the first `skip`.
async fn seen(proxy: &SlowProxy, skip: usize, prefix: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let requests = proxy.requests.lock().unwrap().clone();
        if let Some(i) = requests[skip.min(requests.len())..]
            .iter()
            .position(|r| r.starts_with(prefix))
        {
            return skip + i;
        }
        assert!(Instant::now() < deadline, "no {prefix} in {requests:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_cut_or_killed_midway_resume_and_arrive_once() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let server = TestServer::start(&server_dir).await;
    let proxy = SlowProxy::start(&server.url).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(8);
    let mut camera = camera_process(
        dir.path(),
        "[source]\nkind = \"synthetic\"\nwidth = 640\nheight = 480\nfps = 15\n\
         [record]\nmode = \"events\"\n[clip]\npre_roll_s = 2.0\npost_roll_s = 2.0\n\
         [motion]\nenabled = false\n",
    );
    // The camera knows the server by the proxy's address.
    let (mut owner, camera_id) =
        owner_with_camera_via(&server.url, &proxy.url, "ana", &camera, rng).await;
    camera.start().await;
    camera.wait_for_pictures(30).await;

    // 1. A trigger's event goes at once; the connection then drops in the middle of its clip:
    //    the camera resumes at the server's offset.
    proxy.slow.store(true, Ordering::Relaxed);
    camera.post("/trigger").await;
    let press = seen(&proxy, 0, "PUT /v1/objects/").await;
    let single = seen(&proxy, press + 1, "PUT /v1/objects/").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while !partial_uploads(&server_dir).iter().any(|len| *len > 0) {
        assert!(Instant::now() < deadline, "the single upload did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    proxy.cut.fetch_add(1, Ordering::Relaxed);
    proxy.slow.store(false, Ordering::Relaxed);
    camera
        .wait_for("the first event to upload", 30, |s| s["uploaded"] == 2)
        .await;
    let requests = proxy.requests.lock().unwrap()[single..].to_vec();
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with("resume ") && r != "resume 0"),
        "resumed at an offset: {requests:?}"
    );

    // 2. The camera is killed in the middle of an upload, and restarted.
    proxy.slow.store(true, Ordering::Relaxed);
    let before = proxy.requests.lock().unwrap().len();
    camera.post("/trigger").await;
    let press = seen(&proxy, before, "PUT /v1/objects/").await;
    seen(&proxy, press + 1, "PUT /v1/objects/").await;
    camera.wait_for_pictures(6).await;
    camera.kill();
    let spooled = camera.offline_status();
    assert_eq!(spooled["sealed"], 4, "{spooled}");
    assert!(
        spooled["last_upload"].is_string(),
        "stopped, it still tells when the server last took an object: {spooled}"
    );
    assert_eq!(
        spooled["spool_objects"], 1,
        "the clip waits in the spool (its event went at once)"
    );
    proxy.slow.store(false, Ordering::Relaxed);
    camera.start().await;
    camera
        .wait_for("the spool to drain", 30, |s| s["spool_objects"] == 0)
        .await;
    camera.stop();

    let (report, objects) = fetch_all(&mut owner, &camera_id).await;
    let sequences: Vec<u64> = report
        .entries
        .iter()
        .map(|e| e.header.as_ref().unwrap().sequence)
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4], "each object stored exactly once");
    for clip in clips(&objects) {
        check_clip(dir.path(), &clip, (640, 480));
    }
    server.stop().await;
}

/// An upload that does not move (a backlog after an outage, or an uplink at a crawl) never keeps
/// clips from being sealed: the uploader holds the agent only to pick and settle each upload,
/// not while its bytes travel, and so does the sender of the camera's heads (here one a second,
/// each stuck too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_that_stalls_does_not_hold_up_sealing() {
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let proxy = SlowProxy::start(&server.url).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(21);
    let mut camera = camera_process(
        dir.path(),
        "[source]\nkind = \"synthetic\"\n[record]\nmode = \"events\"\n\
         [clip]\npre_roll_s = 1.0\npost_roll_s = 2.0\n[motion]\nenabled = false\n\
         [heads]\ninterval_s = 1\n",
    );
    let (mut owner, camera_id) =
        owner_with_camera_via(&server.url, &proxy.url, "ana", &camera, rng).await;
    camera.start().await;
    camera.wait_for_pictures(20).await;

    // The first event goes at once; then the proxy holds whatever the camera sends, so the
    // upload of the event's clip starts and does not move.
    camera.post("/trigger").await;
    camera
        .wait_for("the first event to upload", 30, |s| s["uploaded"] == 1)
        .await;
    let before = proxy.requests.lock().unwrap().len();
    proxy.stalled.store(true, Ordering::Relaxed);
    seen(&proxy, before, "PUT /v1/objects/").await;

    // A second event meanwhile: it and its clip are sealed while the first clip is stuck.
    camera.post("/trigger").await;
    let during = camera
        .wait_for("the second event and its clip to be sealed", 30, |s| {
            s["sealed"] == 4
        })
        .await;
    assert_eq!(
        during["uploaded"], 1,
        "the first clip was still on its way: {during}"
    );
    proxy.stalled.store(false, Ordering::Relaxed);
    camera
        .wait_for("everything to upload", 60, |s| s["uploaded"] == 4)
        .await;
    camera.stop();
    let (report, _) = fetch_all(&mut owner, &camera_id).await;
    let sequences: Vec<u64> = report
        .entries
        .iter()
        .map(|e| e.header.as_ref().unwrap().sequence)
        .collect();
    assert_eq!(sequences, [1, 2, 3, 4]);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wired_camera_records_continuously_and_marks_events_on_the_segments() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(9);
    let mut camera = camera_process(
        dir.path(),
        "[source]\nkind = \"synthetic\"\nwidth = 320\nheight = 240\nfps = 15\n\
         [record]\nsegment_s = 2.0\n[clip]\npost_roll_s = 1.0\ncooldown_s = 30.0\n",
    );
    let (mut owner, camera_id) = owner_with_camera(&server.url, "ana", &camera, rng).await;
    camera.start().await;
    camera.wait_for_pictures(45).await;
    camera.post("/doorbell").await;
    camera
        .wait_for("the doorbell mark", 20, |s| s["events"] == 1)
        .await;
    camera.wait_for_pictures(30).await;
    camera.stop();

    let (report, objects) = fetch_all(&mut owner, &camera_id).await;
    let headers: Vec<_> = report
        .entries
        .iter()
        .map(|e| e.header.clone().unwrap())
        .collect();
    let clip_headers: Vec<_> = headers
        .iter()
        .filter(|h| h.kind == ObjectKind::Clip)
        .collect();
    assert!(clip_headers.len() >= 3, "{} segments", clip_headers.len());
    // Back to back: each segment starts where the one before ended (the capture clock).
    let clips = clips(&objects);
    for (i, clip) in clips.iter().enumerate() {
        let frames = check_clip_with_sound(dir.path(), clip, (320, 240), "opus");
        let length_ms = frames.len() as u64 * 1000 / 15;
        if let Some(next) = clip_headers.get(i + 1) {
            let gap =
                next.captured_at.0 as i64 - (clip_headers[i].captured_at.0 + length_ms) as i64;
            assert!(
                gap.abs() <= 70,
                "segment {i} and the next are {gap} ms apart"
            );
        }
    }
    // The doorbell is an event on the segment it happened in, sealed at once, before that
    // segment ends.
    let events = events(&objects);
    assert_eq!(events.len(), 1);
    let mark = &events[0];
    assert_eq!(mark.kind, EventKind::Doorbell);
    assert_eq!(&mark.thumbnail_jpeg[..2], &[0xff, 0xd8]);
    let segment = headers
        .iter()
        .position(|h| Some(h.object_id) == mark.clip)
        .expect("the mark names a stored segment");
    let event_position = headers
        .iter()
        .position(|h| h.kind == ObjectKind::Event)
        .unwrap();
    assert!(event_position < segment, "sealed before its segment");
    let start = headers[segment].captured_at.0;
    assert!(mark.started_at.0 >= start && mark.started_at.0 <= start + 2_100);
    assert_eq!(mark.duration_ms, 0, "sealed as it began");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_battery_camera_sends_a_press_at_once_then_its_clip() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let proxy = SlowProxy::start(&server.url).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(10);
    let mut camera = camera_process(
        dir.path(),
        "profile = \"battery\"\n[source]\nkind = \"synthetic\"\n[clip]\npost_roll_s = 1.0\n",
    );
    let (mut owner, camera_id) =
        owner_with_camera_via(&server.url, &proxy.url, "ana", &camera, rng).await;
    camera.start().await;
    camera.wait_for_pictures(15).await;
    let before = proxy.requests.lock().unwrap().len();
    camera.post("/doorbell").await;
    camera
        .wait_for("the event to upload", 20, |s| s["uploaded"] == 2)
        .await;
    let sent: Vec<String> = proxy.requests.lock().unwrap()[before..]
        .iter()
        .filter(|r| !r.starts_with("GET /v1/live/wanted"))
        .cloned()
        .collect();
    // The first record the camera sees is new to it, so it follows the roster chain once too.
    let roster = format!("GET /v1/cameras/{camera_id}/roster");
    let record = format!("GET /v1/cameras/{camera_id}/record");
    assert_eq!(
        sent.iter()
            .filter(|r| **r != roster)
            .map(|r| if r.starts_with("PUT /v1/objects/") {
                "PUT object"
            } else {
                r
            })
            .collect::<Vec<_>>(),
        [record.as_str(), "PUT object", record.as_str(), "PUT object"],
        "a record check before each sealing: the press's event at once, then its clip"
    );
    camera.stop();
    let (report, objects) = fetch_all(&mut owner, &camera_id).await;
    let kinds: Vec<ObjectKind> = objects.iter().map(|(k, _)| *k).collect();
    assert_eq!(kinds, [ObjectKind::Event, ObjectKind::Clip]);
    let press = &events(&objects)[0];
    assert_eq!(press.kind, EventKind::Doorbell);
    assert_eq!(press.clip, Some(report.entries[1].listed_id));
    assert_eq!(&press.thumbnail_jpeg[..2], &[0xff, 0xd8], "a thumbnail");
    server.stop().await;
}

/// How many of `pictures` the motion detector, at its default settings, reports motion in,
/// decoding them as the camera does.
fn motion_pictures(mut pictures: Vec<AccessUnit>) -> (usize, usize) {
    use keyhole_camera::video::decode::FrameDecoder;
    use keyhole_camera::video::motion::{MotionDetector, MotionSettings};
    let mut decoder = FrameDecoder::new(64, 36).unwrap();
    let mut motion = MotionDetector::new(MotionSettings::default());
    let mut seen = 0;
    for au in &mut pictures {
        if let Some(frame) = decoder.decode_frame(au).unwrap()
            && motion.detect(&frame.picture(false).grid)
        {
            seen += 1;
        }
    }
    (seen, pictures.len())
}

/// `seconds` of ffmpeg's `scene` (a lavfi filter graph ending in one video), encoded as the
/// H.264 an IP camera sends, read back as pictures.
fn ffmpeg_scene(dir: &Path, scene: &str, seconds: u32) -> Vec<AccessUnit> {
    let path = dir.join("scene.mp4");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-filter_complex", scene, "-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-profile:v",
            "baseline",
            "-g",
            "15",
            "-bf",
            "0",
        ])
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg made {scene}");
    let video = mp4::read(&std::fs::read(&path).unwrap()).unwrap();
    let mut pictures = video.access_units;
    // The decoder needs the parameter sets first, as a stream carries them.
    pictures[0].nals.splice(0..0, video.config.parameter_sets());
    pictures
}

/// Motion at the default settings, on real H.264 decoded as the camera decodes it: a
/// person-sized object (a third of the picture high) crossing a still scene is seen, at 640x360
/// and at 1080p; a still scene, with or without sensor noise, and the synthetic scene with only
/// its clock running, are quiet; the synthetic scene's visitor is seen.
#[test]
fn default_motion_sees_a_person_sized_object_and_not_a_still_or_noisy_scene() {
    if Command::new("ffmpeg").arg("-version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "ffmpeg is required (see .ci/run)"
        );
        eprintln!("ffmpeg not installed: motion test skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let walker = |size: &str, w: u32, h: u32, noise: u32| {
        format!(
            "smptebars=s={size}:r=15[bg];color=c=0xb0b0b0:s={w}x{h}:r=15[person];\
             [bg][person]overlay=x='mod(t*{speed},W+w)-w':y=H/3,noise=alls={noise}:allf=t+u",
            speed = w * 2,
        )
    };
    for (what, scene, seconds) in [
        (
            "someone crossing at 640x360",
            walker("640x360", 40, 120, 8),
            8,
        ),
        (
            "someone crossing at 1080p",
            walker("1920x1080", 120, 360, 8),
            8,
        ),
    ] {
        let (seen, of) = motion_pictures(ffmpeg_scene(dir.path(), &scene, seconds));
        assert!(seen * 2 > of, "{what}: motion in {seen} of {of} pictures");
    }
    for (what, scene) in [
        ("a still scene", "smptebars=s=640x360:r=15".to_owned()),
        (
            "a still scene with strong sensor noise",
            "smptebars=s=640x360:r=15,noise=alls=30:allf=t+u".to_owned(),
        ),
    ] {
        let (seen, of) = motion_pictures(ffmpeg_scene(dir.path(), &scene, 10));
        assert_eq!(seen, 0, "{what}: motion in {seen} of {of} pictures");
    }
    let synthetic = |moving: bool| {
        use keyhole_camera::video::synthetic::{SyntheticCamera, SyntheticSettings};
        let mut camera = SyntheticCamera::new(SyntheticSettings {
            width: 640,
            height: 480,
            fps: 15,
            keyframe_interval: 15,
        })
        .unwrap();
        camera.set_motion(moving);
        (0..150)
            .map(|_| camera.next_frame().unwrap())
            .collect::<Vec<_>>()
    };
    let (seen, of) = motion_pictures(synthetic(false));
    assert_eq!(seen, 0, "the synthetic scene's clock alone: {seen} of {of}");
    let (seen, of) = motion_pictures(synthetic(true));
    assert!(seen * 2 > of, "the synthetic visitor: {seen} of {of}");
}
