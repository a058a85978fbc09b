//! Device proofs on requests (PROTOCOL.md §17, API.md "Device proofs"): the challenges the
//! server issues, and the extractor that admits a request only with an enrolled device's
//! signature over it. A bearer token alone never deletes, replaces or revokes anything.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use keyhole_core::DeviceId;
use keyhole_core::device_proof::{DeviceProof, HEADER, ProofError, Request as Signed};
use keyhole_core::roster::Roster;
use rand_core::{OsRng, RngCore};
use serde::Serialize;

use super::records::roster_in_force;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::AccountId;
use crate::{AppState, now_ms};

/// How long a challenge may be answered.
const CHALLENGE_TTL_MS: i64 = 120_000;

#[derive(Serialize)]
pub(super) struct Issued {
    /// 64 hex digits, to sign into one request's proof.
    challenge: String,
    /// How long it may be answered.
    expires_in_ms: i64,
}

/// Issues a challenge to `device` of `account`.
pub(super) async fn issue(
    state: &AppState,
    account: &AccountId,
    device: &[u8; 16],
) -> Result<Json<Issued>, ApiError> {
    let mut challenge = [0u8; 32];
    OsRng.fill_bytes(&mut challenge);
    let now = now_ms();
    state
        .meta
        .create_challenge(&challenge, account, device, now + CHALLENGE_TTL_MS, now)
        .await?;
    Ok(Json(Issued {
        challenge: hex::encode(challenge),
        expires_in_ms: CHALLENGE_TTL_MS,
    }))
}

/// `POST /v1/challenges`: a challenge for the calling enrolled device's next proven request.
pub(super) async fn challenge(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Issued>, ApiError> {
    let device = caller.device()?;
    issue(&state, &caller.0.account_id, &device).await
}

/// Checks `proof` is device `device`'s over `request`, under a challenge issued to it that it
/// has not used, the device listed by the account's roster in force (which is returned).
///
/// # Errors
/// [`ApiError::Proof`] for a missing, used or expired challenge or a signature that does not
/// verify; [`ApiError::NotEnrolled`] for a device the roster does not list.
pub(super) async fn check(
    state: &AppState,
    account: &AccountId,
    device: [u8; 16],
    proof: &DeviceProof,
    request: &Signed<'_>,
) -> Result<Roster, ApiError> {
    if !state
        .meta
        .take_challenge(&proof.challenge.0, account, &device, now_ms())
        .await?
    {
        return Err(ApiError::Proof(
            "the proof's challenge is unknown, already used or expired; ask for a new one".into(),
        ));
    }
    let roster = roster_in_force(state, account)
        .await?
        .ok_or(ApiError::NotEnrolled)?;
    proof
        .verify(&roster, DeviceId(device), request)
        .map_err(|e| match e {
            ProofError::Unlisted(_) => ApiError::NotEnrolled,
            other => ApiError::Proof(other.to_string()),
        })?;
    Ok(roster)
}

/// The proof a request carries in its `keyhole-proof` header.
///
/// # Errors
/// [`ApiError::Proof`] if there is none or it is not one.
pub(super) fn carried(headers: &axum::http::HeaderMap) -> Result<DeviceProof, ApiError> {
    let value = headers.get(HEADER).ok_or_else(|| {
        ApiError::Proof(format!(
            "this request must carry an enrolled device's proof in the {HEADER} header"
        ))
    })?;
    value
        .to_str()
        .ok()
        .and_then(|v| DeviceProof::decode(v).ok())
        .ok_or_else(|| ApiError::Proof(format!("the {HEADER} header is not a device proof")))
}

/// A request an enrolled device signed: its caller, the roster in force that lists it, and the
/// body the signature covers (read whole, up to the record size limit).
pub(super) struct Proven {
    pub(super) caller: Caller,
    pub(super) device: [u8; 16],
    pub(super) roster: Roster,
    pub(super) body: Bytes,
    /// Whether the body was sent as JSON.
    json: bool,
}

impl FromRequest<AppState> for Proven {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let (mut parts, body) = req.into_parts();
        let caller = Caller::from_request_parts(&mut parts, state).await?;
        let device = caller.device()?;
        let proof = carried(&parts.headers)?;
        let json = parts
            .headers
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let limit = state.config.max_record_bytes;
        let body = axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ApiError::TooLarge(limit as u64))?;
        let target = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path(), |p| p.as_str());
        let request = Signed {
            method: parts.method.as_str(),
            target,
            body: &body,
        };
        let roster = check(state, &caller.0.account_id, device, &proof, &request).await?;
        Ok(Self {
            caller,
            device,
            roster,
            body,
            json,
        })
    }
}

impl Proven {
    /// The body as JSON of type `T` (an object, as [`super::extract::JsonBody`] takes).
    ///
    /// # Errors
    /// [`ApiError::UnsupportedMediaType`] if it was not sent as JSON, [`ApiError::BadRequest`]
    /// if it is not a `T`.
    pub(super) fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T, ApiError> {
        if !self.json {
            return Err(ApiError::UnsupportedMediaType);
        }
        let value: serde_json::Value = serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::bad(format!("the body is not JSON: {e}")))?;
        if !value.is_object() {
            return Err(ApiError::bad("the body must be a JSON object"));
        }
        serde_json::from_value(value)
            .map_err(|e| ApiError::bad(format!("the JSON body does not fit: {e}")))
    }
}
