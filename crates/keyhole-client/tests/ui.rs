//! The web viewer (`keyhole ui`) in a real browser: a seeded account (a camera with three events,
//! one clip altered on the server), the `keyhole ui` command serving it, and Debian's Chromium
//! driven by playwright-core (`tests/browser/viewer.mjs`) through the timeline, the filters, the
//! player, live view from a running camera, a phone-sized screen, the devices and audit pages,
//! removing one camera keeping its footage and another deleting it, revoking a device, and the
//! alert when that device signs in again behind the owner's back, pairing a camera, adding a
//! device by comparing codes, and sharing a camera with another account and withdrawing it. Screenshots are kept under the build folder
//! (`<target>/ui-screenshots`). Before that, the viewer's door is checked from here: no cookie,
//! a bad token or another `Host` gets nothing, and a range of a clip is exactly those bytes of
//! the camera's MP4; and, without the browser, the viewer offline and what playing found kept.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::RunningCamera;
use keyhole_camera::video::decode::{FrameDecoder, thumbnail_jpeg};
use keyhole_camera::video::synthetic::{SyntheticCamera, SyntheticSettings};
use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::Owner;
use keyhole_client::core::event::{EventDetails, EventKind};
use keyhole_client::core::recovery::KdfParams;
use keyhole_client::core::roster::DeviceEntry;
use keyhole_client::core::{DeviceId, DeviceKeys, ObjectId, Timestamp};
use keyhole_http::Endpoint;
use keyhole_testkit::process::{ServerProcess, binary};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const PASSPHRASE: &str = "a long key store passphrase";

/// The browser test's folder, with playwright-core installed (`npm ci` there, as `.ci/run`
/// does), and Debian's Chromium; `None` (skipped) when either is missing outside CI.
fn browser() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let ready = dir.join("node_modules/playwright-core").exists()
        && Path::new("/usr/lib/chromium/chromium").exists()
        && Command::new("node").arg("--version").output().is_ok();
    if !ready {
        assert!(
            std::env::var_os("CI").is_none(),
            "the browser test needs node, Debian's chromium and `npm ci` in {}",
            dir.display()
        );
        eprintln!("node, chromium or playwright-core missing: skipped (CI installs them)");
        return None;
    }
    Some(dir)
}

/// A real H.264 clip from the synthetic camera, as MP4, and a JPEG of its first picture.
fn synthetic_clip(seconds: usize) -> (Vec<u8>, Vec<u8>) {
    let settings = SyntheticSettings::default();
    let mut camera = SyntheticCamera::new(settings).unwrap();
    camera.set_motion(true);
    let pictures: Vec<_> = (0..seconds * settings.fps as usize)
        .map(|_| camera.next_frame().unwrap())
        .collect();
    let mut decoder = FrameDecoder::new(1, 1).unwrap();
    let picture = decoder.decode(&pictures[0], true).unwrap().unwrap();
    (
        keyhole_media::mp4::write(&pictures, None).unwrap(),
        thumbnail_jpeg(&picture).unwrap(),
    )
}

/// Where the server keeps a blob.
fn blob_path(data: &Path, id: &ObjectId) -> PathBuf {
    let hex = id.to_string();
    data.join("blobs/objects").join(&hex[..2]).join(hex)
}

/// Pairs a camera agent (its state in `state`) to `owner`'s account as `name`.
async fn pair(
    owner: &mut Owner,
    server: &str,
    state: &Path,
    name: &str,
    rng: &mut ChaCha20Rng,
) -> (Agent, keyhole_client::core::CameraId) {
    let now = Timestamp(u64::try_from(keyhole_server::now_ms()).unwrap());
    let code = owner.start_pairing(server, None, rng).await.unwrap();
    let agent = Agent::pair(&code.to_text(), state, AgentSettings::default(), rng)
        .await
        .unwrap();
    let id = owner.finish_pairing(&code, name, now, rng).await.unwrap();
    (agent, id)
}

