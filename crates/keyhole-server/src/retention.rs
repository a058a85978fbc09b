//! Retention: the server deletes a camera's objects below the newest retention floor its
//! owner's devices logged (PROTOCOL.md §11.5), and nothing by its own decision. The floor is
//! signed by a device of the owner's roster and checked when it is logged, so what goes is what
//! the owner asked to go, and devices start their reports at the same floor.

use keyhole_core::retention::SignedRetentionFloor;

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

/// Deletes, for every camera with a retention floor, the objects whose sequence is below it.
/// Rows go before blobs, so a crash leaves at worst an orphan blob (reported by `check`).
///
/// Servers sharing a database take turns: `None` if another one is sweeping.
///
/// # Errors
/// If the stores fail.
pub async fn sweep(state: &AppState) -> Result<Option<Swept>, StoreError> {
    let Some(_turn) = state.meta.try_lock("retention").await? else {
        return Ok(None);
    };
    let mut swept = Swept::default();
    for (camera_id, body) in state.meta.retention_floors().await? {
        // Checked when it was logged; read again only for its floor.
        let Ok(floor) = SignedRetentionFloor::decode(&body) else {
            tracing::error!(
                camera = hex::encode(camera_id),
                "a stored retention floor does not decode"
            );
            continue;
        };
        let keep_from = i64::try_from(floor.unverified_body().keep_from).unwrap_or(i64::MAX);
        let mut deleted = Swept::default();
        loop {
            let below: Vec<_> = state
                .meta
                .objects(&camera_id, 0, i64::MIN..i64::MAX, BATCH)
                .await?
                .into_iter()
                .take_while(|row| row.sequence < keep_from)
                .collect();
            if below.is_empty() {
                break;
            }
            for row in &below {
                if state.meta.delete_object(&row.object_id).await? {
                    if let Err(e) = state.blobs.delete(&row.object_id).await {
                        tracing::warn!(error = %e, object = hex::encode(row.object_id), "could not delete a blob");
                    }
                    deleted.objects += 1;
                    deleted.bytes += row.size;
                }
            }
        }
        if deleted.objects > 0 {
            if let Some(camera) = state.meta.camera(&camera_id).await? {
                let detail = format!(
                    "camera {}: {} objects ({} bytes) before sequence {keep_from}, as its retention \
                     floor version {} says",
                    hex::encode(camera_id),
                    deleted.objects,
                    deleted.bytes,
                    floor.unverified_body().version
                );
                audit::record(state, &camera.account_id, "server", "retention", &detail).await;
            }
            crate::metrics::Metrics::add(&state.metrics.retention_deleted, deleted.objects);
            swept.objects += deleted.objects;
            swept.bytes += deleted.bytes;
        }
    }
    Ok(Some(swept))
}
