//! Announcements of stored objects to the devices that follow them (`GET /v1/announcements`,
//! `keyhole_wire::announce`): each stored object is announced as its camera and sequence
//! number, nothing more; devices sync and verify what it leads to.
//!
//! On one server, an upload publishes to every subscriber there. Servers sharing PostgreSQL
//! (`cluster`) publish through NOTIFY instead, and each one, this one included, passes what
//! it hears to its own subscribers: a device is told whichever server its camera reached.

use keyhole_wire::announce::Stored;
use tokio::sync::broadcast;

/// How many announcements a slow subscriber may fall behind before it is told to resync.
const BACKLOG: usize = 1024;

/// What the subscribers here are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// An object was stored.
    Stored(Stored),
    /// Announcements may have been lost (the link to the other servers broke): every
    /// subscriber syncs everything.
    Lost,
}

/// Where stored objects are announced.
#[derive(Debug)]
pub struct Announcer {
    local: broadcast::Sender<Notice>,
}

impl Default for Announcer {
    fn default() -> Self {
        Self {
            local: broadcast::channel(BACKLOG).0,
        }
    }
}

impl Announcer {
    /// Passes `notice` to this server's subscribers.
    pub fn deliver(&self, notice: Notice) {
        // No subscriber is not an error.
        let _ = self.local.send(notice);
    }

    /// A subscription to everything stored from now on (filter by account).
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<Notice> {
        self.local.subscribe()
    }
}
