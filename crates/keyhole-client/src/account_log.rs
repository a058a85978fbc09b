//! The account log as this device has verified it (PROTOCOL.md §15): every entry from the first,
//! so the device can tell which statement versions the log records and compare other devices'
//! heads with any entry of its own history — and every roster version the log records, so each
//! entry is verified against the roster in force where it stands (PROTOCOL.md §4.3): the first
//! by the account key, each later one by the account key or a device that roster lists.

use std::collections::BTreeMap;

use keyhole_core::log::{
    ENTRY_LEN, EntryBody, EntryKind, LogError, LogHash, LogHead, SignedEntry, statement_hash,
};
use keyhole_core::roster::{Roster, SignedRoster};
use keyhole_core::{AccountPublicKey, CameraId, Timestamp};

use crate::ClientError;
use crate::owner::untrusted;

/// Which statement an entry is about: its kind and subject (a camera id, or zero for rosters).
type Subject = (EntryKind, [u8; 16]);

/// The roster's place in the log.
pub(crate) const ROSTER: Subject = (EntryKind::Roster, [0; 16]);

/// The verified log: from entry 1 (signed by the account key, recording roster version 1) on.
#[derive(Debug, Clone)]
pub(crate) struct AccountLog {
    /// Every entry, in order: `entries[i]` has sequence `i + 1`.
    entries: Vec<SignedEntry>,
    /// The head.
    head: LogHead,
    /// For each subject, the statement hash each recorded version has.
    recorded: BTreeMap<Subject, BTreeMap<u64, [u8; 32]>>,
    /// Roster version 1, signed by the account key.
    first_roster: Roster,
    /// Every later roster version the log records, verified in order (version 2 first).
    later_rosters: Vec<Roster>,
}

/// What accepting an entry asks of the caller next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Nothing: the entry is in.
    Continue,
    /// The entry records this roster version, which [`AccountLog::adopt_roster`] must be given
    /// before the next entry can be verified.
    Roster(u64),
}

impl AccountLog {
    /// The log of `account` from its entry 1 and the roster version 1 it records, both signed
    /// by the account key.
    pub(crate) fn first(
        account: &AccountPublicKey,
        entry: SignedEntry,
        roster: SignedRoster,
    ) -> Result<Self, ClientError> {
        if roster.unverified_body().version != 1 {
            return Err(untrusted("the account's first roster is not version 1"));
        }
        let first_roster = roster.verify_first(account).map_err(untrusted)?;
        let head = entry.verify_first(account).map_err(untrusted)?;
        let body = head.entry();
        if !body.records(
            EntryKind::Roster,
            [0; 16],
            1,
            first_roster.signed().encoded(),
        ) {
            return Err(untrusted(
                "account log entry 1 does not record this account's first roster",
            ));
        }
        let mut recorded: BTreeMap<Subject, BTreeMap<u64, [u8; 32]>> = BTreeMap::new();
        recorded
            .entry(ROSTER)
            .or_default()
            .insert(1, body.statement);
        Ok(Self {
            entries: vec![head.signed().clone()],
            head,
            recorded,
            first_roster,
            later_rosters: Vec::new(),
        })
    }

    /// A log of entries concatenated as [`AccountLog::encoded`] wrote them, with the rosters
    /// they record ([`AccountLog::rosters`]), verified again from the first under `account`.
    pub(crate) fn decode(
        account: &AccountPublicKey,
        bytes: &[u8],
        rosters: &[Vec<u8>],
    ) -> Result<Self, ClientError> {
        let mut entries = bytes.chunks(ENTRY_LEN);
        let mut rosters = rosters.iter();
        let (Some(entry), Some(roster)) = (entries.next(), rosters.next()) else {
            return Err(untrusted("the account log is empty"));
        };
        let mut log = Self::first(
            account,
            SignedEntry::decode(entry).map_err(untrusted)?,
            SignedRoster::decode(roster).map_err(untrusted)?,
        )?;
        for chunk in entries {
            let entry = SignedEntry::decode(chunk).map_err(untrusted)?;
            if let Next::Roster(version) = log.accept(entry).map_err(untrusted)? {
                let bytes = rosters
                    .next()
                    .ok_or_else(|| untrusted(format!("roster version {version} is missing")))?;
                log.adopt_roster(SignedRoster::decode(bytes).map_err(untrusted)?)?;
            }
        }
        Ok(log)
    }

    /// The account key the log starts from.
    pub(crate) fn account(&self) -> &AccountPublicKey {
        self.first_roster.account()
    }

