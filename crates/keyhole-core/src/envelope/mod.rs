//! The sealed-object envelope for clips, events and live sessions.
//!
//! A sealed object is `header ‖ header signature ‖ chunk₀ ‖ … ‖ chunkₙ₋₁ ‖ trailer signature`
//! (`docs/PROTOCOL.md`, Envelope):
//!
//! - the **header** names the camera, object, epoch, per-camera sequence number, the previous
//!   object's digest and the capture time, and carries the fresh clip key HPKE-wrapped to the
//!   camera's viewing key for that epoch;
//! - the camera signs the header at once, so a viewer can authenticate the clip key and seek
//!   to any chunk before the whole object has arrived;
//! - the payload is the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár, "Online
//!   Authenticated-Encryption and its Nonce-Reuse Misuse-Resistance", CRYPTO 2015): fixed-size
//!   plaintext chunks, each sealed with AES-256-GCM or ChaCha20-Poly1305 under a key derived
//!   from the clip key, nonce = 88-bit big-endian chunk counter ‖ last-chunk flag byte, and the
//!   header's SHA-256 as associated data. Reordering, truncation and splicing change a nonce or
//!   the associated data, so the tag fails;
//! - the **trailer** is the camera's signature over the header digest, the BLAKE3 digest of
//!   all chunk ciphertexts and the chunk count. It binds the content to the camera even against
//!   a party that holds the clip key (a revoked device working with the server).
//!
//! Sealing and opening are streaming and sans-I/O: callers push bytes in and take bytes out, so
//! a clip is never held in memory whole.

pub(crate) mod chunk;
mod open;
mod seal;
mod summary;

use std::fmt;

use sha2::{Digest, Sha256};

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::ids::{CameraId, ObjectId, Timestamp};

pub use open::{
    Layout, ObjectVerifier, OpenError, OpenedObject, Opener, SignedHeader, StreamOpener, Tamper,
    open_object, verify_prefix,
};
pub use seal::{SealParams, SealSummary, Sealer, seal_object, sealed_len};
pub use summary::{
    ChunkDigester, ChunkDigests, ObjectSummary, SUMMARY_LEN, VerifiedSummary, digest_chunk,
};

const MAGIC: &[u8; 4] = b"KHSO";
const FORMAT: u8 = 1;
/// Bytes in an encoded header.
pub const HEADER_LEN: usize = 4 + 1 + 1 + 1 + 1 + 16 + 16 + 4 + 8 + 32 + 8 + 32 + 48;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Bytes before the first chunk: header and header signature.
pub const PREFIX_LEN: usize = HEADER_LEN + SIGNATURE_LEN;
/// Bytes after the last chunk: the trailer signature.
pub const TRAILER_LEN: usize = SIGNATURE_LEN;
/// Bytes each chunk's AEAD tag adds.
pub const TAG_LEN: usize = 16;
/// The header bytes covered by the clip-key wrap's HPKE associated data: everything before it.
const WRAP_AAD_LEN: usize = HEADER_LEN - 32 - 48;
/// Smallest and largest chunk sizes, as powers of two (1 KiB to 16 MiB).
pub const CHUNK_LOG2_RANGE: std::ops::RangeInclusive<u8> = 10..=24;
/// The default chunk size: 64 KiB.
pub const DEFAULT_CHUNK_LOG2: u8 = 16;

/// The AEAD used for the payload. Both are offered because each is fastest somewhere:
/// AES-256-GCM with AES instructions, ChaCha20-Poly1305 without them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Suite {
    /// AES-256-GCM (NIST SP 800-38D).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 8439).
    ChaCha20Poly1305,
}

impl Suite {
    /// The suite's id byte.
    #[must_use]
    pub fn id(self) -> u8 {
        match self {
            Self::Aes256Gcm => 1,
            Self::ChaCha20Poly1305 => 2,
        }
    }

    pub(crate) fn from_id(id: u8) -> Result<Self, DecodeError> {
        match id {
            1 => Ok(Self::Aes256Gcm),
            2 => Ok(Self::ChaCha20Poly1305),
            _ => Err(DecodeError::Invalid("cipher suite")),
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Aes256Gcm => "AES-256-GCM",
            Self::ChaCha20Poly1305 => "ChaCha20-Poly1305",
        })
    }
}

/// What a sealed object holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A recorded video clip (MP4).
    Clip,
    /// Event metadata and its thumbnail ([`crate::event::EventDetails`]).
    Event,
    /// A live session (fMP4 fragments, [`crate::live`]).
    Live,
}

impl ObjectKind {
    /// Its kind id in the header (PROTOCOL.md §7.1).
    #[must_use]
    pub fn id(self) -> u8 {
        match self {
            Self::Clip => 1,
            Self::Event => 2,
            Self::Live => 3,
        }
    }

    fn from_id(id: u8) -> Result<Self, DecodeError> {
        match id {
            1 => Ok(Self::Clip),
            2 => Ok(Self::Event),
            3 => Ok(Self::Live),
            _ => Err(DecodeError::Invalid("object kind")),
        }
    }
}

