//! One of the camera's hot paths per run, for `keyhole-bench arm` to count its instructions on
//! ARM under qemu: `keyhole-workload WORK AMOUNT [--dry]`.
//!
//! WORK is `seal` or `open` (a clip, as the camera seals it and a device opens it), `aead` (the
//! raw AEAD over the same chunks) or `blake3` (the digest over the same chunks), each followed by
//! `-aes` or `-chacha` for the suite (`blake3` takes none), with AMOUNT in bytes; or `g711-opus`,
//! AMOUNT seconds of an IP camera's 8 kHz μ-law sound turned into PCM and encoded as Opus as
//! the camera's RTSP source does, 20 ms at a time. With `--dry` only the input is made: the
//! bench subtracts a dry run's count from a full one's, so what remains is the work alone.

use std::hint::black_box;
use std::process::ExitCode;

use aws_lc_rs::aead::{AES_256_GCM, Algorithm, CHACHA20_POLY1305, LessSafeKey, UnboundKey};
use keyhole_core::envelope::Suite;
use keyhole_core::{CameraKey, HpkeSecretKey};
use keyhole_workload::{CHUNK, clip_params, open_streaming, raw_aead, seal_streaming};
use rand_core::{RngCore, SeedableRng};

/// Samples in 20 ms of 8 kHz sound: one RTP packet of G.711.
const G711_PACKET: usize = 160;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dry = args.iter().any(|a| a == "--dry");
    let (Some(work), Some(amount)) = (
        args.first(),
        args.get(1).and_then(|a| a.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: keyhole-workload WORK AMOUNT [--dry] (see the crate's documentation)");
        return ExitCode::from(2);
    };
    match run(work, amount, dry) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keyhole-workload: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(work: &str, amount: usize, dry: bool) -> Result<(), String> {
    if work == "g711-opus" {
        return g711_opus(amount, dry);
    }
    let (name, suite) = match work.rsplit_once('-') {
        Some((name, "aes")) => (name, Suite::Aes256Gcm),
        Some((name, "chacha")) => (name, Suite::ChaCha20Poly1305),
        _ => (work, Suite::Aes256Gcm),
    };
    let clip = random_bytes(amount);
    let camera = CameraKey::from_seed(&[1; 32]);
    let viewing = HpkeSecretKey::from_bytes(&[2; 32]);
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let failed = |e: &dyn std::fmt::Display| e.to_string();
    match name {
        "seal" => {
            if !dry {
                let mut out = Vec::with_capacity(amount + amount / 64 + 4096);
                seal_streaming(suite, &clip, &viewing.public(), &camera, &mut rng, &mut out)
                    .map_err(|e| failed(&e))?;
                black_box(out);
            }
        }
        "open" => {
            let (sealed, _) = keyhole_core::envelope::seal_object(
                clip_params(suite),
                &clip,
                &viewing.public(),
                &camera,
                &mut rng,
            )
            .map_err(|e| failed(&e))?;
            if !dry {
                let mut plain = Vec::with_capacity(amount);
                open_streaming(&sealed, &camera.public(), &viewing, &mut plain)
                    .map_err(|e| failed(&e))?;
                black_box(plain);
            }
        }
        "aead" => {
            let algorithm: &Algorithm = if suite == Suite::Aes256Gcm {
                &AES_256_GCM
            } else {
                &CHACHA20_POLY1305
            };
            let key =
                LessSafeKey::new(UnboundKey::new(algorithm, &[7; 32]).map_err(|e| failed(&e))?);
            let mut buf = clip;
            if !dry {
                raw_aead(&key, &mut buf, false).map_err(|e| failed(&e))?;
                black_box(buf);
            }
        }
        "blake3" => {
            if !dry {
                let mut hasher = blake3::Hasher::new();
                for chunk in clip.chunks(CHUNK) {
                    hasher.update(chunk);
                }
                black_box(hasher.finalize());
            }
        }
        other => return Err(format!("no workload named {other:?}")),
    }
    Ok(())
}

/// `seconds` of a 440 Hz tone as μ-law, turned back into PCM and encoded as Opus a packet at a
/// time, as the camera's RTSP source does with a G.711 stream.
fn g711_opus(seconds: usize, dry: bool) -> Result<(), String> {
    let mu_law: Vec<u8> = (0..seconds * 8000)
        .map(|n| {
            let phase = (n * 440 % 8000) as f64 / 8000.0;
            // Within ±6000 by construction.
            #[allow(clippy::cast_possible_truncation)]
            let sample = (6000.0 * (std::f64::consts::TAU * phase).sin()) as i16;
            keyhole_sound::to_mu_law(sample)
        })
        .collect();
    if dry {
        black_box(mu_law);
        return Ok(());
    }
    let mut encoder = keyhole_sound::OpusEncoder::new(8000, 24_000).map_err(|e| e.to_string())?;
    for (i, packet) in (0u64..).zip(mu_law.chunks(G711_PACKET)) {
        let pcm: Vec<i16> = packet
            .iter()
            .copied()
            .map(keyhole_sound::from_mu_law)
            .collect();
        black_box(encoder.push(i * 1800, &pcm).map_err(|e| e.to_string())?);
    }
    Ok(())
}

/// Bytes that do not compress, as a video clip's.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    rand_chacha::ChaCha20Rng::seed_from_u64(3).fill_bytes(&mut bytes);
    bytes
}
