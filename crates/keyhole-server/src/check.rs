//! `keyhole-server check`: verifies that metadata and blobs agree. Every row has its blob with
//! the recorded size and SHA-256; every blob has a row.

use futures_util::TryStreamExt;
use sha2::{Digest, Sha256};

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
        let mut hasher = Sha256::new();
        let mut stream = state.blobs.read(&row.object_id, 0..size).await?;
        while let Some(chunk) = stream.try_next().await? {
            hasher.update(&chunk);
        }
        let digest: [u8; 32] = hasher.finalize().into();
        if i64::try_from(size).ok() != Some(row.size) || digest != row.sha256 {
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
