//! Accounts, logins and device credentials.

use axum::Json;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use keyhole_core::DeviceId;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use super::extract::JsonBody;
use super::id16;
use super::proof::Proven;
use crate::auth::{Caller, new_token};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::password;
use crate::store::{AccountId, Credential, Subject};
use crate::{AppState, audit, now_ms};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewAccount {
    username: String,
    password: String,
}

#[derive(Serialize)]
pub(super) struct AccountCreated {
    account_id: String,
}

const MIN_PASSWORD: usize = 10;

fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        return Err(ApiError::bad(format!(
            "password must be {MIN_PASSWORD} to 1024 characters"
        )));
    }
    Ok(())
}

pub(super) async fn create(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<NewAccount>,
) -> Result<(StatusCode, Json<AccountCreated>), ApiError> {
    let name_ok = (3..=64).contains(&req.username.len())
        && req
            .username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-@".contains(c));
    if !name_ok {
        return Err(ApiError::bad(
            "username must be 3 to 64 letters, digits or . _ - @",
        ));
    }
    check_password(&req.password)?;
    if !crate::auth::account_creation_allowed(&state, &crate::auth::source(peer.ip())).await? {
        Metrics::add(&state.metrics.accounts_rate_limited, 1);
        return Err(ApiError::RateLimited);
    }
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    let hash = password::hash(req.password).await?;
    state
        .meta
        .create_account(id, &req.username, &hash, now_ms())
        .await?;
    tracing::info!(account = hex::encode(id), "account created");
    Ok((
        StatusCode::CREATED,
        Json(AccountCreated {
            account_id: hex::encode(id),
        }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Login {
    username: String,
    password: String,
    /// The device this credential is for (32 hex digits).
    device_id: String,
}

#[derive(Serialize)]
pub(super) struct LoggedIn {
    account_id: String,
    token: String,
}

pub(super) async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    JsonBody(req): JsonBody<Login>,
) -> Result<Json<LoggedIn>, ApiError> {
    let device = id16(&req.device_id, "device_id")?;
    let source = crate::auth::source(peer.ip());
    // Counted before the password is checked: parallel guesses each use up a try.
    if !crate::auth::login_allowed(&state, &req.username, &source).await? {
        Metrics::add(&state.metrics.logins_rate_limited, 1);
        return Err(ApiError::RateLimited);
    }
    let found = state.meta.account_by_username(&req.username).await?;
    let (account, stored) = match found {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    let ok = password::verify(req.password, stored).await;
    let Some(account_id) = account.filter(|_| ok) else {
        Metrics::add(&state.metrics.logins_failed, 1);
        return Err(ApiError::Unauthorized);
    };
    crate::auth::login_succeeded(&state, &req.username, &source).await?;
    // The password never stands in for an enrolled device: a device the roster lists logs in
    // with its own key (`login_device`). A password login is for a device not enrolled yet —
    // one joining or recovering — and gets only what that needs (`Caller::joining`).
    if crate::auth::listed(&state, &account_id, &device).await? {
        return Err(ApiError::Conflict(format!(
            "device {} is enrolled in this account; the password does not log in an enrolled \
             device (it logs in with its own key: keyhole login). Log in as a new device to \
             join or recover",
            hex::encode(device)
        )));
    }
    issue_credential(&state, account_id, device, false).await
}

/// Stores a new credential for `device` of `account`, issued against the device's own key or
/// (for joining and recovery) the password, and says so in the audit log.
async fn issue_credential(
    state: &AppState,
    account_id: AccountId,
    device: [u8; 16],
    by_device_key: bool,
) -> Result<Json<LoggedIn>, ApiError> {
    let (token, token_hash) = new_token();
    state
        .meta
        .insert_credential(&Credential {
            token_hash,
            account_id,
            subject: Subject::Device(device),
            created_at: now_ms(),
            by_device_key,
        })
        .await?;
    let detail = if by_device_key {
        "device-key login issued a credential"
    } else {
        "password login issued a credential for joining or recovering"
    };
    let actor = format!("device:{}", hex::encode(device));
    audit::record(state, &account_id, &actor, "login", detail).await;
    Ok(Json(LoggedIn {
        account_id: hex::encode(account_id),
        token,
    }))
}

pub(super) async fn logout(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<StatusCode, ApiError> {
    caller.joining()?;
    state
        .meta
        .revoke_credential(&caller.0.token_hash, now_ms())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
pub(super) struct Revoked {
    revoked_credentials: u64,
}

/// Revokes every credential of one of the account's devices, once the roster in force no longer
/// lists it (revocation starts with the roster; a listed device's credentials are its own).
pub(super) async fn revoke_device(
    Path(device_id): Path<String>,
    State(state): State<AppState>,
    proven: Proven,
) -> Result<Json<Revoked>, ApiError> {
    let device = id16(&device_id, "device id")?;
    if proven.roster.device(&DeviceId(device)).is_some() {
        return Err(ApiError::Conflict(format!(
            "device {device_id} is in the account's roster; remove it from the roster first"
        )));
    }
    let caller = &proven.caller;
    let n = state
        .meta
        .revoke_subject(&caller.0.account_id, Subject::Device(device), now_ms())
        .await?;
    let detail = format!("device {device_id}: {n} credential(s) revoked");
    audit::record(
        &state,
        &caller.0.account_id,
        &audit::actor(caller),
        "device-revoked",
        &detail,
    )
    .await;
    tracing::info!(
        account = hex::encode(caller.0.account_id),
        device = device_id,
        "device credentials revoked"
    );
    Ok(Json(Revoked {
        revoked_credentials: n,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeviceLogin {
    /// The account's public key (64 hex digits), as the device's key store pins it.
    account: String,
    /// The device (32 hex digits).
    device_id: String,
}

impl DeviceLogin {
    async fn resolve(&self, state: &AppState) -> Result<(AccountId, [u8; 16]), ApiError> {
        let device = id16(&self.device_id, "device_id")?;
        let mut key = [0u8; 32];
        hex::decode_to_slice(&self.account, &mut key)
            .map_err(|_| ApiError::bad("account must be 64 hex digits"))?;
        let account = state
            .meta
            .account_by_key(&key)
            .await?
            .ok_or(ApiError::NotFound)?;
        Ok((account, device))
    }
}

/// `POST /v1/login/challenge`: a challenge for a device the account's roster in force lists, to
/// sign into `POST /v1/login/device`. Unknown accounts and unlisted devices are both "not found".
pub(super) async fn login_challenge(
    State(state): State<AppState>,
    JsonBody(req): JsonBody<DeviceLogin>,
) -> Result<Json<super::proof::Issued>, ApiError> {
    let (account, device) = req.resolve(&state).await?;
    if !crate::auth::listed(&state, &account, &device).await? {
        return Err(ApiError::NotFound);
    }
    super::proof::issue(&state, &account, &device).await
}

/// `POST /v1/login/device`: a credential for an enrolled device, against a fresh challenge
/// signed with the signing key the roster in force lists for it. This is how an enrolled
/// device gets a credential again (after its old one was revoked or lost); the password never
/// gives one.
pub(super) async fn login_device(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    body: axum::body::Body,
) -> Result<Json<LoggedIn>, ApiError> {
    let max = state.config.max_record_bytes;
    let body = axum::body::to_bytes(body, max)
        .await
        .map_err(|_| ApiError::TooLarge(max as u64))?;
    let req: DeviceLogin = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("the JSON body does not fit: {e}")))?;
    let (account_id, device) = req.resolve(&state).await?;
    let proof = super::proof::carried(&headers)?;
    let request = keyhole_core::device_proof::Request {
        method: "POST",
        target: "/v1/login/device",
        body: &body,
    };
    super::proof::check(&state, &account_id, device, &proof, &request).await?;
    issue_credential(&state, account_id, device, true).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewPassword {
    password: String,
}

/// `PUT /v1/password`: replaces the account password (after a revocation, the removed device's
/// holder may know it). Proven by an enrolled device; the old password is not needed, since it
/// alone gives nothing an enrolled device does not already have.
pub(super) async fn set_password(
    State(state): State<AppState>,
    proven: Proven,
) -> Result<StatusCode, ApiError> {
    let req: NewPassword = proven.json()?;
    check_password(&req.password)?;
    let hash = password::hash(req.password).await?;
    let account = proven.caller.0.account_id;
    state.meta.set_password(&account, &hash).await?;
    audit::record(
        &state,
        &account,
        &audit::actor(&proven.caller),
        "password-changed",
        "account password changed",
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}
