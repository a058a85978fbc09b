//! Key types. Private halves live in types that zeroize on drop and whose `Debug` prints no
//! secret; public halves are plain values that encode to 32 bytes.
//!
//! Every signature in Keyhole is Ed25519 over `context || 0x00 || message`, where `context` is
//! a fixed ASCII label naming the format (see `docs/PROTOCOL.md`, Signatures), so a signature
//! made for one format can never be replayed as another.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::DecodeError;

/// An Ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..8]))
    }
}

/// A signature did not verify under the expected key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("signature does not verify")]
pub struct BadSignature;

fn signed_message(context: &str, parts: &[&[u8]]) -> Vec<u8> {
    let mut msg =
        Vec::with_capacity(context.len() + 1 + parts.iter().map(|p| p.len()).sum::<usize>());
    msg.extend_from_slice(context.as_bytes());
    msg.push(0);
    for p in parts {
        msg.extend_from_slice(p);
    }
    msg
}

macro_rules! signing_pair {
    ($(#[$sdoc:meta])* $secret:ident, $(#[$pdoc:meta])* $public:ident, $label:literal) => {
        $(#[$sdoc])*
        pub struct $secret(SigningKey);

        impl $secret {
            /// A fresh key from `rng`.
            pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
                Self(SigningKey::generate(rng))
            }

            /// The key with this 32-byte Ed25519 seed.
            #[must_use]
            pub fn from_seed(seed: &[u8; 32]) -> Self {
                Self(SigningKey::from_bytes(seed))
            }

            /// The 32-byte seed, for sealing into a key store or backup.
            #[must_use]
            pub fn seed(&self) -> Zeroizing<[u8; 32]> {
                Zeroizing::new(self.0.to_bytes())
            }

            /// The public half.
            #[must_use]
            pub fn public(&self) -> $public {
                $public(self.0.verifying_key())
            }

            pub(crate) fn sign(&self, context: &str, parts: &[&[u8]]) -> Signature {
                Signature(self.0.sign(&signed_message(context, parts)).to_bytes())
            }
        }

        impl fmt::Debug for $secret {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, " private key for {:?}"), self.public())
            }
        }

        $(#[$pdoc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $public(VerifyingKey);

        impl $public {
            /// Decodes a 32-byte Ed25519 public key.
            ///
            /// # Errors
            /// [`DecodeError::Invalid`] if the bytes are not a valid curve point.
            pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, DecodeError> {
                VerifyingKey::from_bytes(bytes).map(Self).map_err(|_| DecodeError::Invalid($label))
            }

            /// The 32-byte encoding.
            #[must_use]
            pub fn to_bytes(&self) -> [u8; 32] {
                self.0.to_bytes()
            }

            /// Verifies a signature made with [`signing context`](self) `context` over `parts`.
            ///
            /// # Errors
            /// [`BadSignature`] if it does not verify (strict RFC 8032 verification).
            pub(crate) fn verify(
                &self,
                context: &str,
                parts: &[&[u8]],
                sig: &Signature,
            ) -> Result<(), BadSignature> {
                let sig = ed25519_dalek::Signature::from_bytes(&sig.0);
                self.0.verify_strict(&signed_message(context, parts), &sig).map_err(|_| BadSignature)
            }
        }

        impl fmt::Debug for $public {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($label, "({})"), hex::encode(self.to_bytes()))
            }
        }
    };
}

signing_pair!(
    /// The account identity key: the owner's cold root of trust. It signs the first roster and
    /// the recovery roster; no device keeps it (only the recovery backup holds it).
    AccountKey,
    /// The public account identity key, pinned by cameras and devices.
    AccountPublicKey,
    "account"
);
signing_pair!(
    /// A camera's own signing key. It signs every sealed clip and event; it opens nothing.
    CameraKey,
    /// A camera's public signing key, as named in its camera record.
    CameraPublicKey,
    "camera"
);
signing_pair!(
    /// An enrolled device's signing key.
    DeviceSigningKey,
    /// An enrolled device's public signing key, as listed in the roster.
    DeviceSigningPublicKey,
    "device"
);

