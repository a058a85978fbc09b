//! The local web viewer (`keyhole ui`): this device's client serves a web app on 127.0.0.1 and
//! does every decryption itself, so a browser on the same machine can browse, verify and play
//! footage without the server ever holding a key.
//!
//! Only the browser that opened the link `keyhole ui` printed gets in: the link carries a random
//! per-run token, which is traded, once, for a separate session secret in an `HttpOnly`,
//! `SameSite=Strict` cookie; the token is dead from then on (a copy in the browser's history or
//! a process list opens nothing). The viewer lives at a name of its own, `<random>.localhost`
//! (which browsers resolve to this machine), so its cookie — host-only — goes to no other
//! service on 127.0.0.1, whatever its port. Every request must carry the cookie and name that
//! address as its `Host` (against DNS rebinding), and every change must also carry the
//! `X-Keyhole-UI` header, which no other site's page can send here (against cross-site
//! requests).
//! The app's files are built into the binary and its pages load nothing from anywhere else
//! (a strict Content-Security-Policy says so to the browser).
//!
//! Pages: `timeline` (events, the player), `live`, `manage` (cameras, devices, audit),
//! `sharing`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use keyhole_core::pairing::PairingCode;
use keyhole_core::{CameraId, ObjectId};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::index::Index;
use crate::{ClientError, ClipReader, Owner, now};

mod live;
mod manage;
mod sharing;
mod talk;
mod timeline;
mod updates;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");
const TALK_WORKLET_JS: &str = include_str!("assets/talk-worklet.js");

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
    /// The link's token, until a browser trades it.
    token: Mutex<Option<Zeroizing<String>>>,
    /// What the cookie carries once the token is traded.
    session: Zeroizing<String>,
    /// The `Host` requests must carry: `<name>.localhost:<port>`.
    host: String,
    /// What the last sync of the index found; `None` until the first (or after a change that
    /// calls for another).
    synced: tokio::sync::Mutex<Option<timeline::Synced>>,
    /// The device's index: what it verified and the events it opened.
    index: tokio::sync::Mutex<Index>,
    clips: Mutex<HashMap<ObjectId, Arc<ClipReader>>>,
    /// The pairing code shown, and the name the camera gets, until it registers.
    pairing: Mutex<Option<(PairingCode, String)>>,
    /// A joining device's request answered here, its code shown, until the owner decides.
    approval: Mutex<Option<crate::Approval>>,
    /// Per camera, how far behind the camera its live view here is, as of the last checkpoint.
    live: Mutex<HashMap<String, Option<u64>>>,
    /// Per camera whose live view runs here, the camera's time it saw (for talking back).
    times: Mutex<HashMap<String, Arc<crate::talk::CameraTime>>>,
    /// Per camera, the page's talk through it while the button is held.
    talks: tokio::sync::Mutex<HashMap<String, talk::PageTalk>>,
    /// Counts the times the index took in something new, for open pages to fetch again;
    /// `None` once the viewer stops.
    changes: tokio::sync::watch::Sender<Option<u64>>,
}

/// Where a viewer run is reached, and the one-time token of its link.
pub struct Entry {
    /// `<name>.localhost:<port>`: the viewer's own address.
    pub host: String,
    /// The link's token.
    pub token: Zeroizing<String>,
}

impl Entry {
    /// A fresh name and token for a viewer listening on `port`.
    #[must_use]
    pub fn new(port: u16, rng: &mut impl rand_core::CryptoRngCore) -> Self {
        let mut name = [0u8; 8];
        rng.fill_bytes(&mut name);
        Self {
            host: format!("keyhole-{}.localhost:{port}", hex::encode(name)),
            token: new_token(rng),
        }
    }

    /// The link to open: `http://<name>.localhost:<port>/?token=<token>`.
    #[must_use]
    pub fn link(&self) -> Zeroizing<String> {
        Zeroizing::new(format!(
            "http://{}/?token={}",
            self.host,
            self.token.as_str()
        ))
    }
}

