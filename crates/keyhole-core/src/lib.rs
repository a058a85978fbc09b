//! Keyhole's sealed-video protocol.
//!
//! This crate owns every byte format that crosses a trust boundary: identities and keys, the
//! signed roster of enrolled devices, signed camera records, key packages, the clip / event /
//! live envelope, pairing codes and the recovery backup. It performs no I/O: randomness
//! ([`rand_core::CryptoRngCore`]) and time ([`Timestamp`]) are passed in, so every output is
//! reproducible in tests. The formats are specified in `docs/PROTOCOL.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod acceptance;
pub mod at_rest;
pub mod camera_head;
mod chain;
pub mod codec;
pub mod device_proof;
pub mod enrollment;
pub mod envelope;
pub mod event;
pub mod ids;
pub mod key_package;
pub mod keys;
pub mod keystore;
pub mod live;
pub mod live_check;
pub mod live_request;
pub mod log;
pub mod pairing;
pub mod record;
pub mod recovery;
pub mod report;
pub mod retention;
pub mod roster;
pub mod scratch;
pub mod share;
pub mod signer;
pub mod statement;
pub mod talk;
mod wrap;

pub use codec::DecodeError;
pub use ids::{CameraId, DeviceId, ObjectId, Timestamp};
pub use keys::{
    AccountCode, AccountKey, AccountPublicKey, CameraKey, CameraPublicKey, DeviceKeys,
    HpkePublicKey, HpkeSecretKey, Signature,
};
