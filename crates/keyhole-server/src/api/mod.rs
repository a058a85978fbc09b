//! The HTTP API, version 1 (`docs/API.md`). JSON for control messages; the exact bytes of
//! signed and sealed objects as `application/octet-stream`.

mod accounts;
mod announcements;
mod cameras;
mod enrollments;
mod extract;
mod heads;
mod live;
mod log;
mod objects;
mod pairing;
mod proof;
mod push;
mod records;
mod shares;
mod talk;

use axum::Router;
use axum::body::Bytes;
use axum::routing::{delete, get, post, put};

use crate::AppState;
use crate::error::ApiError;

pub use objects::MAX_ABANDONED_UPLOADS;

/// All routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/accounts", post(accounts::create))
        .route("/v1/login", post(accounts::login))
        .route("/v1/login/challenge", post(accounts::login_challenge))
        .route("/v1/login/device", post(accounts::login_device))
        .route("/v1/challenges", post(proof::challenge))
        .route("/v1/password", put(accounts::set_password))
        .route("/v1/logout", post(accounts::logout))
        .route("/v1/devices/{device_id}", delete(accounts::revoke_device))
        .route(
            "/v1/enrollments",
            post(enrollments::create).get(enrollments::list),
        )
        .route(
            "/v1/enrollments/{enrollment_id}",
            get(enrollments::get).delete(enrollments::close),
        )
        .route(
            "/v1/enrollments/{enrollment_id}/{step}",
            put(enrollments::put_step),
        )
        .route("/v1/accounts/{username}/key", get(shares::key))
        .route("/v1/accounts/{username}/roster", get(shares::member_roster))
        .route("/v1/acceptance", get(shares::acceptance))
        .route("/v1/cameras/{camera_id}/share", get(shares::share))
        .route("/v1/announcements", get(announcements::subscribe))
        .route("/v1/push/key", get(push::key))
        .route(
            "/v1/push/subscription",
            put(push::subscribe).delete(push::unsubscribe),
        )
        .route("/v1/log", post(log::append).get(log::entries))
        .route("/v1/log/heads", put(log::put_head).get(log::heads))
        .route("/v1/roster", get(records::roster))
        .route(
            "/v1/recovery-backup",
            put(records::put_backup).get(records::backup),
        )
        .route(
            "/v1/key-packages",
            put(records::put_key_package).get(records::key_packages),
        )
        .route("/v1/pairing-tokens", post(pairing::create_token))
        .route(
            "/v1/pairing-tokens/{token_id}/register",
            post(pairing::register),
        )
        .route(
            "/v1/pairing-tokens/{token_id}/registration",
            get(pairing::registration),
        )
        .route("/v1/cameras", get(pairing::cameras))
        .route("/v1/cameras/{camera_id}", delete(cameras::remove))
        .route("/v1/audit", get(cameras::audit_log))
        .route("/v1/live", put(live::publish))
        .route("/v1/live/wanted", get(live::wanted))
        .route("/v1/cameras/{camera_id}/live", get(live::watch))
        .route("/v1/cameras/{camera_id}/talk", put(talk::talk))
        .route("/v1/talk", get(talk::listen))
        .route(
            "/v1/cameras/{camera_id}/retention",
            get(cameras::retention_floor),
        )
        .route(
            "/v1/cameras/{camera_id}/record",
            get(records::camera_record),
        )
        .route(
            "/v1/cameras/{camera_id}/roster",
            get(records::camera_roster),
        )
        .route("/v1/cameras/{camera_id}/objects", get(objects::list))
        .route(
            "/v1/cameras/{camera_id}/head",
            put(heads::put).get(heads::get),
        )
        .route("/v1/objects", post(objects::upload_batch))
        .route(
            "/v1/objects/{object_id}",
            put(objects::upload)
                .get(objects::download)
                .delete(objects::remove),
        )
        .route(
            "/v1/objects/{object_id}/upload",
            get(objects::upload_status),
        )
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::extract::DefaultBodyLimit::max(extract::body_limit(
            &state,
        )))
        .with_state(state)
}

async fn health() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

async fn metrics(
    axum::extract::State(state): axum::extract::State<AppState>,
) -> impl axum::response::IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}

/// Parses a 32-hex-digit id from a path.
fn id16(s: &str, what: &str) -> Result<[u8; 16], ApiError> {
    let mut out = [0u8; 16];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| ApiError::bad(format!("{what} must be 32 hex digits")))?;
    Ok(out)
}

/// A record body within the configured size limit.
fn record_body(state: &AppState, body: &Bytes) -> Result<(), ApiError> {
    let max = state.config.max_record_bytes;
    if body.len() > max {
        return Err(ApiError::TooLarge(max as u64));
    }
    Ok(())
}

/// A version or sequence number as the database stores it.
fn as_i64(v: u64, what: &str) -> Result<i64, ApiError> {
    i64::try_from(v).map_err(|_| ApiError::bad(format!("{what} is too large")))
}

fn octets(body: Vec<u8>) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
        body,
    )
        .into_response()
}
