//! Recovery: a generated phrase and the encrypted backup it unlocks.
//!
//! The phrase is 12 words from the BIP-39 English list: 128 random bits and a 4-bit checksum,
//! shown once at set-up. The backup holds the account identity key and the recovery private
//! key, sealed with ChaCha20-Poly1305 under a key derived from the phrase's 128 bits with
//! Argon2id (RFC 9106). The server stores the backup and cannot open it. Losing every device
//! and the phrase loses the account's history; nothing else can open it.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use rand_core::CryptoRngCore;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::keys::{AccountKey, AccountPublicKey, HpkeSecretKey};

const MAGIC: &[u8; 4] = b"KHRB";
const FORMAT: u8 = 1;
/// Words in a recovery phrase.
pub const WORDS: usize = 12;
const SECRETS_LEN: usize = 64;

/// Why a phrase or backup was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecoveryError {
    /// The phrase does not have [`WORDS`] words.
    #[error("a recovery phrase has {WORDS} words; this has {0}")]
    WordCount(usize),
    /// A word is not on the list.
    #[error("word {position} (\"{word}\") is not a recovery phrase word: check its spelling")]
    UnknownWord {
        /// One-based position.
        position: usize,
        /// The word as typed.
        word: String,
    },
    /// All words are valid but the checksum fails: a word is wrong or out of place.
    #[error("the recovery phrase's checksum does not match: a word is wrong or out of order")]
    Checksum,
    /// The backup does not open with this phrase.
    #[error(
        "this recovery phrase does not open the backup (wrong phrase, or the backup was altered)"
    )]
    WrongPhrase,
    /// The backup is malformed.
    #[error("malformed recovery backup: {0}")]
    Malformed(DecodeError),
    /// The backup's Argon2id parameters are outside the accepted bounds.
    #[error("recovery backup asks for unreasonable key-derivation parameters")]
    Params,
}

crate::codec::malformed_from!(RecoveryError);

/// A recovery phrase. `Display` prints the words; `Debug` does not.
pub struct RecoveryPhrase {
    entropy: Zeroizing<[u8; 16]>,
}

impl RecoveryPhrase {
    /// A fresh phrase.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut entropy = Zeroizing::new([0u8; 16]);
        rng.fill_bytes(entropy.as_mut());
        Self { entropy }
    }

    /// Parses a phrase as typed: case and spacing are ignored.
    ///
    /// # Errors
    /// [`RecoveryError::WordCount`], [`RecoveryError::UnknownWord`] or
    /// [`RecoveryError::Checksum`].
    pub fn parse(typed: &str) -> Result<Self, RecoveryError> {
        let lower = Zeroizing::new(typed.to_lowercase());
        let words: Vec<&str> = lower.split_whitespace().collect();
        if words.len() != WORDS {
            return Err(RecoveryError::WordCount(words.len()));
        }
        let list = bip39::Language::English;
        if let Some((i, w)) = words
            .iter()
            .enumerate()
            .find(|(_, w)| list.find_word(w).is_none())
        {
            return Err(RecoveryError::UnknownWord {
                position: i + 1,
                word: (*w).to_owned(),
            });
        }
        let joined = Zeroizing::new(words.join(" "));
        let mnemonic = bip39::Mnemonic::parse_in_normalized(list, &joined)
            .map_err(|_| RecoveryError::Checksum)?;
        // Twelve words always carry 16 bytes of entropy.
        let (bytes, _) = mnemonic.to_entropy_array();
        let bytes = Zeroizing::new(bytes);
        let mut entropy = Zeroizing::new([0u8; 16]);
        entropy.copy_from_slice(&bytes[..16]);
        Ok(Self { entropy })
    }

    /// The words, space-separated.
    #[must_use]
    pub fn words(&self) -> Zeroizing<String> {
        let mnemonic = bip39::Mnemonic::from_entropy(self.entropy.as_ref())
            .unwrap_or_else(|_| unreachable!("16 bytes is valid BIP-39 entropy"));
        Zeroizing::new(mnemonic.words().collect::<Vec<_>>().join(" "))
    }
}

impl fmt::Debug for RecoveryPhrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryPhrase(..)")
    }
}

/// Argon2id cost parameters, stored in the backup so they can be raised later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes over memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// The parameters new backups use: 64 MiB, 3 passes, 1 lane.
    pub const DEFAULT: Self = Self {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    /// Cheapest parameters accepted (RFC 9106's minimum memory), for tests and vectors.
    pub const MINIMUM: Self = Self {
        memory_kib: 8,
        iterations: 1,
        parallelism: 1,
    };

    pub(crate) fn check(self) -> Result<Argon2<'static>, RecoveryError> {
        let in_bounds = (1..=16).contains(&self.parallelism)
            && (1..=64).contains(&self.iterations)
            && self.memory_kib >= 8 * self.parallelism
            && self.memory_kib <= 4 * 1024 * 1024;
        if !in_bounds {
            return Err(RecoveryError::Params);
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|_| RecoveryError::Params)?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// What the backup protects.
#[derive(Debug)]
pub struct RecoverySecrets {
    /// The account identity key.
    pub account_key: AccountKey,
    /// The recovery private key (key packages are sealed to its public half).
    pub recovery_key: HpkeSecretKey,
}

/// The encrypted backup, stored on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecoveryBackup {
    /// The account this backup restores.
    pub account: AccountPublicKey,
    params: KdfParams,
    salt: [u8; 16],
    nonce: [u8; 12],
    ciphertext: Vec<u8>,
}

