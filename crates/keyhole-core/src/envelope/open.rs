//! Opening: the viewer side of the envelope, streaming or chunk by chunk.

use std::fmt;
use std::ops::Range;

use thiserror::Error;
use zeroize::Zeroizing;

use super::chunk::ChunkCipher;
use super::summary::ObjectSummary;
use super::{
    HEADER_LEN, Header, ObjectDigest, PREFIX_LEN, SIGNATURE_LEN, TAG_LEN, TRAILER_LEN,
    WRAP_AAD_LEN, label, object_digest, trailer_message,
};
use crate::codec::DecodeError;
use crate::keys::{CameraPublicKey, HpkeSecretKey, Signature};
use crate::wrap;

/// What exactly failed to authenticate. Callers that only need "it failed" match
/// [`OpenError::Tampered`]; the verification report shows this reason to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Tamper {
    /// The header signature does not verify under the camera's key.
    #[error("header is not signed by this camera (forged, altered, or another camera's clip)")]
    HeaderSignature,
    /// The clip key does not open with the viewing key for the header's epoch.
    #[error(
        "clip key does not open with the viewing key of epoch {epoch} (altered, or sealed to a key this device does not hold)"
    )]
    KeyUnwrap {
        /// The epoch the header names.
        epoch: u32,
    },
    /// A chunk's AEAD tag failed.
    #[error(
        "chunk {index} failed authentication (altered, reordered, or spliced from another clip)"
    )]
    Chunk {
        /// Zero-based chunk index.
        index: u64,
    },
    /// The object ends without its final chunk.
    #[error("clip is truncated: it stops after {chunks} chunk(s) without the final chunk")]
    Truncated {
        /// Chunks that were present and authentic.
        chunks: u64,
    },
    /// The camera's signature over the ciphertext digest does not verify.
    #[error("the camera's signature over the content does not verify (content or trailer altered)")]
    TrailerSignature,
    /// The object's length cannot be a sealed object with this chunk size.
    #[error("sealed length {len} does not fit the chunk layout (bytes removed or added)")]
    Length {
        /// The length seen.
        len: u64,
    },
}

/// Why an object could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The header does not parse.
    #[error("not a sealed object: {0}")]
    Malformed(DecodeError),
    /// Authentication failed; see [`Tamper`] for what.
    #[error("verification failed: {0}")]
    Tampered(Tamper),
}

crate::codec::malformed_from!(OpenError);

impl From<Tamper> for OpenError {
    fn from(t: Tamper) -> Self {
        Self::Tampered(t)
    }
}

/// A fully verified object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenedObject {
    /// Its header.
    pub header: Header,
    /// Its digest, to check the next object's `previous` link.
    pub digest: ObjectDigest,
    /// Number of chunks.
    pub chunks: u64,
    /// Plaintext bytes.
    pub plaintext_len: u64,
}

/// Where each chunk of a sealed object of known length lies, for seeking with range requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    chunk_size: u64,
    chunks: u64,
    last_ct_len: u64,
    sealed_len: u64,
}

impl Layout {
    /// The layout of a sealed object of `sealed_len` bytes with `header`'s chunk size.
    ///
    /// # Errors
    /// [`Tamper::Length`] if no sealed object has that length.
    pub fn new(header: &Header, sealed_len: u64) -> Result<Self, Tamper> {
        let bad = Tamper::Length { len: sealed_len };
        let payload = sealed_len
            .checked_sub((PREFIX_LEN + TRAILER_LEN) as u64)
            .ok_or(bad)?;
        let chunk_size = header.chunk_size() as u64;
        let ct_chunk = chunk_size + TAG_LEN as u64;
        if payload < TAG_LEN as u64 {
            return Err(bad);
        }
        let chunks = payload.div_ceil(ct_chunk);
        let last_ct_len = payload - (chunks - 1) * ct_chunk;
        if last_ct_len < TAG_LEN as u64 || (last_ct_len == TAG_LEN as u64 && chunks > 1) {
            return Err(bad);
        }
        Ok(Self {
            chunk_size,
            chunks,
            last_ct_len,
            sealed_len,
        })
    }

    /// Number of chunks.
    #[must_use]
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// Plaintext bytes in the object.
    #[must_use]
    pub fn plaintext_len(&self) -> u64 {
        (self.chunks - 1) * self.chunk_size + self.last_ct_len - TAG_LEN as u64
    }

