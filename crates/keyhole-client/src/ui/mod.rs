//! The local web viewer (`keyhole ui`): this device's client serves a web app on 127.0.0.1 and
//! does every decryption itself, so a browser on the same machine can browse, verify and play
//! footage without the server ever holding a key.
//!
//! Only the browser that opened the link `keyhole ui` printed gets in: the link carries a random
//! per-run token, which is traded for an `HttpOnly`, `SameSite=Strict` cookie; every request
//! must carry it and name this server's own address as its `Host` (against DNS rebinding), and
//! every change must also carry the `X-Keyhole-UI` header, which no other site's page can send
//! here (against cross-site requests).
//! The app's files are built into the binary and its pages load nothing from anywhere else
//! (a strict Content-Security-Policy says so to the browser).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use keyhole_core::event::EventDetails;
use keyhole_core::pairing::PairingCode;
use keyhole_core::report::Checked;
use keyhole_core::{CameraId, ObjectId};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::{ClientError, ClipReader, Owner};

mod live;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The cookie the token is traded for.
const COOKIE: &str = "keyhole_ui";

/// What the browser may load: this origin only, nothing inline, no framing.
/// (Live view plays from a `blob:` URL: Media Source Extensions.)
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   media-src 'self' blob:; connect-src 'self'; base-uri 'none'; \
                   form-action 'self'; frame-ancestors 'none'";

/// Saves the device's state after the viewer changed it (a camera removed, a device revoked).
pub type Persist = Box<dyn Fn(&Owner) -> Result<(), ClientError> + Send + Sync>;

/// The viewer's state: the device's keys and what it has opened so far.
struct Viewer {
    owner: tokio::sync::RwLock<Owner>,
    persist: Persist,
    token: Zeroizing<String>,
    /// The `Host` values requests must carry.
    hosts: [String; 2],
    timeline: tokio::sync::Mutex<Option<Arc<Built>>>,
    clips: Mutex<HashMap<ObjectId, Arc<ClipReader>>>,
    /// The pairing code shown, and the name the camera gets, until it registers.
    pairing: Mutex<Option<(PairingCode, String)>>,
    /// A joining device's request answered here, its code shown, until the owner decides.
    approval: Mutex<Option<crate::Approval>>,
}

/// The timeline as last built, with the thumbnails it opened.
struct Built {
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

/// Serves the viewer on `listener` until `shutdown` resolves. Browsers get in through
/// `http://127.0.0.1:<port>/?token=<token>`.
///
/// # Errors
/// If serving fails.
pub async fn serve(
    owner: Owner,
    persist: Persist,
    listener: tokio::net::TcpListener,
    token: Zeroizing<String>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let port = listener.local_addr()?.port();
    let viewer = Arc::new(Viewer {
        owner: tokio::sync::RwLock::new(owner),
        persist,
        token,
        hosts: [format!("127.0.0.1:{port}"), format!("localhost:{port}")],
        timeline: tokio::sync::Mutex::new(None),
        clips: Mutex::default(),
        pairing: Mutex::default(),
        approval: Mutex::default(),
    });
    let app = Router::new()
        .route("/", get(index))
        .route(
            "/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/style.css",
            get(|| asset(STYLE_CSS, "text/css; charset=utf-8")),
        )
        // Browsers ask for one; there is none.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/timeline", get(timeline))
        .route("/api/thumbnails/{event}", get(thumbnail))
        .route("/api/clips/{camera}/{clip}", get(clip))
        .route("/api/cameras", get(cameras))
        .route("/api/live/{camera}", get(live))
        .route(
            "/api/cameras/{camera}/remove",
            axum::routing::post(remove_camera),
        )
        .route("/api/pairing", axum::routing::post(start_pairing))
        .route("/api/pairing/qr.svg", get(pairing_qr))
        .route("/api/pairing/finish", axum::routing::post(finish_pairing))
        .route("/api/devices", get(devices))
        .route("/api/enrollments", get(enrollments))
        .route(
            "/api/enrollments/{enrollment}/answer",
            axum::routing::post(answer_enrollment),
        )
        .route(
            "/api/enrollments/{enrollment}/decide",
            axum::routing::post(decide_enrollment),
        )
        .route(
            "/api/devices/{device}/revoke",
            axum::routing::post(revoke_device),
        )
        .route("/api/audit", get(audit))
        .layer(middleware::from_fn_with_state(viewer.clone(), guard))
        .with_state(viewer);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

/// A random token for one run: 32 bytes, hex.
#[must_use]
pub fn new_token(rng: &mut impl rand_core::CryptoRngCore) -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(bytes.as_mut());
    Zeroizing::new(hex::encode(bytes.as_ref()))
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Every request: the right `Host`, then the token (traded for the cookie on `/`) or the
/// cookie; and the security headers on every answer.
async fn guard(State(viewer): State<Arc<Viewer>>, request: Request, next: Next) -> Response {
    let host_ok = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| viewer.hosts.iter().any(|ours| ours == h));
    let mut response = if !host_ok {
        refuse(
            StatusCode::FORBIDDEN,
            "This viewer answers only on its own address.",
        )
    } else if let Some(token) = query_token(&request) {
        if request.uri().path() == "/" && viewer.token_matches(&token) {
            let cookie = format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                token.as_str()
            );
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        } else {
            refuse(
                StatusCode::UNAUTHORIZED,
                "This link is not valid (any more). Open the link `keyhole ui` printed.",
            )
        }
    } else if !cookie_token(request.headers()).is_some_and(|t| viewer.token_matches(&t)) {
        refuse(
            StatusCode::UNAUTHORIZED,
            "Open the link `keyhole ui` printed to use this viewer.",
        )
    } else if request.method() != axum::http::Method::GET
        && request.headers().get("x-keyhole-ui").is_none()
    {
        refuse(
            StatusCode::FORBIDDEN,
            "Changes come from the viewer's own pages only.",
        )
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CSP),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

impl Viewer {
    fn token_matches(&self, offered: &str) -> bool {
        offered.len() == self.token.len()
            && bool::from(offered.as_bytes().ct_eq(self.token.as_bytes()))
    }

