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

/// The median times of `passes` runs of each of `runs`, taken in turns (one of each per round)
/// so a change in the machine's speed during the bench affects all alike; one round first to
/// warm up. The first error stops it.
pub fn medians<const N: usize>(
    passes: usize,
    mut runs: [&mut dyn FnMut() -> anyhow::Result<()>; N],
) -> anyhow::Result<[Duration; N]> {
    let mut times = vec![Vec::with_capacity(passes); N];
    for round in 0..=passes {
        for (run, times) in runs.iter_mut().zip(&mut times) {
            let start = Instant::now();
            run()?;
            if round > 0 {
                times.push(start.elapsed());
            }
        }
    }
    Ok(std::array::from_fn(|i| percentile(&times[i], 0.5)))
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
