//! Sealing: the camera side of the envelope.

use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use super::chunk::ChunkCipher;
use super::{
    CHUNK_LOG2_RANGE, HEADER_LEN, Header, ObjectDigest, ObjectKind, PREFIX_LEN, SIGNATURE_LEN,
    Suite, TAG_LEN, TRAILER_LEN, WRAP_AAD_LEN, label, object_digest, trailer_message,
};
use crate::codec::DecodeError;
use crate::ids::{CameraId, ObjectId, Timestamp};
use crate::keys::{CameraKey, HpkePublicKey};
use crate::wrap;

/// What the camera states about an object it is about to seal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealParams {
    /// Clip, event or live session.
    pub kind: ObjectKind,
    /// Payload AEAD.
    pub suite: Suite,
    /// Chunk size as a power of two, within [`CHUNK_LOG2_RANGE`].
    pub chunk_log2: u8,
    /// The sealing camera.
    pub camera_id: CameraId,
    /// A fresh id for this object.
    pub object_id: ObjectId,
    /// Epoch of `viewing_key` in the verified camera record.
    pub epoch: u32,
    /// The camera's next sequence number (0 for live sessions).
    pub sequence: u64,
    /// Digest of the camera's previous clip or event.
    pub previous: ObjectDigest,
    /// Capture start time.
    pub captured_at: Timestamp,
}

/// What a finished seal produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealSummary {
    /// The header that was sealed.
    pub header: Header,
    /// The object's digest; the camera's next object names it as `previous`.
    pub digest: ObjectDigest,
    /// Number of chunks.
    pub chunks: u64,
    /// Plaintext bytes sealed.
    pub plaintext_len: u64,
    /// Bytes of the whole sealed object.
    pub sealed_len: u64,
}

/// Streams plaintext into a sealed object. Create with [`Sealer::new`], which also returns
/// the object's first bytes; push plaintext with [`Sealer::update`]; end with
/// [`Sealer::finish`]. Output is appended to caller-provided vectors, so the caller decides when
/// to write or send it and memory stays at about one chunk.
pub struct Sealer<'k> {
    header: Header,
    header_bytes: [u8; HEADER_LEN],
    header_digest: [u8; 32],
    header_sig: [u8; SIGNATURE_LEN],
    cipher: ChunkCipher,
    camera_key: &'k CameraKey,
    hasher: blake3::Hasher,
    next_index: u64,
    pending: Vec<u8>,
    plaintext_len: u64,
    sealed_len: u64,
}

impl<'k> Sealer<'k> {
    /// Starts sealing: draws a fresh clip key, wraps it to `viewing_key` (which the caller took
    /// from a camera record verified under the pinned account key) and signs the header.
    /// Appends the header and its signature to `out`.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a chunk size outside [`CHUNK_LOG2_RANGE`] or a viewing key
    /// HPKE refuses.
    pub fn new(
        params: SealParams,
        viewing_key: &HpkePublicKey,
        camera_key: &'k CameraKey,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<u8>,
    ) -> Result<Self, DecodeError> {
        if !CHUNK_LOG2_RANGE.contains(&params.chunk_log2) {
            return Err(DecodeError::Invalid("chunk size"));
        }
        let mut clip_key = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(clip_key.as_mut());
        let mut header = Header {
            kind: params.kind,
            suite: params.suite,
            chunk_log2: params.chunk_log2,
            camera_id: params.camera_id,
            object_id: params.object_id,
            epoch: params.epoch,
            sequence: params.sequence,
            previous: params.previous,
            captured_at: params.captured_at,
            enc: [0; 32],
            wrapped_key: [0; 48],
        };
        let aad = header.encode();
        let (enc, wrapped) = wrap::seal(
            viewing_key,
            label::CLIP_KEY_WRAP,
            &aad[..WRAP_AAD_LEN],
            clip_key.as_ref(),
            rng,
        )
        .map_err(|_| DecodeError::Invalid("viewing key"))?;
        header.enc = enc;
        header.wrapped_key.copy_from_slice(&wrapped);
        let header_bytes = header.encode();
        let header_digest = Header::digest(&header_bytes);
        let header_sig = camera_key.sign(label::HEADER_SIGNATURE, &[&header_bytes]).0;
        out.extend_from_slice(&header_bytes);
        out.extend_from_slice(&header_sig);
        Ok(Self {
            cipher: ChunkCipher::new(header.suite, &clip_key, header_digest),
            pending: Vec::with_capacity(header.chunk_size()),
            header,
            header_bytes,
            header_digest,
            header_sig,
            camera_key,
            hasher: blake3::Hasher::new_derive_key(label::PAYLOAD_DIGEST),
            next_index: 0,
            plaintext_len: 0,
            sealed_len: PREFIX_LEN as u64,
        })
    }

