//! Camera removal (keep or delete footage), the audit log and retention floors.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use keyhole_core::CameraId;
use keyhole_core::retention::SignedRetentionFloor;
use keyhole_core::roster::Roster;
use serde::{Deserialize, Serialize};

use super::extract::QueryParams;
use super::proof::Proven;
use super::records::{VersionQuery, required};
use super::shares::viewable_version;
use super::{as_i64, id16, octets};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::{AppState, audit, now_ms};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RemoveQuery {
    /// `keep` or `delete`; there is no default, the owner chooses.
    footage: String,
}

#[derive(Serialize)]
pub(super) struct Removed {
    camera_id: String,
    footage: &'static str,
    objects_deleted: usize,
    bytes_deleted: i64,
    key_packages_deleted: u64,
    camera_records_deleted: u64,
}

/// Removes a camera. `keep`: its credential is revoked and its footage stays listed and
/// downloadable. `delete`: also its objects, blobs, camera records and key packages go. Either
/// way the camera can be reset and paired again, into this or another account, under a new id.
pub(super) async fn remove(
    State(state): State<AppState>,
    Path(camera_id): Path<String>,
    QueryParams(q): QueryParams<RemoveQuery>,
    proven: Proven,
) -> Result<Json<Removed>, ApiError> {
    let caller = &proven.caller;
    let camera_id = id16(&camera_id, "camera id")?;
    match state.meta.camera(&camera_id).await? {
        Some(c) if c.account_id == caller.0.account_id => {}
        _ => return Err(ApiError::NotFound),
    }
    let mut report = Removed {
        camera_id: hex::encode(camera_id),
        footage: "keep",
        objects_deleted: 0,
        bytes_deleted: 0,
        key_packages_deleted: 0,
        camera_records_deleted: 0,
    };
    state.meta.remove_camera(&camera_id, now_ms()).await?;
    match q.footage.as_str() {
        "keep" => {}
        "delete" => {
            let deleted = state.meta.delete_camera(&camera_id).await?;
            for id in &deleted.objects {
                state.blobs.delete(id).await?;
            }
            report = Removed {
                footage: "delete",
                objects_deleted: deleted.objects.len(),
                bytes_deleted: deleted.bytes,
                key_packages_deleted: deleted.key_packages,
                camera_records_deleted: deleted.camera_records,
                ..report
            };
        }
        _ => return Err(ApiError::bad("footage must be keep or delete")),
    }
    let detail = format!(
        "camera {} removed, footage {} ({} objects deleted)",
        report.camera_id, report.footage, report.objects_deleted
    );
    audit::record(
        &state,
        &caller.0.account_id,
        &audit::actor(caller),
        "camera-removed",
        &detail,
    )
    .await;
    Ok(Json(report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AuditQuery {
    after: Option<u64>,
    limit: Option<u64>,
}

#[derive(Serialize)]
pub(super) struct AuditLine {
    id: i64,
    at: i64,
    actor: String,
    action: String,
    detail: String,
}

pub(super) async fn audit_log(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<AuditQuery>,
) -> Result<Json<Vec<AuditLine>>, ApiError> {
    caller.device()?;
    let limit = as_i64(q.limit.unwrap_or(1000).clamp(1, 1000), "limit")?;
    let entries = state
        .meta
        .audit_log(
            &caller.0.account_id,
            as_i64(q.after.unwrap_or(0), "after")?,
            limit,
        )
        .await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| AuditLine {
                id: e.id,
                at: e.at,
                actor: e.actor,
                action: e.action,
                detail: e.detail,
            })
            .collect(),
    ))
}

/// Checks a retention floor offered for the log (PROTOCOL.md §11.5): for a camera of the
/// caller's account, signed by a device of `in_force`, its roster in force, and not lowering the
/// floor the camera has. Returns its version and the audit line.
pub(super) async fn check_retention(
    state: &AppState,
    caller: &Caller,
    in_force: Option<&Roster>,
    camera_id: [u8; 16],
    body: &[u8],
) -> Result<(u64, String), ApiError> {
    match state.meta.camera(&camera_id).await? {
        Some(c) if c.account_id == caller.0.account_id => {}
        _ => return Err(ApiError::NotFound),
    }
    let floor = SignedRetentionFloor::decode(body)
        .map_err(|e| ApiError::bad(format!("not a retention floor: {e}")))?
        .verify_about(required(in_force)?, &CameraId(camera_id))
        .map_err(|e| ApiError::bad(format!("retention floor refused: {e}")))?;
    let f = floor.body();
    if let Some(held) = state.meta.retention_floor(&camera_id, None).await? {
        let held = SignedRetentionFloor::decode(&held)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored retention floor: {e}")))?;
        if f.keep_from < held.unverified_body().keep_from {
            return Err(ApiError::Conflict(format!(
                "the retention floor would go down from sequence {} to {}",
                held.unverified_body().keep_from,
                f.keep_from
            )));
        }
    }
    let keep = match f.max_age_days {
        0 => "keep everything".to_owned(),
        days => format!("keep {days} days"),
    };
    Ok((
        f.version,
        format!(
            "camera {}: retention floor version {}, objects before sequence {} may go ({keep})",
            hex::encode(camera_id),
            f.version,
            f.keep_from
        ),
    ))
}

/// `GET /v1/cameras/{camera_id}/retention[?version=n]`: the camera's retention floor (its newest,
/// or version `n`), as its owner's device signed it.
pub(super) async fn retention_floor(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera_id): Path<String>,
    QueryParams(q): QueryParams<VersionQuery>,
) -> Result<Response, ApiError> {
    let (camera_id, version) = viewable_version(&state, &caller, &camera_id, &q).await?;
    let body = state
        .meta
        .retention_floor(&camera_id, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(octets(body))
}
