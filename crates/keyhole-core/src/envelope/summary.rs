//! The object summary (PROTOCOL.md §7.12): the 332 bytes of a sealed object that its place in
//! the camera's chain depends on, so a device can verify a listing without the video.

use super::open::{Layout, OpenedObject, SignedHeader};
use super::{ObjectDigest, OpenError, PREFIX_LEN, TRAILER_LEN, object_digest};
use crate::codec::DecodeError;
use crate::keys::CameraPublicKey;

/// Bytes of an encoded summary: prefix, payload digest, trailer.
pub const SUMMARY_LEN: usize = PREFIX_LEN + 32 + TRAILER_LEN;

/// `header ‖ header signature ‖ payload digest ‖ trailer` of one sealed object. The server
/// records it when an upload verifies and lists it; a device checks it with
/// [`ObjectSummary::verify`]. It says nothing about whether the stored chunks still match the
/// payload digest: that is checked when the object is opened.
#[derive(Clone, PartialEq, Eq)]
pub struct ObjectSummary([u8; SUMMARY_LEN]);

impl std::fmt::Debug for ObjectSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ObjectSummary")
            .field(&hex_prefix(&self.0))
            .finish()
    }
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

/// A summary whose signatures verified: the object as the camera sealed it, except that its
/// chunks were not seen.
#[derive(Debug, Clone)]
pub struct VerifiedSummary {
    /// The signed header, to unwrap the clip key with ([`super::Opener::from_signed`]).
    pub signed: SignedHeader,
    /// What a full opening would also report: header, object digest, chunk count, plaintext
    /// length.
    pub object: OpenedObject,
    /// The digest the camera signed over the chunk ciphertexts.
    pub payload_digest: [u8; 32],
}

impl ObjectSummary {
    /// Assembles a summary from its parts.
    #[must_use]
    pub fn new(
        prefix: &[u8; PREFIX_LEN],
        payload_digest: &[u8; 32],
        trailer: &[u8; TRAILER_LEN],
    ) -> Self {
        let mut b = [0u8; SUMMARY_LEN];
        b[..PREFIX_LEN].copy_from_slice(prefix);
        b[PREFIX_LEN..PREFIX_LEN + 32].copy_from_slice(payload_digest);
        b[PREFIX_LEN + 32..].copy_from_slice(trailer);
        Self(b)
    }

    /// Decodes exactly [`SUMMARY_LEN`] bytes.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] or [`DecodeError::TrailingBytes`].
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        if bytes.len() > SUMMARY_LEN {
            return Err(DecodeError::TrailingBytes(bytes.len() - SUMMARY_LEN));
        }
        bytes
            .try_into()
            .map(Self)
            .map_err(|_| DecodeError::Truncated("object summary"))
    }

    /// The encoded bytes.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8; SUMMARY_LEN] {
        &self.0
    }

    /// The object's first [`PREFIX_LEN`] bytes.
    #[must_use]
    pub fn prefix(&self) -> &[u8] {
        &self.0[..PREFIX_LEN]
    }

    /// The payload digest as recorded (not verified).
    #[must_use]
    pub fn payload_digest(&self) -> [u8; 32] {
        let mut d = [0u8; 32];
        d.copy_from_slice(&self.0[PREFIX_LEN..PREFIX_LEN + 32]);
        d
    }

    fn trailer(&self) -> [u8; TRAILER_LEN] {
        let mut t = [0u8; TRAILER_LEN];
        t.copy_from_slice(&self.0[PREFIX_LEN + 32..]);
        t
    }

    /// The object digest these bytes name (PROTOCOL.md §7.8), verified or not.
    #[must_use]
    pub fn digest(&self) -> ObjectDigest {
        let mut header_sig = [0u8; super::SIGNATURE_LEN];
        header_sig.copy_from_slice(&self.0[super::HEADER_LEN..PREFIX_LEN]);
        let mut header = [0u8; super::HEADER_LEN];
        header.copy_from_slice(&self.0[..super::HEADER_LEN]);
        object_digest(
            &header,
            &header_sig,
            &self.payload_digest(),
            &self.trailer(),
        )
    }

    /// Checks the header signature under `camera_key`, that `sealed_len` is a possible length
    /// for the header's chunk size, and the trailer signature over the header, the payload
    /// digest and the chunk count that length implies.
    ///
    /// # Errors
    /// [`OpenError::Malformed`]; [`super::Tamper::HeaderSignature`],
    /// [`super::Tamper::Length`] or [`super::Tamper::TrailerSignature`].
    pub fn verify(
        &self,
        sealed_len: u64,
        camera_key: &CameraPublicKey,
    ) -> Result<VerifiedSummary, OpenError> {
        let signed = SignedHeader::verify(self.prefix(), camera_key)?;
        let layout = Layout::new(signed.header(), sealed_len)?;
        let payload_digest = self.payload_digest();
        let digest = signed.check_trailer(&payload_digest, layout.chunks(), self.trailer())?;
        Ok(VerifiedSummary {
            object: OpenedObject {
                header: signed.header().clone(),
                digest,
                chunks: layout.chunks(),
                plaintext_len: layout.plaintext_len(),
            },
            signed,
            payload_digest,
        })
    }
}

