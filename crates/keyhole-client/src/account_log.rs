//! The account log as this device has verified it (PROTOCOL.md §15): every entry from the first,
//! so the device can tell which statement versions the log records and compare other devices'
//! heads with any entry of its own history.

use std::collections::BTreeMap;

use keyhole_core::log::{
    ENTRY_LEN, EntryBody, EntryKind, LogError, LogHash, LogHead, SignedEntry, statement_hash,
};
use keyhole_core::{AccountPublicKey, CameraId, Timestamp};

use crate::ClientError;
use crate::owner::untrusted;

/// Which statement an entry is about: its kind and subject (a camera id, or zero for rosters).
type Subject = (EntryKind, [u8; 16]);

/// The verified log.
#[derive(Debug, Clone, Default)]
pub(crate) struct AccountLog {
    /// Every entry, in order: `entries[i]` has sequence `i + 1`.
    entries: Vec<SignedEntry>,
    /// The head, once there is an entry.
    head: Option<LogHead>,
    /// For each subject, the statement hash each recorded version has.
    recorded: BTreeMap<Subject, BTreeMap<u64, [u8; 32]>>,
}

impl AccountLog {
    /// A log of entries concatenated as [`AccountLog::encoded`] wrote them, verified again from
    /// the first under `account`.
    pub(crate) fn decode(account: &AccountPublicKey, bytes: &[u8]) -> Result<Self, LogError> {
        let mut log = Self::default();
        for chunk in bytes.chunks(ENTRY_LEN) {
            log.accept(account, SignedEntry::decode(chunk)?)?;
        }
        Ok(log)
    }

    /// Every entry, concatenated.
    pub(crate) fn encoded(&self) -> Vec<u8> {
        self.entries
            .iter()
            .flat_map(SignedEntry::encoded)
            .copied()
            .collect()
    }

    /// The newest verified entry.
    pub(crate) fn head(&self) -> Option<&LogHead> {
        self.head.as_ref()
    }

    /// The head's sequence number; 0 for an empty log.
    pub(crate) fn sequence(&self) -> u64 {
        self.head.as_ref().map_or(0, LogHead::sequence)
    }

    /// The hash of entry `sequence`, if this device has verified it.
    pub(crate) fn hash_at(&self, sequence: u64) -> Option<LogHash> {
        let index = usize::try_from(sequence.checked_sub(1)?).ok()?;
        self.entries.get(index).map(SignedEntry::hash)
    }

    /// Accepts the next entry (the first under `account`, or the head's successor); an entry
    /// equal to the head changes nothing.
    pub(crate) fn accept(
        &mut self,
        account: &AccountPublicKey,
        entry: SignedEntry,
    ) -> Result<(), LogError> {
        let head = match &self.head {
            None => {
                if entry.unverified_body().sequence != 1 {
                    return Err(LogError::Gap {
                        trusted: 0,
                        offered: entry.unverified_body().sequence,
                    });
                }
                entry.verify_first(account)?
            }
            Some(head) => head.accept(entry)?,
        };
        if head.sequence() == self.sequence() {
            return Ok(());
        }
        let body = head.entry();
        self.recorded
            .entry((body.kind, body.subject))
            .or_default()
            .insert(body.version, body.statement);
        self.entries.push(head.signed().clone());
        self.head = Some(head);
        Ok(())
    }

    /// The body of the entry that would follow the head, recording `statement`.
    pub(crate) fn next(
        &self,
        account: AccountPublicKey,
        (kind, subject): Subject,
        version: u64,
        statement: &[u8],
        now: Timestamp,
    ) -> EntryBody {
        match &self.head {
            Some(head) => head.successor(kind, subject, version, statement, now),
            None => EntryBody {
                account,
                sequence: 1,
                previous: LogHash::default(),
                issued_at: now,
                kind,
                subject,
                version,
                statement: statement_hash(statement),
            },
        }
    }

    /// The newest version of the statement the log records, if any.
    pub(crate) fn latest(&self, subject: Subject) -> Option<u64> {
        self.recorded
            .get(&subject)?
            .last_key_value()
            .map(|(v, _)| *v)
    }

