//! The running camera: the source feeds the recorder (and, when wired, the motion detector);
//! finished clips are cut into MP4, sealed with their event and spooled by one task, and
//! uploaded by another with retry and backoff, so a slow upload never stalls capture. A
//! loopback control endpoint serves the status and takes doorbell and external triggers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use keyhole_core::Timestamp;
use keyhole_core::event::{EventDetails, EventKind};
use keyhole_media::{TIMESCALE, mp4};
use rand_core::OsRng;
use serde::Serialize;
use tokio::sync::{Mutex, Notify, mpsc, watch};

use crate::agent::{Agent, AgentError, Status};
use crate::config::{Config, Profile};
use crate::recorder::{Clip, Recorder};
use crate::source::{self, SourceError};
use crate::video::decode::{FrameDecoder, thumbnail_jpeg};
use crate::video::motion::MotionDetector;

/// Why the camera stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The video source failed.
    #[error("video source: {0}")]
    Source(#[from] SourceError),
    /// The agent failed in a way retrying cannot cure.
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The control endpoint could not listen.
    #[error("control endpoint {0}: {1}")]
    Control(std::net::SocketAddr, std::io::Error),
}

/// What the control endpoint reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LiveStatus {
    /// The agent's status.
    #[serde(flatten)]
    pub agent: Status,
    /// `wired` or `battery`.
    pub profile: String,
    /// Whether a clip is being recorded.
    pub recording: bool,
    /// Events sealed by this process.
    pub events: u64,
}

#[derive(Clone)]
struct Control {
    triggers: mpsc::Sender<EventKind>,
    visitor: Arc<std::sync::atomic::AtomicBool>,
    status: watch::Receiver<LiveStatus>,
}

