//! Adding a device by approval (PROTOCOL section 14). The server relays four write-once
//! messages between the joining device and an enrolled one; it checks their shapes and who may
//! send which, and can open none of them. The short code the user compares is what makes the
//! exchange safe, not anything here.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use keyhole_core::enrollment::{DeviceGrant, EnrollmentRequest, MAX_REQUEST_LEN, NONCE_LEN};
use rand_core::{OsRng, RngCore};
use serde::Serialize;

use super::id16;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::{EnrollmentRow, EnrollmentStep};
use crate::{AppState, audit, now_ms};

/// How long the user has to compare the code and approve.
const TTL_MS: i64 = 10 * 60 * 1000;
/// Enrollments an account may have waiting at once.
const MAX_OPEN: i64 = 4;

#[derive(Serialize)]
pub(super) struct Created {
    enrollment_id: String,
    expires_at: i64,
}

/// The joining device's request. Its device id must be the caller's: the credential and the
/// keys it asks to enroll belong to the same device.
pub(super) async fn create(
    State(state): State<AppState>,
    caller: Caller,
    super::extract::RecordBody(body): super::extract::RecordBody,
) -> Result<(StatusCode, Json<Created>), ApiError> {
    let device = caller.joining()?;
    if body.len() > MAX_REQUEST_LEN {
        return Err(ApiError::TooLarge(MAX_REQUEST_LEN as u64));
    }
    let request = EnrollmentRequest::decode(&body)
        .map_err(|e| ApiError::bad(format!("not an enrollment request: {e}")))?;
    if request.device_id.0 != device {
        return Err(ApiError::bad(
            "the request names another device than the caller's credential",
        ));
    }
    let mut id = [0u8; 16];
    OsRng.fill_bytes(&mut id);
    let now = now_ms();
    let row = EnrollmentRow {
        enrollment_id: id,
        account_id: caller.0.account_id,
        device_id: device,
        created_at: now,
        expires_at: now.saturating_add(TTL_MS),
        request: body.to_vec(),
        answer: None,
        reveal: None,
        grant: None,
        closed_at: None,
    };
    state.meta.create_enrollment(&row, MAX_OPEN).await?;
    let detail = format!(
        "device {} asked to be enrolled as \"{}\" (enrollment {})",
        request.device_id,
        request.name,
        hex::encode(id)
    );
    audit::record(
        &state,
        &caller.0.account_id,
        &audit::actor(&caller),
        "enrollment-requested",
        &detail,
    )
    .await;
    Ok((
        StatusCode::CREATED,
        Json(Created {
            enrollment_id: hex::encode(id),
            expires_at: row.expires_at,
        }),
    ))
}

#[derive(Serialize)]
pub(super) struct Enrollment {
    enrollment_id: String,
    /// The joining device's id.
    device_id: String,
    created_at: i64,
    expires_at: i64,
    /// Each message as base64, or null until sent.
    request: String,
    answer: Option<String>,
    reveal: Option<String>,
    grant: Option<String>,
    closed: bool,
    /// Past `expires_at`: no step is accepted any more.
    expired: bool,
}

impl Enrollment {
    fn new(row: EnrollmentRow, now: i64) -> Self {
        let b64 = |v: Option<Vec<u8>>| v.map(|b| STANDARD.encode(b));
        Self {
            enrollment_id: hex::encode(row.enrollment_id),
            device_id: hex::encode(row.device_id),
            created_at: row.created_at,
            expires_at: row.expires_at,
            request: STANDARD.encode(&row.request),
            answer: b64(row.answer),
            reveal: b64(row.reveal),
            grant: b64(row.grant),
            closed: row.closed_at.is_some(),
            expired: row.expires_at < now,
        }
    }
}

/// The account's waiting enrollments, for an enrolled device to approve.
pub(super) async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Enrollment>>, ApiError> {
    caller.device()?;
    let now = now_ms();
    let rows = state
        .meta
        .open_enrollments(&caller.0.account_id, now)
        .await?;
    Ok(Json(
        rows.into_iter().map(|r| Enrollment::new(r, now)).collect(),
    ))
}

/// One enrollment, as either device polls it.
pub(super) async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(enrollment_id): Path<String>,
) -> Result<Json<Enrollment>, ApiError> {
    let device = caller.joining()?;
    let id = id16(&enrollment_id, "enrollment id")?;
    let row = state
        .meta
        .enrollment(&caller.0.account_id, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    // A device not enrolled sees only its own request.
    if !caller.enrolled() && row.device_id != device {
        return Err(ApiError::NotFound);
    }
    Ok(Json(Enrollment::new(row, now_ms())))
}

/// Answer and grant come from a device other than the joining one; the reveal from the joining
/// device itself.
pub(super) async fn put_step(
    State(state): State<AppState>,
    caller: Caller,
    Path((enrollment_id, step)): Path<(String, String)>,
    super::extract::RecordBody(body): super::extract::RecordBody,
) -> Result<StatusCode, ApiError> {
    let device = caller.joining()?;
    let id = id16(&enrollment_id, "enrollment id")?;
    let step = match step.as_str() {
        "answer" => EnrollmentStep::Answer,
        "reveal" => EnrollmentStep::Reveal,
        "grant" => EnrollmentStep::Grant,
        _ => return Err(ApiError::NotFound),
    };
    match step {
        EnrollmentStep::Answer | EnrollmentStep::Reveal if body.len() != NONCE_LEN => {
            return Err(ApiError::bad(format!(
                "a nonce is exactly {NONCE_LEN} bytes"
            )));
        }
        EnrollmentStep::Grant => {
            DeviceGrant::decode(&body)
                .map_err(|e| ApiError::bad(format!("not a device grant: {e}")))?;
        }
        _ => {}
    }
    let account = caller.0.account_id;
    let row = state
        .meta
        .enrollment(&account, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let joining = row.device_id == device;
    if joining != (step == EnrollmentStep::Reveal) {
        return Err(ApiError::Forbidden);
    }
    // Only an enrolled device answers and grants.
    if !joining && !caller.enrolled() {
        return Err(ApiError::NotEnrolled);
    }
    state
        .meta
        .set_enrollment_step(&account, &id, step, &body, now_ms())
        .await?;
    if step == EnrollmentStep::Grant {
        let detail = format!(
            "device {} approved (enrollment {enrollment_id})",
            hex::encode(row.device_id)
        );
        audit::record(
            &state,
            &account,
            &audit::actor(&caller),
            "enrollment-approved",
            &detail,
        )
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Either device ends the enrollment: the joining device once it holds the grant, or either
/// one to cancel.
pub(super) async fn close(
    State(state): State<AppState>,
    caller: Caller,
    Path(enrollment_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let device = caller.joining()?;
    let id = id16(&enrollment_id, "enrollment id")?;
    // A device not enrolled closes only its own request.
    if !caller.enrolled() {
        let own = state
            .meta
            .enrollment(&caller.0.account_id, &id)
            .await?
            .is_some_and(|row| row.device_id == device);
        if !own {
            return Err(ApiError::NotFound);
        }
    }
    if state
        .meta
        .close_enrollment(&caller.0.account_id, &id, now_ms())
        .await?
    {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
