//! The account log (PROTOCOL.md §15). Rosters, camera records, share and acceptance statements are
//! written only as log appends: the signed entry and the statement it records in one request,
//! stored in one transaction, accepted only as the next entry after the stored head. Devices read
//! the log, verify it, and post signed statements of the head they hold, which the account's other
//! devices compare to find a server that showed them different histories.
//!
//! The server checks signatures only to refuse garbage early; clients verify everything.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use keyhole_core::log::{ENTRY_LEN, EntryKind, HeadStatement, SignedEntry, statement_hash};
use keyhole_core::roster::SignedRoster;
use keyhole_core::signer::Signer;
use serde::Deserialize;

use super::cameras::check_retention;
use super::extract::QueryParams;
use super::records::{account_key, check_camera_record, check_roster, required, roster_in_force};
use super::shares::{check_acceptance, check_share};
use super::{as_i64, octets, record_body};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::{LogAppend, Logged};
use crate::{AppState, audit};

/// Most entries one read returns.
const MAX_PAGE: u64 = 1000;

/// `POST /v1/log`: an entry (223 bytes) followed by the statement it records.
pub(super) async fn append(
    State(state): State<AppState>,
    caller: Caller,
    super::extract::RecordBody(body): super::extract::RecordBody,
) -> Result<StatusCode, ApiError> {
    caller.joining()?;
    record_body(&state, &body)?;
    let account = caller.0.account_id;
    if body.len() < ENTRY_LEN {
        return Err(ApiError::bad(format!(
            "a log append is a {ENTRY_LEN}-byte entry followed by the statement it records"
        )));
    }
    let (entry_bytes, statement) = body.split_at(ENTRY_LEN);
    let entry = SignedEntry::decode(entry_bytes)
        .map_err(|e| ApiError::bad(format!("not a log entry: {e}")))?;
    let e = entry.unverified_body().clone();
    // A device not enrolled writes only what set-up and recovery need: entry 1 (the account's
    // first roster) or a roster the account key signs.
    if !caller.enrolled()
        && e.sequence != 1
        && !(e.kind == EntryKind::Roster && entry.signer() == Signer::Account)
    {
        return Err(ApiError::NotEnrolled);
    }
    if statement_hash(statement) != e.statement {
        return Err(ApiError::bad(
            "the entry does not record the statement sent with it (hash)",
        ));
    }
    let version = as_i64(e.version, "version")?;
    // Read once: the statement and the entry are both checked against it.
    let in_force = roster_in_force(&state, &account).await?;
    let members;
    let owners;
    let (logged, action, (v, detail)) = match e.kind {
        EntryKind::Roster => (
            Logged::Roster {
                version,
                body: statement,
            },
            "roster",
            check_roster(in_force.as_ref(), statement)?,
        ),
        EntryKind::CameraRecord => (
            Logged::CameraRecord {
                camera_id: e.subject,
                version,
                body: statement,
            },
            "camera-record",
            check_camera_record(&state, &caller, in_force.as_ref(), e.subject, statement).await?,
        ),
        EntryKind::Share => {
            let (v, detail, listed) =
                check_share(&state, &caller, in_force.as_ref(), e.subject, statement).await?;
            members = listed;
            (
                Logged::Share {
                    camera_id: e.subject,
                    version,
                    body: statement,
                    members: &members,
                },
                "share",
                (v, detail),
            )
        }
        EntryKind::Retention => (
            Logged::Retention {
                camera_id: e.subject,
                version,
                body: statement,
            },
            "retention-floor",
            check_retention(&state, &caller, in_force.as_ref(), e.subject, statement).await?,
        ),
        EntryKind::Acceptance => {
            let (v, detail, listed) =
                check_acceptance(&state, in_force.as_ref(), statement).await?;
            owners = listed;
            (
                Logged::Acceptance {
                    version,
                    body: statement,
                    owners: &owners,
                },
                "acceptance",
                (v, detail),
            )
        }
    };
    if v != e.version {
        return Err(ApiError::bad(format!(
            "the entry records version {}, the statement is version {v}",
            e.version
        )));
    }
    // Entry 1 is the account key's (the first roster's, which it carries itself); every later
    // one is signed by the account key or a device of the roster in force before it.
    let key = if e.sequence == 1 {
        if e.kind != EntryKind::Roster || e.version != 1 {
            return Err(ApiError::bad("log entry 1 must record roster version 1"));
        }
        let key = SignedRoster::decode(statement)
            .map_err(|e| ApiError::bad(format!("not a roster: {e}")))?
            .unverified_body()
            .account;
        entry
            .clone()
            .verify_first(&key)
            .map_err(|e| ApiError::bad(format!("log entry refused: {e}")))?;
        key
    } else {
        entry
            .verify_signature(required(in_force.as_ref())?)
            .map_err(|e| ApiError::bad(format!("log entry refused: {e}")))?;
        account_key(&state, &account).await?
    };
    let hash = entry.hash();
    state
        .meta
        .append_log(
            &account,
            &LogAppend {
                sequence: as_i64(e.sequence, "sequence")?,
                previous: e.previous.0,
                hash: hash.0,
                entry: entry.encoded(),
                statement: logged,
                account_key: (e.sequence == 1).then(|| key.to_bytes()),
            },
        )
        .await?;
    tracing::info!(
        account = hex::encode(account),
        sequence = e.sequence,
        "log entry stored"
    );
    let detail = format!("log entry {} by {}: {detail}", e.sequence, entry.signer());
    audit::record(&state, &account, &audit::actor(&caller), action, &detail).await;
    Ok(StatusCode::CREATED)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EntriesQuery {
    /// Entries after this sequence number (default 0: from the first).
    after: Option<u64>,
    /// At most this many (default and maximum 1000).
    limit: Option<u64>,
}

/// `GET /v1/log`: entries after `after`, oldest first, concatenated (each 223 bytes).
pub(super) async fn entries(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(q): QueryParams<EntriesQuery>,
) -> Result<Response, ApiError> {
    // Joining and recovering devices follow the log from entry 1.
    caller.joining()?;
    let after = as_i64(q.after.unwrap_or(0), "after")?;
    let limit = q.limit.unwrap_or(MAX_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad(format!("limit must be 1 to {MAX_PAGE}")));
    }
    let rows = state
        .meta
        .log_entries(&caller.0.account_id, after, as_i64(limit, "limit")?)
        .await?;
    Ok(octets(rows.concat()))
}