/// The BLAKE3 digest of each chunk's ciphertext (tag included) of an object whose trailer
/// verified: what a player binds later range reads to, since chunk tags alone show only that
/// some holder of the clip key made a chunk (PROTOCOL.md §7.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkDigests(Vec<[u8; 32]>);

impl ChunkDigests {
    /// Number of chunks.
    #[must_use]
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none (never so for a whole object).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `sealed_chunk` is chunk `index` as it was verified.
    #[must_use]
    pub fn matches(&self, index: u64, sealed_chunk: &[u8]) -> bool {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.0.get(i))
            .is_some_and(|d| *d == digest_chunk(sealed_chunk))
    }

    /// The digest of chunk `index`, if there is one.
    #[must_use]
    pub fn get(&self, index: u64) -> Option<&[u8; 32]> {
        usize::try_from(index).ok().and_then(|i| self.0.get(i))
    }
}

/// The digest [`ChunkDigests`] keeps for one chunk ciphertext.
#[must_use]
pub fn digest_chunk(sealed_chunk: &[u8]) -> [u8; 32] {
    *blake3::hash(sealed_chunk).as_bytes()
}

/// Cuts the bytes after an object's prefix into chunk ciphertexts as they stream past and
/// digests each one; the last [`TRAILER_LEN`] bytes are the trailer, not a chunk.
#[derive(Debug)]
pub struct ChunkDigester {
    chunk_ct: usize,
    pending: Vec<u8>,
    digests: Vec<[u8; 32]>,
}

impl ChunkDigester {
    /// For an object with `header`'s chunk size.
    #[must_use]
    pub fn new(header: &super::Header) -> Self {
        let chunk_ct = header.chunk_size() + super::TAG_LEN;
        Self {
            chunk_ct,
            pending: Vec::with_capacity(chunk_ct + TRAILER_LEN),
            digests: Vec::new(),
        }
    }

    /// Feeds the next bytes after the prefix.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let room = self.chunk_ct + TRAILER_LEN - self.pending.len();
            let take = room.min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            // A whole chunk with more after it cannot be the final chunk plus trailer's tail.
            if self.pending.len() == self.chunk_ct + TRAILER_LEN && !data.is_empty() {
                self.digests
                    .push(digest_chunk(&self.pending[..self.chunk_ct]));
                self.pending.drain(..self.chunk_ct);
            }
        }
    }

    /// The digests, once everything after the prefix was fed: what is held back, less the
    /// trailer, is the final chunk (possibly a whole one).
    #[must_use]
    pub fn finish(mut self) -> ChunkDigests {
        // `update` holds back at most one chunk and the trailer.
        let end = self.pending.len().saturating_sub(TRAILER_LEN);
        self.digests.push(digest_chunk(&self.pending[..end]));
        ChunkDigests(self.digests)
    }
}
