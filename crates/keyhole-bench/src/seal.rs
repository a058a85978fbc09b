//! Sealing and opening a 20 MB clip against the raw AEAD over the same bytes, one thread.

use std::fmt::Write as _;
use std::hint::black_box;

use anyhow::{Context, ensure};
use aws_lc_rs::aead::{AES_256_GCM, Algorithm, CHACHA20_POLY1305, LessSafeKey, UnboundKey};
use keyhole_core::envelope::{Sealer, Suite};
use keyhole_core::{CameraKey, HpkeSecretKey};
use keyhole_workload::{
    CHUNK, PIECE, clip_params, open_streaming, raw_aead, seal_known, seal_streaming,
};
use rand_core::SeedableRng;

use crate::stats::{Timing, bursts, clip_bytes, gb_per_s, median};

/// Passes of each operation back to back in a round, the quickest kept.
const BURST: usize = 3;

pub fn run(quick: bool) -> anyhow::Result<String> {
    let clip_len: usize = if quick { 2_000_000 } else { 20_000_000 };
    let passes = if quick { 3 } else { 15 };
    let clip = clip_bytes(clip_len, 1);
    let len = clip_len as u64;
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
    let camera = CameraKey::from_seed(&[1; 32]);
    let viewing = HpkeSecretKey::from_bytes(&[2; 32]);
    let mut t = String::new();
    writeln!(
        t,
        "A {clip_len}-byte clip in {CHUNK}-byte chunks, fed in {PIECE}-byte pieces, one thread; \
         {passes} rounds, each running every operation {BURST} times back to back and keeping \
         its quickest: the best of all rounds and the median of the rounds' quickest. Ratios \
         are of medians. The length-known sealer reads the clip from memory (a camera, from a \
         file) and writes what it seals nowhere in the timed passes (a camera, to a file); that \
         output is opened and compared once after. {}\n",
        cpu_features()
    )?;
    writeln!(
        t,
        "| operation | suite | GB/s best | GB/s median | ratio to raw AEAD | ratio to AEAD + digest |"
    )?;
    writeln!(t, "|---|---|---:|---:|---:|---:|")?;
    for (suite, alg) in [
        (Suite::Aes256Gcm, &AES_256_GCM),
        (Suite::ChaCha20Poly1305, &CHACHA20_POLY1305),
    ] {
        let key = LessSafeKey::new(UnboundKey::new(alg as &Algorithm, &[7; 32])?);
        let mut buf = clip.clone();
        let mut buf2 = clip.clone();
        let (sealed, _) = keyhole_core::envelope::seal_object(
            clip_params(suite),
            &clip,
            &viewing.public(),
            &camera,
            &mut rng,
        )?;
        let mut out = Vec::with_capacity(sealed.len());
        let mut plain = Vec::with_capacity(clip_len);
        let mut rng2 = rand_chacha::ChaCha20Rng::seed_from_u64(2);
        let [raw, floor, seal, known, open] = bursts(
            passes,
            BURST,
            [
                &mut || Ok(raw_aead(&key, &mut buf, false)?),
                &mut || Ok(raw_aead(&key, &mut buf2, true)?),
                &mut || {
                    Ok(seal_streaming(
                        suite,
                        &clip,
                        &viewing.public(),
                        &camera,
                        &mut rng,
                        &mut out,
                    )?)
                },
                // What the camera does with a clip: its output goes to a file; here nowhere,
                // and is checked below.
                &mut || {
                    Ok(seal_known(
                        suite,
                        &clip,
                        &viewing.public(),
                        &camera,
                        &mut rng2,
                        &mut std::io::sink(),
                    )?)
                },
                &mut || {
                    Ok(open_streaming(
                        &sealed,
                        &camera.public(),
                        &viewing,
                        &mut plain,
                    )?)
                },
            ],
        )?;
        ensure!(plain == clip, "the opened clip differs from the sealed one");
        // What the timed sealer made opens to the clip too.
        open_streaming(&out, &camera.public(), &viewing, &mut plain)?;
        ensure!(
            plain == clip,
            "the timed sealer's output does not open to the clip"
        );
        let mut known_out = Vec::with_capacity(sealed.len());
        seal_known(
            suite,
            &clip,
            &viewing.public(),
            &camera,
            &mut rng,
            &mut known_out,
        )?;
        open_streaming(&known_out, &camera.public(), &viewing, &mut plain)?;
        ensure!(
            plain == clip,
            "what the length-known sealer makes does not open to the clip"
        );
        let rate = |d| gb_per_s(len, d);
        let (raw_r, floor_r) = (rate(raw.median), rate(floor.median));
        for (what, timing) in [
            ("raw AEAD in place (aws-lc-rs)", raw),
            (
                "raw AEAD + BLAKE3 of each chunk (the least the format needs)",
                floor,
            ),
            ("seal clip (streaming)", seal),
            (
                "seal clip, length known (the camera's clips: read into place, written out)",
                known,
            ),
            ("open clip (streaming, verified)", open),
        ] {
            let median = rate(timing.median);
            let against_floor = if what.starts_with("raw AEAD in") {
                String::new()
            } else {
                format!("{:.2}", median / floor_r)
            };
            writeln!(
                t,
                "| {what} | {suite} | {:.2} | {median:.2} | {:.2} | {against_floor} |",
                rate(timing.best),
                median / raw_r,
            )?;
        }
    }
    let mut copy = vec![0u8; clip_len];
    let [memcpy, digest] = bursts(
        passes,
        BURST,
        [
            &mut || {
                copy.copy_from_slice(black_box(&clip));
                black_box(&copy);
                Ok(())
            },
            &mut || {
                black_box(blake3::hash(black_box(&clip)));
                Ok(())
            },
        ],
    )?;
    for (what, timing) in [("memcpy", memcpy), ("BLAKE3 in one call", digest)] {
        let Timing { best, median } = timing;
        writeln!(
            t,
            "| reference: {what} | – | {:.2} | {:.2} | | |",
            gb_per_s(len, best),
            gb_per_s(len, median)
        )?;
    }

    t.push_str(&what_comes_before(&clip, passes)?);

    // Fixed cost per clip: an empty clip is the header (HPKE wrap, signature), one empty chunk
    // and the trailer signature.
    let mut out = Vec::new();
    let fixed = median(passes.max(50), || {
        out.clear();
        let s = Sealer::new(
            clip_params(Suite::Aes256Gcm),
            &viewing.public(),
            &camera,
            &mut rng,
            &mut out,
        )?;
        black_box(s.finish(&mut out));
        Ok(())
    })?;
    ensure!(!out.is_empty(), "the empty clip did not seal");
    let fixed_bytes = out.len() - 16;
    let two_mb = 2_000_000usize;
    let overhead = fixed_bytes + two_mb.div_ceil(CHUNK) * 16;
    writeln!(
        t,
        "\nFixed cost per clip: {:.0} µs to seal (HPKE wrap of the clip key, header and trailer \
         signatures); {fixed_bytes} bytes of header and signatures. Ciphertext overhead for a 2 MB \
         clip: {overhead} bytes ({:.3} %).",
        fixed.as_secs_f64() * 1e6,
        overhead as f64 / two_mb as f64 * 100.0
    )
    .context("formatting")?;
    Ok(t)
}

