//! The running camera: the source feeds the recorder (and, when wired, the motion detector);
//! finished clips are cut into MP4, sealed with their event and spooled by one task, and
//! uploaded by another with retry and backoff, so a slow upload never stalls capture. A
//! loopback control endpoint serves the status and takes doorbell and external triggers.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use keyhole_core::ObjectId;
use keyhole_core::Timestamp;
use keyhole_core::event::{EventDetails, EventKind};
use keyhole_media::mp4::TrackKind;
use keyhole_media::{AccessUnit, TIMESCALE};
use rand_core::OsRng;
use serde::Serialize;
use tokio::sync::{Mutex, Notify, mpsc, watch};

use crate::agent::{Agent, AgentError, Status};
use crate::config::{Config, Profile, RecordMode};
use crate::footage::{ClipFile, FinishedClip};
use crate::in_step::InStep;
use crate::recorder::{Clip, Recorder, announced_at_once};
use crate::segmenter::{Mark, Output, Segment, Segmenter};
use crate::sound::{Media, Sound};
use crate::source::{self, Health, SourceError};
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
    /// Pictures the source delivered since this process started.
    pub pictures: u64,
    /// Frames of sound the source delivered since this process started.
    pub sound_frames: u64,
    /// The video source has delivered nothing since this time (it is being connected again).
    pub source_lost_since: Option<String>,
    /// Why the video source was lost, in one line.
    pub source_problem: Option<String>,
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

/// What the capture loop hands to the sealing task, in sealing order, with wall-clock times.
enum Work {
    /// An event clip (event recording).
    Clip {
        clip: Clip<ClipFile>,
        started_at: Timestamp,
    },
    /// A continuous segment.
    Segment {
        segment: Segment<ClipFile>,
        started_at: Timestamp,
    },
    /// An event marked on a segment.
    Mark {
        mark: Mark,
        started_at: Timestamp,
        duration_ms: u32,
    },
    /// A doorbell press or external trigger, announced at once: sealed before the clip it
    /// names is finished.
    Press {
        kind: EventKind,
        at: Timestamp,
        /// The clip (or segment) being recorded, which shows it.
        clip: ObjectId,
        /// A JPEG of the picture after it, when the motion decoder made one.
        thumbnail: Option<Vec<u8>>,
        /// Else the pictures from the last key frame to that picture, to decode it from.
        pictures: Vec<AccessUnit>,
    },
}

/// Event clips or continuous segments.
enum Cutter {
    Events(Recorder<ClipFile>),
    Continuous(Segmenter<ClipFile>),
}

/// What is being recorded: the cutter, fed sound in step with its pictures.
struct Capture {
    cutter: Cutter,
    in_step: InStep,
}

impl Capture {
    fn new(cutter: Cutter) -> Self {
        Self {
            cutter,
            in_step: InStep::default(),
        }
    }

    fn trigger(&mut self, kind: EventKind) {
        match &mut self.cutter {
            Cutter::Events(r) => {
                r.trigger(kind);
            }
            Cutter::Continuous(s) => {
                s.trigger(kind);
            }
        }
    }

    fn in_event(&self) -> bool {
        match &self.cutter {
            Cutter::Events(r) => r.is_recording(),
            Cutter::Continuous(s) => s.in_event(),
        }
    }

    fn wants_thumbnail(&self) -> bool {
        match &self.cutter {
            Cutter::Events(r) => r.wants_thumbnail(),
            Cutter::Continuous(s) => s.wants_thumbnail(),
        }
    }

    /// The clip being recorded and the pictures since its last key frame, once there is one.
    fn press_clip(&self) -> Option<(ObjectId, Vec<AccessUnit>)> {
        match &self.cutter {
            Cutter::Events(r) => r.current_clip().map(|c| (c, r.since_key_frame())),
            Cutter::Continuous(s) => s.current_clip().map(|c| (c, s.since_key_frame())),
        }
    }

