//! `keyhole-demo`, the README's first command, runs to the end and shows what it promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[test]
fn demo_runs_and_shows_it_working() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyhole-demo"))
        .arg("--dir")
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "6 of 6 objects verified",
        "every object verified; none missing",
        "not found in",
        "5 of 6 objects verified",
        "tampered: chunk",
        "with the password it deletes nothing",
        "the server refuses it",
        "the camera refuses it: ALERT",
        "and the owner's phone refuses it",
        "a revoked device refused",
        "frames of opus sound",
        "Demo complete",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in\n{stdout}"
        );
    }
    // The exported clips are there, as MP4 that plays, and the server's files are too.
    let exported: Vec<_> = std::fs::read_dir(dir.path().join("exported"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(exported.len(), 3);
    for clip in &exported {
        assert_eq!(clip.extension().unwrap(), "mp4");
        if let Some((frames, w, h)) = keyhole_testkit::ffprobe(clip) {
            assert_eq!((w, h), (320, 240));
            assert!(frames >= 45, "{frames} frames");
        }
        if let Some(codec) = keyhole_testkit::assert_sound_in_step(clip, 1.0 / 15.0) {
            assert_eq!(codec, "opus");
        }
    }
    assert!(dir.path().join("keyhole.sqlite3").exists());
}