    async fn camera(&self, id: &str) -> Option<CameraId> {
        self.owner
            .read()
            .await
            .cameras()
            .into_iter()
            .map(|(c, ..)| c)
            .find(|c| c.to_string() == id)
    }

    /// The timeline, built on first use and when asked to refresh.
    async fn built(&self, refresh: bool) -> Result<Arc<Built>, ClientError> {
        let mut cached = self.timeline.lock().await;
        if let (Some(built), false) = (cached.as_ref(), refresh) {
            return Ok(built.clone());
        }
        let built = Arc::new(self.build().await?);
        *cached = Some(built.clone());
        Ok(built)
    }

    /// Verifies every camera's listing and opens its events.
    async fn build(&self) -> Result<Built, ClientError> {
        let owner = self.owner.read().await;
        let mut timeline = Timeline {
            cameras: Vec::new(),
            events: Vec::new(),
            problems: Vec::new(),
        };
        let mut thumbnails = HashMap::new();
        for (camera, name, _, removed) in owner.cameras() {
            let id = camera.to_string();
            timeline.cameras.push(CameraView {
                id: id.clone(),
                name,
                removed,
            });
            let report = owner.verify(&camera, None).await?;
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
        timeline
            .events
            .sort_by_key(|e| std::cmp::Reverse(e.started_at));
        Ok(Built {
            timeline,
            thumbnails,
        })
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

fn query_token(request: &Request) -> Option<Zeroizing<String>> {
    let Query(q) = Query::<TokenQuery>::try_from_uri(request.uri()).ok()?;
    q.token.map(Zeroizing::new)
}

fn cookie_token(headers: &HeaderMap) -> Option<Zeroizing<String>> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE).then(|| Zeroizing::new(value.to_owned()))
        })
}

fn refuse(status: StatusCode, why: &'static str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        why,
    )
        .into_response()
}

async fn index() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8").await
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// A failure shown to the page: the message, never a secret.
fn failed(e: &ClientError) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        axum::Json(serde_json::json!({ "error": e.to_string() })),
    )
        .into_response()
}

#[derive(Deserialize)]
struct RefreshQuery {
    refresh: Option<bool>,
}

async fn timeline(State(viewer): State<Arc<Viewer>>, Query(q): Query<RefreshQuery>) -> Response {
    match viewer.built(q.refresh.unwrap_or(false)).await {
        Ok(built) => axum::Json(built.timeline.clone()).into_response(),
        Err(e) => failed(&e),
    }
}