/// Records a clip of `seconds` and its event at `at`, and uploads both; returns the event's
/// id, the clip's id and the clip's MP4.
async fn record(
    camera: &mut Agent,
    kind: EventKind,
    seconds: usize,
    at: Timestamp,
    note: &str,
    rng: &mut ChaCha20Rng,
) -> (ObjectId, ObjectId, Vec<u8>) {
    let (video, thumbnail) = synthetic_clip(seconds);
    let clip = camera.record_clip(&video, at, rng).await.unwrap();
    let details = EventDetails {
        kind,
        started_at: at,
        duration_ms: u32::try_from(seconds * 1000).unwrap(),
        clip: Some(clip),
        note: note.to_owned(),
        thumbnail_jpeg: thumbnail,
    };
    let event = camera.record_event(&details, rng).await.unwrap();
    camera.upload_pending().await.unwrap();
    (event, clip, video)
}

/// What [`seed`] made.
struct Seeded {
    store: PathBuf,
    /// Front door's clips and their MP4.
    clips: Vec<(ObjectId, Vec<u8>)>,
    /// The event whose clip the server altered.
    tampered_event: ObjectId,
    /// Front door's agent, to run.
    front: Agent,
    tablet: DeviceId,
    /// Another account, "bob", which accepts shares from "ana".
    bob: Owner,
    ana_code: String,
}

/// Seeds an account: "Front door" with three events (motion, doorbell, motion) with clips, the
/// last clip then altered on the server, "Garage" with one motion event, and a second device,
/// "tablet"; and another account, "bob", that accepts shares from it.
async fn seed(dir: &Path, server: &ServerProcess, data: &Path) -> Seeded {
    let rng = &mut ChaCha20Rng::seed_from_u64(7);
    let endpoint = Endpoint {
        url: server.url.clone(),
        pin: None,
        allow_plain_http: false,
    };
    let now = Timestamp(u64::try_from(keyhole_server::now_ms()).unwrap());
    let (mut owner, _phrase) = Owner::create(
        &endpoint,
        "ana",
        "correct horse battery",
        "laptop",
        KdfParams::MINIMUM,
        now,
        rng,
    )
    .await
    .unwrap();
    let (mut front, front_id) = pair(
        &mut owner,
        &server.url,
        &dir.join("front"),
        "Front door",
        rng,
    )
    .await;
    let mut clips = Vec::new();
    let mut events = Vec::new();
    for (n, kind) in [EventKind::Motion, EventKind::Doorbell, EventKind::Motion]
        .into_iter()
        .enumerate()
    {
        let at = Timestamp(now.0 + n as u64 * 60_000);
        let note = format!("front path, event {}", n + 1);
        let (event, clip, video) = record(&mut front, kind, 3 + n, at, &note, rng).await;
        clips.push((clip, video));
        events.push(event);
    }
    // A second camera, with one event.
    let (mut garage, garage_id) =
        pair(&mut owner, &server.url, &dir.join("garage"), "Garage", rng).await;
    record(&mut garage, EventKind::Motion, 3, now, "driveway", rng).await;
    owner.sync_camera(&front_id).await.unwrap();
    owner.sync_camera(&garage_id).await.unwrap();

    // A second device, "tablet", signed in and enrolled.
    let tablet = DeviceKeys::generate(rng);
    let tablet_id = DeviceId::random(rng);
    let signed_in = reqwest::Client::new()
        .post(format!("{}/v1/login", server.url))
        .json(&serde_json::json!({
            "username": "ana",
            "password": "correct horse battery",
            "device_id": tablet_id.to_string(),
        }))
        .send()
        .await
        .unwrap();
    assert!(signed_in.status().is_success());
    let entry = DeviceEntry {
        id: tablet_id,
        name: "tablet".into(),
        added_at: now,
        signing_key: tablet.signing.public(),
        hpke_key: tablet.hpke.public(),
    };
    owner.add_device(entry, now, rng).await.unwrap();

    // The server alters one byte in the middle of the last clip.
    let path = blob_path(data, &clips[2].0);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();

    let ana_code = owner.account_code().to_string();
    let (mut bob, _) = Owner::create(
        &endpoint,
        "bob",
        "correct horse battery",
        "phone",
        KdfParams::MINIMUM,
        now,
        rng,
    )
    .await
    .unwrap();
    bob.accept_shares_from("ana", &ana_code).await.unwrap();

    let store = dir.join("device.keys");
    owner
        .save_key_store(&store, PASSPHRASE, KdfParams::MINIMUM, rng)
        .unwrap();
    Seeded {
        store,
        clips,
        tampered_event: events[2],
        front,
        tablet: tablet_id,
        bob,
        ana_code,
    }
}

