//! Signed statements (PROTOCOL.md §2.4). Every roster, camera record, account log entry, share
//! and acceptance is its body's canonical encoding followed by the signed tail
//! ([`crate::signer`]): the signer — the account key, or a device of the account's roster — and
//! an Ed25519 signature over everything before it under a context of the kind's own.
//!
//! The mechanics are the same for every kind, so they live here once: a kind says how its body
//! is encoded, decoded and checked ([`Signable`]), and [`Signed`] does the rest — signing,
//! decoding body and tail, keeping the exact bytes, and checking the tail against the roster in
//! force or the account key. What a kind adds stays with it: the roster's and the log's chains
//! and the account key's part in them ([`crate::roster`], [`crate::log`]), a camera record's
//! camera key and epoch ([`crate::record`]).
//!
//! Shares (§16.1) and acceptances (§16.3) are also [`Statement`]s, which change by versions: one
//! is accepted only if the roster in force lists its signer, a newer version replaces an older
//! one, and two different statements with one version are a fork.

use std::fmt;

use thiserror::Error;

use crate::codec::{DecodeError, Reader};
use crate::ids::{DeviceId, Timestamp};
use crate::keys::{AccountPublicKey, Signature};
use crate::roster::Roster;
use crate::signer::{self, Refusal, Signer, SignerKey};

/// A body that is signed with the signed tail: one kind of signed statement, and its errors.
pub trait Signable: Clone + PartialEq + Eq + fmt::Debug {
    /// Why a statement of this kind is refused; a [`DecodeError`] becomes its `Malformed`.
    type Error: From<DecodeError>;
    /// Its name in errors.
    const NAME: &'static str;
    /// Its signing context, so that no signature of one kind passes as another's.
    const CONTEXT: &'static str;
    /// The account whose key, or whose roster's devices, sign it.
    fn account(&self) -> &AccountPublicKey;
    /// The canonical encoding, signed tail not included.
    fn encode(&self) -> Vec<u8>;
    /// Reads a body written by [`Signable::encode`].
    ///
    /// # Errors
    /// Anything not well formed.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// The rules no encoding shows: limits, nothing listed twice, and version (or sequence) 0
    /// and `u64::MAX` refused (the last has no successor). Checked before signing and after
    /// decoding, so nothing that breaks them is ever signed or accepted.
    ///
    /// # Errors
    /// The rule broken.
    fn check(&self) -> Result<(), DecodeError>;
    /// This kind's error for a statement of another account than the key that signs it or the
    /// roster it is checked under.
    fn wrong_account() -> Self::Error;
    /// This kind's error for a tail that was refused: the one place each kind says how it names
    /// an unlisted signer or a bad signature.
    fn refused(&self, refusal: Refusal) -> Self::Error;
}

/// What a kind of statement that changes by versions says: shares and acceptances.
pub trait Statement: Signable<Error = StatementError> {
    /// What it is about besides its signer (a camera), or `()`.
    type Subject: Copy + PartialEq + fmt::Debug;
    /// What it is about.
    fn subject(&self) -> Self::Subject;
    /// Starts at 1 and increases with every change.
    fn version(&self) -> u64;
    /// The same content one version on, issued at `issued_at`.
    #[must_use]
    fn successor(&self, issued_at: Timestamp) -> Self;
}

