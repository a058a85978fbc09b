//! Accounts, logins and device credentials.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};

use super::extract::JsonBody;
use super::id16;
use crate::auth::{Caller, hash_password, new_token, verify_password};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::store::{Credential, Subject};
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

pub(super) async fn create(
    State(state): State<AppState>,
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
    if req.password.chars().count() < MIN_PASSWORD || req.password.len() > 1024 {
        return Err(ApiError::bad(format!(
            "password must be {MIN_PASSWORD} to 1024 characters"
        )));
    }
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    let hash = hash_password(req.password).await?;
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
    JsonBody(req): JsonBody<Login>,
) -> Result<Json<LoggedIn>, ApiError> {
    let device = id16(&req.device_id, "device_id")?;
    if !state.logins.allowed(&req.username) {
        Metrics::add(&state.metrics.logins_rate_limited, 1);
        return Err(ApiError::RateLimited);
    }
    let found = state.meta.account_by_username(&req.username).await?;
    let (account, stored) = match found {
        Some((id, hash)) => (Some(id), Some(hash)),
        None => (None, None),
    };
    let ok = verify_password(req.password, stored).await;
    let Some(account_id) = account.filter(|_| ok) else {
        state.logins.failed(&req.username);
        Metrics::add(&state.metrics.logins_failed, 1);
        return Err(ApiError::Unauthorized);
    };
    state.logins.succeeded(&req.username);
    // The password never stands in for an enrolled device: a device the roster lists keeps the
    // credential it has (in its key store). A password login is for a device not enrolled yet
    // — one joining or recovering — and gets only what that needs (`Caller::joining`).
    if crate::auth::listed(&state, &account_id, &device).await? {
        return Err(ApiError::Conflict(format!(
            "device {} is enrolled in this account; the password does not log in an enrolled \
             device (it keeps its own credential). Log in as a new device to join or recover",
            hex::encode(device)
        )));
    }
    let (token, token_hash) = new_token();
    state
        .meta
        .insert_credential(&Credential {
            token_hash,
            account_id,
            subject: Subject::Device(device),
            created_at: now_ms(),
        })
        .await?;
    let actor = format!("device:{}", hex::encode(device));
    audit::record(
        &state,
        &account_id,
        &actor,
        "login",
        "password login issued a credential for joining or recovering",
    )
    .await;
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

/// Revokes every credential of one of the account's devices (after the owner removed it from
/// the roster; the server cannot tell and does not need to).
pub(super) async fn revoke_device(
    State(state): State<AppState>,
    caller: Caller,
    Path(device_id): Path<String>,
) -> Result<Json<Revoked>, ApiError> {
    caller.device()?;
    let device = id16(&device_id, "device id")?;
    let n = state
        .meta
        .revoke_subject(&caller.0.account_id, Subject::Device(device), now_ms())
        .await?;
    let detail = format!("device {device_id}: {n} credential(s) revoked");
    audit::record(
        &state,
        &caller.0.account_id,
        &audit::actor(&caller),
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
