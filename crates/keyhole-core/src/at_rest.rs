//! What a device keeps decrypted in its local index, sealed at rest (PROTOCOL.md §13.1).
//!
//! The index caches what the device verified so a listing costs only what is new; event
//! details and thumbnails in it are as sensitive as the video. Each such row is sealed with
//! ChaCha20-Poly1305 under a key derived from the device's own HPKE secret, bound to the row it
//! belongs to, so a copy of the index file opens nowhere else and rows cannot be swapped.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use rand_core::CryptoRngCore;
use sha2::Sha256;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::keys::DeviceKeys;

/// HKDF `info` of the index key.
const INDEX_KEY_INFO: &[u8] = b"keyhole device index key v1";
/// Bytes of a row's nonce.
pub const ROW_NONCE_LEN: usize = 12;
/// Bytes a sealed row adds to its plaintext: nonce and tag.
pub const ROW_OVERHEAD: usize = ROW_NONCE_LEN + 16;

/// A sealed row did not open: altered, moved to another row, or sealed by another device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("an index row does not open with this device's key (altered, moved, or another device's)")]
pub struct RowRejected;

/// The key a device seals its index rows with.
pub struct IndexKey(ChaCha20Poly1305);

impl std::fmt::Debug for IndexKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IndexKey(..)")
    }
}

impl IndexKey {
    /// `HKDF-SHA256(salt = none, IKM = the device's HPKE secret, info = "keyhole device index
    /// key v1")`.
    #[must_use]
    pub fn derive(device: &DeviceKeys) -> Self {
        let mut okm = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(None, device.hpke.bytes())
            .expand(INDEX_KEY_INFO, okm.as_mut())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        Self(ChaCha20Poly1305::new(Key::from_slice(okm.as_ref())))
    }

    /// Seals `plaintext` as the row named `row` (its table and key, encoded by the caller):
    /// `nonce (12, random) ‖ ciphertext ‖ tag (16)`, with `row` as associated data.
    #[must_use]
    pub fn seal(&self, row: &[u8], plaintext: &[u8], rng: &mut impl CryptoRngCore) -> Vec<u8> {
        let mut nonce = [0u8; ROW_NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        self.seal_with_nonce(row, plaintext, nonce)
    }

    /// [`IndexKey::seal`] with a given nonce, for test vectors.
    #[doc(hidden)]
    #[must_use]
    pub fn seal_with_nonce(
        &self,
        row: &[u8],
        plaintext: &[u8],
        nonce: [u8; ROW_NONCE_LEN],
    ) -> Vec<u8> {
        let sealed = self
            .0
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: row,
                },
            )
            .unwrap_or_else(|_| unreachable!("rows are far below the AEAD length limit"));
        let mut out = Vec::with_capacity(ROW_NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens a row sealed as `row`.
    ///
    /// # Errors
    /// [`RowRejected`] if it is too short or does not authenticate.
    pub fn open(&self, row: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, RowRejected> {
        if sealed.len() < ROW_OVERHEAD {
            return Err(RowRejected);
        }
        let (nonce, body) = sealed.split_at(ROW_NONCE_LEN);
        self.0
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: row,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| RowRejected)
    }
}
