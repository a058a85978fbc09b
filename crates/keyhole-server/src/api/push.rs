//! Push registration (`docs/API.md`, Push): an enrolled device gives the server a Web Push
//! subscription (RFC 8030, as a browser's `PushSubscription.toJSON()` or a `UnifiedPush`
//! distributor gives it), and is then sent a wake-up for each event of the cameras it may view
//! (`crate::push`). One subscription per device credential; it ends with the credential.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use serde::Deserialize;

use super::extract::JsonBody;
use crate::auth::{Caller, token_hash};
use crate::error::ApiError;
use crate::push::{B64URL, check_endpoint, check_keys};
use crate::store::PushSubscription;
use crate::{AppState, now_ms};

/// `GET /v1/push/key`: the application server key to subscribe with.
pub(super) async fn key(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.device()?;
    Ok(Json(serde_json::json!({
        "application_server_key": state.pusher.public_key(),
    })))
}

#[derive(Deserialize)]
pub(super) struct Subscription {
    endpoint: String,
    keys: Keys,
}

#[derive(Deserialize)]
struct Keys {
    p256dh: String,
    auth: String,
}

/// `PUT /v1/push/subscription`: keeps the caller's subscription, replacing any before.
pub(super) async fn subscribe(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<Subscription>,
) -> Result<StatusCode, ApiError> {
    caller.device()?;
    check_endpoint(&body.endpoint, state.config.push_allow_http).map_err(ApiError::BadRequest)?;
    let decode = |what: &str, value: &str| {
        B64URL
            .decode(value)
            .map_err(|_| ApiError::bad(format!("keys.{what} is not base64url")))
    };
    let p256dh = decode("p256dh", &body.keys.p256dh)?;
    let auth = decode("auth", &body.keys.auth)?;
    check_keys(&p256dh, &auth).map_err(ApiError::BadRequest)?;
    let subscription = PushSubscription {
        token_hash: token_hash(crate::auth::bearer(&headers)?),
        endpoint: body.endpoint,
        p256dh,
        auth,
    };
    state
        .meta
        .put_push_subscription(&subscription, now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `DELETE /v1/push/subscription`: forgets the caller's subscription.
pub(super) async fn unsubscribe(
    State(state): State<AppState>,
    caller: Caller,
    headers: axum::http::HeaderMap,
) -> Result<StatusCode, ApiError> {
    caller.joining()?;
    let hash = token_hash(crate::auth::bearer(&headers)?);
    if state.meta.delete_push_subscription(&hash).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
