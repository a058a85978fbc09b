//! The MP4 writer and reader against `ffmpeg`, the reference most players agree with: files
//! `mp4::write` makes must probe and decode cleanly, and files `ffmpeg` makes (with B-frames)
//! must read back into the frames it encoded. Skipped when `ffmpeg`/`ffprobe` are missing,
//! except under CI, where `.ci/run` installs them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;
use std::process::Command;

use keyhole_media::{h264, mp4};

/// Two seconds at 15 frames per second.
const FRAMES: usize = 30;
const TEST_SOURCE: &str = "testsrc=duration=2:size=320x240:rate=15";

/// Whether both tools run; under CI their absence is a failure, not a skip.
fn have_ffmpeg(test: &str) -> bool {
    let runs = |tool: &str| {
        Command::new(tool)
            .arg("-version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if runs("ffmpeg") && runs("ffprobe") {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("ffprobe is required (see .ci/run)");
    }
    eprintln!("{test}: skipped, ffmpeg and ffprobe are not both on PATH");
    false
}

/// Runs `ffmpeg` with `args` (after quiet, non-interactive defaults) and checks it succeeded.
fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-y", "-v", "error"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ffprobe's codec, size and decoded frame count for the video stream, as `h264,W,H,N`.
fn probe(file: &Path) -> String {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Decodes every frame of `file` and checks `ffmpeg` had nothing to complain about.
fn decodes_cleanly(file: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "ffmpeg could not decode {file:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "",
        "ffmpeg reported errors decoding {file:?}"
    );
}

/// [`TEST_SOURCE`] encoded by libx264 (a key frame every 15 pictures, no B-frames), as access
/// units 6000 ticks apart.
fn test_stream(dir: &Path) -> Vec<h264::AccessUnit> {
    let raw = dir.join("out.h264");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        TEST_SOURCE,
        "-c:v",
        "libx264",
        "-g",
        "15",
        "-bf",
        "0",
        "-f",
        "h264",
        raw.to_str().unwrap(),
    ]);
    let stream = std::fs::read(&raw).unwrap();
    h264::group_access_units(h264::split_annex_b(&stream), 6000)
}

#[test]
fn ffmpeg_plays_what_write_makes() {
    if !have_ffmpeg("ffmpeg_plays_what_write_makes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let aus = test_stream(dir.path());
    assert_eq!(aus.len(), FRAMES);
    assert_eq!(aus.iter().filter(|au| au.keyframe).count(), 2, "-g 15");

    let file = mp4::write(&aus, None).unwrap();
    let path = dir.path().join("file.mp4");
    std::fs::write(&path, &file).unwrap();
    assert_eq!(probe(&path), format!("h264,320,240,{FRAMES}"));
    decodes_cleanly(&path);

    // And our own reader agrees with what was written.
    let video = mp4::read(&file).unwrap();
    assert_eq!((video.width, video.height), (320, 240));
    assert_eq!(video.access_units.len(), FRAMES);
    for (read, written) in video.access_units.iter().zip(&aus) {
        assert_eq!(
            (read.dts, read.pts_offset, read.keyframe),
            (written.dts, 0, written.keyframe)
        );
    }
}

#[test]
fn reads_ffmpeg_files_with_b_frames() {
    if !have_ffmpeg("reads_ffmpeg_files_with_b_frames") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        TEST_SOURCE,
        "-c:v",
        "libx264",
        "-g",
        "15",
        "-bf",
        "2",
        "-movflags",
        "+faststart",
        input.to_str().unwrap(),
    ]);
    let video = mp4::read(&std::fs::read(&input).unwrap()).unwrap();
    assert_eq!((video.width, video.height), (320, 240));
    let aus = &video.access_units;
    assert_eq!(aus.len(), FRAMES);
    assert!(aus[0].keyframe);
    assert!(
        aus.iter().any(|au| au.pts_offset != 0),
        "B-frames are shown after they are decoded"
    );
    assert!(aus.windows(2).all(|w| w[0].dts < w[1].dts));
    // Key frames carry their parameter sets, so a clip may start at any of them.
    for au in aus.iter().filter(|au| au.keyframe) {
        assert_eq!(au.find(h264::nal::SPS), Some(video.config.sps()));
        assert_eq!(
            au.find(h264::nal::PPS),
            Some(video.config.parameter_sets()[1].as_slice())
        );
    }

    let output = dir.path().join("out.mp4");
    std::fs::write(&output, mp4::write(aus, None).unwrap()).unwrap();
    assert_eq!(probe(&output), format!("h264,320,240,{FRAMES}"));
    decodes_cleanly(&output);
}

