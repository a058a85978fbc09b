//! The verification report: what a viewer concludes about one camera's list of objects.
//!
//! Each object is opened (by the caller, streaming) and the results are handed to
//! [`Report::build`] in the order the server listed them. The report checks what no single
//! object can show: that sequence numbers have no gaps (hidden or deleted clips), no duplicates
//! (replays), follow the listing order (reordering), that each object names its predecessor's
//! digest (swaps), that each was sealed by this camera under the object id the server gave it,
//! and that none was sealed to an epoch already retired when it was captured (a server that
//! withheld a newer camera record). Every problem has a message for people.

use std::collections::HashMap;
use std::fmt;
use std::ops::RangeInclusive;

use crate::camera_head::CameraHead;
use crate::codec::DecodeError;
use crate::envelope::{Header, ObjectDigest, ObjectKind, OpenError, OpenedObject, Tamper};
use crate::ids::{CameraId, ObjectId, Timestamp};

/// How long after a new epoch began a camera may still seal to the old one (it learns of the
/// new record on its next check-in), in milliseconds.
pub const DEFAULT_EPOCH_GRACE_MS: u64 = 10 * 60 * 1000;

/// The outcome of opening one listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Checked {
    /// Opened and fully verified.
    Verified(OpenedObject),
    /// Did not verify. `header` is the parsed (unauthenticated) header, if it parsed.
    Failed {
        /// The header as parsed, not trusted.
        header: Option<Header>,
        /// What failed.
        reason: Failure,
    },
}

impl Checked {
    /// Turns the result of opening an object into a [`Checked`]. `sealed_prefix` is the first
    /// bytes of the object, used to name the claimed camera when verification fails.
    #[must_use]
    pub fn from_open(sealed_prefix: &[u8], result: Result<OpenedObject, OpenError>) -> Self {
        match result {
            Ok(opened) => Self::Verified(opened),
            Err(OpenError::Tampered(t)) => Self::Failed {
                header: Header::decode(sealed_prefix).ok(),
                reason: Failure::Tampered(t),
            },
            Err(OpenError::Malformed(e)) => Self::Failed {
                header: None,
                reason: Failure::Unreadable(e),
            },
        }
    }
}

/// Why an object did not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Authentication failed.
    Tampered(Tamper),
    /// Not a sealed object at all.
    Unreadable(DecodeError),
    /// This device holds no viewing key for the epoch the header names.
    NoViewingKey {
        /// The epoch named.
        epoch: u32,
    },
    /// An authentic object, but not the one asked for: the server served another object of the
    /// same camera under this id (a replay or a swap).
    Mislabeled {
        /// The id sealed in its header.
        sealed_id: ObjectId,
    },
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tampered(t) => write!(f, "tampered: {t}"),
            Self::Unreadable(e) => write!(f, "not a sealed object ({e})"),
            Self::NoViewingKey { epoch } => {
                write!(f, "this device holds no key for epoch {epoch}")
            }
            Self::Mislabeled { sealed_id } => write!(
                f,
                "swapped: the server served another object (sealed as {sealed_id})"
            ),
        }
    }
}

/// One object as the server listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The id the server listed it under.
    pub listed_id: ObjectId,
    /// What opening it showed.
    pub checked: Checked,
}

/// When an epoch began, from a verified camera record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EpochStart {
    /// The epoch.
    pub epoch: u32,
    /// When the record that started it was issued.
    pub began: Timestamp,
}

/// What the viewer knows independently of the listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The camera the listing is for.
    pub camera_id: CameraId,
    /// Epoch starts from the verified camera-record history, in increasing epoch order.
    pub epochs: Vec<EpochStart>,
    /// The first sequence number the listing should contain (1 for the whole history).
    pub first_sequence: u64,
    /// The newest object this device verified before (from an earlier listing): a listing that
    /// ends before it hides objects from the end, and one whose object at its sequence is
    /// another object shows a history other than the one verified.
    pub verified_before: Option<HighWater>,
    /// See [`DEFAULT_EPOCH_GRACE_MS`].
    pub epoch_grace_ms: u64,
    /// The newest head the camera signed that this device holds (PROTOCOL.md §8.3), verified
    /// under the camera's key: objects up to its `delivered` sequence reached the server, so a
    /// listing without them hides them, and the object at its `sequence` must have its digest.
    pub camera_head: Option<CameraHead>,
    /// Whether to judge the camera silent, and as of when: `None` for a camera that is not
    /// expected to speak (removed). See [`Silence`].
    pub silence: Option<Silence>,
}

