//! Browsing a camera's history: one camera recording continuous 60-second segments with an
//! event every ten minutes, and the owner's device syncing its index (PROTOCOL.md §7.12,
//! §13.1) — the first sync, a sync with nothing new, a sync with one new event, and the first
//! page of events — against the full-download path (every object downloaded and opened, each
//! event opened again to show it) in the same run, at the sizes where that baseline can
//! finish. Bytes are what the device downloaded (response bodies), counted by a proxy.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::ensure;
use keyhole_camera::Agent;
use keyhole_client::core::event::{EventDetails, EventKind};
use keyhole_client::core::{CameraId, ObjectId, Timestamp};
use keyhole_client::index::{EventQuery, Index};
use rand_chacha::ChaCha20Rng;

use crate::stats::ms;
use crate::world::{Counted, World};

/// Plaintext bytes of each recorded segment in this bench. Real 60-second segments are far
/// larger (about 2 MB at 640x360); only the baseline downloads them, so its bytes are shown
/// for these small segments and grow with real ones, while the index's do not.
const SEGMENT_BYTES: usize = 4096;
/// A thumbnail at a real size.
const THUMBNAIL_BYTES: usize = 20_000;
/// An event every this many segments.
const EVENT_EVERY: u64 = 10;
/// Events on the viewer's first page.
const PAGE: usize = 50;

/// One measured step: what it downloaded and how long it took.
struct Step {
    bytes: u64,
    took: Duration,
}

impl Step {
    fn cell(&self) -> String {
        format!("{} in {:.1} ms", bytes(self.bytes), ms(self.took))
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{:.1} MB", n as f64 / 1e6),
        n if n >= 10 << 10 => format!("{:.1} KB", n as f64 / 1e3),
        n => format!("{n} B"),
    }
}