#[test]
fn ffmpeg_plays_the_fragmented_file_live_view_makes() {
    if !have_ffmpeg("ffmpeg_plays_the_fragmented_file_live_view_makes") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let aus = test_stream(dir.path());
    let sps = aus[0].find(h264::nal::SPS).unwrap();
    let pps = aus[0].find(h264::nal::PPS).unwrap();
    let mut file = mp4::fragmented_init(&mp4::VideoConfig::h264(sps, pps), None).unwrap();
    for (n, au) in aus.iter().enumerate() {
        file.extend(mp4::fragment(u32::try_from(n + 1).unwrap(), au, 6000).unwrap());
    }
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &file).unwrap();
    assert_eq!(probe(&path), format!("h264,320,240,{FRAMES}"));
    decodes_cleanly(&path);
}

/// Per stream of `file`: its type, codec, start time and duration in seconds.
fn streams(file: &Path) -> Vec<(String, String, f64, f64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries"])
        .args([
            "stream=codec_type,codec_name,start_time,duration",
            "-of",
            "csv=p=0",
        ])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "ffprobe failed on {file:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            let seconds = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
            (
                f[1].to_owned(),
                f[0].to_owned(),
                seconds(f[2]),
                seconds(f[3]),
            )
        })
        .collect()
}

/// [`TEST_SOURCE`] with two seconds of a 440 Hz tone, as ffmpeg writes them: H.264 and, by
/// `codec`, AAC-LC (`aac`) or Opus (`libopus`), 16 kHz mono, in one MP4.
fn test_movie(dir: &Path, codec: &str) -> mp4::Mp4Video {
    let input = dir.join("in.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        TEST_SOURCE,
        "-f",
        "lavfi",
        "-i",
        "sine=frequency=440:sample_rate=16000:duration=2",
        "-c:v",
        "libx264",
        "-g",
        "15",
        "-bf",
        "0",
        "-c:a",
        codec,
        "-ac",
        "1",
        input.to_str().unwrap(),
    ]);
    mp4::read(&std::fs::read(&input).unwrap()).unwrap()
}

#[test]
fn ffmpeg_plays_sound_and_pictures_in_step() {
    if !have_ffmpeg("ffmpeg_plays_sound_and_pictures_in_step") {
        return;
    }
    // AAC frames of 1024 samples at 16 kHz; Opus packets of 20 ms at 48 kHz.
    for (codec, name, timescale, step) in [
        ("aac", "aac", 16_000, 5760),
        ("libopus", "opus", 48_000, 1800),
    ] {
        in_step(codec, name, timescale, step);
    }
}

fn in_step(codec: &str, name: &str, timescale: u32, step: u64) {
    let dir = tempfile::tempdir().unwrap();
    let movie = test_movie(dir.path(), codec);
    let audio = movie.audio.as_ref().expect("the sound track is read");
    assert_eq!(
        (audio.config.timescale(), audio.config.channels()),
        (timescale, 1)
    );
    assert!(
        audio.frames.len() as u64 >= 2 * 90_000 / step,
        "two seconds of frames"
    );
    assert!(audio.frames.windows(2).all(|w| w[1].pts - w[0].pts == step));

    // The span an event cut from the middle: both tracks, starting together, lasting alike.
    let (cut, at) = mp4::cut(
        &mp4::write(&movie.access_units, movie.audio.as_ref()).unwrap(),
        6000 * 16,
        6000 * 27,
    )
    .unwrap();
    assert_eq!(at, 6000 * 15, "from the key frame before");
    let path = dir.path().join("cut.mp4");
    std::fs::write(&path, &cut).unwrap();
    decodes_cleanly(&path);
    let found = streams(&path);
    let [
        (video, v_codec, v_start, v_len),
        (sound, a_codec, a_start, a_len),
    ] = &found[..]
    else {
        panic!("two streams expected: {found:?}");
    };
    assert_eq!((video.as_str(), v_codec.as_str()), ("video", "h264"));
    assert_eq!((sound.as_str(), a_codec.as_str()), ("audio", name));
    let frame = 1.0 / 15.0;
    assert!((v_len - 12.0 * frame).abs() < 1e-3, "{found:?}");
    assert!(
        (a_len - v_len).abs() <= frame,
        "durations within a frame: {found:?}"
    );
    assert!(
        *v_start == 0.0 && (0.0..step as f64 / 90_000.0).contains(a_start),
        "sound starts with the first picture, at most one sound frame later: {found:?}"
    );
    // What was cut reads back to the same frames, on the same clock.
    let back = mp4::read(&cut).unwrap();
    let back_audio = back.audio.unwrap();
    let expected: Vec<_> = audio
        .frames
        .iter()
        .filter(|f| (6000 * 15..6000 * 27).contains(&f.pts))
        .collect();
    assert_eq!(back_audio.frames.len(), expected.len());
    for (got, want) in back_audio.frames.iter().zip(expected) {
        assert_eq!(got.data, want.data);
        assert!(
            (got.pts + 6000 * 15).abs_diff(want.pts) <= 90,
            "sound keeps its time to the millisecond"
        );
    }
}

