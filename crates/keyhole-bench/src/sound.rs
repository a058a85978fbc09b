//! What sound costs a camera: the CPU time and bytes of a 10-second clip with sound against the
//! same clip's pictures alone, on one thread. The pictures are the synthetic camera's at 640x480
//! and 15 frames a second with a visitor walking through (encoded by OpenH264, as the camera
//! does); the sound is its tone encoded as Opus at 16 kHz, and, for an IP camera's G.711, the
//! same tone as 8 kHz mu-law turned into PCM and encoded as Opus, as the RTSP source does. Then
//! what an IP camera's H.265 costs against its H.264 at the same picture.

use std::fmt::Write as _;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use keyhole_camera::sound::Tone;
use keyhole_camera::video::synthetic::{SyntheticCamera, SyntheticSettings};
use keyhole_media::audio::Audio;
use keyhole_media::{AccessUnit, mp4};
use keyhole_sound::{OpusEncoder, from_mu_law, to_mu_law};

/// The quickest of `runs` runs of `f`, and its last result.
fn best<T>(runs: usize, mut f: impl FnMut() -> anyhow::Result<T>) -> anyhow::Result<(Duration, T)> {
    let mut fastest = Duration::MAX;
    let mut last = None;
    for _ in 0..runs {
        let started = Instant::now();
        let out = f()?;
        fastest = fastest.min(started.elapsed());
        last = Some(out);
    }
    Ok((fastest, last.context("no run")?))
}

fn pictures(seconds: u64) -> anyhow::Result<Vec<AccessUnit>> {
    let mut camera = SyntheticCamera::new(SyntheticSettings {
        width: 640,
        height: 480,
        fps: 15,
        keyframe_interval: 15,
    })?;
    camera.set_motion(true);
    (0..seconds * 15)
        .map(|_| Ok(camera.next_frame()?))
        .collect()
}

/// `seconds` of the synthetic tone at `rate`, encoded as 20 ms Opus packets; with `g711`, the
/// tone goes through mu-law and back first, as an IP camera's sound does.
fn opus(seconds: u64, rate: u32, g711: bool) -> anyhow::Result<Audio> {
    let mut tone = Tone::default();
    let pcm = tone.next((seconds * u64::from(rate)) as usize, rate, true);
    let mut encoder = OpusEncoder::new(rate, 24_000)?;
    let mut frames = Vec::new();
    // A picture's worth at a time, as the sources deliver it.
    let step = rate as usize / 15;
    for (i, piece) in pcm.chunks(step).enumerate() {
        let piece: Vec<i16> = if g711 {
            piece.iter().map(|s| from_mu_law(to_mu_law(*s))).collect()
        } else {
            piece.to_vec()
        };
        let at = i as u64 * 6000;
        frames.extend(encoder.push(at, &piece)?);
    }
    Ok(Audio {
        config: Arc::unwrap_or_clone(encoder.config().clone()),
        frames,
    })
}

pub fn run(quick: bool) -> anyhow::Result<String> {
    let seconds = if quick { 1 } else { 10 };
    let runs = if quick { 1 } else { 5 };
    let (video_time, aus) = best(runs, || pictures(seconds))?;
    let (sound_time, audio) = best(runs, || opus(seconds, 16_000, false))?;
    let (g711_time, g711) = best(runs, || opus(seconds, 8000, true))?;
    let (mux_plain_time, plain) = best(runs, || Ok(mp4::write(&aus, None)?))?;
    let (mux_time, with_sound) = best(runs, || Ok(mp4::write(&aus, Some(&audio))?))?;
    let (_, with_g711) = best(1, || Ok(mp4::write(&aus, Some(&g711))?))?;
    black_box((&plain, &with_sound, &with_g711));

    let base_time = video_time + mux_plain_time;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let row = |out: &mut String, what: &str, time: Duration, bytes: usize| {
        let _ = writeln!(
            out,
            "| {what} | {:.0} ms | {:.3} | {bytes} | {:.3} |",
            ms(time),
            time.as_secs_f64() / base_time.as_secs_f64(),
            bytes as f64 / plain.len() as f64
        );
    };
    let mut out = format!(
        "One {seconds}-second clip at 640x480, 15 frames a second, on one thread: CPU time \
         (best of {runs}) to encode and mux it, and its MP4 bytes, against the pictures alone.\n\n\
         | {seconds}-second clip | CPU time | × pictures alone | MP4 bytes | × pictures alone |\n\
         |---|---:|---:|---:|---:|\n"
    );
    row(
        &mut out,
        "pictures alone (H.264, OpenH264)",
        base_time,
        plain.len(),
    );
    row(
        &mut out,
        "pictures and sound (Opus 16 kHz mono, 24 kb/s)",
        base_time + sound_time + mux_time.saturating_sub(mux_plain_time),
        with_sound.len(),
    );
    row(
        &mut out,
        "pictures and an IP camera's G.711, made Opus (8 kHz)",
        base_time + g711_time + mux_time.saturating_sub(mux_plain_time),
        with_g711.len(),
    );
    let _ = writeln!(
        out,
        "\nThe sound alone: Opus at 16 kHz {:.1} ms and G.711 to Opus {:.1} ms per {seconds} s \
         ({:.2} % and {:.2} % of one core); {} and {} packets of 20 ms.",
        ms(sound_time),
        ms(g711_time),
        100.0 * sound_time.as_secs_f64() / seconds as f64,
        100.0 * g711_time.as_secs_f64() / seconds as f64,
        audio.frames.len(),
        g711.frames.len(),
    );
    out.push_str(&passed_through(seconds, runs)?);
    Ok(out)
}

