//! `keyhole-server check`: verifies that metadata and blobs agree. Every row has its blob with
//! the recorded size, verifying under its camera's key to the recorded summary; every blob has
//! a row.

use futures_util::TryStreamExt;
use keyhole_core::CameraPublicKey;
use keyhole_core::envelope::{ObjectSummary, ObjectVerifier, PREFIX_LEN};

use crate::AppState;

/// What `check` found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Rows checked.
    pub objects: usize,
    /// Rows whose blob is missing.
    pub missing_blobs: Vec<String>,
    /// Rows whose blob has another size or digest.
    pub corrupt_blobs: Vec<String>,
    /// Blobs with no row (for example from a crash between rename and commit).
    pub orphan_blobs: Vec<String>,
}

impl CheckReport {
    /// Whether nothing is wrong.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.missing_blobs.is_empty()
            && self.corrupt_blobs.is_empty()
            && self.orphan_blobs.is_empty()
    }
}

/// Runs the check.
///
/// # Errors
/// If the stores cannot be read.
pub async fn run(state: &AppState) -> anyhow::Result<CheckReport> {
    let rows = state.meta.all_objects().await?;
    let mut report = CheckReport {
        objects: rows.len(),
        ..CheckReport::default()
    };
    for row in &rows {
        let id = hex::encode(row.object_id);
        let Some(size) = state.blobs.size(&row.object_id).await? else {
            report.missing_blobs.push(id);
            continue;
        };
        let intact = size_matches(size, row.size)
            && blob_verifies(state, row).await?.is_some_and(|summary| {
                row.summary.is_empty() || summary.as_bytes()[..] == row.summary[..]
            });
        if !intact {
            report.corrupt_blobs.push(id);
        }
    }
    let known: std::collections::HashSet<[u8; 16]> = rows.iter().map(|r| r.object_id).collect();
    for key in state.blobs.keys().await? {
        if !known.contains(&key) {
            report.orphan_blobs.push(hex::encode(key));
        }
    }
    report.orphan_blobs.sort();
    Ok(report)
}

fn size_matches(blob: u64, row: i64) -> bool {
    i64::try_from(blob).ok() == Some(row)
}

/// Streams a blob through the keyless verifier under its camera's key: its summary if the
/// bytes are exactly what the camera sealed, `None` if not.
async fn blob_verifies(
    state: &AppState,
    row: &crate::store::ObjectRow,
) -> anyhow::Result<Option<ObjectSummary>> {
    let Some(camera) = state.meta.camera(&row.camera_id).await? else {
        return Ok(None);
    };
    let key = CameraPublicKey::from_bytes(&camera.camera_key)?;
    let size = u64::try_from(row.size)?;
    let mut stream = state.blobs.read(&row.object_id, 0..size).await?;
    let mut prefix = Vec::with_capacity(PREFIX_LEN);
    let mut verifier: Option<ObjectVerifier> = None;
    while let Some(chunk) = stream.try_next().await? {
        let mut rest = &chunk[..];
        if verifier.is_none() {
            let take = (PREFIX_LEN - prefix.len()).min(rest.len());
            prefix.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if prefix.len() == PREFIX_LEN {
                match ObjectVerifier::new(&prefix, &key) {
                    Ok(v) => verifier = Some(v),
                    Err(_) => return Ok(None),
                }
            }
        }
        if let Some(v) = verifier.as_mut() {
            v.update(rest);
        }
    }
    Ok(verifier
        .and_then(|v| v.finish_summary().ok())
        .map(|(_, s)| s))
}
