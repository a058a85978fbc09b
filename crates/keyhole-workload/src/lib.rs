//! The camera's hot paths as `keyhole-bench` measures them: the clip it seals and the raw AEAD
//! over the same chunks, shared by the bench's timed `seal` section and by the
//! `keyhole-workload` program whose instructions its `arm` section counts.

use std::hint::black_box;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce};
use aws_lc_rs::error::Unspecified;
use keyhole_core::envelope::{DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, SealParams, Suite};
use keyhole_core::{CameraId, ObjectId, Timestamp};

/// The envelope's chunk.
pub const CHUNK: usize = 1 << DEFAULT_CHUNK_LOG2;

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
