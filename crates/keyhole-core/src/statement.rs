//! Account-signed statements that change by versions: share statements (§16.1) and acceptance
//! statements (§16.3). Each is its body's canonical encoding followed by an Ed25519 signature over
//! it, by the account key under a context of the statement's own; a newer version replaces an
//! older one, and two different statements with one version are a fork.

use std::fmt;

use thiserror::Error;

use crate::codec::{DecodeError, Reader};
use crate::ids::Timestamp;
use crate::keys::{AccountKey, AccountPublicKey, BadSignature, Signature};

/// What a kind of statement says, and how it is encoded.
pub trait Statement: Clone + PartialEq + Eq + fmt::Debug {
    /// What it is about besides its signer (a camera), or `()`.
    type Subject: Copy + PartialEq + fmt::Debug;
    /// Its name in errors.
    const NAME: &'static str;
    /// Its signing context.
    const CONTEXT: &'static str;
    /// The account whose key signs.
    fn signer(&self) -> &AccountPublicKey;
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
    /// The signature does not verify under the account key.
    #[error("{what} signature does not verify under the account key")]
    BadSignature {
        /// The kind of statement.
        what: &'static str,
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
    signature: Signature,
    encoded: Vec<u8>,
}

/// A statement verified under its signer's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<S> {
    signed: Signed<S>,
}

/// Signs `body` with `key`, which must be its signer's.
///
/// # Errors
/// [`StatementError::WrongAccount`] for another key; [`StatementError::Malformed`] for a body
/// [`Statement::check`] refuses.
pub fn sign<S: Statement>(body: S, key: &AccountKey) -> Result<Signed<S>, StatementError> {
    if key.public() != *body.signer() {
        return Err(StatementError::WrongAccount { what: S::NAME });
    }
    body.check()?;
    let mut encoded = body.encode();
    let signature = key.sign(S::CONTEXT, &[&encoded]);
    encoded.extend_from_slice(&signature.0);
    Ok(Signed {
        body,
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
        let signature = Signature(r.array("signature")?);
        r.finish()?;
        body.check()?;
        Ok(Self {
            body,
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

    /// Verifies the statement as `signer`'s about `subject`.
    ///
    /// # Errors
    /// [`StatementError::WrongAccount`], [`StatementError::WrongSubject`] or
    /// [`StatementError::BadSignature`].
    pub fn verify_about(
        self,
        signer: &AccountPublicKey,
        subject: &S::Subject,
    ) -> Result<Verified<S>, StatementError> {
        if self.body.signer() != signer {
            return Err(StatementError::WrongAccount { what: S::NAME });
        }
        if self.body.subject() != *subject {
            return Err(StatementError::WrongSubject {
                what: S::NAME,
                expected: format!("{subject:?}"),
                found: format!("{:?}", self.body.subject()),
            });
        }
        let body_len = self.encoded.len() - 64;
        signer
            .verify(S::CONTEXT, &[&self.encoded[..body_len]], &self.signature)
            .map_err(|_: BadSignature| StatementError::BadSignature { what: S::NAME })?;
        Ok(Verified { signed: self })
    }
}

impl<S: Statement> Signed<S> {
    /// Verifies the statement as the successor of `held` ([`Verified::accept`]), or, with none
    /// held, as `signer`'s first one about `subject`.
    ///
    /// # Errors
    /// As [`Verified::accept`] or [`Signed::verify_about`].
    pub fn verify_after(
        self,
        held: Option<&Verified<S>>,
        signer: &AccountPublicKey,
        subject: &S::Subject,
    ) -> Result<Verified<S>, StatementError> {
        match held {
            Some(held) => held.accept(self),
            None => self.verify_about(signer, subject),
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

    /// Accepts `next` in place of this statement: the same signer and subject, and identical or
    /// a newer version.
    ///
    /// # Errors
    /// Each refusal names what was wrong.
    pub fn accept(&self, next: Signed<S>) -> Result<Self, StatementError> {
        let body = self.body();
        let next = next.verify_about(body.signer(), &body.subject())?;
        let (trusted, offered) = (body.version(), next.body().version());
        if offered < trusted {
            return Err(StatementError::Rollback {
                what: S::NAME,
                offered,
                trusted,
            });
        }
        if offered == trusted && next.signed.encoded != self.signed.encoded {
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
