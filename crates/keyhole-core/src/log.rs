//! The account log: every change to what the account trusts — a roster version, a camera record
//! version, a share — is one entry of a single list, hash-chained, each entry naming its signer:
//! entry 1 the account key, every later one the account key or a device the roster in force
//! lists (the roster the newest roster entry before it records), so a revoked device can append
//! nothing that devices accept.
//!
//! Rosters already chain, but camera records only carry versions, so a server could show two of
//! the owner's devices different record histories without either noticing. With the log, each
//! device keeps the newest entry it verified (its *head*) and publishes it signed with its own
//! key ([`HeadStatement`]); a device that finds another device's head off its own chain knows the
//! server showed them different histories ([`compare`] returns [`LogError::Fork`]).

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::chain::{self, Break, Step};
use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::envelope::ObjectDigest;
use crate::ids::{CameraId, DeviceId, Timestamp};
use crate::keys::{
    AccountPublicKey, BadSignature, DeviceSigningKey, DeviceSigningPublicKey, Signature,
};
use crate::report::HighWater;
use crate::roster::Roster;
use crate::signer::{Refusal, Signer, SignerKey};
use crate::statement::{self, Signable, Signed};

const ENTRY_MAGIC: &[u8; 4] = b"KHLG";
const HEAD_MAGIC: &[u8; 4] = b"KHLH";
const FORMAT: u8 = 2;
const ENTRY_CONTEXT: &str = "keyhole account log v2";
const HEAD_FORMAT: u8 = 3;
const HEAD_CONTEXT: &str = "keyhole log head v2";
/// Bytes of an encoded entry, signer and signature included.
pub const ENTRY_LEN: usize = 223;
/// Bytes of an encoded head statement with no camera marks, signature included.
pub const HEAD_LEN: usize = 167;
/// Bytes of each camera mark a head statement carries.
pub const MARK_LEN: usize = 56;
/// Most camera marks one head statement carries.
pub const MAX_MARKS: usize = 1024;
/// Where a head statement's mark count sits.
const MARK_COUNT_AT: usize = 101;

/// SHA-256 of an entry's full encoding; each entry names its predecessor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct LogHash(pub [u8; 32]);

/// What an entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EntryKind {
    /// A roster version; the subject is all zero.
    Roster,
    /// A camera record version; the subject is the camera id.
    CameraRecord,
    /// A share of a camera with another account, or its withdrawal; the subject is the camera id.
    Share,
    /// The accounts whose shares this account accepts; the subject is all zero.
    Acceptance,
    /// A camera's retention floor (PROTOCOL.md §11.5); the subject is the camera id.
    Retention,
}

impl EntryKind {
    fn id(self) -> u8 {
        match self {
            Self::Roster => 1,
            Self::CameraRecord => 2,
            Self::Share => 3,
            Self::Acceptance => 4,
            Self::Retention => 5,
        }
    }

    fn from_id(id: u8) -> Result<Self, DecodeError> {
        match id {
            1 => Ok(Self::Roster),
            2 => Ok(Self::CameraRecord),
            3 => Ok(Self::Share),
            4 => Ok(Self::Acceptance),
            5 => Ok(Self::Retention),
            _ => Err(DecodeError::Invalid("log entry kind")),
        }
    }
}

/// An entry's content, before or after signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryBody {
    /// The account whose key signs the log.
    pub account: AccountPublicKey,
    /// Starts at 1 and increases by exactly 1 with each entry.
    pub sequence: u64,
    /// Hash of the entry before; all zero for sequence 1.
    pub previous: LogHash,
    /// When the signing device made the entry.
    pub issued_at: Timestamp,
    /// What the entry records.
    pub kind: EntryKind,
    /// The camera id for camera records and shares, all zero for rosters.
    pub subject: [u8; 16],
    /// The recorded statement's own version.
    pub version: u64,
    /// SHA-256 of the recorded statement's full encoding (signature included).
    pub statement: [u8; 32],
}

/// An entry as received: parsed, signature not yet checked.
pub type SignedEntry = Signed<EntryBody>;

/// The newest entry a device has verified, with everything before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogHead {
    entry: SignedEntry,
}

