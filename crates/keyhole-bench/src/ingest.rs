//! Server ingest: many cameras uploading one sealed clip each, all at once, to one server on
//! loopback. Baselines in the same run: the same bytes written to the same disk as plain files
//! (each written and fsynced, as the server does before it acknowledges), and the same uploads
//! sent to an S3 server (`s3s-fs`), the store a user might put the clips in instead.

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::ensure;
use keyhole_camera::{Agent, AgentError};
use keyhole_core::envelope::{DEFAULT_CHUNK_LOG2, sealed_len};
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;

use crate::stats::{Spread, clip_bytes, mb_per_s, ms};
use crate::world::{World, cpu_time, memory};

/// A 4-second 1080p clip at 4 Mbit/s.
const CLIP_BYTES: usize = 2_000_000;
/// Rounds taken in turns: the disk's speed on a shared machine drifts between runs.
const ROUNDS: usize = 3;

struct Outcome {
    wall: Duration,
    latencies: Vec<Duration>,
    /// Uploads cut off and resumed.
    retried: usize,
}

impl Outcome {
    fn row(&self, what: &str, clips: usize, bytes: u64, baseline: f64, extra: &str) -> String {
        let s = Spread::of(&self.latencies);
        let rate = mb_per_s(bytes, self.wall);
        format!(
            "| {what} | {:.0} | {rate:.0} | {:.2} | {:.0} | {:.0} | {extra} |",
            clips as f64 / self.wall.as_secs_f64(),
            rate / baseline,
            ms(s.p50),
            ms(s.p99),
        )
    }
}

/// Writes out what earlier steps left in the page cache (the cameras' spools, the previous
/// run's files), so no run pays for another's writes.
fn settle_disk() -> anyhow::Result<()> {
    ensure!(
        std::process::Command::new("sync").status()?.success(),
        "sync failed"
    );
    Ok(())
}