    /// Whether an entry records exactly this encoding as `version` of the statement.
    pub(crate) fn records(&self, subject: Subject, version: u64, encoded: &[u8]) -> bool {
        self.recorded
            .get(&subject)
            .and_then(|versions| versions.get(&version))
            .is_some_and(|hash| *hash == statement_hash(encoded))
    }

    /// The version of statement `of` in force when `version` of `subject` was recorded: the
    /// newest one recorded before that entry.
    pub(crate) fn version_when(&self, of: Subject, subject: Subject, version: u64) -> Option<u64> {
        let position = self.entries.iter().position(|e| {
            let body = e.unverified_body();
            (body.kind, body.subject, body.version) == (subject.0, subject.1, version)
        })?;
        self.entries[..position].iter().rev().find_map(|e| {
            let body = e.unverified_body();
            ((body.kind, body.subject) == of).then_some(body.version)
        })
    }

    /// [`AccountLog::records`], as a refusal naming the statement when it does not.
    pub(crate) fn require(
        &self,
        subject: Subject,
        version: u64,
        encoded: &[u8],
    ) -> Result<(), ClientError> {
        if self.records(subject, version, encoded) {
            return Ok(());
        }
        let camera = CameraId(subject.1);
        let what = match subject.0 {
            EntryKind::Roster => format!("roster version {version}"),
            EntryKind::CameraRecord => format!("record version {version} of camera {camera}"),
            EntryKind::Share => format!("share version {version} of camera {camera}"),
            EntryKind::Acceptance => format!("acceptance version {version}"),
        };
        Err(untrusted(format!(
            "{what} is not the one the account log records"
        )))
    }

    /// The subjects (camera ids) the log records statements of this kind about.
    pub(crate) fn subjects(&self, kind: EntryKind) -> impl Iterator<Item = [u8; 16]> + '_ {
        self.recorded
            .keys()
            .filter(move |(k, _)| *k == kind)
            .map(|(_, subject)| *subject)
    }
}

#[cfg(test)]
mod tests {
    use keyhole_core::AccountKey;
    use rand_core::OsRng;

    use super::*;

    const ROSTER: Subject = (EntryKind::Roster, [0; 16]);
    const CAMERA: Subject = (EntryKind::CameraRecord, [7; 16]);

    fn append(log: &mut AccountLog, key: &AccountKey, subject: Subject, version: u64, s: &[u8]) {
        let body = log.next(key.public(), subject, version, s, Timestamp(1));
        log.accept(&key.public(), body.sign(key).unwrap()).unwrap();
    }

    #[test]
    fn records_versions_and_round_trips() {
        let key = AccountKey::generate(&mut OsRng);
        let mut log = AccountLog::default();
        assert_eq!(log.sequence(), 0);
        append(&mut log, &key, ROSTER, 1, b"roster 1");
        append(&mut log, &key, CAMERA, 1, b"record 1");
        append(&mut log, &key, ROSTER, 2, b"roster 2");
        assert_eq!(log.sequence(), 3);
        assert_eq!(log.latest(ROSTER), Some(2));
        assert_eq!(log.latest(CAMERA), Some(1));
        assert!(log.records(ROSTER, 1, b"roster 1"));
        assert!(!log.records(ROSTER, 1, b"roster 2"));
        assert!(!log.records(CAMERA, 2, b"record 1"));
        assert_eq!(
            log.subjects(EntryKind::CameraRecord).collect::<Vec<_>>(),
            vec![[7; 16]]
        );
        assert_eq!(log.subjects(EntryKind::Share).count(), 0);
        assert_eq!(log.hash_at(3), log.head().map(LogHead::hash));
        assert_eq!(log.hash_at(4), None);
        assert_eq!(log.hash_at(0), None);

        let again = AccountLog::decode(&key.public(), &log.encoded()).unwrap();
        assert_eq!(again.encoded(), log.encoded());
        assert_eq!(again.latest(ROSTER), Some(2));
        let other = AccountKey::generate(&mut OsRng);
        assert_eq!(
            AccountLog::decode(&other.public(), &log.encoded()).unwrap_err(),
            LogError::WrongAccount
        );
        // A log that does not start at entry 1 is refused.
        assert!(matches!(
            AccountLog::decode(&key.public(), &log.encoded()[ENTRY_LEN..]),
            Err(LogError::Gap { .. })
        ));
    }
}