/// Why an entry or a head was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LogError {
    /// The bytes are not a well-formed entry or head statement.
    #[error("malformed log entry: {0}")]
    Malformed(DecodeError),
    /// The entry or statement names another account.
    #[error("log entry belongs to another account")]
    WrongAccount,
    /// The signature does not verify.
    #[error("log signature does not verify")]
    BadSignature,
    /// Signed by a device the roster in force does not list: revoked, or never enrolled.
    #[error(
        "log entry {sequence} is signed by device {device}, which the roster in force does not \
         list (revoked or never enrolled)"
    )]
    UnlistedSigner {
        /// The entry's sequence number.
        sequence: u64,
        /// The device named as signer.
        device: DeviceId,
    },
    /// The first entry is signed by a device: the account key alone starts a log.
    #[error("the first log entry must be signed by the account key")]
    FirstNotByAccount,
    /// An entry older than the head: a rollback.
    #[error("log entry {offered} is older than the trusted head {trusted} (rollback)")]
    Rollback {
        /// Sequence offered.
        offered: u64,
        /// Sequence of the head.
        trusted: u64,
    },
    /// Two different entries with one sequence number: two histories exist.
    #[error("log entry {sequence} differs from the one already trusted (forked history)")]
    Fork {
        /// The sequence that exists twice.
        sequence: u64,
    },
    /// The entry skips sequence numbers, so the chain cannot be checked.
    #[error("log jumps from entry {trusted} to {offered}; the entries between are needed")]
    Gap {
        /// Sequence of the head.
        trusted: u64,
        /// Sequence offered.
        offered: u64,
    },
    /// The previous-hash field does not name the head.
    #[error("log entry {sequence} does not chain to the trusted head (broken chain)")]
    BrokenChain {
        /// The sequence whose link is wrong.
        sequence: u64,
    },
    /// Entry 1 must have an all-zero previous hash.
    #[error("the first log entry must not name a predecessor")]
    BadGenesis,
}

crate::codec::malformed_from!(LogError);

impl From<BadSignature> for LogError {
    fn from(_: BadSignature) -> Self {
        Self::BadSignature
    }
}

/// SHA-256 of a statement's encoding, as an entry names it.
#[must_use]
pub fn statement_hash(encoded: &[u8]) -> [u8; 32] {
    Sha256::digest(encoded).into()
}

impl Signable for EntryBody {
    type Error = LogError;
    const NAME: &'static str = "log entry";
    const CONTEXT: &'static str = ENTRY_CONTEXT;

    fn account(&self) -> &AccountPublicKey {
        &self.account
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(ENTRY_LEN);
        w.bytes(ENTRY_MAGIC).u8(FORMAT);
        w.bytes(&self.account.to_bytes())
            .u64(self.sequence)
            .bytes(&self.previous.0);
        w.u64(self.issued_at.0)
            .u8(self.kind.id())
            .bytes(&self.subject);
        w.u64(self.version).bytes(&self.statement);
        w.into_vec()
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_magic(r, ENTRY_MAGIC, FORMAT, "log entry")?;
        Ok(Self {
            account: AccountPublicKey::from_bytes(&r.array("account key")?)?,
            sequence: r.u64("sequence")?,
            previous: LogHash(r.array("previous hash")?),
            issued_at: Timestamp(r.u64("issued at")?),
            kind: EntryKind::from_id(r.u8("kind")?)?,
            subject: r.array("subject")?,
            version: r.u64("statement version")?,
            statement: r.array("statement hash")?,
        })
    }

    fn check(&self) -> Result<(), DecodeError> {
        // As for rosters: 0 is never a sequence, and u64::MAX has no successor.
        if self.sequence == 0 || self.sequence == u64::MAX {
            return Err(DecodeError::Invalid("log sequence"));
        }
        if matches!(self.kind, EntryKind::Roster | EntryKind::Acceptance) && self.subject != [0; 16]
        {
            return Err(DecodeError::Invalid(
                "a roster or acceptance entry names no camera",
            ));
        }
        Ok(())
    }

    fn wrong_account() -> LogError {
        LogError::WrongAccount
    }

    fn refused(&self, refusal: Refusal) -> LogError {
        match refusal {
            Refusal::Unlisted(device) => LogError::UnlistedSigner {
                sequence: self.sequence,
                device,
            },
            Refusal::BadSignature => LogError::BadSignature,
        }
    }
}

impl EntryBody {
    /// Whether this entry records the statement `encoded` of this kind, subject and version.
    #[must_use]
    pub fn records(
        &self,
        kind: EntryKind,
        subject: [u8; 16],
        version: u64,
        encoded: &[u8],
    ) -> bool {
        self.kind == kind
            && self.subject == subject
            && self.version == version
            && self.statement == statement_hash(encoded)
    }