/// Bytes of all files under `dir`.
fn bytes_under(dir: &std::path::Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            bytes_under(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// Samples a process's resident memory until stopped; returns the highest.
fn watch_memory(pid: u32) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let handle = tokio::spawn({
        let stop = stop.clone();
        async move {
            let mut peak = 0;
            while !stop.load(Ordering::Relaxed) {
                peak = peak.max(memory(pid).map_or(0, |(_, rss)| rss));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        }
    });
    (stop, handle)
}

/// Several outcomes as one: all their bytes over all their time, all their latencies.
fn pooled(outcomes: &[Outcome]) -> Outcome {
    Outcome {
        wall: outcomes.iter().map(|o| o.wall).sum(),
        latencies: outcomes.iter().flat_map(|o| o.latencies.clone()).collect(),
        retried: outcomes.iter().map(|o| o.retried).sum(),
    }
}

/// Every camera uploads what its spool holds (one clip), all at once.
async fn keyhole_round(agents: &mut Vec<Agent>) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let uploads: Vec<_> = agents
        .drain(..)
        .map(|mut agent| {
            tokio::spawn(async move {
                let began = Instant::now();
                // As the camera's own loop does: an upload cut off is resumed, once the server
                // has seen the cut attempt end (409 until then), backing off between tries.
                let mut sent = agent.upload_pending().await;
                let mut retries = 0;
                while sent
                    .as_ref()
                    .is_err_and(|e| e.is_offline() || matches!(e, AgentError::Refused(409, _)))
                    && retries < 8
                {
                    tokio::time::sleep(Duration::from_millis(100 << retries)).await;
                    retries += 1;
                    sent = agent.upload_pending().await;
                }
                (agent, sent, retries, began.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(uploads.len());
    let mut retried = 0;
    for upload in uploads {
        let (agent, sent, retries, took) = upload.await?;
        ensure!(sent? == 1, "a camera did not upload its clip");
        agents.push(agent);
        latencies.push(took);
        retried += retries;
    }
    Ok(Outcome {
        wall: start.elapsed(),
        latencies,
        retried,
    })
}

/// The same bytes as files on the same disk, one after another, each written and fsynced.
fn plain_round(dir: &std::path::Path, files: usize, bytes: &[u8]) -> anyhow::Result<Outcome> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    settle_disk()?;
    let mut latencies = Vec::with_capacity(files);
    let start = Instant::now();
    for i in 0..files {
        let began = Instant::now();
        let mut f = std::fs::File::create(dir.join(i.to_string()))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        latencies.push(began.elapsed());
    }
    std::fs::File::open(dir)?.sync_all()?;
    Ok(Outcome {
        wall: start.elapsed(),
        latencies,
        retried: 0,
    })
}

/// The same uploads to an S3 server: one PUT per camera, all at once.
async fn s3_round(
    store: &Arc<object_store::aws::AmazonS3>,
    uploads: usize,
    body: &bytes::Bytes,
) -> anyhow::Result<Outcome> {
    settle_disk()?;
    let failed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let puts: Vec<_> = (0..uploads)
        .map(|i| {
            let (store, body, failed) = (store.clone(), body.clone(), failed.clone());
            tokio::spawn(async move {
                let began = Instant::now();
                let path = object_store::path::Path::from(format!("clips/{i}"));
                if store.put(&path, body.into()).await.is_err() {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
                began.elapsed()
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(uploads);
    for put in puts {
        latencies.push(put.await?);
    }
    let wall = start.elapsed();
    ensure!(
        failed.load(Ordering::Relaxed) == 0,
        "uploads to the S3 server failed"
    );
    Ok(Outcome {
        wall,
        latencies,
        retried: 0,
    })
}

pub async fn run(quick: bool) -> anyhow::Result<String> {
    let (cameras, rounds) = if quick { (40, 2) } else { (1_000, ROUNDS) };
    let mut world = World::start().await?;
    let object_len = sealed_len(CLIP_BYTES as u64, DEFAULT_CHUNK_LOG2);
    let total = object_len * cameras as u64;
    let clip = clip_bytes(CLIP_BYTES, 3);
    let bytes = clip_bytes(usize::try_from(object_len)?, 4);
    let body = bytes::Bytes::from(bytes.clone());
    let s3_server = keyhole_testkit::s3::S3Server::start();
    let s3_store = match &s3_server {
        Some(server) => Some(Arc::new(
            AmazonS3Builder::new()
                .with_endpoint(&server.endpoint)
                .with_bucket_name(keyhole_testkit::s3::BUCKET)
                .with_region("us-east-1")
                .with_access_key_id("test")
                .with_secret_access_key("testsecret")
                .with_allow_http(true)
                .build()?,
        )),
        None => None,
    };

    let mut agents = Vec::with_capacity(cameras);
    for i in 0..cameras {
        agents.push(world.camera().await?.0);
        if (i + 1) % 100 == 0 {
            eprintln!("  ingest: {} of {cameras} cameras paired", i + 1);
        }
    }
    let pid = world.server.pid();
    let (_, rss_before) = memory(pid)?;
    let (mut ours, mut plain, mut s3) = (Vec::new(), Vec::new(), Vec::new());
    let (mut server_cpu, mut cameras_cpu, mut rss_peak) = (Duration::ZERO, Duration::ZERO, 0);
    for round in 0..rounds {
        // Each camera seals its next clip into its spool; only the upload is timed.
        for agent in &mut agents {
            agent.seal_clip(&clip, keyhole_camera::now(), &mut world.rng)?;
        }
        settle_disk()?;
        let (server_before, own_before) = (cpu_time(pid)?, cpu_time(std::process::id())?);
        let (stop, peak) = watch_memory(pid);
        ours.push(keyhole_round(&mut agents).await?);
        stop.store(true, Ordering::Relaxed);
        rss_peak = rss_peak.max(peak.await?);
        server_cpu += cpu_time(pid)? - server_before;
        cameras_cpu += cpu_time(std::process::id())? - own_before;
        let stored = bytes_under(&world.data_dir().join("blobs"))?;
        let expected = total * (round as u64 + 1);
        ensure!(
            stored == expected,
            "the server's folder holds {stored} bytes of blobs, not the {expected} uploaded"
        );
        plain.push(plain_round(
            &world.dir.path().join("plain"),
            cameras,
            &bytes,
        )?);
        if let Some(store) = &s3_store {
            s3.push(s3_round(store, cameras, &body).await?);
        }
        eprintln!("  ingest: round {} of {rounds} done", round + 1);
    }
    let (keyhole, plain) = (pooled(&ours), pooled(&plain));
    let s3 = (!s3.is_empty()).then(|| pooled(&s3));
    let total = total * rounds as u64;
    let uploads = cameras * rounds;
    let disk = mb_per_s(total, plain.wall);

    let mut t = String::new();
    writeln!(
        t,
        "{cameras} cameras paired to one `keyhole-server` (release build, SQLite + folder, plain \
         HTTP on loopback, its own process). In each of {rounds} rounds every camera seals a \
         {object_len}-byte clip into its spool, then all upload at once through the camera \
         agent's own upload code; the plain file writes and the S3 uploads of the same bytes \
         follow in the same round. Figures pool the rounds ({:.0} MB each way); latency is one \
         upload, start to acknowledgement.\n",
        total as f64 / 1e6
    )?;
    writeln!(
        t,
        "| what | clips/s | MB/s | MB/s ratio to plain file writes | p50 ms | p99 ms | server |"
    )?;
    writeln!(t, "|---|---:|---:|---:|---:|---:|---|")?;
    writeln!(
        t,
        "{}",
        plain.row(
            "plain file writes, one after another (baseline)",
            uploads,
            total,
            disk,
            "",
        )
    )?;
    writeln!(
        t,
        "{}",
        keyhole.row(
            "Keyhole server",
            uploads,
            total,
            disk,
            &format!(
                "{:.0} MB resident before, {:.0} MB at most; {:.1} s of CPU in all (the cameras: \
                 {:.1} s); {} uploads cut off and resumed",
                rss_before as f64 / 1e6,
                rss_peak as f64 / 1e6,
                server_cpu.as_secs_f64(),
                cameras_cpu.as_secs_f64(),
                keyhole.retried,
            ),
        )
    )?;
    match s3 {
        Some(s3) => writeln!(
            t,
            "{}",
            s3.row(
                "S3 server (`s3s-fs`), unencrypted PUTs (alternative)",
                uploads,
                total,
                disk,
                "",
            )
        )?,
        None => writeln!(t, "| S3 server | s3s-fs not installed: skipped | | | | | |")?,
    }
    world.server.stop();
    Ok(t)
}
