//! The per-account audit log: who changed what about keys, devices and cameras, and when.
//! Entries are written after the change succeeds; a failure to write one is logged.

use crate::auth::Caller;
use crate::store::{AccountId, Subject};
use crate::{AppState, now_ms};

/// How a caller is named in the log.
#[must_use]
pub fn actor(caller: &Caller) -> String {
    match caller.0.subject {
        Subject::Device(id) => format!("device:{}", hex::encode(id)),
        Subject::Camera(id) => format!("camera:{}", hex::encode(id)),
    }
}

/// Appends an entry.
pub async fn record(
    state: &AppState,
    account: &AccountId,
    actor: &str,
    action: &str,
    detail: &str,
) {
    if let Err(e) = state
        .meta
        .audit(account, now_ms(), actor, action, detail)
        .await
    {
        tracing::error!(error = %e, action, "could not write the audit log");
    }
}
