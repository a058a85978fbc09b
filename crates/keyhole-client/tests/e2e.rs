//! Every owner flow with each part as the user runs it: the `keyhole-server` binary, the
//! `keyhole-camera` binary recording a synthetic H.264 scene, and the `keyhole` command. Set-up,
//! pairing, events and export (checked by ffprobe), adding a device by approval with the code
//! compared on both, live view on the new device, revocation, removal with the footage kept, and
//! transfer of the camera to another account, checked from both sides.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;

use keyhole_testkit::process::{CameraProcess, ServerProcess, binary};
use serde_json::Value;

const PASSPHRASE: &str = "a long key store passphrase";

/// The `keyhole` command for the device whose key store is `store`.
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

fn json(store: &Path, args: &[&str]) -> Value {
    serde_json::from_str(&ok(keyhole(store)
        .args(args)
        .arg("--json")
        .output()
        .unwrap()))
    .unwrap()
}

/// An interactive `keyhole` run: its output lines arrive on a channel as it prints them.
struct Interactive {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Interactive {
    fn spawn(mut command: Command) -> Self {
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(out).lines() {
                    let Ok(line) = line else { break };
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Self { child, lines }
    }

    /// The first line starting with `prefix`, within a minute.
    fn line(&self, prefix: &str) -> String {
        let mut seen = Vec::new();
        loop {
            let line = self
                .lines
                .recv_timeout(std::time::Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no line {prefix:?}; saw {seen:?}"));
            if line.starts_with(prefix) {
                return line;
            }
            seen.push(line);
        }
    }

    fn answer(&mut self, text: &str) {
        self.child
            .stdin
            .as_mut()
            .unwrap()
            .write_all(format!("{text}\n").as_bytes())
            .unwrap();
    }

    /// Exit code and the rest of what it printed (all of it: the readers end with the pipes).
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        let rest: Vec<String> = self.lines.iter().collect();
        (status.code(), rest.join("\n"))
    }
}

/// `keyhole pair` on `store`, the camera paired from the code it prints.
fn pair(store: &Path, name: &str, camera: &CameraProcess) {
    let pairing = Interactive::spawn({
        let mut c = keyhole(store);
        c.args(["pair", "--name", name, "--no-qr", "--wait", "60"]);
        c
    });
    let code = pairing.line("KH1-");
    let printed = camera.pair(&code);
    assert!(printed.contains("Account code"), "{printed}");
    let (status, rest) = pairing.finish();
    assert_eq!(status, Some(0), "{rest}");
}

/// A camera event's clip exported on `store`, checked by ffprobe; returns its bytes.
fn export(store: &Path, camera: &str, clip: &str, to: &Path) -> Vec<u8> {
    ok(keyhole(store)
        .args(["export", camera, clip, "-o"])
        .arg(to)
        .output()
        .unwrap());
    if let Some((frames, w, h)) = keyhole_testkit::ffprobe(to) {
        assert_eq!((w, h), (320, 240));
        assert!(frames >= 10, "{frames} frames");
    }
    std::fs::read(to).unwrap()
}

/// The doorbell events `store` lists for `camera` (newest first), each with its clip id, oldest
/// first.
fn doorbell_clips(store: &Path, camera: &str) -> Vec<String> {
    json(store, &["events", camera])
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .filter(|e| e["kind"] == "doorbell")
        .map(|e| e["clip"].as_str().unwrap().to_owned())
        .collect()
}

async fn ring(camera: &CameraProcess, uploaded: u64) {
    camera.post("/doorbell").await;
    camera
        .wait_for("the event uploaded", 60, |s| {
            s["uploaded"].as_u64() >= Some(uploaded) && s["spool_objects"] == 0
        })
        .await;
}

const CAMERA: &str = "[source]\nkind = \"synthetic\"\nwidth = 320\nheight = 240\nfps = 15\n\
    [record]\nmode = \"events\"\n\
    [clip]\npre_roll_s = 0.0\npost_roll_s = 1.5\nmax_s = 4.0\ncooldown_s = 0.0\n\
    [motion]\nenabled = false\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_owner_flow_with_the_real_binaries() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| -> PathBuf { dir.path().join(name) };
    let server = ServerProcess::spawn(&at("server"));
    let laptop = at("laptop.keys");
    ok(keyhole(&laptop)
        .args(["init", "--server", &server.url, "--user", "ana"])
        .args(["--device", "laptop", "--phrase-file"])
        .arg(at("phrase.txt"))
        .output()
        .unwrap());

