//! Device proofs (PROTOCOL.md §17): an enrolled device's signature over one HTTP request, under
//! a single-use challenge the server issued for it.
//!
//! The server asks for one where a bearer token alone must not be enough: to issue a device a
//! credential (the password never does), and for every request that destroys or replaces
//! something (footage, cameras, retention, credentials, the recovery backup, key packages, the
//! password). A proof counts only if the roster in force lists the device, so a revoked device
//! makes none, whatever it kept; the challenge makes each proof good for one request, once.

use std::fmt;

use thiserror::Error;

use crate::codec::{DecodeError, Writer};
use crate::ids::DeviceId;
use crate::keys::{DeviceSigningKey, Signature};
use crate::roster::Roster;

/// Signing context of a device proof.
pub const CONTEXT: &str = "keyhole device proof v1";
/// Bytes of a challenge.
pub const CHALLENGE_LEN: usize = 32;
/// The HTTP header that carries a proof.
pub const HEADER: &str = "keyhole-proof";

/// A challenge the server issued: random, single-use, short-lived.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Challenge(pub [u8; CHALLENGE_LEN]);

impl fmt::Debug for Challenge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Challenge({}…)", hex::encode(&self.0[..4]))
    }
}

impl Challenge {
    /// Parses the 64 hex digits the server sends.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for anything else.
    pub fn from_hex(s: &str) -> Result<Self, DecodeError> {
        let mut out = [0; CHALLENGE_LEN];
        hex::decode_to_slice(s, &mut out).map_err(|_| DecodeError::Invalid("challenge"))?;
        Ok(Self(out))
    }
}

/// The request a proof is for, as the server receives it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The HTTP method, upper case (`DELETE`).
    pub method: &'a str,
    /// The path and query, as sent (`/v1/cameras/…?footage=delete`).
    pub target: &'a str,
    /// The body's bytes (empty for none).
    pub body: &'a [u8],
}

impl Request<'_> {
    /// What is signed: the challenge, the device, the method, the target and the body's BLAKE3
    /// digest, each length-prefixed where its length varies, so no two requests sign alike.
    fn message(&self, challenge: &Challenge, device: DeviceId) -> Result<Vec<u8>, ProofError> {
        let method = u8::try_from(self.method.len()).map_err(|_| ProofError::TooLong)?;
        let target = u16::try_from(self.target.len()).map_err(|_| ProofError::TooLong)?;
        let mut w = Writer::with_capacity(CHALLENGE_LEN + 16 + 3 + self.target.len() + 64);
        w.bytes(&challenge.0)
            .bytes(&device.0)
            .u8(method)
            .bytes(self.method.as_bytes())
            .u16(target)
            .bytes(self.target.as_bytes())
            .bytes(blake3::hash(self.body).as_bytes());
        Ok(w.into_vec())
    }
}

/// A device's signature over one request under one challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceProof {
    /// The challenge it answers.
    pub challenge: Challenge,
    /// The device's signature.
    pub signature: Signature,
}

/// Why a proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The header is not a proof.
    #[error("malformed device proof: {0}")]
    Malformed(DecodeError),
    /// The roster in force does not list the device: revoked, or never enrolled.
    #[error("device {0} is not in the account's roster (revoked or never enrolled)")]
    Unlisted(DeviceId),
    /// The signature is not the device's over this request and challenge.
    #[error("the device proof does not verify for this request")]
    BadSignature,
    /// The method or target is longer than a proof can name.
    #[error("the request is too long to prove")]
    TooLong,
}

crate::codec::malformed_from!(ProofError);

impl DeviceProof {
    /// Signs `request` as `device` under `challenge`.
    ///
    /// # Errors
    /// [`ProofError::TooLong`] for a method over 255 or a target over 65,535 bytes.
    pub fn sign(
        challenge: Challenge,
        device: DeviceId,
        key: &DeviceSigningKey,
        request: &Request<'_>,
    ) -> Result<Self, ProofError> {
        let message = request.message(&challenge, device)?;
        Ok(Self {
            challenge,
            signature: key.sign(CONTEXT, &[&message]),
        })
    }

