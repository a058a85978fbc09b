//! Camera removal (keep or delete footage), the audit log and retention settings.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::extract::QueryParams;
use super::proof::Proven;
use super::{as_i64, id16};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::Retention;
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

#[derive(Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetentionSettings {
    /// Delete objects captured more than this many days ago; absent: no age limit.
    max_age_days: Option<u32>,
    /// Delete the oldest objects beyond this many stored bytes; absent: no size limit.
    max_bytes: Option<u64>,
}

pub(super) async fn set_retention(
    State(state): State<AppState>,
    proven: Proven,
) -> Result<StatusCode, ApiError> {
    let req: RetentionSettings = proven.json()?;
    let caller = &proven.caller;
    if req.max_age_days == Some(0) {
        return Err(ApiError::bad("max_age_days must be at least 1"));
    }
    let r = Retention {
        max_age_ms: req.max_age_days.map(|d| i64::from(d) * 86_400_000),
        max_bytes: req.max_bytes.map(|b| as_i64(b, "max_bytes")).transpose()?,
    };
    state.meta.set_retention(&caller.0.account_id, r).await?;
    let detail = format!(
        "max_age_days {:?}, max_bytes {:?}",
        req.max_age_days, req.max_bytes
    );
    audit::record(
        &state,
        &caller.0.account_id,
        &audit::actor(caller),
        "retention-set",
        &detail,
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
