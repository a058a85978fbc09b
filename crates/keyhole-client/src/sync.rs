//! Keeping a device in step with its account through the account log (PROTOCOL.md §15.4):
//! every roster and camera record is written together with the log entry that records it, and
//! read only in a version the log records; each device posts the head it verified and compares
//! the other devices' heads, which finds a server that showed them different histories.

use keyhole_core::log::{
    self, CameraMark, Comparison, ENTRY_LEN, EntryKind, HeadStatement, LogError, SignedEntry,
};
use keyhole_core::record::CameraState;
use keyhole_core::record::{CameraRecord, SignedCameraRecord};
use keyhole_core::roster::{Roster, RosterBody, SignedRoster};
use keyhole_core::signer::{Signer, SignerKey};
use keyhole_core::{CameraId, Timestamp};
use serde::Deserialize;

use crate::ClientError;
use crate::account_log::Next;
pub(crate) use crate::account_log::ROSTER;
use crate::owner::{Owner, untrusted};

/// A camera's records' place in the log.
pub(crate) fn camera_subject(camera: &CameraId) -> (EntryKind, [u8; 16]) {
    (EntryKind::CameraRecord, camera.0)
}

/// Entries the server returns per read at most.
const LOG_PAGE: usize = 1000;

#[derive(Deserialize)]
struct KeyPackages {
    packages: Vec<String>,
}

/// A refused log entry: a fork is named as one, the rest are untrusted input.
fn log_refused(e: LogError) -> ClientError {
    match e {
        LogError::Fork { sequence } => ClientError::Forked(format!(
            "the server now shows account log entry {sequence} with other content than this \
             device verified before"
        )),
        other => untrusted(format!("account log: {other}")),
    }
}

impl Owner {
    /// Writes `statement` (a signed roster or camera record, as `version` of `subject`) with the
    /// log entry recording it, both signed by this device, in one request; the server takes
    /// both or neither.
    pub(crate) async fn append(
        &mut self,
        subject: (EntryKind, [u8; 16]),
        version: u64,
        statement: &[u8],
        now: Timestamp,
    ) -> Result<(), ClientError> {
        let entry = self
            .log
            .next(subject, version, statement, now)
            .sign(self.signer())
            .map_err(untrusted)?;
        self.append_entry(entry, statement).await
    }

    /// Writes a signed entry with the statement it records, then takes it into the log (a
    /// roster it records becomes the roster in force).
    async fn append_entry(
        &mut self,
        entry: SignedEntry,
        statement: &[u8],
    ) -> Result<(), ClientError> {
        let mut request = Vec::with_capacity(ENTRY_LEN + statement.len());
        request.extend_from_slice(entry.encoded());
        request.extend_from_slice(statement);
        self.api
            .post_bytes::<serde_json::Value>("/v1/log", request)
            .await?;
        if let Next::Roster(_) = self.log.accept(entry).map_err(log_refused)? {
            self.log
                .adopt_roster(SignedRoster::decode(statement).map_err(untrusted)?)?;
        }
        Ok(())
    }

    /// Reads and verifies the log entries after this device's head, each against the roster
    /// in force where it stands: every roster an entry records is fetched and verified before
    /// the next entry.
    async fn pull_log(&mut self) -> Result<(), ClientError> {
        if let Some(version) = self.log.waiting_for_roster() {
            self.adopt_logged_roster(version).await?;
        }
        loop {
            let after = self.log.sequence();
            let page = self
                .api
                .get_bytes(&format!("/v1/log?after={after}"))
                .await?;
            if page.len() % ENTRY_LEN != 0 {
                return Err(untrusted("the account log's entries are cut off"));
            }
            for chunk in page.chunks(ENTRY_LEN) {
                let entry = SignedEntry::decode(chunk).map_err(untrusted)?;
                if let Next::Roster(version) = self.log.accept(entry).map_err(log_refused)? {
                    self.adopt_logged_roster(version).await?;
                }
            }
            if page.len() < LOG_PAGE * ENTRY_LEN {
                return Ok(());
            }
            if self.log.sequence() == after {
                return Err(untrusted("the server repeats account log entries"));
            }
        }
    }

    /// Fetches roster `version`, which the newest log entry records, and makes it the roster
    /// in force.
    async fn adopt_logged_roster(&mut self, version: u64) -> Result<(), ClientError> {
        let bytes = self.read_logged(ROSTER, "/v1/roster", version).await?;
        self.log
            .adopt_roster(SignedRoster::decode(&bytes).map_err(untrusted)?)
    }