/// Serves the viewer on `listener` until `shutdown` resolves. Browsers get in through
/// [`Entry::link`], once.
///
/// # Errors
/// If serving fails.
pub async fn serve(
    owner: Owner,
    index: Index,
    persist: Persist,
    listener: tokio::net::TcpListener,
    entry: Entry,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let viewer = Arc::new(Viewer {
        owner: tokio::sync::RwLock::new(owner),
        persist,
        token: Mutex::new(Some(entry.token)),
        session: new_token(&mut rand_core::OsRng),
        host: entry.host,
        synced: tokio::sync::Mutex::new(None),
        index: tokio::sync::Mutex::new(index),
        clips: Mutex::default(),
        pairing: Mutex::default(),
        approval: Mutex::default(),
        live: Mutex::default(),
        times: Mutex::default(),
        talks: tokio::sync::Mutex::default(),
        changes: tokio::sync::watch::Sender::new(Some(0)),
    });
    let app = Router::new()
        .route("/", get(index_page))
        .route(
            "/app.js",
            get(|| asset(APP_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/talk-worklet.js",
            get(|| asset(TALK_WORKLET_JS, "text/javascript; charset=utf-8")),
        )
        .route(
            "/style.css",
            get(|| asset(STYLE_CSS, "text/css; charset=utf-8")),
        )
        // Browsers ask for one; there is none.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/api/timeline", get(timeline::timeline))
        .route("/api/updates", get(updates::updates))
        .route("/api/thumbnails/{event}", get(timeline::thumbnail))
        .route("/api/recordings/{camera}", get(timeline::recordings))
        .route("/api/clips/{camera}/{clip}", get(timeline::clip))
        .route(
            "/api/clips/{camera}/{clip}/check",
            get(timeline::clip_check),
        )
        .route("/api/live/{camera}", get(live::live))
        .route("/api/live/{camera}/status", get(live::status))
        .route("/api/talk/{camera}", post(talk::start))
        .route("/api/talk/{camera}/sound", post(talk::sound))
        .route("/api/talk/{camera}/end", post(talk::end))
        .route("/api/cameras", get(manage::cameras))
        .route("/api/cameras/{camera}/remove", post(manage::remove_camera))
        .route("/api/pairing", post(manage::start_pairing))
        .route("/api/pairing/qr.svg", get(manage::pairing_qr))
        .route("/api/pairing/finish", post(manage::finish_pairing))
        .route("/api/devices", get(manage::devices))
        .route("/api/devices/{device}/revoke", post(manage::revoke_device))
        .route("/api/enrollments", get(manage::enrollments))
        .route(
            "/api/enrollments/{enrollment}/answer",
            post(manage::answer_enrollment),
        )
        .route(
            "/api/enrollments/{enrollment}/decide",
            post(manage::decide_enrollment),
        )
        .route("/api/audit", get(manage::audit))
        .route("/api/sharing", get(sharing::sharing))
        .route("/api/sharing/accept", post(sharing::accept))
        .route("/api/sharing/refuse", post(sharing::refuse))
        .route("/api/sharing/share", post(sharing::share))
        .route("/api/sharing/withdraw", post(sharing::withdraw))
        .layer(middleware::from_fn_with_state(viewer.clone(), guard))
        .with_state(viewer.clone());
    let follower = tokio::spawn(updates::follow(viewer.clone()));
    let shutdown = async move {
        shutdown.await;
        // Open pages' update streams end, so the server can stop.
        viewer.changes.send_replace(None);
    };
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    follower.abort();
    served
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
        .is_some_and(|h| h.eq_ignore_ascii_case(&viewer.host));
    let mut response = if !host_ok {
        refuse(
            StatusCode::FORBIDDEN,
            "This viewer answers only on its own address: open the link `keyhole ui` printed.",
        )
    } else if let Some(token) = query_token(&request) {
        if request.uri().path() == "/" && viewer.take_token(&token) {
            let cookie = format!(
                "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/",
                viewer.session.as_str()
            );
            let mut r = Redirect::to("/").into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                r.headers_mut().insert(header::SET_COOKIE, v);
            }
            r
        } else {
            refuse(
                StatusCode::UNAUTHORIZED,
                "This link was used already (a link opens the viewer once), or is not valid: \
                 run `keyhole ui` again for a new one.",
            )
        }
    } else if !cookie_token(request.headers()).is_some_and(|t| viewer.session_matches(&t)) {
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

/// Whether `offered` is `secret`, compared in constant time.
fn same_secret(offered: &str, secret: &str) -> bool {
    offered.len() == secret.len() && bool::from(offered.as_bytes().ct_eq(secret.as_bytes()))
}

impl Viewer {
    /// Whether `offered` is the link's token, which it then no longer is: a link opens once.
    fn take_token(&self, offered: &str) -> bool {
        let mut token = self
            .token
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if token.as_ref().is_some_and(|t| same_secret(offered, t)) {
            *token = None;
            true
        } else {
            false
        }
    }

    fn session_matches(&self, offered: &str) -> bool {
        same_secret(offered, &self.session)
    }

    /// The camera time the live view of camera `id` here saw, while it runs.
    fn camera_time(&self, id: &str) -> Option<Arc<crate::talk::CameraTime>> {
        self.times
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .cloned()
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

async fn index_page() -> Response {
    asset(INDEX_HTML, "text/html; charset=utf-8").await
}

async fn asset(body: &'static str, kind: &'static str) -> Response {
    ([(header::CONTENT_TYPE, kind)], body).into_response()
}

/// A refusal in words, as the pages show it.
fn failed_text(status: StatusCode, why: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": why }))).into_response()
}

/// A failure shown to the page: the message, never a secret.
fn failed(e: &ClientError) -> Response {
    (
        StatusCode::BAD_GATEWAY,
        axum::Json(serde_json::json!({ "error": e.to_string() })),
    )
        .into_response()
}