fn control_routes(control: Control) -> axum::Router {
    async fn trigger(control: &Control, kind: EventKind) -> axum::http::StatusCode {
        match control.triggers.send(kind).await {
            Ok(()) => axum::http::StatusCode::ACCEPTED,
            Err(_) => axum::http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }
    axum::Router::new()
        .route(
            "/status",
            get(|State(c): State<Control>| async move { axum::Json(c.status.borrow().clone()) }),
        )
        .route(
            "/doorbell",
            post(|State(c): State<Control>| async move { trigger(&c, EventKind::Doorbell).await }),
        )
        .route(
            "/trigger",
            post(|State(c): State<Control>| async move { trigger(&c, EventKind::External).await }),
        )
        .route(
            "/visitor/start",
            post(|State(c): State<Control>| async move {
                c.visitor.store(true, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }),
        )
        .route(
            "/visitor/stop",
            post(|State(c): State<Control>| async move {
                c.visitor.store(false, Ordering::Relaxed);
                axum::http::StatusCode::NO_CONTENT
            }),
        )
        .with_state(control)
}

/// A clip cut and timed, waiting to be sealed.
struct Cut {
    clip: Clip,
    started_at: Timestamp,
}

/// Runs the camera until `shutdown` resolves or the source ends; a clip being recorded at that
/// point is finished, sealed and spooled, and one last upload is attempted.
///
/// # Errors
/// A source or control endpoint that fails to start, or removal by the owner.
pub async fn run(
    config: Config,
    agent: Agent,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RunError> {
    let profile = config.profile;
    let mut status = LiveStatus {
        agent: agent.status().clone(),
        profile: format!("{profile:?}").to_lowercase(),
        ..LiveStatus::default()
    };
    let (status_tx, status_rx) = watch::channel(status.clone());
    let status_tx = Arc::new(status_tx);
    let agent = Arc::new(Mutex::new(agent));
    let mut source = source::start(&config.source)?;
    let (trigger_tx, mut triggers) = mpsc::channel(16);
    let listener = tokio::net::TcpListener::bind(config.control)
        .await
        .map_err(|e| RunError::Control(config.control, e))?;
    let routes = control_routes(Control {
        triggers: trigger_tx,
        visitor: source.visitor.clone(),
        status: status_rx,
    });
    let control = tokio::spawn(async move { axum::serve(listener, routes).await });

    let upload_wanted = Arc::new(Notify::new());
    let (cut_tx, cut_rx) = mpsc::channel::<Cut>(8);
    let sealer = tokio::spawn(seal_clips(
        cut_rx,
        agent.clone(),
        status_tx.clone(),
        upload_wanted.clone(),
    ));
    let uploader = tokio::spawn(upload_forever(
        agent.clone(),
        status_tx.clone(),
        upload_wanted.clone(),
        config.upload.retry_min_s,
        config.upload.retry_max_s,
    ));
    upload_wanted.notify_one();
    let live_feed = crate::live::LiveFeed::default();
    let live = tokio::spawn(crate::live::serve(agent.clone(), live_feed.clone()));

    let mut timing = config.clip.timing();
    if profile == Profile::Battery {
        timing.pre_roll_ms = 0;
    }
    let mut recorder = Recorder::new(timing);
    let watch_motion = profile == Profile::Wired && config.motion.enabled;
    let mut motion = MotionDetector::new(config.motion.settings.clone());
    let mut decoder = if watch_motion {
        Some(FrameDecoder::new(64, 36).map_err(SourceError::from)?)
    } else {
        None
    };
    // Stream time to wall time, anchored at the first picture.
    let mut anchor: Option<(u64, Timestamp)> = None;
    let mut awake = profile == Profile::Wired;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            kind = triggers.recv() => {
                if let Some(kind) = kind {
                    awake = true;
                    recorder.trigger(kind);
                }
            }
            au = source.pictures.recv() => {
                let Some(au) = au else { break };
                let (base_dts, base_wall) = *anchor.get_or_insert((au.dts, crate::now()));
                if let Some(viewer) = live_feed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_ref()
                {
                    // A viewer behind by 64 pictures misses some; capture never waits.
                    let _ = viewer.try_send(au.clone());
                }
                if !awake {
                    continue;
                }
                if let Some(decoder) = &mut decoder
                    && let Ok(Some(picture)) = decoder.decode(&au, false)
                    && motion.detect(&picture.grid)
                {
                    recorder.trigger(EventKind::Motion);
                }
                if let Some(clip) = recorder.push(au) {
                    let offset_ms = clip.starts_at().saturating_sub(base_dts) * 1000
                        / u64::from(TIMESCALE);
                    let started_at = Timestamp(base_wall.0 + offset_ms);
                    if cut_tx.send(Cut { clip, started_at }).await.is_err() {
                        break;
                    }
                    if profile == Profile::Battery {
                        awake = false;
                        recorder.forget();
                    }
                }
                if status.recording != recorder.is_recording() {
                    status.recording = recorder.is_recording();
                    status_tx.send_modify(|s| s.recording = status.recording);
                }
            }
        }
    }
    if let Some(clip) = recorder.finish() {
        let offset_ms = anchor.map_or(0, |(base_dts, _)| {
            clip.starts_at().saturating_sub(base_dts) * 1000 / u64::from(TIMESCALE)
        });
        let started_at = Timestamp(anchor.map_or(0, |(_, w)| w.0) + offset_ms);
        cut_tx.send(Cut { clip, started_at }).await.ok();
    }
    drop(cut_tx);
    // Closing the channel stops a source thread at its next picture.
    drop(source.pictures);
    let sealed = sealer.await.unwrap_or(Ok(()));
    uploader.abort();
    live.abort();
    control.abort();
    // One last attempt for whatever is still spooled; it stays spooled if this fails.
    agent.lock().await.upload_pending().await.ok();
    if source.done.is_finished()
        && let Ok(Err(e)) = source.done.await
    {
        return Err(e.into());
    }
    sealed?;
    Ok(())
}

async fn seal_clips(
    mut cuts: mpsc::Receiver<Cut>,
    agent: Arc<Mutex<Agent>>,
    status: Arc<watch::Sender<LiveStatus>>,
    upload_wanted: Arc<Notify>,
) -> Result<(), AgentError> {
    while let Some(Cut { clip, started_at }) = cuts.recv().await {
        // Decoding and muxing are CPU work: off the async threads.
        let Ok((clip, thumbnail, video)) = tokio::task::spawn_blocking(move || {
            let thumbnail = thumbnail_at(&clip);
            let video = mp4::write(&clip.access_units);
            (clip, thumbnail, video)
        })
        .await
        else {
            continue;
        };
        let video = match video {
            Ok(v) => v,
            Err(e) => {
                agent
                    .lock()
                    .await
                    .alert(format!("could not cut a clip into MP4: {e}"));
                continue;
            }
        };
        let mut agent = agent.lock().await;
        let rng = &mut OsRng;
        let outcome = async {
            let clip_id = agent.record_clip(&video, started_at, rng).await?;
            let details = EventDetails {
                kind: clip.kind,
                started_at,
                duration_ms: clip.duration_ms(),
                clip: Some(clip_id),
                note: String::new(),
                thumbnail_jpeg: thumbnail,
            };
            agent.seal_event(&details, rng)
        }
        .await;
        match outcome {
            Ok(_) => {
                status.send_modify(|s| s.events += 1);
            }
            Err(AgentError::Removed) => return Err(AgentError::Removed),
            Err(e) => agent.alert(format!("an event was not sealed: {e}")),
        }
        let snapshot = agent.status().clone();
        status.send_modify(|s| s.agent = snapshot);
        upload_wanted.notify_one();
    }
    Ok(())
}

/// A JPEG of the picture at the clip's trigger, or nothing if it does not decode.
fn thumbnail_at(clip: &Clip) -> Vec<u8> {
    let Ok(mut decoder) = FrameDecoder::new(1, 1) else {
        return Vec::new();
    };
    let mut last = None;
    for au in &clip.access_units {
        let at_trigger = au.dts >= clip.triggered_at;
        if let Ok(Some(picture)) = decoder.decode(au, at_trigger) {
            last = Some(picture);
            if at_trigger {
                break;
            }
        }
    }
    last.and_then(|p| thumbnail_jpeg(&p).ok())
        .unwrap_or_default()
}

async fn upload_forever(
    agent: Arc<Mutex<Agent>>,
    status: Arc<watch::Sender<LiveStatus>>,
    wanted: Arc<Notify>,
    retry_min_s: f32,
    retry_max_s: f32,
) {
    let (min, max) = (
        Duration::from_secs_f32(retry_min_s),
        Duration::from_secs_f32(retry_max_s),
    );
    let mut wait: Option<Duration> = None;
    loop {
        match wait {
            None => wanted.notified().await,
            Some(w) => {
                tokio::select! {
                    () = wanted.notified() => {}
                    () = tokio::time::sleep(w) => {}
                }
            }
        }
        let mut agent = agent.lock().await;
        let result = agent.upload_pending().await;
        let snapshot = agent.status().clone();
        drop(agent);
        status.send_modify(|s| s.agent = snapshot);
        wait = match result {
            Ok(_) => None,
            Err(e) => {
                let next = wait.map_or(min, |w| (w * 2).min(max));
                eprintln!(
                    "keyhole-camera: upload failed ({e}); retrying in {:.1} s",
                    next.as_secs_f32()
                );
                Some(next)
            }
        };
    }
}
