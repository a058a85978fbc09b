//! Keyhole's camera agent: captures video, seals it to the viewing key of a camera record the
//! owner signed, spools it durably and uploads it. It holds its own signing key and no key
//! that opens video.
#![forbid(unsafe_code)]

pub use keyhole_core as core;