/// Why a statement was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StatementError {
    /// The bytes are not a well-formed statement.
    #[error("malformed statement: {0}")]
    Malformed(DecodeError),
    /// The statement is another account's.
    #[error("{what} belongs to another account")]
    WrongAccount {
        /// The kind of statement.
        what: &'static str,
    },
    /// The signature does not verify under its signer's key.
    #[error("{what} signature does not verify under its signer's key")]
    BadSignature {
        /// The kind of statement.
        what: &'static str,
    },
    /// Signed by a device the roster in force does not list: revoked, or never enrolled.
    #[error(
        "{what} is signed by device {device}, which the account's roster does not list (revoked \
         or never enrolled)"
    )]
    UnlistedSigner {
        /// The kind of statement.
        what: &'static str,
        /// The device named as signer.
        device: DeviceId,
    },
    /// The statement is about something else (another camera).
    #[error("{what} is about {found}, expected {expected}")]
    WrongSubject {
        /// The kind of statement.
        what: &'static str,
        /// What was asked about.
        expected: String,
        /// What the statement names.
        found: String,
    },
    /// Older than a version already seen.
    #[error("{what} version {offered} is older than version {trusted} (rollback)")]
    Rollback {
        /// The kind of statement.
        what: &'static str,
        /// Version offered.
        offered: u64,
        /// Version already trusted.
        trusted: u64,
    },
    /// Same version, other content.
    #[error("{what} version {version} differs from the one already seen (fork)")]
    Fork {
        /// The kind of statement.
        what: &'static str,
        /// The version that exists twice.
        version: u64,
    },
}

crate::codec::malformed_from!(StatementError);

impl StatementError {
    /// A refused tail of a statement of kind `what`, as [`Signable::refused`] names it for shares
    /// and acceptances.
    pub(crate) fn refused(what: &'static str, refusal: Refusal) -> Self {
        match refusal {
            Refusal::Unlisted(device) => Self::UnlistedSigner { what, device },
            Refusal::BadSignature => Self::BadSignature { what },
        }
    }
}

/// A signed statement as received or made: its body, its tail and its exact bytes. Nothing is
/// trusted until its kind verifies it under its own rules ([`Roster::accept`],
/// [`crate::record::CameraRecord::accept`], [`crate::log::LogHead::accept`],
/// [`Verified::accept`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<S> {
    body: S,
    signer: Signer,
    signature: Signature,
    /// The bytes as signed or received: holders compare, hash and store these, never a
    /// re-encoding.
    encoded: Vec<u8>,
}

/// A statement verified under the roster in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<S> {
    signed: Signed<S>,
}

/// Signs `body` with `key`: the account key of the body's account, or a device's key. Whether
/// that signer may sign it is for the holders to check against the roster in force.
///
/// # Errors
/// The kind's `WrongAccount` for another account's key; its `Malformed` for a body
/// [`Signable::check`] refuses.
pub fn sign<S: Signable>(body: S, key: SignerKey<'_>) -> Result<Signed<S>, S::Error> {
    if let SignerKey::Account(key) = key
        && key.public() != *body.account()
    {
        return Err(S::wrong_account());
    }
    body.check()?;
    let (signature, encoded) = key.seal(S::CONTEXT, body.encode());
    Ok(Signed {
        body,
        signer: key.signer(),
        signature,
        encoded,
    })
}

impl<S: Signable> Signed<S> {
    /// Parses a statement; nothing is trusted until it is verified.
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not exactly one well-formed, canonical statement.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let body = S::decode(&mut r)?;
        let (signer, signature) = signer::read_tail(&mut r)?;
        r.finish()?;
        body.check()?;
        Ok(Self {
            body,
            signer,
            signature,
            encoded: bytes.to_vec(),
        })
    }

    /// The canonical encoding.
    #[must_use]
    pub fn encoded(&self) -> &[u8] {
        &self.encoded
    }

    /// The content, unverified.
    #[must_use]
    pub fn unverified_body(&self) -> &S {
        &self.body
    }

    /// Who signed it, as it says (checked by verification).
    #[must_use]
    pub fn signer(&self) -> Signer {
        self.signer
    }

    /// Refuses a statement of another account than `account`. Each kind checks this first, so
    /// another account's statement is named as such whatever else is wrong with it.
    pub(crate) fn check_account(&self, account: &AccountPublicKey) -> Result<(), S::Error> {
        if self.body.account() == account {
            Ok(())
        } else {
            Err(S::wrong_account())
        }
    }

    /// Checks the tail against `roster`, the roster in force: the account key, or a device it
    /// lists under the key it lists for that device ([`Roster::verify_signed`]).
    pub(crate) fn verify_tail(&self, roster: &Roster) -> Result<(), S::Error> {
        roster
            .verify_signed(self.signer, S::CONTEXT, self.signed_part(), &self.signature)
            .map_err(|refusal| self.body.refused(refusal))
    }

    /// Checks the tail as the account key's, for what only `account` may sign (where a chain
    /// starts): with no roster in force, every device is unlisted.
    pub(crate) fn verify_account_tail(&self, account: &AccountPublicKey) -> Result<(), S::Error> {
        let verified = match self.signer {
            Signer::Device(id) => Err(Refusal::Unlisted(id)),
            Signer::Account => account
                .verify(S::CONTEXT, &[self.signed_part()], &self.signature)
                .map_err(|_| Refusal::BadSignature),
        };
        verified.map_err(|refusal| self.body.refused(refusal))
    }

    /// The bytes the signature covers: everything before its 64 bytes.
    fn signed_part(&self) -> &[u8] {
        &self.encoded[..self.encoded.len() - self.signature.0.len()]
    }
}