    /// Byte range of chunk `index` within the sealed object (`None` past the end).
    #[must_use]
    pub fn chunk_range(&self, index: u64) -> Option<Range<u64>> {
        if index >= self.chunks {
            return None;
        }
        let start = PREFIX_LEN as u64 + index * (self.chunk_size + TAG_LEN as u64);
        let len = if index + 1 == self.chunks {
            self.last_ct_len
        } else {
            self.chunk_size + TAG_LEN as u64
        };
        Some(start..start + len)
    }

    /// The chunk holding plaintext byte `offset` (`None` past the end).
    #[must_use]
    pub fn chunk_at(&self, offset: u64) -> Option<u64> {
        (offset < self.plaintext_len()).then(|| offset / self.chunk_size)
    }

    /// Byte range of the trailer within the sealed object.
    #[must_use]
    pub fn trailer_range(&self) -> Range<u64> {
        self.sealed_len - TRAILER_LEN as u64..self.sealed_len
    }
}

/// A sealed object's header whose camera signature verified under the camera key of a verified
/// record, kept with the bytes the later checks (trailer signature, object digest) cover.
#[derive(Debug, Clone)]
pub struct SignedHeader {
    header: Header,
    bytes: [u8; HEADER_LEN],
    signature: [u8; SIGNATURE_LEN],
    camera_key: CameraPublicKey,
}

impl SignedHeader {
    /// Checks the header signature in `prefix` (the object's first [`PREFIX_LEN`] bytes; more
    /// are ignored) under `camera_key`.
    ///
    /// # Errors
    /// [`OpenError::Malformed`], or [`Tamper::HeaderSignature`].
    pub fn verify(prefix: &[u8], camera_key: &CameraPublicKey) -> Result<Self, OpenError> {
        let header = Header::decode(prefix)?;
        let bytes = header.encode();
        let signature: [u8; SIGNATURE_LEN] = prefix
            .get(HEADER_LEN..PREFIX_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated("header signature"))?;
        camera_key
            .verify(label::HEADER_SIGNATURE, &[&bytes], &Signature(signature))
            .map_err(|_| Tamper::HeaderSignature)?;
        Ok(Self {
            header,
            bytes,
            signature,
            camera_key: *camera_key,
        })
    }

    /// The authenticated header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Checks the camera's trailer signature over this header, the payload's digest and its
    /// chunk count; returns the object's digest.
    pub(super) fn check_trailer(
        &self,
        payload_digest: &[u8; 32],
        chunks: u64,
        trailer: [u8; TRAILER_LEN],
    ) -> Result<ObjectDigest, OpenError> {
        let msg = trailer_message(&Header::digest(&self.bytes), payload_digest, chunks);
        self.camera_key
            .verify(label::TRAILER_SIGNATURE, &[&msg], &Signature(trailer))
            .map_err(|_| Tamper::TrailerSignature)?;
        Ok(object_digest(
            &self.bytes,
            &self.signature,
            payload_digest,
            &trailer,
        ))
    }
}

/// Verifies a header and recovers its clip key; then opens chunks in any order.
pub struct Opener {
    signed: SignedHeader,
    cipher: ChunkCipher,
}

impl fmt::Debug for Opener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Opener")
            .field("header", &self.signed.header)
            .finish_non_exhaustive()
    }
}

impl Opener {
    /// Checks the header signature under `camera_key` (from the verified camera record) and
    /// unwraps the clip key with `viewing_key` (the key for the header's epoch). `prefix` is the
    /// object's first [`PREFIX_LEN`] bytes; more are ignored.
    ///
    /// # Errors
    /// [`OpenError::Malformed`], or [`OpenError::Tampered`] with
    /// [`Tamper::HeaderSignature`] or [`Tamper::KeyUnwrap`].
    pub fn new(
        prefix: &[u8],
        camera_key: &CameraPublicKey,
        viewing_key: &HpkeSecretKey,
    ) -> Result<Self, OpenError> {
        Self::from_signed(SignedHeader::verify(prefix, camera_key)?, viewing_key)
    }

