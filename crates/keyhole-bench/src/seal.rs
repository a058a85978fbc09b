//! Sealing and opening a 20 MB clip against the raw AEAD over the same bytes, one thread.

use std::fmt::Write as _;
use std::hint::black_box;

use anyhow::{Context, ensure};
use aws_lc_rs::aead::{AES_256_GCM, Algorithm, CHACHA20_POLY1305, LessSafeKey, UnboundKey};
use keyhole_core::envelope::{Opener, PREFIX_LEN, Sealer, Suite};
use keyhole_core::{CameraKey, HpkeSecretKey};
use keyhole_workload::{CHUNK, clip_params, raw_aead};
use rand_core::SeedableRng;

use crate::stats::{clip_bytes, gb_per_s, median, medians};

/// What a camera or a download hands the sealer or opener at a time.
const PIECE: usize = 1 << 20;

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
        "A {clip_len}-byte clip in {CHUNK}-byte chunks, fed in {PIECE}-byte pieces, one thread, \
         median of {passes} passes.\n"
    )?;
    writeln!(
        t,
        "| operation | suite | GB/s | ratio to raw AEAD | ratio to AEAD + digest |"
    )?;
    writeln!(t, "|---|---|---:|---:|---:|")?;
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
        let [raw, floor, seal, open] = medians(
            passes,
            [
                &mut || Ok(raw_aead(&key, &mut buf, false)?),
                &mut || Ok(raw_aead(&key, &mut buf2, true)?),
                &mut || {
                    out.clear();
                    let mut s = Sealer::new(
                        clip_params(suite),
                        &viewing.public(),
                        &camera,
                        &mut rng,
                        &mut out,
                    )?;
                    for piece in clip.chunks(PIECE) {
                        s.update(piece, &mut out);
                    }
                    black_box(s.finish(&mut out));
                    Ok(())
                },
                &mut || {
                    plain.clear();
                    let mut o = Opener::new(&sealed, &camera.public(), &viewing)?.stream();
                    for piece in sealed[PREFIX_LEN..].chunks(PIECE) {
                        o.update(piece, &mut plain)?;
                    }
                    black_box(o.finish(&mut plain)?);
                    Ok(())
                },
            ],
        )?;
        ensure!(plain == clip, "the opened clip differs from the sealed one");
        // What the timed sealer made opens to the clip too.
        let mut o = Opener::new(&out, &camera.public(), &viewing)?.stream();
        plain.clear();
        o.update(&out[PREFIX_LEN..], &mut plain)?;
        o.finish(&mut plain)?;
        ensure!(
            plain == clip,
            "the timed sealer's output does not open to the clip"
        );
        let rate = |d| gb_per_s(len, d);
        let (raw_r, floor_r) = (rate(raw), rate(floor));
        writeln!(
            t,
            "| raw AEAD in place (aws-lc-rs) | {suite} | {raw_r:.2} | 1.00 | |"
        )?;
        writeln!(
            t,
            "| raw AEAD + BLAKE3 of each chunk (the least the format needs) | {suite} | {floor_r:.2} | {:.2} | 1.00 |",
            floor_r / raw_r
        )?;
        for (what, d) in [
            ("seal clip (streaming)", seal),
            ("open clip (streaming, verified)", open),
        ] {
            writeln!(
                t,
                "| {what} | {suite} | {:.2} | {:.2} | {:.2} |",
                rate(d),
                rate(d) / raw_r,
                rate(d) / floor_r
            )?;
        }
    }
    let mut copy = vec![0u8; clip_len];
    let memcpy = median(passes, || {
        copy.copy_from_slice(black_box(&clip));
        black_box(&copy);
        Ok(())
    })?;
    let digest = median(passes, || {
        black_box(blake3::hash(black_box(&clip)));
        Ok(())
    })?;
    writeln!(
        t,
        "| reference: memcpy | – | {:.2} | | |",
        gb_per_s(len, memcpy)
    )?;
    writeln!(
        t,
        "| reference: BLAKE3 | – | {:.2} | | |",
        gb_per_s(len, digest)
    )?;

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