    /// Brings the roster and every camera's records up to the versions the log records, each
    /// fetched version checked against its entry and against the roster in force there, and
    /// learns cameras that other devices paired. Every change to the account starts here, so
    /// it extends the newest state.
    pub(crate) async fn refresh(&mut self) -> Result<(), ClientError> {
        self.pull_log().await?;
        self.refresh_from_log().await
    }

    /// The part of [`Owner::refresh`] after the log is read: each camera the log records, shares,
    /// acceptance and shared cameras.
    async fn refresh_from_log(&mut self) -> Result<(), ClientError> {
        let logged: Vec<CameraId> = self
            .log
            .subjects(EntryKind::CameraRecord)
            .map(CameraId)
            .collect();
        for camera in logged {
            self.refresh_camera(camera).await?;
        }
        if let Some(camera) = self
            .cameras
            .iter()
            .find(|(id, keys)| {
                keys.owner.is_none() && self.log.latest(camera_subject(id)).is_none()
            })
            .map(|(id, _)| id)
        {
            return Err(untrusted(format!(
                "this device holds camera {camera}, which the account log does not record"
            )));
        }
        self.refresh_shares().await?;
        self.refresh_floors().await?;
        self.refresh_acceptance().await?;
        self.refresh_shared_cameras().await
    }

    /// Version `version` of the statement at `path` (read with `?version=`), which must be the
    /// exact bytes the log records for it.
    pub(crate) async fn read_logged(
        &self,
        subject: (EntryKind, [u8; 16]),
        path: &str,
        version: u64,
    ) -> Result<Vec<u8>, ClientError> {
        let bytes = self
            .api
            .get_bytes(&format!("{path}?version={version}"))
            .await?;
        self.log.require(subject, version, &bytes)?;
        Ok(bytes)
    }

    /// Fetches the record versions of `camera` the log records beyond those this device holds.
    /// A camera whose records the server no longer has (removed with its footage) is left as
    /// it is.
    async fn refresh_camera(&mut self, camera: CameraId) -> Result<(), ClientError> {
        let subject = camera_subject(&camera);
        let Some(latest) = self.log.latest(subject) else {
            return Ok(());
        };
        let records: Vec<CameraRecord> = self
            .cameras
            .get(&camera)
            .map(|keys| keys.records.clone())
            .unwrap_or_default();
        let held = records.last().map_or(0, |r| r.body().version);
        if held > latest {
            return Err(untrusted(format!(
                "this device holds record version {held} of camera {camera}, which the account \
                 log does not record"
            )));
        }
        let check = |version, bytes: &[u8]| self.log.require(subject, version, bytes);
        let roster_for = |version, _: Signer| self.log.roster_when(subject, version).cloned();
        let Some(records) = self
            .fetch_records(&camera, roster_for, records, latest, check)
            .await?
        else {
            return Ok(());
        };
        if let Some(last) = records.last()
            && !self
                .log
                .records(subject, last.body().version, last.signed().encoded())
        {
            return Err(untrusted(format!(
                "this device's record of camera {camera} is not the one the account log records"
            )));
        }
        self.cameras.entry(camera).or_default().records = records;
        Ok(())
    }

    /// Record versions after those in `records` up to `to` of `camera`, each passed to `check`
    /// (version, bytes) and verified as a successor of the one before, signed by the account
    /// key or a device of the roster `roster_for` (version, signer) names as in force for it;
    /// `None` if the server no longer serves them (a camera removed with its footage, or a
    /// share withdrawn).
    pub(crate) async fn fetch_records(
        &self,
        camera: &CameraId,
        roster_for: impl Fn(u64, Signer) -> Option<Roster>,
        mut records: Vec<CameraRecord>,
        to: u64,
        check: impl Fn(u64, &[u8]) -> Result<(), ClientError>,
    ) -> Result<Option<Vec<CameraRecord>>, ClientError> {
        let from = records.last().map_or(0, |r| r.body().version) + 1;
        for version in from..=to {
            let bytes = match self
                .api
                .get_bytes(&format!("/v1/cameras/{camera}/record?version={version}"))
                .await
            {
                Err(ClientError::Server { status: 404, .. }) => return Ok(None),
                other => other?,
            };
            check(version, &bytes)?;
            let offered = SignedCameraRecord::decode(&bytes).map_err(untrusted)?;
            let roster = roster_for(version, offered.signer()).ok_or_else(|| {
                untrusted(format!(
                    "no roster in force is known for record version {version} of camera {camera}"
                ))
            })?;
            let record = match records.last() {
                Some(previous) => previous.accept(offered, &roster),
                None => offered.verify_first(&roster, camera),
            }
            .map_err(untrusted)?;
            records.push(record);
        }
        Ok(Some(records))
    }

