//! Medians, percentiles and the units the tables print.

use std::time::{Duration, Instant};

/// The `p` quantile (0..=1) of `samples`, nearest rank.
pub fn percentile(samples: &[Duration], p: f64) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort_unstable();
    let rank = ((sorted.len().saturating_sub(1)) as f64 * p).round() as usize;
    sorted.get(rank).copied().unwrap_or_default()
}

/// Median and 99th percentile.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub p50: Duration,
    pub p99: Duration,
}

impl Spread {
    pub fn of(samples: &[Duration]) -> Self {
        Self {
            p50: percentile(samples, 0.5),
            p99: percentile(samples, 0.99),
        }
    }
}

/// A run's best time and the median over rounds of its best in each round.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub best: Duration,
    pub median: Duration,
}

/// Times each of `runs` in bursts: every round runs each one `burst` times back to back and
/// keeps its quickest, so each is timed warm in its own rhythm rather than straight after
/// another's (a pass right after a BLAKE3 pass over other bytes ran the AEAD a quarter to a
/// third slower here); rounds take the runs in turns, so a change in the machine's speed
/// touches all alike. One round first to warm up; the first error stops it.
pub fn bursts<const N: usize>(
    rounds: usize,
    burst: usize,
    mut runs: [&mut dyn FnMut() -> anyhow::Result<()>; N],
) -> anyhow::Result<[Timing; N]> {
    let mut bests = vec![Vec::with_capacity(rounds); N];
    for round in 0..=rounds {
        for (run, bests) in runs.iter_mut().zip(&mut bests) {
            let mut quickest = Duration::MAX;
            for _ in 0..burst.max(1) {
                let start = Instant::now();
                run()?;
                quickest = quickest.min(start.elapsed());
            }
            if round > 0 {
                bests.push(quickest);
            }
        }
    }
    Ok(std::array::from_fn(|i| Timing {
        best: bests[i].iter().copied().min().unwrap_or_default(),
        median: percentile(&bests[i], 0.5),
    }))
}

/// The median time of `passes` runs of `f`, after one run to warm up; the first error stops it.
pub fn median(
    passes: usize,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Duration> {
    f()?;
    let mut times = Vec::with_capacity(passes);
    for _ in 0..passes {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed());
    }
    Ok(percentile(&times, 0.5))
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub fn gb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e9
}

pub fn mb_per_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

/// Deterministic filler the size of a clip: the cipher's cost does not depend on the bytes, and
/// compressed video is as incompressible as this.
pub fn clip_bytes(len: usize, seed: u64) -> Vec<u8> {
    use rand_core::{RngCore, SeedableRng};
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let mut clip = vec![0u8; len];
    rng.fill_bytes(&mut clip);
    clip
}