    fn set_thumbnail(&mut self, jpeg: Vec<u8>) {
        match &mut self.cutter {
            Cutter::Events(r) => r.set_thumbnail(jpeg),
            Cutter::Continuous(s) => s.set_thumbnail(jpeg),
        }
    }

    /// Takes a frame of sound, handed on once its picture has come.
    fn push_sound(&mut self, sound: Sound) {
        if let Some(sound) = self.in_step.sound(sound) {
            self.cut_sound(sound);
        }
    }

    fn cut_sound(&mut self, sound: Sound) {
        match &mut self.cutter {
            Cutter::Events(r) => r.push_sound(sound),
            Cutter::Continuous(s) => s.push_sound(&sound),
        }
    }

    /// Takes a picture, after the sound held for the time before it; returns work to seal,
    /// with stream times turned into wall-clock times by `wall`.
    fn push(&mut self, au: AccessUnit, wall: impl Fn(u64) -> Timestamp) -> Vec<Work> {
        for sound in self.in_step.picture(au.dts) {
            self.cut_sound(sound);
        }
        match &mut self.cutter {
            Cutter::Events(r) => r
                .push(au)
                .map(|clip| Work::Clip {
                    started_at: wall(clip.starts_at),
                    clip,
                })
                .into_iter()
                .collect(),
            Cutter::Continuous(s) => {
                let outputs = s.push(au, || ObjectId::random(&mut OsRng));
                outputs.into_iter().filter_map(|o| work(o, &wall)).collect()
            }
        }
    }

    /// Forgets the pre-roll and the sound held (a battery camera going back to sleep, or a
    /// lost source: what comes next starts afresh).
    fn forget(&mut self) {
        self.in_step.forget();
        if let Cutter::Events(r) = &mut self.cutter {
            r.forget();
        }
    }

    /// Ends what was being recorded when the source was lost, and forgets the pre-roll.
    fn lost(&mut self, wall: impl Fn(u64) -> Timestamp) -> Vec<Work> {
        let works = self.finish(wall);
        self.forget();
        works
    }

    /// Ends what is being recorded, with the sound of its last picture.
    fn finish(&mut self, wall: impl Fn(u64) -> Timestamp) -> Vec<Work> {
        for sound in self.in_step.finish() {
            self.cut_sound(sound);
        }
        match &mut self.cutter {
            Cutter::Events(r) => r
                .finish()
                .map(|clip| Work::Clip {
                    started_at: wall(clip.starts_at),
                    clip,
                })
                .into_iter()
                .collect(),
            Cutter::Continuous(s) => s
                .finish()
                .into_iter()
                .filter_map(|o| work(o, &wall))
                .collect(),
        }
    }
}

/// What to seal of the segmenter's `output`; nothing for the mark of an event announced at
/// once (it only kept the segment going).
fn work(output: Output<ClipFile>, wall: &impl Fn(u64) -> Timestamp) -> Option<Work> {
    Some(match output {
        Output::Segment(segment) => Work::Segment {
            started_at: wall(segment.starts_at),
            segment,
        },
        Output::Mark(mark) if announced_at_once(mark.kind) => return None,
        Output::Mark(mark) => Work::Mark {
            started_at: wall(mark.started_at),
            duration_ms: u32::try_from(
                mark.ended_at.saturating_sub(mark.started_at) * 1000 / u64::from(TIMESCALE),
            )
            .unwrap_or(u32::MAX),
            mark,
        },
    })
}