    /// Signs `body` as the next roster with this device's key and writes it with its log
    /// entry.
    pub(crate) async fn publish_roster(&mut self, body: RosterBody) -> Result<(), ClientError> {
        self.publish_roster_as(body, None).await
    }

    /// Signs `body` as the next roster — with `account`, the account key (at recovery), or
    /// else this device's key — and writes it with its log entry signed by the same key.
    pub(crate) async fn publish_roster_as(
        &mut self,
        body: RosterBody,
        account: Option<&keyhole_core::AccountKey>,
    ) -> Result<(), ClientError> {
        let (entry, signed) = {
            let key = account.map_or_else(|| self.signer(), SignerKey::Account);
            let now = body.issued_at;
            let signed = body.sign(key).map_err(untrusted)?;
            let version = self
                .roster()
                .accept(signed.clone())
                .map_err(untrusted)?
                .body()
                .version;
            let entry = self
                .log
                .next(ROSTER, version, signed.encoded(), now)
                .sign(key)
                .map_err(untrusted)?;
            (entry, signed)
        };
        self.append_entry(entry, signed.encoded()).await
    }

    /// Writes `signed` as the next record of `camera` with its log entry; returns it verified.
    pub(crate) async fn publish_record(
        &mut self,
        camera: CameraId,
        signed: SignedCameraRecord,
    ) -> Result<CameraRecord, ClientError> {
        let accepted = match self.cameras.get(&camera).and_then(|k| k.records.last()) {
            Some(latest) => latest.accept(signed.clone(), self.roster()),
            None => signed.clone().verify_first(self.roster(), &camera),
        }
        .map_err(untrusted)?;
        let body = accepted.body();
        self.append(
            camera_subject(&camera),
            body.version,
            signed.encoded(),
            body.issued_at,
        )
        .await?;
        self.cameras
            .entry(camera)
            .or_default()
            .records
            .push(accepted.clone());
        Ok(accepted)
    }

    /// Opens this device's key packages for viewing keys it does not hold yet, each checked
    /// against the record of its epoch.
    pub(crate) async fn open_key_packages(&mut self) -> Result<(), ClientError> {
        let packages: KeyPackages = self.api.get_json("/v1/key-packages").await?;
        for encoded in packages.packages {
            let Some(pkg) = self.package(&encoded) else {
                continue;
            };
            if pkg.owner != *self.account() && !self.learn_shared_camera(&pkg).await? {
                continue;
            }
            let Some(keys) = self.cameras.get_mut(&pkg.camera_id) else {
                continue;
            };
            if keys.viewing.contains_key(&pkg.epoch) {
                continue;
            }
            let Some(record) = keys.records.iter().find(|r| r.body().epoch == pkg.epoch) else {
                continue;
            };
            match pkg.open(&self.device.hpke, &record.body().viewing_key) {
                Ok(opened) => {
                    keys.viewing.insert(pkg.epoch, opened.secret);
                }
                Err(e) => self.damaged(&pkg, &e),
            }
        }
        Ok(())
    }

