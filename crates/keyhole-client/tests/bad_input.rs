//! Bad input to the `keyhole` command: a truncated or garbage key store, malformed ids, pins,
//! phrases and passphrases, a wrong password, approving when nobody waits. Each gets a clear
//! error and exit status 2, and no file is written or changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::{Command, Output};

use keyhole_testkit::process::ServerProcess;

fn keyhole(store: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_keyhole"));
    c.arg("--store")
        .arg(store)
        .env("KEYHOLE_PASSWORD", "correct horse battery")
        .env("KEYHOLE_PASSPHRASE", "a long key store passphrase");
    c
}

fn refused(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
}

#[test]
fn bad_input_gets_clear_errors_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = ServerProcess::spawn(&dir.path().join("server"));
    let store = dir.path().join("laptop.keys");
    let init = |store: &Path| {
        let mut c = keyhole(store);
        c.args(["init", "--server", &server.url, "--user", "ana"])
            .arg("--phrase-file")
            .arg(dir.path().join(format!(
                "phrase-{}",
                store.file_name().unwrap().to_string_lossy()
            )));
        c
    };

    // Set-up: a malformed pin, a short passphrase.
    refused(
        &init(&store).args(["--pin", "zz"]).output().unwrap(),
        "--pin must be",
    );
    refused(
        &init(&store)
            .env("KEYHOLE_PASSPHRASE", "short")
            .output()
            .unwrap(),
        "at least 8 characters",
    );
    assert!(!store.exists());
    let out = init(&store).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sealed = std::fs::read(&store).unwrap();

    // A truncated or garbage key store, and a wrong passphrase: refused, the file untouched.
    let cut = dir.path().join("cut.keys");
    std::fs::write(&cut, &sealed[..sealed.len() / 2]).unwrap();
    refused(
        &keyhole(&cut).arg("cameras").output().unwrap(),
        "wrong passphrase",
    );
    let garbage = dir.path().join("garbage.keys");
    std::fs::write(&garbage, b"this is not a key store").unwrap();
    refused(
        &keyhole(&garbage).arg("cameras").output().unwrap(),
        "not a Keyhole key store",
    );
    refused(
        &keyhole(&store)
            .env("KEYHOLE_PASSPHRASE", "not the passphrase")
            .arg("devices")
            .output()
            .unwrap(),
        "wrong passphrase",
    );
    refused(
        &keyhole(&dir.path().join("missing.keys"))
            .arg("devices")
            .output()
            .unwrap(),
        "keyhole init",
    );
    assert_eq!(std::fs::read(&store).unwrap(), sealed);

    // Names and ids that do not exist or do not parse.
    refused(
        &keyhole(&store)
            .args(["events", "Nowhere"])
            .output()
            .unwrap(),
        "no camera \"Nowhere\"",
    );
    refused(
        &keyhole(&store).args(["revoke", "nobody"]).output().unwrap(),
        "no device \"nobody\"",
    );
    refused(
        &keyhole(&store)
            .args(["approve", "--wait", "0"])
            .output()
            .unwrap(),
        "no device is waiting",
    );

    // Joining or recovering with a wrong password or phrase writes no key store.
    let tablet = dir.path().join("tablet.keys");
    refused(
        &keyhole(&tablet)
            .env("KEYHOLE_PASSWORD", "not the password")
            .args(["join", "--server", &server.url, "--user", "ana"])
            .output()
            .unwrap(),
        "unauthorized",
    );
    refused(
        &keyhole(&tablet)
            .env("KEYHOLE_RECOVERY_PHRASE", "abandon ability able about")
            .args(["recover", "--server", &server.url, "--user", "ana"])
            .output()
            .unwrap(),
        "recovery phrase",
    );
    assert!(!tablet.exists());
    assert_eq!(std::fs::read(&store).unwrap(), sealed);
    server.stop();
}