    /// Signs this body with the account key (entry 1) or a listed device's key.
    ///
    /// # Errors
    /// [`LogError::WrongAccount`] if `key` is an account key other than `self.account`;
    /// [`LogError::Malformed`] for sequence 0 or `u64::MAX`, or a roster entry with a subject.
    pub fn sign(self, key: SignerKey<'_>) -> Result<SignedEntry, LogError> {
        statement::sign(self, key)
    }
}

impl SignedEntry {
    /// This entry's hash.
    #[must_use]
    pub fn hash(&self) -> LogHash {
        LogHash(Sha256::digest(self.encoded()).into())
    }

    /// Checks the signature against `roster`, the roster in force where this entry stands: the
    /// account key, or a device that roster lists.
    ///
    /// # Errors
    /// [`LogError::WrongAccount`], [`LogError::UnlistedSigner`] or [`LogError::BadSignature`].
    pub fn verify_signature(&self, roster: &Roster) -> Result<(), LogError> {
        self.check_account(roster.account())?;
        self.verify_tail(roster)
    }

    /// Verifies entry 1 of `account`'s log, which the account key signs (it records roster
    /// version 1); later entries must chain from it.
    ///
    /// # Errors
    /// [`LogError::WrongAccount`], [`LogError::Gap`] (not entry 1),
    /// [`LogError::FirstNotByAccount`], [`LogError::BadSignature`] or [`LogError::BadGenesis`].
    pub fn verify_first(self, account: &AccountPublicKey) -> Result<LogHead, LogError> {
        self.check_account(account)?;
        let body = self.unverified_body();
        if body.sequence != 1 {
            return Err(LogError::Gap {
                trusted: 0,
                offered: body.sequence,
            });
        }
        if self.signer() != Signer::Account {
            return Err(LogError::FirstNotByAccount);
        }
        self.verify_account_tail(account)?;
        if body.previous != LogHash::default() {
            return Err(LogError::BadGenesis);
        }
        Ok(LogHead { entry: self })
    }
}

impl LogHead {
    /// The verified newest entry.
    #[must_use]
    pub fn entry(&self) -> &EntryBody {
        self.entry.unverified_body()
    }

    /// The signed form, for storing or sending.
    #[must_use]
    pub fn signed(&self) -> &SignedEntry {
        &self.entry
    }

    /// The head's sequence number.
    #[must_use]
    pub fn sequence(&self) -> u64 {
        self.entry().sequence
    }

    /// The head's hash.
    #[must_use]
    pub fn hash(&self) -> LogHash {
        self.entry.hash()
    }

    /// Accepts `next` as the new head: the same entry again (no change), or the direct successor
    /// (sequence + 1, chaining to this head's hash) signed by the account key or a device that
    /// `roster` — the roster in force after this head — lists.
    ///
    /// # Errors
    /// Each refusal names what was wrong: signer, signature, rollback, fork, gap or broken chain.
    pub fn accept(&self, next: SignedEntry, roster: &Roster) -> Result<LogHead, LogError> {
        next.check_account(&self.entry().account)?;
        let (trusted, offered) = (self.sequence(), next.unverified_body().sequence);
        let step = chain::step(
            trusted,
            offered,
            next.encoded() == self.entry.encoded(),
            next.unverified_body().previous == self.hash(),
        );
        match step {
            // The head itself: its signer was checked against the roster before it.
            Ok(Step::Same) => return Ok(self.clone()),
            Err(Break::Rollback) => return Err(LogError::Rollback { offered, trusted }),
            Err(Break::Gap) => return Err(LogError::Gap { trusted, offered }),
            Ok(Step::Next) | Err(Break::Fork | Break::BrokenChain) => {}
        }
        // A fork or a broken link is reported only for an entry a listed signer made.
        next.verify_signature(roster)?;
        match step {
            Err(Break::Fork) => Err(LogError::Fork { sequence: offered }),
            Err(_) => Err(LogError::BrokenChain { sequence: offered }),
            Ok(_) => Ok(LogHead { entry: next }),
        }
    }

    /// The body of the next entry, recording `statement` (its full encoding). Sign it with
    /// [`EntryBody::sign`].
    #[must_use]
    pub fn successor(
        &self,
        kind: EntryKind,
        subject: [u8; 16],
        version: u64,
        statement: &[u8],
        issued_at: Timestamp,
    ) -> EntryBody {
        EntryBody {
            account: self.entry().account,
            // A verified entry's sequence is below u64::MAX; `sign` refuses u64::MAX.
            sequence: self.sequence().saturating_add(1),
            previous: self.hash(),
            issued_at,
            kind,
            subject,
            version,
            statement: statement_hash(statement),
        }
    }
}