impl AccountPublicKey {
    /// The account code: the key's fingerprint as eight groups of five digits, for people to
    /// compare out of band (see `docs/PROTOCOL.md`, Account code).
    #[must_use]
    pub fn account_code(&self) -> AccountCode {
        let digest = Sha256::new()
            .chain_update(b"keyhole account code v1\0")
            .chain_update(self.to_bytes())
            .finalize();
        // Eight groups, each a big-endian u32 of the digest mod 100000 (≈133 bits in all).
        let groups: Vec<String> = digest
            .chunks(4)
            .map(|c| {
                let v = c.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
                format!("{:05}", v % 100_000)
            })
            .collect();
        AccountCode(groups.join(" "))
    }
}

/// An account code as shown to people, for example `08151 42220 …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountCode(String);

impl AccountCode {
    /// Whether `typed` is this code, ignoring spaces and dashes.
    #[must_use]
    pub fn matches(&self, typed: &str) -> bool {
        let clean = |s: &str| -> String { s.chars().filter(char::is_ascii_digit).collect() };
        let typed_digits: String = clean(typed);
        typed
            .chars()
            .all(|c| c.is_ascii_digit() || c == ' ' || c == '-')
            && typed_digits == clean(&self.0)
    }
}

impl fmt::Display for AccountCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An X25519 private key used as an HPKE recipient: a device's, the recovery key, or a
/// camera's viewing key for one epoch.
pub struct HpkeSecretKey(Zeroizing<[u8; 32]>);

impl HpkeSecretKey {
    /// A fresh key from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let mut b = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(b.as_mut());
        Self(b)
    }

    /// The key with these 32 bytes.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    /// The 32 private bytes, for sealing into a key store, backup or key package.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.clone()
    }

    /// The public half.
    #[must_use]
    pub fn public(&self) -> HpkePublicKey {
        crate::wrap::public_key(&self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl fmt::Debug for HpkeSecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HPKE private key for {:?}", self.public())
    }
}

/// An X25519 public key that HPKE seals to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HpkePublicKey(pub [u8; 32]);

impl fmt::Debug for HpkePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HpkePublicKey({})", hex::encode(self.0))
    }
}

/// An enrolled device's two private keys.
#[derive(Debug)]
pub struct DeviceKeys {
    /// Signs device-originated statements.
    pub signing: DeviceSigningKey,
    /// Receives key packages.
    pub hpke: HpkeSecretKey,
}

impl DeviceKeys {
    /// Fresh keys from `rng`.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self {
            signing: DeviceSigningKey::generate(rng),
            hpke: HpkeSecretKey::generate(rng),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_domain_separated() {
        let key = AccountKey::from_seed(&[7; 32]);
        let sig = key.sign("keyhole test a", &[b"msg"]);
        assert!(
            key.public()
                .verify("keyhole test a", &[b"msg"], &sig)
                .is_ok()
        );
        assert!(
            key.public()
                .verify("keyhole test b", &[b"msg"], &sig)
                .is_err()
        );
        assert!(
            key.public()
                .verify("keyhole test a", &[b"msG"], &sig)
                .is_err()
        );
        let other = AccountKey::from_seed(&[8; 32]);
        assert!(
            other
                .public()
                .verify("keyhole test a", &[b"msg"], &sig)
                .is_err()
        );
    }

    #[test]
    fn account_code_shape_and_matching() {
        let code = AccountKey::from_seed(&[1; 32]).public().account_code();
        let s = code.to_string();
        assert_eq!(s.len(), 8 * 5 + 7);
        assert!(code.matches(&s.replace(' ', "-")));
        assert!(code.matches(&s.replace(' ', "")));
        let mut wrong = s.clone().into_bytes();
        wrong[0] = if wrong[0] == b'9' { b'0' } else { wrong[0] + 1 };
        assert!(!code.matches(std::str::from_utf8(&wrong).unwrap()));
        assert!(!code.matches(&format!("{s}x")));
        assert_ne!(
            code,
            AccountKey::from_seed(&[2; 32]).public().account_code()
        );
    }

    #[test]
    fn debug_prints_no_secret() {
        let key = HpkeSecretKey::from_bytes(&[0x5a; 32]);
        assert!(!format!("{key:?}").contains("5a5a5a5a"));
        let acct = AccountKey::from_seed(&[0x5a; 32]);
        assert!(!format!("{acct:?}").contains("5a5a5a5a"));
    }
}
