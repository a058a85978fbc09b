//! Signed records: the roster, camera records, key packages and the recovery backup. Rosters and
//! camera records are written through the account log (`log.rs`). The server checks each against
//! the roster in force — the account's stored roster chain, followed from version 1 under the
//! account key — so a statement signed by a revoked or unknown device is refused early; clients
//! never rely on that and verify everything themselves.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyhole_core::AccountPublicKey;
use keyhole_core::key_package::{KeyPackage, RecipientKey};
use keyhole_core::record::SignedCameraRecord;
use keyhole_core::recovery::RecoveryBackup;
use keyhole_core::roster::{Roster, SignedRoster};
use serde::{Deserialize, Serialize};

use super::extract::QueryParams;
use super::proof::Proven;
use super::{as_i64, id16, octets};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::{AccountId, Subject};
use crate::{AppState, audit};

/// The account key, from the account's first roster.
pub(super) async fn account_key(
    state: &AppState,
    account: &AccountId,
) -> Result<AccountPublicKey, ApiError> {
    let first = state.meta.roster(account, Some(1)).await?.ok_or_else(|| {
        ApiError::Conflict("the account has no roster yet; upload version 1 first".into())
    })?;
    let roster = SignedRoster::decode(&first)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored roster: {e}")))?;
    Ok(roster.unverified_body().account)
}

/// The account's roster in force: its newest stored roster, reached by following the stored
/// chain from version 1 under the account key (`None` before the account has a roster).
pub(super) async fn roster_in_force(
    state: &AppState,
    account: &AccountId,
) -> Result<Option<Roster>, ApiError> {
    let stored = |e: keyhole_core::roster::RosterError| {
        ApiError::Internal(anyhow::anyhow!("stored roster chain: {e}"))
    };
    let Some(latest) = state.meta.roster(account, None).await? else {
        return Ok(None);
    };
    let latest = SignedRoster::decode(&latest).map_err(|e| stored(e.into()))?;
    let newest = latest.unverified_body().version;
    let mut roster: Option<Roster> = None;
    for version in 1..newest {
        let bytes = state
            .meta
            .roster(account, Some(as_i64(version, "version")?))
            .await?
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("roster {version} is missing")))?;
        let signed = SignedRoster::decode(&bytes).map_err(|e| stored(e.into()))?;
        roster = Some(
            match roster {
                None => signed.verify_first(&latest.unverified_body().account),
                Some(held) => held.accept(signed),
            }
            .map_err(stored)?,
        );
    }
    let account_key = latest.unverified_body().account;
    Ok(Some(
        match roster {
            None => latest.verify_first(&account_key),
            Some(held) => held.accept(latest),
        }
        .map_err(stored)?,
    ))
}