    /// Unwraps the clip key of a header already verified, with `viewing_key` (the key for the
    /// header's epoch).
    ///
    /// # Errors
    /// [`Tamper::KeyUnwrap`].
    pub fn from_signed(
        signed: SignedHeader,
        viewing_key: &HpkeSecretKey,
    ) -> Result<Self, OpenError> {
        let header = &signed.header;
        let unwrap_failed = Tamper::KeyUnwrap {
            epoch: header.epoch,
        };
        let clip_key = wrap::open(
            viewing_key.bytes(),
            &header.enc,
            label::CLIP_KEY_WRAP,
            &signed.bytes[..WRAP_AAD_LEN],
            &header.wrapped_key,
        )
        .map_err(|_| unwrap_failed)?;
        let clip_key: Zeroizing<[u8; 32]> =
            Zeroizing::new(clip_key.as_slice().try_into().map_err(|_| unwrap_failed)?);
        Ok(Self {
            cipher: ChunkCipher::new(header.suite, &clip_key, Header::digest(&signed.bytes)),
            signed,
        })
    }

    /// The authenticated header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.signed.header
    }

    /// Opens chunk `index` of an object with `layout`, in place: `buf` holds exactly the bytes
    /// of [`Layout::chunk_range`] and is left holding the plaintext. The chunk is authentic
    /// under the camera-signed clip key; the camera's signature over the whole content is
    /// checked only by [`StreamOpener::finish`].
    ///
    /// # Errors
    /// [`Tamper::Chunk`], or [`Tamper::Truncated`] if the final chunk is missing.
    pub fn open_chunk(
        &self,
        layout: &Layout,
        index: u64,
        buf: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        let range = layout.chunk_range(index).ok_or(Tamper::Chunk { index })?;
        if buf.len() as u64 != range.end - range.start {
            return Err(Tamper::Chunk { index }.into());
        }
        let last = index + 1 == layout.chunks;
        let backup = last.then(|| buf.clone());
        match self.cipher.open(index, last, buf) {
            Ok(n) => {
                buf.truncate(n);
                Ok(())
            }
            Err(_) => Err(self.diagnose(index, backup.as_deref()).into()),
        }
    }

    /// Seals `buf` in place as frame `index` under the session key this opener holds, and
    /// appends its tag (what any holder of the viewing key can do; see
    /// [`crate::live::LiveOpener::seal_frame`]).
    pub(crate) fn seal_indexed(&self, index: u64, last: bool, buf: &mut Vec<u8>) {
        let tag = self.cipher.seal(index, last, buf);
        buf.extend_from_slice(&tag);
    }

    /// Opens `buf` (ciphertext ‖ tag) in place as frame `index` (live sessions).
    pub(crate) fn open_indexed(&self, index: u64, last: bool, buf: &mut Vec<u8>) -> bool {
        match self.cipher.open(index, last, buf) {
            Ok(n) => {
                buf.truncate(n);
                true
            }
            Err(_) => false,
        }
    }

    /// After chunk `index` failed as the last chunk, tells truncation (the bytes open as a
    /// non-final chunk) from alteration.
    fn diagnose(&self, index: u64, candidates: Option<&[u8]>) -> Tamper {
        let Some(bytes) = candidates else {
            return Tamper::Chunk { index };
        };
        let opens_as_middle = |b: &[u8]| self.cipher.open(index, false, &mut b.to_vec()).is_ok();
        let trailer_cut = bytes.len() >= TAG_LEN && opens_as_middle(bytes);
        let with_trailer_cut = bytes.len() >= TAG_LEN + TRAILER_LEN
            && opens_as_middle(&bytes[..bytes.len() - TRAILER_LEN]);
        if trailer_cut || with_trailer_cut {
            Tamper::Truncated { chunks: index + 1 }
        } else {
            Tamper::Chunk { index }
        }
    }

    /// Opens the object front to back, verifying everything.
    #[must_use]
    pub fn stream(self) -> StreamOpener {
        StreamOpener {
            pending: Vec::with_capacity(self.header().chunk_size() + TAG_LEN + TRAILER_LEN),
            hasher: blake3::Hasher::new_derive_key(label::PAYLOAD_DIGEST),
            opener: self,
            next_index: 0,
            plaintext_len: 0,
        }
    }
}

/// Opens the bytes after the prefix as they arrive. Plaintext handed out by
/// [`StreamOpener::update`] is authentic chunk by chunk; the object as a whole (no chunk
/// missing at the end, the camera's content signature) is verified only when
/// [`StreamOpener::finish`] succeeds, so callers must not treat output as complete before then.
#[derive(Debug)]
pub struct StreamOpener {
    opener: Opener,
    hasher: blake3::Hasher,
    next_index: u64,
    pending: Vec<u8>,
    plaintext_len: u64,
}

