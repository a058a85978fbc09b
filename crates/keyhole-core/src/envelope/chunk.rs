//! The per-chunk AEAD of the STREAM payload. Holds the derived payload key; never sees the
//! clip key itself.

use aws_lc_rs::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use super::{Suite, TAG_LEN, label};

/// The AEAD rejected a chunk: wrong key, position, last flag or content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChunkRejected;

pub(crate) struct ChunkCipher {
    key: LessSafeKey,
    associated: [u8; 32],
}

impl ChunkCipher {
    /// Derives the payload key from the clip key: HKDF-SHA256(salt = none, ikm = clip key,
    /// info = label ‖ suite id), so one clip key never serves two suites.
    pub(crate) fn new(suite: Suite, clip_key: &[u8; 32], header_digest: [u8; 32]) -> Self {
        let mut okm = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, clip_key)
            .expand_multi_info(&[label::PAYLOAD_KEY, &[suite.id()]], okm.as_mut())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        let alg = match suite {
            Suite::Aes256Gcm => &AES_256_GCM,
            Suite::ChaCha20Poly1305 => &CHACHA20_POLY1305,
        };
        let unbound = UnboundKey::new(alg, okm.as_ref())
            .unwrap_or_else(|_| unreachable!("both suites take 32-byte keys"));
        Self {
            key: LessSafeKey::new(unbound),
            associated: header_digest,
        }
    }

    fn nonce(index: u64, last: bool) -> Nonce {
        let mut n = [0u8; 12];
        n[3..11].copy_from_slice(&index.to_be_bytes());
        n[11] = u8::from(last);
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypts `buf` in place and returns the tag.
    pub(crate) fn seal(&self, index: u64, last: bool, buf: &mut [u8]) -> [u8; TAG_LEN] {
        let tag = self
            .key
            .seal_in_place_separate_tag(Self::nonce(index, last), Aad::from(self.associated), buf)
            .unwrap_or_else(|_| unreachable!("chunks are far below the AEAD length limit"));
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// Decrypts `buf` (ciphertext ‖ tag) in place; returns the plaintext length.
    pub(crate) fn open(
        &self,
        index: u64,
        last: bool,
        buf: &mut [u8],
    ) -> Result<usize, ChunkRejected> {
        self.key
            .open_in_place(Self::nonce(index, last), Aad::from(self.associated), buf)
            .map(|pt| pt.len())
            .map_err(|_| ChunkRejected)
    }
}