/// How one raw AES-GCM pass over `clip` runs depending on what ran just before it: another
/// such pass (a burst), a BLAKE3 pass over other bytes, a copy of other bytes, or a 5 ms pause.
/// Why the table above times bursts.
fn what_comes_before(clip: &[u8], passes: usize) -> anyhow::Result<String> {
    let key = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &[7; 32])?);
    let mut buf = clip.to_vec();
    let other = clip_bytes(clip.len(), 2);
    let mut copy = vec![0u8; clip.len()];
    let mut before: [(&str, &mut dyn FnMut()); 4] = [
        ("another raw AES-GCM pass over the same bytes", &mut || {}),
        ("a BLAKE3 pass over other bytes", &mut || {
            black_box(blake3::hash(black_box(&other)));
        }),
        ("a copy of other bytes", &mut || {
            copy.copy_from_slice(black_box(&other));
            black_box(&copy);
        }),
        ("a 5 ms pause", &mut || {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }),
    ];
    let mut times = vec![Vec::with_capacity(passes); before.len()];
    for round in 0..=passes {
        for ((_, first), times) in before.iter_mut().zip(&mut times) {
            // The burst's pass before the timed one: the same pass, untimed.
            raw_aead(&key, &mut buf, false)?;
            first();
            let start = std::time::Instant::now();
            raw_aead(&key, &mut buf, false)?;
            if round > 0 {
                times.push(start.elapsed());
            }
        }
    }
    let mut t = format!(
        "\nOne raw AES-GCM pass over the clip, timed right after (median of {passes}):\n\n\
         | what ran just before | GB/s | × after another pass |\n|---|---:|---:|\n"
    );
    let rates: Vec<f64> = times
        .iter()
        .map(|d| gb_per_s(clip.len() as u64, crate::stats::percentile(d, 0.5)))
        .collect();
    for ((what, _), rate) in before.iter().zip(&rates) {
        writeln!(t, "| {what} | {rate:.2} | {:.2} |", rate / rates[0])?;
    }
    Ok(t)
}

/// The CPU features aws-lc and BLAKE3 choose their code by at run time, as this machine has them.
fn cpu_features() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        let found: Vec<&str> = [
            ("aes", std::arch::is_x86_feature_detected!("aes")),
            (
                "pclmulqdq",
                std::arch::is_x86_feature_detected!("pclmulqdq"),
            ),
            ("avx2", std::arch::is_x86_feature_detected!("avx2")),
            ("vaes", std::arch::is_x86_feature_detected!("vaes")),
            (
                "vpclmulqdq",
                std::arch::is_x86_feature_detected!("vpclmulqdq"),
            ),
            ("avx512f", std::arch::is_x86_feature_detected!("avx512f")),
            ("avx512vl", std::arch::is_x86_feature_detected!("avx512vl")),
        ]
        .into_iter()
        .filter_map(|(name, present)| present.then_some(name))
        .collect();
        format!(
            "CPU features found: {} (aws-lc picks its AES-GCM code from these at run time, its \
             quickest using VAES and VPCLMULQDQ; BLAKE3 takes AVX-512 with avx512f and \
             avx512vl, else AVX2, else SSE4.1).",
            found.join(", ")
        )
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        String::from("CPU features: not an x86-64 build.")
    }
}
