//! The `seal` section's baselines run alone, in a process of their own that does nothing else:
//! the raw AEAD over a 20 MB clip in the envelope's chunks (aws-lc-rs, counter nonces, 32 bytes
//! of associated data) for both suites, and BLAKE3 in one call, each the best and the median of
//! 15 passes. `keyhole-bench seal` should read the same within this machine's noise; run the two
//! in turns to see it (docs/PERFORMANCE.md, *Baselines*).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use aws_lc_rs::aead::{AES_256_GCM, Algorithm, CHACHA20_POLY1305, LessSafeKey, UnboundKey};
use keyhole_workload::raw_aead;

const LEN: usize = 20_000_000;
const PASSES: usize = 15;

fn timed(mut pass: impl FnMut()) -> (f64, f64) {
    let mut times: Vec<f64> = (0..PASSES)
        .map(|_| {
            let start = Instant::now();
            pass();
            start.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let rate = |t: f64| LEN as f64 / t / 1e9;
    (rate(times[0]), rate(times[PASSES / 2]))
}

fn main() {
    let clip: Vec<u8> = (0..LEN).map(|i| (i * 7 + 3).to_le_bytes()[0]).collect();
    for (name, alg) in [
        ("AES-256-GCM", &AES_256_GCM),
        ("ChaCha20-Poly1305", &CHACHA20_POLY1305),
    ] {
        let key = LessSafeKey::new(UnboundKey::new(alg as &Algorithm, &[7; 32]).unwrap());
        let mut buf = clip.clone();
        let (best, median) = timed(|| raw_aead(&key, &mut buf, false).unwrap());
        println!("raw AEAD in place, {name}: best {best:.2} GB/s, median {median:.2} GB/s");
    }
    let (best, median) = timed(|| {
        black_box(blake3::hash(black_box(&clip)));
    });
    println!("BLAKE3 in one call: best {best:.2} GB/s, median {median:.2} GB/s");
}
