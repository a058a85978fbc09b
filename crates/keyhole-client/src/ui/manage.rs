//! Managing the account: cameras (status, pairing, removal), devices (adding by approval,
//! revoking) and the audit log. Each change is what the matching `keyhole` command does, and
//! the device's state is saved after it.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Viewer, failed, now};
use crate::ClientError;

pub(super) async fn cameras(State(viewer): State<Arc<Viewer>>) -> Response {
    let owner = viewer.owner.read().await;
    match owner.camera_statuses(crate::now()).await {
        Ok(list) => axum::Json(
            list.iter()
                .map(|c| {
                    serde_json::json!({
                        "id": c.id.to_string(),
                        "name": c.name,
                        "epoch": c.epoch,
                        "removed": c.removed,
                        "last_captured": c.latest.map(|l| l.captured_at.0),
                        "last_sequence": c.latest.map(|l| l.sequence),
                        "stale_epoch": c.stale_epoch,
                        "withheld_after": c.withheld_after,
                        "heard": c.heard.map(|t| t.0),
                        "silent_since": c.silent_since.map(|t| t.0),
                        "problem": c.problem,
                        "shared_by": owner.shared_by(&c.id),
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
pub(super) struct RemoveRequest {
    /// `keep` or `delete`.
    footage: String,
}

/// Removes a camera, keeping or deleting its footage, as `keyhole remove` does; the device's
/// state is saved and the timeline rebuilt.
pub(super) async fn remove_camera(
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
    *viewer.synced.lock().await = None;
    viewer
        .clips
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clear();
    axum::Json(summary).into_response()
}

pub(super) async fn devices(State(viewer): State<Arc<Viewer>>) -> Response {
    let owner = viewer.owner.read().await;
    let this = owner.device_id();
    let heard = owner.devices_heard();
    axum::Json(
        owner
            .devices()
            .iter()
            .map(|(id, name, added)| {
                let verified = heard.iter().find(|(d, _)| d == id).and_then(|(_, t)| *t);
                serde_json::json!({
                    "id": id.to_string(),
                    "name": name,
                    "added_at": added.0,
                    "this_device": *id == this,
                    "log_verified_at": verified.map(|t| t.0),
                })
            })
            .collect::<Vec<_>>(),
    )
    .into_response()
}

/// The account's audit log, newest first; entries no device or camera of the account made are
/// marked.
pub(super) async fn audit(State(viewer): State<Arc<Viewer>>) -> Response {
    let owner = viewer.owner.read().await;
    match owner.audit_log().await {
        Ok(entries) => axum::Json(
            entries
                .into_iter()
                .rev()
                .map(|(entry, by)| {
                    serde_json::json!({
                        "at": entry["at"],
                        "action": entry["action"],
                        "detail": entry["detail"],
                        "words": owner.audit_in_words(&entry),
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

/// Revokes another device, as `keyhole revoke` does: a new roster without it, its credentials
/// refused, and a new key for every camera; the device's state is saved.
pub(super) async fn revoke_device(
    State(viewer): State<Arc<Viewer>>,
    Path(device): Path<String>,
) -> Response {
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PairRequest {
    name: String,
}

/// Starts pairing a camera named `name`: a pairing code for it to read (as text or QR code),
/// valid until the camera registers or another pairing starts.
pub(super) async fn start_pairing(
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
pub(super) async fn pairing_qr(State(viewer): State<Arc<Viewer>>) -> Response {
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
pub(super) async fn finish_pairing(State(viewer): State<Arc<Viewer>>) -> Response {
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
        let synced = owner.sync().await;
        if let Err(e) = synced.and_then(|_| (viewer.persist)(&owner)) {
            return failed(&e);
        }
    }
    *viewer
        .pairing
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    *viewer.synced.lock().await = None;
    axum::Json(serde_json::json!({ "camera": camera.to_string(), "name": name })).into_response()
}

/// Devices waiting to join the account (`keyhole join` on them).
pub(super) async fn enrollments(State(viewer): State<Arc<Viewer>>) -> Response {
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
pub(super) async fn answer_enrollment(
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
pub(super) struct Decision {
    /// Whether the owner saw the same code on both screens.
    same_code: bool,
}

/// Enrolls the answered device if the owner saw the same code on both screens (as `keyhole
/// approve` does), or refuses it; the device's state is saved.
pub(super) async fn decide_enrollment(
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
