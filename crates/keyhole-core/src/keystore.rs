//! The device key store: everything an enrolled device keeps (its keys, the account key, the
//! verified roster and camera records, viewing keys, its server credential) sealed under the
//! user's passphrase, so the file alone opens nothing. The contents are opaque bytes here; the
//! client defines them (PROTOCOL.md §13).

use argon2::Argon2;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::CryptoRngCore;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::recovery::{KdfParams, RecoveryError};

const MAGIC: &[u8; 4] = b"KHKS";
const FORMAT: u8 = 1;
/// Bytes before the ciphertext; all of them are authenticated.
pub const HEADER_LEN: usize = 45;
/// Largest contents a key store holds.
pub const MAX_CONTENTS: usize = 16 << 20;
const TAG_LEN: usize = 16;

/// Why a key store could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyStoreError {
    /// Not a key store, or damaged.
    #[error("not a Keyhole key store, or damaged: {0}")]
    Malformed(DecodeError),
    /// The Argon2id parameters are out of bounds.
    #[error("the key store asks for Argon2id parameters out of bounds")]
    Params,
    /// The passphrase is wrong, or the file was altered.
    #[error("wrong passphrase (or the key store was altered)")]
    WrongPassphrase,
}

crate::codec::malformed_from!(KeyStoreError);

impl From<RecoveryError> for KeyStoreError {
    fn from(_: RecoveryError) -> Self {
        Self::Params
    }
}

/// A sealed key store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyStore {
    params: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

fn argon2(params: KdfParams) -> Result<Argon2<'static>, KeyStoreError> {
    Ok(params.check()?)
}

impl KeyStore {
    fn header(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEADER_LEN);
        w.bytes(MAGIC).u8(FORMAT);
        w.u32(self.params.memory_kib)
            .u32(self.params.iterations)
            .u32(self.params.parallelism);
        w.bytes(&self.salt).bytes(&self.nonce);
        w.into_vec()
    }

    fn key(&self, passphrase: &[u8]) -> Result<Zeroizing<[u8; 32]>, KeyStoreError> {
        let mut key = Zeroizing::new([0u8; 32]);
        argon2(self.params)?
            .hash_password_into(passphrase, &self.salt, key.as_mut())
            .map_err(|_| KeyStoreError::Params)?;
        Ok(key)
    }

    /// Seals `contents` under `passphrase` (its UTF-8 bytes, as typed).
    ///
    /// # Errors
    /// [`KeyStoreError::Params`] for parameters out of bounds; [`KeyStoreError::Malformed`] for
    /// contents over [`MAX_CONTENTS`].
    pub fn seal(
        passphrase: &[u8],
        contents: &[u8],
        params: KdfParams,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, KeyStoreError> {
        if contents.len() > MAX_CONTENTS {
            return Err(DecodeError::Invalid("key store contents too large").into());
        }
        let mut store = Self {
            params,
            salt: [0; 16],
            nonce: [0; 12],
            ciphertext: Vec::new(),
        };
        rng.fill_bytes(&mut store.salt);
        rng.fill_bytes(&mut store.nonce);
        let key = store.key(passphrase)?;
        let aad = store.header();
        store.ciphertext = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
            .encrypt(
                Nonce::from_slice(&store.nonce),
                Payload {
                    msg: contents,
                    aad: &aad,
                },
            )
            .map_err(|_| KeyStoreError::Params)?;
        Ok(store)
    }

    /// Opens the key store with `passphrase`.
    ///
    /// # Errors
    /// [`KeyStoreError::WrongPassphrase`] if the passphrase is wrong or the file altered.
    pub fn open(&self, passphrase: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyStoreError> {
        let key = self.key(passphrase)?;
        ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
            .decrypt(
                Nonce::from_slice(&self.nonce),
                Payload {
                    msg: &self.ciphertext,
                    aad: &self.header(),
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| KeyStoreError::WrongPassphrase)
    }

    /// The Argon2id parameters it was sealed with.
    #[must_use]
    pub fn params(&self) -> KdfParams {
        self.params
    }

    /// The canonical encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses a key store; parameters are bounds-checked before any key derivation runs.
    ///
    /// # Errors
    /// [`KeyStoreError::Malformed`] or [`KeyStoreError::Params`].
    pub fn decode(bytes: &[u8]) -> Result<Self, KeyStoreError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, MAGIC, FORMAT, "key store")?;
        let params = KdfParams {
            memory_kib: r.u32("argon2 memory")?,
            iterations: r.u32("argon2 iterations")?,
            parallelism: r.u32("argon2 parallelism")?,
        };
        argon2(params)?;
        let salt = r.array("salt")?;
        let nonce = r.array("nonce")?;
        let len = r.remaining();
        if !(TAG_LEN..=MAX_CONTENTS + TAG_LEN).contains(&len) {
            return Err(DecodeError::Invalid("key store ciphertext length").into());
        }
        let ciphertext = r.take(len, "sealed contents")?.to_vec();
        r.finish()?;
        Ok(Self {
            params,
            salt,
            nonce,
            ciphertext,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn opens_with_its_passphrase_only() {
        let store =
            KeyStore::seal(b"hunter2 horse", b"secrets", KdfParams::MINIMUM, &mut OsRng).unwrap();
        let bytes = store.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 7 + 16);
        let decoded = KeyStore::decode(&bytes).unwrap();
        assert_eq!(&*decoded.open(b"hunter2 horse").unwrap(), b"secrets");
        assert_eq!(
            decoded.open(b"hunter2 horsE"),
            Err(KeyStoreError::WrongPassphrase)
        );
        for i in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 1;
            if let Ok(s) = KeyStore::decode(&altered) {
                assert!(s.open(b"hunter2 horse").is_err(), "byte {i}");
            }
        }
        for n in 0..bytes.len() {
            assert!(
                KeyStore::decode(&bytes[..n])
                    .and_then(|s| s.open(b"hunter2 horse"))
                    .is_err()
            );
        }
    }
}
