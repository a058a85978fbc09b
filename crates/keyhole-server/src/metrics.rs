//! Counters for the Prometheus text format at `GET /metrics`. They count requests and bytes;
//! they name no account, camera or object.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Objects committed.
    pub objects_stored: AtomicU64,
    /// Bytes of committed objects.
    pub object_bytes_stored: AtomicU64,
    /// Uploads refused (malformed, altered, too large, interrupted).
    pub uploads_refused: AtomicU64,
    /// Upload retries answered from what was already stored.
    pub uploads_repeated: AtomicU64,
    /// Object downloads (whole or ranged).
    pub downloads: AtomicU64,
    /// Failed password logins.
    pub logins_failed: AtomicU64,
    /// Logins refused by the rate limit.
    pub logins_rate_limited: AtomicU64,
    /// Account creations refused by the rate limit.
    pub accounts_rate_limited: AtomicU64,
    /// Objects deleted by retention.
    pub retention_deleted: AtomicU64,
    /// Pushes a push service accepted.
    pub pushes_sent: AtomicU64,
    /// Pushes that could not be made or were refused.
    pub pushes_failed: AtomicU64,
    /// Push subscriptions forgotten because their push service called them gone.
    pub push_subscriptions_gone: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters in the Prometheus text exposition format.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, c) in [
            (
                "keyhole_objects_stored_total",
                "Sealed objects committed.",
                &self.objects_stored,
            ),
            (
                "keyhole_object_bytes_stored_total",
                "Bytes of sealed objects committed.",
                &self.object_bytes_stored,
            ),
            (
                "keyhole_uploads_refused_total",
                "Uploads refused as malformed, altered, too large or interrupted.",
                &self.uploads_refused,
            ),
            (
                "keyhole_uploads_repeated_total",
                "Upload retries answered from what was already stored.",
                &self.uploads_repeated,
            ),
            (
                "keyhole_downloads_total",
                "Object downloads, whole or ranged.",
                &self.downloads,
            ),
            (
                "keyhole_logins_failed_total",
                "Failed password logins.",
                &self.logins_failed,
            ),
            (
                "keyhole_logins_rate_limited_total",
                "Logins refused by the rate limit.",
                &self.logins_rate_limited,
            ),
            (
                "keyhole_accounts_rate_limited_total",
                "Account creations refused by the rate limit.",
                &self.accounts_rate_limited,
            ),
            (
                "keyhole_retention_deleted_total",
                "Objects deleted by retention.",
                &self.retention_deleted,
            ),
            (
                "keyhole_pushes_sent_total",
                "Pushes a push service accepted.",
                &self.pushes_sent,
            ),
            (
                "keyhole_pushes_failed_total",
                "Pushes that could not be made or that a push service refused.",
                &self.pushes_failed,
            ),
            (
                "keyhole_push_subscriptions_gone_total",
                "Push subscriptions forgotten because their push service called them gone.",
                &self.push_subscriptions_gone,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                c.load(Ordering::Relaxed)
            );
        }
        out
    }
}
