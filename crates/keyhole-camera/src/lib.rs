//! Keyhole's camera agent: captures video, seals it to the viewing key of a camera record the
//! owner signed, keeps it in a durable spool and uploads it. It holds its own signing key and no
//! key that opens video.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod agent;
pub mod config;
pub mod footage;
pub mod in_step;
pub mod live;
pub mod live_gate;
pub mod live_mux;
pub mod recorder;
pub mod rtsp;
pub mod run;
pub mod segmenter;
pub mod sound;
pub mod source;
pub mod spool;
pub mod store;
pub mod talk;
pub mod upload;
pub mod video;

pub use agent::{Agent, AgentError, AgentSettings, Status};
pub use keyhole_core as core;

/// The wall clock as a protocol timestamp.
#[must_use]
pub fn now() -> core::Timestamp {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    core::Timestamp(ms)
}
