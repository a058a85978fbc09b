//! Keyhole's server: an untrusted store and relay for sealed objects. It authenticates
//! accounts, cameras and devices and enforces who may touch what; it never holds a key that
//! opens video and never decides which keys a camera encrypts to.
//!
//! The HTTP API, storage and relay are built on the formats in [`keyhole_core`].
#![forbid(unsafe_code)]

pub use keyhole_core as core;