/// What a device needs to tell that a camera has fallen silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Silence {
    /// The device's clock now.
    pub now: Timestamp,
    /// Since when the camera owes heads: when it was paired (its first record).
    pub paired_at: Timestamp,
}

/// How long a camera that has never been heard from may stay silent after pairing before it is
/// reported (a battery camera's longest promise, with room): 25 hours.
pub const DEFAULT_SILENT_AFTER_MS: u64 = 25 * 60 * 60 * 1000;

/// The newest object a device has verified for a camera: its sequence and digest. Kept by the
/// device across listings, so the server cannot take back what the device once saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HighWater {
    /// Its sequence number.
    pub sequence: u64,
    /// Its object digest (PROTOCOL.md §7.8).
    pub digest: ObjectDigest,
}

/// A problem with one listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Problem {
    /// Authentication failed.
    Tampered(Tamper),
    /// Not a sealed object.
    Unreadable(DecodeError),
    /// No viewing key for its epoch on this device.
    NoViewingKey {
        /// The epoch named.
        epoch: u32,
    },
    /// The object belongs to another camera (swapped in from elsewhere).
    OtherCamera {
        /// The camera its header names.
        camera: CameraId,
    },
    /// The server listed it under a different id than the one sealed inside.
    Mislabeled {
        /// The id sealed in the header.
        sealed_id: ObjectId,
    },
    /// Another listed object already has this sequence number (a replay).
    Duplicate {
        /// The sequence number.
        sequence: u64,
        /// The object listed first with it.
        first: ObjectId,
    },
    /// Listed after an object with a higher sequence number.
    OutOfOrder {
        /// Its sequence number.
        sequence: u64,
        /// The higher sequence number listed before it.
        after: u64,
    },
    /// Its `previous` digest is not the digest of the object before it.
    BrokenChain {
        /// Its sequence number.
        sequence: u64,
    },
    /// Sealed to an epoch that had already been retired when it was captured.
    RetiredEpoch {
        /// The epoch it was sealed to.
        epoch: u32,
        /// The epoch in force at capture time.
        current: u32,
    },
    /// Authentic, but not the object this device verified at this sequence before.
    NotAsVerified {
        /// Its sequence number.
        sequence: u64,
    },
    /// Authentic, but not the object the camera's head names at this sequence.
    NotAsSigned {
        /// Its sequence number.
        sequence: u64,
    },
    /// A live session appeared in the recorded sequence.
    NotRecorded,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tampered(t) => write!(f, "tampered: {t}"),
            Self::Unreadable(e) => write!(f, "unreadable: {e}"),
            Self::NoViewingKey { epoch } => {
                write!(
                    f,
                    "sealed to epoch {epoch}, for which this device holds no key"
                )
            }
            Self::OtherCamera { camera } => {
                write!(
                    f,
                    "swapped: this object was sealed by another camera ({camera})"
                )
            }
            Self::Mislabeled { sealed_id } => {
                write!(
                    f,
                    "swapped: the server lists it under another id (sealed as {sealed_id})"
                )
            }
            Self::Duplicate { sequence, first } => {
                write!(
                    f,
                    "replayed: sequence {sequence} was already listed as {first}"
                )
            }
            Self::OutOfOrder { sequence, after } => write!(
                f,
                "reordered: sequence {sequence} is listed after sequence {after}"
            ),
            Self::BrokenChain { sequence } => write!(
                f,
                "swapped: sequence {sequence} does not follow from the camera's previous object"
            ),
            Self::RetiredEpoch { epoch, current } => write!(
                f,
                "sealed to retired epoch {epoch} although epoch {current} was in force: the \
                 server may have withheld the camera's new record"
            ),
            Self::NotAsVerified { sequence } => write!(
                f,
                "swapped: sequence {sequence} is not the object this device verified there before"
            ),
            Self::NotAsSigned { sequence } => write!(
                f,
                "swapped: sequence {sequence} is not the object the camera's signed head names"
            ),
            Self::NotRecorded => f.write_str("a live session listed among recordings"),
        }
    }
}

