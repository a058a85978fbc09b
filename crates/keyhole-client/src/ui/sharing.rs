//! Sharing (PROTOCOL.md §16): this account's code, accepting shares from another account by its
//! code (and no longer), sharing a camera with one by its code, withdrawing, and the cameras
//! shared with this account. Each change is what the matching `keyhole` command does; the state is saved after.

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use keyhole_core::Timestamp;
use serde::Deserialize;

use super::{Viewer, failed, now};
use crate::ClientError;

pub(super) async fn sharing(State(viewer): State<Arc<Viewer>>) -> Response {
    let owner = viewer.owner.read().await;
    let name = |id| {
        owner
            .cameras()
            .into_iter()
            .find(|c| c.0 == id)
            .map_or_else(String::new, |c| c.1)
    };
    let outgoing: Vec<_> = owner
        .shares()
        .into_iter()
        .map(|(id, members)| {
            serde_json::json!({
                "camera": id.to_string(),
                "name": name(id),
                "members": members.iter().map(|(m, until)| serde_json::json!({
                    "username": m,
                    "expires_at": until.map(|t| t.0),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let incoming: Vec<_> = owner
        .cameras()
        .into_iter()
        .filter_map(|c| {
            let by = owner.shared_by(&c.0)?;
            Some(serde_json::json!({ "camera": c.0.to_string(), "name": c.1, "owner": by }))
        })
        .collect();
    let own: Vec<_> = owner
        .cameras()
        .into_iter()
        .filter(|c| !c.3 && owner.shared_by(&c.0).is_none())
        .map(|c| serde_json::json!({ "camera": c.0.to_string(), "name": c.1 }))
        .collect();
    axum::Json(serde_json::json!({
        "code": owner.account_code().to_string(),
        "cameras": own,
        "shared_with_others": outgoing,
        "shared_with_this_account": incoming,
        "accepted": owner.accepted_owners(),
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Accept {
    username: String,
    code: String,
}

/// Accepts shares from an account whose code the user compared.
pub(super) async fn accept(
    State(viewer): State<Arc<Viewer>>,
    axum::Json(request): axum::Json<Accept>,
) -> Response {
    let mut owner = viewer.owner.write().await;
    let done = owner
        .accept_shares_from(&request.username, &request.code)
        .await
        .and_then(|()| (viewer.persist)(&owner));
    match done {
        Ok(()) => axum::Json(serde_json::json!({ "accepted": request.username })).into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Refuse {
    username: String,
}

/// Stops accepting shares from an account.
pub(super) async fn refuse(
    State(viewer): State<Arc<Viewer>>,
    axum::Json(request): axum::Json<Refuse>,
) -> Response {
    let mut owner = viewer.owner.write().await;
    let done = owner
        .refuse_shares_from(&request.username)
        .await
        .and_then(|()| (viewer.persist)(&owner));
    match done {
        Ok(()) => axum::Json(serde_json::json!({ "refused": request.username })).into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ShareRequest {
    camera: String,
    username: String,
    code: String,
    /// Days until the share ends; absent: until withdrawn.
    days: Option<u64>,
}

/// Shares a camera with an account whose code the user compared.
pub(super) async fn share(
    State(viewer): State<Arc<Viewer>>,
    axum::Json(request): axum::Json<ShareRequest>,
) -> Response {
    let Some(camera) = viewer.camera(&request.camera).await else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let now = now();
    let expires = request
        .days
        .map(|d| Timestamp(now.0.saturating_add(d.saturating_mul(24 * 60 * 60 * 1000))));
    let mut owner = viewer.owner.write().await;
    let done = owner
        .share_camera(
            &camera,
            &request.username,
            &request.code,
            expires,
            now,
            &mut rand_core::OsRng,
        )
        .await
        .and_then(|()| (viewer.persist)(&owner));
    match done {
        Ok(()) => axum::Json(serde_json::json!({ "shared_with": request.username, "expires_at": expires.map(|t| t.0) }))
            .into_response(),
        Err(e) => failed(&e),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Withdraw {
    camera: String,
    username: String,
}

/// Withdraws a share: a new epoch for the camera.
pub(super) async fn withdraw(
    State(viewer): State<Arc<Viewer>>,
    axum::Json(request): axum::Json<Withdraw>,
) -> Response {
    let Some(camera) = viewer.camera(&request.camera).await else {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    };
    let mut owner = viewer.owner.write().await;
    let done: Result<u32, ClientError> = match owner
        .unshare_camera(&camera, &request.username, now(), &mut rand_core::OsRng)
        .await
    {
        Ok(epoch) => (viewer.persist)(&owner).map(|()| epoch),
        Err(e) => Err(e),
    };
    match done {
        Ok(epoch) => axum::Json(serde_json::json!({ "epoch": epoch })).into_response(),
        Err(e) => failed(&e),
    }
}