/// Runs the camera until `shutdown` resolves or the source ends; a clip being recorded at that
/// point is finished, sealed and spooled, and one last upload is attempted. The control
/// endpoint answers on `control`, bound by the caller (so whoever starts the camera knows its
/// address before anything can take it).
///
/// # Errors
/// A source that fails to start, or removal by the owner.
pub async fn run(
    config: Config,
    agent: Agent,
    control: tokio::net::TcpListener,
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
    let routes = control_routes(Control {
        triggers: trigger_tx,
        visitor: source.visitor.clone(),
        status: status_rx,
    });
    let control = tokio::spawn(async move { axum::serve(control, routes).await });

    let upload_wanted = Arc::new(Notify::new());
    let (cut_tx, cut_rx) = mpsc::channel::<Work>(8);
    let mut sealer = tokio::spawn(seal_clips(
        cut_rx,
        config.clip.thumbnail,
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
    let heads = tokio::spawn(heads_forever(
        agent.clone(),
        Duration::from_secs(u64::from(config.head_interval_s())),
    ));
    let talk = config.talk.enabled().then(|| {
        let status = status_tx.clone();
        tokio::spawn(crate::talk::listen(
            agent.clone(),
            config.talk.clone(),
            Box::new(move |agent: crate::agent::Status| status.send_modify(|s| s.agent = agent)),
        ))
    });
    let live_feed = crate::live::LiveFeed::default();
    let live = tokio::spawn(crate::live::serve(agent.clone(), live_feed.clone(), {
        let status = status_tx.clone();
        Box::new(move |agent: crate::agent::Status| status.send_modify(|s| s.agent = agent))
    }));

    let mut timing = config.clip.timing();
    if profile == Profile::Battery {
        timing.pre_roll_ms = 0;
    }
    // Clips are recorded to disk as they are captured, not held in memory.
    let clips = config.state_dir.join("recording");
    ClipFile::clear(&clips).map_err(AgentError::from)?;
    let suite = agent.lock().await.suite();
    let new_clip = move || ClipFile::create(&clips, suite);
    let mut capture = Capture::new(match config.record_mode() {
        RecordMode::Events => Cutter::Events(Recorder::new(timing, new_clip)),
        RecordMode::Continuous => {
            Cutter::Continuous(Segmenter::new(config.segment_ms(), timing, new_clip))
        }
    });
    let watch_motion = profile == Profile::Wired && config.motion.enabled;
    let mut motion = MotionDetector::new(config.motion.settings.clone());
    // Said once: an H.265 source has no motion detection or thumbnails.
    let mut said_undecoded = false;
    let mut decoder = if watch_motion {
        Some(FrameDecoder::new(64, 36).map_err(SourceError::from)?)
    } else {
        None
    };
    // Stream time to wall time, anchored at the first picture.
    let mut anchor: Option<(u64, Timestamp)> = None;
    let wall = |anchor: Option<(u64, Timestamp)>| {
        move |dts: u64| {
            anchor.map_or(crate::now(), |(base_dts, base_wall)| {
                Timestamp(base_wall.0 + dts.saturating_sub(base_dts) * 1000 / u64::from(TIMESCALE))
            })
        }
    };
    let mut awake = profile == Profile::Wired;
    // Presses not yet announced (waiting for the first picture after them), and when.
    let mut presses: Vec<(EventKind, Timestamp)> = Vec::new();
    // With a substream, the JPEG of its first picture decoded after a press, for the press.
    let mut press_thumbnail: Option<Vec<u8>> = None;
    // Only sources that connect (RTSP, a command) report their health.
    let mut health_open = true;
    let mut lost_since: Option<Timestamp> = None;
    // The sealer ends early only when the camera must stop (removed by its owner).
    let mut sealer_ended = None;
    tokio::pin!(shutdown);
    'capture: loop {
        tokio::select! {
            () = &mut shutdown => break,
            ended = &mut sealer, if sealer_ended.is_none() => {
                sealer_ended = Some(ended.unwrap_or(Ok(())));
                break;
            }
            changed = source.health.changed(), if health_open => {
                if changed.is_err() {
                    health_open = false;
                    continue;
                }
                let health = source.health.borrow_and_update().clone();
                let message = match (health, lost_since) {
                    (Health::Lost { since, why }, _) => {
                        for work in capture.lost(wall(anchor)) {
                            if cut_tx.send(work).await.is_err() {
                                break 'capture;
                            }
                        }
                        lost_since = Some(since);
                        status_tx.send_modify(|s| {
                            s.source_lost_since = Some(since.to_string());
                            s.source_problem = Some(why.clone());
                        });
                        Some((
                            format!("video source lost: {why}; reconnecting"),
                            since,
                            0,
                        ))
                    }
                    (Health::Delivering, Some(since)) => {
                        lost_since = None;
                        status_tx.send_modify(|s| {
                            s.source_lost_since = None;
                            s.source_problem = None;
                        });
                        let gap = crate::now().0.saturating_sub(since.0);
                        Some((
                            format!("video source back after {} s without pictures", gap / 1000),
                            since,
                            u32::try_from(gap).unwrap_or(u32::MAX),
                        ))
                    }
                    (Health::Delivering, None) => None,
                };
                // The owner sees the gap as an event, not as silence.
                if let Some((message, since, duration_ms)) = message {
                    let sealed = agent
                        .lock()
                        .await
                        .alert_event(&message, since, duration_ms, &mut OsRng);
                    match sealed {
                        Ok(()) => upload_wanted.notify_one(),
                        Err(e) => eprintln!("keyhole-camera: could not seal the alert ({e})"),
                    }
                }
            }
            kind = triggers.recv() => {
                if let Some(kind) = kind {
                    if !awake {
                        // Powering up, the sensor starts with a key frame.
                        source.wake.store(true, Ordering::Relaxed);
                    }
                    awake = true;
                    capture.trigger(kind);
                    if announced_at_once(kind) {
                        presses.push((kind, crate::now()));
                    }
                }
            }
            // The substream, when there is one: motion and thumbnails come from it alone.
            media = next_motion(&mut source.motion) => {
                let Some(media) = media else {
                    source.motion = None;
                    continue;
                };
                let (Media::Picture(au), true) = (media, awake) else {
                    continue;
                };
                let frame = decoder.as_mut().and_then(|d| d.decode_frame(&au).ok().flatten());
                if let Some(frame) = frame {
                    if motion.detect(&frame.picture(false).grid) {
                        capture.trigger(EventKind::Motion);
                    }
                    if config.clip.thumbnail && !presses.is_empty() && press_thumbnail.is_none() {
                        press_thumbnail = thumbnail_jpeg(&frame.picture(true)).ok();
                    }
                    if config.clip.thumbnail
                        && capture.wants_thumbnail()
                        && let Ok(jpeg) = thumbnail_jpeg(&frame.picture(true))
                    {
                        capture.set_thumbnail(jpeg);
                    }
                }
            }
            media = source.media.recv() => {
                let au = match media {
                    None => break,
                    Some(Media::Picture(au)) => au,
                    Some(Media::Sound(sound)) => {
                        status_tx.send_modify(|s| s.sound_frames += 1);
                        live_feed.offer_sound(&sound);
                        if awake {
                            capture.push_sound(sound);
                        }
                        continue;
                    }
                };
                status_tx.send_modify(|s| s.pictures += 1);
                anchor.get_or_insert((au.dts, crate::now()));
                if au.codec != keyhole_media::Codec::H264
                    && source.motion.is_none()
                    && !said_undecoded
                {
                    said_undecoded = true;
                    eprintln!(
                        "keyhole-camera: the source is H.265, which this camera records but does \
                         not decode: no motion detection and no thumbnails (events come from \
                         the doorbell and triggers) unless `motion_url` names an H.264 substream"
                    );
                }
                live_feed.offer_picture(&au);
                if !awake {
                    continue;
                }
                // The motion decoder also makes each event's thumbnail, from the first picture
                // after the trigger, so no second decoder (28 MB at 1080p) is needed for it.
                // With a substream, the decoder is its: one decoder takes one stream.
                let frame = decoder
                    .as_mut()
                    .filter(|_| source.motion.is_none())
                    .and_then(|d| d.decode_frame(&au).ok().flatten());
                if let Some(frame) = &frame
                    && motion.detect(&frame.picture(false).grid)
                {
                    capture.trigger(EventKind::Motion);
                }
                let works = capture.push(au, wall(anchor));
                // Someone is at the door: their event goes before anything else, with the
                // picture after the press, naming the clip that will show it. With a
                // substream, that picture is the substream's, for a second at most.
                let substream_due = source.motion.is_some()
                    && config.clip.thumbnail
                    && press_thumbnail.is_none()
                    && presses
                        .first()
                        .is_some_and(|(_, at)| crate::now().0 < at.0 + 1000);
                if !presses.is_empty()
                    && !substream_due
                    && let Some((clip, pictures)) = capture.press_clip()
                {
                    let thumbnail = press_thumbnail.take().or_else(|| {
                        frame
                            .as_ref()
                            .filter(|_| config.clip.thumbnail)
                            .and_then(|f| thumbnail_jpeg(&f.picture(true)).ok())
                    });
                    // Only H.264 pictures decode here.
                    let decodable = pictures
                        .first()
                        .is_some_and(|p| p.codec == keyhole_media::Codec::H264);
                    for (kind, at) in presses.drain(..) {
                        let press = Work::Press {
                            kind,
                            at,
                            clip,
                            pictures: if thumbnail.is_none() && config.clip.thumbnail && decodable {
                                pictures.clone()
                            } else {
                                Vec::new()
                            },
                            thumbnail: thumbnail.clone(),
                        };
                        if cut_tx.send(press).await.is_err() {
                            break 'capture;
                        }
                    }
                }
                if config.clip.thumbnail
                    && capture.wants_thumbnail()
                    && let Some(jpeg) = frame.and_then(|f| thumbnail_jpeg(&f.picture(true)).ok())
                {
                    capture.set_thumbnail(jpeg);
                }
                for work in works {
                    let clip_done = matches!(work, Work::Clip { .. });
                    if cut_tx.send(work).await.is_err() {
                        break 'capture;
                    }
                    if clip_done && profile == Profile::Battery {
                        awake = false;
                        capture.forget();
                    }
                }
                if status.recording != capture.in_event() {
                    status.recording = capture.in_event();
                    status_tx.send_modify(|s| s.recording = status.recording);
                }
            }
        }
    }
    // Sound may come after its picture: a source that has stopped gets a quarter of a second
    // for its last picture's.
    while let Ok(Some(Media::Sound(sound))) =
        tokio::time::timeout(Duration::from_millis(250), source.media.recv()).await
    {
        if awake {
            capture.push_sound(sound);
        }
    }
    for work in capture.finish(wall(anchor)) {
        cut_tx.send(work).await.ok();
    }
    drop(cut_tx);
    // Closing the channel stops a source thread at its next picture.
    drop(source.media);
    let sealed = match sealer_ended {
        Some(ended) => ended,
        None => sealer.await.unwrap_or(Ok(())),
    };
    uploader.abort();
    heads.abort();
    live.abort();
    if let Some(talk) = talk {
        talk.abort();
    }
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
    mut work: mpsc::Receiver<Work>,
    thumbnails: bool,
    agent: Arc<Mutex<Agent>>,
    status: Arc<watch::Sender<LiveStatus>>,
    upload_wanted: Arc<Notify>,
) -> Result<(), AgentError> {
    while let Some(item) = work.recv().await {
        // Decoding and muxing are CPU work: off the async threads.
        let prepared = tokio::task::spawn_blocking(move || prepare(item, thumbnails))
            .await
            .unwrap_or_else(|e| Prepared::Failed(format!("video could not be prepared: {e}")));
        let mut agent = agent.lock().await;
        let rng = &mut OsRng;
        let outcome = match prepared {
            Prepared::Failed(why) => {
                agent.alert(why);
                Ok(false)
            }
            Prepared::Clip {
                video,
                details,
                object_id,
            } => {
                async {
                    let clip_id =
                        seal_video(&mut agent, object_id, &video, details.started_at).await?;
                    // A press's event went out when it happened, naming this clip.
                    if announced_at_once(details.kind) {
                        return Ok(false);
                    }
                    agent.seal_event(
                        &EventDetails {
                            clip: Some(clip_id),
                            ..details
                        },
                        rng,
                    )?;
                    Ok(true)
                }
                .await
            }
            Prepared::Segment {
                video,
                object_id,
                started_at,
            } => seal_video(&mut agent, object_id, &video, started_at)
                .await
                .map(|_| false),
            Prepared::Mark(details) | Prepared::Press(details) => {
                agent.record_event(&details, rng).await.map(|_| true)
            }
        };
        match outcome {
            Ok(event) => {
                if event {
                    status.send_modify(|s| s.events += 1);
                }
            }
            Err(AgentError::Removed) => return Err(AgentError::Removed),
            Err(e) => agent.alert(format!("video was not sealed: {e}")),
        }
        let snapshot = agent.status().clone();
        status.send_modify(|s| s.agent = snapshot);
        upload_wanted.notify_one();
    }
    Ok(())
}

/// Seals a recorded clip as the next clip, streaming it from disk.
async fn seal_video(
    agent: &mut Agent,
    object_id: ObjectId,
    video: &FinishedClip,
    captured_at: Timestamp,
) -> Result<ObjectId, AgentError> {
    let mut mp4 = video.mp4()?;
    agent
        .record_clip_from(
            object_id,
            &mut mp4,
            video.mp4_len(),
            captured_at,
            &mut OsRng,
        )
        .await
}

/// The next of the substream's pictures; never, without one.
async fn next_motion(motion: &mut Option<mpsc::Receiver<Media>>) -> Option<Media> {
    match motion {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Work turned into what gets sealed: MP4 video and event details with a thumbnail.
enum Prepared {
    Clip {
        video: FinishedClip,
        details: EventDetails,
        object_id: ObjectId,
    },
    Segment {
        video: FinishedClip,
        object_id: ObjectId,
        started_at: Timestamp,
    },
    Mark(EventDetails),
    Press(EventDetails),
    Failed(String),
}

fn prepare(work: Work, thumbnails: bool) -> Prepared {
    match work {
        Work::Clip { clip, started_at } => {
            let duration_ms = clip.duration_ms();
            match clip.footage.finish() {
                Ok(video) => Prepared::Clip {
                    details: EventDetails {
                        kind: clip.kind,
                        started_at,
                        duration_ms,
                        clip: None,
                        note: String::new(),
                        thumbnail_jpeg: match clip.thumbnail {
                            Some(jpeg) => jpeg,
                            None if thumbnails => clip_thumbnail(&video, clip.triggered_at),
                            None => Vec::new(),
                        },
                    },
                    video,
                    object_id: clip.object_id,
                },
                Err(e) => Prepared::Failed(e.to_string()),
            }
        }
        Work::Segment {
            segment,
            started_at,
        } => match segment.footage.finish() {
            Ok(video) => Prepared::Segment {
                video,
                object_id: segment.object_id,
                started_at,
            },
            Err(e) => Prepared::Failed(e.to_string()),
        },
        Work::Press {
            kind,
            at,
            clip,
            thumbnail,
            pictures,
        } => Prepared::Press(EventDetails {
            kind,
            started_at: at,
            // Sealed as it begins: its clip, sealed later, shows how long it lasts.
            duration_ms: 0,
            clip: Some(clip),
            note: String::new(),
            thumbnail_jpeg: match thumbnail {
                Some(jpeg) => jpeg,
                None => match pictures.last().map(|p| p.dts) {
                    Some(last) => thumbnail_at(pictures, last),
                    None => Vec::new(),
                },
            },
        }),
        Work::Mark {
            mark,
            started_at,
            duration_ms,
        } => Prepared::Mark(EventDetails {
            kind: mark.kind,
            started_at,
            duration_ms,
            clip: Some(mark.clip),
            note: String::new(),
            thumbnail_jpeg: match mark.thumbnail {
                Some(jpeg) => jpeg,
                None if thumbnails => thumbnail_at(mark.thumbnail_from, mark.started_at),
                None => Vec::new(),
            },
        }),
    }
}

/// The thumbnail of a recorded clip: decoding starts at the last key frame before `at`.
fn clip_thumbnail(video: &FinishedClip, at: u64) -> Vec<u8> {
    let from = video
        .samples()
        .iter()
        .rposition(|s| s.track == TrackKind::Video && s.keyframe && s.dts <= at)
        .unwrap_or(0);
    video
        .pictures(from)
        .map(|pictures| thumbnail_at(pictures, at))
        .unwrap_or_default()
}

/// A JPEG of the picture at stream time `at` (the last one decoded if the pictures end before),
/// or nothing if they do not decode.
fn thumbnail_at(pictures: impl IntoIterator<Item = AccessUnit>, at: u64) -> Vec<u8> {
    let Ok(mut decoder) = FrameDecoder::new(1, 1) else {
        return Vec::new();
    };
    let mut last = None;
    let mut pictures = pictures.into_iter().peekable();
    while let Some(au) = pictures.next() {
        let wanted = au.dts >= at || pictures.peek().is_none();
        if let Ok(Some(picture)) = decoder.decode(&au, wanted) {
            last = Some(picture);
            if wanted {
                break;
            }
        }
    }
    last.and_then(|p| thumbnail_jpeg(&p).ok())
        .unwrap_or_default()
}

/// Signs and sends the camera's head every `interval` (the first at once), so devices can tell
/// a camera with nothing new from one whose uploads the server withholds. A failed send waits
/// for the next turn; uploads carry heads of their own meanwhile.
async fn heads_forever(agent: Arc<Mutex<Agent>>, interval: Duration) {
    let camera_id = agent.lock().await.camera_id();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // Signed under the agent, sent without it: a stalled connection must not hold up
        // sealing.
        let next = agent.lock().await.head_to_send();
        let sent = match next {
            Ok((link, head)) => link.send_head(&camera_id, &head).await,
            Err(e) => Err(e),
        };
        agent.lock().await.note_reached(&sent);
        if let Err(e) = sent {
            eprintln!("keyhole-camera: could not send the camera's head ({e})");
        }
    }
}

/// [`Agent::upload_pending`], holding the agent only to pick each step and to settle it, never
/// while its bytes travel: clips go on being sealed (and pictures captured) however long a
/// backlog takes to send. The status follows each step.
async fn upload_round(
    agent: &Mutex<Agent>,
    status: &watch::Sender<LiveStatus>,
) -> Result<usize, AgentError> {
    let mut uploaded = 0;
    let result = loop {
        let next = agent.lock().await.next_upload();
        let upload = match next {
            Ok(Some(upload)) => upload,
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        };
        let sent = upload.send().await;
        let mut agent = agent.lock().await;
        let settled = agent.settle_upload(&upload, sent);
        let snapshot = agent.status().clone();
        drop(agent);
        status.send_modify(|s| s.agent = snapshot);
        match settled {
            Ok(n) => uploaded += n,
            Err(e) => break Err(e),
        }
    };
    agent.lock().await.end_upload_round(uploaded);
    result.map(|()| uploaded)
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
        let result = upload_round(&agent, &status).await;
        let mut agent = agent.lock().await;
        if let Err(AgentError::Refused(401, _)) = result {
            // Retrying cannot cure a credential the server revoked: say what to do, and stop.
            agent.credential_refused();
            let snapshot = agent.status().clone();
            status.send_modify(|s| s.agent = snapshot);
            return;
        }
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