/// The verdict on one listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The id the server listed it under.
    pub listed_id: ObjectId,
    /// Its authenticated header, if it verified.
    pub header: Option<Header>,
    /// Its object digest, if it verified.
    pub digest: Option<ObjectDigest>,
    /// Everything wrong with it; empty means verified.
    pub problems: Vec<Problem>,
}

impl Entry {
    /// Whether the object verified with no problem.
    #[must_use]
    pub fn is_verified(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The report for one camera's listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The camera.
    pub camera_id: CameraId,
    /// The first sequence the report expects ([`Expectations::first_sequence`]): above 1 when
    /// the owner's retention let the objects before it go.
    pub first_sequence: u64,
    /// One entry per listed object, in listing order.
    pub entries: Vec<Entry>,
    /// Sequence numbers for which no verified object was listed.
    pub missing: Vec<RangeInclusive<u64>>,
    /// Objects the camera's head says it sealed but had not yet delivered (still on the
    /// camera, not a problem), beyond everything listed.
    pub waiting: Option<RangeInclusive<u64>>,
    /// The camera's newest head held, if any: when it was last heard from.
    pub camera_head: Option<CameraHead>,
    /// The camera has been silent since this time (its newest head, or its pairing, if never
    /// heard from) for longer than it promised: the server may be withholding its heads.
    pub silent_since: Option<Timestamp>,
}

impl Report {
    /// Builds the report.
    #[must_use]
    pub fn build(expect: &Expectations, listed: &[Listed]) -> Self {
        let mut entries = Vec::with_capacity(listed.len());
        // sequence → (listed id, digest), for verified objects of this camera, first listing wins.
        let mut by_sequence: HashMap<u64, (ObjectId, ObjectDigest)> = HashMap::new();
        // (entry index, sequence, previous digest, epoch) of the same objects.
        let mut chain: Vec<(usize, u64, ObjectDigest, u32)> = Vec::new();
        let mut highest_listed: Option<u64> = None;

        for item in listed {
            let mut entry = Entry {
                listed_id: item.listed_id,
                header: None,
                digest: None,
                problems: Vec::new(),
            };
            match &item.checked {
                Checked::Failed { header, reason } => {
                    let other = header
                        .as_ref()
                        .map(|h| h.camera_id)
                        .filter(|c| *c != expect.camera_id);
                    entry.problems.push(match (other, reason) {
                        (Some(camera), _) => Problem::OtherCamera { camera },
                        (None, Failure::Tampered(t)) => Problem::Tampered(*t),
                        (None, Failure::Unreadable(e)) => Problem::Unreadable(e.clone()),
                        (None, Failure::NoViewingKey { epoch }) => {
                            Problem::NoViewingKey { epoch: *epoch }
                        }
                        (None, Failure::Mislabeled { sealed_id }) => Problem::Mislabeled {
                            sealed_id: *sealed_id,
                        },
                    });
                }
                Checked::Verified(obj) => {
                    let h = &obj.header;
                    if h.camera_id != expect.camera_id {
                        entry.problems.push(Problem::OtherCamera {
                            camera: h.camera_id,
                        });
                    } else if h.kind == ObjectKind::Live {
                        entry.problems.push(Problem::NotRecorded);
                    } else {
                        if h.object_id != item.listed_id {
                            entry.problems.push(Problem::Mislabeled {
                                sealed_id: h.object_id,
                            });
                        }
                        if let Some((first, _)) = by_sequence.get(&h.sequence) {
                            entry.problems.push(Problem::Duplicate {
                                sequence: h.sequence,
                                first: *first,
                            });
                        } else {
                            by_sequence.insert(h.sequence, (item.listed_id, obj.digest));
                            chain.push((entries.len(), h.sequence, h.previous, h.epoch));
                        }
                        match highest_listed {
                            Some(high) if h.sequence < high => {
                                entry.problems.push(Problem::OutOfOrder {
                                    sequence: h.sequence,
                                    after: high,
                                });
                            }
                            _ => highest_listed = Some(h.sequence),
                        }
                        if let Some(p) = retired_epoch(expect, h) {
                            entry.problems.push(p);
                        }
                        if expect
                            .verified_before
                            .is_some_and(|v| v.sequence == h.sequence && v.digest != obj.digest)
                        {
                            entry.problems.push(Problem::NotAsVerified {
                                sequence: h.sequence,
                            });
                        }
                        if expect
                            .camera_head
                            .is_some_and(|c| c.sequence == h.sequence && c.digest != obj.digest)
                        {
                            entry.problems.push(Problem::NotAsSigned {
                                sequence: h.sequence,
                            });
                        }
                    }
                    entry.header = Some(h.clone());
                    entry.digest = Some(obj.digest);
                }
            }
            entries.push(entry);
        }

        // Links and epochs along the camera's own order.
        chain.sort_by_key(|c| c.1);
        for pair in chain.windows(2) {
            let (prev, cur) = (pair[0], pair[1]);
            if cur.1 == prev.1 + 1 && by_sequence.get(&prev.1).map(|p| p.1) != Some(cur.2) {
                entries[cur.0]
                    .problems
                    .push(Problem::BrokenChain { sequence: cur.1 });
            }
            let problems = &mut entries[cur.0].problems;
            let flagged = problems
                .iter()
                .any(|p| matches!(p, Problem::RetiredEpoch { .. }));
            if cur.3 < prev.3 && !flagged {
                problems.push(Problem::RetiredEpoch {
                    epoch: cur.3,
                    current: prev.3,
                });
            }
        }
        if let Some(first) = chain
            .first()
            .filter(|c| c.1 == 1 && c.2 != ObjectDigest::default())
        {
            entries[first.0]
                .problems
                .push(Problem::BrokenChain { sequence: 1 });
        }

        let mut missing = Vec::new();
        let mut next = expect.first_sequence;
        for &(_, seq, _, _) in &chain {
            if seq > next {
                missing.push(next..=seq - 1);
            }
            next = next.max(seq.saturating_add(1));
        }
        // What this device verified before and what the camera says reached the server
        // must be there: a listing that ends before either hides the rest.
        let owed = expect
            .verified_before
            .map(|v| v.sequence)
            .max(expect.camera_head.map(|c| c.delivered));
        if let Some(owed) = owed.filter(|o| *o >= next) {
            missing.push(next..=owed);
            next = owed + 1;
        }
        let waiting = expect
            .camera_head
            .map(|c| c.sequence)
            .filter(|s| *s >= next)
            .map(|s| next..=s);
        Self {
            camera_id: expect.camera_id,
            first_sequence: expect.first_sequence,
            entries,
            missing,
            waiting,
            camera_head: expect.camera_head,
            silent_since: expect
                .silence
                .and_then(|s| silent_since(expect.camera_head.as_ref(), s)),
        }
    }

