//! Sharing cameras with other accounts (PROTOCOL.md §16), on both sides. The owner's device
//! pins the member's account key by its account code, seals viewing keys only to the devices
//! the member's own roster lists (verified under that key), follows that roster from then on,
//! and withdraws with a new share statement and a new epoch. The member's device pins the
//! owner's key the same way and opens the owner's cameras only under it.

use std::collections::{BTreeMap, BTreeSet};

use keyhole_core::acceptance::{Acceptance, AcceptanceBody, AcceptedOwner, SignedAcceptance};
use keyhole_core::key_package::{KeyPackage, Recipient, RecipientKey};
use keyhole_core::log::EntryKind;
use keyhole_core::record::{CameraRecord, CameraState, SignedCameraRecord};
use keyhole_core::roster::Roster;
use keyhole_core::share::{Member, Share, ShareBody, SignedShare};
use keyhole_core::signer::Signer;
use keyhole_core::{AccountPublicKey, CameraId, DeviceId, HpkeSecretKey, Timestamp};
use rand_core::CryptoRngCore;
use serde::Deserialize;

use crate::ClientError;
use crate::enroll::follow_rosters;
use crate::owner::{Owner, untrusted};

/// A member a camera is shared with: its user name, and when the share ends (`None`: when
/// withdrawn).
pub type SharedWith = (String, Option<Timestamp>);

/// What this device knows about sharing.
#[derive(Debug, Default, Clone)]
pub(crate) struct Sharing {
    /// The account's newest acceptance statement: the accounts whose shares its devices open,
    /// each with the key whose code the user compared on one of them.
    pub(crate) acceptance: Option<Acceptance>,
    /// The roster chain of every other account this device follows — members it shares with,
    /// owners whose cameras it opens — every version from the first (that account's key's), by
    /// account key. Keys are sealed to a member's newest; an owner's camera records are
    /// verified against its owner's.
    pub(crate) rosters: BTreeMap<[u8; 32], Vec<Roster>>,
    /// The newest share statement of each of this account's shared cameras.
    pub(crate) shares: BTreeMap<CameraId, Share>,
    /// Per shared camera and epoch, the member devices its key was sealed to from this device.
    /// Following members compares each camera with it (not with a roster seen before, which
    /// one camera's following would already have moved on for the next), so a seal that
    /// failed is made at the next sync, and a new epoch that failed is started again.
    pub(crate) sealed: BTreeMap<CameraId, BTreeMap<u32, BTreeSet<MemberDevice>>>,
}

/// A member's device: its account key and device id.
pub(crate) type MemberDevice = ([u8; 32], DeviceId);

impl Sharing {
    /// Grows with everything learned, for [`Owner::sync`] to tell whether to save.
    pub(crate) fn progress(&self) -> u64 {
        let members: u64 = self.rosters.values().map(|c| c.len() as u64).sum();
        let shares: u64 = self.shares.values().map(|s| s.body().version).sum();
        let sealed: u64 = self
            .sealed
            .values()
            .flat_map(BTreeMap::iter)
            .map(|(epoch, devices)| u64::from(*epoch) + devices.len() as u64)
            .sum();
        let accepted = self.acceptance.as_ref().map_or(0, |a| a.body().version);
        members + shares + sealed + accepted
    }

    /// The accounts whose shares this account accepts.
    pub(crate) fn owners(&self) -> &[AcceptedOwner] {
        self.acceptance
            .as_ref()
            .map_or(&[], |a| a.body().owners.as_slice())
    }

    /// Notes that `camera`'s key of `epoch` was sealed to this member device.
    fn note_sealed(&mut self, camera: CameraId, epoch: u32, device: MemberDevice) {
        self.sealed
            .entry(camera)
            .or_default()
            .entry(epoch)
            .or_default()
            .insert(device);
    }

    /// The member devices `camera`'s key of `epoch` was sealed to (none known: empty).
    fn sealed_at(&self, camera: &CameraId, epoch: u32) -> BTreeSet<MemberDevice> {
        self.sealed
            .get(camera)
            .and_then(|epochs| epochs.get(&epoch))
            .cloned()
            .unwrap_or_default()
    }

    /// Starts `camera`'s list for `epoch` afresh (a new key for it is about to be sealed),
    /// and forgets the lists of epochs before `current`.
    pub(crate) fn sealing(&mut self, camera: CameraId, epoch: u32, current: u32) {
        if let Some(epochs) = self.sealed.get_mut(&camera) {
            epochs.remove(&epoch);
            epochs.retain(|e, _| *e >= current);
        }
    }
}

