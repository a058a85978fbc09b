//! Bad input to the camera agent: a config with an unknown field or an out-of-range value, a
//! mistyped or garbage pairing code, a pairing code already used, a damaged identity file. Each
//! gets a clear error naming the problem (exit status 2 for the config, 1 for a command that
//! failed); nothing already stored is changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Command, Output, Stdio};

use keyhole_client::Owner;
use keyhole_client::core::Timestamp;
use keyhole_client::core::recovery::KdfParams;
use keyhole_http::Endpoint;
use keyhole_testkit::TestServer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const BIN: &str = env!("CARGO_BIN_EXE_keyhole-camera");

fn camera(config: &Path, args: &[&str], stdin: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(config)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Exit status `code` and a message on stderr containing `needle`.
fn refused(out: &Output, code: i32, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_configs_codes_and_state_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let config = dir.path().join("camera.toml");

    // Config: an unknown field, a value out of range, not TOML at all.
    for (text, needle) in [
        (
            format!("state_dir = {state:?}\nresolution = 4\n"),
            "resolution",
        ),
        (
            format!("state_dir = {state:?}\n[motion]\nsensitivity = 150\n"),
            "sensitivity",
        ),
        ("state_dir = [unclosed".to_owned(), "camera.toml"),
        (
            format!("state_dir = {state:?}\ncontrol = \"0.0.0.0:8787\"\n"),
            "loopback",
        ),
    ] {
        std::fs::write(&config, text).unwrap();
        refused(&camera(&config, &["status"], ""), 2, needle);
    }
    // A control address of this test's own, so `status` never asks a camera that happens to
    // run on the default one.
    let control = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    std::fs::write(
        &config,
        format!("state_dir = {state:?}\ncontrol = \"{control}\"\n"),
    )
    .unwrap();

    // Pairing codes: garbage, a typo, empty.
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(3);
    let (owner, _) = Owner::create(
        &Endpoint {
            url: server.url.clone(),
            pin: None,
            allow_plain_http: false,
        },
        "ana",
        "correct horse battery",
        "phone",
        KdfParams::MINIMUM,
        Timestamp(1_795_735_205_000),
        rng,
    )
    .await
    .unwrap();
    let code = owner
        .start_pairing(&server.url, None, rng)
        .await
        .unwrap()
        .to_text()
        .to_string();
    let mut typo = code.clone().into_bytes();
    let at = typo.len() - 2;
    typo[at] = if typo[at] == b'A' { b'B' } else { b'A' };
    for (input, needle) in [
        ("not a code\n".to_owned(), "pairing code"),
        (String::from_utf8(typo).unwrap(), "checksum"),
        (String::new(), "pairing code"),
    ] {
        refused(&camera(&config, &["pair", "-"], &input), 1, needle);
        assert!(!state.join("identity").exists(), "nothing paired");
    }

    // The right code pairs once; a second camera with the same code is refused.
    let out = camera(&config, &["pair", "-"], &code);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let identity = std::fs::read(state.join("identity")).unwrap();
    let other = dir.path().join("other.toml");
    std::fs::write(
        &other,
        format!("state_dir = {:?}\n", dir.path().join("other-state")),
    )
    .unwrap();
    refused(&camera(&other, &["pair", "-"], &code), 1, "already used");
    // Pairing again over a paired camera is refused; its identity is unchanged.
    refused(&camera(&config, &["pair", "-"], &code), 1, "reset");
    assert_eq!(std::fs::read(state.join("identity")).unwrap(), identity);

    // Another camera answering on this one's control address is not taken for it: the status
    // is this folder's camera's, and says so.
    let listener = tokio::net::TcpListener::bind(control).await.unwrap();
    let other = axum::Router::new().route(
        "/status",
        axum::routing::get(|| async {
            axum::Json(serde_json::json!({"camera_id": "ffffffffffffffffffffffffffffffff"}))
        }),
    );
    let impostor = tokio::spawn(async move { axum::serve(listener, other).await });
    let out = camera(&config, &["status", "--json"], "");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("another camera (ffffffffffffffffffffffffffffffff) answers"),
        "{stderr}"
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(shown["camera_id"], "ffffffffffffffffffffffffffffffff");
    assert_eq!(shown["camera_id"].as_str().unwrap().len(), 32);
    impostor.abort();

    // A damaged identity file: a clear error, and the file left for inspection.
    std::fs::write(state.join("identity"), &identity[..identity.len() / 2]).unwrap();
    refused(&camera(&config, &["status"], ""), 1, "identity");
    assert_eq!(
        std::fs::read(state.join("identity")).unwrap().len(),
        identity.len() / 2
    );
    server.stop().await;
}

/// The agent's help and its first refusals, pinned: `--help`, every subcommand's `--help` (the
/// list read from the first) and a missing configuration, each in
/// `tests/snapshots/cli/NAME.txt`; `KEYHOLE_BLESS=1` writes them anew.
#[test]
fn help_and_first_errors_match_their_snapshots() {
    use keyhole_testkit::snapshots;
    let (commands, mut cases) = snapshots::help_cases(BIN);
    assert!(
        commands.len() >= 4,
        "commands read from the help: {commands:?}"
    );
    cases.push((
        "error-unknown-command".to_owned(),
        snapshots::run(BIN, &["nosuch"]),
    ));
    cases.push((
        "error-missing-config".to_owned(),
        snapshots::run(BIN, &["--config", "/nonexistent/camera.toml", "status"]),
    ));
    snapshots::assert_match(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/cli"),
        &cases,
    );
}
