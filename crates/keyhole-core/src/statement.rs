//! Account statements that change by versions: share statements (§16.1) and acceptance
//! statements (§16.3). Each is its body's canonical encoding followed by the signed tail
//! ([`crate::signer`]): the signer — a device of the account's roster, or the account key — and
//! an Ed25519 signature over everything before it under a context of the statement's own. It is
//! accepted only if the roster in force lists its signer; a newer version replaces an older one,
//! and two different statements with one version are a fork.

use std::fmt;

use thiserror::Error;

use crate::codec::{DecodeError, Reader};
use crate::ids::{DeviceId, Timestamp};
use crate::keys::{AccountPublicKey, Signature};
use crate::roster::Roster;
use crate::signer::{self, Refusal, Signer, SignerKey};

/// What a kind of statement says, and how it is encoded.
pub trait Statement: Clone + PartialEq + Eq + fmt::Debug {
    /// What it is about besides its signer (a camera), or `()`.
    type Subject: Copy + PartialEq + fmt::Debug;
    /// Its name in errors.
    const NAME: &'static str;
    /// Its signing context.
    const CONTEXT: &'static str;
    /// The account whose roster's devices sign.
    fn account(&self) -> &AccountPublicKey;
    /// What it is about.
    fn subject(&self) -> Self::Subject;
    /// Starts at 1 and increases with every change.
    fn version(&self) -> u64;
    /// The same content one version on, issued at `issued_at`.
    #[must_use]
    fn successor(&self, issued_at: Timestamp) -> Self;
    /// The canonical encoding, signature not included.
    fn encode(&self) -> Vec<u8>;
    /// Reads a body written by [`Statement::encode`].
    ///
    /// # Errors
    /// Anything not well formed.
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
    /// The rules no encoding shows: limits, nothing listed twice, and version 0 and `u64::MAX`
    /// refused (the last has no successor).
    ///
    /// # Errors
    /// The rule broken.
    fn check(&self) -> Result<(), DecodeError>;
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

/// A statement as received: parsed, signature not yet checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<S> {
    body: S,
    signer: Signer,
    signature: Signature,
    encoded: Vec<u8>,
}

/// A statement verified under the roster in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<S> {
    signed: Signed<S>,
}

/// Signs `body` with `key`: a device of the body's account (or its account key).
///
/// # Errors
/// [`StatementError::WrongAccount`] for another account's key; [`StatementError::Malformed`] for
/// a body [`Statement::check`] refuses.
pub fn sign<S: Statement>(body: S, key: SignerKey<'_>) -> Result<Signed<S>, StatementError> {
    if let SignerKey::Account(key) = key
        && key.public() != *body.account()
    {
        return Err(StatementError::WrongAccount { what: S::NAME });
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

impl<S: Statement> Signed<S> {
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
        if self.body.account() != roster.account() {
            return Err(StatementError::WrongAccount { what: S::NAME });
        }
        if self.body.subject() != *subject {
            return Err(StatementError::WrongSubject {
                what: S::NAME,
                expected: format!("{subject:?}"),
                found: format!("{:?}", self.body.subject()),
            });
        }
        let signed = &self.encoded[..self.encoded.len() - 64];
        roster
            .verify_signed(self.signer, S::CONTEXT, signed, &self.signature)
            .map_err(|refusal| match refusal {
                Refusal::Unlisted(device) => StatementError::UnlistedSigner {
                    what: S::NAME,
                    device,
                },
                Refusal::BadSignature => StatementError::BadSignature { what: S::NAME },
            })?;
        Ok(Verified { signed: self })
    }
}

impl<S: Statement> Signed<S> {
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
        if next.body.account() != body.account() {
            return Err(StatementError::WrongAccount { what: S::NAME });
        }
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