    /// The header being sealed.
    #[must_use]
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Seals `buf` in place as frame `index` and appends its tag (live sessions, whose frames
    /// are sealed one by one and carry their index).
    pub(crate) fn seal_indexed(&self, index: u64, last: bool, buf: &mut Vec<u8>) {
        let tag = self.cipher.seal(index, last, buf);
        buf.extend_from_slice(&tag);
    }

    /// Seals the chunk that starts at `out[start..]` in place and appends its tag. The caller
    /// hashes it: BLAKE3 runs at a third less speed when fed one chunk and tag at a time
    /// (each call starts off its 1 KiB block boundary), so sealed runs are hashed whole.
    fn seal_tail(&mut self, out: &mut Vec<u8>, start: usize, last: bool) {
        let tag = self.cipher.seal(self.next_index, last, &mut out[start..]);
        out.extend_from_slice(&tag);
        self.next_index += 1;
        self.sealed_len += (out.len() - start) as u64;
    }

    /// Seals `data`, appending every chunk that is now complete to `out`. A chunk is sealed
    /// only once a byte after it has arrived, since the last chunk is flagged.
    pub fn update(&mut self, mut data: &[u8], out: &mut Vec<u8>) {
        let cs = self.header.chunk_size();
        self.plaintext_len += data.len() as u64;
        let first = out.len();
        // Top up the held-back chunk; seal it if more data follows.
        if !self.pending.is_empty() || data.len() <= cs {
            let take = (cs - self.pending.len()).min(data.len());
            self.pending.extend_from_slice(&data[..take]);
            data = &data[take..];
            if data.is_empty() {
                return;
            }
            let start = out.len();
            out.reserve(cs + TAG_LEN);
            out.extend_from_slice(&self.pending);
            self.pending.clear();
            self.seal_tail(out, start, false);
        }
        // Full chunks straight from `data` into `out`: one copy, then encryption in place.
        while data.len() > cs {
            let start = out.len();
            out.reserve(cs + TAG_LEN);
            out.extend_from_slice(&data[..cs]);
            data = &data[cs..];
            self.seal_tail(out, start, false);
        }
        self.hasher.update(&out[first..]);
        self.pending.extend_from_slice(data);
    }

    /// Seals the next `len` bytes of `reader`, finishes, and writes every sealed byte (the
    /// trailer included) to `sink`. With the length known, no chunk waits for the byte after
    /// it: each is read straight into place in one output buffer, encrypted there, and the
    /// buffer hashed and written about every 256 KiB, so the plaintext is never copied in
    /// memory. The output is byte for byte what [`Sealer::update`] and [`Sealer::finish`]
    /// make. Plaintext already pushed with [`Sealer::update`] comes first.
    ///
    /// # Errors
    /// The reader's or the sink's error; [`std::io::ErrorKind::UnexpectedEof`] if `reader` ends
    /// before `len` bytes.
    pub fn seal_read<R, W>(
        mut self,
        reader: &mut R,
        len: u64,
        sink: &mut W,
    ) -> std::io::Result<SealSummary>
    where
        R: std::io::Read + ?Sized,
        W: std::io::Write + ?Sized,
    {
        let cs = self.header.chunk_size();
        self.plaintext_len += len;
        let mut left = len + self.pending.len() as u64;
        let batch = (SEAL_READ_BYTES / cs).max(1);
        let mut buf = vec![0u8; batch * (cs + TAG_LEN) + TRAILER_LEN];
        let mut at = 0;
        loop {
            // The next chunk: what `update` held back, then bytes from the reader.
            let n = usize::try_from(left).map_or(cs, |left| left.min(cs));
            let held = std::mem::take(&mut self.pending);
            buf[at..at + held.len()].copy_from_slice(&held);
            reader.read_exact(&mut buf[at + held.len()..at + n])?;
            left -= n as u64;
            let last = left == 0;
            let tag = self
                .cipher
                .seal(self.next_index, last, &mut buf[at..at + n]);
            buf[at + n..at + n + TAG_LEN].copy_from_slice(&tag);
            self.next_index += 1;
            at += n + TAG_LEN;
            self.sealed_len += (n + TAG_LEN) as u64;
            if last {
                break;
            }
            if at + cs + TAG_LEN > buf.len() - TRAILER_LEN {
                self.hasher.update(&buf[..at]);
                sink.write_all(&buf[..at])?;
                at = 0;
            }
        }
        self.hasher.update(&buf[..at]);
        let (summary, trailer) = self.sign_trailer();
        buf[at..at + TRAILER_LEN].copy_from_slice(&trailer);
        sink.write_all(&buf[..at + TRAILER_LEN])?;
        Ok(summary)
    }

    /// Seals the last chunk, signs the trailer and appends both to `out`.
    #[must_use]
    pub fn finish(mut self, out: &mut Vec<u8>) -> SealSummary {
        let start = out.len();
        out.reserve(self.pending.len() + TAG_LEN + TRAILER_LEN);
        out.extend_from_slice(&self.pending);
        self.seal_tail(out, start, true);
        self.hasher.update(&out[start..]);
        let (summary, trailer) = self.sign_trailer();
        out.extend_from_slice(&trailer);
        summary
    }

    /// Signs the trailer over everything hashed so far; returns the summary and the trailer.
    fn sign_trailer(self) -> (SealSummary, [u8; TRAILER_LEN]) {
        let payload_digest: [u8; 32] = *self.hasher.finalize().as_bytes();
        let chunks = self.next_index;
        let msg = trailer_message(&self.header_digest, &payload_digest, chunks);
        let trailer = self.camera_key.sign(label::TRAILER_SIGNATURE, &[&msg]).0;
        let summary = SealSummary {
            digest: object_digest(
                &self.header_bytes,
                &self.header_sig,
                &payload_digest,
                &trailer,
            ),
            header: self.header,
            chunks,
            plaintext_len: self.plaintext_len,
            sealed_len: self.sealed_len + TRAILER_LEN as u64,
        };
        (summary, trailer)
    }
}

/// Plaintext [`Sealer::seal_read`] hashes and writes at a time, in whole chunks (at least one):
/// long runs keep BLAKE3 at its speed, and 256 KiB stays in cache between encryption and
/// hashing.
const SEAL_READ_BYTES: usize = 256 << 10;

/// Bytes of a sealed object holding `plaintext_len` bytes in chunks of 2^`chunk_log2` bytes
/// (at least one chunk, which may be empty).
#[must_use]
pub fn sealed_len(plaintext_len: u64, chunk_log2: u8) -> u64 {
    let chunk = 1u64 << chunk_log2.min(*CHUNK_LOG2_RANGE.end());
    let chunks = plaintext_len.div_ceil(chunk).max(1);
    PREFIX_LEN as u64 + plaintext_len + chunks * TAG_LEN as u64 + TRAILER_LEN as u64
}

/// Seals a whole plaintext held in memory (events, thumbnails, tests).
///
/// # Errors
/// As [`Sealer::new`].
pub fn seal_object(
    params: SealParams,
    plaintext: &[u8],
    viewing_key: &HpkePublicKey,
    camera_key: &CameraKey,
    rng: &mut impl CryptoRngCore,
) -> Result<(Vec<u8>, SealSummary), DecodeError> {
    let len = sealed_len(plaintext.len() as u64, params.chunk_log2);
    let mut out = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    let mut sealer = Sealer::new(params, viewing_key, camera_key, rng, &mut out)?;
    sealer.update(plaintext, &mut out);
    let summary = sealer.finish(&mut out);
    Ok((out, summary))
}