/// The roster in force, for a statement that needs one (anything after the first roster).
pub(super) fn required(in_force: Option<&Roster>) -> Result<&Roster, ApiError> {
    in_force.ok_or_else(|| ApiError::Conflict("the account has no roster yet".into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct VersionQuery {
    pub(super) version: Option<u64>,
}

/// Checks a roster offered for the log: version 1 signed by its own account key (it starts an
/// account), any later one the successor of the roster in force, signed by the account key or a
/// device that roster lists. Returns its version and the audit line.
pub(super) fn check_roster(
    in_force: Option<&Roster>,
    body: &[u8],
) -> Result<(u64, String), ApiError> {
    let roster =
        SignedRoster::decode(body).map_err(|e| ApiError::bad(format!("not a roster: {e}")))?;
    let version = roster.unverified_body().version;
    let devices = roster.unverified_body().devices.len();
    match in_force {
        None => {
            let key = roster.unverified_body().account;
            roster.verify_first(&key)
        }
        Some(held) => held.accept(roster),
    }
    .map_err(|e| ApiError::bad(format!("roster refused: {e}")))?;
    Ok((
        version,
        format!("roster version {version} ({devices} devices)"),
    ))
}

/// `GET /v1/roster[?version=n]`: the caller's account's roster, for its devices (also those
/// joining or recovering, which follow the chain from version 1).
pub(super) async fn roster(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<VersionQuery>,
) -> Result<Response, ApiError> {
    caller.joining()?;
    let version = q.version.map(|v| as_i64(v, "version")).transpose()?;
    let body = state
        .meta
        .roster(&caller.0.account_id, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(octets(body))
}

/// The caller may see this camera: a device of its account, or the camera itself.
async fn camera_for(
    state: &AppState,
    caller: &Caller,
    camera_id: &[u8; 16],
) -> Result<crate::store::CameraRow, ApiError> {
    let camera = state
        .meta
        .camera(camera_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let allowed = camera.account_id == caller.0.account_id
        && match caller.0.subject {
            Subject::Device(_) => true,
            Subject::Camera(id) => id == *camera_id,
        };
    if !allowed {
        return Err(ApiError::NotFound);
    }
    Ok(camera)
}

/// Checks a camera record offered for the log: for a camera of the caller's account, naming the
/// key the camera registered, signed by a device of `in_force`, the roster in force (or the
/// account key). Returns its version and the audit line.
pub(super) async fn check_camera_record(
    state: &AppState,
    caller: &Caller,
    in_force: Option<&Roster>,
    camera_id: [u8; 16],
    body: &[u8],
) -> Result<(u64, String), ApiError> {
    let camera = camera_for(state, caller, &camera_id).await?;
    let record = SignedCameraRecord::decode(body)
        .map_err(|e| ApiError::bad(format!("not a camera record: {e}")))?;
    if record.unverified_body().camera_key.to_bytes() != camera.camera_key {
        return Err(ApiError::bad(
            "the record names a camera key other than the one the camera registered",
        ));
    }
    let version = record.unverified_body().version;
    let epoch = record.unverified_body().epoch;
    record
        .verify_first(required(in_force)?, &keyhole_core::CameraId(camera_id))
        .map_err(|e| ApiError::bad(format!("camera record refused: {e}")))?;
    let detail = format!(
        "camera {} record version {version}, epoch {epoch}",
        hex::encode(camera_id)
    );
    Ok((version, detail))
}

/// `GET /v1/cameras/{camera id}/roster[?version=n]`: the roster of the camera's owner, for
/// whoever may view the camera: the camera itself (it follows the chain to know which devices'
/// records count), the owner's devices and the devices of accounts it is shared with (their
/// records are checked against it).
pub(super) async fn camera_roster(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera_id): Path<String>,
    QueryParams(q): QueryParams<VersionQuery>,
) -> Result<Response, ApiError> {
    let camera_id = id16(&camera_id, "camera id")?;
    let camera = super::shares::viewable(&state, &caller, &camera_id).await?;
    let version = q.version.map(|v| as_i64(v, "version")).transpose()?;
    let body = state
        .meta
        .roster(&camera.account_id, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(octets(body))
}

pub(super) async fn camera_record(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera_id): Path<String>,
    QueryParams(q): QueryParams<VersionQuery>,
) -> Result<Response, ApiError> {
    let camera_id = id16(&camera_id, "camera id")?;
    super::shares::viewable(&state, &caller, &camera_id).await?;
    let version = q.version.map(|v| as_i64(v, "version")).transpose()?;
    let body = state
        .meta
        .camera_record(&camera_id, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(octets(body))
}

pub(super) async fn put_key_package(
    State(state): State<AppState>,
    proven: Proven,
) -> Result<StatusCode, ApiError> {
    let (caller, body) = (&proven.caller, &proven.body);
    let account = caller.0.account_id;
    let pkg =
        KeyPackage::decode(body).map_err(|e| ApiError::bad(format!("not a key package: {e}")))?;
    let key = account_key(&state, &account).await?;
    if pkg.owner != key {
        return Err(ApiError::bad("key package is not from this account"));
    }
    camera_for(&state, caller, &pkg.camera_id.0).await?;
    // Sealed to this account, or to a member the camera is shared with: stored as that
    // account's, where its devices find it.
    let holder = if pkg.recipient.account == key {
        account
    } else {
        let member = state
            .meta
            .account_by_key(&pkg.recipient.account.to_bytes())
            .await?
            .ok_or_else(|| ApiError::bad("key package is for an unknown account"))?;
        if !state
            .meta
            .share_member(&pkg.camera_id.0, &member, crate::now_ms())
            .await?
        {
            return Err(ApiError::bad(
                "key package is for an account this camera is not shared with",
            ));
        }
        member
    };
    let recipient: Vec<u8> = match pkg.recipient.key {
        RecipientKey::Device(id) => id.0.to_vec(),
        RecipientKey::Recovery => Vec::new(),
    };
    let epoch = i64::from(pkg.epoch);
    // A package is its sealer's to replace while the roster lists it: another device (one
    // turned against the account, or a stolen token's holder with a device key) cannot swap a
    // good package for one nobody can open.
    if let Some(Some(sealer)) = state
        .meta
        .key_package_sealer(&holder, &pkg.camera_id.0, epoch, &recipient)
        .await?
        && let Ok(sealer) = <[u8; 16]>::try_from(sealer.as_slice())
        && sealer != proven.device
        && proven
            .roster
            .device(&keyhole_core::DeviceId(sealer))
            .is_some()
    {
        return Err(ApiError::Conflict(format!(
            "this key package was sealed by device {}, which alone may replace it",
            hex::encode(sealer)
        )));
    }
    state
        .meta
        .put_key_package(
            &holder,
            &pkg.camera_id.0,
            epoch,
            &recipient,
            body,
            &proven.device,
        )
        .await?;
    let to = if recipient.is_empty() {
        "the recovery key".to_owned()
    } else {
        format!("device {}", hex::encode(&recipient))
    };
    let detail = format!(
        "viewing key of camera {} epoch {} sealed to {to}",
        pkg.camera_id, pkg.epoch
    );
    audit::record(
        &state,
        &account,
        &audit::actor(caller),
        "key-package",
        &detail,
    )
    .await;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RecipientQuery {
    /// A device id, or `recovery`; defaults to the calling device.
    recipient: Option<String>,
}

#[derive(Serialize)]
pub(super) struct KeyPackages {
    /// Each package's bytes, base64.
    packages: Vec<String>,
}

pub(super) async fn key_packages(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<RecipientQuery>,
) -> Result<Json<KeyPackages>, ApiError> {
    let device = caller.device()?;
    let recipient: Vec<u8> = match q.recipient.as_deref() {
        None => device.to_vec(),
        Some("recovery") => Vec::new(),
        Some(id) => id16(id, "recipient")?.to_vec(),
    };
    let bodies = state
        .meta
        .key_packages(&caller.0.account_id, &recipient)
        .await?;
    Ok(Json(KeyPackages {
        packages: bodies.iter().map(|b| STANDARD.encode(b)).collect(),
    }))
}

pub(super) async fn put_backup(
    State(state): State<AppState>,
    proven: Proven,
) -> Result<StatusCode, ApiError> {
    let (caller, body) = (&proven.caller, &proven.body);
    let backup = RecoveryBackup::decode(body)
        .map_err(|e| ApiError::bad(format!("not a recovery backup: {e}")))?;
    if backup.account != account_key(&state, &caller.0.account_id).await? {
        return Err(ApiError::bad("recovery backup is for another account key"));
    }
    state
        .meta
        .put_recovery_backup(&caller.0.account_id, body)
        .await?;
    audit::record(
        &state,
        &caller.0.account_id,
        &audit::actor(caller),
        "recovery-backup",
        "recovery backup replaced",
    )
    .await;
    Ok(StatusCode::CREATED)
}

pub(super) async fn backup(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    // Recovery reads it before its device is enrolled.
    caller.joining()?;
    let body = state
        .meta
        .recovery_backup(&caller.0.account_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(octets(body))
}
