//! The device's local index (PROTOCOL.md §13.1): what it verified, per object, and the events it
//! opened, sealed at rest, so that a sync lists only what is newer than what it holds and each
//! event is downloaded once. A cache: deleting it loses nothing but time.

use std::path::{Path, PathBuf};

use keyhole_core::at_rest::IndexKey;
use keyhole_core::envelope::ObjectKind;
use keyhole_core::event::EventDetails;
use keyhole_core::report::{Problem, Report};
use keyhole_core::{CameraId, DeviceKeys, ObjectId, Timestamp};
use rand_core::CryptoRngCore;
use rusqlite::{Connection, OptionalExtension, params};

/// The index's schema; an index of another version is rebuilt.
const SCHEMA_VERSION: i64 = 1;

const SCHEMA: &str = "
CREATE TABLE objects (
    camera      BLOB NOT NULL,
    object_id   BLOB NOT NULL,
    sequence    INTEGER,            -- from the camera's signed header; NULL if it did not verify
    kind        INTEGER,
    captured_at INTEGER,
    digest      BLOB,               -- set only for an object that verified
    problem     TEXT,               -- what its last check found, NULL if nothing
    played      TEXT,               -- what playing it found: kept until the index is rebuilt
    PRIMARY KEY (camera, object_id)
);
CREATE INDEX objects_by_sequence ON objects (camera, sequence);
CREATE TABLE events (
    camera      BLOB NOT NULL,
    object_id   BLOB NOT NULL PRIMARY KEY,
    captured_at INTEGER NOT NULL,   -- the camera's signed capture time (its header's)
    sealed      BLOB NOT NULL       -- EventDetails, sealed (PROTOCOL.md §13.1)
);
CREATE INDEX events_by_time ON events (captured_at);
CREATE TABLE gaps (
    camera BLOB NOT NULL,
    first  INTEGER NOT NULL,
    last   INTEGER NOT NULL,
    PRIMARY KEY (camera, first)
);
CREATE TABLE cameras (
    camera    BLOB NOT NULL PRIMARY KEY,
    synced_at INTEGER NOT NULL      -- this device's clock when the server last answered
);
";

/// Why the index could not be used.
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// The database failed.
    #[error("the device index at {path}: {source}")]
    Database {
        /// The index file.
        path: PathBuf,
        /// What failed.
        source: rusqlite::Error,
    },
    /// The file is an index of another version (it is then made again).
    #[error("the device index at {path} is of version {found}, not {SCHEMA_VERSION}")]
    OtherVersion {
        /// The index file.
        path: PathBuf,
        /// The version it holds.
        found: i64,
    },
    /// An event could not be kept (its details do not encode).
    #[error("an event could not be kept in the device index: {0}")]
    Event(String),
    /// The file could not be created or removed.
    #[error("the device index at {path}: {source}")]
    File {
        /// The index file.
        path: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
}

/// One event the device opened, as the index holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedEvent {
    /// Its camera.
    pub camera: CameraId,
    /// The event object's id.
    pub event: ObjectId,
    /// The capture time its camera signed.
    pub captured_at: Timestamp,
    /// What it says.
    pub details: EventDetails,
}

/// Which events to answer with, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Only these cameras (all if empty).
    pub cameras: Vec<CameraId>,
    /// Only events captured at or after this time.
    pub since: Option<Timestamp>,
    /// Only events captured before this time.
    pub until: Option<Timestamp>,
    /// At most this many (all if `None`).
    pub limit: Option<usize>,
}

/// A problem the index holds for a camera: an object that did not verify or was found
/// tampered when played, or sequences for which nothing verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexedProblem {
    /// The object, if it is about one.
    pub object: Option<ObjectId>,
    /// In words.
    pub problem: String,
}

/// What the index knows of one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ObjectState {
    /// Listed, and it verified (from its summary, or opened); nothing found since.
    Verified,
    /// It did not verify, or opening it found it tampered.
    Problem(String),
    /// Never listed to this device (not yet synced, withheld or deleted).
    Unknown,
}

/// The device's index.
pub struct Index {
    conn: Connection,
    key: IndexKey,
    path: PathBuf,
}

impl std::fmt::Debug for Index {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Index")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The index file kept beside a key store.
#[must_use]
pub fn beside(key_store: &Path) -> PathBuf {
    crate::private_file::beside(key_store, ".index")
}

fn event_row(camera: &CameraId, event: &ObjectId) -> Vec<u8> {
    let mut row = b"event".to_vec();
    row.extend_from_slice(&camera.0);
    row.extend_from_slice(&event.0);
    row
}

fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.0).unwrap_or(i64::MAX)
}

