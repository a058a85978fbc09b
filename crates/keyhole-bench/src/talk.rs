//! Talking back: the latency a 20 ms piece of speech sees from the owner's device having it to
//! the camera's speaker having it — encoded as Opus, sealed, relayed by the server, opened,
//! checked for lateness and decoded (`keyhole_camera::talk::hear`) — against frames of the same
//! sizes sent through the same relay plain. Device and camera run in this process, so both ends
//! read the same clock.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures_util::StreamExt;
use keyhole_camera::Agent;
use keyhole_client::Owner;
use keyhole_client::core::CameraId;
use keyhole_client::core::envelope::Suite;
use keyhole_client::core::live::{FRAME_HEADER_LEN, frame_header};
use keyhole_client::core::talk::{HEADER_LEN, TalkHeader};
use keyhole_client::owner::LiveOutcome;
use keyhole_client::talk::CameraTime;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, mpsc};

use crate::stats::{Spread, ms};
use crate::world::World;

/// 16 kHz mono, 20 ms a packet.
const RATE: u32 = 16_000;
const PACKET: Duration = Duration::from_millis(20);
const SAMPLES: usize = 320;
/// Packets of each session left out of the figures.
const WARM_UP: usize = 25;
/// A plain frame's body: a 60-byte packet (24 kb/s) with the sealed frame's 28 bytes more.
const PLAIN_BODY: usize = 88;

/// A spoken sound: a tone that comes and goes, so Opus has something to say.
fn speech(packets: usize) -> Vec<Vec<u8>> {
    (0..packets)
        .map(|p| {
            (0..SAMPLES)
                .flat_map(|i| {
                    let t = (p * SAMPLES + i) as f64 / f64::from(RATE);
                    let level = if (p / 10) % 2 == 0 { 6000.0 } else { 1500.0 };
                    #[allow(clippy::cast_possible_truncation)]
                    let s = (level * (std::f64::consts::TAU * 440.0 * t).sin()).round() as i16;
                    s.to_le_bytes()
                })
                .collect()
        })
        .collect()
}

/// The next talk stream for the camera, however long it takes to come.
async fn next_talk(link: &keyhole_camera::agent::Link) -> anyhow::Result<reqwest::Response> {
    loop {
        if let Some(stream) = link.talk_next(30).await? {
            return Ok(stream);
        }
    }
}

/// One talk session of `packets`, sealed through the camera's own listener; each packet's
/// latency from the device having it to the camera having it decoded.
async fn sealed(
    agent: &Arc<Mutex<Agent>>,
    owner: &Owner,
    camera: &CameraId,
    packets: usize,
) -> anyhow::Result<Vec<Duration>> {
    let link = agent.lock().await.link();
    let (sound, mut heard) = mpsc::channel::<Vec<i16>>(packets + 8);
    let camera_side = async {
        let stream = next_talk(&link).await?;
        keyhole_camera::talk::hear(agent, stream, RATE, sound).await?;
        anyhow::Ok(())
    };
    let arrivals = async {
        let mut at = Vec::with_capacity(packets);
        while heard.recv().await.is_some() {
            at.push(Instant::now());
        }
        at
    };
    // The camera's time, as a live view would have shown it.
    let seen = CameraTime::default();
    seen.saw(&LiveOutcome {
        camera_clock: Some(keyhole_camera::now()),
        ..LiveOutcome::default()
    });
    let (mut microphone, mut input) = tokio::io::duplex(1 << 16);
    let spoken = async {
        let mut said = Vec::with_capacity(packets);
        let mut ticker = tokio::time::interval(PACKET);
        for pcm in speech(packets) {
            ticker.tick().await;
            said.push(Instant::now());
            microphone.write_all(&pcm).await?;
        }
        drop(microphone);
        anyhow::Ok(said)
    };
    let device_side = async {
        owner
            .talk_seeing(camera, &mut input, RATE, &seen, 10)
            .await
            .map_err(anyhow::Error::from)
    };
    let (camera_done, arrived, said, talked) =
        tokio::join!(camera_side, arrivals, spoken, device_side);
    camera_done.context("the camera's side")?;
    talked.context("the device's side")?;
    let said = said?;
    ensure!(
        arrived.len() == packets,
        "{} of {packets} packets played",
        arrived.len()
    );
    Ok(arrived.iter().zip(&said).map(|(a, s)| *a - *s).collect())
}