/// The digest that names a whole sealed object; each object's header carries its
/// predecessor's, chaining a camera's objects together.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ObjectDigest(pub [u8; 32]);

impl fmt::Debug for ObjectDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectDigest({})", hex::encode(self.0))
    }
}

impl fmt::Display for ObjectDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// A sealed object's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Clip, event or live session.
    pub kind: ObjectKind,
    /// Payload AEAD.
    pub suite: Suite,
    /// Plaintext chunk size is `1 << chunk_log2` bytes.
    pub chunk_log2: u8,
    /// The camera that sealed it.
    pub camera_id: CameraId,
    /// This object's id.
    pub object_id: ObjectId,
    /// The viewing-key epoch the clip key is wrapped to.
    pub epoch: u32,
    /// Per-camera counter over clips and events, starting at 1; 0 for live sessions.
    pub sequence: u64,
    /// Digest of the camera's previous clip or event (all zero for the first, and for live).
    pub previous: ObjectDigest,
    /// When capture started, by the camera's clock.
    pub captured_at: Timestamp,
    enc: [u8; 32],
    wrapped_key: [u8; 48],
}

impl Header {
    /// Plaintext bytes per chunk.
    #[must_use]
    pub fn chunk_size(&self) -> usize {
        1usize << self.chunk_log2
    }

    /// The encoded header.
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut w = Writer::with_capacity(HEADER_LEN);
        w.bytes(MAGIC)
            .u8(FORMAT)
            .u8(self.kind.id())
            .u8(self.suite.id())
            .u8(self.chunk_log2);
        w.bytes(&self.camera_id.0)
            .bytes(&self.object_id.0)
            .u32(self.epoch)
            .u64(self.sequence);
        w.bytes(&self.previous.0)
            .u64(self.captured_at.0)
            .bytes(&self.enc)
            .bytes(&self.wrapped_key);
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(w.as_slice());
        out
    }

    /// Parses a header from the first [`HEADER_LEN`] bytes of `bytes` (the rest is ignored, so
    /// this can be called on a prefix of a sealed object).
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are too short or not a header this library reads.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(
            bytes
                .get(..HEADER_LEN)
                .ok_or(DecodeError::Truncated("header"))?,
        );
        expect_magic(&mut r, MAGIC, FORMAT, "sealed object")?;
        let kind = ObjectKind::from_id(r.u8("object kind")?)?;
        let suite = Suite::from_id(r.u8("cipher suite")?)?;
        let chunk_log2 = r.u8("chunk size")?;
        if !CHUNK_LOG2_RANGE.contains(&chunk_log2) {
            return Err(DecodeError::Invalid("chunk size"));
        }
        let header = Self {
            kind,
            suite,
            chunk_log2,
            camera_id: CameraId(r.array("camera id")?),
            object_id: ObjectId(r.array("object id")?),
            epoch: r.u32("epoch")?,
            sequence: r.u64("sequence")?,
            previous: ObjectDigest(r.array("previous digest")?),
            captured_at: Timestamp(r.u64("capture time")?),
            enc: r.array("encapsulated key")?,
            wrapped_key: r.array("wrapped clip key")?,
        };
        r.finish()?;
        Ok(header)
    }

    fn digest(encoded: &[u8; HEADER_LEN]) -> [u8; 32] {
        Sha256::digest(encoded).into()
    }
}

/// Signing contexts and key-derivation labels, one per purpose (`docs/PROTOCOL.md`).
mod label {
    pub const HEADER_SIGNATURE: &str = "keyhole object header v1";
    pub const TRAILER_SIGNATURE: &str = "keyhole object trailer v1";
    pub const CLIP_KEY_WRAP: &[u8] = b"keyhole clip key v1";
    pub const PAYLOAD_KEY: &[u8] = b"keyhole payload key v1";
    pub const PAYLOAD_DIGEST: &str = "keyhole payload digest v1";
    pub const OBJECT_DIGEST: &str = "keyhole object digest v1";
}

/// The digest over a finished object: header, header signature, payload digest and trailer.
fn object_digest(
    header: &[u8; HEADER_LEN],
    header_sig: &[u8; SIGNATURE_LEN],
    payload_digest: &[u8; 32],
    trailer: &[u8; SIGNATURE_LEN],
) -> ObjectDigest {
    let mut h = blake3::Hasher::new_derive_key(label::OBJECT_DIGEST);
    h.update(header)
        .update(header_sig)
        .update(payload_digest)
        .update(trailer);
    ObjectDigest(*h.finalize().as_bytes())
}

/// The message the trailer signature covers.
fn trailer_message(header_digest: &[u8; 32], payload_digest: &[u8; 32], chunks: u64) -> [u8; 72] {
    let mut m = [0u8; 72];
    m[..32].copy_from_slice(header_digest);
    m[32..64].copy_from_slice(payload_digest);
    m[64..].copy_from_slice(&chunks.to_be_bytes());
    m
}