    /// The newest object that verified with no problem, to keep as the next listing's
    /// [`Expectations::verified_before`] (never lower than `before`).
    #[must_use]
    pub fn high_water(&self, before: Option<HighWater>) -> Option<HighWater> {
        let newest = self
            .entries
            .iter()
            .filter(|e| e.is_verified())
            .filter_map(|e| {
                Some(HighWater {
                    sequence: e.header.as_ref()?.sequence,
                    digest: e.digest?,
                })
            })
            .max_by_key(|h| h.sequence);
        match (before, newest) {
            (Some(b), Some(n)) if n.sequence > b.sequence => Some(n),
            (Some(b), _) => Some(b),
            (None, n) => n,
        }
    }

    /// Whether every listed object verified, nothing is missing and the camera is not silent.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.missing.is_empty()
            && self.silent_since.is_none()
            && self.entries.iter().all(Entry::is_verified)
    }
}

/// When a camera whose newest head held is `head` fell silent, if it has been silent longer
/// than it promised as of `silence.now` (or, never heard from, longer than
/// [`DEFAULT_SILENT_AFTER_MS`] since pairing).
#[must_use]
pub fn silent_since(head: Option<&CameraHead>, silence: Silence) -> Option<Timestamp> {
    match head {
        Some(head) => (silence.now >= head.silent_from()).then_some(head.clock),
        None => (silence.now.0 >= silence.paired_at.0.saturating_add(DEFAULT_SILENT_AFTER_MS))
            .then_some(silence.paired_at),
    }
}

