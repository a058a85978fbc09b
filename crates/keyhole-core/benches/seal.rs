//! Sealing and opening throughput against the raw AEAD over the same bytes, in the same run.
//!
//! `cargo bench -p keyhole-core --bench seal` prints one table. Every row is the median of
//! several passes over a 20 MB clip in 64 KiB chunks, single-threaded; ratios are against raw
//! aws-lc-rs AES-256-GCM (or ChaCha20-Poly1305 for that suite) sealing the same chunks in place.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::cast_precision_loss
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use aws_lc_rs::aead::{
    AES_256_GCM, Aad, Algorithm, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey,
};
use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, Opener, PREFIX_LEN, SealParams, Sealer, Suite,
};
use keyhole_core::{CameraId, CameraKey, HpkeSecretKey, ObjectId, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const CLIP: usize = 20_000_000;
const CHUNK: usize = 1 << DEFAULT_CHUNK_LOG2;
const PASSES: usize = 15;

fn median(mut f: impl FnMut() -> Duration) -> Duration {
    f(); // warm up
    let mut t: Vec<Duration> = (0..PASSES).map(|_| f()).collect();
    t.sort();
    t[PASSES / 2]
}

fn gbps(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

fn raw_aead(alg: &'static Algorithm, clip: &[u8]) -> Duration {
    let key = LessSafeKey::new(UnboundKey::new(alg, &[7; 32]).unwrap());
    let mut buf = clip.to_vec();
    median(|| {
        let start = Instant::now();
        for (i, chunk) in buf.chunks_mut(CHUNK).enumerate() {
            let mut n = [0u8; 12];
            n[3..11].copy_from_slice(&(i as u64).to_be_bytes());
            let _tag = black_box(
                key.seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(n),
                    Aad::from([0u8; 32]),
                    chunk,
                )
                .unwrap(),
            );
        }
        start.elapsed()
    })
}

fn params(suite: Suite) -> SealParams {
    SealParams {
        kind: ObjectKind::Clip,
        suite,
        chunk_log2: DEFAULT_CHUNK_LOG2,
        camera_id: CameraId([1; 16]),
        object_id: ObjectId([2; 16]),
        epoch: 1,
        sequence: 1,
        previous: ObjectDigest::default(),
        captured_at: Timestamp(0),
    }
}

fn main() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut clip = vec![0u8; CLIP];
    rng.fill_bytes(&mut clip);
    let camera = CameraKey::from_seed(&[1; 32]);
    let viewing = HpkeSecretKey::from_bytes(&[2; 32]);

    println!(
        "clip: {CLIP} bytes, chunks of {CHUNK} bytes, median of {PASSES} passes, one thread\n"
    );
    println!("| operation | suite | GB/s | ratio to raw AEAD |");
    println!("|---|---|---:|---:|");
    let mut copy = vec![0u8; CLIP];
    let memcpy = median(|| {
        let start = Instant::now();
        copy.copy_from_slice(black_box(&clip));
        black_box(&copy);
        start.elapsed()
    });
    let blake3 = median(|| {
        let start = Instant::now();
        black_box(blake3::hash(black_box(&clip)));
        start.elapsed()
    });
    for (suite, alg) in [
        (Suite::Aes256Gcm, &AES_256_GCM),
        (Suite::ChaCha20Poly1305, &CHACHA20_POLY1305),
    ] {
        let raw = raw_aead(alg, &clip);
        let mut sealed = Vec::with_capacity(CLIP + CLIP / CHUNK * 16 + 4096);
        let seal = median(|| {
            sealed.clear();
            let start = Instant::now();
            let mut s = Sealer::new(
                params(suite),
                &viewing.public(),
                &camera,
                &mut rng,
                &mut sealed,
            )
            .unwrap();
            for piece in clip.chunks(1 << 20) {
                s.update(piece, &mut sealed);
            }
            black_box(s.finish(&mut sealed));
            start.elapsed()
        });
        let mut plain = Vec::with_capacity(CLIP);
        let open = median(|| {
            plain.clear();
            let start = Instant::now();
            let mut o = Opener::new(&sealed, &camera.public(), &viewing)
                .unwrap()
                .stream();
            for piece in sealed[PREFIX_LEN..].chunks(1 << 20) {
                o.update(piece, &mut plain).unwrap();
            }
            black_box(o.finish(&mut plain).unwrap());
            start.elapsed()
        });
        assert_eq!(plain, clip);
        let raw_gbps = gbps(CLIP, raw);
        println!("| raw AEAD in place (aws-lc-rs) | {suite} | {raw_gbps:.2} | 1.00 |");
        println!(
            "| seal clip (streaming) | {suite} | {:.2} | {:.2} |",
            gbps(CLIP, seal),
            gbps(CLIP, seal) / raw_gbps
        );
        println!(
            "| open clip (streaming, verified) | {suite} | {:.2} | {:.2} |",
            gbps(CLIP, open),
            gbps(CLIP, open) / raw_gbps
        );
    }
    println!("| reference: memcpy | – | {:.2} | – |", gbps(CLIP, memcpy));
    println!(
        "| reference: BLAKE3 digest | – | {:.2} | – |",
        gbps(CLIP, blake3)
    );

    // Fixed per-clip cost: an empty clip is the header (with HPKE wrap and signature), one
    // empty chunk and the trailer signature.
    let mut out = Vec::new();
    let fixed = median(|| {
        out.clear();
        let start = Instant::now();
        let s = Sealer::new(
            params(Suite::Aes256Gcm),
            &viewing.public(),
            &camera,
            &mut rng,
            &mut out,
        )
        .unwrap();
        black_box(s.finish(&mut out));
        start.elapsed()
    });
    let two_mb = 2_000_000usize;
    let overhead = out.len() + two_mb.div_ceil(CHUNK) * 16 - 16;
    println!(
        "\nfixed cost per clip: {:.0} µs to seal (HPKE wrap, two signatures); {} bytes of header and signatures",
        fixed.as_secs_f64() * 1e6,
        out.len() - 16
    );
    println!(
        "ciphertext overhead for a 2 MB clip: {overhead} bytes ({:.3}%)",
        overhead as f64 / two_mb as f64 * 100.0
    );
}
