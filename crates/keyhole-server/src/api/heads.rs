//! Camera heads (PROTOCOL.md §8.3): a camera's signed word on where its chain stands, sent on
//! its own at an interval and in a `keyhole-head` header with every upload. The server keeps
//! the newest by the camera's clock and hands it to the devices that may view the camera; it
//! checks the signature only to keep garbage out — devices check it themselves.

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use keyhole_core::CameraPublicKey;
use keyhole_core::camera_head::{CAMERA_HEAD_LEN, CameraHead};

use super::id16;
use super::objects::uploading_camera;
use crate::AppState;
use crate::auth::Caller;
use crate::error::ApiError;

/// The header that carries a head on an upload, in hexadecimal.
pub const HEAD_HEADER: &str = "keyhole-head";

/// Keeps `bytes` as the camera's head if it verifies under the camera's key and is newer than
/// the one kept.
pub(super) async fn keep(
    state: &AppState,
    camera_id: &[u8; 16],
    camera_key: &CameraPublicKey,
    bytes: &[u8],
) -> Result<(), ApiError> {
    let head = CameraHead::verify(bytes, &keyhole_core::CameraId(*camera_id), camera_key)
        .map_err(|e| ApiError::bad(format!("camera head: {e}")))?;
    let clock = i64::try_from(head.clock.0)
        .map_err(|_| ApiError::bad("camera head: clock out of range"))?;
    state.meta.put_camera_head(camera_id, clock, bytes).await?;
    Ok(())
}

/// Keeps the head an upload carried, once its objects are stored. A head that does not verify
/// is logged and dropped rather than refusing objects already stored.
pub(super) async fn keep_carried(
    state: &AppState,
    camera_id: &[u8; 16],
    camera_key: &CameraPublicKey,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let Some(value) = headers.get(HEAD_HEADER) else {
        return Ok(());
    };
    let bytes = value.to_str().ok().and_then(|v| hex::decode(v.trim()).ok());
    match bytes {
        Some(bytes) => match keep(state, camera_id, camera_key, &bytes).await {
            Err(ApiError::BadRequest(why)) => {
                tracing::warn!(camera = hex::encode(camera_id), %why, "dropped a carried head");
                Ok(())
            }
            other => other,
        },
        None => {
            tracing::warn!(camera = hex::encode(camera_id), "dropped a head not in hex");
            Ok(())
        }
    }
}

/// `PUT /v1/cameras/{camera_id}/head`: the camera's own head, between uploads.
pub(super) async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera_id): Path<String>,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let camera_id = id16(&camera_id, "camera id")?;
    if caller.camera()? != camera_id {
        return Err(ApiError::Forbidden);
    }
    let (_, key) = uploading_camera(&state, &camera_id).await?;
    let bytes = axum::body::to_bytes(body, CAMERA_HEAD_LEN)
        .await
        .map_err(|_| ApiError::bad(format!("a camera head is {CAMERA_HEAD_LEN} bytes")))?;
    keep(&state, &camera_id, &key, &bytes).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/cameras/{camera_id}/head`: the newest head kept, or 204 if the camera sent none.
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera_id): Path<String>,
) -> Result<Response, ApiError> {
    caller.device()?;
    let camera_id = id16(&camera_id, "camera id")?;
    super::shares::viewable(&state, &caller, &camera_id).await?;
    Ok(match state.meta.camera_head(&camera_id).await? {
        Some(head) => Bytes::from(head).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}
