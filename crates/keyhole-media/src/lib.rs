//! Keyhole's video containers: H.264 access units (Annex B in, parameter sets parsed), sound
//! (AAC and Opus), and MP4 files written from and read into them. Everything here parses untrusted bytes (a camera's
//! file source, an RTSP stream, a decrypted clip), so it is bounded, checked and fuzzed, and it
//! does no I/O.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod aac;
pub mod audio;
pub mod h264;
pub mod h265;
pub mod mp4;
pub mod opus;
mod rbsp;

pub use h264::{AccessUnit, Codec, TIMESCALE};
