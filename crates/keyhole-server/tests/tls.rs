//! HTTPS with the self-signed certificate made on first start, and the binary run with no
//! arguments on a fresh data folder.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use keyhole_server::{AppState, Config, tls};

fn client_trusting(cert_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn self_signed_https_is_served_and_stable() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: dir.path().to_owned(),
        ..Config::default()
    };
    let first = tls::load_or_create(&config).unwrap();
    assert!(first.self_signed);
    let key = dir.path().join("tls/key.pem");
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The same certificate after a restart, so pinned fingerprints stay valid.
    assert_eq!(
        tls::load_or_create(&config).unwrap().fingerprint,
        first.fingerprint
    );

    let state = AppState::open(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(tls::serve_https(
        listener,
        state,
        first.config.clone(),
        async {
            let _ = rx.await;
        },
    ));
    let pem = std::fs::read(dir.path().join("tls/cert.pem")).unwrap();
    let health = client_trusting(&pem)
        .get(format!("https://{addr}/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // A client that does not trust the certificate refuses the connection.
    assert!(
        reqwest::Client::new()
            .get(format!("https://{addr}/health"))
            .send()
            .await
            .is_err()
    );
    // Plain HTTP to the HTTPS port gets nothing useful.
    assert!(
        reqwest::Client::new()
            .get(format!("http://{addr}/health"))
            .send()
            .await
            .map(|r| !r.status().is_success())
            .unwrap_or(true)
    );
    let _ = tx.send(());
    server.await.unwrap();
}

#[tokio::test]
async fn configured_certificate_is_used_and_half_a_pair_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let made = Config {
        data_dir: dir.path().join("a"),
        ..Config::default()
    };
    let generated = tls::load_or_create(&made).unwrap();
    let config = Config {
        data_dir: dir.path().join("b"),
        tls_cert: Some(dir.path().join("a/tls/cert.pem")),
        tls_key: Some(dir.path().join("a/tls/key.pem")),
        ..Config::default()
    };
    let loaded = tls::load_or_create(&config).unwrap();
    assert!(!loaded.self_signed);
    assert_eq!(loaded.fingerprint, generated.fingerprint);
    let half = Config {
        tls_key: None,
        ..config
    };
    assert!(tls::load_or_create(&half).is_err());
}

/// `keyhole-server` with no arguments: embedded storage in the default data folder, HTTPS on
/// 127.0.0.1:8443 with a fresh self-signed certificate, `/health` answering.
#[tokio::test]
async fn binary_with_no_arguments_serves_health() {
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keyhole-server"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert_eq!(first, "keyhole-server listening on https://127.0.0.1:8443");
    let fingerprint_line = lines.next().unwrap().unwrap();
    assert!(fingerprint_line.starts_with("self-signed certificate, SHA-256 fingerprint "));
    let data = home.path().join(".local/share/keyhole-server");
    assert!(data.join("keyhole.sqlite3").exists());
    let pem = std::fs::read(data.join("tls/cert.pem")).unwrap();
    let health = client_trusting(&pem)
        .get("https://127.0.0.1:8443/health")
        .send()
        .await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(health.unwrap().status(), 200);
    // `fingerprint` prints the same fingerprint the server announced.
    let out = Command::new(env!("CARGO_BIN_EXE_keyhole-server"))
        .arg("fingerprint")
        .env("HOME", home.path())
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(fingerprint_line.ends_with(printed.trim()), "{printed}");
}

/// Every setting can come from the environment; bad settings are named.
#[test]
fn settings_from_environment_and_bad_settings() {
    let home = tempfile::tempdir().unwrap();
    let run = |envs: &[(&str, &str)], args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_keyhole-server"));
        cmd.env_clear().env("HOME", home.path()).args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    let data = home.path().join("elsewhere");
    let data_s = data.to_str().unwrap();
    let ok = run(
        &[
            ("KEYHOLE_DATA_DIR", data_s),
            ("KEYHOLE_MAX_OBJECT_BYTES", "1000"),
        ],
        &["check"],
    );
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(
        data.join("keyhole.sqlite3").exists(),
        "KEYHOLE_DATA_DIR was used"
    );
    let bad = run(
        &[
            ("KEYHOLE_DATA_DIR", data_s),
            ("KEYHOLE_MAX_OBJECT_BYTES", "lots"),
        ],
        &["check"],
    );
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("max_object_bytes"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    let file = home.path().join("keyhole.toml");
    std::fs::write(&file, "data_dir = \"x\"\nshiny = true\n").unwrap();
    let unknown = run(&[], &["--config", file.to_str().unwrap(), "check"]);
    assert!(!unknown.status.success());
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("shiny"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
    let help = run(&[], &["--help"]);
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    for word in [
        "check",
        "fingerprint",
        "--insecure-http",
        "KEYHOLE_MAX_OBJECT_BYTES",
        "retention_sweep_secs",
    ] {
        assert!(help.contains(word), "--help lacks {word}");
    }
}
