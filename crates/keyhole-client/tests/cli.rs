//! The `keyhole` command as a user runs it, against the `keyhole-server` binary: set up an account into a
//! key store, pair a camera from the printed code, list events, export a clip, verify, and see a
//! tampered clip reported and refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use keyhole_camera::video::synthetic::{SyntheticCamera, SyntheticSettings};
use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::core::Timestamp;
use keyhole_client::core::event::{EventDetails, EventKind};
use keyhole_testkit::process::ServerProcess;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

const PASSPHRASE: &str = "a long key store passphrase";

fn keyhole(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyhole"));
    c.arg("--store")
        .arg(store)
        .env("KEYHOLE_PASSWORD", "correct horse battery")
        .env("KEYHOLE_PASSPHRASE", PASSPHRASE);
    c
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn synthetic_mp4(seconds: usize) -> Vec<u8> {
    let mut camera = SyntheticCamera::new(SyntheticSettings::default()).unwrap();
    camera.set_motion(true);
    let pictures: Vec<_> = (0..seconds * 15)
        .map(|_| camera.next_frame().unwrap())
        .collect();
    keyhole_media::mp4::write(&pictures, None).unwrap()
}

/// Runs `keyhole pair` with `args`, pairs a camera (in process, state in `state`) with the code
/// it prints, and waits for the command to succeed; returns the camera and what the command
/// printed after the code.
async fn pair_camera(
    store: &Path,
    args: &[&str],
    state: &Path,
    rng: &mut ChaCha20Rng,
) -> (Agent, Vec<String>) {
    let mut pairing = keyhole(store)
        .arg("pair")
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(pairing.stdout.take().unwrap()).lines();
    let code = loop {
        let line = lines.next().expect("a pairing code").unwrap();
        if line.starts_with("KH1-") {
            break line;
        }
    };
    let camera = Agent::pair(&code, state, AgentSettings::default(), rng)
        .await
        .unwrap();
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    assert!(pairing.wait().unwrap().success(), "{rest:?}");
    (camera, rest)
}

/// Has `camera` seal an event of `kind` happening now, with `note` and `thumbnail`, and upload
/// it; returns its id.
async fn record_now(
    camera: &mut Agent,
    kind: EventKind,
    note: &str,
    thumbnail: Vec<u8>,
    rng: &mut ChaCha20Rng,
) -> keyhole_client::core::ObjectId {
    let id = camera
        .record_event(
            &EventDetails {
                kind,
                started_at: keyhole_client::now(),
                duration_ms: 0,
                clip: None,
                note: note.into(),
                thumbnail_jpeg: thumbnail,
            },
            rng,
        )
        .await
        .unwrap();
    camera.upload_pending().await.unwrap();
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_up_pair_list_export_verify_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let server = ServerProcess::spawn(&server_dir);
    let store = dir.path().join("laptop.keys");
    let phrase_file = dir.path().join("phrase.txt");

    let out = ok(keyhole(&store)
        .args(["init", "--server", &server.url, "--user", "ana"])
        .args(["--device", "laptop", "--phrase-file"])
        .arg(&phrase_file)
        .output()
        .unwrap());
    assert!(out.contains("Account code: "), "{out}");
    let phrase = std::fs::read_to_string(&phrase_file).unwrap();
    assert_eq!(phrase.split_whitespace().count(), 12);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for path in [&store, &phrase_file] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
    }
    // Setting up over an existing store is refused.
    assert!(
        !keyhole(&store)
            .args(["init", "--server", &server.url, "--user", "bo"])
            .output()
            .unwrap()
            .status
            .success()
    );

    // Pairing: the code is printed, the camera registers with it, the command finishes.
    let rng = &mut ChaCha20Rng::seed_from_u64(12);
    let (mut camera, rest) = pair_camera(
        &store,
        &["--name", "Porch", "--wait", "60"],
        &dir.path().join("camera"),
        rng,
    )
    .await;
    assert!(
        rest.iter().any(|l| l.starts_with("Paired \"Porch\"")),
        "{rest:?}"
    );
    // The account code the camera shows, to compare.
    let code = account_code(&store);
    assert!(
        rest.iter()
            .any(|l| l.starts_with(&format!("Account code: {code} (the camera shows it"))),
        "{rest:?}"
    );

    // A ten-second segment with a doorbell press four seconds in, lasting two.
    let video = synthetic_mp4(10);
    let started_at = Timestamp(1_795_735_205_000);
    let clip = camera.record_clip(&video, started_at, rng).await.unwrap();
    camera
        .record_event(
            &EventDetails {
                kind: EventKind::Doorbell,
                started_at: Timestamp(started_at.0 + 4000),
                duration_ms: 2000,
                clip: Some(clip),
                note: String::new(),
                thumbnail_jpeg: vec![0xff, 0xd8, 0xff, 0xd9],
            },
            rng,
        )
        .await
        .unwrap();
    camera.upload_pending().await.unwrap();

    let cameras: Value = serde_json::from_str(&ok(keyhole(&store)
        .args(["cameras", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(cameras[0]["name"], "Porch");
    assert_eq!(cameras[0]["camera_id"], camera.camera_id().to_string());

    let thumbs = dir.path().join("thumbs");
    let events: Value = serde_json::from_str(&ok(keyhole(&store)
        .args(["events", "Porch", "--json", "--thumbnails"])
        .arg(&thumbs)
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(events[0]["kind"], "doorbell");
    assert_eq!(events[0]["clip"], clip.to_string());
    let event_id = events[0]["event_id"].as_str().unwrap();
    assert_eq!(
        std::fs::read(thumbs.join(format!("{event_id}.jpg"))).unwrap(),
        [0xff, 0xd8, 0xff, 0xd9]
    );

    let exported = dir.path().join("porch.mp4");
    ok(keyhole(&store)
        .args(["export", "Porch", &clip.to_string(), "-o"])
        .arg(&exported)
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&exported).unwrap(), video);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&exported).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "decrypted footage is this user's only");
    }
    // An existing file is not replaced without --force.
    let again = keyhole(&store)
        .args(["export", "Porch", &clip.to_string(), "-o"])
        .arg(&exported)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("pass --force to replace it"),
        "{again:?}"
    );
    ok(keyhole(&store)
        .args(["export", "Porch", &clip.to_string(), "--force", "-o"])
        .arg(&exported)
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&exported).unwrap(), video);
    // The event's id gives the event's span, from the key frame before it, as MP4.
    let span = dir.path().join("press.mp4");
    let said = ok(keyhole(&store)
        .args(["export", "Porch", event_id, "-o"])
        .arg(&span)
        .output()
        .unwrap());
    assert!(said.contains("into its segment"), "{said}");
    assert!(
        said.contains(&format!("keyhole export {} {clip}", camera.camera_id())),
        "{said}"
    );
    let cut = keyhole_media::mp4::read(&std::fs::read(&span).unwrap()).unwrap();
    let whole = keyhole_media::mp4::read(&video).unwrap();
    assert!(cut.access_units[0].keyframe);
    assert!(
        cut.access_units.len() >= 30 && cut.access_units.len() < whole.access_units.len(),
        "{} of {} pictures",
        cut.access_units.len(),
        whole.access_units.len()
    );
    if let Some((frames, w, h)) = keyhole_testkit::ffprobe(&span) {
        assert_eq!((w, h), (whole.width, whole.height));
        assert_eq!(frames, cut.access_units.len() as u64);
    }
    let report = ok(keyhole(&store).args(["verify", "Porch"]).output().unwrap());
    assert!(report.contains("2 of 2 objects verified"), "{report}");

    // Every device is lost: the phrase restores the account on a new one, with the history.
    std::fs::remove_file(&store).unwrap();
    let phone = dir.path().join("phone.keys");
    let restored = ok(keyhole(&phone)
        .env("KEYHOLE_RECOVERY_PHRASE", phrase.trim())
        .args([
            "recover",
            "--server",
            &server.url,
            "--user",
            "ana",
            "--device",
            "phone",
        ])
        .output()
        .unwrap());
    assert!(restored.contains("1 camera(s)"), "{restored}");
    // The lost laptop is removed by the recovery, and the camera moves to a new epoch, which
    // the restored phone opens.
    assert!(
        restored.contains("Removed from the account: laptop"),
        "{restored}"
    );
    let again = dir.path().join("again.mp4");
    ok(keyhole(&phone)
        .args(["export", "Porch", &clip.to_string(), "-o"])
        .arg(&again)
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&again).unwrap(), video);
    let wrong_phrase = keyhole(&dir.path().join("thief.keys"))
        .env(
            "KEYHOLE_RECOVERY_PHRASE",
            "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about",
        )
        .args(["recover", "--server", &server.url, "--user", "ana"])
        .output()
        .unwrap();
    assert_eq!(wrong_phrase.status.code(), Some(2));
    assert!(!dir.path().join("thief.keys").exists());
    let store = phone;

    let devices: Value = serde_json::from_str(&ok(keyhole(&store)
        .args(["devices", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let names: Vec<&str> = devices
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["phone"]);
    assert_eq!(devices[0]["this_device"], true);
    let cameras: Value = serde_json::from_str(&ok(keyhole(&store)
        .args(["cameras", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(cameras[0]["epoch"], 2);
    let after = camera
        .record_clip(b"after the revocation", started_at, rng)
        .await
        .unwrap();
    camera.upload_pending().await.unwrap();
    let after_file = dir.path().join("after.bin");
    ok(keyhole(&store)
        .args(["export", "Porch", &after.to_string(), "-o"])
        .arg(&after_file)
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&after_file).unwrap(), b"after the revocation");

    // Removing the camera asks first; keeping its footage keeps it opening.
    let mut unconfirmed = keyhole(&store)
        .args(["remove", "Porch", "--keep-footage"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut unconfirmed.stdin.take().unwrap(), b"Garage\n").unwrap();
    assert_eq!(
        unconfirmed.wait_with_output().unwrap().status.code(),
        Some(2)
    );
    assert!(
        !keyhole(&store)
            .args(["remove", "Porch", "--yes"])
            .output()
            .unwrap()
            .status
            .success(),
        "keep or delete must be chosen"
    );
    ok(keyhole(&store)
        .args(["remove", "Porch", "--keep-footage", "--yes"])
        .output()
        .unwrap());
    let cameras: Value = serde_json::from_str(&ok(keyhole(&store)
        .args(["cameras", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(cameras[0]["removed"], true);
    assert!(
        camera
            .record_clip(b"too late", started_at, rng)
            .await
            .is_err(),
        "a removed camera seals nothing"
    );
    let kept = dir.path().join("kept.mp4");
    ok(keyhole(&store)
        .args(["export", "Porch", &clip.to_string(), "-o"])
        .arg(&kept)
        .output()
        .unwrap());
    assert_eq!(std::fs::read(&kept).unwrap(), video);

    // A second camera removed with its footage deleted: gone, keys and all.
    let (mut garage, _) = pair_camera(
        &store,
        &["--name", "Garage", "--wait", "60", "--no-qr"],
        &dir.path().join("garage"),
        rng,
    )
    .await;
    garage
        .record_clip(b"garage", started_at, rng)
        .await
        .unwrap();
    garage.upload_pending().await.unwrap();
    let removed = ok(keyhole(&store)
        .args(["remove", "Garage", "--delete-footage", "--yes"])
        .output()
        .unwrap());
    assert!(removed.contains("1 object(s)"), "{removed}");
    let verify_gone = keyhole(&store).args(["verify", "Garage"]).output().unwrap();
    assert_eq!(verify_gone.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&verify_gone.stderr).contains("no camera"));

    // The audit log names who did what: the revoked laptop's earlier changes stay ours, and
    // the thief's sign-in (a device never enrolled) is marked as not ours.
    let audit: Value = serde_json::from_str(&ok(keyhole(&store)
        .args(["audit", "--json"])
        .output()
        .unwrap()))
    .unwrap();
    let entries = audit.as_array().unwrap();
    assert!(
        entries
            .iter()
            .any(|e| e["action"] == "device-revoked" && e["by"] == "this device"),
        "{audit:#}"
    );
    // In words, with names for the ids this device knows: a camera's key sealed to "phone".
    assert!(
        entries.iter().any(|e| e["action"] == "key-package"
            && e["words"]
                .as_str()
                .unwrap()
                .starts_with("A camera's key was sealed to a device")
            && e["words"].as_str().unwrap().contains("\"phone\"")),
        "{audit:#}"
    );
    assert!(
        entries.iter().any(|e| e["by"] == "a device since revoked"),
        "{audit:#}"
    );
    assert!(
        entries
            .iter()
            .any(|e| e["actor"].as_str().unwrap().starts_with("device:") && e["yours"] == false)
    );

    // A wrong passphrase opens nothing.
    let wrong = keyhole(&store)
        .env("KEYHOLE_PASSPHRASE", "not the passphrase")
        .args(["cameras"])
        .output()
        .unwrap();
    assert_eq!(wrong.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase"));

    // The server flips a bit of the clip: verify says so and exits 1; export writes nothing.
    let blob = server_dir
        .join("blobs/objects")
        .join(hex::encode(&clip.0[..1]))
        .join(clip.to_string());
    let mut sealed = std::fs::read(&blob).unwrap();
    let middle = sealed.len() / 2;
    sealed[middle] ^= 1;
    std::fs::write(&blob, sealed).unwrap();
    // The chain still verifies from the listing's signed summaries; the full check opens the
    // clip and finds it.
    let verify = keyhole(&store).args(["verify", "Porch"]).output().unwrap();
    assert_eq!(verify.status.code(), Some(0), "{verify:?}");
    let verify = keyhole(&store)
        .args(["verify", "--full", "Porch"])
        .output()
        .unwrap();
    assert_eq!(verify.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("tampered"));
    let refused = dir.path().join("refused.mp4");
    let export = keyhole(&store)
        .args(["export", "Porch", &clip.to_string(), "-o"])
        .arg(&refused)
        .output()
        .unwrap();
    assert_eq!(export.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&export.stderr).contains("did not verify"));
    assert!(!refused.exists());
    assert!(!dir.path().join("refused.mp4.partial").exists());
    server.stop();
}

/// Runs the shell `command` on a terminal of its own (`script` makes one), typing `input` into
/// it, without the secrets' environment variables: whether it succeeded, and what it showed.
fn on_terminal(command: &str, input: &str) -> (bool, String) {
    use std::io::Write as _;
    let mut typed = Command::new("/usr/bin/script")
        .args(["-qec", command, "/dev/null"])
        .env_remove("KEYHOLE_PASSPHRASE")
        .env_remove("KEYHOLE_PASSWORD")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    typed
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = typed.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// What the server says is shown, not obeyed: an error message carrying an escape sequence that
/// would write the terminal's clipboard reaches the terminal as text. A reader that goes away
/// (`keyhole devices | head -1`) ends the printing quietly, not the command. And a server that
/// cannot be reached gets the device's own answer, marked offline, or an error in words.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_text_is_shown_not_obeyed_and_a_closed_pipe_is_quiet() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(&dir.path().join("server"));
    let proxy = keyhole_testkit::hostile::HostileProxy::start(&server.url).await;
    let store = dir.path().join("laptop.keys");
    ok(keyhole(&store)
        .args(["init", "--server", &proxy.url, "--user", "ana"])
        .args(["--device", "laptop", "--phrase-file"])
        .arg(dir.path().join("phrase.txt"))
        .output()
        .unwrap());

    // On a terminal (`script` makes one), a mistyped passphrase is asked again.
    if std::path::Path::new("/usr/bin/script").exists() {
        let command = format!(
            "'{}' --store '{}' code",
            env!("CARGO_BIN_EXE_keyhole"),
            store.display()
        );
        let (ok, shown) = on_terminal(&command, &format!("not the passphrase\n{PASSPHRASE}\n"));
        assert!(ok, "{shown}");
        assert!(
            shown.contains("does not open") && shown.contains("try again"),
            "{shown}"
        );
        assert!(shown.contains("Account code: "), "{shown}");

        // A new passphrase is typed twice; two that differ are asked for again.
        let zed = dir.path().join("zed.keys");
        let command = format!(
            "'{}' --store '{}' init --server '{}' --user zed --device desk --phrase-file '{}'",
            env!("CARGO_BIN_EXE_keyhole"),
            zed.display(),
            proxy.url,
            dir.path().join("zed-phrase.txt").display()
        );
        let (ok, shown) = on_terminal(
            &command,
            "a good password\na good password\n\
             first passphrase\nsecond passphrase\n\
             first passphrase\nfirst passphrase\n",
        );
        assert!(ok, "{shown}");
        assert!(shown.contains("The two differ; once more."), "{shown}");
        let reopened = keyhole(&zed)
            .env("KEYHOLE_PASSPHRASE", "first passphrase")
            .arg("code")
            .output()
            .unwrap();
        assert!(reopened.status.success());
    }

    let mut devices = keyhole(&store)
        .arg("devices")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(devices.stdout.take());
    let closed = devices.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&closed.stderr);
    assert!(closed.status.success(), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");

    proxy.answer(|method, path, _| {
        (*method == reqwest::Method::GET && path == "/v1/cameras").then(|| {
            let body = r#"{"error": "busy", "message": "\u001b]52;c;ZXZpbA==\u0007 try later"}"#;
            (reqwest::StatusCode::SERVICE_UNAVAILABLE, body.into())
        })
    });
    let refused = keyhole(&store).arg("cameras").output().unwrap();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("\u{fffd}]52;c;ZXZpbA==\u{fffd} try later"),
        "{stderr}"
    );
    assert!(!refused.stderr.contains(&0x1b), "{stderr}");
    assert!(proxy.applied() >= 1);

    // The server cannot be reached: what the device holds is shown, and said to be offline;
    // what needs the server says so in words.
    let url = proxy.url.clone();
    drop(proxy);
    let devices = keyhole(&store).arg("devices").output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&devices.stdout),
        String::from_utf8_lossy(&devices.stderr),
    );
    assert!(devices.status.success(), "{stderr}");
    assert!(stdout.contains("laptop  added"), "{stdout}");
    assert!(
        stderr.contains(&format!("OFFLINE: the server at {url} cannot be reached")),
        "{stderr}"
    );
    let cameras = keyhole(&store).arg("cameras").output().unwrap();
    assert_eq!(cameras.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cameras.stderr).contains("OFFLINE"));
    let audit = keyhole(&store).arg("audit").output().unwrap();
    let stderr = String::from_utf8_lossy(&audit.stderr);
    assert_eq!(audit.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the server cannot be reached: check that it is running"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_view_from_the_command_line() {
    use keyhole_camera::config::{Config, Profile};
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(&dir.path().join("server"));
    let store = dir.path().join("laptop.keys");
    ok(keyhole(&store)
        .args([
            "init",
            "--server",
            &server.url,
            "--user",
            "ana",
            "--phrase-file",
        ])
        .arg(dir.path().join("phrase.txt"))
        .output()
        .unwrap());
    let state = dir.path().join("camera");
    let rng = &mut ChaCha20Rng::seed_from_u64(14);
    let (camera, _) = pair_camera(&store, &["--name", "Porch", "--no-qr"], &state, rng).await;

    // The camera runs (battery: asleep until someone watches).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = Config {
        state_dir: state,
        profile: Profile::Battery,
        ..Config::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(keyhole_camera::run::run(config, camera, listener, async {
        stopped.await.ok();
    }));

    let video = dir.path().join("live.mp4");
    let watch = {
        let mut command = keyhole(&store);
        command
            .args(["live", "Porch", "--seconds", "2", "-o"])
            .arg(&video);
        tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap()
    };
    let stderr = String::from_utf8_lossy(&watch.stderr).into_owned();
    assert!(watch.status.success(), "{stderr}");
    assert!(stderr.contains("frames"), "{stderr}");
    // Fragmented MP4 that plays from its first picture, with its sound.
    if let Some((pictures, w, h)) = keyhole_testkit::ffprobe(&video) {
        assert_eq!((w, h), (320, 240));
        assert!(pictures >= 15, "{pictures} pictures in 2 s");
    }
    if let Some(codec) = keyhole_testkit::assert_sound_in_step(&video, 0.1) {
        assert_eq!(codec, "opus");
    }

    stop.send(()).unwrap();
    running.await.unwrap().unwrap();
    server.stop();
}

/// The account code `keyhole code` prints.
fn account_code(store: &Path) -> String {
    let out = ok(keyhole(store).arg("code").output().unwrap());
    out.trim()
        .strip_prefix("Account code: ")
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn share_and_withdraw_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(&dir.path().join("server"));
    let ana = dir.path().join("ana.keys");
    let bob = dir.path().join("bob.keys");
    for (store, user) in [(&ana, "ana"), (&bob, "bob")] {
        ok(keyhole(store)
            .args(["init", "--server", &server.url, "--user", user])
            .arg("--phrase-file")
            .arg(dir.path().join(format!("{user}.phrase")))
            .output()
            .unwrap());
    }
    let rng = &mut ChaCha20Rng::seed_from_u64(14);
    let (mut camera, _) = pair_camera(
        &ana,
        &["--name", "Porch", "--wait", "60"],
        &dir.path().join("camera"),
        rng,
    )
    .await;
    camera
        .record_clip(&synthetic_mp4(1), Timestamp(1_795_735_205_000), rng)
        .await
        .unwrap();
    camera.upload_pending().await.unwrap();

    // Each compares the other's code; a wrong one is refused.
    let (ana_code, bob_code) = (account_code(&ana), account_code(&bob));
    let wrong = keyhole(&bob)
        .args(["accept-shares", "--from", "ana", "--code", &bob_code])
        .output()
        .unwrap();
    assert!(!wrong.status.success());
    assert!(String::from_utf8_lossy(&wrong.stderr).contains("account code"));
    ok(keyhole(&bob)
        .args(["accept-shares", "--from", "ana", "--code", &ana_code])
        .output()
        .unwrap());
    let out = ok(keyhole(&ana)
        .args([
            "share", "--all", "--with", "bob", "--code", &bob_code, "--days", "7",
        ])
        .output()
        .unwrap());
    assert!(out.contains("Shared camera"), "{out}");
    let out = ok(keyhole(&ana).arg("shares").output().unwrap());
    assert!(out.contains("Porch  shared with bob until"), "{out}");

    // Bo sees the camera as Ana's and verifies what it recorded.
    let cameras: Value = serde_json::from_str(&ok(keyhole(&bob)
        .args(["--json", "cameras"])
        .output()
        .unwrap()))
    .unwrap();
    assert_eq!(cameras[0]["name"], "Porch");
    assert_eq!(cameras[0]["shared_by"], "ana");
    // `verify` exits 0 only for a clean report.
    ok(keyhole(&bob).args(["verify", "Porch"]).output().unwrap());
    let refused = keyhole(&bob)
        .args(["remove", "Porch", "--keep-footage", "--yes"])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("only its owner"));

    // Withdrawn: a new epoch; the server no longer serves Bo the camera.
    let out = ok(keyhole(&ana)
        .args(["unshare", "Porch", "--with", "bob"])
        .output()
        .unwrap());
    assert!(out.contains("epoch 2"), "{out}");
    let out = ok(keyhole(&ana).arg("shares").output().unwrap());
    assert!(out.contains("Nothing is shared"), "{out}");
    let refused = keyhole(&bob).args(["verify", "Porch"]).output().unwrap();
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("404"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // Bo stops accepting Ana's shares: she can no longer share with him.
    let out = ok(keyhole(&bob)
        .args(["refuse-shares", "--from", "ana"])
        .output()
        .unwrap());
    assert!(out.contains("no longer accepted"), "{out}");
    let refused = keyhole(&ana)
        .args(["share", "Porch", "--with", "bob", "--code", &bob_code])
        .output()
        .unwrap();
    assert!(!refused.status.success());
}

/// The server's count of object downloads, from its metrics.
async fn downloads(server: &ServerProcess) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("keyhole_downloads_total "))
        .unwrap_or_else(|| panic!("no download count in\n{text}"))
        .trim()
        .parse()
        .unwrap()
}

fn events_json(store: &Path, args: &[&str]) -> Vec<Value> {
    let out = ok(keyhole(store)
        .args(["events", "--json"])
        .args(args)
        .output()
        .unwrap());
    serde_json::from_str::<Value>(&out)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_come_from_the_index_by_page_each_downloaded_once_and_offline() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let server = ServerProcess::spawn(&server_dir);
    let store = dir.path().join("laptop.keys");
    ok(keyhole(&store)
        .args([
            "init",
            "--server",
            &server.url,
            "--user",
            "ana",
            "--device",
            "laptop",
        ])
        .args(["--phrase-file"])
        .arg(dir.path().join("phrase.txt"))
        .output()
        .unwrap());
    let rng = &mut ChaCha20Rng::seed_from_u64(31);
    let (mut camera, _) = pair_camera(
        &store,
        &["--name", "Porch", "--wait", "60", "--no-qr"],
        &dir.path().join("camera"),
        rng,
    )
    .await;
    // Six events an hour apart, each with a clip.
    let first = Timestamp(1_795_735_205_000);
    let hour = 3_600_000;
    let record = async |n: u8, camera: &mut Agent, rng: &mut ChaCha20Rng| {
        let at = Timestamp(first.0 + u64::from(n) * hour);
        let clip = camera.record_clip(&[n; 5000], at, rng).await.unwrap();
        camera
            .record_event(
                &EventDetails {
                    kind: EventKind::Motion,
                    started_at: at,
                    duration_ms: 1000,
                    clip: Some(clip),
                    note: format!("event {n}"),
                    thumbnail_jpeg: vec![0xff, 0xd8, n, 0xff, 0xd9],
                },
                rng,
            )
            .await
            .unwrap();
        camera.upload_pending().await.unwrap();
    };
    for n in 0..6 {
        record(n, &mut camera, rng).await;
    }

    // The first listing opens the six events (and no clip); the second downloads nothing.
    let before = downloads(&server).await;
    let all = events_json(&store, &[]);
    assert_eq!(all.len(), 6);
    assert_eq!(all[0]["note"], "event 5", "newest first");
    assert_eq!(downloads(&server).await - before, 6);
    let again = events_json(&store, &["Porch"]);
    assert_eq!(again, all);
    assert_eq!(
        downloads(&server).await - before,
        6,
        "nothing new, nothing downloaded"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let index = dir.path().join("laptop.keys.index");
        let mode = std::fs::metadata(&index).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Sealed at rest: the notes and thumbnails are not in the file as written.
        let bytes = std::fs::read(&index).unwrap();
        assert!(!bytes.windows(7).any(|w| w == b"event 3"));
    }

    // Pages: a limit, a window in time, a camera named with --camera.
    let page = events_json(&store, &["--limit", "2"]);
    let notes: Vec<_> = page.iter().map(|e| e["note"].clone()).collect();
    assert_eq!(notes, ["event 5", "event 4"]);
    let since = Timestamp(first.0 + 2 * hour).to_string();
    let until = Timestamp(first.0 + 4 * hour).to_string();
    let window = events_json(
        &store,
        &["--camera", "Porch", "--since", &since, "--until", &until],
    );
    let notes: Vec<_> = window.iter().map(|e| e["note"].clone()).collect();
    assert_eq!(notes, ["event 3", "event 2"]);
    let bad = keyhole(&store)
        .args(["events", "--since", "yesterday"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("how long ago"));

    // One new event: one download.
    record(6, &mut camera, rng).await;
    let before = downloads(&server).await;
    assert_eq!(events_json(&store, &[]).len(), 7);
    assert_eq!(downloads(&server).await - before, 1);

    // A clip found tampered when exported is shown as such by every later listing.
    let clip: keyhole_client::core::ObjectId = all[0]["clip"].as_str().unwrap().parse().unwrap();
    let blob = server_dir
        .join("blobs/objects")
        .join(hex::encode(&clip.0[..1]))
        .join(clip.to_string());
    let mut sealed = std::fs::read(&blob).unwrap();
    let middle = sealed.len() / 2;
    sealed[middle] ^= 1;
    std::fs::write(&blob, sealed).unwrap();
    let refused = keyhole(&store)
        .args(["export", "Porch", &clip.to_string(), "-o"])
        .arg(dir.path().join("x.mp4"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let listed = keyhole(&store).args(["events"]).output().unwrap();
    assert_eq!(listed.status.code(), Some(1));
    let said = String::from_utf8_lossy(&listed.stderr);
    assert!(said.contains(&format!("object {clip}: tampered")), "{said}");

    // Offline: the index answers, saying as of when.
    let addr = server.url.trim_start_matches("http://").to_owned();
    server.stop();
    let offline = keyhole(&store).args(["events", "--json"]).output().unwrap();
    let said = String::from_utf8_lossy(&offline.stderr);
    assert!(said.contains("OFFLINE"), "{said}");
    assert!(said.contains("Porch: offline — as of "), "{said}");
    let held: Value = serde_json::from_slice(&offline.stdout).unwrap();
    assert_eq!(held.as_array().unwrap().len(), 7);

    // Deleted, the index is rebuilt from the server and the key store.
    let server = ServerProcess::spawn_on(&server_dir, &addr);
    std::fs::remove_file(dir.path().join("laptop.keys.index")).unwrap();
    let rebuilt = events_json(&store, &[]);
    assert_eq!(rebuilt.len(), 7);
    assert_eq!(rebuilt[1..], all[..]);
    server.stop();
}

/// A running `keyhole watch`, its output lines gathered as they come; killed when dropped.
struct Watching {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<(bool, String)>,
    /// Lines read and not yet asked for.
    seen: Vec<(bool, String)>,
}

impl Watching {
    fn start(store: &Path, args: &[&str]) -> Self {
        Self::start_with_env(store, args, &[])
    }

    fn start_with_env(store: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = keyhole(store)
            .arg("watch")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        let out = std::io::BufReader::new(child.stdout.take().unwrap());
        let err = std::io::BufReader::new(child.stderr.take().unwrap());
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for l in out.lines().map_while(Result::ok) {
                let _ = tx.send((true, l));
            }
        });
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                let _ = tx2.send((false, l));
            }
        });
        Self {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The first line on stdout (`out`) or stderr that `wanted` accepts; other lines are kept
    /// for later calls. Waits at most 60 s.
    fn next(&mut self, out: bool, wanted: impl Fn(&str) -> bool) -> String {
        if let Some(i) = self.seen.iter().position(|(o, l)| *o == out && wanted(l)) {
            return self.seen.remove(i).1;
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((on_out, line)) if on_out == out && wanted(&line) => return line,
                Ok(other) => self.seen.push(other),
                Err(_) => panic!("no such line within 60 s; seen: {:#?}", self.seen),
            }
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `keyhole watch` prints each new event as it arrives, and only new ones: a JSON line with
/// the decrypted details, the thumbnail saved, the event handed to a command (whose output
/// shows here, marked). When the server
/// goes away it keeps trying, and once back it catches up with what was stored meanwhile, also
/// when another command on the device synced it into the shared index first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_prints_each_new_event_as_it_arrives_and_catches_up_after_a_drop() {
    let dir = tempfile::tempdir().unwrap();
    let server_dir = dir.path().join("server");
    let server = ServerProcess::spawn(&server_dir);
    let store = dir.path().join("laptop.keys");
    ok(keyhole(&store)
        .args(["init", "--server", &server.url, "--user", "ana"])
        .args(["--device", "laptop", "--phrase-file"])
        .arg(dir.path().join("phrase.txt"))
        .output()
        .unwrap());
    let rng = &mut ChaCha20Rng::seed_from_u64(41);
    let (mut camera, _) = pair_camera(
        &store,
        &["--name", "Porch", "--wait", "60", "--no-qr"],
        &dir.path().join("camera"),
        rng,
    )
    .await;
    let record = async |kind: EventKind, note: &str, camera: &mut Agent, rng: &mut ChaCha20Rng| {
        let thumbnail = vec![0xff, 0xd8, u8::try_from(note.len()).unwrap(), 0xff, 0xd9];
        record_now(camera, kind, note, thumbnail, rng).await
    };
    record(EventKind::Motion, "before watching", &mut camera, rng).await;

    let thumbs = dir.path().join("thumbs");
    let mut watching = Watching::start(
        &store,
        &[
            "--json",
            "--thumbnails",
            thumbs.to_str().unwrap(),
            "--exec",
            "sed s/^/ran:/",
        ],
    );
    watching.next(false, |l| l.contains("following Porch"));
    let pressed = record(EventKind::Doorbell, "pressed", &mut camera, rng).await;
    let line = watching.next(true, |l| l.starts_with('{'));
    assert_eq!(
        watching.next(true, |l| l.starts_with("ran:")),
        format!("ran:{line}"),
        "the command gets the event on its standard input"
    );
    let event: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        event["event_id"],
        pressed.to_string(),
        "only the new event: {line}"
    );
    assert_eq!(event["kind"], "doorbell");
    assert_eq!(event["note"], "pressed");
    assert_eq!(event["camera_name"], "Porch");
    let thumb = thumbs.join(format!("{pressed}.jpg"));
    assert_eq!(event["thumbnail"], thumb.display().to_string());
    assert_eq!(std::fs::read(&thumb).unwrap(), [0xff, 0xd8, 7, 0xff, 0xd9]);

    // The server goes away; the camera's next event is stored once it is back, and found.
    let addr = server.url.trim_start_matches("http://").to_owned();
    server.stop();
    watching.next(false, |l| {
        l.contains("trying again") || l.contains("reconnecting")
    });
    let server = ServerProcess::spawn_on(&server_dir, &addr);
    let later = record(EventKind::Motion, "while away", &mut camera, rng).await;
    let last = record(EventKind::Motion, "also while away", &mut camera, rng).await;
    // Another command on this device syncs the shared index first (before watch reconnects,
    // which it does after its back-off): watch still prints both events.
    ok(keyhole(&store).args(["events"]).output().unwrap());
    for id in [later, last] {
        let line = watching.next(true, |l| l.starts_with('{'));
        let event: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(event["event_id"], id.to_string(), "{line}");
        watching.next(true, |l| l == format!("ran:{line}"));
    }
    assert!(
        !watching
            .seen
            .iter()
            .any(|(_, l)| l.contains("before watching")),
        "what was there before is not announced: {:#?}",
        watching.seen
    );
    drop(watching);
    server.stop();
}

/// A Web Push service (RFC 8030) on loopback: web-push-testing's emulator, run by
/// `tests/browser/push-service.cjs` (`npm ci` there, as `.ci/run` does). It checks each push's
/// VAPID token and decrypts its payload with the keys of the subscription it made, as a
/// browser's or a phone's push service and push stack do.
struct PushService {
    child: std::process::Child,
    url: String,
    http: reqwest::Client,
}

impl PushService {
    /// The running service; `None` (skipped) when node or the emulator is missing outside CI.
    fn start() -> Option<Self> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        let ready = dir.join("node_modules/web-push-testing").exists()
            && Command::new("node").arg("--version").output().is_ok();
        if !ready {
            assert!(
                std::env::var_os("CI").is_none(),
                "the push test needs node and `npm ci` in {}",
                dir.display()
            );
            eprintln!("node or web-push-testing missing: skipped (CI installs them)");
            return None;
        }
        let mut child = Command::new("node")
            .arg(dir.join("push-service.cjs"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let port = first.trim().strip_prefix("listening on ").expect(&first);
        Some(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        })
    }

    async fn post(&self, path: &str, body: &Value) -> Value {
        let answer = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        answer.json().await.unwrap_or(Value::Null)
    }

    /// A subscription for `application_server_key`, as a push stack makes it: the endpoint and
    /// keys, and the handle the emulator reads its messages by.
    async fn subscribe(&self, application_server_key: &str) -> (Value, String) {
        let made = self
            .post(
                "/subscribe",
                &serde_json::json!({
                    "userVisibleOnly": "true",
                    "applicationServerKey": application_server_key,
                }),
            )
            .await;
        let data = &made["data"];
        let subscription =
            serde_json::json!({ "endpoint": data["endpoint"], "keys": data["keys"] });
        (
            subscription,
            data["clientHash"].as_str().unwrap().to_owned(),
        )
    }

    /// The decrypted messages pushed to the subscription `handle` so far.
    async fn messages(&self, handle: &str) -> Vec<String> {
        let got = self
            .post(
                "/get-notifications",
                &serde_json::json!({ "clientHash": handle }),
            )
            .await;
        got["data"]["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m.as_str().unwrap().to_owned())
            .collect()
    }

    /// Waits (at most 60 s) until the subscription `handle` has more than `seen` messages.
    async fn message_after(&self, handle: &str, seen: usize) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let messages = self.messages(handle).await;
            if messages.len() > seen {
                assert_eq!(messages.len(), seen + 1, "one push per event: {messages:?}");
                return messages[seen].clone();
            }
            assert!(std::time::Instant::now() < deadline, "no push within 60 s");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PushService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The value of counter `name` in the server's `/metrics`.
async fn metric(server: &ServerProcess, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in {text}"))
}

/// Web Push end to end, through a real push service emulator: the device registers the
/// subscription its push stack made for the server's VAPID key (`keyhole push key`, `keyhole
/// push register`); each event then reaches the push service as a push the service accepts
/// (its VAPID token verified) and decrypts (RFC 8291) to a wake-up that names the camera and
/// the event's sequence and nothing of what the event holds; the device then fetches,
/// verifies and opens the event itself. A subscription the push service calls gone is
/// forgotten, and `keyhole push unregister` stops the pushes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_is_pushed_as_a_content_free_wake_up_and_the_device_opens_it() {
    let Some(push) = PushService::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn_with(
        &dir.path().join("server"),
        "127.0.0.1:0",
        &[("KEYHOLE_PUSH_ALLOW_HTTP".into(), "true".into())],
    );
    let store = dir.path().join("phone.keys");
    ok(keyhole(&store)
        .args(["init", "--server", &server.url, "--user", "ana"])
        .args(["--device", "phone", "--phrase-file"])
        .arg(dir.path().join("phrase.txt"))
        .output()
        .unwrap());
    let rng = &mut ChaCha20Rng::seed_from_u64(43);
    let (mut camera, _) = pair_camera(
        &store,
        &["--name", "Porch", "--wait", "60", "--no-qr"],
        &dir.path().join("camera"),
        rng,
    )
    .await;

    let key = ok(keyhole(&store).args(["push", "key"]).output().unwrap());
    let (subscription, handle) = push.subscribe(key.trim()).await;
    let register = |subscription: &Value| {
        let mut child = keyhole(&store)
            .args(["push", "register", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        serde_json::to_writer(child.stdin.take().unwrap(), subscription).unwrap();
        child.wait_with_output().unwrap()
    };
    let said = ok(register(&subscription));
    assert!(said.contains("woken through its push service"), "{said}");

    let mut record = async |kind: EventKind, note: &str| {
        let thumbnail = vec![0xff, 0xd8, 0x42, 0xff, 0xd9];
        record_now(&mut camera, kind, note, thumbnail, rng).await
    };
    let pressed = record(EventKind::Doorbell, "pressed at the door").await;
    let message = push.message_after(&handle, 0).await;
    // The push service saw only ciphertext; what it decrypted names the camera and sequence.
    let woken = keyhole_client::push::WakeUp::parse(message.as_bytes()).unwrap();
    assert!(!message.contains("pressed"), "{message}");
    let events: Value = serde_json::from_str(&ok(keyhole(&store)
        .args(["--json", "events", "Porch", "--limit", "1"])
        .output()
        .unwrap()))
    .unwrap();
    let newest = &events[0];
    assert_eq!(newest["camera"], woken.camera.to_string());
    assert_eq!(newest["event_id"], pressed.to_string());
    assert_eq!(newest["kind"], "doorbell");
    assert_eq!(
        newest["note"], "pressed at the door",
        "opened on the device"
    );

    let moved = record(EventKind::Motion, "motion").await;
    let next = keyhole_client::push::WakeUp::parse(push.message_after(&handle, 1).await.as_bytes())
        .unwrap();
    assert_eq!(next.camera, woken.camera);
    assert!(next.sequence > woken.sequence, "{next:?} after {woken:?}");
    assert_ne!(moved, pressed);

    // The push service withdraws the subscription: the next push is answered 410 Gone and
    // the server forgets it.
    let expire = format!("{}/expire-subscription/{handle}", push.url);
    assert!(
        push.http
            .post(expire)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    record(EventKind::Motion, "after expiry").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while metric(&server, "keyhole_push_subscriptions_gone_total").await == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the gone subscription was kept"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let said = ok(keyhole(&store)
        .args(["push", "unregister"])
        .output()
        .unwrap());
    assert!(said.contains("had no push subscription"), "{said}");
    assert_eq!(metric(&server, "keyhole_pushes_sent_total").await, 2);

    // A subscription the server would not send to is refused, saying why.
    let mut short_auth = subscription.clone();
    short_auth["keys"]["auth"] = "c2hvcnQ".into();
    let refused = register(&short_auth);
    assert!(!refused.status.success());
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("keys.auth must be 16 bytes"), "{why}");

    // Registered again, then unregistered: the server holds no subscription for it.
    let (again, _) = push.subscribe(key.trim()).await;
    ok(register(&again));
    let said = ok(keyhole(&store)
        .args(["push", "unregister"])
        .output()
        .unwrap());
    assert!(said.contains("no longer pushes"), "{said}");
    let said = ok(keyhole(&store)
        .args(["push", "unregister"])
        .output()
        .unwrap());
    assert!(said.contains("had no push subscription"), "{said}");
}

/// A session bus of its own (`dbus-daemon`) with a freedesktop notification service on it
/// (`tests/notifications.py`, under Debian's Python with python3-gi), which prints
/// each notification it is sent.
struct NotificationService {
    bus: std::process::Child,
    service: std::process::Child,
    address: String,
    shown: std::sync::mpsc::Receiver<String>,
}

impl NotificationService {
    /// The running service; `None` (skipped) when dbus-daemon or python3-gi is missing
    /// outside CI.
    fn start(dir: &Path) -> Option<Self> {
        let python = "/usr/bin/python3";
        let ready = Command::new("dbus-daemon")
            .arg("--version")
            .output()
            .is_ok()
            && Command::new(python)
                .args(["-c", "import gi"])
                .output()
                .is_ok_and(|o| o.status.success());
        if !ready {
            assert!(
                std::env::var_os("CI").is_none(),
                "the desktop notification test needs dbus-daemon and python3-gi"
            );
            eprintln!("dbus-daemon or python3-gi missing: skipped (CI installs them)");
            return None;
        }
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address"])
            .arg(format!("--address=unix:path={}", dir.join("bus").display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        std::io::BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        let mut service = Command::new(python)
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/notifications.py"))
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(service.stdout.take().unwrap()).lines();
        assert_eq!(lines.next().unwrap().unwrap(), "ready");
        let (tx, shown) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Some(Self {
            bus,
            service,
            address,
            shown,
        })
    }

    /// The next notification shown, as the service saw it (waits at most 60 s).
    fn next(&self) -> Value {
        let line = self
            .shown
            .recv_timeout(std::time::Duration::from_secs(60))
            .expect("a notification within 60 s");
        serde_json::from_str(&line).unwrap()
    }
}

impl Drop for NotificationService {
    fn drop(&mut self) {
        for child in [&mut self.service, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Where a freedesktop notification service runs, `keyhole watch` shows each event there:
/// the camera and kind, the time and the camera's note (as text, never markup), a doorbell as
/// critical, and the thumbnail decrypted on the device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_shows_each_event_as_a_desktop_notification_with_its_thumbnail() {
    let dir = tempfile::tempdir().unwrap();
    let Some(desktop) = NotificationService::start(dir.path()) else {
        return;
    };
    let server = ServerProcess::spawn(&dir.path().join("server"));
    let store = dir.path().join("laptop.keys");
    ok(keyhole(&store)
        .args(["init", "--server", &server.url, "--user", "ana"])
        .args(["--device", "laptop", "--phrase-file"])
        .arg(dir.path().join("phrase.txt"))
        .output()
        .unwrap());
    let rng = &mut ChaCha20Rng::seed_from_u64(47);
    let (mut camera, _) = pair_camera(
        &store,
        &["--name", "Porch", "--wait", "60", "--no-qr"],
        &dir.path().join("camera"),
        rng,
    )
    .await;
    let mut watching = Watching::start_with_env(
        &store,
        &["--json"],
        &[("DBUS_SESSION_BUS_ADDRESS", &desktop.address)],
    );
    watching.next(false, |l| l.contains("following Porch"));

    let thumbnail = vec![0xff, 0xd8, 0x17, 0x2a, 0xff, 0xd9];
    let note = "someone <b>at</b> the door";
    let pressed = record_now(
        &mut camera,
        EventKind::Doorbell,
        note,
        thumbnail.clone(),
        rng,
    )
    .await;
    let line = watching.next(true, |l| l.starts_with('{'));
    assert!(line.contains(&pressed.to_string()), "{line}");
    let shown = desktop.next();
    assert_eq!(shown["app"], "Keyhole");
    assert_eq!(shown["summary"], "Porch: doorbell");
    let body = shown["body"].as_str().unwrap();
    assert!(
        body.contains("someone &lt;b&gt;at&lt;/b&gt; the door"),
        "the note as text: {body}"
    );
    assert_eq!(shown["urgency"], 2, "a doorbell is critical");
    assert_eq!(
        shown["image"],
        hex::encode(&thumbnail),
        "the thumbnail, decrypted on the device"
    );
}

/// The command's help and its refusals, pinned: `keyhole --help`, every subcommand's `--help`
/// (the list read from the first, so a new command needs a snapshot), and errors a user meets
/// first, each in `tests/snapshots/cli/NAME.txt`; `KEYHOLE_BLESS=1` writes them anew.
#[test]
fn help_and_first_errors_match_their_snapshots() {
    use keyhole_testkit::snapshots;
    let exe = env!("CARGO_BIN_EXE_keyhole");
    let (commands, mut cases) = snapshots::help_cases(exe);
    assert!(
        commands.len() > 20,
        "commands read from the help: {commands:?}"
    );
    for (name, args) in [
        ("error-unknown-command", &["nosuch"][..]),
        ("error-export-without-arguments", &["export"][..]),
        (
            "error-no-key-store",
            &["--store", "/nonexistent/keyhole/device.keys", "cameras"][..],
        ),
    ] {
        cases.push((name.to_owned(), snapshots::run(exe, args)));
    }
    snapshots::assert_match(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/cli"),
        &cases,
    );
}