/// An IP camera's stream, which the camera passes through without encoding: `seconds` of one
/// picture (ffmpeg's `testsrc2` at 1280x720, 15 frames a second, a key frame a second) as x264
/// at CRF 23 and as x265 at CRF 28 (about the same quality), each grouped into pictures and
/// written as MP4 as the camera does. Empty without ffmpeg.
fn passed_through(seconds: u64, runs: usize) -> anyhow::Result<String> {
    use keyhole_media::{Codec, h264};
    let dir = tempfile::tempdir()?;
    let mut rows = Vec::new();
    for (codec, encoder, crf, name) in [
        (Codec::H264, "libx264", "23", "H.264 (x264, CRF 23)"),
        (Codec::H265, "libx265", "28", "H.265 (x265, CRF 28)"),
    ] {
        let raw = dir.path().join(format!("{encoder}.es"));
        let mut ffmpeg = std::process::Command::new("ffmpeg");
        ffmpeg
            .args(["-nostdin", "-y", "-v", "error", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=duration={seconds}:size=1280x720:rate=15"))
            .args([
                "-pix_fmt", "yuv420p", "-c:v", encoder, "-crf", crf, "-g", "15", "-bf", "0",
            ]);
        if codec == Codec::H265 {
            ffmpeg.args(["-x265-params", "log-level=none", "-f", "hevc"]);
        } else {
            ffmpeg.args(["-f", "h264"]);
        }
        let made = ffmpeg.arg(&raw).output();
        if !made.is_ok_and(|o| o.status.success()) {
            return Ok(
                "\n(ffmpeg with x264 and x265 is not installed: the H.265 rows are left out.)\n"
                    .into(),
            );
        }
        let stream = std::fs::read(&raw)?;
        let (time, file) = best(runs, || {
            let mut reader = h264::AnnexBReader::of(codec, 6000);
            let mut aus = Vec::new();
            for piece in stream.chunks(64 << 10) {
                aus.extend(reader.push(piece));
            }
            aus.extend(reader.finish());
            Ok(mp4::write(&aus, None)?)
        })?;
        rows.push((name, time, file.len()));
    }
    let (base_time, base_bytes) = (rows[0].1, rows[0].2);
    let mut out = format!(
        "\nAn IP camera's pictures, which the camera passes through: {seconds} s of one picture \
         (ffmpeg's `testsrc2`, 1280x720, 15 frames a second, a key frame a second) as H.264 and as \
         H.265 at about the same quality, grouped into pictures and written as MP4 as the camera \
         does (best of {runs}); sealing then costs the same per byte for both.\n\n\
         | {seconds}-second clip | CPU time | × H.264 | MP4 bytes | × H.264 |\n|---|---:|---:|---:|---:|\n"
    );
    for (name, time, bytes) in rows {
        let _ = writeln!(
            out,
            "| {name} | {:.2} ms | {:.3} | {bytes} | {:.3} |",
            time.as_secs_f64() * 1000.0,
            time.as_secs_f64() / base_time.as_secs_f64(),
            bytes as f64 / base_bytes as f64
        );
    }
    Ok(out)
}