/// A device's signed word on the log head it holds, for the account's other devices to compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadStatement {
    /// The account whose log it is.
    pub account: AccountPublicKey,
    /// The device that holds this head.
    pub device: DeviceId,
    /// The head's sequence number.
    pub sequence: u64,
    /// The head's hash.
    pub head: LogHash,
    /// When the device last verified the log.
    pub seen_at: Timestamp,
    /// Per camera, the newest object the device verified (PROTOCOL.md §11.4), in increasing
    /// camera order: what one device saw, the account's other devices expect.
    pub marks: Vec<CameraMark>,
}

/// The newest object a device verified for one camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CameraMark {
    /// The camera.
    pub camera: CameraId,
    /// Its newest verified object.
    pub verified: HighWater,
}

impl HeadStatement {
    fn encode_body(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(HEAD_LEN + MARK_LEN * self.marks.len());
        w.bytes(HEAD_MAGIC).u8(HEAD_FORMAT);
        w.bytes(&self.account.to_bytes()).bytes(&self.device.0);
        w.u64(self.sequence).bytes(&self.head.0).u64(self.seen_at.0);
        // `sign` refuses more than MAX_MARKS, so the count fits.
        w.u16(u16::try_from(self.marks.len()).unwrap_or(u16::MAX));
        for mark in &self.marks {
            w.bytes(&mark.camera.0)
                .u64(mark.verified.sequence)
                .bytes(&mark.verified.digest.0);
        }
        w.into_vec()
    }

    /// The length of the head statement `bytes` starts with, from its mark count, to split a
    /// concatenation of them (`GET /v1/log/heads`).
    ///
    /// # Errors
    /// [`DecodeError`] if `bytes` is too short to name one.
    pub fn len_at(bytes: &[u8]) -> Result<usize, DecodeError> {
        let count = bytes
            .get(MARK_COUNT_AT..MARK_COUNT_AT + 2)
            .ok_or(DecodeError::Truncated("log head"))?;
        let count = usize::from(u16::from_be_bytes([count[0], count[1]]));
        Ok(HEAD_LEN + MARK_LEN * count)
    }

    /// Splits a concatenation of head statements into each one's bytes (not yet decoded).
    ///
    /// # Errors
    /// [`DecodeError`] if the last one is cut off.
    pub fn split(mut bytes: &[u8]) -> Result<Vec<&[u8]>, DecodeError> {
        let mut out = Vec::new();
        while !bytes.is_empty() {
            let len = Self::len_at(bytes)?;
            if bytes.len() < len {
                return Err(DecodeError::Truncated("log head"));
            }
            let (one, rest) = bytes.split_at(len);
            out.push(one);
            bytes = rest;
        }
        Ok(out)
    }

    /// Signs the statement with the device's key; returns its encoding. Marks beyond
    /// [`MAX_MARKS`] are left out (the newest cameras' first is not promised), and marks are put
    /// in camera order.
    #[must_use]
    pub fn sign(&self, key: &DeviceSigningKey) -> Vec<u8> {
        let mut marks = self.marks.clone();
        marks.sort_by_key(|m| m.camera.0);
        marks.dedup_by_key(|m| m.camera);
        marks.truncate(MAX_MARKS);
        let canonical = Self {
            marks,
            ..self.clone()
        };
        let mut encoded = canonical.encode_body();
        let signature = key.sign(HEAD_CONTEXT, &[&encoded]);
        encoded.extend_from_slice(&signature.0);
        encoded
    }

    /// Parses a statement and checks it is signed by `signer`, the key the account's verified
    /// roster lists for the device it names (the caller looks it up), for `account`.
    ///
    /// # Errors
    /// [`LogError::Malformed`], [`LogError::WrongAccount`] or [`LogError::BadSignature`].
    pub fn verify(
        bytes: &[u8],
        account: &AccountPublicKey,
        signer: &DeviceSigningPublicKey,
    ) -> Result<Self, LogError> {
        let statement = Self::decode_unverified(bytes)?;
        if statement.account != *account {
            return Err(LogError::WrongAccount);
        }
        let body = bytes.len() - 64;
        let signature = Signature(
            bytes[body..]
                .try_into()
                .map_err(|_| DecodeError::Truncated("head signature"))?,
        );
        signer.verify(HEAD_CONTEXT, &[&bytes[..body]], &signature)?;
        Ok(statement)
    }

