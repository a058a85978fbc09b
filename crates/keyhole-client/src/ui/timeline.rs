//! The timeline and the player: events from the device's index, a page at a time, newest
//! first, after bringing the index up to date with what is new on each camera; clips read by
//! range and checked whole while they play.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyhole_core::envelope::ObjectKind;
use keyhole_core::event::EventDetails;
use keyhole_core::{CameraId, ObjectId, Timestamp};
use rand_core::OsRng;
use serde::{Deserialize, Serialize};

use super::{Viewer, failed};
use crate::index::{EventQuery, ObjectState};
use crate::{ClientError, ClipReader, Playback};

/// What the last sync found that the index does not keep: cameras silent, the server out of
/// reach.
#[derive(Debug, Clone, Default)]
pub(super) struct Synced {
    silent: Vec<ProblemView>,
    /// Why the server could not be reached, if it could not.
    offline: Option<String>,
}

/// One page of the timeline.
#[derive(Debug, Clone, Serialize)]
struct Page {
    cameras: Vec<CameraView>,
    events: Vec<EventView>,
    problems: Vec<ProblemView>,
    /// Pass as `before` for the next (older) page; absent on the last.
    next_before: Option<u64>,
    /// "offline — as of T" when the server could not be reached.
    offline: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct CameraView {
    id: String,
    name: String,
    removed: bool,
}

#[derive(Debug, Clone, Serialize)]
struct EventView {
    camera: String,
    event: String,
    kind: String,
    /// Milliseconds since the Unix epoch.
    started_at: u64,
    duration_ms: u32,
    note: String,
    thumbnail: bool,
    clip: Option<String>,
    /// Where in its clip (a segment) the event starts, in ms, by the capture times the camera
    /// signed: the player starts there.
    clip_offset_ms: Option<u64>,
    /// `verified`, `tampered` (see `clip_problem`), `missing`, `recording` (an event sealed
    /// as it began, whose clip is not sealed yet) or `none`.
    clip_state: &'static str,
    clip_problem: Option<String>,
}

/// Something wrong in a camera's listing, worded for the owner.
#[derive(Debug, Clone, Serialize)]
struct ProblemView {
    camera: String,
    object: Option<String>,
    problem: String,
}

/// Events on one page unless asked otherwise, and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

impl Viewer {
    /// Brings the index up to date with every camera, once, and again when asked to refresh
    /// (which is also when it would find a forked account log). With the server out of reach
    /// the index answers as it is.
    pub(super) async fn synced(&self, refresh: bool) -> Result<Synced, ClientError> {
        let mut synced = self.synced.lock().await;
        if let (Some(done), false) = (synced.as_ref(), refresh) {
            return Ok(done.clone());
        }
        let mut owner = self.owner.write().await;
        let mut index = self.index.lock().await;
        let mut outcome = Synced::default();
        match owner.sync().await {
            Ok(true) => (self.persist)(&owner)?,
            Ok(false) => {}
            Err(ClientError::Http(e)) if e.is_connect() || e.is_timeout() => {
                outcome.offline = Some(e.to_string());
            }
            Err(e) => return Err(e),
        }
        let mut moved = false;
        for (camera, ..) in owner.cameras() {
            if outcome.offline.is_some() {
                break;
            }
            let seen = (owner.verified_up_to(&camera), owner.camera_head(&camera));
            match owner
                .sync_index(&camera, &mut index, crate::now(), &mut OsRng)
                .await
            {
                Ok(report) => {
                    if let Some(since) = report.silent_since {
                        outcome.silent.push(ProblemView {
                            camera: camera.to_string(),
                            object: None,
                            problem: format!(
                                "silent since {since}: no signed word from the camera for longer \
                                 than it promised (offline, or the server is withholding what it \
                                 sends)"
                            ),
                        });
                    }
                }
                Err(ClientError::Http(e)) if e.is_connect() || e.is_timeout() => {
                    outcome.offline = Some(e.to_string());
                }
                // A camera whose owner stopped sharing it: no longer served here.
                Err(ClientError::Server { status: 404, .. })
                    if owner.shared_by(&camera).is_some() => {}
                Err(e) => return Err(e),
            }
            moved |= (owner.verified_up_to(&camera), owner.camera_head(&camera)) != seen;
        }
        if moved {
            // What this device verified is kept, so the server cannot take it back unseen.
            (self.persist)(&owner)?;
        }
        *synced = Some(outcome.clone());
        Ok(outcome)
    }