fn id16(bytes: &[u8]) -> Option<[u8; 16]> {
    bytes.try_into().ok()
}

impl Index {
    /// Opens the index at `path`, creating it readable by this user only, and rebuilding it
    /// (empty) if it is of another version or not an index at all. Rows are sealed under a key
    /// derived from `device`'s keys.
    ///
    /// # Errors
    /// [`IndexError`] if the file cannot be created or opened.
    pub fn open(path: &Path, device: &DeviceKeys) -> Result<Self, IndexError> {
        let key = IndexKey::derive(device);
        match Self::open_as_is(path, key) {
            Ok(index) => Ok(index),
            Err(_) => {
                // A cache: what cannot be read is made again.
                for stale in [
                    path.to_owned(),
                    crate::private_file::beside(path, "-journal"),
                ] {
                    match std::fs::remove_file(&stale) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(source) => {
                            return Err(IndexError::File {
                                path: stale,
                                source,
                            });
                        }
                    }
                }
                Self::open_as_is(path, IndexKey::derive(device))
            }
        }
    }

    fn open_as_is(path: &Path, key: IndexKey) -> Result<Self, IndexError> {
        let db = |source| IndexError::Database {
            path: path.to_owned(),
            source,
        };
        if !path.exists() {
            crate::private_file::create_afresh(path).map_err(|source| IndexError::File {
                path: path.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path).map_err(db)?;
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(db)?;
        if version == 0 {
            conn.execute_batch(&format!(
                "BEGIN; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
            ))
            .map_err(db)?;
        } else if version != SCHEMA_VERSION {
            return Err(IndexError::OtherVersion {
                path: path.to_owned(),
                found: version,
            });
        }
        Ok(Self {
            conn,
            key,
            path: path.to_owned(),
        })
    }

    fn db(&self, source: rusqlite::Error) -> IndexError {
        IndexError::Database {
            path: self.path.clone(),
            source,
        }
    }

    /// The highest sequence of `camera` this index holds as verified: where the next sync
    /// resumes (it lists from that object on, so the object itself is seen again).
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn resume_from(&self, camera: &CameraId) -> Result<Option<u64>, IndexError> {
        let top: Option<i64> = self
            .conn
            .query_row(
                "SELECT MAX(sequence) FROM objects WHERE camera = ?1 AND digest IS NOT NULL \
                 AND problem IS NULL",
                params![&camera.0[..]],
                |r| r.get(0),
            )
            .map_err(|e| self.db(e))?;
        Ok(top.and_then(|t| u64::try_from(t).ok()))
    }

    /// Checks that the object a sync resumed from (sequence `held`, the newest this index holds
    /// as verified) is listed as the same object: another one there is a swap of history this
    /// device verified.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn check_resumed(
        &self,
        camera: &CameraId,
        held: u64,
        report: &mut Report,
    ) -> Result<(), IndexError> {
        let digest: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT digest FROM objects WHERE camera = ?1 AND sequence = ?2                  AND digest IS NOT NULL AND problem IS NULL",
                params![&camera.0[..], i64::try_from(held).unwrap_or(i64::MAX)],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        let Some(digest) = digest else {
            return Ok(());
        };
        for entry in &mut report.entries {
            let at_held = entry.header.as_ref().is_some_and(|h| h.sequence == held);
            if at_held && entry.digest.is_some_and(|d| d.0[..] != digest[..]) {
                entry
                    .problems
                    .push(Problem::NotAsVerified { sequence: held });
            }
        }
        Ok(())
    }

    /// Keeps what a check of `camera`'s listing from sequence `from` on found: each object's
    /// verdict, and the sequences with nothing verified (replacing those held from `from` on).
    /// `now` is when the server answered. With `opened` (every object was opened, not only its
    /// summary checked), what it found is kept like a finding of playing it
    /// ([`Index::mark_played`]).
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be written.
    pub fn record(
        &mut self,
        camera: &CameraId,
        from: u64,
        report: &Report,
        now: Timestamp,
        opened: bool,
    ) -> Result<(), IndexError> {
        let path = self.path.clone();
        let db = |source| IndexError::Database {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(db)?;
        for entry in &report.entries {
            let problem = (!entry.problems.is_empty()).then(|| {
                entry
                    .problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            let header = entry.header.as_ref();
            tx.execute(
                "INSERT INTO objects (camera, object_id, sequence, kind, captured_at, digest, \
                 problem) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (camera, object_id) DO UPDATE SET sequence = excluded.sequence,
                 kind = excluded.kind, captured_at = excluded.captured_at,
                 digest = excluded.digest, problem = excluded.problem",
                params![
                    &camera.0[..],
                    &entry.listed_id.0[..],
                    header.and_then(|h| i64::try_from(h.sequence).ok()),
                    header.map(|h| i64::from(h.kind.id())),
                    header.map(|h| ms(h.captured_at)),
                    entry.digest.map(|d| d.0.to_vec()),
                    problem,
                ],
            )
            .map_err(db)?;
            if let (true, Some(problem)) = (opened, &problem) {
                tx.execute(
                    "UPDATE objects SET played = ?3 WHERE camera = ?1 AND object_id = ?2",
                    params![&camera.0[..], &entry.listed_id.0[..], problem],
                )
                .map_err(db)?;
            }
        }
        let from = i64::try_from(from).unwrap_or(i64::MAX);
        tx.execute(
            "DELETE FROM gaps WHERE camera = ?1 AND first >= ?2",
            params![&camera.0[..], from],
        )
        .map_err(db)?;
        for gap in &report.missing {
            tx.execute(
                "INSERT OR REPLACE INTO gaps (camera, first, last) VALUES (?1, ?2, ?3)",
                params![
                    &camera.0[..],
                    i64::try_from(*gap.start()).unwrap_or(i64::MAX),
                    i64::try_from(*gap.end()).unwrap_or(i64::MAX)
                ],
            )
            .map_err(db)?;
        }
        tx.execute(
            "INSERT INTO cameras (camera, synced_at) VALUES (?1, ?2)
             ON CONFLICT (camera) DO UPDATE SET synced_at = excluded.synced_at",
            params![&camera.0[..], ms(now)],
        )
        .map_err(db)?;
        tx.commit().map_err(db)
    }

    /// When the server last answered a sync of `camera` (this device's clock).
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn synced_at(&self, camera: &CameraId) -> Result<Option<Timestamp>, IndexError> {
        let at: Option<i64> = self
            .conn
            .query_row(
                "SELECT synced_at FROM cameras WHERE camera = ?1",
                params![&camera.0[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        Ok(at.and_then(|a| u64::try_from(a).ok()).map(Timestamp))
    }

    /// Whether the index holds `event`'s details.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn has_event(&self, event: &ObjectId) -> Result<bool, IndexError> {
        self.conn
            .query_row(
                "SELECT 1 FROM events WHERE object_id = ?1",
                params![&event.0[..]],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(|e| self.db(e))
    }

    /// Keeps an event the device opened, sealed.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be written.
    pub fn put_event(
        &mut self,
        camera: &CameraId,
        event: &ObjectId,
        captured_at: Timestamp,
        details: &EventDetails,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), IndexError> {
        let plain = zeroize::Zeroizing::new(
            details
                .encode()
                .map_err(|e| IndexError::Event(e.to_string()))?,
        );
        let sealed = self.key.seal(&event_row(camera, event), &plain, rng);
        self.conn
            .execute(
                "INSERT OR REPLACE INTO events (camera, object_id, captured_at, sealed)
                 VALUES (?1, ?2, ?3, ?4)",
                params![&camera.0[..], &event.0[..], ms(captured_at), sealed],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// The events that match `query`, newest first, opened. A row that does not open (altered,
    /// or another device's) is dropped, to be fetched again by the next sync.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn events(&self, query: &EventQuery) -> Result<Vec<IndexedEvent>, IndexError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT camera, object_id, captured_at, sealed FROM events
                 WHERE captured_at >= ?1 AND captured_at < ?2 ORDER BY captured_at DESC",
            )
            .map_err(|e| self.db(e))?;
        let since = query.since.map_or(0, ms);
        let until = query.until.map_or(i64::MAX, ms);
        let rows = stmt
            .query_map(params![since, until], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Vec<u8>>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                ))
            })
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        let mut unreadable = Vec::new();
        for row in rows {
            let (camera, event, captured_at, sealed) = row.map_err(|e| self.db(e))?;
            let (Some(camera), Some(event)) = (id16(&camera), id16(&event)) else {
                continue;
            };
            let (camera, event) = (CameraId(camera), ObjectId(event));
            if !query.cameras.is_empty() && !query.cameras.contains(&camera) {
                continue;
            }
            let opened = self
                .key
                .open(&event_row(&camera, &event), &sealed)
                .ok()
                .and_then(|plain| EventDetails::decode(&plain).ok());
            let Some(details) = opened else {
                unreadable.push(event);
                continue;
            };
            out.push(IndexedEvent {
                camera,
                event,
                captured_at: Timestamp(u64::try_from(captured_at).unwrap_or(0)),
                details,
            });
            if query.limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        drop(stmt);
        for event in unreadable {
            self.conn
                .execute(
                    "DELETE FROM events WHERE object_id = ?1",
                    params![&event.0[..]],
                )
                .map_err(|e| self.db(e))?;
        }
        Ok(out)
    }

    /// Records that playing or exporting `object` found it not as the camera sealed it. Kept
    /// until the index is rebuilt: a later check of the listing (which cannot see the video)
    /// does not clear it.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be written.
    pub fn mark_played(
        &mut self,
        camera: &CameraId,
        object: &ObjectId,
        problem: &str,
    ) -> Result<(), IndexError> {
        self.conn
            .execute(
                "INSERT INTO objects (camera, object_id, played) VALUES (?1, ?2, ?3)
                 ON CONFLICT (camera, object_id) DO UPDATE SET played = excluded.played",
                params![&camera.0[..], &object.0[..], problem],
            )
            .map_err(|e| self.db(e))?;
        Ok(())
    }

    /// What playing `object` found, if anything.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn played(
        &self,
        camera: &CameraId,
        object: &ObjectId,
    ) -> Result<Option<String>, IndexError> {
        self.conn
            .query_row(
                "SELECT played FROM objects WHERE camera = ?1 AND object_id = ?2",
                params![&camera.0[..], &object.0[..]],
                |r| r.get::<_, Option<String>>(0),
            )
            .optional()
            .map(Option::flatten)
            .map_err(|e| self.db(e))
    }

    /// What the index knows of `object` of `camera`.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn object_state(
        &self,
        camera: &CameraId,
        object: &ObjectId,
    ) -> Result<ObjectState, IndexError> {
        // (verified, problem, played)
        let row: Option<(bool, Option<String>, Option<String>)> = self
            .conn
            .query_row(
                "SELECT digest IS NOT NULL, problem, played FROM objects
                 WHERE camera = ?1 AND object_id = ?2",
                params![&camera.0[..], &object.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        Ok(match row {
            None | Some((false, None, None)) => ObjectState::Unknown,
            Some((_, _, Some(played))) => ObjectState::Problem(played),
            Some((_, Some(problem), None)) => ObjectState::Problem(problem),
            Some((true, None, None)) => ObjectState::Verified,
        })
    }

    /// The capture time `camera`'s camera signed for `object`, if the index holds it.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn captured_at(
        &self,
        camera: &CameraId,
        object: &ObjectId,
    ) -> Result<Option<Timestamp>, IndexError> {
        let at: Option<Option<i64>> = self
            .conn
            .query_row(
                "SELECT captured_at FROM objects WHERE camera = ?1 AND object_id = ?2",
                params![&camera.0[..], &object.0[..]],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        Ok(at
            .flatten()
            .and_then(|a| u64::try_from(a).ok())
            .map(Timestamp))
    }

    /// `camera`'s objects of `kind` captured in `[from, to)` by their signed capture times,
    /// oldest first, with what the index knows of each.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn objects_between(
        &self,
        camera: &CameraId,
        kind: ObjectKind,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<(ObjectId, Timestamp, ObjectState)>, IndexError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT object_id, captured_at, digest IS NOT NULL, problem, played FROM objects
                 WHERE camera = ?1 AND kind = ?2 AND captured_at >= ?3 AND captured_at < ?4
                 ORDER BY captured_at, sequence",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(
                params![&camera.0[..], i64::from(kind.id()), ms(from), ms(to)],
                |r| {
                    Ok((
                        r.get::<_, Vec<u8>>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, bool>(2)?,
                        r.get::<_, Option<String>>(3)?,
                        r.get::<_, Option<String>>(4)?,
                    ))
                },
            )
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (id, at, verified, problem, played) = row.map_err(|e| self.db(e))?;
            let Some(id) = id16(&id) else { continue };
            let state = match (played.or(problem), verified) {
                (Some(why), _) => ObjectState::Problem(why),
                (None, true) => ObjectState::Verified,
                (None, false) => ObjectState::Unknown,
            };
            out.push((
                ObjectId(id),
                Timestamp(u64::try_from(at).unwrap_or(0)),
                state,
            ));
        }
        Ok(out)
    }

    /// `camera`'s events held here whose objects come after sequence number `after`, oldest
    /// first, with their sequence numbers: what a follower has not handled yet, whichever
    /// process synced them.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn events_after(
        &self,
        camera: &CameraId,
        after: u64,
    ) -> Result<Vec<(u64, ObjectId)>, IndexError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT o.sequence, e.object_id FROM events e JOIN objects o
                 ON o.camera = e.camera AND o.object_id = e.object_id
                 WHERE e.camera = ?1 AND o.sequence > ?2 ORDER BY o.sequence",
            )
            .map_err(|e| self.db(e))?;
        let after = i64::try_from(after).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map(params![&camera.0[..], after], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))
            })
            .map_err(|e| self.db(e))?;
        let mut out = Vec::new();
        for row in rows {
            let (sequence, event) = row.map_err(|e| self.db(e))?;
            if let (Ok(sequence), Some(event)) = (u64::try_from(sequence), id16(&event)) {
                out.push((sequence, ObjectId(event)));
            }
        }
        Ok(out)
    }

    /// One event the index holds, opened; `None` if it holds none by that id (or its row does
    /// not open).
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn event(&self, event: &ObjectId) -> Result<Option<IndexedEvent>, IndexError> {
        let row: Option<(Vec<u8>, i64, Vec<u8>)> = self
            .conn
            .query_row(
                "SELECT camera, captured_at, sealed FROM events WHERE object_id = ?1",
                params![&event.0[..]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.db(e))?;
        let Some((camera, captured_at, sealed)) = row else {
            return Ok(None);
        };
        let Some(camera) = id16(&camera).map(CameraId) else {
            return Ok(None);
        };
        let details = self
            .key
            .open(&event_row(&camera, event), &sealed)
            .ok()
            .and_then(|plain| EventDetails::decode(&plain).ok());
        Ok(details.map(|details| IndexedEvent {
            camera,
            event: *event,
            captured_at: Timestamp(u64::try_from(captured_at).unwrap_or(0)),
            details,
        }))
    }

    /// Everything wrong the index holds for `camera`: objects that did not verify or were
    /// found tampered when played, then the sequences with nothing verified.
    ///
    /// # Errors
    /// [`IndexError`] if the index cannot be read.
    pub fn problems(&self, camera: &CameraId) -> Result<Vec<IndexedProblem>, IndexError> {
        let mut out = Vec::new();
        let mut stmt = self
            .conn
            .prepare(
                "SELECT object_id, problem, played FROM objects WHERE camera = ?1
                 AND (problem IS NOT NULL OR played IS NOT NULL) ORDER BY sequence",
            )
            .map_err(|e| self.db(e))?;
        let rows = stmt
            .query_map(params![&camera.0[..]], |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(|e| self.db(e))?;
        for row in rows {
            let (object, problem, played) = row.map_err(|e| self.db(e))?;
            let object = id16(&object).map(ObjectId);
            let played = played.filter(|p| problem.as_ref() != Some(p));
            for problem in [problem, played].into_iter().flatten() {
                out.push(IndexedProblem { object, problem });
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT first, last FROM gaps WHERE camera = ?1 ORDER BY first")
            .map_err(|e| self.db(e))?;
        let gaps = stmt
            .query_map(params![&camera.0[..]], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })
            .map_err(|e| self.db(e))?;
        for gap in gaps {
            let (first, last) = gap.map_err(|e| self.db(e))?;
            out.push(IndexedProblem {
                object: None,
                problem: if first == last {
                    format!("MISSING sequence {first}: no verified object (hidden, deleted, or tampered)")
                } else {
                    format!(
                        "MISSING sequences {first}–{last}: no verified object (hidden, deleted, \
                         or tampered)"
                    )
                },
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(path: &Path) -> i64 {
        Connection::open(path)
            .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
            .expect("the index reads")
    }

    #[test]
    fn an_index_of_another_version_or_not_an_index_is_made_again() {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let device = DeviceKeys::generate(&mut rand_core::OsRng);
        let path = dir.path().join("store.index");
        drop(Index::open(&path, &device).expect("a new index opens"));
        assert_eq!(version(&path), SCHEMA_VERSION);

        Connection::open(&path)
            .and_then(|c| c.execute_batch("PRAGMA user_version = 999"))
            .expect("the version is changed");
        match Index::open_as_is(&path, IndexKey::derive(&device)) {
            Err(IndexError::OtherVersion { found: 999, .. }) => {}
            other => panic!("expected another version, got {:?}", other.err()),
        }
        drop(Index::open(&path, &device).expect("the index is made again"));
        assert_eq!(version(&path), SCHEMA_VERSION);

        std::fs::write(
            &path,
            b"not a database at all, just some bytes that are long enough",
        )
        .expect("the file is overwritten");
        drop(Index::open(&path, &device).expect("the index is made again"));
        assert_eq!(version(&path), SCHEMA_VERSION);
    }
}
