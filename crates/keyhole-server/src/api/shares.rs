//! Sharing cameras with other accounts (PROTOCOL.md §16). A member account first accepts shares
//! from an owner account (after comparing its account code), in an acceptance statement written
//! through its log; the owner's devices may then read the member's roster and write share
//! statements naming it, through theirs. Members may list, download and watch a shared camera and
//! read its records and share statement; they may not remove it, delete from it, pair, or share it
//! on.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use keyhole_core::CameraId;
use keyhole_core::acceptance::SignedAcceptance;
use keyhole_core::roster::Roster;
use keyhole_core::share::SignedShare;
use serde::Serialize;

use super::extract::QueryParams;
use super::records::{VersionQuery, required};
use super::{as_i64, id16, octets};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::{AccountId, CameraRow, Subject};
use crate::{AppState, now_ms};

/// Whether the caller may view `camera`: a device of its account, the camera itself, or a
/// device of an account its newest share statement lists, unexpired.
pub(super) async fn may_view(
    state: &AppState,
    caller: &Caller,
    camera: &CameraRow,
) -> Result<bool, ApiError> {
    let account = caller.0.account_id;
    Ok(match caller.0.subject {
        Subject::Camera(id) => id == camera.camera_id && account == camera.account_id,
        // A device joining or recovering checks its own account's records before it acts;
        // footage and live view still need an enrolled device (`Caller::device`).
        Subject::Device(_) if !caller.enrolled() => account == camera.account_id,
        Subject::Device(_) => {
            account == camera.account_id
                || state
                    .meta
                    .share_member(&camera.camera_id, &account, now_ms())
                    .await?
        }
    })
}

/// The camera, if the caller may view it (else 404, as for a camera that does not exist).
pub(super) async fn viewable(
    state: &AppState,
    caller: &Caller,
    camera_id: &[u8; 16],
) -> Result<CameraRow, ApiError> {
    let camera = state
        .meta
        .camera(camera_id)
        .await?
        .ok_or(ApiError::NotFound)?;
    if !may_view(state, caller, &camera).await? {
        return Err(ApiError::NotFound);
    }
    Ok(camera)
}

/// The camera named `camera_id` (hex), for a device of the caller's that may view it and while
/// it is not removed (live view, talking back); 404 otherwise.
pub(super) async fn reachable(
    state: &AppState,
    caller: &Caller,
    camera_id: &str,
) -> Result<[u8; 16], ApiError> {
    caller.device()?;
    let camera_id = super::id16(camera_id, "camera id")?;
    if viewable(state, caller, &camera_id)
        .await?
        .removed_at
        .is_some()
    {
        return Err(ApiError::NotFound);
    }
    Ok(camera_id)
}

/// Checks a share statement offered for the log: for a camera of the caller's account, signed
/// by a device of `in_force`, its roster in force, naming only accounts that accept shares from
/// this one. Returns its version, the audit line and the members' accounts with their expiry.
pub(super) async fn check_share(
    state: &AppState,
    caller: &Caller,
    in_force: Option<&Roster>,
    camera_id: [u8; 16],
    body: &[u8],
) -> Result<(u64, String, Vec<(AccountId, Option<i64>)>), ApiError> {
    let owner = caller.0.account_id;
    match state.meta.camera(&camera_id).await? {
        Some(c) if c.account_id == owner => {}
        _ => return Err(ApiError::NotFound),
    }
    let share = SignedShare::decode(body)
        .map_err(|e| ApiError::bad(format!("not a share statement: {e}")))?
        .verify(required(in_force)?, &CameraId(camera_id))
        .map_err(|e| ApiError::bad(format!("share statement refused: {e}")))?;
    let mut members = Vec::with_capacity(share.body().members.len());
    for m in &share.body().members {
        let Some(member) = state.meta.account_by_key(&m.account.to_bytes()).await? else {
            return Err(ApiError::bad(format!(
                "no account here has the key of member {:?}",
                m.name
            )));
        };
        if !state.meta.share_consent(&member, &owner).await? {
            return Err(ApiError::Conflict(format!(
                "member {:?} has not accepted shares from this account",
                m.name
            )));
        }
        let expires = m.expires_at.map(|t| as_i64(t.0, "expiry")).transpose()?;
        members.push((member, expires));
    }
    let version = share.body().version;
    let detail = format!(
        "camera {} shared with {} account(s) (share version {version})",
        hex::encode(camera_id),
        members.len()
    );
    Ok((version, detail, members))
}

