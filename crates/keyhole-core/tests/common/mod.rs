//! Shared test fixtures: deterministic keys and a replaying RNG.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use keyhole_core::envelope::{DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, SealParams, Suite};
use keyhole_core::{AccountKey, CameraId, CameraKey, HpkeSecretKey, ObjectId, Timestamp};
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, RngCore, SeedableRng};

/// An RNG that hands out exactly the bytes it was given, in order, and panics past the end:
/// test vectors fix every random input (clip key, HPKE ephemeral IKM) this way.
pub struct FixedRng {
    bytes: Vec<u8>,
    at: usize,
}

impl FixedRng {
    pub fn new(parts: &[&[u8]]) -> Self {
        Self {
            bytes: parts.concat(),
            at: 0,
        }
    }

    pub fn exhausted(&self) -> bool {
        self.at == self.bytes.len()
    }
}

impl RngCore for FixedRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }
    fn next_u64(&mut self) -> u64 {
        let mut b = [0; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        let end = self.at + dest.len();
        assert!(
            end <= self.bytes.len(),
            "FixedRng asked for more bytes than the vector fixes"
        );
        dest.copy_from_slice(&self.bytes[self.at..end]);
        self.at = end;
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}
impl CryptoRng for FixedRng {}

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub fn account() -> AccountKey {
    AccountKey::from_seed(&[0x11; 32])
}

pub fn other_account() -> AccountKey {
    AccountKey::from_seed(&[0x12; 32])
}

pub fn camera() -> CameraKey {
    CameraKey::from_seed(&[0x21; 32])
}

pub fn other_camera() -> CameraKey {
    CameraKey::from_seed(&[0x22; 32])
}

pub fn viewing(epoch: u32) -> HpkeSecretKey {
    HpkeSecretKey::from_bytes(&[0x30 + u8::try_from(epoch).unwrap(); 32])
}

pub const CAMERA_ID: CameraId = CameraId([0xc1; 16]);
pub const OTHER_CAMERA_ID: CameraId = CameraId([0xc2; 16]);

pub fn params(suite: Suite, chunk_log2: u8, sequence: u64) -> SealParams {
    SealParams {
        kind: ObjectKind::Clip,
        suite,
        chunk_log2,
        camera_id: CAMERA_ID,
        object_id: ObjectId([u8::try_from(sequence % 256).unwrap(); 16]),
        epoch: 1,
        sequence,
        previous: ObjectDigest::default(),
        captured_at: Timestamp(1_795_735_205_000 + sequence * 60_000),
    }
}

pub fn default_params() -> SealParams {
    params(Suite::Aes256Gcm, DEFAULT_CHUNK_LOG2, 1)
}

/// Deterministic pseudo-video bytes.
pub fn plaintext(len: usize, seed: u64) -> Vec<u8> {
    let mut v = vec![0u8; len];
    rng(seed).fill_bytes(&mut v);
    v
}