impl RecoveryBackup {
    fn header(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(80);
        w.bytes(MAGIC).u8(FORMAT).bytes(&self.account.to_bytes());
        w.u32(self.params.memory_kib)
            .u32(self.params.iterations)
            .u32(self.params.parallelism);
        w.bytes(&self.salt).bytes(&self.nonce);
        w.into_vec()
    }

    fn key(&self, phrase: &RecoveryPhrase) -> Result<Zeroizing<[u8; 32]>, RecoveryError> {
        let mut key = Zeroizing::new([0u8; 32]);
        self.params
            .check()?
            .hash_password_into(phrase.entropy.as_ref(), &self.salt, key.as_mut())
            .map_err(|_| RecoveryError::Params)?;
        Ok(key)
    }

    /// Seals `secrets` under `phrase`.
    ///
    /// # Errors
    /// [`RecoveryError::Params`] if `params` are out of bounds.
    pub fn seal(
        phrase: &RecoveryPhrase,
        secrets: &RecoverySecrets,
        params: KdfParams,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, RecoveryError> {
        let mut backup = Self {
            account: secrets.account_key.public(),
            params,
            salt: [0; 16],
            nonce: [0; 12],
            ciphertext: Vec::new(),
        };
        rng.fill_bytes(&mut backup.salt);
        rng.fill_bytes(&mut backup.nonce);
        let key = backup.key(phrase)?;
        let mut plain = Zeroizing::new(Vec::with_capacity(SECRETS_LEN));
        plain.extend_from_slice(secrets.account_key.seed().as_ref());
        plain.extend_from_slice(secrets.recovery_key.to_bytes().as_ref());
        let aad = backup.header();
        backup.ciphertext = ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
            .encrypt(
                Nonce::from_slice(&backup.nonce),
                Payload {
                    msg: &plain,
                    aad: &aad,
                },
            )
            .map_err(|_| RecoveryError::Params)?;
        Ok(backup)
    }

    /// Opens the backup with `phrase`.
    ///
    /// # Errors
    /// [`RecoveryError::WrongPhrase`] if the phrase is wrong or the backup altered.
    pub fn open(&self, phrase: &RecoveryPhrase) -> Result<RecoverySecrets, RecoveryError> {
        let key = self.key(phrase)?;
        let plain = Zeroizing::new(
            ChaCha20Poly1305::new(Key::from_slice(key.as_ref()))
                .decrypt(
                    Nonce::from_slice(&self.nonce),
                    Payload {
                        msg: &self.ciphertext,
                        aad: &self.header(),
                    },
                )
                .map_err(|_| RecoveryError::WrongPhrase)?,
        );
        let seed: Zeroizing<[u8; 32]> = Zeroizing::new(
            plain[..32]
                .try_into()
                .map_err(|_| RecoveryError::WrongPhrase)?,
        );
        let rec: Zeroizing<[u8; 32]> = Zeroizing::new(
            plain[32..]
                .try_into()
                .map_err(|_| RecoveryError::WrongPhrase)?,
        );
        let account_key = AccountKey::from_seed(&seed);
        if account_key.public() != self.account {
            return Err(RecoveryError::WrongPhrase);
        }
        Ok(RecoverySecrets {
            account_key,
            recovery_key: HpkeSecretKey::from_bytes(&rec),
        })
    }

    /// The canonical encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses a backup. Parameters are bounds-checked before any key derivation runs, so a
    /// hostile backup cannot make a device spend unbounded memory or time.
    ///
    /// # Errors
    /// [`RecoveryError::Malformed`] or [`RecoveryError::Params`].
    pub fn decode(bytes: &[u8]) -> Result<Self, RecoveryError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, MAGIC, FORMAT, "recovery backup")?;
        let account = AccountPublicKey::from_bytes(&r.array("account key")?)?;
        let params = KdfParams {
            memory_kib: r.u32("argon2 memory")?,
            iterations: r.u32("argon2 iterations")?,
            parallelism: r.u32("argon2 parallelism")?,
        };
        params.check()?;
        let salt = r.array("salt")?;
        let nonce = r.array("nonce")?;
        let ciphertext = r.take(SECRETS_LEN + 16, "sealed secrets")?.to_vec();
        r.finish()?;
        Ok(Self {
            account,
            params,
            salt,
            nonce,
            ciphertext,
        })
    }
}