    // Pair the camera binary and ring the doorbell: one event, one clip.
    std::fs::create_dir_all(at("camera")).unwrap();
    let mut camera = CameraProcess::new(&binary("keyhole-camera"), &at("camera"), CAMERA);
    pair(&laptop, "Porch", &camera);
    camera.start().await;
    ring(&camera, 2).await;
    let clips = doorbell_clips(&laptop, "Porch");
    assert_eq!(clips.len(), 1);
    let first = export(&laptop, "Porch", &clips[0], &at("laptop.mp4"));

    // A tablet joins by approval: both show the same code, the user confirms on both.
    let tablet = at("tablet.keys");
    let mut joining = Interactive::spawn({
        let mut c = keyhole(&tablet);
        c.args(["join", "--server", &server.url, "--user", "ana"])
            .args(["--device", "tablet"]);
        c
    });
    joining.line("On one of the account's enrolled devices");
    let mut approving = Interactive::spawn({
        let mut c = keyhole(&laptop);
        c.args(["approve", "--wait", "30"]);
        c
    });
    let asking = approving.line("Device \"tablet\"");
    assert!(asking.contains("asks to join"), "{asking}");
    let approver_code = approving.line("Code: ");
    let joiner_code = joining.line("Code: ");
    assert_eq!(approver_code, joiner_code);
    assert_eq!(approver_code.len(), "Code: 123 456".len());
    joining.answer("yes");
    approving.answer("yes");
    let (status, rest) = approving.finish();
    assert_eq!(status, Some(0), "{rest}");
    assert!(rest.contains("Enrolled \"tablet\""), "{rest}");
    let (status, rest) = joining.finish();
    assert_eq!(status, Some(0), "{rest}");
    assert!(
        rest.contains("1 camera(s) with their whole history"),
        "{rest}"
    );

    // The tablet sees the whole history, and the same bytes.
    assert_eq!(doorbell_clips(&tablet, "Porch"), clips);
    assert_eq!(
        export(&tablet, "Porch", &clips[0], &at("tablet.mp4")),
        first
    );
    let devices = json(&tablet, &["devices"]);
    assert_eq!(devices.as_array().unwrap().len(), 2);
    // The laptop reported the account history it verified (its last sync); the tablet says when.
    let laptop_entry = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["this_device"] == false)
        .unwrap();
    assert!(laptop_entry["log_verified_at"].is_string(), "{devices}");

    // A device whose codes differ is refused on the joining side: nothing enrolled.
    let mut refused = Interactive::spawn({
        let mut c = keyhole(&at("stranger.keys"));
        c.args(["join", "--server", &server.url, "--user", "ana"])
            .args(["--device", "stranger"]);
        c
    });
    let mut approving = Interactive::spawn({
        let mut c = keyhole(&laptop);
        c.args(["approve", "stranger", "--wait", "30"]);
        c
    });
    refused.line("Code: ");
    approving.line("Code: ");
    refused.answer("no");
    let (status, rest) = refused.finish();
    assert_eq!(status, Some(2), "{rest}");
    assert!(rest.contains("the codes differ"), "{rest}");
    approving.answer("yes");
    let (status, rest) = approving.finish();
    assert_eq!(status, Some(2), "{rest}");
    assert!(rest.contains("cancelled"), "{rest}");
    assert!(!at("stranger.keys").exists());
    assert_eq!(json(&laptop, &["devices"]).as_array().unwrap().len(), 2);

    // Live view on the tablet, from the battery camera that wakes for it.
    let live = at("live.mp4");
    let watched = {
        let mut c = keyhole(&tablet);
        c.args(["live", "Porch", "--seconds", "2", "-o"]).arg(&live);
        tokio::task::spawn_blocking(move || c.output().unwrap())
            .await
            .unwrap()
    };
    ok(watched);
    if let Some((pictures, _, _)) = keyhole_testkit::ffprobe(&live) {
        assert!(pictures >= 10, "{pictures} pictures");
    }
    if let Some(codec) = keyhole_testkit::assert_sound_in_step(&live, 0.1) {
        assert_eq!(codec, "opus");
    }