/// One session of `packets` plain frames of a sealed packet's size through the same relay: each
/// frame's latency from the device sending it to the camera having it.
async fn plain(
    agent: &Arc<Mutex<Agent>>,
    owner: &Owner,
    camera: &CameraId,
    packets: usize,
) -> anyhow::Result<Vec<Duration>> {
    let link = agent.lock().await.link();
    let camera_side = async {
        let stream = next_talk(&link).await?;
        let mut body = stream.bytes_stream();
        let (mut buf, mut at, mut started) = (Vec::new(), Vec::with_capacity(packets), false);
        while let Some(chunk) = body.next().await {
            buf.extend_from_slice(&chunk?);
            if !started && buf.len() >= HEADER_LEN {
                buf.drain(..HEADER_LEN);
                started = true;
            }
            while started && buf.len() >= FRAME_HEADER_LEN {
                let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                if buf.len() < FRAME_HEADER_LEN + len {
                    break;
                }
                buf.drain(..FRAME_HEADER_LEN + len);
                at.push(Instant::now());
            }
        }
        anyhow::Ok(at)
    };
    // The relay reads the header (it must name this camera) and nothing else.
    let header = TalkHeader {
        suite: Suite::ChaCha20Poly1305,
        camera_id: *camera,
        epoch: 1,
        challenge: [9; 32],
        ephemeral: [9; 32],
        session: [0; 16],
    }
    .encode();
    let (tx, rx) = mpsc::channel::<Result<Vec<u8>, std::io::Error>>(64);
    let device_side = async {
        let body = reqwest::Body::wrap_stream(futures_util::stream::unfold(rx, |mut rx| async {
            rx.recv().await.map(|item| (item, rx))
        }));
        owner
            .api()
            .put_stream(&format!("/v1/cameras/{camera}/talk"), body)
            .await
            .map_err(anyhow::Error::from)
    };
    let sending = async {
        tx.send(Ok(header.to_vec())).await?;
        let mut said = Vec::with_capacity(packets);
        let mut ticker = tokio::time::interval(PACKET);
        for i in 0..packets {
            ticker.tick().await;
            said.push(Instant::now());
            let mut frame = frame_header(i as u64, u32::try_from(PLAIN_BODY)?).to_vec();
            frame.resize(FRAME_HEADER_LEN + PLAIN_BODY, 0x5a);
            tx.send(Ok(frame)).await?;
        }
        drop(tx);
        anyhow::Ok(said)
    };
    let (arrived, answered, said) = tokio::join!(camera_side, device_side, sending);
    answered.context("the device's side")?;
    let (arrived, said) = (arrived?, said?);
    ensure!(
        arrived.len() == packets,
        "{} of {packets} frames arrived",
        arrived.len()
    );
    Ok(arrived.iter().zip(&said).map(|(a, s)| *a - *s).collect())
}

pub async fn run(quick: bool) -> anyhow::Result<String> {
    let packets = if quick { 75 } else { 500 };
    let mut world = World::start().await?;
    let (mut agent, camera) = world.camera().await?;
    // The camera's signed head names the challenge talk is sealed to.
    agent.send_head().await?;
    world.owner.sync_camera(&camera).await?;
    let agent = Arc::new(Mutex::new(agent));
    // Sessions taken in turns, two of each; the first half second of each left out.
    let (mut base, mut talked) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let took = plain(&agent, &world.owner, &camera, packets).await?;
        base.extend_from_slice(&took[WARM_UP..]);
        let took = sealed(&agent, &world.owner, &camera, packets).await?;
        talked.extend_from_slice(&took[WARM_UP..]);
    }
    let (b, t) = (Spread::of(&base), Spread::of(&talked));
    let mut out = String::new();
    writeln!(
        out,
        "Four sessions of {packets} packets of 20 ms (16 kHz mono), plain and talk-back in turns, \
         from the owner's device to the camera through the server's relay on loopback, the first \
         {WARM_UP} of each session left out. Talk-back's latency runs from the device having \
         the 20 ms of sound to the camera having it decoded: Opus-encoded at 24 kb/s, sealed \
         (PROTOCOL.md §8.4), relayed, opened, checked for lateness and decoded by the camera's \
         own listener; the baseline sends frames of the sealed frames' size ({PLAIN_BODY} \
         bytes) plain through the same relay.\n"
    )?;
    writeln!(out, "| path | p50 ms | p99 ms |")?;
    writeln!(out, "|---|---:|---:|")?;
    writeln!(
        out,
        "| plain frames through the relay (baseline) | {:.2} | {:.2} |",
        ms(b.p50),
        ms(b.p99)
    )?;
    writeln!(
        out,
        "| talk-back, microphone to speaker | {:.2} | {:.2} |",
        ms(t.p50),
        ms(t.p99)
    )?;
    writeln!(
        out,
        "| added by encoding, sealing, opening and decoding | {:+.2} | {:+.2} |",
        ms(t.p50) - ms(b.p50),
        ms(t.p99) - ms(b.p99)
    )?;
    world.server.stop();
    Ok(out)
}