    /// One page of events, newest first, before `before` (ms), of `only` or every camera.
    async fn page(
        &self,
        synced: &Synced,
        only: Option<CameraId>,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Page, ClientError> {
        let owner = self.owner.read().await;
        let index = self.index.lock().await;
        let now = crate::now();
        let cameras: Vec<_> = owner.cameras();
        let wanted: Vec<CameraId> = cameras
            .iter()
            .map(|(c, ..)| *c)
            .filter(|c| only.is_none_or(|o| o == *c))
            .collect();
        let mut found = index.events(&EventQuery {
            cameras: wanted.clone(),
            since: None,
            until: before.map(Timestamp),
            limit: Some(limit + 1),
        })?;
        let more = found.len() > limit;
        found.truncate(limit);
        let mut events = Vec::with_capacity(found.len());
        for e in &found {
            let (clip_state, clip_problem) = match e.details.clip {
                None => ("none", None),
                Some(clip) => match index.object_state(&e.camera, &clip)? {
                    ObjectState::Verified => ("verified", None),
                    ObjectState::Problem(why) => ("tampered", Some(why)),
                    // A press is sealed as it happens, before its clip.
                    ObjectState::Unknown if still_recording(&e.details, now) => ("recording", None),
                    ObjectState::Unknown => (
                        "missing",
                        Some("the server does not list this clip".to_owned()),
                    ),
                },
            };
            let clip_offset_ms = match e.details.clip {
                Some(clip) => index
                    .captured_at(&e.camera, &clip)?
                    .map(|at| e.details.started_at.0.saturating_sub(at.0)),
                None => None,
            };
            events.push(EventView {
                camera: e.camera.to_string(),
                event: e.event.to_string(),
                kind: format!("{:?}", e.details.kind).to_lowercase(),
                started_at: e.details.started_at.0,
                duration_ms: e.details.duration_ms,
                note: e.details.note.clone(),
                thumbnail: !e.details.thumbnail_jpeg.is_empty(),
                clip: e.details.clip.map(|c| c.to_string()),
                clip_offset_ms,
                clip_state,
                clip_problem,
            });
        }
        let mut problems: Vec<ProblemView> = synced
            .silent
            .iter()
            .filter(|p| only.is_none_or(|o| p.camera == o.to_string()))
            .cloned()
            .collect();
        let mut oldest_sync: Option<Timestamp> = None;
        for camera in &wanted {
            for p in index.problems(camera)? {
                problems.push(ProblemView {
                    camera: camera.to_string(),
                    object: p.object.map(|o| o.to_string()),
                    problem: p.problem,
                });
            }
            if let Some(at) = index.synced_at(camera)? {
                oldest_sync = Some(oldest_sync.map_or(at, |o: Timestamp| o.min(at)));
            }
        }
        Ok(Page {
            cameras: cameras
                .into_iter()
                .map(|(id, name, _, removed)| CameraView {
                    id: id.to_string(),
                    name,
                    removed,
                })
                .collect(),
            next_before: more
                .then(|| found.last().map(|e| e.captured_at.0))
                .flatten(),
            events,
            problems,
            offline: synced.offline.as_ref().map(|_| {
                oldest_sync.map_or_else(
                    || "offline — never synced".to_owned(),
                    |t| format!("offline — as of {t}"),
                )
            }),
        })
    }

    /// The clips `camera` recorded in `[from, to)` (ms), oldest first, from the index: each with
    /// its start and the next one's start as its end.
    async fn recordings(
        &self,
        camera: &CameraId,
        from: u64,
        to: u64,
    ) -> Result<Vec<Recording>, ClientError> {
        let index = self.index.lock().await;
        let clips =
            index.objects_between(camera, ObjectKind::Clip, Timestamp(from), Timestamp(to))?;
        let mut out: Vec<Recording> = Vec::with_capacity(clips.len());
        for (i, (clip, at, state)) in clips.iter().enumerate() {
            let end = clips.get(i + 1).map(|(_, next, _)| next.0);
            out.push(Recording {
                clip: clip.to_string(),
                start: at.0,
                end,
                state: match state {
                    ObjectState::Verified => "verified",
                    ObjectState::Problem(_) => "tampered",
                    ObjectState::Unknown => "missing",
                },
            });
        }
        Ok(out)
    }

    async fn clip_reader(
        &self,
        camera: &CameraId,
        clip: &ObjectId,
    ) -> Result<Arc<ClipReader>, ClientError> {
        if let Some(reader) = self
            .clips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(clip)
        {
            return Ok(reader.clone());
        }
        let reader = Arc::new(self.owner.read().await.open_clip(camera, clip).await?);
        self.clips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(*clip, reader.clone());
        Ok(reader)
    }
}

#[derive(Debug, Serialize)]
struct Recording {
    clip: String,
    /// Ms since the Unix epoch, from the camera's signed header.
    start: u64,
    /// The next clip's start; absent for the last.
    end: Option<u64>,
    state: &'static str,
}

/// How long after a press its clip, not yet listed, is taken as still being recorded (a clip
/// lasts at most a few minutes; then its upload).
const RECORDING_GRACE_MS: u64 = 10 * 60 * 1000;

/// Whether `event` was sealed as it began (duration 0) so recently that its clip may still be
/// recording.
fn still_recording(event: &EventDetails, now: Timestamp) -> bool {
    event.duration_ms == 0 && now.0.saturating_sub(event.started_at.0) < RECORDING_GRACE_MS
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    refresh: Option<bool>,
    camera: Option<String>,
    before: Option<u64>,
    limit: Option<usize>,
}

pub(super) async fn timeline(
    State(viewer): State<Arc<Viewer>>,
    Query(q): Query<PageQuery>,
) -> Response {
    let only = match q.camera.as_deref().filter(|c| !c.is_empty()) {
        None => None,
        Some(id) => match viewer.camera(id).await {
            Some(c) => Some(c),
            None => return StatusCode::NOT_FOUND.into_response(),
        },
    };
    let synced = match viewer.synced(q.refresh.unwrap_or(false)).await {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    let limit = q.limit.unwrap_or(PAGE).clamp(1, MAX_PAGE);
    match viewer.page(&synced, only, q.before, limit).await {
        Ok(page) => axum::Json(page).into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct RangeQuery {
    from: u64,
    to: u64,
}

/// A camera's recordings in a span of time, for the time axis.
pub(super) async fn recordings(
    State(viewer): State<Arc<Viewer>>,
    Path(camera): Path<String>,
    Query(q): Query<RangeQuery>,
) -> Response {
    let Some(camera) = viewer.camera(&camera).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match viewer.recordings(&camera, q.from, q.to).await {
        Ok(list) => axum::Json(list).into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Serialize)]
struct ClipCheck {
    /// `verified`, `tampered`, `unchecked` or `checking`.
    state: &'static str,
    reason: Option<String>,
}

/// How long one check request waits for the whole clip to be checked.
const CHECK_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Waits for the check of the whole clip being played (and of every piece played so far).
pub(super) async fn clip_check(
    State(viewer): State<Arc<Viewer>>,
    Path((camera, clip)): Path<(String, String)>,
) -> Response {
    let (Some(camera), Ok(clip)) = (viewer.camera(&camera).await, clip.parse::<ObjectId>()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let reader = match viewer.clip_reader(&camera, &clip).await {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let playback = tokio::time::timeout(CHECK_WAIT, reader.checked())
        .await
        .unwrap_or(Playback::Checking);
    if let Playback::Tampered(why) = &playback {
        // Every later listing on this device shows it.
        if let Err(e) = viewer.index.lock().await.mark_played(&camera, &clip, why) {
            return failed(&e.into());
        }
    }
    let (state, reason) = match playback {
        Playback::Verified => ("verified", None),
        Playback::Tampered(why) => ("tampered", Some(why)),
        Playback::Unchecked(why) => ("unchecked", Some(why)),
        Playback::Checking => ("checking", None),
    };
    axum::Json(ClipCheck { state, reason }).into_response()
}

pub(super) async fn thumbnail(
    State(viewer): State<Arc<Viewer>>,
    Path(event): Path<String>,
) -> Response {
    let Ok(event) = event.parse::<ObjectId>() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let found = viewer.index.lock().await.event(&event);
    match found {
        Ok(Some(e)) if !e.details.thumbnail_jpeg.is_empty() => (
            [(header::CONTENT_TYPE, "image/jpeg")],
            e.details.thumbnail_jpeg.clone(),
        )
            .into_response(),
        Ok(_) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => failed(&e.into()),
    }
}

/// A clip's MP4, by range: only the chunks a range covers are fetched and opened, so a player
/// starts and seeks without downloading the clip.
pub(super) async fn clip(
    State(viewer): State<Arc<Viewer>>,
    Path((camera, clip)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let (Some(camera), Ok(clip)) = (viewer.camera(&camera).await, clip.parse::<ObjectId>()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let reader = match viewer.clip_reader(&camera, &clip).await {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    let len = reader.len();
    let wanted = match headers.get(header::RANGE).map(|v| v.to_str()) {
        None => None,
        Some(Ok(value)) => match keyhole_wire::range::parse(value, len) {
            Ok(r) => Some(r),
            Err(_) => {
                return (
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    [(header::CONTENT_RANGE, format!("bytes */{len}"))],
                )
                    .into_response();
            }
        },
        Some(Err(_)) => return StatusCode::BAD_REQUEST.into_response(),
    };
    let Some(range) = wanted else {
        // The whole clip, read piece by piece as the body is sent.
        let pieces = futures_util::stream::try_unfold(0u64, move |at| {
            let reader = reader.clone();
            async move {
                if at >= len {
                    return Ok(None);
                }
                let piece = reader.read(at..len).await.map_err(std::io::Error::other)?;
                if piece.is_empty() {
                    return Err(std::io::Error::other("the clip ended early"));
                }
                let next = at + piece.len() as u64;
                Ok(Some((piece, next)))
            }
        });
        return (
            [
                (header::CONTENT_TYPE, "video/mp4".to_owned()),
                (header::ACCEPT_RANGES, "bytes".to_owned()),
                (header::CONTENT_LENGTH, len.to_string()),
            ],
            Body::from_stream(pieces),
        )
            .into_response();
    };
    let bytes = match reader.read(range.clone()).await {
        Ok(b) => b,
        Err(e) => return failed(&e),
    };
    // A read is capped, so the answer may cover less than was asked for.
    let end = range.start + bytes.len() as u64;
    (
        StatusCode::PARTIAL_CONTENT,
        [
            (header::CONTENT_TYPE, "video/mp4".to_owned()),
            (header::ACCEPT_RANGES, "bytes".to_owned()),
            (
                header::CONTENT_RANGE,
                format!("bytes {}-{}/{len}", range.start, end.saturating_sub(1)),
            ),
        ],
        Body::from(bytes),
    )
        .into_response()
}