/// `PUT /v1/log/heads`: the calling device's signed statement of the head it holds.
pub(super) async fn put_head(
    State(state): State<AppState>,
    caller: Caller,
    super::extract::RecordBody(body): super::extract::RecordBody,
) -> Result<StatusCode, ApiError> {
    let device = caller.device()?;
    let account = caller.0.account_id;
    let offered = HeadStatement::decode_unverified(&body)
        .map_err(|e| ApiError::bad(format!("not a log head statement: {e}")))?;
    if offered.device.0 != device {
        return Err(ApiError::bad("a device posts only its own log head"));
    }
    let roster = state
        .meta
        .roster(&account, None)
        .await?
        .ok_or_else(|| ApiError::Conflict("the account has no roster yet".into()))?;
    let roster = SignedRoster::decode(&roster)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored roster: {e}")))?;
    let signer = roster
        .unverified_body()
        .devices
        .iter()
        .find(|d| d.id.0 == device)
        .map(|d| d.signing_key)
        .ok_or_else(|| ApiError::bad("the account's roster does not list this device"))?;
    HeadStatement::verify(&body, &account_key(&state, &account).await?, &signer)
        .map_err(|e| ApiError::bad(format!("log head refused: {e}")))?;
    state.meta.put_log_head(&account, &device, &body).await?;
    Ok(StatusCode::CREATED)
}

/// `GET /v1/log/heads`: every device's latest head statement, concatenated (each names its
/// own length by its mark count, PROTOCOL.md 15.3).
pub(super) async fn heads(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    caller.device()?;
    let rows = state.meta.log_heads(&caller.0.account_id).await?;
    Ok(octets(rows.concat()))
}