    /// Brings this device up to date — the account log, the roster, every camera's records
    /// (cameras other devices paired included), the accounts whose shares it accepts, and
    /// viewing keys — then posts the head it verified (stamped with this machine's clock) and
    /// compares the account's other devices' heads with its own log. Last, it finishes a
    /// revocation that failed part-way (a new epoch for each camera a revoked device still
    /// holds the key of) and follows the members of shared cameras: seals the current key to
    /// their new devices, starts a new epoch when they lost one, and withdraws expired shares.
    /// Returns whether the device learned anything (worth saving).
    ///
    /// # Errors
    /// [`ClientError::Forked`] when another device verified a different history than the server
    /// shows this one; [`ClientError::Stale`] when a camera's signed head names a newer record
    /// or device list than the server showed this device; [`ClientError::Untrusted`] for
    /// anything that does not verify, or a log the server holds back from this device; server
    /// errors.
    pub async fn sync(&mut self) -> Result<bool, ClientError> {
        self.damaged_packages.clear();
        let before = self.progress();
        let now = crate::now();
        self.pull_log().await?;
        self.still_listed()?;
        self.refresh_from_log().await?;
        self.open_key_packages().await?;
        if self.compare_heads(now).await? {
            // Another device had seen entries this device had not: read them, compare again.
            self.refresh().await?;
            self.open_key_packages().await?;
            if self.compare_heads(now).await? {
                return Err(untrusted(
                    "another device has verified account log entries the server does not show \
                     this device",
                ));
            }
        }
        self.check_heads().await?;
        self.finish_revocations(now, &mut rand_core::OsRng).await?;
        self.follow_members(now, &mut rand_core::OsRng).await?;
        Ok(self.progress() != before)
    }

    /// [`ClientError::Removed`] if the roster in force no longer lists this device, naming the
    /// first roster without it and who signed that.
    fn still_listed(&self) -> Result<(), ClientError> {
        if self.roster().device(&self.device_id).is_some() {
            return Ok(());
        }
        // The last roster that dropped it, and the one before, which lists its signer.
        let (mut listed_in, mut removal): (Option<&Roster>, Option<(&Roster, &Roster)>) =
            (None, None);
        for roster in self.log.rosters() {
            if roster.device(&self.device_id).is_some() {
                listed_in = Some(roster);
            } else if let Some(before) = listed_in.take() {
                removal = Some((before, roster));
            }
        }
        if let Some((before, roster)) = removal {
            let by = match roster.signed().signer() {
                Signer::Account => {
                    "the account key (a recovery with the recovery phrase)".to_owned()
                }
                Signer::Device(id) => match before.device(&id) {
                    Some(d) => format!("device {:?} ({id})", d.name),
                    None => format!("device {id}"),
                },
            };
            return Err(ClientError::Removed {
                version: roster.body().version,
                by,
                at: roster.body().issued_at.0,
            });
        }
        Err(untrusted("the account's roster does not list this device"))
    }

    /// Completes a revocation that failed part-way, on whichever device syncs next: a camera
    /// whose current key was made, or sealed to a device added since, while the roster listed a
    /// device it no longer lists gets a new epoch. (The rosters in force since are the verified
    /// versions the log records.)
    async fn finish_revocations(
        &mut self,
        now: Timestamp,
        rng: &mut impl rand_core::CryptoRngCore,
    ) -> Result<(), ClientError> {
        // Each camera of this account still recording, with the record version its key began in.
        let cameras: Vec<(CameraId, u64)> = self
            .cameras
            .iter()
            .filter(|(_, keys)| keys.owner.is_none())
            .filter_map(|(id, keys)| {
                let latest = keys.records.last()?.body();
                let began = keys
                    .records
                    .iter()
                    .find(|r| r.body().epoch == latest.epoch)?
                    .body()
                    .version;
                (latest.state == CameraState::Active).then_some((*id, began))
            })
            .collect();
        // A camera needs a new epoch if a roster version in force since its key began lists a
        // device the current one does not (the log holds every version, verified).
        let current = self.roster();
        let lists_a_revoked_device = |roster: &Roster| {
            roster
                .body()
                .devices
                .iter()
                .any(|d| current.device(&d.id).is_none())
        };
        let stale: Vec<CameraId> = cameras
            .into_iter()
            .filter(|(camera, began)| {
                self.log
                    .version_when(ROSTER, camera_subject(camera), *began)
                    .is_some_and(|then| {
                        self.log
                            .rosters()
                            .filter(|r| (then..current.body().version).contains(&r.body().version))
                            .any(lists_a_revoked_device)
                    })
            })
            .map(|(camera, _)| camera)
            .collect();
        for camera in stale {
            self.rotate_epoch(&camera, now, rng).await?;
        }
        Ok(())
    }

