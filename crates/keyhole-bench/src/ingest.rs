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
use keyhole_core::envelope::{DEFAULT_CHUNK_LOG2, sealed_len};
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;

use crate::stats::{Spread, clip_bytes, mb_per_s, ms};
use crate::world::{World, memory};

/// A 4-second 1080p clip at 4 Mbit/s.
const CLIP_BYTES: usize = 2_000_000;

struct Outcome {
    wall: Duration,
    latencies: Vec<Duration>,
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

pub async fn run(quick: bool) -> anyhow::Result<String> {
    let cameras = if quick { 40 } else { 1_000 };
    let mut world = World::start().await?;
    let object_len = sealed_len(CLIP_BYTES as u64, DEFAULT_CHUNK_LOG2);
    let total = object_len * cameras as u64;

    // Pair every camera and seal its clip into its spool first: what is timed is the upload.
    let mut agents = Vec::with_capacity(cameras);
    let clip = clip_bytes(CLIP_BYTES, 3);
    for i in 0..cameras {
        let (mut agent, _) = world.camera().await?;
        agent.seal_clip(&clip, keyhole_camera::now(), &mut world.rng)?;
        agents.push(agent);
        if (i + 1) % 100 == 0 {
            eprintln!("  ingest: {} of {cameras} cameras paired", i + 1);
        }
    }
    let pid = world.server.pid();
    let (_, rss_before) = memory(pid)?;

    let (stop, peak) = watch_memory(pid);
    let start = Instant::now();
    let uploads: Vec<_> = agents
        .into_iter()
        .map(|mut agent| {
            tokio::spawn(async move {
                let began = Instant::now();
                let sent = agent.upload_pending().await;
                (sent, began.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(cameras);
    for upload in uploads {
        let (sent, took) = upload.await?;
        ensure!(sent? == 1, "a camera did not upload its clip");
        latencies.push(took);
    }
    let keyhole = Outcome {
        wall: start.elapsed(),
        latencies,
    };
    stop.store(true, Ordering::Relaxed);
    let rss_peak = peak.await?;
    let stored = bytes_under(&world.data_dir().join("blobs"))?;
    ensure!(
        stored == total,
        "the server's folder holds {stored} bytes of blobs, not the {total} uploaded"
    );

    // The same bytes as files on the same disk, each written and fsynced.
    let files = world.dir.path().join("plain");
    std::fs::create_dir_all(&files)?;
    let bytes = clip_bytes(usize::try_from(object_len)?, 4);
    let mut latencies = Vec::with_capacity(cameras);
    let start = Instant::now();
    for i in 0..cameras {
        let began = Instant::now();
        let mut f = std::fs::File::create(files.join(i.to_string()))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        latencies.push(began.elapsed());
    }
    std::fs::File::open(&files)?.sync_all()?;
    let plain = Outcome {
        wall: start.elapsed(),
        latencies,
    };
    let disk = mb_per_s(total, plain.wall);

    // The same uploads to an S3 server.
    let s3 = match keyhole_testkit::s3::S3Server::start() {
        Some(server) => {
            let store = Arc::new(
                AmazonS3Builder::new()
                    .with_endpoint(&server.endpoint)
                    .with_bucket_name(keyhole_testkit::s3::BUCKET)
                    .with_region("us-east-1")
                    .with_access_key_id("test")
                    .with_secret_access_key("testsecret")
                    .with_allow_http(true)
                    .build()?,
            );
            let body = bytes::Bytes::from(bytes);
            let failed = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let puts: Vec<_> = (0..cameras)
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
            let mut latencies = Vec::with_capacity(cameras);
            for put in puts {
                latencies.push(put.await?);
            }
            let wall = start.elapsed();
            ensure!(
                failed.load(Ordering::Relaxed) == 0,
                "uploads to the S3 server failed"
            );
            Some(Outcome { wall, latencies })
        }
        None => None,
    };

    let mut t = String::new();
    writeln!(
        t,
        "{cameras} cameras, each paired to one `keyhole-server` (release build, SQLite + folder, \
         plain HTTP on loopback, its own process) and holding one sealed {object_len}-byte clip \
         in its spool; all start uploading at once through the camera agent's own upload code. \
         Latency is one camera's upload, start to acknowledgement. {:.0} MB in all.\n",
        total as f64 / 1e6
    )?;
    writeln!(
        t,
        "| what | clips/s | MB/s | MB/s ratio to plain file writes | p50 ms | p99 ms | server memory |"
    )?;
    writeln!(t, "|---|---:|---:|---:|---:|---:|---|")?;
    writeln!(
        t,
        "{}",
        plain.row(
            "plain file writes, one after another (baseline)",
            cameras,
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
            cameras,
            total,
            disk,
            &format!(
                "{:.0} MB before, {:.0} MB peak",
                rss_before as f64 / 1e6,
                rss_peak as f64 / 1e6
            ),
        )
    )?;
    match s3 {
        Some(s3) => writeln!(
            t,
            "{}",
            s3.row(
                "S3 server (`s3s-fs`), unencrypted PUTs (alternative)",
                cameras,
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