    /// Parses a statement without checking its signature (to find which device it names).
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not exactly one well-formed statement.
    pub fn decode_unverified(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, HEAD_MAGIC, HEAD_FORMAT, "log head")?;
        let account = AccountPublicKey::from_bytes(&r.array("account key")?)?;
        let device = DeviceId(r.array("device id")?);
        let sequence = r.u64("sequence")?;
        let head = LogHash(r.array("head hash")?);
        let seen_at = Timestamp(r.u64("seen at")?);
        let count = usize::from(r.u16("mark count")?);
        if count > MAX_MARKS {
            return Err(DecodeError::Invalid("too many camera marks"));
        }
        let mut marks: Vec<CameraMark> = Vec::with_capacity(count);
        for _ in 0..count {
            let mark = CameraMark {
                camera: CameraId(r.array("mark camera")?),
                verified: HighWater {
                    sequence: r.u64("mark sequence")?,
                    digest: ObjectDigest(r.array("mark digest")?),
                },
            };
            if marks
                .last()
                .is_some_and(|last| last.camera.0 >= mark.camera.0)
            {
                return Err(DecodeError::Invalid(
                    "camera marks out of order or repeated",
                ));
            }
            marks.push(mark);
        }
        let statement = Self {
            account,
            device,
            sequence,
            head,
            seen_at,
            marks,
        };
        let _signature: [u8; 64] = r.array("head signature")?;
        r.finish()?;
        Ok(statement)
    }
}

/// How another device's head relates to this device's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    /// The same head.
    Same,
    /// The other device is behind: its head is an entry this device verified.
    TheyAreBehind,
    /// The other device is ahead: fetch and accept entries up to `sequence`, then compare again.
    WeAreBehind {
        /// The other device's head sequence.
        sequence: u64,
    },
}

