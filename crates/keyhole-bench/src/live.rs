//! Live view: the latency a fragment sees from the camera to the viewer through the server's
//! relay, sealed and opened, against the same fragments sent through the same relay unsealed.
//! Camera and viewer run in this process, so both ends read the same clock. Sealed, each
//! fragment is followed by the camera's signed checkpoint vouching for it (PROTOCOL.md §8.2.1),
//! since a viewer shows a frame only once one does: the figure includes signing and checking it
//! (a real camera signs one a second, so a frame waits up to a second more).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use bytes::Bytes;
use futures_util::StreamExt;
use keyhole_camera::Agent;
use keyhole_client::Owner;
use keyhole_client::core::CameraId;
use keyhole_client::core::envelope::PREFIX_LEN;
use keyhole_client::core::live::{FRAME_HEADER_LEN, LiveSealer, frame_header};
use keyhole_client::core::live_check::{CHECKPOINT_INDEX, Checkpoint, frame_digest};
use keyhole_media::{AccessUnit, mp4};
use tokio::sync::mpsc;

use crate::stats::{Spread, clip_bytes, ms};
use crate::world::World;

/// 30 pictures a second.
const EVERY: Duration = Duration::from_millis(33);
/// Fragments of each session left out of the figures.
const WARM_UP: usize = 30;
/// A key frame every two seconds (one 64 KiB fragment), else 16 KiB (4 Mbit/s in all).
fn fragment_len(i: usize) -> usize {
    if i.is_multiple_of(60) {
        64 << 10
    } else {
        16 << 10
    }
}

/// A live stream as a camera sends it (PROTOCOL.md §8.2): fragmented MP4, the initialization
/// segment with the first fragment, each fragment a picture of about `fragment_len` bytes.
fn stream(frames: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    const SPS: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];
    (0..frames)
        .map(|i| {
            // Room for the moof, and the initialization segment in the first.
            let mut slice = clip_bytes(fragment_len(i) - 2048, i as u64);
            let key = i.is_multiple_of(60);
            slice[0] = if key { 0x65 } else { 0x41 };
            let mut nals = vec![slice];
            if key {
                nals.splice(0..0, [SPS.to_vec(), PPS.to_vec()]);
            }
            let au = AccessUnit::new(i as u64 * 3000, nals);
            let mut out = if i == 0 {
                mp4::fragmented_init(&mp4::VideoConfig::h264(&SPS, &PPS), None)?
            } else {
                Vec::new()
            };
            out.extend(mp4::fragment(u32::try_from(i + 1)?, &au, 3000)?);
            Ok(out)
        })
        .collect()
}

/// Records when each fragment (a `moof` and its `mdat`) comes out of the viewer.
struct Arrivals(Vec<Instant>);

impl std::io::Write for Arrivals {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.get(4..8) == Some(b"moof".as_slice()) {
            self.0.push(Instant::now());
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One session of `frames` fragments; returns each fragment's latency.
async fn session(
    agent: &mut Agent,
    owner: &Owner,
    camera: &CameraId,
    frames: usize,
    sealed: bool,
    rng: &mut rand_chacha::ChaCha20Rng,
) -> anyhow::Result<Vec<Duration>> {
    let fragments = stream(frames)?;
    let link = agent.link();
    // The camera's signed head names the challenge the viewer's request answers.
    agent.send_head().await?;
    let start = agent.live_start(rng).await?;
    let mut prefix = Vec::new();
    let mut sealer = LiveSealer::new(
        start.params,
        &start.viewing_key,
        &start.key,
        rng,
        &mut prefix,
    )?;
    let mut sent = Vec::with_capacity(frames);

    let header = sealer.header().clone();
    let camera_side = async {
        let viewers = loop {
            let wanted = link.live_wanted(10).await?;
            if wanted.wanted {
                break wanted.requests.iter().map(|r| r.nonce).collect::<Vec<_>>();
            }
        };
        let asked_at = keyhole_camera::now();
        let checkpoint = |index: u64, frame: &[u8]| -> anyhow::Result<Vec<u8>> {
            let signed = Checkpoint {
                camera_id: header.camera_id,
                session: header.object_id,
                clock: keyhole_camera::now(),
                nonces: viewers.iter().map(|n| (*n, asked_at)).collect(),
                frames: vec![(index, frame_digest(&frame[FRAME_HEADER_LEN..]))],
            }
            .sign(&start.key)?;
            let mut record = frame_header(CHECKPOINT_INDEX, u32::try_from(signed.len())?).to_vec();
            record.extend_from_slice(&signed);
            Ok(record)
        };
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
        let upload = tokio::spawn({
            let link = link.clone();
            async move { link.publish_live(rx).await }
        });
        tx.send(Ok(Bytes::from(prefix))).await?;
        let mut ticker = tokio::time::interval(EVERY);
        for (i, fragment) in fragments.iter().enumerate() {
            ticker.tick().await;
            sent.push(Instant::now());
            if sealed {
                let frame = sealer.seal_fragment(fragment, i + 1 == frames)?;
                let vouched = checkpoint(i as u64, &frame)?;
                tx.send(Ok(Bytes::from(frame))).await?;
                tx.send(Ok(Bytes::from(vouched))).await?;
            } else {
                let mut frame = frame_header(i as u64, u32::try_from(fragment.len())?).to_vec();
                frame.extend_from_slice(fragment);
                tx.send(Ok(Bytes::from(frame))).await?;
            }
        }
        drop(tx);
        upload.await??;
        anyhow::Ok(())
    };
    let viewer_side = async {
        if sealed {
            let mut arrivals = Arrivals(Vec::with_capacity(frames));
            let outcome = owner.watch_live(camera, 30, None, &mut arrivals).await?;
            ensure!(outcome.ended && outcome.skipped == 0, "frames were lost");
            Ok(arrivals.0)
        } else {
            let resp = owner
                .api()
                .get_stream(&format!("/v1/cameras/{camera}/live?wait_secs=30"))
                .await?;
            let mut body = resp.bytes_stream();
            let mut buf = Vec::new();
            let mut arrivals = Vec::with_capacity(frames);
            let mut prefix_seen = false;
            while arrivals.len() < frames {
                let chunk = body.next().await.context("the relay ended early")??;
                buf.extend_from_slice(&chunk);
                if !prefix_seen && buf.len() >= PREFIX_LEN {
                    buf.drain(..PREFIX_LEN);
                    prefix_seen = true;
                }
                while prefix_seen && buf.len() >= FRAME_HEADER_LEN {
                    let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                    if buf.len() < FRAME_HEADER_LEN + len {
                        break;
                    }
                    buf.drain(..FRAME_HEADER_LEN + len);
                    arrivals.push(Instant::now());
                }
            }
            Ok(arrivals)
        }
    };
    let ((), arrivals) = tokio::try_join!(camera_side, viewer_side)?;
    ensure!(
        arrivals.len() == frames,
        "{} of {frames} fragments arrived",
        arrivals.len()
    );
    Ok(arrivals.iter().zip(&sent).map(|(a, s)| *a - *s).collect())
}

pub async fn run(quick: bool) -> anyhow::Result<String> {
    let frames = if quick { 60 } else { 480 };
    let mut world = World::start().await?;
    let (mut agent, camera) = world.camera().await?;
    let mut rng = world.rng.clone();
    // Sessions taken in turns, two of each; a session's first second (connections being set
    // up) is left out.
    let (mut plain, mut sealed) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        for (is_sealed, into) in [(false, &mut plain), (true, &mut sealed)] {
            let took = session(
                &mut agent,
                &world.owner,
                &camera,
                frames,
                is_sealed,
                &mut rng,
            )
            .await?;
            into.extend_from_slice(&took[WARM_UP..]);
        }
    }
    let (p, s) = (Spread::of(&plain), Spread::of(&sealed));