    /// The roster in force: the newest the log records and this device verified.
    pub(crate) fn roster(&self) -> &Roster {
        self.later_rosters.last().unwrap_or(&self.first_roster)
    }

    /// Every roster version, oldest first.
    pub(crate) fn rosters(&self) -> impl Iterator<Item = &Roster> {
        std::iter::once(&self.first_roster).chain(&self.later_rosters)
    }

    /// The roster in force when `version` of `subject` was recorded: the one the newest roster
    /// entry before that entry records.
    pub(crate) fn roster_when(&self, subject: Subject, version: u64) -> Option<&Roster> {
        let roster = self.version_when(ROSTER, subject, version)?;
        self.rosters()
            .nth(usize::try_from(roster.checked_sub(1)?).ok()?)
    }

    /// Gives the log the roster version its newest entry records: it must be the exact bytes
    /// that entry names and follow the roster before it (version 1: the account key's).
    pub(crate) fn adopt_roster(&mut self, offered: SignedRoster) -> Result<(), ClientError> {
        let version = offered.unverified_body().version;
        if self.waiting_for_roster() != Some(version) {
            return Err(untrusted(format!(
                "roster version {version} is not the one the account log waits for"
            )));
        }
        self.require(ROSTER, version, offered.encoded())?;
        let roster = self.roster().accept(offered).map_err(untrusted)?;
        self.later_rosters.push(roster);
        Ok(())
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
    pub(crate) fn head(&self) -> &LogHead {
        &self.head
    }

    /// The head's sequence number.
    pub(crate) fn sequence(&self) -> u64 {
        self.head.sequence()
    }

    /// The hash of entry `sequence`, if this device has verified it.
    pub(crate) fn hash_at(&self, sequence: u64) -> Option<LogHash> {
        let index = usize::try_from(sequence.checked_sub(1)?).ok()?;
        self.entries.get(index).map(SignedEntry::hash)
    }

    /// The roster version the newest roster entry records, while it is not yet adopted (until
    /// then the next entry's signer cannot be checked).
    pub(crate) fn waiting_for_roster(&self) -> Option<u64> {
        let recorded = self.latest(ROSTER)?;
        (self.roster().body().version < recorded).then_some(recorded)
    }

    /// Accepts the next entry (the first under the account key, or the head's successor,
    /// signed by the account key or a device of the roster in force); an entry equal to the
    /// head changes nothing. An entry recording a roster asks for it ([`Next::Roster`]).
    pub(crate) fn accept(&mut self, entry: SignedEntry) -> Result<Next, LogError> {
        if entry.encoded() == self.head.signed().encoded() {
            return Ok(Next::Continue);
        }
        if self.waiting_for_roster().is_some() {
            // The roster the head records is not adopted yet: the entry's signer cannot be
            // checked against the roster in force.
            return Err(LogError::Gap {
                trusted: self.sequence(),
                offered: entry.unverified_body().sequence,
            });
        }
        let head = self.head.accept(entry, self.roster())?;
        let body = head.entry();
        self.recorded
            .entry((body.kind, body.subject))
            .or_default()
            .insert(body.version, body.statement);
        let next = match body.kind {
            EntryKind::Roster => Next::Roster(body.version),
            _ => Next::Continue,
        };
        self.entries.push(head.signed().clone());
        self.head = head;
        Ok(next)
    }

    /// The body of the entry that would follow the head, recording `statement`.
    pub(crate) fn next(
        &self,
        (kind, subject): Subject,
        version: u64,
        statement: &[u8],
        now: Timestamp,
    ) -> EntryBody {
        self.head.successor(kind, subject, version, statement, now)
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
            EntryKind::Retention => format!("retention floor version {version} of camera {camera}"),
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
    use keyhole_core::roster::{DeviceEntry, RosterBody, RosterHash};
    use keyhole_core::signer::SignerKey;
    use keyhole_core::{AccountKey, DeviceId, DeviceKeys, HpkeSecretKey};
    use rand_core::OsRng;

    use super::*;

    const CAMERA: Subject = (EntryKind::CameraRecord, [7; 16]);

    struct Account {
        key: AccountKey,
        phone: DeviceKeys,
        phone_id: DeviceId,
    }

    impl Account {
        fn phone(&self) -> SignerKey<'_> {
            SignerKey::Device {
                id: self.phone_id,
                key: &self.phone.signing,
            }
        }

        fn roster_v1(&self) -> SignedRoster {
            RosterBody {
                account: self.key.public(),
                version: 1,
                previous: RosterHash([0; 32]),
                issued_at: Timestamp(1),
                recovery_key: HpkeSecretKey::generate(&mut OsRng).public(),
                devices: vec![DeviceEntry {
                    id: self.phone_id,
                    name: "phone".into(),
                    added_at: Timestamp(1),
                    signing_key: self.phone.signing.public(),
                    hpke_key: self.phone.hpke.public(),
                }],
            }
            .sign(SignerKey::Account(&self.key))
            .unwrap()
        }
    }

    fn append(log: &mut AccountLog, key: SignerKey<'_>, subject: Subject, version: u64, s: &[u8]) {
        let body = log.next(subject, version, s, Timestamp(1));
        log.accept(body.sign(key).unwrap()).unwrap();
    }

    #[test]
    fn records_versions_and_rosters_and_round_trips() {
        let ana = Account {
            key: AccountKey::generate(&mut OsRng),
            phone: DeviceKeys::generate(&mut OsRng),
            phone_id: DeviceId([1; 16]),
        };
        let v1 = ana.roster_v1();
        let first = EntryBody {
            account: ana.key.public(),
            sequence: 1,
            previous: LogHash::default(),
            issued_at: Timestamp(1),
            kind: EntryKind::Roster,
            subject: [0; 16],
            version: 1,
            statement: statement_hash(v1.encoded()),
        };
        // Only the account key starts a log.
        assert!(
            AccountLog::first(
                &ana.key.public(),
                first.clone().sign(ana.phone()).unwrap(),
                v1.clone()
            )
            .is_err()
        );
        let mut log = AccountLog::first(
            &ana.key.public(),
            first.sign(SignerKey::Account(&ana.key)).unwrap(),
            v1.clone(),
        )
        .unwrap();
        assert_eq!(log.sequence(), 1);
        append(&mut log, ana.phone(), CAMERA, 1, b"record 1");
        let v2 = {
            let mut b = log.roster().successor(Timestamp(2));
            b.devices[0].name = "Ana's phone".into();
            b.sign(ana.phone()).unwrap()
        };
        let body = log.next(ROSTER, 2, v2.encoded(), Timestamp(2));
        assert_eq!(
            log.accept(body.sign(ana.phone()).unwrap()),
            Ok(Next::Roster(2))
        );
        // Only the bytes the entry names are adopted.
        assert!(log.adopt_roster(v1.clone()).is_err());
        log.adopt_roster(v2.clone()).unwrap();
        assert_eq!(log.sequence(), 3);
        assert_eq!(log.latest(ROSTER), Some(2));
        assert_eq!(log.latest(CAMERA), Some(1));
        assert_eq!(
            log.roster_when(CAMERA, 1).map(|r| r.body().version),
            Some(1)
        );
        assert!(log.records(ROSTER, 1, v1.encoded()));
        assert!(!log.records(ROSTER, 1, v2.encoded()));
        assert!(!log.records(CAMERA, 2, b"record 1"));
        assert_eq!(
            log.subjects(EntryKind::CameraRecord).collect::<Vec<_>>(),
            vec![[7; 16]]
        );
        assert_eq!(log.subjects(EntryKind::Share).count(), 0);
        assert_eq!(log.hash_at(3), Some(log.head().hash()));
        assert_eq!(log.hash_at(4), None);
        assert_eq!(log.hash_at(0), None);

        let rosters: Vec<Vec<u8>> = log
            .rosters()
            .map(|r| r.signed().encoded().to_vec())
            .collect();
        let again = AccountLog::decode(&ana.key.public(), &log.encoded(), &rosters).unwrap();
        assert_eq!(again.encoded(), log.encoded());
        assert_eq!(again.latest(ROSTER), Some(2));
        assert_eq!(again.roster(), log.roster());
        let other = AccountKey::generate(&mut OsRng);
        assert!(AccountLog::decode(&other.public(), &log.encoded(), &rosters).is_err());
        // A log that does not start at entry 1 is refused.
        assert!(
            AccountLog::decode(&ana.key.public(), &log.encoded()[ENTRY_LEN..], &rosters).is_err()
        );
        // A device the roster in force does not list signs nothing that is accepted.
        let stranger = DeviceKeys::generate(&mut OsRng);
        let body = log.next(CAMERA, 2, b"record 2", Timestamp(3));
        let forged = body
            .sign(SignerKey::Device {
                id: DeviceId([9; 16]),
                key: &stranger.signing,
            })
            .unwrap();
        assert!(matches!(
            log.accept(forged),
            Err(LogError::UnlistedSigner { .. })
        ));
    }
}