    // The tablet is revoked: its credential stops working, the camera moves to epoch 2, and the
    // account password the tablet's holder knows is changed.
    let revoked = ok(keyhole(&laptop)
        .args(["revoke", "tablet", "--change-password"])
        .env("KEYHOLE_NEW_PASSWORD", "a new and longer password")
        .output()
        .unwrap());
    assert!(revoked.contains("new epoch 2"), "{revoked}");
    assert!(revoked.contains("password is changed"), "{revoked}");
    ring(&camera, 4).await;
    assert_eq!(camera.status().await.unwrap()["epoch"], 2);
    let listed = json(&laptop, &["cameras"]);
    assert_eq!(listed[0]["epoch"], 2);
    assert_eq!(listed[0]["last_epoch"], 2, "{listed:#}");
    assert_eq!(listed[0]["stale_epoch"], false);
    assert!(listed[0]["last_captured"].is_string());
    assert_eq!(listed[0]["withheld_after"], Value::Null, "{listed:#}");
    // The camera's signed heads say when it was last heard from.
    assert!(listed[0]["heard"].is_string(), "{listed:#}");
    assert_eq!(listed[0]["silent_since"], Value::Null, "{listed:#}");
    let after = doorbell_clips(&laptop, "Porch");
    assert_eq!(after.len(), 2);
    export(&laptop, "Porch", &after[1], &at("after.mp4"));
    let shut_out = keyhole(&tablet)
        .args(["export", "Porch", &after[1], "-o"])
        .arg(at("tablet-after.mp4"))
        .output()
        .unwrap();
    assert_eq!(shut_out.status.code(), Some(2));
    assert!(!at("tablet-after.mp4").exists());

    // The audit log shows the approval as this device's.
    let audit = json(&laptop, &["audit"]);
    assert!(
        audit
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "enrollment-approved" && e["by"] == "this device"),
        "{audit:#}"
    );

    // Retention: 30 days kept; nothing is that old yet, so the floor stays at the start.
    let kept = ok(keyhole(&laptop)
        .args(["retention", "Porch", "--days", "30"])
        .output()
        .unwrap());
    assert!(
        kept.contains("Porch keeps 30 days of footage. Objects before sequence 1 may be deleted"),
        "{kept}"
    );
    let shown = ok(keyhole(&laptop)
        .args(["retention", "Porch"])
        .output()
        .unwrap());
    assert!(shown.contains("Porch keeps 30 days"), "{shown}");

    // Transfer: removed with the footage kept, reset, paired into Bob's account.
    ok(keyhole(&laptop)
        .args(["remove", "Porch", "--keep-footage", "--yes"])
        .output()
        .unwrap());
    camera.stop();
    ok(camera.command().args(["reset", "--yes"]).output().unwrap());
    let bob = at("bob.keys");
    ok(keyhole(&bob)
        .args(["init", "--server", &server.url, "--user", "bob"])
        .args(["--device", "bob's phone", "--phrase-file"])
        .arg(at("bob-phrase.txt"))
        .output()
        .unwrap());
    pair(&bob, "Hall", &camera);
    camera.start().await;
    ring(&camera, 2).await;

    // Bob sees only what the camera recorded for him; Ana keeps her two clips and sees nothing new.
    let bobs = doorbell_clips(&bob, "Hall");
    assert_eq!(bobs.len(), 1);
    assert!(!after.contains(&bobs[0]));
    export(&bob, "Hall", &bobs[0], &at("bob.mp4"));
    assert_eq!(doorbell_clips(&laptop, "Porch"), after);
    assert_eq!(export(&laptop, "Porch", &after[0], &at("kept.mp4")), first);
    let cameras = json(&laptop, &["cameras"]);
    assert_eq!(cameras.as_array().unwrap().len(), 1, "{cameras:#}");
    assert_eq!(cameras[0]["removed"], true);
    let theft = keyhole(&laptop)
        .args(["export", "Porch", &bobs[0], "-o"])
        .arg(at("theft.mp4"))
        .output()
        .unwrap();
    assert_eq!(theft.status.code(), Some(2));
    assert!(!at("theft.mp4").exists());

    camera.stop();
    server.stop();
}