    let mut t = String::new();
    writeln!(
        t,
        "Four sessions of {frames} fragments at 30 a second (a 64 KiB key frame every 60, else \
         16 KiB), plain and sealed in turns, camera to viewer through the server's relay on \
         loopback, the first {WARM_UP} of each session left out; latency is from the camera \
         having the fragment to the viewer having it (opened and authenticated, when sealed; \
         sealed fragments are each followed by the camera's signed checkpoint vouching for \
         them, which the viewer checks before it shows the fragment: a real camera signs one a \
         second, so there a fragment waits up to a second more).\n"
    )?;
    writeln!(t, "| relay | p50 ms | p99 ms |")?;
    writeln!(t, "|---|---:|---:|")?;
    writeln!(
        t,
        "| plain fragments (baseline) | {:.2} | {:.2} |",
        ms(p.p50),
        ms(p.p99)
    )?;
    writeln!(
        t,
        "| sealed fragments | {:.2} | {:.2} |",
        ms(s.p50),
        ms(s.p99)
    )?;
    writeln!(
        t,
        "| added by sealing | {:+.2} | {:+.2} |",
        ms(s.p50) - ms(p.p50),
        ms(s.p99) - ms(p.p99)
    )?;
    let cost = checkpoint_cost(if quick { 50 } else { 1000 });
    writeln!(
        t,
        "\nThe checkpoints' own cost (PROTOCOL.md §8.2.1), one second of live view at 30 pictures \
         (30 frames listed, two viewers named), best of {} runs in this process: the camera digests the 30 frames \
         (16 KiB each) and signs in {:.0} µs, and a viewer digests the frames it holds and checks \
         the signature in {:.0} µs — {:.3} % and {:.3} % of one core, every second.",
        cost.runs,
        cost.sign.as_secs_f64() * 1e6,
        cost.check.as_secs_f64() * 1e6,
        cost.sign.as_secs_f64() * 100.0,
        cost.check.as_secs_f64() * 100.0,
    )?;
    world.server.stop();
    Ok(t)
}

/// What one second's checkpoint costs each side, best of `runs`.
struct CheckpointCost {
    runs: usize,
    sign: Duration,
    check: Duration,
}

fn checkpoint_cost(runs: usize) -> CheckpointCost {
    use keyhole_client::core::{CameraKey, ObjectId, Timestamp};
    let key = CameraKey::from_seed(&[7; 32]);
    let bodies: Vec<Vec<u8>> = (0..30).map(|i| clip_bytes(16 << 10, i)).collect();
    let (mut sign, mut check) = (Duration::MAX, Duration::MAX);
    for _ in 0..runs {
        let started = Instant::now();
        let signed = Checkpoint {
            camera_id: CameraId([1; 16]),
            session: ObjectId([2; 16]),
            clock: Timestamp(1),
            nonces: vec![([3; 16], Timestamp(0)), ([4; 16], Timestamp(0))],
            frames: bodies
                .iter()
                .enumerate()
                .map(|(i, b)| (i as u64, frame_digest(b)))
                .collect(),
        }
        .sign(&key)
        .unwrap_or_default();
        sign = sign.min(started.elapsed());
        let started = Instant::now();
        let digests: Vec<_> = bodies.iter().map(|b| frame_digest(b)).collect();
        let checked = Checkpoint::verify(
            &signed,
            &CameraId([1; 16]),
            &ObjectId([2; 16]),
            &key.public(),
        );
        check = check.min(started.elapsed());
        assert!(checked.is_ok() && digests.len() == 30);
    }
    CheckpointCost { runs, sign, check }
}