impl StreamOpener {
    fn ct_chunk(&self) -> usize {
        self.opener.header().chunk_size() + TAG_LEN
    }

    /// Opens the non-final chunk at `out[start..]` in place; the caller has hashed it (in
    /// runs of chunks where it can, as the sealer does).
    fn open_tail(&mut self, out: &mut Vec<u8>, start: usize) -> Result<(), OpenError> {
        let index = self.next_index;
        match self.opener.cipher.open(index, false, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                self.plaintext_len += n as u64;
                self.next_index += 1;
                Ok(())
            }
            Err(_) => {
                out.truncate(start);
                Err(Tamper::Chunk { index }.into())
            }
        }
    }

    /// Opens what `data` completes, appending plaintext to `out`. The last chunk and trailer
    /// are held back until [`StreamOpener::finish`].
    ///
    /// # Errors
    /// [`Tamper::Chunk`] at the first chunk that fails.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) -> Result<(), OpenError> {
        let cts = self.ct_chunk();
        let hold = cts + TRAILER_LEN;
        while !self.pending.is_empty() {
            if self.pending.len() + data.len() <= hold {
                self.pending.extend_from_slice(data);
                return Ok(());
            }
            if self.pending.len() < cts {
                let take = cts - self.pending.len();
                self.pending.extend_from_slice(&data[..take]);
                data = &data[take..];
            }
            let start = out.len();
            self.hasher.update(&self.pending[..cts]);
            out.extend_from_slice(&self.pending[..cts]);
            self.pending.drain(..cts);
            self.open_tail(out, start)?;
        }
        let whole = data.len().saturating_sub(hold).div_ceil(cts);
        self.hasher.update(&data[..whole * cts]);
        while data.len() > hold {
            let start = out.len();
            out.extend_from_slice(&data[..cts]);
            data = &data[cts..];
            self.open_tail(out, start)?;
        }
        self.pending.extend_from_slice(data);
        Ok(())
    }

    /// Opens the final chunk and checks the camera's trailer signature.
    ///
    /// # Errors
    /// [`Tamper::Truncated`], [`Tamper::Chunk`], [`Tamper::Length`] or
    /// [`Tamper::TrailerSignature`].
    pub fn finish(mut self, out: &mut Vec<u8>) -> Result<OpenedObject, OpenError> {
        let index = self.next_index;
        let Some(chunk_len) = self
            .pending
            .len()
            .checked_sub(TRAILER_LEN)
            .filter(|n| *n >= TAG_LEN)
        else {
            // Too short for a final chunk and trailer: the object stops after chunk `index - 1`.
            return Err(Tamper::Truncated { chunks: index }.into());
        };
        if chunk_len == TAG_LEN && index > 0 {
            // Only an empty object has an empty final chunk.
            let len = (PREFIX_LEN + self.pending.len()) as u64 + index * self.ct_chunk() as u64;
            return Err(Tamper::Length { len }.into());
        }
        let (chunk, trailer) = self.pending.split_at(chunk_len);
        let trailer: [u8; TRAILER_LEN] =
            trailer.try_into().map_err(|_| Tamper::TrailerSignature)?;
        self.hasher.update(chunk);
        let start = out.len();
        out.extend_from_slice(chunk);
        match self.opener.cipher.open(index, true, &mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                self.plaintext_len += n as u64;
            }
            Err(_) => {
                out.truncate(start);
                return Err(self.opener.diagnose(index, Some(&self.pending)).into());
            }
        }
        let payload_digest: [u8; 32] = *self.hasher.finalize().as_bytes();
        let chunks = index + 1;
        let digest = self
            .opener
            .signed
            .check_trailer(&payload_digest, chunks, trailer)?;
        Ok(OpenedObject {
            digest,
            header: self.opener.signed.header,
            chunks,
            plaintext_len: self.plaintext_len,
        })
    }
}

/// Checks a sealed object's header signature under `camera_key` without opening anything:
/// what a server that holds no viewing key can verify about an upload.
///
/// # Errors
/// [`OpenError::Malformed`], or [`Tamper::HeaderSignature`].
pub fn verify_prefix(prefix: &[u8], camera_key: &CameraPublicKey) -> Result<Header, OpenError> {
    SignedHeader::verify(prefix, camera_key).map(|s| s.header)
}