impl<S: Statement> Signed<S> {
    /// Verifies the statement as one about `subject` by the account of `roster`, the roster in
    /// force: signed by the account key or a device it lists.
    ///
    /// # Errors
    /// [`StatementError::WrongAccount`], [`StatementError::WrongSubject`],
    /// [`StatementError::UnlistedSigner`] or [`StatementError::BadSignature`].
    pub fn verify_about(
        self,
        roster: &Roster,
        subject: &S::Subject,
    ) -> Result<Verified<S>, StatementError> {
        self.check_account(roster.account())?;
        if self.body.subject() != *subject {
            return Err(StatementError::WrongSubject {
                what: S::NAME,
                expected: format!("{subject:?}"),
                found: format!("{:?}", self.body.subject()),
            });
        }
        self.verify_tail(roster)?;
        Ok(Verified { signed: self })
    }

    /// Verifies the statement as the successor of `held` ([`Verified::accept`]), or, with none
    /// held, as the first one about `subject`, under `roster`, the roster in force.
    ///
    /// # Errors
    /// As [`Verified::accept`] or [`Signed::verify_about`].
    pub fn verify_after(
        self,
        held: Option<&Verified<S>>,
        roster: &Roster,
        subject: &S::Subject,
    ) -> Result<Verified<S>, StatementError> {
        match held {
            Some(held) => held.accept(self, roster),
            None => self.verify_about(roster, subject),
        }
    }
}

impl<S: Statement> Verified<S> {
    /// The verified content.
    #[must_use]
    pub fn body(&self) -> &S {
        &self.signed.body
    }

    /// The signed form.
    #[must_use]
    pub fn signed(&self) -> &Signed<S> {
        &self.signed
    }

    /// Accepts `next` in place of this statement: the same account and subject, and identical
    /// or a newer version signed by a signer `roster` (the roster in force) lists.
    ///
    /// # Errors
    /// Each refusal names what was wrong.
    pub fn accept(&self, next: Signed<S>, roster: &Roster) -> Result<Self, StatementError> {
        if next.encoded == self.signed.encoded {
            // Its signer was checked when it was first accepted, and may have left since.
            return Ok(self.clone());
        }
        let body = self.body();
        next.check_account(body.account())?;
        let (trusted, offered) = (body.version(), next.body.version());
        if offered < trusted {
            return Err(StatementError::Rollback {
                what: S::NAME,
                offered,
                trusted,
            });
        }
        let next = next.verify_about(roster, &body.subject())?;
        if offered == trusted {
            return Err(StatementError::Fork {
                what: S::NAME,
                version: offered,
            });
        }
        Ok(next)
    }

    /// The body for the next version; edit it, then sign it.
    #[must_use]
    pub fn successor(&self, issued_at: Timestamp) -> S {
        self.body().successor(issued_at)
    }
}
