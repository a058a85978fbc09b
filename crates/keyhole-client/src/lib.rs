//! Keyhole's client: the enrolled device. It holds the account and device keys, verifies
//! everything the server sends against the account's signatures, and opens sealed video.
//!
//! This library carries the owner's flows: setting up an account, pairing a camera, and
//! verifying and exporting what a camera recorded. The server is a store it does not trust:
//! every roster, camera record, key package and object is checked before use.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod announcements;
pub mod api;
pub mod enroll;
pub mod index;
pub mod live_stream;
pub mod owner;
mod playback;
pub mod private_file;
pub mod push;
pub mod ui;

mod account_log;
mod browse;
mod heads;
mod retention;
mod share;
mod sync;
pub mod talk;

pub use share::SharedWith;

/// This machine's clock as a [`core::Timestamp`] (0 before 1970).
#[must_use]
pub fn now() -> keyhole_core::Timestamp {
    keyhole_core::Timestamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

pub use browse::EventSpan;
pub use enroll::{Approval, JoinRequest, PendingEnrollment};
pub use keyhole_core as core;
pub use keyhole_wire as wire;
pub use owner::{CameraStatus, Latest, LiveOutcome, Owner};
pub use playback::{ClipReader, MAX_CLIP_READ, Playback};

mod keystore;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server could not be reached or the connection failed.
    #[error("could not reach the server: {0}")]
    Http(#[from] reqwest::Error),
    /// The HTTPS client could not be set up.
    #[error(transparent)]
    Transport(#[from] keyhole_http::TransportError),
    /// The server answered with an error.
    #[error("the server refused: {message} ({status}, {code})")]
    Server {
        /// HTTP status.
        status: u16,
        /// The server's stable error code.
        code: String,
        /// The server's message.
        message: String,
    },
    /// Something the server sent does not verify; the message says what.
    #[error("refused what the server sent: {0}")]
    Untrusted(String),
    /// The server showed this device a different account history than another of the
    /// account's devices verified: changes made since cannot be trusted to be the owner's.
    #[error(
        "the server is showing this account's devices different histories (a forked account \
         log): {0}. Changes since then may not be yours, and this device syncs no more until \
         the server shows every device one history: treat the server as hostile"
    )]
    Forked(String),
    /// A camera's signed head names a newer camera record or device list than the server shows
    /// this device: the server is holding this device's view of the account back.
    #[error(
        "the server is showing this device an old account history: {0}. Changes made on the \
         account's other devices since (a device removed, a new key) are hidden from this one: \
         treat the server as hostile"
    )]
    Stale(String),
    /// The account's roster no longer lists this device: another device (or a recovery with
    /// the account key) removed it.
    #[error(
        "this device is no longer in the account's device list: roster version {version}, \
         signed by {by} at {at} (ms since 1970), removed it. If that was not you or a device \
         you trust, take the account back with the recovery phrase (keyhole recover)"
    )]
    Removed {
        /// The first roster version without this device.
        version: u64,
        /// Who signed it: a device by name and id, or the account key.
        by: String,
        /// When it says it was issued.
        at: u64,
    },
    /// Adding a device by approval did not complete; the message says why.
    #[error("{0}")]
    Enrollment(String),
    /// Writing exported video failed.
    #[error("could not write: {0}")]
    Io(#[from] std::io::Error),
    /// The key store could not be opened.
    #[error(transparent)]
    KeyStore(#[from] keyhole_core::keystore::KeyStoreError),
    /// The device's index could not be used.
    #[error(transparent)]
    Index(#[from] index::IndexError),
    /// The server's announcement channel ended or sent what does not parse.
    #[error("the announcement channel failed: {0}")]
    Announcements(String),
    /// Talking through a camera failed; the message says why.
    #[error("talk-back: {0}")]
    Talk(String),
}