async fn step<T>(
    counted: &Counted,
    work: impl AsyncFnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(Step, T)> {
    let before = counted.bytes();
    let start = Instant::now();
    let out = work().await?;
    let took = start.elapsed();
    Ok((
        Step {
            bytes: counted.bytes() - before,
            took,
        },
        out,
    ))
}

/// Records `segments` minutes of history ending now: a segment a minute, an event with a
/// thumbnail every [`EVENT_EVERY`] minutes naming its segment.
async fn record(
    agent: &mut Agent,
    rng: &mut ChaCha20Rng,
    segments: u64,
    end: Timestamp,
) -> anyhow::Result<()> {
    let segment = vec![0x5a; SEGMENT_BYTES];
    let thumbnail = vec![0xd8; THUMBNAIL_BYTES];
    for i in 0..segments {
        let at = Timestamp(end.0 - (segments - i) * 60_000);
        let clip = agent.seal_clip(&segment, at, rng)?;
        if i % EVENT_EVERY == 0 {
            event(agent, rng, at, clip, &thumbnail)?;
        }
        if i % 500 == 499 {
            agent.upload_pending().await?;
        }
    }
    agent.upload_pending().await?;
    Ok(())
}

fn event(
    agent: &mut Agent,
    rng: &mut ChaCha20Rng,
    at: Timestamp,
    clip: ObjectId,
    thumbnail: &[u8],
) -> anyhow::Result<ObjectId> {
    Ok(agent.seal_event(
        &EventDetails {
            kind: EventKind::Motion,
            started_at: at,
            duration_ms: 8000,
            clip: Some(clip),
            note: String::new(),
            thumbnail_jpeg: thumbnail.to_vec(),
        },
        rng,
    )?)
}

struct Measured {
    objects: u64,
    first: Step,
    nothing_new: Step,
    one_new: Step,
    first_page: Duration,
    baseline: Option<Step>,
}

async fn measure(segments: u64, with_baseline: bool) -> anyhow::Result<Measured> {
    let (mut world, counted) = World::start_counted().await?;
    let (mut agent, camera) = world.camera().await?;
    let now = keyhole_camera::now();
    record(&mut agent, &mut world.rng, segments, now).await?;
    let events = segments.div_ceil(EVENT_EVERY);
    let objects = segments + events;
    let mut index = world
        .owner
        .open_index(&world.dir.path().join("phone.index"))?;
    let mut rng = world.rng.clone();
    let owner = &mut world.owner;
    let sync = async |owner: &mut keyhole_client::Owner,
                      index: &mut Index,
                      rng: &mut ChaCha20Rng|
           -> anyhow::Result<()> {
        // As `keyhole events` and the viewer do: the account first, then the camera.
        owner.sync().await?;
        let report = owner
            .sync_index(&camera, index, keyhole_camera::now(), rng)
            .await?;
        ensure!(report.is_clean(), "the history did not verify:\n{report}");
        Ok(())
    };
    let (first, ()) = step(&counted, async || sync(owner, &mut index, &mut rng).await).await?;
    let held = index.events(&EventQuery::default())?.len() as u64;
    ensure!(held == events, "{held} of {events} events in the index");
    let (nothing_new, ()) =
        step(&counted, async || sync(owner, &mut index, &mut rng).await).await?;
    let thumbnail = vec![0xd8; THUMBNAIL_BYTES];
    let at = keyhole_camera::now();
    let clip = agent.seal_clip(&[0x5b; SEGMENT_BYTES], at, &mut world.rng)?;
    let newest = event(&mut agent, &mut world.rng, at, clip, &thumbnail)?;
    agent.upload_pending().await?;
    let (one_new, ()) = step(&counted, async || sync(owner, &mut index, &mut rng).await).await?;
    let start = Instant::now();
    let page = index.events(&EventQuery {
        limit: Some(PAGE),
        ..EventQuery::default()
    })?;
    for e in &page {
        if let Some(clip) = e.details.clip {
            index.object_state(&camera, &clip)?;
        }
    }
    let first_page = start.elapsed();
    ensure!(
        page.first().map(|e| e.event) == Some(newest),
        "the newest event does not lead the first page"
    );
    let baseline = if with_baseline {
        Some(
            step(&counted, async || full_download(owner, &camera).await)
                .await?
                .0,
        )
    } else {
        None
    };
    Ok(Measured {
        objects: objects + 2,
        first,
        nothing_new,
        one_new,
        first_page,
        baseline,
    })
}

/// The path every listing took before the index: download and open every object, then open
/// each event again to show it.
async fn full_download(owner: &mut keyhole_client::Owner, camera: &CameraId) -> anyhow::Result<()> {
    let report = owner
        .verify_full_at(camera, keyhole_camera::now(), &mut |_, _| {})
        .await?;
    ensure!(
        report.is_clean(),
        "the full check did not verify:\n{report}"
    );
    for entry in &report.entries {
        let Some(header) = &entry.header else {
            continue;
        };
        if header.kind == keyhole_client::core::envelope::ObjectKind::Event {
            let mut plain = Vec::new();
            owner.export(camera, &header.object_id, &mut plain).await?;
        }
    }
    Ok(())
}

pub async fn run(quick: bool, year: bool) -> anyhow::Result<String> {
    let mut scales: Vec<(&str, u64, bool)> = if quick {
        vec![("one hour", 60, true)]
    } else {
        vec![("one day", 1440, true), ("one month", 43_200, false)]
    };
    if year {
        scales.push(("one year", 525_600, false));
    }
    let mut t = String::new();
    writeln!(
        t,
        "One camera recording a {SEGMENT_BYTES}-byte segment a minute and an event with a \
         {THUMBNAIL_BYTES}-byte thumbnail every {EVENT_EVERY} minutes; the owner's device syncs \
         its index (a fresh one, then again with nothing new, then after one new event; each sync \
         brings the account up to date first, as `keyhole events` does) and reads the first page of {PAGE} events. Bytes are what the device downloaded. The \
         baseline is the path every listing took before: every object downloaded and opened, \
         each event opened again; its bytes grow with the segments' real size (about 2 MB \
         each at 640x360), the index's do not.\n"
    )?;
    writeln!(
        t,
        "| history | objects | first sync | sync, nothing new | sync, one new event | first page | every object downloaded (baseline) |"
    )?;
    writeln!(t, "|---|---:|---:|---:|---:|---:|---:|")?;
    for (name, segments, with_baseline) in &scales {
        eprintln!("keyhole-bench: history of {name}…");
        let m = measure(*segments, *with_baseline).await?;
        writeln!(
            t,
            "| {name} | {} | {} | {} | {} | {:.2} ms | {} |",
            m.objects,
            m.first.cell(),
            m.nothing_new.cell(),
            m.one_new.cell(),
            ms(m.first_page),
            m.baseline.as_ref().map_or_else(
                || "not run (too long)".to_owned(),
                |b| {
                    format!(
                        "{} ({:.0}× the sync with nothing new)",
                        b.cell(),
                        b.bytes as f64 / m.nothing_new.bytes.max(1) as f64
                    )
                }
            ),
        )?;
    }
    Ok(t)
}