    /// Checks the proof is `device`'s over `request`, `device` being listed by `roster`, the
    /// roster in force. (Whether the challenge is fresh and issued for this device is the
    /// server's to check: it issued it.)
    ///
    /// # Errors
    /// [`ProofError::Unlisted`] or [`ProofError::BadSignature`].
    pub fn verify(
        &self,
        roster: &Roster,
        device: DeviceId,
        request: &Request<'_>,
    ) -> Result<(), ProofError> {
        let entry = roster.device(&device).ok_or(ProofError::Unlisted(device))?;
        let message = request.message(&self.challenge, device)?;
        entry
            .signing_key
            .verify(CONTEXT, &[&message], &self.signature)
            .map_err(|_| ProofError::BadSignature)
    }

    /// The header value: the challenge and the signature in hex, joined by a dot.
    #[must_use]
    pub fn encode(&self) -> String {
        format!(
            "{}.{}",
            hex::encode(self.challenge.0),
            hex::encode(self.signature.0)
        )
    }

    /// Parses a header value written by [`DeviceProof::encode`].
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for anything else.
    pub fn decode(value: &str) -> Result<Self, DecodeError> {
        let (challenge, signature) = value
            .split_once('.')
            .ok_or(DecodeError::Invalid("device proof"))?;
        let mut sig = [0; 64];
        hex::decode_to_slice(signature, &mut sig)
            .map_err(|_| DecodeError::Invalid("device proof signature"))?;
        Ok(Self {
            challenge: Challenge::from_hex(challenge)?,
            signature: Signature(sig),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::roster::fixture::Account;

    const REQUEST: Request<'static> = Request {
        method: "DELETE",
        target: "/v1/objects/00",
        body: b"",
    };

    #[test]
    fn a_listed_device_proves_exactly_the_request_it_signed() {
        let account = Account::new();
        let (roster, id, key) = (&account.roster, account.device_id, &account.device.signing);
        let proof = DeviceProof::sign(Challenge([7; 32]), id, key, &REQUEST).unwrap();
        let proof = DeviceProof::decode(&proof.encode()).unwrap();
        assert_eq!(proof.verify(roster, id, &REQUEST), Ok(()));
        let other = [
            Request {
                target: "/v1/objects/01",
                ..REQUEST
            },
            Request {
                method: "GET",
                ..REQUEST
            },
            Request {
                body: b"x",
                ..REQUEST
            },
        ];
        for request in other {
            assert_eq!(
                proof.verify(roster, id, &request),
                Err(ProofError::BadSignature)
            );
        }
        let replayed = DeviceProof {
            challenge: Challenge([8; 32]),
            ..proof
        };
        assert_eq!(
            replayed.verify(roster, id, &REQUEST),
            Err(ProofError::BadSignature)
        );
    }

    #[test]
    fn a_revoked_device_proves_nothing_with_the_key_it_kept() {
        let account = Account::new();
        let (id, key) = (account.device_id, &account.device.signing);
        let proof = DeviceProof::sign(Challenge([7; 32]), id, key, &REQUEST).unwrap();
        assert_eq!(
            proof.verify(&account.revoked(), id, &REQUEST),
            Err(ProofError::Unlisted(id))
        );
    }

    #[test]
    fn an_unlisted_device_proves_nothing() {
        let account = Account::new();
        let stranger = DeviceId([9; 16]);
        let key = DeviceSigningKey::from_seed(&[9; 32]);
        let proof = DeviceProof::sign(Challenge([7; 32]), stranger, &key, &REQUEST).unwrap();
        assert_eq!(
            proof.verify(&account.roster, stranger, &REQUEST),
            Err(ProofError::Unlisted(stranger))
        );
    }

    #[test]
    fn malformed_headers_are_refused() {
        for bad in ["", ".", "00.00", "zz.zz", &"0".repeat(64), "a.b.c"] {
            assert!(DeviceProof::decode(bad).is_err(), "{bad:?}");
        }
    }
}
