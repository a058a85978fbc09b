//! Encryption for plaintext that has to touch a device's own storage for a while (a camera's
//! clip while it is recorded): a key drawn for that one use and held only in memory, and the
//! AEAD of a suite with the piece's number as nonce. Storage keeps nothing readable after a
//! crash, a power cut or deletion (flash keeps deleted blocks). Local only: nothing here is
//! ever sent, so it is not part of the protocol.

use aws_lc_rs::aead::{AES_256_GCM, Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::envelope::Suite;

/// Bytes [`ScratchKey::seal`] adds to each piece.
pub const TAG_LEN: usize = 16;

/// A piece did not open: it was altered, or sealed under another key or number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("scratch data was altered")]
pub struct Altered;

/// A one-use key for pieces numbered from zero.
pub struct ScratchKey(LessSafeKey);

impl std::fmt::Debug for ScratchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ScratchKey(..)")
    }
}

impl ScratchKey {
    /// A fresh key for `suite`'s AEAD.
    pub fn new(suite: Suite, rng: &mut impl CryptoRngCore) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        let alg = match suite {
            Suite::Aes256Gcm => &AES_256_GCM,
            Suite::ChaCha20Poly1305 => &CHACHA20_POLY1305,
        };
        let key = UnboundKey::new(alg, bytes.as_ref())
            .unwrap_or_else(|_| unreachable!("both suites take 32-byte keys"));
        Self(LessSafeKey::new(key))
    }

    fn nonce(number: u64) -> Nonce {
        let mut n = [0u8; 12];
        n[4..].copy_from_slice(&number.to_be_bytes());
        Nonce::assume_unique_for_key(n)
    }

    /// Encrypts piece `number` in place and appends its tag. Each number must be sealed once.
    pub fn seal(&self, number: u64, piece: &mut Vec<u8>) {
        self.0
            .seal_in_place_append_tag(Self::nonce(number), Aad::empty(), piece)
            .unwrap_or_else(|_| unreachable!("a Vec is far below the AEAD length limit"));
    }

    /// Decrypts piece `number` (ciphertext ‖ tag) in place, leaving its plaintext.
    ///
    /// # Errors
    /// [`Altered`] if it does not open.
    pub fn open(&self, number: u64, piece: &mut Vec<u8>) -> Result<(), Altered> {
        let len = self
            .0
            .open_in_place(Self::nonce(number), Aad::empty(), piece)
            .map_err(|_| Altered)?
            .len();
        piece.truncate(len);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn pieces_open_only_under_their_key_and_number() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for suite in [Suite::Aes256Gcm, Suite::ChaCha20Poly1305] {
            let key = ScratchKey::new(suite, &mut rng);
            let mut piece = b"a picture".to_vec();
            key.seal(3, &mut piece);
            assert_eq!(piece.len(), 9 + TAG_LEN);
            assert!(!piece.windows(7).any(|w| w == b"picture"));
            let mut wrong_number = piece.clone();
            assert_eq!(key.open(4, &mut wrong_number), Err(Altered));
            let mut flipped = piece.clone();
            flipped[0] ^= 1;
            assert_eq!(key.open(3, &mut flipped), Err(Altered));
            let mut other = piece.clone();
            assert_eq!(
                ScratchKey::new(suite, &mut rng).open(3, &mut other),
                Err(Altered)
            );
            key.open(3, &mut piece).unwrap();
            assert_eq!(piece, b"a picture");
        }
    }
}