#[derive(Deserialize)]
struct AccountKeyAnswer {
    account_key: String,
}

/// A camera's share statements' place in the log.
fn share_subject(camera: &CameraId) -> (EntryKind, [u8; 16]) {
    (EntryKind::Share, camera.0)
}

/// The acceptance statement's place in the log.
const ACCEPTANCE: (EntryKind, [u8; 16]) = (EntryKind::Acceptance, [0; 16]);

fn device_ids(roster: &Roster) -> BTreeSet<DeviceId> {
    roster.body().devices.iter().map(|d| d.id).collect()
}

/// The roster of an owner's `chain` against which a member checks a record signed by `signer`:
/// the newest record (`newest`), which names the key the camera seals to now, only under the
/// owner's current roster; an older one under the newest roster that lists its signer, since
/// the member, who seals nothing to those keys, only needs them to tell which key opens which
/// epoch (each key package is checked against them).
pub(crate) fn owner_roster_for(chain: &[Roster], newest: bool, signer: Signer) -> Option<Roster> {
    let current = chain.last()?;
    if newest {
        return Some(current.clone());
    }
    chain
        .iter()
        .rev()
        .find(|r| match signer {
            Signer::Account => true,
            Signer::Device(id) => r.device(&id).is_some(),
        })
        .cloned()
}