async fn thumbnail(State(viewer): State<Arc<Viewer>>, Path(event): Path<String>) -> Response {
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
async fn clip(
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

async fn cameras(State(viewer): State<Arc<Viewer>>) -> Response {
    match viewer.owner.read().await.camera_statuses().await {
        Ok(list) => axum::Json(
            list.iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id.to_string(),
                        "name": c.name,
                        "epoch": c.epoch,
                        "removed": c.removed,
                        "last_upload": c.latest.map(|l| l.uploaded_at.0),
                        "stale_epoch": c.stale_epoch,
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveRequest {
    /// `keep` or `delete`.
    footage: String,
}

/// Removes a camera, keeping or deleting its footage, as `keyhole remove` does; the device's
/// state is saved and the timeline rebuilt.
async fn remove_camera(
    State(viewer): State<Arc<Viewer>>,
    Path(camera): Path<String>,
    axum::Json(request): axum::Json<RemoveRequest>,
) -> Response {
    let keep = match request.footage.as_str() {
        "keep" => true,
        "delete" => false,
        _ => return (StatusCode::BAD_REQUEST, "footage is keep or delete").into_response(),
    };
    let Some(camera) = viewer.camera(&camera).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let summary = {
        let mut owner = viewer.owner.write().await;
        let summary = match owner.remove_camera(&camera, keep, now()).await {
            Ok(s) => s,
            Err(e) => return failed(&e),
        };
        if let Err(e) = (viewer.persist)(&owner) {
            return failed(&e);
        }
        summary
    };
    *viewer.timeline.lock().await = None;
    viewer
        .clips
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    axum::Json(summary).into_response()
}

async fn devices(State(viewer): State<Arc<Viewer>>) -> Response {
    let owner = viewer.owner.read().await;
    let this = owner.device_id();
    axum::Json(
        owner
            .devices()
            .iter()
            .map(|(id, name, added)| {
                serde_json::json!({
                    "id": id.to_string(),
                    "name": name,
                    "added_at": added.0,
                    "this_device": *id == this,
                })
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}

/// The account's audit log, newest first; entries no device or camera of the account made are
/// marked.
async fn audit(State(viewer): State<Arc<Viewer>>) -> Response {
    match viewer.owner.read().await.audit_log().await {
        Ok(entries) => axum::Json(
            entries
                .into_iter()
                .rev()
                .map(|(entry, by)| {
                    serde_json::json!({
                        "at": entry["at"],
                        "action": entry["action"],
                        "detail": entry["detail"],
                        "yours": by.is_some(),
                        "by": by.unwrap_or_else(|| format!(
                            "not this account's: {}",
                            entry["actor"].as_str().unwrap_or("unknown")
                        )),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => failed(&e),
    }
}

/// Longest a live view from the viewer lasts; the page asks again to go on.
const LIVE_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Live view as a fragmented MP4 stream (an initialization segment, then one fragment per
/// picture), which the page plays through Media Source Extensions. The session is verified and
/// opened here frame by frame, exactly as `keyhole live` does.
async fn live(State(viewer): State<Arc<Viewer>>, Path(camera): Path<String>) -> Response {
    let Some(camera) = viewer.camera(&camera).await else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(256);
    tokio::spawn(async move {
        let mut sink = live::FragmentSink::new(tx.clone());
        let owner = viewer.owner.read().await;
        let watched = owner
            .watch_live(&camera, 30, Some(LIVE_LIMIT), &mut sink)
            .await;
        if let Err(e) = watched {
            // The page shows it; a viewer that left is not told anything.
            let _ = tx.try_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    (
        [(header::CONTENT_TYPE, "video/mp4")],
        Body::from_stream(body),
    )
        .into_response()
}

/// Revokes another device, as `keyhole revoke` does: a new roster without it, its credentials
/// refused, and a new key for every camera; the device's state is saved.
async fn revoke_device(State(viewer): State<Arc<Viewer>>, Path(device): Path<String>) -> Response {
    let mut owner = viewer.owner.write().await;
    let Some(device) = owner
        .devices()
        .into_iter()
        .map(|(id, ..)| id)
        .find(|id| id.to_string() == device)
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let rotated = match owner
        .revoke_device(device, now(), &mut rand_core::OsRng)
        .await
    {
        Ok(r) => r,
        Err(e) => return failed(&e),
    };
    if let Err(e) = (viewer.persist)(&owner) {
        return failed(&e);
    }
    axum::Json(serde_json::json!({ "cameras_rekeyed": rotated.len() })).into_response()
}

fn now() -> keyhole_core::Timestamp {
    keyhole_core::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PairRequest {
    name: String,
}

/// Starts pairing a camera named `name`: a pairing code for it to read (as text or QR code),
/// valid until the camera registers or another pairing starts.
async fn start_pairing(
    State(viewer): State<Arc<Viewer>>,
    axum::Json(request): axum::Json<PairRequest>,
) -> Response {
    let name = request.name.trim().to_owned();
    if name.is_empty() || name.len() > 64 {
        return (StatusCode::BAD_REQUEST, "a name of 1 to 64 bytes").into_response();
    }
    let code = {
        let owner = viewer.owner.read().await;
        let endpoint = owner.endpoint().clone();
        match owner
            .start_pairing(&endpoint.url, endpoint.pin, &mut rand_core::OsRng)
            .await
        {
            Ok(code) => code,
            Err(e) => return failed(&e),
        }
    };
    let text = code.to_text();
    *viewer
        .pairing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some((code, name));
    axum::Json(serde_json::json!({ "code": text.as_str() })).into_response()
}

/// The pending pairing code as a QR code (SVG), for a camera with a lens to read it.
async fn pairing_qr(State(viewer): State<Arc<Viewer>>) -> Response {
    let text = match viewer
        .pairing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .as_ref()
    {
        Some((code, _)) => code.to_text(),
        None => return StatusCode::NOT_FOUND.into_response(),
    };
    let Ok(qr) = qrcode::QrCode::new(text.as_bytes()) else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let width = qr.width();
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"-4 -4 {w} {w}\" \
         shape-rendering=\"crispEdges\"><rect x=\"-4\" y=\"-4\" width=\"{w}\" height=\"{w}\" \
         fill=\"#fff\"/><path fill=\"#000\" d=\"",
        w = width + 8
    );
    for (i, color) in qr.to_colors().iter().enumerate() {
        if *color == qrcode::Color::Dark {
            svg.push_str(&format!("M{} {}h1v1h-1z", i % width, i / width));
        }
    }
    svg.push_str("\"/></svg>");
    ([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response()
}

/// How long the page waits for the camera to register before it asks again.
const PAIRING_WAIT: std::time::Duration = std::time::Duration::from_secs(25);

/// Waits a while for the camera to register with the pending code; then checks its key with
/// the code's secret, signs its record and saves the device's state, as `keyhole pair` does.
/// `202 Accepted` while the camera has not registered yet.
async fn finish_pairing(State(viewer): State<Arc<Viewer>>) -> Response {
    let Some((code, name)) = viewer
        .pairing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let deadline = std::time::Instant::now() + PAIRING_WAIT;
    let camera = loop {
        // Locked per attempt, so the other pages stay usable while the camera is awaited.
        let attempt = viewer
            .owner
            .write()
            .await
            .finish_pairing(&code, &name, now(), &mut rand_core::OsRng)
            .await;
        match attempt {
            Ok(id) => break id,
            Err(ClientError::Server { status: 404, .. })
                if std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            Err(ClientError::Server { status: 404, .. }) => {
                return StatusCode::ACCEPTED.into_response();
            }
            Err(e) => return failed(&e),
        }
    };
    {
        let mut owner = viewer.owner.write().await;
        let synced = owner.sync_camera(&camera).await;
        if let Err(e) = synced.and_then(|()| (viewer.persist)(&owner)) {
            return failed(&e);
        }
    }
    *viewer
        .pairing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    *viewer.timeline.lock().await = None;
    axum::Json(serde_json::json!({ "camera": camera.to_string(), "name": name })).into_response()
}

/// Devices waiting to join the account (`keyhole join` on them).
async fn enrollments(State(viewer): State<Arc<Viewer>>) -> Response {
    match viewer.owner.read().await.pending_enrollments().await {
        Ok(pending) => axum::Json(
            pending
                .iter()
                .map(|p| {
                    serde_json::json!({
                        "id": p.enrollment_id,
                        "name": p.request.name,
                        "device": p.request.device_id.to_string(),
                    })
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => failed(&e),
    }
}

/// Answers a joining device's request: the six-digit code both screens must show.
async fn answer_enrollment(
    State(viewer): State<Arc<Viewer>>,
    Path(enrollment): Path<String>,
) -> Response {
    let owner = viewer.owner.read().await;
    let pending = match owner.pending_enrollments().await {
        Ok(p) => p.into_iter().find(|p| p.enrollment_id == enrollment),
        Err(e) => return failed(&e),
    };
    let Some(pending) = pending else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let approval = match owner
        .answer_enrollment(&pending, &mut rand_core::OsRng)
        .await
    {
        Ok(a) => a,
        Err(e) => return failed(&e),
    };
    let code = approval.code().to_string();
    let name = approval.device().1.to_owned();
    *viewer
        .approval
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(approval);
    axum::Json(serde_json::json!({ "code": code, "name": name })).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Decision {
    /// Whether the owner saw the same code on both screens.
    same_code: bool,
}

/// Enrolls the answered device if the owner saw the same code on both screens (as `keyhole
/// approve` does), or refuses it; the device's state is saved.
async fn decide_enrollment(
    State(viewer): State<Arc<Viewer>>,
    Path(enrollment): Path<String>,
    axum::Json(decision): axum::Json<Decision>,
) -> Response {
    let taken = viewer
        .approval
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .take();
    let Some(approval) = taken.filter(|a| a.enrollment_id() == enrollment) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut owner = viewer.owner.write().await;
    if !decision.same_code {
        return match owner.reject_enrollment(&enrollment).await {
            Ok(()) => axum::Json(serde_json::json!({ "enrolled": false })).into_response(),
            Err(e) => failed(&e),
        };
    }
    if let Err(e) = owner
        .approve_enrollment(approval, now(), &mut rand_core::OsRng)
        .await
    {
        return failed(&e);
    }
    if let Err(e) = (viewer.persist)(&owner) {
        return failed(&e);
    }
    axum::Json(serde_json::json!({ "enrolled": true })).into_response()
}
