//! Pairing: the owner's device announces a one-time token; the camera answers with its
//! registration proof and receives its credential; the owner's device fetches the proof and
//! checks its MAC with the pairing secret the server never saw.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use keyhole_core::pairing::RegistrationProof;
use serde::{Deserialize, Serialize};

use super::extract::JsonBody;
use super::{id16, octets, record_body};
use crate::auth::{Caller, new_token};
use crate::error::ApiError;
use crate::store::CameraRow;
use crate::{AppState, audit, now_ms};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewToken {
    token_id: String,
    ttl_secs: u64,
}

pub(super) async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(req): JsonBody<NewToken>,
) -> Result<StatusCode, ApiError> {
    caller.device()?;
    let token = id16(&req.token_id, "token_id")?;
    let max = state.config.max_pairing_ttl_secs;
    if req.ttl_secs == 0 || req.ttl_secs > max {
        return Err(ApiError::bad(format!("ttl_secs must be 1 to {max}")));
    }
    let ttl_ms = i64::try_from(req.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    state
        .meta
        .create_pairing_token(
            &caller.0.account_id,
            &token,
            now_ms().saturating_add(ttl_ms),
        )
        .await?;
    let detail = format!(
        "pairing token {} valid for {} s",
        req.token_id, req.ttl_secs
    );
    audit::record(
        &state,
        &caller.0.account_id,
        &audit::actor(&caller),
        "pairing-token",
        &detail,
    )
    .await;
    Ok(StatusCode::CREATED)
}

#[derive(Serialize)]
pub(super) struct Registered {
    camera_token: String,
}

/// The camera's call: no credential yet; the one-time token id authorises it.
pub(super) async fn register(
    State(state): State<AppState>,
    Path(token_id): Path<String>,
    super::extract::RecordBody(body): super::extract::RecordBody,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    let token = id16(&token_id, "token id")?;
    record_body(&state, &body)?;
    let proof = RegistrationProof::decode(&body)
        .map_err(|e| ApiError::bad(format!("not a registration proof: {e}")))?;
    if proof.token.0 != token {
        return Err(ApiError::bad("the proof answers another pairing token"));
    }
    let (camera_token, hash) = new_token();
    let row = CameraRow {
        camera_id: proof.camera_id.0,
        account_id: [0; 16],
        camera_key: proof.camera_key.to_bytes(),
        registration: body.to_vec(),
        token_id: token,
        registered_at: now_ms(),
        removed_at: None,
    };
    let account = state.meta.complete_pairing(&row, &hash, now_ms()).await?;
    let actor = format!("camera:{}", hex::encode(row.camera_id));
    let detail = format!(
        "camera {} registered with key {}",
        hex::encode(row.camera_id),
        hex::encode(row.camera_key)
    );
    audit::record(&state, &account, &actor, "camera-registered", &detail).await;
    tracing::info!(
        account = hex::encode(account),
        camera = hex::encode(row.camera_id),
        "camera registered"
    );
    Ok((StatusCode::CREATED, Json(Registered { camera_token })))
}

pub(super) async fn registration(
    State(state): State<AppState>,
    caller: Caller,
    Path(token_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.device()?;
    let token = id16(&token_id, "token id")?;
    let camera = state
        .meta
        .camera_by_token(&caller.0.account_id, &token)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(octets(camera.registration))
}

#[derive(Serialize)]
pub(super) struct CameraInfo {
    camera_id: String,
    camera_key: String,
    registered_at: i64,
    removed_at: Option<i64>,
    /// The newest object the camera sealed, if any.
    latest: Option<Latest>,
}

#[derive(Serialize)]
pub(super) struct Latest {
    /// Its id, so a device can fetch and check its signed header.
    object_id: String,
    sequence: i64,
    epoch: i64,
    captured_at: i64,
    /// When the server stored it.
    uploaded_at: i64,
}

pub(super) async fn cameras(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<CameraInfo>>, ApiError> {
    caller.device()?;
    let rows = state.meta.cameras(&caller.0.account_id).await?;
    let mut cameras = Vec::with_capacity(rows.len());
    for c in rows {
        let latest = state.meta.latest_object(&c.camera_id).await?;
        cameras.push(CameraInfo {
            camera_id: hex::encode(c.camera_id),
            camera_key: hex::encode(c.camera_key),
            registered_at: c.registered_at,
            removed_at: c.removed_at,
            latest: latest.map(|o| Latest {
                object_id: hex::encode(o.object_id),
                sequence: o.sequence,
                epoch: o.epoch,
                captured_at: o.captured_at,
                uploaded_at: o.created_at,
            }),
        });
    }
    Ok(Json(cameras))
}
