//! `keyhole demo`, the README's first command, runs to the end and shows what it promises.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

#[test]
fn demo_runs_and_shows_it_working() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keyhole"))
        .args(["demo", "--dir"])
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
        let Ok(probe) = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=codec_name,width,height,nb_read_frames",
            ])
            .args(["-of", "csv=p=0"])
            .arg(clip)
            .output()
        else {
            assert!(
                std::env::var_os("CI").is_none(),
                "ffprobe is required (see .ci/run)"
            );
            eprintln!("ffprobe not installed: exported MP4 not checked");
            continue;
        };
        assert!(probe.status.success() && probe.stderr.is_empty());
        let fields = String::from_utf8(probe.stdout).unwrap();
        let fields: Vec<&str> = fields.trim().split(',').collect();
        assert_eq!(fields[..3], ["h264", "320", "240"]);
        assert!(fields[3].parse::<u32>().unwrap() >= 45, "{fields:?}");
    }
    assert!(dir.path().join("keyhole.sqlite3").exists());
}
