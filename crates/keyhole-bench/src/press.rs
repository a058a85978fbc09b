//! From a doorbell press to the event opened on the owner's device: the camera agent running
//! (synthetic 640x480 video, wired and battery profiles), the doorbell pressed on its control
//! endpoint, and the owner's device doing what `keyhole watch` does — following the
//! announcement channel, syncing the camera's index when it is told, opening the new event —
//! against the same device syncing every 10 seconds instead (the baseline), in the same run.
//! Between presses the camera is left to finish its clip, upload it and (battery) fall asleep,
//! so each press pays for the wake and the first key frame.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use keyhole_camera::config::{Config, Profile};
use keyhole_camera::source::SourceConfig;
use keyhole_client::announcements::Announcements;
use keyhole_client::core::envelope::ObjectKind;
use keyhole_client::core::event::EventKind;
use keyhole_client::core::{CameraId, ObjectId};
use keyhole_client::index::Index;
use keyhole_client::wire::announce::Message;
use rand_core::RngCore;

use crate::stats::{Spread, ms, percentile};
use crate::world::World;

/// How often the baseline device syncs.
const POLL: Duration = Duration::from_secs(10);

/// One press, timed. The camera's part is split at the moment it sealed the event, from its
/// status. The event is stamped with the press, not the picture after it, so waiting for that
/// picture and sealing are one figure.
struct Press {
    /// Press to the event sealed and spooled (the control request, on battery the wake, the
    /// next picture, its thumbnail, sealing, the spool's write).
    sealed: Duration,
    /// Sealed to stored on the server (the upload).
    uploaded: Duration,
    /// Stored to the device told (the announcement).
    announced: Duration,
    /// Told to the event verified and opened on the device (listing, head, the event).
    opened: Duration,
    /// Press to opened.
    total: Duration,
}

pub async fn run(quick: bool) -> anyhow::Result<String> {
    let (presses, polled) = if quick { (3, 1) } else { (50, 10) };
    let mut out = format!(
        "Run by `keyhole-bench press`. Synthetic 640x480 video at 15 pictures a second, a key \
         frame each second; {presses} presses per profile, each after the camera finished and \
         uploaded its last clip (and, on battery, went back to sleep). The device follows the \
         announcement channel as `keyhole watch` does; the baseline is the same device syncing \
         every {} s ({polled} presses at random moments).\n\n\
         | profile | press to opened p50 | p99 | captured and sealed p50 | uploaded p50 | \
         announced p50 | fetched, verified and opened on the device p50 | polling every {} s: \
         p50 | p99 |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        POLL.as_secs(),
        POLL.as_secs(),
    );
    for profile in [Profile::Wired, Profile::Battery] {
        eprintln!("  press: {profile:?}");
        let (timed, baseline) = profile_run(profile, presses, polled).await?;
        let total: Vec<Duration> = timed.iter().map(|p| p.total).collect();
        let median =
            |f: fn(&Press) -> Duration| percentile(&timed.iter().map(f).collect::<Vec<_>>(), 0.5);
        let spread = Spread::of(&total);
        let polling = Spread::of(&baseline);
        writeln!(
            out,
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.1} ms | {:.0} ms | {:.0} ms \
             | {:.0} ms |",
            format!("{profile:?}").to_lowercase(),
            ms(spread.p50),
            ms(spread.p99),
            ms(median(|p| p.sealed)),
            ms(median(|p| p.uploaded)),
            ms(median(|p| p.announced)),
            ms(median(|p| p.opened)),
            ms(polling.p50),
            ms(polling.p99),
        )?;
    }
    Ok(out)
}

/// A running camera of `profile`, pressed `presses` times with the device following the
/// channel, then `polled` times with the device syncing every [`POLL`].
async fn profile_run(
    profile: Profile,
    presses: usize,
    polled: usize,
) -> anyhow::Result<(Vec<Press>, Vec<Duration>)> {
    let mut world = World::start().await?;
    let (agent, camera) = world.camera().await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let control = format!("http://{}", listener.local_addr()?);
    let mut config = Config {
        state_dir: world.camera_dir(1),
        profile,
        source: SourceConfig::Synthetic {
            width: 640,
            height: 480,
            fps: 15,
            visit_every_s: None,
            marker: None,
            sound: true,
        },
        ..Config::default()
    };
    config.clip.pre_roll_s = 1.0;
    config.clip.post_roll_s = 1.0;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(keyhole_camera::run::run(config, agent, listener, async {
        stopped.await.ok();
    }));
    let http = reqwest::Client::new();
    let index_path = world.dir.path().join("device.index");
    let mut index = world.owner.open_index(&index_path)?;
    let result = async {
        settle(&http, &control).await?;
        let mut channel = world.owner.announcements().await?;
        sync(&mut world, &camera, &mut index).await?;
        let mut timed = Vec::with_capacity(presses);
        for _ in 0..presses {
            settle(&http, &control).await?;
            timed.push(
                press(
                    &mut world,
                    &camera,
                    &mut index,
                    &mut channel,
                    &http,
                    &control,
                )
                .await?,
            );
        }
        drop(channel);
        let mut baseline = Vec::with_capacity(polled);
        for _ in 0..polled {
            settle(&http, &control).await?;
            baseline.push(polled_press(&mut world, &camera, &mut index, &http, &control).await?);
        }
        Ok::<_, anyhow::Error>((timed, baseline))
    }
    .await;
    let _ = stop.send(());
    running.await?.context("the camera")?;
    result
}