/// Compares another device's head (`sequence`, `head`) with this device's log, given the hash
/// of each entry this device verified (`hash_at`, by sequence).
///
/// # Errors
/// [`LogError::Fork`] when the other head is not on this device's chain: the server has shown
/// the two devices different histories. Also when this device no longer has the entry to
/// compare with (`hash_at` answers `None` at or below its head), since then it cannot tell.
pub fn compare(
    own: &LogHead,
    hash_at: impl Fn(u64) -> Option<LogHash>,
    sequence: u64,
    head: LogHash,
) -> Result<Comparison, LogError> {
    if sequence > own.sequence() {
        return Ok(Comparison::WeAreBehind { sequence });
    }
    let mine = if sequence == own.sequence() {
        Some(own.hash())
    } else {
        hash_at(sequence)
    };
    match mine {
        Some(h) if h == head && sequence == own.sequence() => Ok(Comparison::Same),
        Some(h) if h == head => Ok(Comparison::TheyAreBehind),
        _ => Err(LogError::Fork { sequence }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::keys::AccountKey;
    use crate::roster::fixture::Account;

    /// Entry 1 by the account key, then entries 2..=n by the account's device.
    fn chain(account: &Account, n: u64) -> Vec<SignedEntry> {
        let first = EntryBody {
            account: account.key.public(),
            sequence: 1,
            previous: LogHash::default(),
            issued_at: Timestamp(1_000),
            kind: EntryKind::Roster,
            subject: [0; 16],
            version: 1,
            statement: statement_hash(b"roster 1"),
        }
        .sign(SignerKey::Account(&account.key))
        .unwrap();
        let mut out = vec![first];
        for i in 2..=n {
            let head = out[0]
                .clone()
                .verify_first(&account.key.public())
                .and_then(|h| h.accept_all(&out[1..], &account.roster))
                .unwrap();
            let next = head
                .successor(
                    EntryKind::CameraRecord,
                    [7; 16],
                    i,
                    b"record",
                    Timestamp(1_000 + i),
                )
                .sign(account.signer())
                .unwrap();
            out.push(next);
        }
        out
    }

    impl LogHead {
        fn accept_all(self, entries: &[SignedEntry], roster: &Roster) -> Result<LogHead, LogError> {
            entries
                .iter()
                .try_fold(self, |h, e| h.accept(e.clone(), roster))
        }
    }

    #[test]
    fn a_chain_is_accepted_entry_by_entry_and_every_break_is_named() {
        let account = Account::new();
        let roster = &account.roster;
        let entries = chain(&account, 3);
        let first = entries[0]
            .clone()
            .verify_first(&account.key.public())
            .unwrap();
        let head = first.clone().accept_all(&entries[1..], roster).unwrap();
        assert_eq!(head.sequence(), 3);
        assert_eq!(entries[0].encoded().len(), ENTRY_LEN);
        assert_eq!(entries[1].signer(), Signer::Device(account.device_id));
        assert_eq!(
            head.accept(entries[1].clone(), roster),
            Err(LogError::Rollback {
                offered: 2,
                trusted: 3
            })
        );
        assert_eq!(
            first.accept(entries[2].clone(), roster),
            Err(LogError::Gap {
                trusted: 1,
                offered: 3
            })
        );
        // Entry 2, once its signer is revoked, is refused.
        assert_eq!(
            first.accept(entries[1].clone(), &account.revoked()),
            Err(LogError::UnlistedSigner {
                sequence: 2,
                device: account.device_id
            })
        );
        // Only the account key starts a log.
        assert_eq!(
            entries[1].clone().verify_first(&account.key.public()),
            Err(LogError::Gap {
                trusted: 0,
                offered: 2
            })
        );
        let mut by_device = entries[0].unverified_body().clone();
        by_device.issued_at = Timestamp(5);
        assert_eq!(
            by_device
                .sign(account.signer())
                .unwrap()
                .verify_first(&account.key.public()),
            Err(LogError::FirstNotByAccount)
        );
        let other = first
            .successor(EntryKind::Share, [7; 16], 1, b"share", Timestamp(5))
            .sign(account.signer())
            .unwrap();
        let two = first.accept(entries[1].clone(), roster).unwrap();
        assert_eq!(
            two.accept(other.clone(), roster),
            Err(LogError::Fork { sequence: 2 })
        );
        assert_eq!(
            SignedEntry::decode(other.encoded()),
            Ok(other.clone()),
            "an entry decodes to itself"
        );
        let stranger = AccountKey::from_seed(&[2; 32]);
        let mut forged = other.unverified_body().clone();
        forged.account = stranger.public();
        assert_eq!(
            first.accept(forged.sign(SignerKey::Account(&stranger)).unwrap(), roster),
            Err(LogError::WrongAccount)
        );
    }

    #[test]
    fn heads_compare_as_same_behind_ahead_or_forked() {
        let account = Account::new();
        let key = &account.key;
        let entries = chain(&account, 3);
        let hashes: Vec<LogHash> = entries.iter().map(SignedEntry::hash).collect();
        let at = |s: u64| {
            hashes
                .get(usize::try_from(s).ok()?.checked_sub(1)?)
                .copied()
        };
        let head = entries[0]
            .clone()
            .verify_first(&key.public())
            .unwrap()
            .accept_all(&entries[1..], &account.roster)
            .unwrap();
        assert_eq!(compare(&head, at, 3, hashes[2]), Ok(Comparison::Same));
        assert_eq!(
            compare(&head, at, 2, hashes[1]),
            Ok(Comparison::TheyAreBehind)
        );
        assert_eq!(
            compare(&head, at, 4, LogHash([9; 32])),
            Ok(Comparison::WeAreBehind { sequence: 4 })
        );
        assert_eq!(
            compare(&head, at, 2, LogHash([9; 32])),
            Err(LogError::Fork { sequence: 2 })
        );

        let device = DeviceSigningKey::from_seed(&[3; 32]);
        let statement = HeadStatement {
            account: key.public(),
            device: DeviceId([4; 16]),
            sequence: 3,
            head: hashes[2],
            seen_at: Timestamp(9),
            marks: vec![CameraMark {
                camera: CameraId([6; 16]),
                verified: HighWater {
                    sequence: 7,
                    digest: ObjectDigest([8; 32]),
                },
            }],
        };
        let bytes = statement.sign(&device);
        assert_eq!(bytes.len(), HEAD_LEN + MARK_LEN);
        assert_eq!(
            HeadStatement::split(&[&bytes[..], &bytes].concat())
                .unwrap()
                .len(),
            2
        );
        assert!(HeadStatement::split(&bytes[..bytes.len() - 1]).is_err());
        assert_eq!(
            HeadStatement::verify(&bytes, &key.public(), &device.public()),
            Ok(statement)
        );
        let other_device = DeviceSigningKey::from_seed(&[5; 32]);
        assert_eq!(
            HeadStatement::verify(&bytes, &key.public(), &other_device.public()),
            Err(LogError::BadSignature)
        );
    }
}