/// The epoch in force at `at`, by the history.
fn epoch_at(expect: &Expectations, at: Timestamp) -> Option<u32> {
    expect
        .epochs
        .iter()
        .filter(|e| e.began <= at)
        .map(|e| e.epoch)
        .max()
}

fn retired_epoch(expect: &Expectations, h: &Header) -> Option<Problem> {
    let successor = expect
        .epochs
        .iter()
        .filter(|e| e.epoch > h.epoch)
        .min_by_key(|e| e.epoch)?;
    let deadline = successor.began.0.saturating_add(expect.epoch_grace_ms);
    (h.captured_at.0 > deadline).then(|| Problem::RetiredEpoch {
        epoch: h.epoch,
        current: epoch_at(expect, h.captured_at).unwrap_or(successor.epoch),
    })
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verified = self.entries.iter().filter(|e| e.is_verified()).count();
        writeln!(
            f,
            "camera {}: {verified} of {} objects verified",
            self.camera_id,
            self.entries.len()
        )?;
        if self.first_sequence > 1 {
            writeln!(
                f,
                "  from sequence {}: the owner's retention let the objects before it go",
                self.first_sequence
            )?;
        }
        for e in &self.entries {
            let what = match &e.header {
                Some(h) => format!("#{} {:?} captured {}", h.sequence, h.kind, h.captured_at),
                None => "unverified object".to_owned(),
            };
            if e.problems.is_empty() {
                writeln!(f, "  ok      {} {what}", e.listed_id)?;
            }
            for p in &e.problems {
                writeln!(f, "  PROBLEM {} {what}: {p}", e.listed_id)?;
            }
        }
        for m in &self.missing {
            let which = if m.start() == m.end() {
                format!("sequence {}", m.start())
            } else {
                format!("sequences {}–{}", m.start(), m.end())
            };
            writeln!(
                f,
                "  MISSING {which}: no verified object (hidden, deleted, or tampered above)"
            )?;
        }
        if let Some(w) = &self.waiting {
            writeln!(
                f,
                "  WAITING {}: sealed by the camera, not yet uploaded",
                if w.start() == w.end() {
                    format!("sequence {}", w.start())
                } else {
                    format!("sequences {}–{}", w.start(), w.end())
                }
            )?;
        }
        match (self.silent_since, &self.camera_head) {
            (Some(since), Some(_)) => writeln!(
                f,
                "  SILENT  no signed word from the camera since {since}, longer than it promised: \
                 it may be offline, or the server may be withholding what it sends"
            )?,
            (Some(since), None) => writeln!(
                f,
                "  SILENT  no signed word from the camera since it was paired ({since}): it may \
                 be offline, or the server may be withholding what it sends"
            )?,
            (None, Some(head)) => writeln!(f, "  camera last heard {}", head.clock)?,
            (None, None) => {}
        }
        if self.is_clean() {
            writeln!(f, "  every object verified; none missing")?;
        }
        Ok(())
    }
}