#[test]
fn ffmpeg_plays_live_view_with_opus_sound() {
    if !have_ffmpeg("ffmpeg_plays_live_view_with_opus_sound") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let movie = test_movie(dir.path(), "libopus");
    let audio = movie.audio.unwrap();
    let mut file = mp4::fragmented_init(&movie.config, Some(&audio.config)).unwrap();
    let (mut pictures, mut sounds) = (
        movie.access_units.iter().peekable(),
        audio.frames.iter().peekable(),
    );
    for sequence in 1u32.. {
        let fragment = match (pictures.peek(), sounds.peek()) {
            (Some(au), Some(f)) if au.dts <= f.pts => {
                mp4::fragment(sequence, pictures.next().unwrap(), 6000)
            }
            (Some(_), None) => mp4::fragment(sequence, pictures.next().unwrap(), 6000),
            (_, Some(_)) => mp4::audio_fragment(sequence, sounds.next().unwrap(), &audio.config),
            (None, None) => break,
        };
        file.extend(fragment.unwrap());
    }
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &file).unwrap();
    decodes_cleanly(&path);
    let found = streams(&path);
    assert_eq!(
        found.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        ["h264", "opus"],
        "{found:?}"
    );
    assert_eq!(probe(&path), format!("h264,320,240,{FRAMES}"));
}

/// ffmpeg's `hvcC` for an x265 stream reads as that stream's own parameter sets, with the
/// profile, level and size ffprobe reports; the record written from those sets says the same.
#[test]
fn ffmpegs_hvcc_is_the_streams_parameter_sets() {
    use keyhole_media::h265::{self, HevcConfig};
    if !have_ffmpeg("ffmpegs_hvcc_is_the_streams_parameter_sets") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (raw, mp4) = (dir.path().join("door.hevc"), dir.path().join("door.mp4"));
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        TEST_SOURCE,
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=none",
        "-f",
        "hevc",
        raw.to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-i",
        raw.to_str().unwrap(),
        "-c",
        "copy",
        "-tag:v",
        "hvc1",
        mp4.to_str().unwrap(),
    ]);
    let stream = std::fs::read(&raw).unwrap();
    let units = h264::split_annex_b(&stream);
    let first = |kind| {
        units
            .iter()
            .find(|u| h265::nal_type(u) == kind)
            .expect("the stream has its parameter sets")
    };
    let ours = HevcConfig::new(
        first(h265::nal::VPS),
        first(h265::nal::SPS),
        first(h265::nal::PPS),
    )
    .unwrap();
    let file = std::fs::read(&mp4).unwrap();
    let at = file
        .windows(4)
        .position(|w| w == b"hvcC")
        .expect("an hvcC box");
    let size = u32::from_be_bytes(file[at - 4..at].try_into().unwrap()) as usize;
    let theirs = HevcConfig::from_hvcc(&file[at + 4..at - 4 + size]).unwrap();
    assert_eq!(theirs, ours);
    assert_eq!(HevcConfig::from_hvcc(&ours.to_hvcc()).unwrap(), ours);
    let probed = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .args(["stream=profile,level,width,height", "-of", "csv=p=0"])
        .arg(&mp4)
        .output()
        .unwrap();
    let info = ours.info;
    assert_eq!(
        String::from_utf8_lossy(&probed.stdout).trim(),
        format!("Main,{},{},{}", info.width, info.height, info.ptl.level)
    );
}