    /// How far this device's knowledge goes: log entries, roster version, records and keys.
    fn progress(&self) -> (u64, u64, usize, usize, u64, u64, u64) {
        let (records, keys) = self.cameras.values().fold((0, 0), |(r, k), c| {
            (r + c.records.len(), k + c.viewing.len())
        });
        // Heads and floors only move forward, so a newer one changes the sum of their clocks
        // or versions.
        let heads = self
            .cameras
            .values()
            .filter_map(|c| c.head.as_ref())
            .fold(0u64, |sum, h| sum.wrapping_add(h.head.clock.0));
        let floors = self
            .cameras
            .values()
            .filter_map(|c| c.floor.as_ref())
            .fold(0u64, |sum, f| sum.wrapping_add(f.body().version));
        (
            self.log.sequence(),
            self.roster().body().version,
            records,
            keys,
            self.sharing.progress(),
            heads,
            floors,
        )
    }

    /// [`Owner::sync`], then checks that `camera` is one of this device's cameras.
    ///
    /// # Errors
    /// As [`Owner::sync`], or [`ClientError::Untrusted`] for a camera this device does not know.
    pub async fn sync_camera(&mut self, camera: &CameraId) -> Result<bool, ClientError> {
        let learned = self.sync().await?;
        self.camera(camera)?;
        Ok(learned)
    }

    /// Posts this device's head and compares every enrolled device's posted head with this
    /// device's log. Returns whether some device is ahead of this one.
    async fn compare_heads(&mut self, now: Timestamp) -> Result<bool, ClientError> {
        let head = self.log.head().clone();
        let head = &head;
        let account = *self.account();
        let own = HeadStatement {
            account,
            device: self.device_id,
            sequence: head.sequence(),
            head: head.hash(),
            seen_at: now,
            marks: self
                .cameras
                .iter()
                .filter_map(|(camera, keys)| {
                    Some(CameraMark {
                        camera: *camera,
                        verified: keys.verified?,
                    })
                })
                .collect(),
        };
        self.api
            .put_bytes("/v1/log/heads", own.sign(&self.device.signing))
            .await?;
        let heads = self.api.get_bytes("/v1/log/heads").await?;
        let heads = HeadStatement::split(&heads)
            .map_err(|e| untrusted(format!("the devices' log heads: {e}")))?;
        let mut behind = false;
        let mut heard = std::collections::BTreeMap::new();
        let mut theirs_marks = Vec::new();
        for chunk in heads {
            let named = HeadStatement::decode_unverified(chunk).map_err(untrusted)?;
            // Revoked and unknown devices are not the account's to compare.
            let Some(device) = self.roster().device(&named.device) else {
                continue;
            };
            if device.id == self.device_id {
                continue;
            }
            let theirs = HeadStatement::verify(chunk, &account, &device.signing_key)
                .map_err(|e| untrusted(format!("device {:?}'s log head: {e}", device.name)))?;
            heard.insert(theirs.device, theirs.seen_at);
            theirs_marks.extend(theirs.marks.iter().copied());
            match log::compare(head, |s| self.log.hash_at(s), theirs.sequence, theirs.head) {
                Ok(Comparison::Same | Comparison::TheyAreBehind) => {}
                Ok(Comparison::WeAreBehind { .. }) => behind = true,
                Err(_) => {
                    return Err(ClientError::Forked(format!(
                        "device {:?} verified account log entry {} (on {}) with other content \
                         than the server shows this device",
                        device.name, theirs.sequence, theirs.seen_at
                    )));
                }
            }
        }
        self.heard = heard;
        self.expect_what_they_verified(&theirs_marks);
        Ok(behind)
    }

    /// Takes another listed device's marks as this device's own where they are newer: what one
    /// of the account's devices verified, the server cannot hide from the others.
    fn expect_what_they_verified(&mut self, marks: &[CameraMark]) {
        for mark in marks {
            if let Some(keys) = self.cameras.get_mut(&mark.camera)
                && keys
                    .verified
                    .is_none_or(|own| own.sequence < mark.verified.sequence)
            {
                keys.verified = Some(mark.verified);
            }
        }
    }

    /// The account's other devices, each with when it last reported the log head it verified
    /// (by its own clock), as of this device's last [`Owner::sync`]; `None` for a device not
    /// heard from. A device long silent while in use may have its reports withheld by the
    /// server, which could then be showing it another history.
    #[must_use]
    pub fn devices_heard(&self) -> Vec<(keyhole_core::DeviceId, Option<Timestamp>)> {
        self.roster()
            .body()
            .devices
            .iter()
            .filter(|d| d.id != self.device_id)
            .map(|d| (d.id, self.heard.get(&d.id).copied()))
            .collect()
    }
}
