//! Playback of a 60-second clip on the owner's device: the time to the first 64 KiB of video
//! and to 64 KiB from the middle (a seek), opened and authenticated, against fetching the same
//! byte ranges from the server without opening them (an unencrypted download of the same
//! bytes), taken in turns in the same run.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::ensure;

use crate::stats::{Spread, clip_bytes, ms};
use crate::world::World;

/// 60 seconds of 1080p at 4 Mbit/s.
const CLIP_BYTES: usize = 30_000_000;
/// What a player asks for at a time.
const READ: u64 = 64 << 10;

pub async fn run(quick: bool) -> anyhow::Result<String> {
    let (clip_len, rounds) = if quick {
        (3_000_000, 10)
    } else {
        (CLIP_BYTES, 100)
    };
    let mut world = World::start().await?;
    let (mut agent, camera) = world.camera().await?;
    let clip = clip_bytes(clip_len, 8);
    let object = agent.seal_clip(&clip, keyhole_camera::now(), &mut world.rng)?;
    ensure!(
        agent.upload_pending().await? == 1,
        "the clip was not uploaded"
    );
    let owner = &world.owner;
    let api = owner.api();
    let path = format!("/v1/objects/{object}");
    let middle = clip_len as u64 / 2;
    let expect = |at: u64| &clip[at as usize..(at + READ) as usize];

    let mut times: [Vec<Duration>; 4] = Default::default();
    let reader = owner.open_clip(&camera, &object).await?;
    for round in 0..=rounds {
        let mut took = [Duration::ZERO; 4];
        // First bytes: open the clip (fetch and verify its header, unwrap the key), then read.
        let start = Instant::now();
        let opened = owner.open_clip(&camera, &object).await?;
        let first = opened.read(0..READ).await?;
        took[0] = start.elapsed();
        ensure!(first == expect(0), "the first bytes differ from the clip's");
        let start = Instant::now();
        let (raw, _) = api.get_range(&path, 0..READ).await?;
        took[1] = start.elapsed();
        ensure!(raw.len() as u64 == READ, "short range");
        // A seek on a clip already open.
        let start = Instant::now();
        let seek = reader.read(middle..middle + READ).await?;
        took[2] = start.elapsed();
        ensure!(
            seek == expect(middle),
            "the bytes after a seek differ from the clip's"
        );
        let start = Instant::now();
        let (raw, _) = api.get_range(&path, middle..middle + READ).await?;
        took[3] = start.elapsed();
        ensure!(raw.len() as u64 == READ, "short range");
        if round > 0 {
            for (t, d) in times.iter_mut().zip(took) {
                t.push(d);
            }
        }
    }
    let [first, first_raw, seek, seek_raw] = times.map(|t| Spread::of(&t));

    let mut t = String::new();
    writeln!(
        t,
        "A sealed {clip_len}-byte clip (60 seconds of 1080p at 4 Mbit/s) on the server; the \
         owner's device reads {READ} bytes at the start and at the middle through the player's \
         range reads, {rounds} times each, taken in turns with the unencrypted fetch of the same \
         range. Each opening also starts the check of the whole clip in the background (it \
         streams the clip once to bind what is played to the camera's signature), which runs \
         while these reads are timed.\n"
    )?;
    writeln!(t, "| what | p50 ms | p99 ms | p50 ratio to unencrypted |")?;
    writeln!(t, "|---|---:|---:|---:|")?;
    for (what, s, base) in [
        (
            "first bytes, unencrypted range download (baseline)",
            first_raw,
            first_raw,
        ),
        (
            "first bytes, opened: header and first chunk in one request, header verified, key \
             unwrapped, chunk opened",
            first,
            first_raw,
        ),
        (
            "seek to the middle, unencrypted range download (baseline)",
            seek_raw,
            seek_raw,
        ),
        (
            "seek to the middle, opened (the clip already open)",
            seek,
            seek_raw,
        ),
    ] {
        writeln!(
            t,
            "| {what} | {:.2} | {:.2} | {:.2} |",
            ms(s.p50),
            ms(s.p99),
            ms(s.p50) / ms(base.p50)
        )?;
    }
    world.server.stop();
    Ok(t)
}