#[derive(Serialize)]
pub(super) struct AccountKey {
    account_id: String,
    /// The account key (AIK), hex: its account code is what people compare.
    account_key: String,
}

/// `GET /v1/accounts/{username}/key`: an account's id and key, to compare its code with.
pub(super) async fn key(
    State(state): State<AppState>,
    caller: Caller,
    Path(username): Path<String>,
) -> Result<Json<AccountKey>, ApiError> {
    caller.device()?;
    let account = account_named(&state, &username).await?;
    let key = state
        .meta
        .account_key(&account)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(AccountKey {
        account_id: hex::encode(account),
        account_key: hex::encode(key),
    }))
}

/// An account by username.
async fn account_named(state: &AppState, username: &str) -> Result<AccountId, ApiError> {
    Ok(state
        .meta
        .account_by_username(username)
        .await?
        .ok_or(ApiError::NotFound)?
        .0)
}

/// Checks an acceptance statement offered for the log: signed by a device of `in_force`, the
/// caller's roster in force, naming only accounts of this server. Returns its version, the audit
/// line and the accounts.
pub(super) async fn check_acceptance(
    state: &AppState,
    in_force: Option<&Roster>,
    body: &[u8],
) -> Result<(u64, String, Vec<AccountId>), ApiError> {
    let accepted = SignedAcceptance::decode(body)
        .map_err(|e| ApiError::bad(format!("not an acceptance statement: {e}")))?
        .verify(required(in_force)?)
        .map_err(|e| ApiError::bad(format!("acceptance statement refused: {e}")))?;
    let mut owners = Vec::with_capacity(accepted.body().owners.len());
    for o in &accepted.body().owners {
        let Some(owner) = state.meta.account_by_key(&o.account.to_bytes()).await? else {
            return Err(ApiError::bad(format!(
                "no account here has the key of {:?}",
                o.name
            )));
        };
        owners.push(owner);
    }
    let version = accepted.body().version;
    let names: Vec<&str> = accepted
        .body()
        .owners
        .iter()
        .map(|o| o.name.as_str())
        .collect();
    let detail = format!(
        "accepts shares from {} (acceptance version {version})",
        if names.is_empty() {
            "nobody".to_owned()
        } else {
            names.join(", ")
        }
    );
    Ok((version, detail, owners))
}

/// `GET /v1/acceptance[?version=n]`: the caller's account's acceptance statement.
pub(super) async fn acceptance(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<VersionQuery>,
) -> Result<Response, ApiError> {
    caller.joining()?;
    let version = q.version.map(|v| as_i64(v, "version")).transpose()?;
    let body = state
        .meta
        .acceptance(&caller.0.account_id, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(octets(body))
}

/// `GET /v1/accounts/{username}/roster[?version=n]`: another account's roster, for an account
/// it accepts shares from (to seal viewing keys to its devices).
pub(super) async fn member_roster(
    State(state): State<AppState>,
    caller: Caller,
    Path(member): Path<String>,
    QueryParams(q): QueryParams<VersionQuery>,
) -> Result<Response, ApiError> {
    caller.device()?;
    let member = account_named(&state, &member).await?;
    let owner = caller.0.account_id;
    if member != owner && !state.meta.share_consent(&member, &owner).await? {
        return Err(ApiError::NotFound);
    }
    let version = q.version.map(|v| as_i64(v, "version")).transpose()?;
    let body = state
        .meta
        .roster(&member, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(octets(body))
}

/// `GET /v1/cameras/{camera id}/share[?version=n]`: the camera's share statement, for its
/// owner's devices and its members.
pub(super) async fn share(
    State(state): State<AppState>,
    caller: Caller,
    Path(camera_id): Path<String>,
    QueryParams(q): QueryParams<VersionQuery>,
) -> Result<Response, ApiError> {
    let (camera_id, version) = viewable_version(&state, &caller, &camera_id, &q).await?;
    let body = state
        .meta
        .share(&camera_id, version)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(octets(body))
}

/// For a GET of a camera's versioned statement: the camera, if the caller (a device, also one
/// joining) may view it, and the version asked for (`None`: the newest).
pub(super) async fn viewable_version(
    state: &AppState,
    caller: &Caller,
    camera_id: &str,
    q: &VersionQuery,
) -> Result<([u8; 16], Option<i64>), ApiError> {
    caller.joining()?;
    let camera_id = id16(camera_id, "camera id")?;
    viewable(state, caller, &camera_id).await?;
    let version = q.version.map(|v| as_i64(v, "version")).transpose()?;
    Ok((camera_id, version))
}
