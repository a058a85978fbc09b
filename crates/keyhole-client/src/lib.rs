//! Keyhole's client: the enrolled device. It holds the account and device keys, verifies
//! everything the server sends against the account's signatures, and opens sealed video.
#![forbid(unsafe_code)]

pub use keyhole_core as core;