/// Checks the camera's signatures over a whole sealed object as it streams past, without any
/// viewing key: what a server can verify about an upload. It proves the bytes are exactly what
/// the camera sealed (nothing altered, truncated or appended); it cannot tell whether the
/// chunks decrypt, which only a key holder can check.
#[derive(Debug)]
pub struct ObjectVerifier {
    signed: SignedHeader,
    hasher: blake3::Hasher,
    /// The last [`TRAILER_LEN`] bytes seen, which may be the trailer.
    tail: Vec<u8>,
    payload_len: u64,
}

impl ObjectVerifier {
    /// Checks the header signature in `prefix` (the first [`PREFIX_LEN`] bytes).
    ///
    /// # Errors
    /// As [`verify_prefix`].
    pub fn new(prefix: &[u8], camera_key: &CameraPublicKey) -> Result<Self, OpenError> {
        Ok(Self {
            signed: SignedHeader::verify(prefix, camera_key)?,
            hasher: blake3::Hasher::new_derive_key(label::PAYLOAD_DIGEST),
            tail: Vec::with_capacity(2 * TRAILER_LEN),
            payload_len: 0,
        })
    }

    /// The authenticated header.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.signed.header
    }

    /// Feeds the bytes after the prefix.
    pub fn update(&mut self, data: &[u8]) {
        // Hash everything except the last TRAILER_LEN bytes seen so far.
        if data.len() >= TRAILER_LEN {
            self.hasher.update(&self.tail);
            let (body, tail) = data.split_at(data.len() - TRAILER_LEN);
            self.hasher.update(body);
            self.payload_len += (self.tail.len() + body.len()) as u64;
            self.tail.clear();
            self.tail.extend_from_slice(tail);
        } else {
            self.tail.extend_from_slice(data);
            let spill = self.tail.len().saturating_sub(TRAILER_LEN);
            self.hasher.update(&self.tail[..spill]);
            self.payload_len += spill as u64;
            self.tail.drain(..spill);
        }
    }

    /// Checks the layout and the trailer signature; returns the object digest.
    ///
    /// # Errors
    /// [`Tamper::Length`] or [`Tamper::TrailerSignature`] (also for a truncated object).
    pub fn finish(self) -> Result<ObjectDigest, OpenError> {
        self.finish_summary().map(|(digest, _)| digest)
    }

    /// [`ObjectVerifier::finish`], also returning the object's summary (PROTOCOL.md §7.12),
    /// which is what a server lists so devices can verify the chain without the payload.
    ///
    /// # Errors
    /// As [`ObjectVerifier::finish`].
    pub fn finish_summary(self) -> Result<(ObjectDigest, ObjectSummary), OpenError> {
        let sealed_len = PREFIX_LEN as u64 + self.payload_len + self.tail.len() as u64;
        let trailer: [u8; TRAILER_LEN] = self
            .tail
            .as_slice()
            .try_into()
            .map_err(|_| Tamper::Length { len: sealed_len })?;
        let layout = Layout::new(&self.signed.header, sealed_len)?;
        let payload_digest: [u8; 32] = *self.hasher.finalize().as_bytes();
        let digest = self
            .signed
            .check_trailer(&payload_digest, layout.chunks(), trailer)?;
        let mut prefix = [0u8; PREFIX_LEN];
        prefix[..HEADER_LEN].copy_from_slice(&self.signed.bytes);
        prefix[HEADER_LEN..].copy_from_slice(&self.signed.signature);
        Ok((
            digest,
            ObjectSummary::new(&prefix, &payload_digest, &trailer),
        ))
    }
}

/// Opens and fully verifies a sealed object held in memory.
///
/// # Errors
/// As [`Opener::new`], [`StreamOpener::update`] and [`StreamOpener::finish`].
pub fn open_object(
    sealed: &[u8],
    camera_key: &CameraPublicKey,
    viewing_key: &HpkeSecretKey,
) -> Result<(Vec<u8>, OpenedObject), OpenError> {
    let opener = Opener::new(sealed, camera_key, viewing_key)?;
    let body = sealed.get(PREFIX_LEN..).unwrap_or_default();
    let mut out = Vec::with_capacity(body.len());
    let mut stream = opener.stream();
    stream.update(body, &mut out)?;
    let opened = stream.finish(&mut out)?;
    Ok((out, opened))
}