/// [`TEST_SOURCE`] encoded by x265 (Main profile, a key frame every 15 pictures, no B-frames),
/// as raw Annex B.
fn h265_stream(dir: &Path) -> Vec<u8> {
    let raw = dir.join("out.hevc");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        TEST_SOURCE,
        "-pix_fmt",
        "yuv420p",
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=none:keyint=15:min-keyint=15:bframes=0:scenecut=0",
        "-f",
        "hevc",
        raw.to_str().unwrap(),
    ]);
    std::fs::read(&raw).unwrap()
}

/// An x265 stream, grouped into access units as it arrives in pieces, is written as an `hvc1`
/// MP4 that ffmpeg decodes frame for frame, and as fragments for live view likewise; our reader
/// gives back the same pictures.
#[test]
fn ffmpeg_plays_the_h265_files_write_and_fragment_make() {
    use keyhole_media::Codec;
    if !have_ffmpeg("ffmpeg_plays_the_h265_files_write_and_fragment_make") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stream = h265_stream(dir.path());
    let mut reader = h264::AnnexBReader::of(Codec::H265, 6000);
    let mut aus = Vec::new();
    for piece in stream.chunks(1000) {
        aus.extend(reader.push(piece));
    }
    aus.extend(reader.finish());
    assert_eq!(aus.len(), FRAMES);
    assert_eq!(aus.iter().filter(|au| au.keyframe).count(), 2, "keyint 15");
    assert!(aus.iter().all(|au| au.codec == Codec::H265));

    let file = mp4::write(&aus, None).unwrap();
    let path = dir.path().join("door.mp4");
    std::fs::write(&path, &file).unwrap();
    assert_eq!(probe(&path), format!("hevc,320,240,{FRAMES}"));
    decodes_cleanly(&path);
    let video = mp4::read(&file).unwrap();
    assert_eq!((video.width, video.height), (320, 240));
    assert_eq!(video.config, mp4::VideoConfig::find(&aus).unwrap());
    assert_eq!(video.access_units, aus);

    let mut live = mp4::fragmented_init(&video.config, None).unwrap();
    for (n, au) in aus.iter().enumerate() {
        live.extend(mp4::fragment(u32::try_from(n + 1).unwrap(), au, 6000).unwrap());
    }
    let path = dir.path().join("live.mp4");
    std::fs::write(&path, &live).unwrap();
    assert_eq!(probe(&path), format!("hevc,320,240,{FRAMES}"));
    decodes_cleanly(&path);
}

/// An H.265 MP4 ffmpeg makes (`hvc1`, parameter sets in `hvcC` only) reads into the stream's
/// own pictures, each key frame with the parameter sets in front; written again, it plays.
#[test]
fn reads_ffmpegs_h265_files() {
    use keyhole_media::{Codec, h265};
    if !have_ffmpeg("reads_ffmpegs_h265_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let stream = h265_stream(dir.path());
    let theirs = dir.path().join("theirs.mp4");
    ffmpeg(&[
        "-i",
        dir.path().join("out.hevc").to_str().unwrap(),
        "-c",
        "copy",
        "-tag:v",
        "hvc1",
        theirs.to_str().unwrap(),
    ]);
    let video = mp4::read(&std::fs::read(&theirs).unwrap()).unwrap();
    let units = h264::split_annex_b(&stream);
    let expected = h264::group_access_units_of(Codec::H265, units.iter().copied(), 6000);
    assert_eq!(video.access_units.len(), FRAMES);
    for (read, made) in video.access_units.iter().zip(&expected) {
        assert_eq!(read.keyframe, made.keyframe);
        // Annex B cannot tell a unit's trailing zero bytes from the next start code's.
        let pictures = |au: &h264::AccessUnit| -> Vec<Vec<u8>> {
            au.picture_nals()
                .map(|n| n[..n.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1)].to_vec())
                .collect()
        };
        assert!(
            pictures(read) == pictures(made),
            "the stream's own pictures"
        );
        if read.keyframe {
            for kind in [h265::nal::VPS, h265::nal::SPS, h265::nal::PPS] {
                assert!(
                    read.find(kind).is_some(),
                    "a key frame carries its parameter sets"
                );
            }
        }
    }
    let again = dir.path().join("again.mp4");
    std::fs::write(&again, mp4::write(&video.access_units, None).unwrap()).unwrap();
    assert_eq!(probe(&again), format!("hevc,320,240,{FRAMES}"));
    decodes_cleanly(&again);
}