/// Waits until the camera records nothing, has uploaded everything and (battery) sleeps.
async fn settle(http: &reqwest::Client, control: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(answer) = http.get(format!("{control}/status")).send().await {
            let status: serde_json::Value = answer.json().await?;
            if status["recording"] == false && status["spool_objects"] == 0 {
                return Ok(());
            }
        }
        if Instant::now() > deadline {
            bail!("the camera did not settle within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Syncs the camera's index; returns the doorbell events it had not held.
async fn sync(
    world: &mut World,
    camera: &CameraId,
    index: &mut Index,
) -> anyhow::Result<Vec<ObjectId>> {
    let report = world
        .owner
        .sync_index(camera, index, keyhole_camera::now(), &mut world.rng)
        .await?;
    let mut new = Vec::new();
    for entry in report.entries.iter().filter(|e| e.is_verified()) {
        let Some(header) = &entry.header else {
            continue;
        };
        if header.kind == ObjectKind::Event
            && let Some(event) = index.event(&header.object_id)?
            && event.details.kind == EventKind::Doorbell
        {
            new.push(header.object_id);
        }
    }
    Ok(new)
}

async fn ring(http: &reqwest::Client, control: &str) -> anyhow::Result<()> {
    let answer = http.post(format!("{control}/doorbell")).send().await?;
    anyhow::ensure!(
        answer.status().is_success(),
        "the doorbell: {}",
        answer.status()
    );
    Ok(())
}

/// When the camera last sealed an object (its clock, ms since 1970), from its status.
async fn sealed_at(http: &reqwest::Client, control: &str) -> anyhow::Result<u64> {
    let status: serde_json::Value = http
        .get(format!("{control}/status"))
        .send()
        .await?
        .json()
        .await?;
    status["last_sealed_ms"]
        .as_u64()
        .context("the camera's status says when it last sealed")
}

/// When the server stored the camera's newest object (its clock, ms since 1970).
async fn stored_at(world: &World, camera: &CameraId) -> anyhow::Result<u64> {
    let cameras: serde_json::Value = world.owner.api().get_json("/v1/cameras").await?;
    cameras
        .as_array()
        .and_then(|all| all.iter().find(|c| c["camera_id"] == camera.to_string()))
        .and_then(|c| c["latest"]["uploaded_at"].as_u64())
        .context("the camera's newest upload")
}

async fn press(
    world: &mut World,
    camera: &CameraId,
    index: &mut Index,
    channel: &mut Announcements,
    http: &reqwest::Client,
    control: &str,
) -> anyhow::Result<Press> {
    let known = sync(world, camera, index).await?;
    let (pressed_at, pressed) = (keyhole_camera::now(), Instant::now());
    ring(http, control).await?;
    loop {
        let told = match channel.next().await? {
            Message::Objects { camera: c, .. } if c == camera.0 => Instant::now(),
            _ => continue,
        };
        let stored = stored_at(world, camera).await?;
        let sealed = sealed_at(http, control).await?;
        let new = sync(world, camera, index).await?;
        if let Some(event) = new.iter().find(|e| !known.contains(e)) {
            let opened = Instant::now();
            anyhow::ensure!(
                index.event(event)?.is_some() && (pressed_at.0..=stored).contains(&sealed),
                "the camera sealed something else before its status was read"
            );
            let since_press = |at: u64| Duration::from_millis(at.saturating_sub(pressed_at.0));
            return Ok(Press {
                sealed: since_press(sealed),
                uploaded: since_press(stored).saturating_sub(since_press(sealed)),
                announced: (told - pressed).saturating_sub(since_press(stored)),
                opened: opened - told,
                total: opened - pressed,
            });
        }
    }
}

/// The baseline: a device syncing every [`POLL`], the press at a random moment between syncs.
async fn polled_press(
    world: &mut World,
    camera: &CameraId,
    index: &mut Index,
    http: &reqwest::Client,
    control: &str,
) -> anyhow::Result<Duration> {
    let known = sync(world, camera, index).await?;
    let mut ticks = tokio::time::interval(POLL);
    ticks.tick().await;
    let wait = rand_core::OsRng.next_u64() % POLL.as_millis() as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    let pressed = Instant::now();
    ring(http, control).await?;
    loop {
        ticks.tick().await;
        let new = sync(world, camera, index).await?;
        if new.iter().any(|e| !known.contains(e)) {
            return Ok(pressed.elapsed());
        }
    }
}