impl Owner {
    /// The key of account `username`, checked against the account code its user read out.
    async fn account_key_of(
        &self,
        username: &str,
        code: &str,
    ) -> Result<AccountPublicKey, ClientError> {
        let answer: AccountKeyAnswer = self
            .api
            .get_json(&format!("/v1/accounts/{username}/key"))
            .await?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&answer.account_key, &mut bytes).map_err(untrusted)?;
        let key = AccountPublicKey::from_bytes(&bytes).map_err(untrusted)?;
        if key == *self.account() {
            return Err(untrusted(format!("{username} is this account")));
        }
        if !key.account_code().matches(code) {
            return Err(untrusted(format!(
                "{username}'s account code is not the one given: the server may have given \
                 another account's key. Compare the code with {username} again"
            )));
        }
        Ok(key)
    }

    /// The member's side: accepts shares from account `username`, whose account code its user
    /// read out as `code`, in a new version of the account's acceptance statement (in its log).
    /// The server then lets that account see this account's devices (to seal keys to them),
    /// and every device of this account opens what it shares.
    ///
    /// # Errors
    /// A code that does not match (the server may have substituted the key), an unknown
    /// account, too many accepted accounts, server errors.
    pub async fn accept_shares_from(
        &mut self,
        username: &str,
        code: &str,
    ) -> Result<(), ClientError> {
        self.refresh().await?;
        let key = self.account_key_of(username, code).await?;
        let accepted = AcceptedOwner {
            account: key,
            name: username.to_owned(),
        };
        if self.sharing.owners().contains(&accepted) {
            return Ok(());
        }
        let now = crate::now();
        let mut body = match &self.sharing.acceptance {
            Some(acceptance) => acceptance.successor(now),
            None => AcceptanceBody {
                account: *self.account(),
                version: 1,
                issued_at: now,
                owners: Vec::new(),
            },
        };
        // A user name now naming another key (the account was replaced) is accepted afresh.
        body.owners
            .retain(|o| o.name != username && o.account != key);
        body.owners.push(accepted);
        self.publish_acceptance(body).await
    }

    /// The member's side: stops accepting shares from account `username`, in a new version of
    /// the account's acceptance statement. The server no longer lets that account read this
    /// account's devices or name it in a share, and this account's devices forget the cameras
    /// it shared, their keys included.
    ///
    /// # Errors
    /// Shares from `username` are not accepted; server errors.
    pub async fn refuse_shares_from(&mut self, username: &str) -> Result<(), ClientError> {
        self.refresh().await?;
        let held = self
            .sharing
            .acceptance
            .as_ref()
            .filter(|a| a.body().owners.iter().any(|o| o.name == username))
            .ok_or_else(|| untrusted(format!("shares from {username} are not accepted")))?;
        let mut body = held.successor(crate::now());
        body.owners.retain(|o| o.name != username);
        self.publish_acceptance(body).await
    }

    /// Signs `body`, appends it to the log, and forgets cameras of accounts it no longer lists.
    async fn publish_acceptance(&mut self, body: AcceptanceBody) -> Result<(), ClientError> {
        let now = body.issued_at;
        let signed = body.sign(self.signer()).map_err(untrusted)?;
        let acceptance = signed
            .clone()
            .verify_after(self.sharing.acceptance.as_ref(), self.roster(), &())
            .map_err(untrusted)?;
        self.append(ACCEPTANCE, acceptance.body().version, signed.encoded(), now)
            .await?;
        self.sharing.acceptance = Some(acceptance);
        self.forget_unaccepted_cameras();
        Ok(())
    }

    /// Drops the cameras (records and keys) of accounts whose shares are no longer accepted.
    fn forget_unaccepted_cameras(&mut self) {
        let owners: Vec<AccountPublicKey> =
            self.sharing.owners().iter().map(|o| o.account).collect();
        self.cameras
            .retain(|_, keys| keys.owner.is_none_or(|k| owners.contains(&k)));
    }

    /// Brings the acceptance statement up to the version the log records (another device of
    /// this account may have accepted an owner).
    pub(crate) async fn refresh_acceptance(&mut self) -> Result<(), ClientError> {
        let Some(latest) = self.log.latest(ACCEPTANCE) else {
            return Ok(());
        };
        let held = self
            .sharing
            .acceptance
            .as_ref()
            .map_or(0, |a| a.body().version);
        for version in held + 1..=latest {
            let bytes = self
                .read_logged(ACCEPTANCE, "/v1/acceptance", version)
                .await?;
            let roster = self
                .log
                .roster_when(ACCEPTANCE, version)
                .ok_or_else(|| untrusted("no roster in force for the acceptance statement"))?;
            let acceptance = SignedAcceptance::decode(&bytes)
                .map_err(untrusted)?
                .verify_after(self.sharing.acceptance.as_ref(), roster, &())
                .map_err(untrusted)?;
            self.sharing.acceptance = Some(acceptance);
        }
        self.forget_unaccepted_cameras();
        Ok(())
    }

    /// Shares `camera` with account `username` (its account code read out as `code`), until
    /// `expires_at` or until withdrawn: a new share statement in the log, and the camera's
    /// current viewing key sealed to each device the member's own signed roster lists. The
    /// member sees what the camera recorded in the current epoch and after.
    ///
    /// # Errors
    /// A code that does not match, a member roster that does not verify under its key, a camera
    /// that is not this account's or is removed, the member not accepting shares from this
    /// account (the server says so), server errors.
    pub async fn share_camera(
        &mut self,
        camera: &CameraId,
        username: &str,
        code: &str,
        expires_at: Option<Timestamp>,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        self.refresh().await?;
        self.own_active_camera(camera)?;
        if expires_at.is_some_and(|t| t <= now) {
            return Err(untrusted("the expiry is already past"));
        }
        let member = self.account_key_of(username, code).await?;
        let roster = self.member_roster(username, &member).await?;
        let mut body = match self.sharing.shares.get(camera) {
            Some(share) => share.successor(now),
            None => ShareBody {
                owner: *self.account(),
                camera_id: *camera,
                version: 1,
                issued_at: now,
                members: Vec::new(),
            },
        };
        body.members.retain(|m| m.account != member);
        body.members.push(Member {
            account: member,
            name: username.to_owned(),
            expires_at,
        });
        self.publish_share(*camera, body).await?;
        let all: Vec<DeviceId> = device_ids(&roster).into_iter().collect();
        self.seal_current(camera, &roster, &all, rng).await
    }

    /// Withdraws the share of `camera` with `username`: a share statement without it (its
    /// access to the server's objects ends at once), then a new epoch sealed to this account's
    /// devices and the remaining members', so nothing recorded afterwards opens for it.
    /// Returns the new epoch.
    ///
    /// # Errors
    /// A camera not shared with `username`, server errors.
    pub async fn unshare_camera(
        &mut self,
        camera: &CameraId,
        username: &str,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<u32, ClientError> {
        self.refresh().await?;
        let share = self
            .sharing
            .shares
            .get(camera)
            .filter(|s| s.body().members.iter().any(|m| m.name == username))
            .ok_or_else(|| untrusted(format!("camera {camera} is not shared with {username}")))?;
        let mut body = share.successor(now);
        body.members.retain(|m| m.name != username);
        self.publish_share(*camera, body).await?;
        self.rotate_epoch(camera, now, rng).await
    }

    /// This account's shared cameras: each one's members (user name) with their expiry.
    #[must_use]
    pub fn shares(&self) -> Vec<(CameraId, Vec<SharedWith>)> {
        self.sharing
            .shares
            .iter()
            .filter(|(_, s)| !s.body().members.is_empty())
            .map(|(id, s)| {
                let members = s
                    .body()
                    .members
                    .iter()
                    .map(|m| (m.name.clone(), m.expires_at))
                    .collect();
                (*id, members)
            })
            .collect()
    }

    /// The accounts whose shares this device accepts (user names).
    #[must_use]
    pub fn accepted_owners(&self) -> Vec<String> {
        self.sharing
            .owners()
            .iter()
            .map(|o| o.name.clone())
            .collect()
    }

    /// Who shares `camera` with this account (the username this device accepted shares from),
    /// or `None` for the account's own cameras.
    #[must_use]
    pub fn shared_by(&self, camera: &CameraId) -> Option<String> {
        let owner = self.cameras.get(camera)?.owner?;
        self.sharing
            .owners()
            .iter()
            .find(|o| o.account == owner)
            .map(|o| o.name.clone())
    }

    /// The camera's current record, if it is this account's own and active.
    pub(crate) fn own_active_camera(
        &self,
        camera: &CameraId,
    ) -> Result<&CameraRecord, ClientError> {
        let keys = self.camera(camera)?;
        if keys.owner.is_some() {
            return Err(untrusted(format!(
                "camera {camera} is shared with this account; only its owner can change it"
            )));
        }
        keys.records
            .last()
            .filter(|r| r.body().state == CameraState::Active)
            .ok_or_else(|| untrusted(format!("camera {camera} is removed")))
    }

    async fn publish_share(
        &mut self,
        camera: CameraId,
        body: ShareBody,
    ) -> Result<(), ClientError> {
        let now = body.issued_at;
        let signed = body.sign(self.signer()).map_err(untrusted)?;
        let accepted = signed
            .clone()
            .verify_after(self.sharing.shares.get(&camera), self.roster(), &camera)
            .map_err(untrusted)?;
        self.append(
            share_subject(&camera),
            accepted.body().version,
            signed.encoded(),
            now,
        )
        .await?;
        self.sharing.shares.insert(camera, accepted);
        Ok(())
    }

    /// The member's newest roster, followed from the chain this device holds (or from the
    /// first, signed by its pinned `key`), and kept.
    async fn member_roster(
        &mut self,
        username: &str,
        key: &AccountPublicKey,
    ) -> Result<Roster, ClientError> {
        let path = format!("/v1/accounts/{username}/roster");
        self.follow_account(&path, key).await.map_err(|e| match e {
            ClientError::Untrusted(m) => untrusted(format!("{username}'s device list: {m}")),
            other => other,
        })
    }

    /// Follows the roster chain of account `key` at `path` from what this device holds of it,
    /// keeps it, and returns its newest version.
    async fn follow_account(
        &mut self,
        path: &str,
        key: &AccountPublicKey,
    ) -> Result<Roster, ClientError> {
        let mut chain = self
            .sharing
            .rosters
            .get(&key.to_bytes())
            .cloned()
            .unwrap_or_default();
        chain.extend(follow_rosters(&self.api, path, key, chain.last()).await?);
        let newest = chain
            .last()
            .cloned()
            .ok_or_else(|| untrusted("no roster is served"))?;
        self.sharing.rosters.insert(key.to_bytes(), chain);
        Ok(newest)
    }

    /// Seals `camera`'s current viewing key to these devices of a member's verified `roster`.
    async fn seal_current(
        &mut self,
        camera: &CameraId,
        roster: &Roster,
        devices: &[DeviceId],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        let keys = self.camera(camera)?;
        let epoch = keys
            .records
            .last()
            .map(|r| r.body().epoch)
            .ok_or_else(|| untrusted("no trusted record for this camera"))?;
        let Some(held) = keys.viewing.get(&epoch) else {
            return Err(untrusted(format!(
                "this device does not hold camera {camera}'s current key yet; sync and try again"
            )));
        };
        // A copy: sealing notes what it sealed, which needs `self` mutably.
        let viewing = HpkeSecretKey::from_bytes(&held.to_bytes());
        self.seal_to_member(camera, epoch, &viewing, roster, devices, rng)
            .await
    }

    /// Seals a viewing key to these devices of a member's verified `roster`.
    pub(crate) async fn seal_to_member(
        &mut self,
        camera: &CameraId,
        epoch: u32,
        viewing: &HpkeSecretKey,
        roster: &Roster,
        devices: &[DeviceId],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        let account = roster.body().account;
        for id in devices {
            let Some(device) = roster.device(id) else {
                continue;
            };
            let recipient = Recipient {
                account,
                key: RecipientKey::Device(device.id),
            };
            self.put_key_package(*camera, epoch, viewing, recipient, &device.hpke_key, rng)
                .await?;
            self.sharing
                .note_sealed(*camera, epoch, (account.to_bytes(), device.id));
        }
        Ok(())
    }

    /// Seals a new epoch's key to every device of every member `camera` is shared with at
    /// `now` (their rosters fetched and verified).
    pub(crate) async fn seal_to_members(
        &mut self,
        camera: &CameraId,
        epoch: u32,
        viewing: &HpkeSecretKey,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        let Some(share) = self.sharing.shares.get(camera).cloned() else {
            return Ok(());
        };
        for m in &share.body().members {
            if share.viewer(&m.account, now).is_none() {
                continue;
            }
            let roster = self.member_roster(&m.name, &m.account).await?;
            let all: Vec<DeviceId> = device_ids(&roster).into_iter().collect();
            self.seal_to_member(camera, epoch, viewing, &roster, &all, rng)
                .await?;
        }
        Ok(())
    }

    /// Brings every shared camera's share statement up to the version the log records.
    pub(crate) async fn refresh_shares(&mut self) -> Result<(), ClientError> {
        let logged: Vec<CameraId> = self.log.subjects(EntryKind::Share).map(CameraId).collect();
        for camera in logged {
            let subject = share_subject(&camera);
            let Some(latest) = self.log.latest(subject) else {
                continue;
            };
            let mut held = self.sharing.shares.get(&camera).cloned();
            for version in held.as_ref().map_or(0, |s| s.body().version) + 1..=latest {
                let path = format!("/v1/cameras/{camera}/share");
                let bytes = match self.read_logged(subject, &path, version).await {
                    // The camera was removed with its footage, its shares with it.
                    Err(ClientError::Server { status: 404, .. }) => break,
                    other => other?,
                };
                let roster = self
                    .log
                    .roster_when(subject, version)
                    .ok_or_else(|| untrusted("no roster in force for the share statement"))?;
                let share = SignedShare::decode(&bytes)
                    .map_err(untrusted)?
                    .verify_after(held.as_ref(), roster, &camera)
                    .map_err(untrusted)?;
                held = Some(share);
            }
            if let Some(share) = held {
                self.sharing.shares.insert(camera, share);
            }
        }
        Ok(())
    }

    /// The roster chain of `owner`, whose camera `camera` this account opens, followed up to
    /// the newest the server shows (from the owner's first roster, signed by its pinned key,
    /// when none is held), and kept.
    async fn owner_rosters(
        &mut self,
        camera: &CameraId,
        owner: &AccountPublicKey,
    ) -> Result<Vec<Roster>, ClientError> {
        let path = format!("/v1/cameras/{camera}/roster");
        self.follow_account(&path, owner)
            .await
            .map_err(|e| match e {
                ClientError::Untrusted(m) => untrusted(format!("the owner's device list: {m}")),
                other => other,
            })?;
        Ok(self
            .sharing
            .rosters
            .get(&owner.to_bytes())
            .cloned()
            .unwrap_or_default())
    }

    /// Brings the records of cameras shared with this account up to date (under their owners'
    /// rosters). One whose share was withdrawn is no longer served and is left as it was.
    pub(crate) async fn refresh_shared_cameras(&mut self) -> Result<(), ClientError> {
        let shared: Vec<(CameraId, AccountPublicKey)> = self
            .cameras
            .iter()
            .filter_map(|(id, keys)| Some((*id, keys.owner?)))
            .collect();
        for (camera, owner) in shared {
            let latest = match self
                .api
                .get_bytes(&format!("/v1/cameras/{camera}/record"))
                .await
            {
                Err(ClientError::Server { status: 404, .. }) => continue,
                other => other?,
            };
            let to = SignedCameraRecord::decode(&latest)
                .map_err(untrusted)?
                .unverified_body()
                .version;
            let held = self.cameras.get(&camera).map(|k| k.records.clone());
            let chain = self.owner_rosters(&camera, &owner).await?;
            let roster_for = |version, signer| owner_roster_for(&chain, version == to, signer);
            if let Some(records) = self
                .fetch_records(&camera, roster_for, held.unwrap_or_default(), to, |_, _| {
                    Ok(())
                })
                .await?
                && let Some(keys) = self.cameras.get_mut(&camera)
            {
                keys.records = records;
            }
        }
        Ok(())
    }

    /// For a key package another account sealed to this device: whether its camera is one this
    /// device opens, learning it (its whole record history, verified under the owner's key)
    /// the first time. Only accounts the user accepted shares from count.
    pub(crate) async fn learn_shared_camera(
        &mut self,
        pkg: &KeyPackage,
    ) -> Result<bool, ClientError> {
        if !self.sharing.owners().iter().any(|o| o.account == pkg.owner) {
            return Ok(false);
        }
        if let Some(keys) = self.cameras.get(&pkg.camera_id) {
            return Ok(keys.owner == Some(pkg.owner));
        }
        let latest = match self
            .api
            .get_bytes(&format!("/v1/cameras/{}/record", pkg.camera_id))
            .await
        {
            Err(ClientError::Server { status: 404, .. }) => return Ok(false),
            other => other?,
        };
        let to = SignedCameraRecord::decode(&latest)
            .map_err(untrusted)?
            .unverified_body()
            .version;
        let chain = self.owner_rosters(&pkg.camera_id, &pkg.owner).await?;
        let roster_for = |version, signer| owner_roster_for(&chain, version == to, signer);
        let Some(records) = self
            .fetch_records(&pkg.camera_id, roster_for, Vec::new(), to, |_, _| Ok(()))
            .await?
        else {
            return Ok(false);
        };
        let keys = self.cameras.entry(pkg.camera_id).or_default();
        keys.records = records;
        keys.owner = Some(pkg.owner);
        Ok(true)
    }

    /// Follows the members of this account's shared cameras, each camera against the member
    /// devices its current key was sealed to: withdraws expired shares (with a new epoch),
    /// starts a new epoch when a device holding the key is no longer listed by its member's
    /// roster or its account is no longer a member, and otherwise seals the key to the member
    /// devices that lack it (added since, or a seal that failed).
    pub(crate) async fn follow_members(
        &mut self,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        let shared: Vec<(CameraId, Share)> = self
            .sharing
            .shares
            .iter()
            .map(|(id, s)| (*id, s.clone()))
            .collect();
        for (camera, share) in shared {
            let Ok(record) = self.own_active_camera(&camera) else {
                continue;
            };
            let epoch = record.body().epoch;
            let expired: Vec<String> = share
                .body()
                .members
                .iter()
                .filter(|m| share.viewer(&m.account, now).is_none())
                .map(|m| m.name.clone())
                .collect();
            if !expired.is_empty() {
                let mut body = share.successor(now);
                body.members.retain(|m| !expired.contains(&m.name));
                self.publish_share(camera, body).await?;
                self.rotate_epoch(&camera, now, rng).await?;
                continue;
            }
            let sealed = self.sharing.sealed_at(&camera, epoch);
            let mut listed = BTreeSet::new();
            let mut missing = Vec::new();
            for m in &share.body().members {
                let key = m.account.to_bytes();
                let roster = match self.member_roster(&m.name, &m.account).await {
                    // Not served: nothing new to follow (as with a server withholding newer
                    // versions, which only the member's devices could tell).
                    Err(ClientError::Server { status: 404, .. }) => {
                        listed.extend(sealed.iter().filter(|(a, _)| *a == key));
                        continue;
                    }
                    other => other?,
                };
                let devices = device_ids(&roster);
                listed.extend(devices.iter().map(|d| (key, *d)));
                let lacking: Vec<DeviceId> = devices
                    .into_iter()
                    .filter(|d| !sealed.contains(&(key, *d)))
                    .collect();
                if !lacking.is_empty() {
                    missing.push((roster, lacking));
                }
            }
            if !sealed.is_subset(&listed) {
                self.rotate_epoch(&camera, now, rng).await?;
                continue;
            }
            for (roster, devices) in missing {
                self.seal_current(&camera, &roster, &devices, rng).await?;
            }
        }
        Ok(())
    }
}