/// `keyhole cameras --json` on the store.
fn cameras(store: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_keyhole"))
        .arg("--store")
        .arg(store)
        .args(["cameras", "--json"])
        .env("KEYHOLE_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A running `keyhole ui`, stopped when dropped (also when a check fails).
struct Ui(std::process::Child);

impl Drop for Ui {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `keyhole ui` on the seeded store; returns it and the link it printed.
fn start_ui(store: &Path) -> (Ui, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyhole"))
        .arg("--store")
        .arg(store)
        .args(["ui", "--no-open"])
        .env("KEYHOLE_PASSPHRASE", PASSPHRASE)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let link = first
        .strip_prefix("keyhole ui: ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_owned();
    std::thread::spawn(move || lines.for_each(drop));
    (Ui(child), link)
}

/// The viewer's door, from outside the browser.
async fn door(link: &str, camera: &str, clip: &ObjectId, mp4: &[u8]) {
    let url = reqwest::Url::parse(link).unwrap();
    let name = url.host_str().unwrap().to_owned();
    let port = url.port().unwrap();
    // A name of the viewer's own under .localhost, so its cookie goes to no other service.
    assert!(name.ends_with(".localhost"), "{link}");
    let origin = format!("http://{name}:{port}");
    // Browsers resolve *.localhost to this machine; the test's client is told to.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve(&name, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .build()
        .unwrap();
    // Nothing without the cookie, nothing for a wrong token.
    let bare = http
        .get(format!("{origin}/api/timeline"))
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    let wrong = http
        .get(format!("{origin}/?token={}", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    // The link sets the cookie and sends the browser on without the token.
    let entry = http.get(link).send().await.unwrap();
    assert_eq!(entry.status(), 303);
    assert_eq!(entry.headers()["location"], "/");
    let cookie = entry.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    assert!(!cookie.contains("Domain"), "host-only: {cookie}");
    let cookie = cookie.split(';').next().unwrap().to_owned();
    // The cookie is a session secret of its own, and the link is dead once traded.
    let token = url.query().unwrap().strip_prefix("token=").unwrap();
    assert!(
        !cookie.contains(token),
        "the cookie is not the link's token"
    );
    let again = http.get(link).send().await.unwrap();
    assert_eq!(again.status(), 401, "a link opens the viewer once");
    // The viewer answers only at its own name, not at 127.0.0.1.
    let bare_ip = http
        .get(format!("http://127.0.0.1:{port}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(bare_ip.status(), 403);
    let page = http
        .get(format!("{origin}/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
    // The cookie is no good for another host name (a rebinding page).
    let rebound = http
        .get(format!("{origin}/api/timeline"))
        .header("cookie", &cookie)
        .header("host", "attacker.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    // A range of a clip is exactly those bytes of the camera's MP4, and the whole is the MP4.
    let clip_url = format!("{origin}/api/clips/{camera}/{clip}");
    // From the middle: past the first chunk, across a chunk boundary when there is one.
    let from = mp4.len() / 2;
    let part = http
        .get(&clip_url)
        .header("cookie", &cookie)
        .header("range", format!("bytes={from}-{}", from + 99))
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes {from}-{}/{}", from + 99, mp4.len()).as_str()
    );
    assert_eq!(part.bytes().await.unwrap(), mp4[from..from + 100]);
    // From the first chunk, which comes with the header when the clip is opened.
    let start = http
        .get(&clip_url)
        .header("cookie", &cookie)
        .header("range", "bytes=10-109")
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), 206);
    assert_eq!(start.bytes().await.unwrap(), mp4[10..110]);
    let whole = http
        .get(&clip_url)
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(whole.status(), 200);
    assert!(
        whole.bytes().await.unwrap() == mp4,
        "the whole clip is the MP4"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_works_in_a_real_browser() {
    let Some(browser) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = ServerProcess::spawn(&data);
    let Seeded {
        store,
        clips,
        tampered_event,
        front,
        tablet,
        mut bob,
        ana_code,
    } = seed(dir.path(), &server, &data).await;
    // Front door runs (its synthetic scene, recording nothing more) so it can stream live.
    let running = RunningCamera::start(front, &dir.path().join("front"), None).await;
    // The camera's id, as the viewer's clip links name it.
    let camera = cameras(&store)
        .iter()
        .find(|c| c["name"] == "Front door")
        .unwrap()["camera_id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A link opens the viewer once: the door is checked on a run of its own.
    {
        let (_door_ui, door_link) = start_ui(&store);
        door(&door_link, &camera, &clips[0].0, &clips[0].1).await;
    }
    let (ui, link) = start_ui(&store);

    // A new camera for the page to pair.
    let porch = dir.path().join("porch.toml");
    std::fs::write(
        &porch,
        format!("state_dir = {:?}\n", dir.path().join("porch")),
    )
    .unwrap();
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let run = Command::new("node")
        .arg("viewer.mjs")
        .arg(&link)
        .arg(&shots)
        .current_dir(&browser)
        .env("EXPECT_EVENTS", "4")
        .env("TAMPERED_EVENT", tampered_event.to_string())
        .env("SERVER_URL", &server.url)
        .env("TABLET_ID", tablet.to_string())
        .env("CAMERA_BIN", binary("keyhole-camera"))
        .env("CAMERA_CONFIG", &porch)
        .env("KEYHOLE_BIN", env!("CARGO_BIN_EXE_keyhole"))
        .env("JOIN_STORE", dir.path().join("phone.keys"))
        .env("ANA_CODE", &ana_code)
        .env("BOB_CODE", bob.account_code().to_string())
        .output()
        .unwrap();
    drop(ui);
    println!("{}", String::from_utf8_lossy(&run.stdout));
    assert!(
        run.status.success(),
        "the browser test failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    // The page's push to talk reached the camera's speaker: the fake microphone's beep.
    let status = running
        .status_when(|s| s["talk_sessions"].as_u64() >= Some(1))
        .await;
    assert!(status["talk_played"].as_u64() > Some(25), "{status}");
    assert_eq!(status["talk_refused"], 0, "{status}");
    let heard = running.heard();
    assert!(
        heard.iter().any(|s| s.unsigned_abs() > 1000),
        "the speaker plays the microphone's sound"
    );
    let _ = running.stop().await;
    assert!(shots.join("timeline.png").exists());
    // What the viewer changed was saved: Front door removed with its footage kept, Garage gone,
    // Porch paired.
    let list = cameras(&store);
    let mut names: Vec<(&str, bool)> = list
        .iter()
        .map(|c| (c["name"].as_str().unwrap(), c["removed"].as_bool().unwrap()))
        .collect();
    names.sort_unstable();
    assert_eq!(names, [("Front door", true), ("Porch", false)]);
    // The page shared Porch with Bo and withdrew it: Porch's epoch-1 key was sealed to his
    // device, nothing of epoch 2, and the server no longer serves him the camera.
    let packages: serde_json::Value = bob.api().get_json("/v1/key-packages").await.unwrap();
    let epochs: Vec<u32> = packages["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            use base64::Engine as _;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p.as_str().unwrap())
                .unwrap();
            keyhole_client::core::key_package::KeyPackage::decode(&bytes)
                .unwrap()
                .epoch
        })
        .collect();
    assert_eq!(epochs, [1]);
    bob.sync().await.unwrap();
    assert!(
        bob.cameras().is_empty(),
        "a withdrawn camera is not learned"
    );
    // The README's picture of the timeline comes from here.
    if std::env::var_os("KEYHOLE_UPDATE_SCREENSHOTS").is_some() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/images");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(shots.join("timeline.png"), docs.join("timeline.png")).unwrap();
    }
}

/// A viewer session from outside the browser: the link traded for the cookie.
struct Session {
    http: reqwest::Client,
    origin: String,
    cookie: String,
}

impl Session {
    async fn open(link: &str) -> Self {
        let url = reqwest::Url::parse(link).unwrap();
        let name = url.host_str().unwrap().to_owned();
        let port = url.port().unwrap();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .resolve(&name, std::net::SocketAddr::from(([127, 0, 0, 1], port)))
            .build()
            .unwrap();
        let entry = http.get(link).send().await.unwrap();
        assert_eq!(entry.status(), 303);
        let cookie = entry.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        Self {
            http,
            origin: format!("http://{name}:{port}"),
            cookie,
        }
    }

    async fn json(&self, path: &str) -> serde_json::Value {
        let answer = self
            .http
            .get(format!("{}{path}", self.origin))
            .header("cookie", &self.cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        answer.json().await.unwrap()
    }
}

/// The state the viewer's timeline gives `event`'s clip.
fn clip_state(page: &serde_json::Value, event: &ObjectId) -> String {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["event"] == event.to_string())
        .unwrap_or_else(|| panic!("event {event} is not on the page: {page}"))["clip_state"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What playing a clip finds stays found: the altered clip, whose chain verifies from its
/// summary, is found tampered when the viewer plays it, and from then on every listing on the
/// device says so — the viewer's and `keyhole events`' — also with the server gone, when both
/// answer from the device's index and say they are offline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_viewer_answers_offline_from_the_index_and_keeps_what_playing_found() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = ServerProcess::spawn(&data);
    let Seeded {
        store,
        clips,
        tampered_event,
        ..
    } = seed(dir.path(), &server, &data).await;
    let camera = cameras(&store)
        .iter()
        .find(|c| c["name"] == "Front door")
        .unwrap()["camera_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let altered = &clips[2].0;

    let (ui, link) = start_ui(&store);
    let viewer = Session::open(&link).await;
    let page = viewer.json("/api/timeline?refresh=true").await;
    assert!(page["offline"].is_null(), "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 4, "{page}");
    assert_eq!(clip_state(&page, &tampered_event), "verified");
    let check = viewer
        .json(&format!("/api/clips/{camera}/{altered}/check"))
        .await;
    assert_eq!(check["state"], "tampered", "{check}");
    let page = viewer.json("/api/timeline?refresh=true").await;
    assert_eq!(clip_state(&page, &tampered_event), "tampered");
    drop(ui);

    // The server goes away; the device keeps what it verified and found.
    server.stop();
    let (_ui, link) = start_ui(&store);
    let viewer = Session::open(&link).await;
    let page = viewer.json("/api/timeline?refresh=true").await;
    let offline = page["offline"].as_str().unwrap_or_default();
    assert!(offline.starts_with("offline — as of "), "{page}");
    assert_eq!(page["events"].as_array().unwrap().len(), 4, "{page}");
    assert_eq!(clip_state(&page, &tampered_event), "tampered");
    let listed = Command::new(env!("CARGO_BIN_EXE_keyhole"))
        .arg("--store")
        .arg(&store)
        .args(["events", "Front door"])
        .env("KEYHOLE_PASSPHRASE", PASSPHRASE)
        .output()
        .unwrap();
    let (out, err) = (
        String::from_utf8_lossy(&listed.stdout),
        String::from_utf8_lossy(&listed.stderr),
    );
    assert!(!listed.status.success(), "a problem is a failure: {err}");
    assert_eq!(out.lines().count(), 3, "Front door's events: {out}");
    assert!(err.contains("Front door: offline — as of "), "{err}");
    assert!(
        err.lines()
            .any(|l| l.contains(&altered.to_string()) && l.contains("tampered")),
        "the altered clip is named: {err}"
    );
}

/// The viewer is live: with the page open, a doorbell press on a running camera appears on the
/// timeline without a reload and raises a browser notification with its decrypted thumbnail
/// (`tests/browser/live.mjs`, in Chromium with notifications allowed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_appears_live_with_a_notification_in_a_real_browser() {
    let Some(browser) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let server = ServerProcess::spawn(&data);
    let Seeded { store, front, .. } = seed(dir.path(), &server, &data).await;
    let running = RunningCamera::start(front, &dir.path().join("front"), None).await;
    let (ui, link) = start_ui(&store);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let run = Command::new("node")
        .arg("live.mjs")
        .arg(&link)
        .arg(&shots)
        .current_dir(&browser)
        .env("CAMERA_CONTROL", &running.control)
        .output()
        .unwrap();
    drop(ui);
    let _ = running.stop().await;
    println!("{}", String::from_utf8_lossy(&run.stdout));
    assert!(
        run.status.success(),
        "the browser test failed:\n{}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}
