//! Retention: each account may set a maximum age and a maximum total size for its stored
//! objects; a periodic sweep deletes what is past either, oldest first.

use crate::store::StoreError;
use crate::{AppState, audit};

/// What one sweep deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Objects deleted.
    pub objects: u64,
    /// Bytes freed.
    pub bytes: i64,
}

const BATCH: i64 = 500;

/// Deletes, for every account with limits, objects captured before `now - max_age` and then the
/// oldest objects while the account stores more than `max_bytes`. Rows go before blobs, so a
/// crash leaves at worst an orphan blob (reported by `check`).
///
/// Servers sharing a database take turns: `None` if another one is sweeping. (Two sweeps at
/// once would each count the account's bytes before the other's deletions and delete too
/// much.)
///
/// # Errors
/// If the stores fail.
pub async fn sweep(state: &AppState, now: i64) -> Result<Option<Swept>, StoreError> {
    let Some(_turn) = state.meta.try_lock("retention").await? else {
        return Ok(None);
    };
    let mut swept = Swept::default();
    for (account, limits) in state.meta.retention_all().await? {
        let mut total = state.meta.account_bytes(&account).await?;
        let cutoff = limits.max_age_ms.map(|age| now.saturating_sub(age));
        let mut deleted = Swept::default();
        'account: loop {
            let oldest = state.meta.objects_by_age(&account, BATCH).await?;
            if oldest.is_empty() {
                break;
            }
            for row in &oldest {
                let too_old = cutoff.is_some_and(|c| row.captured_at < c);
                let too_big = limits.max_bytes.is_some_and(|m| total > m);
                if !too_old && !too_big {
                    break 'account;
                }
                if state.meta.delete_object(&row.object_id).await? {
                    if let Err(e) = state.blobs.delete(&row.object_id).await {
                        tracing::warn!(error = %e, object = hex::encode(row.object_id), "could not delete a blob");
                    }
                    total -= row.size;
                    deleted.objects += 1;
                    deleted.bytes += row.size;
                }
            }
        }
        if deleted.objects > 0 {
            let detail = format!(
                "{} objects ({} bytes) past the retention limits",
                deleted.objects, deleted.bytes
            );
            audit::record(state, &account, "server", "retention", &detail).await;
            crate::metrics::Metrics::add(&state.metrics.retention_deleted, deleted.objects);
            swept.objects += deleted.objects;
            swept.bytes += deleted.bytes;
        }
    }
    Ok(Some(swept))
}
