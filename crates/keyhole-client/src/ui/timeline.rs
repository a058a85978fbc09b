//! The timeline and the player: every camera's listing verified, its events opened, and clips
//! read by range.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keyhole_core::event::EventDetails;
use keyhole_core::report::Checked;
use keyhole_core::{CameraId, ObjectId};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::{Viewer, failed};
use crate::{ClientError, ClipReader, Playback};

/// The timeline as last built, with the thumbnails it opened.
pub(super) struct Built {
    timeline: Timeline,
    thumbnails: HashMap<ObjectId, Vec<u8>>,
}

/// Everything the timeline page shows.
#[derive(Debug, Clone, Serialize)]
struct Timeline {
    cameras: Vec<CameraView>,
    events: Vec<EventView>,
    problems: Vec<ProblemView>,
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
    /// `verified`, `tampered` (see `clip_problem`), `missing` or `none`.
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

impl Viewer {
    /// The timeline, built on first use and when asked to refresh; a refresh first brings the
    /// device up to date (which is also when it would find a forked account log).
    async fn built(&self, refresh: bool) -> Result<Arc<Built>, ClientError> {
        let mut cached = self.timeline.lock().await;
        if let (Some(built), false) = (cached.as_ref(), refresh) {
            return Ok(built.clone());
        }
        if refresh {
            let mut owner = self.owner.write().await;
            if owner.sync().await? {
                (self.persist)(&owner)?;
            }
        }
        let built = Arc::new(self.build().await?);
        *cached = Some(built.clone());
        Ok(built)
    }

    /// Verifies every camera's listing and opens its events.
    async fn build(&self) -> Result<Built, ClientError> {
        // Written: verifying moves each camera's mark of what this device has seen.
        let mut owner = self.owner.write().await;
        let mut timeline = Timeline {
            cameras: Vec::new(),
            events: Vec::new(),
            problems: Vec::new(),
        };
        let mut thumbnails = HashMap::new();
        let mut moved = false;
        for (camera, name, _, removed) in owner.cameras() {
            let id = camera.to_string();
            timeline.cameras.push(CameraView {
                id: id.clone(),
                name,
                removed,
            });
            let seen = (owner.verified_up_to(&camera), owner.camera_head(&camera));
            let report = match owner.verify(&camera).await {
                // A camera whose owner stopped sharing it: no longer served here.
                Err(ClientError::Server { status: 404, .. })
                    if owner.shared_by(&camera).is_some() =>
                {
                    continue;
                }
                other => other?,
            };
            moved |= (owner.verified_up_to(&camera), owner.camera_head(&camera)) != seen;
            if let Some(since) = report.silent_since {
                timeline.problems.push(ProblemView {
                    camera: id.clone(),
                    object: None,
                    problem: format!(
                        "silent since {since}: no signed word from the camera for longer than it \
                         promised (offline, or the server is withholding what it sends)"
                    ),
                });
            }
            let states: HashMap<ObjectId, Option<String>> = report
                .entries
                .iter()
                .map(|e| {
                    let problem = (!e.problems.is_empty()).then(|| {
                        e.problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("; ")
                    });
                    (e.listed_id, problem)
                })
                .collect();
            for entry in &report.entries {
                if let Some(problem) = &states.get(&entry.listed_id).cloned().flatten() {
                    timeline.problems.push(ProblemView {
                        camera: id.clone(),
                        object: Some(entry.listed_id.to_string()),
                        problem: problem.clone(),
                    });
                    continue;
                }
                let Some(header) = &entry.header else {
                    continue;
                };
                if header.kind != keyhole_core::envelope::ObjectKind::Event {
                    continue;
                }
                let mut plain = Zeroizing::new(Vec::new());
                let checked = owner
                    .export(&camera, &header.object_id, &mut *plain)
                    .await?;
                let (Checked::Verified(_), Ok(event)) = (checked, EventDetails::decode(&plain))
                else {
                    continue;
                };
                let (clip_state, clip_problem) = match event.clip.map(|c| states.get(&c)) {
                    None => ("none", None),
                    Some(None) => (
                        "missing",
                        Some("the server does not list this clip".to_owned()),
                    ),
                    Some(Some(None)) => ("verified", None),
                    Some(Some(Some(problem))) => ("tampered", Some(problem.clone())),
                };
                timeline.events.push(EventView {
                    camera: id.clone(),
                    event: header.object_id.to_string(),
                    kind: format!("{:?}", event.kind).to_lowercase(),
                    started_at: event.started_at.0,
                    duration_ms: event.duration_ms,
                    note: event.note.clone(),
                    thumbnail: !event.thumbnail_jpeg.is_empty(),
                    clip: event.clip.map(|c| c.to_string()),
                    clip_state,
                    clip_problem,
                });
                if !event.thumbnail_jpeg.is_empty() {
                    thumbnails.insert(header.object_id, event.thumbnail_jpeg);
                }
            }
            for gap in &report.missing {
                timeline.problems.push(ProblemView {
                    camera: id.clone(),
                    object: None,
                    problem: if gap.start() == gap.end() {
                        format!(
                            "missing: nothing verified for sequence {} (deleted, withheld or \
                             altered)",
                            gap.start()
                        )
                    } else {
                        format!(
                            "missing: nothing verified for sequences {}–{} (deleted, withheld \
                             or altered)",
                            gap.start(),
                            gap.end()
                        )
                    },
                });
            }
        }
        if moved {
            // What this device verified is kept, so the server cannot take it back unseen.
            (self.persist)(&owner)?;
        }
        timeline
            .events
            .sort_by_key(|e| std::cmp::Reverse(e.started_at));
        Ok(Built {
            timeline,
            thumbnails,
        })
    }

    /// Marks the clips that playing found tampered, on their events and among the problems.
    fn mark_played(&self, timeline: &mut Timeline) {
        let clips = self
            .clips
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for event in &mut timeline.events {
            let Some(reader) = event
                .clip
                .as_deref()
                .and_then(|c| c.parse::<ObjectId>().ok())
                .and_then(|c| clips.get(&c))
            else {
                continue;
            };
            if let Playback::Tampered(why) = reader.playback() {
                event.clip_state = "tampered";
                event.clip_problem = Some(why.clone());
                timeline.problems.push(ProblemView {
                    camera: event.camera.clone(),
                    object: event.clip.clone(),
                    problem: why,
                });
            }
        }
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

#[derive(Deserialize)]
pub(super) struct RefreshQuery {
    refresh: Option<bool>,
}

pub(super) async fn timeline(
    State(viewer): State<Arc<Viewer>>,
    Query(q): Query<RefreshQuery>,
) -> Response {
    match viewer.built(q.refresh.unwrap_or(false)).await {
        Ok(built) => {
            let mut timeline = built.timeline.clone();
            viewer.mark_played(&mut timeline);
            axum::Json(timeline).into_response()
        }
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
    let built = match viewer.built(false).await {
        Ok(b) => b,
        Err(e) => return failed(&e),
    };
    match built.thumbnails.get(&event) {
        Some(jpeg) => ([(header::CONTENT_TYPE, "image/jpeg")], jpeg.clone()).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
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
