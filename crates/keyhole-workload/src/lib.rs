//! The camera's hot paths as `keyhole-bench` measures them: the clip it seals and the raw AEAD
//! over the same chunks, shared by the bench's timed `seal` section and by the
//! `keyhole-workload` program whose instructions its `arm` section counts.

use std::hint::black_box;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};
use aws_lc_rs::error::Unspecified;
use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, OpenError, Opener, PREFIX_LEN, SealParams,
    Sealer, Suite,
};
use keyhole_core::{
    CameraId, CameraKey, CameraPublicKey, DecodeError, HpkePublicKey, HpkeSecretKey, ObjectId,
    Timestamp,
};
use rand_core::CryptoRngCore;

/// The envelope's chunk.
pub const CHUNK: usize = 1 << DEFAULT_CHUNK_LOG2;
/// What a camera or a download hands the sealer or opener at a time.
pub const PIECE: usize = 1 << 20;

/// What the bench seals: a clip of a fixed camera, in `suite`.
#[must_use]
pub fn clip_params(suite: Suite) -> SealParams {
    SealParams {
        kind: ObjectKind::Clip,
        suite,
        chunk_log2: DEFAULT_CHUNK_LOG2,
        camera_id: CameraId([1; 16]),
        object_id: ObjectId([2; 16]),
        epoch: 1,
        sequence: 1,
        previous: ObjectDigest::default(),
        captured_at: Timestamp(0),
    }
}

/// Encrypts `buf` in place chunk by chunk, as the envelope lays chunks out (counter nonces, a
/// 32-byte associated data), and with `digest` hashes each sealed chunk as the envelope's
/// digest does: the least sealing can do.
///
/// # Errors
/// The AEAD refusing (a chunk too long for it).
pub fn raw_aead(key: &LessSafeKey, buf: &mut [u8], digest: bool) -> Result<(), Unspecified> {
    let mut hasher = blake3::Hasher::new();
    for (i, chunk) in (0u64..).zip(buf.chunks_mut(CHUNK)) {
        let mut nonce = [0u8; 12];
        nonce[3..11].copy_from_slice(&i.to_be_bytes());
        let tag = key.seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from([0u8; 32]),
            chunk,
        )?;
        if digest {
            hasher.update(chunk);
        }
        let _ = black_box(tag);
    }
    black_box(hasher.finalize());
    Ok(())
}

/// Seals `clip` into `out` (emptied first) as the camera does: streamed, in [`PIECE`]-byte
/// pieces.
///
/// # Errors
/// The sealer refusing its parameters or the viewing key.
pub fn seal_streaming(
    suite: Suite,
    clip: &[u8],
    viewing: &HpkePublicKey,
    camera: &CameraKey,
    rng: &mut impl CryptoRngCore,
    out: &mut Vec<u8>,
) -> Result<(), DecodeError> {
    out.clear();
    let mut sealer = Sealer::new(clip_params(suite), viewing, camera, rng, out)?;
    for piece in clip.chunks(PIECE) {
        sealer.update(piece, out);
    }
    black_box(sealer.finish(out));
    Ok(())
}

/// Seals `clip` as the camera seals a clip whose length it knows ([`Sealer::seal_read`]): each
/// chunk read from `clip` straight into place and encrypted there, the sealed bytes written to
/// `sink`.
///
/// # Errors
/// The sealer refusing its parameters or the viewing key, or `sink` failing.
pub fn seal_known(
    suite: Suite,
    clip: &[u8],
    viewing: &HpkePublicKey,
    camera: &CameraKey,
    rng: &mut impl CryptoRngCore,
    sink: &mut impl std::io::Write,
) -> std::io::Result<()> {
    let mut prefix = Vec::with_capacity(PREFIX_LEN);
    let sealer = Sealer::new(clip_params(suite), viewing, camera, rng, &mut prefix)
        .map_err(std::io::Error::other)?;
    sink.write_all(&prefix)?;
    black_box(sealer.seal_read(&mut &clip[..], clip.len() as u64, sink)?);
    Ok(())
}

/// Opens `sealed` into `plain` (emptied first) as a device does: verified, streamed, in
/// [`PIECE`]-byte pieces.
///
/// # Errors
/// Anything that does not verify.
pub fn open_streaming(
    sealed: &[u8],
    camera: &CameraPublicKey,
    viewing: &HpkeSecretKey,
    plain: &mut Vec<u8>,
) -> Result<(), OpenError> {
    plain.clear();
    let mut opener = Opener::new(sealed, camera, viewing)?.stream();
    for piece in sealed.get(PREFIX_LEN..).unwrap_or_default().chunks(PIECE) {
        opener.update(piece, plain)?;
    }
    black_box(opener.finish(plain)?);
    Ok(())
}
