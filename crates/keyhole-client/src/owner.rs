//! The owner's device: account set-up, camera pairing, and verifying and exporting footage.
//! Keys live in memory here; keeping them in a sealed key store is the caller's next step.

use std::collections::BTreeMap;

use base64::Engine as _;
use futures_util::StreamExt;
use keyhole_core::envelope::{Header, OpenError, OpenedObject, Opener, PREFIX_LEN, SignedHeader};
use keyhole_core::key_package::{KeyPackage, Recipient, RecipientKey};
use keyhole_core::log::{EntryBody, EntryKind, LogHash, SignedEntry, statement_hash};
use keyhole_core::pairing::{PairingCode, RegistrationProof};
use keyhole_core::record::{CameraRecord, CameraRecordBody, CameraState};
use keyhole_core::recovery::{KdfParams, RecoveryBackup, RecoveryPhrase, RecoverySecrets};
use keyhole_core::report::{Checked, DEFAULT_EPOCH_GRACE_MS, Failure, HighWater, Silence};
use keyhole_core::retention::RetentionFloor;
use keyhole_core::roster::{DeviceEntry, Roster, RosterBody, RosterHash, SignedRoster};
use keyhole_core::signer::SignerKey;
use keyhole_core::{
    AccountCode, AccountKey, AccountPublicKey, CameraId, DeviceId, DeviceKeys, HpkeSecretKey,
    ObjectId, Timestamp,
};
use keyhole_http::Endpoint;
use rand_core::CryptoRngCore;
use reqwest::Method;
use serde::Deserialize;
use serde_json::json;

use crate::ClientError;
use crate::account_log::AccountLog;
use crate::api::{Api, Body, Issued, Prover};
use crate::heads::HeldHead;
use crate::playback::ClipReader;
use crate::share::Sharing;

/// What this device knows about one camera.
#[derive(Debug, Default)]
pub(crate) struct CameraKeys {
    /// Verified records, oldest first.
    pub(crate) records: Vec<CameraRecord>,
    /// Viewing keys by epoch.
    pub(crate) viewing: BTreeMap<u32, HpkeSecretKey>,
    /// For a camera another account shares with this one: that account's key, which signs
    /// its records. `None` for the account's own cameras.
    pub(crate) owner: Option<keyhole_core::AccountPublicKey>,
    /// The newest object this device has verified, so a later listing that ends before it
    /// (the server hiding what was once shown) is reported.
    pub(crate) verified: Option<HighWater>,
    /// The newest head the camera signed that this device verified (PROTOCOL.md §8.3).
    pub(crate) head: Option<HeldHead>,
    /// The newest retention floor the account log records for the camera (PROTOCOL.md §11.5).
    pub(crate) floor: Option<RetentionFloor>,
}

/// What a live view delivered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveOutcome {
    /// Frames opened and verified.
    pub frames: u64,
    /// Frames the relay skipped because this viewer was behind.
    pub skipped: u64,
    /// Bytes written: the fragmented MP4 stream, whole boxes only.
    pub bytes: u64,
    /// Whether the camera ended the session (its signed final frame arrived).
    pub ended: bool,
    /// How far behind the camera the view was at most, in milliseconds: this device's time
    /// since it asked, less the camera's between getting the request and signing a checkpoint.
    pub lag_ms: Option<u64>,
    /// Frames dropped because no checkpoint vouched for them (one was lost on the way).
    pub unverified: u64,
    /// The stream stopped before the camera's final frame and before this viewer stopped
    /// watching: the server or the network cut the session off. (A relay can end a stream; it
    /// cannot make the final frame, which is sealed with the session's last-chunk flag.)
    pub cut: bool,
    /// The camera's clock in its newest checkpoint once one named this viewer's request: what
    /// talk-back tells the camera it saw ([`crate::talk`]).
    pub camera_clock: Option<keyhole_core::Timestamp>,
}

/// How far behind the camera a live view may fall before it is reported as delayed.
pub const LIVE_LAG_LIMIT_MS: u64 = 5_000;

impl LiveOutcome {
    /// Whether the view fell more than [`LIVE_LAG_LIMIT_MS`] behind the camera: a relay holding
    /// it back, or a network too slow for it.
    #[must_use]
    pub fn delayed(&self) -> bool {
        self.lag_ms.is_some_and(|lag| lag > LIVE_LAG_LIMIT_MS)
    }
}

/// A camera as this device sees it: from its newest verified record, the newest object the
/// server names (its header checked under the camera's key), and what this device verified
/// before.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraStatus {
    /// The camera.
    pub id: CameraId,
    /// Its name, from the signed record.
    pub name: String,
    /// The epoch of the newest signed record: what the camera should seal to.
    pub epoch: u32,
    /// Removed from the account (footage kept).
    pub removed: bool,
    /// The newest object the server names for it, from its header as the camera signed it;
    /// `None` if the server names none (or one whose header does not verify: see `problem`).
    pub latest: Option<Latest>,
    /// The newest object was sealed to an older epoch although it was captured more than the
    /// grace period after the newer record was signed: the camera is not getting its newest
    /// record (a server withholding it), so devices revoked since may open what it records.
    pub stale_epoch: bool,
    /// This device verified, or the camera signed that it delivered, a newer object (this
    /// sequence) than the newest the server names: the server is withholding the camera's
    /// newest objects.
    pub withheld_after: Option<u64>,
    /// When the camera was last heard from: the clock of its newest signed head this device
    /// holds (`None`: never).
    pub heard: Option<Timestamp>,
    /// The camera has said nothing signed since this time for longer than it promised (or
    /// since pairing, if never heard from): it may be offline, or the server may be
    /// withholding what it sends.
    pub silent_since: Option<Timestamp>,
    /// What was wrong with the object the server named as newest, if anything.
    pub problem: Option<String>,
}

/// The newest object of a camera, from its signed header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Latest {
    /// Its sequence number.
    pub sequence: u64,
    /// When the camera captured it, by the camera's clock.
    pub captured_at: Timestamp,
    /// The epoch it was sealed to.
    pub epoch: u32,
}

#[derive(Deserialize)]
struct ServerCamera {
    camera_id: String,
    latest: Option<ServerLatest>,
}

#[derive(Deserialize, Clone)]
struct ServerLatest {
    object_id: String,
}

/// An enrolled device acting for the account owner. It holds its own device keys and the
/// viewing keys, never the account key (PROTOCOL.md §4.3): everything it signs, it signs as
/// itself, and a revoked device's signature counts for nothing.
#[derive(Debug)]
pub struct Owner {
    pub(crate) endpoint: Endpoint,
    pub(crate) api: Api,
    pub(crate) device: DeviceKeys,
    pub(crate) device_id: DeviceId,
    pub(crate) cameras: BTreeMap<CameraId, CameraKeys>,
    /// The account log as this device verified it, with every roster version it records.
    pub(crate) log: AccountLog,
    /// Cameras shared with other accounts, and accounts whose shares this device accepts.
    pub(crate) sharing: Sharing,
    /// When each other device last reported its log head, as of the last sync.
    pub(crate) heard: BTreeMap<DeviceId, Timestamp>,
    /// Key packages the server holds for this device that did not open, as of the last sync or
    /// recovery: each skipped (the others still open), and said here.
    pub(crate) damaged_packages: Vec<String>,
}

#[derive(Deserialize)]
struct LoggedIn {
    token: String,
}

#[derive(Deserialize)]
pub(crate) struct Listing {
    pub(crate) objects: Vec<ListedObject>,
    pub(crate) next_after: Option<u64>,
}

#[derive(Deserialize)]
struct KeyPackages {
    packages: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct ListedObject {
    pub(crate) object_id: String,
    pub(crate) size: u64,
    /// PROTOCOL.md §7.12, base64; absent for an object the server stored without one.
    pub(crate) summary: Option<String>,
}

/// The log of `account` as the server shows its start: entry 1 and the roster version 1 it
/// records, both checked under the account key; the rest follows with a refresh.
pub(crate) async fn start_log(
    api: &Api,
    account: &AccountPublicKey,
) -> Result<AccountLog, ClientError> {
    let first = api.get_bytes("/v1/log?after=0&limit=1").await?;
    let entry = SignedEntry::decode(&first).map_err(untrusted)?;
    let roster =
        SignedRoster::decode(&api.get_bytes("/v1/roster?version=1").await?).map_err(untrusted)?;
    AccountLog::first(account, entry, roster)
}

/// Logs `device_id` in with the account password; the connection carries its new token.
pub(crate) async fn log_in(
    endpoint: &Endpoint,
    username: &str,
    password: &str,
    device_id: DeviceId,
) -> Result<Api, ClientError> {
    let anonymous = Api::new(endpoint)?;
    let login: LoggedIn = anonymous
        .post_json(
            "/v1/login",
            &json!({ "username": username, "password": password, "device_id": device_id.to_string() }),
        )
        .await?;
    Ok(anonymous.with_token(login.token))
}

pub(crate) fn untrusted(e: impl std::fmt::Display) -> ClientError {
    ClientError::Untrusted(e.to_string())
}

impl Owner {
    /// Creates an account on the server and sets this device up as its first device: account
    /// key, device keys, recovery key and phrase, roster version 1, and the phrase-sealed
    /// recovery backup. The phrase is returned once, to be shown to the owner.
    ///
    /// # Errors
    /// If the server refuses (for example, a taken username) or cannot be reached.
    pub async fn create(
        endpoint: &Endpoint,
        username: &str,
        password: &str,
        device_name: &str,
        kdf: KdfParams,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, RecoveryPhrase), ClientError> {
        Api::new(endpoint)?
            .post_json::<serde_json::Value>(
                "/v1/accounts",
                &json!({ "username": username, "password": password }),
            )
            .await?;
        let device_id = DeviceId::random(rng);
        let api = log_in(endpoint, username, password, device_id).await?;
        // The account key signs roster version 1 and log entry 1, goes into the recovery
        // backup, and is dropped (zeroized) at the end of this function: no device keeps it.
        let account = AccountKey::generate(rng);
        let device = DeviceKeys::generate(rng);
        let recovery = HpkeSecretKey::generate(rng);
        let roster = RosterBody {
            account: account.public(),
            version: 1,
            previous: RosterHash([0; 32]),
            issued_at: now,
            recovery_key: recovery.public(),
            devices: vec![DeviceEntry {
                id: device_id,
                name: device_name.to_owned(),
                added_at: now,
                signing_key: device.signing.public(),
                hpke_key: device.hpke.public(),
            }],
        }
        .sign(SignerKey::Account(&account))
        .map_err(untrusted)?;
        let entry = EntryBody {
            account: account.public(),
            sequence: 1,
            previous: LogHash::default(),
            issued_at: now,
            kind: EntryKind::Roster,
            subject: [0; 16],
            version: 1,
            statement: statement_hash(roster.encoded()),
        }
        .sign(SignerKey::Account(&account))
        .map_err(untrusted)?;
        let phrase = RecoveryPhrase::generate(rng);
        let secrets = RecoverySecrets {
            account_key: account,
            recovery_key: recovery,
        };
        let backup = RecoveryBackup::seal(&phrase, &secrets, kdf, rng).map_err(untrusted)?;
        let account = secrets.account_key.public();
        drop(secrets);
        let log = AccountLog::first(&account, entry.clone(), roster.clone())?;
        // Log entry 1 records roster version 1: the account exists from here on.
        let mut request = entry.encoded().to_vec();
        request.extend_from_slice(roster.encoded());
        api.post_bytes::<serde_json::Value>("/v1/log", request)
            .await?;
        let mut owner = Self {
            endpoint: endpoint.clone(),
            api,
            device,
            device_id,
            cameras: BTreeMap::new(),
            log,
            sharing: Sharing::default(),
            heard: BTreeMap::new(),
            damaged_packages: Vec::new(),
        };
        // Listed now: the password's credential gives way to one issued against its own key.
        owner.log_in_with_device_key().await?;
        owner
            .proven(
                Method::PUT,
                "/v1/recovery-backup",
                Body::Bytes(backup.encode()),
            )
            .await?;
        owner.sync().await?;
        Ok((owner, phrase))
    }

    /// Restores the account on a new device after every enrolled device is lost — or takes
    /// it back from a device that turned against it: logs in, opens the recovery backup with
    /// `phrase`, and with the account key it holds signs a new roster that lists this device
    /// alone (every other device is revoked; enrol the ones still trusted again), then recovers
    /// every camera's viewing keys for every epoch from the recovery key packages (re-sealing
    /// them to this device), so the whole history opens here. The next sync starts a new epoch
    /// for every camera, so nothing recorded afterwards opens on a removed device. The account
    /// key is dropped before this returns. Returns the device and the names of the devices it
    /// removed.
    ///
    /// # Errors
    /// A wrong phrase or password, anything that does not verify under the recovered account
    /// key, or server errors.
    pub async fn recover(
        endpoint: &Endpoint,
        username: &str,
        password: &str,
        phrase: &RecoveryPhrase,
        device_name: &str,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, Vec<String>), ClientError> {
        let device_id = DeviceId::random(rng);
        let api = log_in(endpoint, username, password, device_id).await?;
        let backup = RecoveryBackup::decode(&api.get_bytes("/v1/recovery-backup").await?)
            .map_err(untrusted)?;
        let secrets = backup.open(phrase).map_err(untrusted)?;
        let account = secrets.account_key.public();
        let log = start_log(&api, &account).await?;
        let device = DeviceKeys::generate(rng);
        let mut owner = Self {
            endpoint: endpoint.clone(),
            api,
            device,
            device_id,
            cameras: BTreeMap::new(),
            log,
            sharing: Sharing::default(),
            heard: BTreeMap::new(),
            damaged_packages: Vec::new(),
        };
        // Everything is checked before the account is taken over.
        owner.refresh().await?;
        if owner.roster().body().recovery_key != secrets.recovery_key.public() {
            return Err(untrusted("the roster names another recovery key"));
        }
        let removed: Vec<(DeviceId, String)> = owner
            .roster()
            .body()
            .devices
            .iter()
            .map(|d| (d.id, d.name.clone()))
            .collect();
        let mut body = owner.roster().successor(now);
        body.devices = vec![DeviceEntry {
            id: device_id,
            name: device_name.to_owned(),
            added_at: now,
            signing_key: owner.device.signing.public(),
            hpke_key: owner.device.hpke.public(),
        }];
        owner
            .publish_roster_as(body, Some(&secrets.account_key))
            .await?;
        owner.log_in_with_device_key().await?;
        for (device, _) in &removed {
            owner
                .proven(
                    Method::DELETE,
                    &format!("/v1/devices/{device}"),
                    Body::Empty,
                )
                .await?;
        }
        // The sync starts every camera's new epoch; the recovery packages then give back every
        // older one (and what did not open is said, not cleared by a sync after it).
        owner.sync().await?;
        owner
            .adopt_key_packages(
                "/v1/key-packages?recipient=recovery",
                Some(&secrets.recovery_key),
                rng,
            )
            .await?;
        drop(secrets);
        Ok((owner, removed.into_iter().map(|(_, name)| name).collect()))
    }

    /// The account's public key, pinned from the account log's first entry.
    #[must_use]
    pub fn account(&self) -> &AccountPublicKey {
        self.log.account()
    }

    /// The roster in force: the newest the account log records.
    pub(crate) fn roster(&self) -> &Roster {
        self.log.roster()
    }

    /// This device's signing key, as it proves requests.
    pub(crate) fn prover(&self) -> Prover<'_> {
        Prover {
            device: self.device_id,
            key: &self.device.signing,
        }
    }

    /// Sends a request the server accepts only with this device's proof (PROTOCOL.md §17).
    pub(crate) async fn proven(
        &self,
        method: Method,
        path: &str,
        body: Body,
    ) -> Result<serde_json::Value, ClientError> {
        self.api.proven(self.prover(), method, path, body).await
    }

    /// Gets this device a new credential with its own key, against a fresh challenge (PROTOCOL.md
    /// §17): for when the server no longer takes the one it had (revoked by another device, or
    /// lost). Only a device the account's roster lists gets one; save the key store afterwards.
    ///
    /// # Errors
    /// [`ClientError::Server`] with `not_found` if the roster does not list this device, or
    /// server and network errors.
    pub async fn log_in_with_device_key(&mut self) -> Result<(), ClientError> {
        let anonymous = Api::new(&self.endpoint)?;
        let who = json!({
            "account": hex::encode(self.account().to_bytes()),
            "device_id": self.device_id.to_string(),
        });
        let issued: Issued = anonymous.post_json("/v1/login/challenge", &who).await?;
        let answer = anonymous
            .send_proven(
                &issued.challenge,
                self.prover(),
                Method::POST,
                "/v1/login/device",
                Body::Json(who),
            )
            .await?;
        let login: LoggedIn = serde_json::from_value(answer).map_err(untrusted)?;
        self.api = anonymous.with_token(login.token);
        Ok(())
    }

    /// Logs this device in with the account password, for when the roster no longer lists it
    /// and its own credentials were revoked: the password gives only a joining credential, which
    /// still reads the account log, so the next [`Owner::sync`] says who removed this device
    /// ([`ClientError::Removed`]) instead of only that the server refuses it.
    ///
    /// # Errors
    /// A wrong password, a device the roster still lists (409: use
    /// [`Owner::log_in_with_device_key`]), or server errors.
    pub async fn log_in_with_password(
        &mut self,
        username: &str,
        password: &str,
    ) -> Result<(), ClientError> {
        self.api = log_in(&self.endpoint, username, password, self.device_id).await?;
        Ok(())
    }

    /// Replaces the account password (proven by this device). Do it after revoking a device
    /// whose holder may know the old one: the password lets a new device ask to join.
    ///
    /// # Errors
    /// A password the server refuses (under 10 or over 1024 characters), or server errors.
    pub async fn change_password(&self, password: &str) -> Result<(), ClientError> {
        self.proven(
            Method::PUT,
            "/v1/password",
            Body::Json(json!({ "password": password })),
        )
        .await
        .map(drop)
    }

    /// This device's signing key, as it signs statements.
    pub(crate) fn signer(&self) -> SignerKey<'_> {
        SignerKey::Device {
            id: self.device_id,
            key: &self.device.signing,
        }
    }

    /// Opens the key packages the server lists at `query`, each checked against the record of
    /// its camera and epoch (call [`Owner::refresh`] first, which learns the cameras). They are
    /// sealed to this device, or, given `other` (the recovery key), to that key, and then each
    /// opened key is sealed to this device too, so it no longer needs `other`.
    pub(crate) async fn adopt_key_packages(
        &mut self,
        query: &str,
        other: Option<&HpkeSecretKey>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        let packages: KeyPackages = self.api.get_json(query).await?;
        for encoded in packages.packages {
            let Some(pkg) = self.package(&encoded) else {
                continue;
            };
            let Some(record) = self
                .cameras
                .get(&pkg.camera_id)
                .and_then(|keys| keys.records.iter().find(|r| r.body().epoch == pkg.epoch))
            else {
                continue;
            };
            let opened = match pkg.open(
                other.unwrap_or(&self.device.hpke),
                &record.body().viewing_key,
            ) {
                Ok(opened) => opened,
                Err(e) => {
                    self.damaged(&pkg, &e);
                    continue;
                }
            };
            if other.is_some() {
                let to_self = Recipient {
                    account: *self.account(),
                    key: RecipientKey::Device(self.device_id),
                };
                let key = self.device.hpke.public();
                self.put_key_package(pkg.camera_id, pkg.epoch, &opened.secret, to_self, &key, rng)
                    .await?;
            }
            if let Some(keys) = self.cameras.get_mut(&pkg.camera_id) {
                keys.viewing.insert(pkg.epoch, opened.secret);
            }
        }
        Ok(())
    }

    /// A key package as the server lists it (base64), or `None` — noted as damaged — if it
    /// does not decode.
    pub(crate) fn package(&mut self, encoded: &str) -> Option<KeyPackage> {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|e| e.to_string())
            .and_then(|raw| KeyPackage::decode(&raw).map_err(|e| e.to_string()));
        match decoded {
            Ok(pkg) => Some(pkg),
            Err(why) => {
                self.note_damaged(format!("a key package that does not decode ({why})"));
                None
            }
        }
    }

    /// Notes that `pkg` did not open.
    pub(crate) fn damaged(&mut self, pkg: &KeyPackage, why: &impl std::fmt::Display) {
        self.note_damaged(format!(
            "the key package of camera {} epoch {} ({why})",
            pkg.camera_id, pkg.epoch
        ));
    }

    fn note_damaged(&mut self, what: String) {
        if !self.damaged_packages.contains(&what) {
            self.damaged_packages.push(what);
        }
    }

    /// Key packages the server holds for this device that did not open at the last sync or
    /// recovery (damaged, or not for this device), each in words. They were skipped: every
    /// other package opened, and a camera's footage of such an epoch opens here only if another
    /// package for it does.
    #[must_use]
    pub fn damaged_key_packages(&self) -> &[String] {
        &self.damaged_packages
    }

    /// The cameras this device holds keys for: id, name, current epoch, and whether it was
    /// removed (its footage kept), from the newest verified record.
    #[must_use]
    pub fn cameras(&self) -> Vec<(CameraId, String, u32, bool)> {
        self.cameras
            .iter()
            .filter_map(|(id, keys)| {
                let body = keys.records.last()?.body();
                Some((
                    *id,
                    body.name.clone(),
                    body.epoch,
                    body.state == CameraState::Removed,
                ))
            })
            .collect()
    }

    /// Every camera this device holds keys for, with the newest upload the server names (its
    /// signed header checked) and, from the newest head this device holds (refreshed by
    /// [`Owner::sync`]), when each was last heard from and whether it is silent as of `now`.
    ///
    /// # Errors
    /// Server errors.
    pub async fn camera_statuses(&self, now: Timestamp) -> Result<Vec<CameraStatus>, ClientError> {
        let listed: Vec<ServerCamera> = self.api.get_json("/v1/cameras").await?;
        let mut statuses = Vec::new();
        for (id, keys) in &self.cameras {
            let Some(record) = keys.records.last() else {
                continue;
            };
            let body = record.body();
            let head = keys.head.as_ref().map(|h| h.head);
            // What this device verified, or the camera signed that it delivered.
            let owed = keys
                .verified
                .map(|v| v.sequence)
                .max(head.map(|h| h.delivered))
                .filter(|s| *s > 0);
            let named = match listed.iter().find(|c| c.camera_id == id.to_string()) {
                Some(own) => own.latest.clone(),
                // Another account's camera shared with this one: the server's camera list
                // names only the account's own, so ask its listing from what is owed on.
                None => self.newest_listed(id, owed.unwrap_or(1) - 1).await?,
            };
            let (latest, problem) = match &named {
                None => (None, None),
                Some(named) => match self.newest_header(id, &body.camera_key, named).await? {
                    Ok(header) => (
                        Some(Latest {
                            sequence: header.sequence,
                            captured_at: header.captured_at,
                            epoch: header.epoch,
                        }),
                        None,
                    ),
                    Err(problem) => (None, Some(problem)),
                },
            };
            let stale_epoch = body.state == CameraState::Active
                && latest.is_some_and(|l| {
                    l.epoch < body.epoch
                        && l.captured_at.0 > body.issued_at.0.saturating_add(DEFAULT_EPOCH_GRACE_MS)
                });
            let withheld_after = owed.filter(|seen| latest.is_none_or(|l| l.sequence < *seen));
            let removed = body.state == CameraState::Removed;
            let silent_since = (!removed)
                .then(|| {
                    keyhole_core::report::silent_since(
                        head.as_ref(),
                        Silence {
                            now,
                            paired_at: keys.records[0].body().issued_at,
                        },
                    )
                })
                .flatten();
            statuses.push(CameraStatus {
                id: *id,
                name: body.name.clone(),
                epoch: body.epoch,
                removed,
                latest,
                stale_epoch,
                withheld_after,
                heard: head.map(|h| h.clock),
                silent_since,
                problem,
            });
        }
        Ok(statuses)
    }

    /// The signed header of the object the server names as `camera`'s newest, checked under
    /// the camera's key: only its first bytes are fetched. `Err` says what was wrong with it.
    /// A request for `camera`'s live view with `nonce` (PROTOCOL.md §8.2.2): proof under the
    /// viewing key of its current epoch and the challenge its newest signed head names, waiting
    /// up to `wait` for a camera that has not sent a head yet.
    ///
    /// # Errors
    /// No key for the current epoch, a head that does not verify, none within `wait`, server
    /// errors.
    async fn live_request(
        &self,
        camera: &CameraId,
        nonce: keyhole_core::live_check::Nonce,
        wait: std::time::Duration,
    ) -> Result<keyhole_core::live_request::LiveRequest, ClientError> {
        let (epoch, viewing, challenge) = self.live_challenge(camera, wait).await?;
        keyhole_core::live_request::LiveRequest::make(camera, epoch, &challenge, viewing, nonce)
            .ok_or_else(|| untrusted("the camera's head names no usable live challenge"))
    }

    /// The current epoch of `camera`, this device's viewing key for it, and the live challenge
    /// the camera's newest signed head names (PROTOCOL.md §8.2.2), waiting up to `wait` for a
    /// camera that has not sent a head yet.
    ///
    /// # Errors
    /// No key for the current epoch, a head that does not verify, none within `wait`, server
    /// errors.
    pub(crate) async fn live_challenge(
        &self,
        camera: &CameraId,
        wait: std::time::Duration,
    ) -> Result<(u32, &keyhole_core::HpkeSecretKey, [u8; 32]), ClientError> {
        let keys = self.camera(camera)?;
        let (Some(first), Some(record)) = (keys.records.first(), keys.records.last()) else {
            return Err(untrusted(format!("no verified record of camera {camera}")));
        };
        let epoch = record.body().epoch;
        let viewing = keys.viewing.get(&epoch).ok_or_else(|| {
            untrusted(format!(
                "this device holds no key for camera {camera}'s current epoch {epoch}, so it \
                 cannot ask it for live view or talk through it"
            ))
        })?;
        let deadline = std::time::Instant::now() + wait;
        loop {
            // Empty (204): no head yet. 404: the camera is not served to this account.
            let head = self
                .api
                .get_bytes(&format!("/v1/cameras/{camera}/head"))
                .await?;
            if !head.is_empty() {
                let head = keyhole_core::camera_head::CameraHead::verify(
                    &head,
                    camera,
                    &first.body().camera_key,
                )
                .map_err(|e| untrusted(format!("camera {camera}'s head: {e}")))?;
                return Ok((epoch, viewing, head.live_challenge));
            }
            if std::time::Instant::now() >= deadline {
                return Err(untrusted(format!(
                    "camera {camera} has sent no signed head since it was paired, so it cannot be \
                     asked for live view yet (is it online?)"
                )));
            }
            // Waiting for the camera to come online and say so.
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    }

    /// The newest object the server lists for `camera` after sequence `after`, paging to the
    /// end of the listing.
    async fn newest_listed(
        &self,
        camera: &CameraId,
        mut after: u64,
    ) -> Result<Option<ServerLatest>, ClientError> {
        let mut newest = None;
        loop {
            let page: Listing = match self
                .api
                .get_json(&format!("/v1/cameras/{camera}/objects?after={after}"))
                .await
            {
                Ok(page) => page,
                // A share withdrawn since: no longer served.
                Err(ClientError::Server { status: 404, .. }) => return Ok(newest),
                Err(e) => return Err(e),
            };
            if let Some(last) = page.objects.last() {
                newest = Some(ServerLatest {
                    object_id: last.object_id.clone(),
                });
            }
            match page.next_after {
                Some(n) if n > after => after = n,
                _ => return Ok(newest),
            }
        }
    }

    async fn newest_header(
        &self,
        camera: &CameraId,
        camera_key: &keyhole_core::CameraPublicKey,
        named: &ServerLatest,
    ) -> Result<Result<Header, String>, ClientError> {
        let Ok(object) = named.object_id.parse::<ObjectId>() else {
            return Ok(Err(
                "the server names its newest object by no valid id".into()
            ));
        };
        let (prefix, _) = self
            .api
            .get_range(&format!("/v1/objects/{object}"), 0..PREFIX_LEN as u64)
            .await?;
        Ok(match SignedHeader::verify(&prefix, camera_key) {
            Ok(signed) => {
                let header = signed.header().clone();
                if header.camera_id != *camera || header.object_id != object {
                    Err("the object the server names as newest is another one".into())
                } else {
                    Ok(header)
                }
            }
            Err(e) => Err(format!(
                "the object the server names as newest does not verify: {e}"
            )),
        })
    }

    /// The account's enrolled devices, from the verified roster: id, name, when added.
    #[must_use]
    pub fn devices(&self) -> Vec<(DeviceId, String, Timestamp)> {
        self.roster()
            .body()
            .devices
            .iter()
            .map(|d| (d.id, d.name.clone(), d.added_at))
            .collect()
    }

    /// Removes a camera from the account. A signed record marks it removed (the camera seals
    /// nothing more, and no later record can bring it back), then the server revokes its
    /// credential. With `keep_footage` its recordings stay and still open on the account's
    /// devices; without, the server deletes them with the camera's records and key packages, and
    /// this device forgets its viewing keys. Returns the server's summary.
    ///
    /// # Errors
    /// A camera this device does not know, or server errors.
    pub async fn remove_camera(
        &mut self,
        camera: &CameraId,
        keep_footage: bool,
        now: Timestamp,
    ) -> Result<serde_json::Value, ClientError> {
        self.refresh().await?;
        if self.camera(camera)?.owner.is_some() {
            return Err(untrusted(format!(
                "camera {camera} is shared with this account; only its owner can remove it"
            )));
        }
        let latest = self
            .camera(camera)?
            .records
            .last()
            .ok_or_else(|| untrusted("no trusted record for this camera"))?;
        if latest.body().state == CameraState::Active {
            let mut body = latest.successor(now);
            body.state = CameraState::Removed;
            let signed = body.sign(self.signer()).map_err(untrusted)?;
            self.publish_record(*camera, signed).await?;
        }
        let footage = if keep_footage { "keep" } else { "delete" };
        let summary = self
            .proven(
                Method::DELETE,
                &format!("/v1/cameras/{camera}?footage={footage}"),
                Body::Empty,
            )
            .await?;
        if !keep_footage {
            // Dropping the keys zeroizes them.
            self.cameras.remove(camera);
        }
        Ok(summary)
    }

    /// The server this device talks to.
    #[must_use]
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The account's audit log as the server keeps it (oldest first), each entry with who did
    /// it as this device knows them: `this device`, another enrolled device by name, one of the
    /// account's cameras (or one this account's device removed with its footage), a device this
    /// account's device revoked (for what it did before), or, when the actor is none of these
    /// (the server, an unknown device, a revoked one after its revocation), `None`: a change
    /// the user did not make.
    ///
    /// # Errors
    /// Server errors.
    pub async fn audit_log(&self) -> Result<Vec<(serde_json::Value, Option<String>)>, ClientError> {
        let mut entries = Vec::new();
        let mut after = 0u64;
        loop {
            let page: Vec<serde_json::Value> = self
                .api
                .get_json(&format!("/v1/audit?after={after}&limit=1000"))
                .await?;
            let Some(last) = page.last().and_then(|e| e["id"].as_u64()) else {
                break;
            };
            let full = page.len() == 1000;
            entries.extend(page.into_iter().map(|entry| (entry, None)));
            if !full || last <= after {
                break;
            }
            after = last;
        }
        // Cameras removed with their footage, and revoked devices, are forgotten here: their
        // entries are told by the removal or revocation this account's own device made, and a
        // revoked device's entries count as the account's only before its revocation.
        let by_us = |e: &serde_json::Value| {
            e["actor"]
                .as_str()
                .is_some_and(|a| a.starts_with("device:") && self.actor_name(a).is_some())
        };
        let named = |e: &serde_json::Value, prefix: &str| -> Option<String> {
            let rest = e["detail"].as_str()?.strip_prefix(prefix)?;
            Some(rest.split([' ', ':']).next()?.to_owned())
        };
        let deleted: Vec<String> = entries
            .iter()
            .filter(|(e, _)| e["action"] == "camera-removed" && by_us(e))
            .filter_map(|(e, _)| named(e, "camera "))
            .collect();
        let revoked: Vec<(String, u64)> = entries
            .iter()
            .filter(|(e, _)| e["action"] == "device-revoked" && by_us(e))
            .filter_map(|(e, _)| Some((named(e, "device ")?, e["at"].as_u64()?)))
            .collect();
        for (entry, who) in &mut entries {
            let actor = entry["actor"].as_str().unwrap_or_default();
            let at = entry["at"].as_u64().unwrap_or(u64::MAX);
            *who = self.actor_name(actor).or_else(|| {
                if let Some(camera) = actor.strip_prefix("camera:") {
                    return deleted
                        .iter()
                        .any(|d| d == camera)
                        .then(|| "a camera since removed with its footage".to_owned());
                }
                let device = actor.strip_prefix("device:")?;
                revoked
                    .iter()
                    .any(|(d, when)| d == device && at < *when)
                    .then(|| "a device since revoked".to_owned())
            });
        }
        Ok(entries)
    }

    fn actor_name(&self, actor: &str) -> Option<String> {
        if let Some(device) = actor.strip_prefix("device:") {
            if device == self.device_id.to_string() {
                return Some("this device".to_owned());
            }
            return self
                .roster()
                .body()
                .devices
                .iter()
                .find(|d| d.id.to_string() == device)
                .map(|d| format!("device {:?}", d.name));
        }
        if let Some(camera) = actor.strip_prefix("camera:") {
            return self
                .cameras
                .iter()
                .find(|(id, _)| id.to_string() == camera)
                .and_then(|(_, keys)| keys.records.last())
                .map(|r| format!("camera {:?}", r.body().name));
        }
        None
    }

    /// An audit entry in words: what happened, then its detail with every id of a device or
    /// camera this device knows replaced by its name.
    #[must_use]
    pub fn audit_in_words(&self, entry: &serde_json::Value) -> String {
        let action = entry["action"].as_str().unwrap_or("");
        let what = match action {
            "login" => "Signed in",
            "password-changed" => "The account password was changed",
            "device-revoked" => "A device's credentials were revoked",
            "enrollment-requested" => "A device asked to join the account",
            "enrollment-approved" => "A device was approved to join the account",
            "roster" => "The list of devices changed",
            "camera-record" => "A camera's record changed",
            "share" => "Who a camera is shared with changed",
            "key-package" => "A camera's key was sealed to a device",
            "recovery-backup" => "The recovery backup was replaced",
            "pairing-token" => "Pairing a camera began",
            "camera-registered" => "A camera registered",
            "camera-removed" => "A camera was removed",
            "object-deleted" => "Footage was deleted",
            "retention" => "Footage below the retention floor was deleted",
            other => other,
        };
        let mut detail = entry["detail"].as_str().unwrap_or("").to_owned();
        let devices = self
            .roster()
            .body()
            .devices
            .iter()
            .map(|d| (d.id.to_string(), d.name.clone()));
        let cameras = self.cameras.iter().filter_map(|(id, keys)| {
            keys.records
                .last()
                .map(|r| (id.to_string(), r.body().name.clone()))
        });
        for (id, name) in devices.chain(cameras) {
            detail = detail.replace(&id, &format!("{name:?}"));
        }
        format!("{what}: {detail}")
    }

    /// The account code people compare out of band.
    #[must_use]
    pub fn account_code(&self) -> AccountCode {
        self.account().account_code()
    }

    /// Makes a pairing code for a new camera and announces its token to the server. The code
    /// must reach the camera out of band; keep it until [`Owner::finish_pairing`].
    ///
    /// # Errors
    /// If the server refuses or cannot be reached.
    pub async fn start_pairing(
        &self,
        server_url: &str,
        tls_fingerprint: Option<[u8; 32]>,
        rng: &mut impl CryptoRngCore,
    ) -> Result<PairingCode, ClientError> {
        let code = PairingCode::new(server_url, tls_fingerprint, *self.account(), rng)
            .map_err(untrusted)?;
        self.api
            .post_json::<serde_json::Value>(
                "/v1/pairing-tokens",
                &json!({ "token_id": code.token.to_string(), "ttl_secs": 600 }),
            )
            .await?;
        Ok(code)
    }

    /// After the camera has registered: checks its proof with the pairing secret (refusing a
    /// key the server substituted), makes the epoch-1 viewing key, signs the camera record and
    /// seals key packages to every enrolled device and the recovery key.
    ///
    /// # Errors
    /// [`ClientError::Untrusted`] if the proof does not verify; server errors otherwise.
    pub async fn finish_pairing(
        &mut self,
        code: &PairingCode,
        name: &str,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<CameraId, ClientError> {
        self.refresh().await?;
        let bytes = self
            .api
            .get_bytes(&format!("/v1/pairing-tokens/{}/registration", code.token))
            .await?;
        let proof = RegistrationProof::decode(&bytes).map_err(untrusted)?;
        proof.verify(code).map_err(untrusted)?;
        let viewing = HpkeSecretKey::generate(rng);
        let record = CameraRecordBody {
            account: *self.account(),
            camera_id: proof.camera_id,
            version: 1,
            issued_at: now,
            name: name.to_owned(),
            state: CameraState::Active,
            camera_key: proof.camera_key,
            epoch: 1,
            viewing_key: viewing.public(),
        }
        .sign(self.signer())
        .map_err(untrusted)?;
        // Sealed before the record names the key, as for a new epoch.
        self.seal_key_packages(proof.camera_id, 1, &viewing, now, rng)
            .await?;
        self.publish_record(proof.camera_id, record).await?;
        // The viewing key is dropped here: this device, like every other, learns it from its
        // key package (`sync`).
        drop(viewing);
        Ok(proof.camera_id)
    }

    /// Seals a viewing key to every enrolled device, the recovery key, and every device of
    /// every account the camera is shared with at `now`.
    async fn seal_key_packages(
        &mut self,
        camera: CameraId,
        epoch: u32,
        viewing: &HpkeSecretKey,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        let body = self.roster().body();
        let mut recipients: Vec<(RecipientKey, keyhole_core::HpkePublicKey)> = body
            .devices
            .iter()
            .map(|d| (RecipientKey::Device(d.id), d.hpke_key))
            .collect();
        recipients.push((RecipientKey::Recovery, body.recovery_key));
        for (key, public) in recipients {
            let recipient = Recipient {
                account: *self.account(),
                key,
            };
            self.put_key_package(camera, epoch, viewing, recipient, &public, rng)
                .await?;
        }
        self.seal_to_members(&camera, epoch, viewing, now, rng)
            .await
    }

    /// Enrols another device (whose public keys arrived over an authenticated channel, such as
    /// an approval with a short code compared on both screens): a new roster version that lists
    /// it, and key packages for every viewing key of the account's cameras this device holds, so
    /// it sees the full history (cameras shared with the account, their owners seal to it).
    ///
    /// # Errors
    /// Server errors, or a roster that cannot be signed (too many devices, duplicate id).
    pub async fn add_device(
        &mut self,
        entry: DeviceEntry,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        self.refresh().await?;
        // Every key this device can open, so the new device gets all of them (one paired here a
        // moment ago is still only in its key package).
        self.open_key_packages().await?;
        let mut body = self.roster().successor(now);
        body.devices.push(entry.clone());
        self.publish_roster(body).await?;
        let recipient = Recipient {
            account: *self.account(),
            key: RecipientKey::Device(entry.id),
        };
        // Cameras shared with this account are their owners' to seal (they follow this roster).
        for (camera, keys) in self.cameras.iter().filter(|(_, k)| k.owner.is_none()) {
            for (epoch, viewing) in &keys.viewing {
                self.put_key_package(*camera, *epoch, viewing, recipient, &entry.hpke_key, rng)
                    .await?;
            }
        }
        Ok(())
    }

    /// Seals `camera`'s viewing key of `epoch` to `recipient` (whose HPKE key is `to`) and
    /// stores the package on the server.
    pub(crate) async fn put_key_package(
        &self,
        camera: CameraId,
        epoch: u32,
        viewing: &HpkeSecretKey,
        recipient: Recipient,
        to: &keyhole_core::HpkePublicKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(), ClientError> {
        let pkg = KeyPackage::seal(*self.account(), camera, epoch, viewing, recipient, to, rng)
            .map_err(untrusted)?;
        self.proven(Method::PUT, "/v1/key-packages", Body::Bytes(pkg.encode()))
            .await
            .map(drop)
    }

    /// Revokes a device: a new roster without it, its credentials refused by the server, and a
    /// new epoch for every camera, sealed only to the devices that remain. Nothing a camera
    /// records afterwards opens on the revoked device. Returns each camera's new epoch.
    ///
    /// # Errors
    /// Revoking this device itself, or server errors.
    pub async fn revoke_device(
        &mut self,
        device: DeviceId,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<(CameraId, u32)>, ClientError> {
        if device == self.device_id {
            return Err(untrusted(
                "a device cannot revoke itself; revoke it from another device",
            ));
        }
        self.refresh().await?;
        let mut body = self.roster().successor(now);
        body.devices.retain(|d| d.id != device);
        self.publish_roster(body).await?;
        self.proven(
            Method::DELETE,
            &format!("/v1/devices/{device}"),
            Body::Empty,
        )
        .await?;
        // A removed camera records nothing more: it needs no new epoch.
        let cameras: Vec<CameraId> = self
            .cameras
            .iter()
            .filter(|(_, keys)| {
                keys.owner.is_none()
                    && keys
                        .records
                        .last()
                        .is_some_and(|r| r.body().state == CameraState::Active)
            })
            .map(|(id, _)| *id)
            .collect();
        let mut epochs = Vec::with_capacity(cameras.len());
        for camera in cameras {
            epochs.push((camera, self.rotate_epoch(&camera, now, rng).await?));
        }
        Ok(epochs)
    }

    /// Starts a new epoch for `camera`: a fresh viewing key, a new signed record naming it, and
    /// key packages for every enrolled device and the recovery key. The camera seals to the new
    /// key from its next check; whoever held only older keys opens nothing recorded afterwards.
    /// Returns the new epoch.
    ///
    /// # Errors
    /// Server errors, or a camera this device does not know.
    pub async fn rotate_epoch(
        &mut self,
        camera: &CameraId,
        now: Timestamp,
        rng: &mut impl CryptoRngCore,
    ) -> Result<u32, ClientError> {
        self.refresh().await?;
        let latest = self.own_active_camera(camera)?;
        let mut body = latest.successor(now);
        body.epoch = body
            .epoch
            .checked_add(1)
            .ok_or_else(|| untrusted("epochs exhausted"))?;
        let viewing = HpkeSecretKey::generate(rng);
        body.viewing_key = viewing.public();
        let epoch = body.epoch;
        let signed = body.sign(self.signer()).map_err(untrusted)?;
        self.sharing.sealing(*camera, epoch, latest.body().epoch);
        // Sealed before the record names the key, so a failure on the way never leaves the
        // camera sealing to a key no device holds (packages of an epoch no record names are
        // ignored, and overwritten by the next attempt).
        self.seal_key_packages(*camera, epoch, &viewing, now, rng)
            .await?;
        self.publish_record(*camera, signed).await?;
        if let Some(keys) = self.cameras.get_mut(camera) {
            keys.viewing.insert(epoch, viewing);
        }
        Ok(epoch)
    }

    /// Opens (or makes) this device's index at `path` ([`crate::index`]), its rows sealed under
    /// this device's keys.
    ///
    /// # Errors
    /// [`ClientError::Index`] if it cannot be opened or made.
    pub fn open_index(&self, path: &std::path::Path) -> Result<crate::index::Index, ClientError> {
        Ok(crate::index::Index::open(path, &self.device)?)
    }

    /// This device's id.
    #[must_use]
    pub fn device_id(&self) -> DeviceId {
        self.device_id
    }

    pub(crate) fn camera(&self, camera: &CameraId) -> Result<&CameraKeys, ClientError> {
        self.cameras
            .get(camera)
            .ok_or_else(|| untrusted(format!("camera {camera} is not paired to this device")))
    }

    /// Downloads and opens one object, streaming the plaintext to `sink`. The outcome says
    /// whether the whole object verified; plaintext already handed to `sink` is authentic chunk
    /// by chunk but must be discarded unless the outcome is [`Checked::Verified`].
    pub(crate) async fn open_object(
        &self,
        camera: &CameraId,
        object_id: &str,
        sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
    ) -> Result<Checked, ClientError> {
        let keys = self.camera(camera)?;
        let camera_key = keys.records[0].body().camera_key;
        let resp = self
            .api
            .get_stream(&format!("/v1/objects/{object_id}"))
            .await?;
        let mut body = resp.bytes_stream();
        let mut prefix = Vec::with_capacity(PREFIX_LEN);
        let mut pending: Vec<u8> = Vec::new();
        while prefix.len() < PREFIX_LEN {
            let Some(chunk) = body.next().await else {
                break;
            };
            let chunk = chunk?;
            let take = (PREFIX_LEN - prefix.len()).min(chunk.len());
            prefix.extend_from_slice(&chunk[..take]);
            pending.extend_from_slice(&chunk[take..]);
        }
        let failed = |reason| Checked::Failed {
            header: Header::decode(&prefix).ok(),
            reason,
        };
        let header = match Header::decode(&prefix) {
            Ok(h) => h,
            Err(e) => return Ok(Checked::from_open(&prefix, Err(OpenError::Malformed(e)))),
        };
        // The header's signature first: an altered epoch is tampering, not a missing key.
        let signed = match SignedHeader::verify(&prefix, &camera_key) {
            Ok(signed) => signed,
            Err(e) => return Ok(Checked::from_open(&prefix, Err(e))),
        };
        if header.object_id.to_string() != object_id {
            // Authentic, but another object: nothing of it reaches the sink.
            return Ok(failed(Failure::Mislabeled {
                sealed_id: header.object_id,
            }));
        }
        let Some(viewing) = keys.viewing.get(&header.epoch) else {
            return Ok(failed(Failure::NoViewingKey {
                epoch: header.epoch,
            }));
        };
        let mut stream = match Opener::from_signed(signed, viewing) {
            Ok(o) => o.stream(),
            Err(e) => return Ok(Checked::from_open(&prefix, Err(e))),
        };
        let mut out = Vec::new();
        let mut feed = |stream: &mut keyhole_core::envelope::StreamOpener,
                        data: &[u8]|
         -> Result<Option<OpenError>, ClientError> {
            out.clear();
            if let Err(e) = stream.update(data, &mut out) {
                return Ok(Some(e));
            }
            sink(&out)?;
            Ok(None)
        };
        if let Some(e) = feed(&mut stream, &pending)? {
            return Ok(Checked::from_open(&prefix, Err(e)));
        }
        while let Some(chunk) = body.next().await {
            if let Some(e) = feed(&mut stream, &chunk?)? {
                return Ok(Checked::from_open(&prefix, Err(e)));
            }
        }
        let mut last = Vec::new();
        let result: Result<OpenedObject, OpenError> = stream.finish(&mut last);
        if result.is_ok() {
            sink(&last)?;
        }
        Ok(Checked::from_open(&prefix, result))
    }

    /// Opens `object`, a clip of `camera`, for reading at any offset ([`ClipReader`]); the
    /// whole clip is checked against the camera's signature in the background meanwhile, and
    /// every chunk read is bound to it ([`ClipReader::playback`]).
    ///
    /// # Errors
    /// Server or network failures, or [`ClientError::Untrusted`] if its header does not verify
    /// under the camera's key, names another object or is not a clip, or this device holds no
    /// key for its epoch.
    pub async fn open_clip(
        &self,
        camera: &CameraId,
        object: &ObjectId,
    ) -> Result<ClipReader, ClientError> {
        let keys = self.camera(camera)?;
        ClipReader::open(
            &self.api,
            object,
            &keys.records[0].body().camera_key,
            &keys.viewing,
        )
        .await
    }

    /// The newest object of `camera` this device has verified (kept in the key store), against
    /// which every later listing is checked.
    #[must_use]
    pub fn verified_up_to(&self, camera: &CameraId) -> Option<HighWater> {
        self.cameras.get(camera).and_then(|keys| keys.verified)
    }

    /// Downloads one object and writes its plaintext to `out`, streaming. Returns whether it
    /// verified; on anything but [`Checked::Verified`] the caller must discard what was written.
    ///
    /// # Errors
    /// Server, network or write failures.
    pub async fn export(
        &self,
        camera: &CameraId,
        object: &ObjectId,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<Checked, ClientError> {
        self.open_object(camera, &object.to_string(), &mut |bytes| {
            out.write_all(bytes)
        })
        .await
    }

    /// This device's authenticated connection to the server.
    #[must_use]
    pub fn api(&self) -> &Api {
        &self.api
    }

    /// Watches `camera` live: asks the camera (through the relay) to stream, waits up to
    /// `wait_secs` for it to start, then verifies and opens each frame and writes the pictures
    /// and sound (fragmented MP4 that players take as it arrives, such as `ffplay -`; see
    /// [`crate::live_stream`]) to `out`, until the camera ends
    /// the session or `for_at_most` has passed since the first frame. A stream that stops
    /// before either is reported as [`LiveOutcome::cut`].
    ///
    /// # Errors
    /// Server or network failures, a session that does not verify (a frame altered, injected,
    /// replayed or reordered), or a failed write.
    pub async fn watch_live(
        &self,
        camera: &CameraId,
        wait_secs: u64,
        for_at_most: Option<std::time::Duration>,
        out: &mut (dyn std::io::Write + Send),
    ) -> Result<LiveOutcome, ClientError> {
        self.watch_live_with(camera, wait_secs, for_at_most, out, &mut |_| {})
            .await
    }

    /// [`Owner::watch_live`], telling `progress` the outcome so far at every checkpoint (how far
    /// behind the view is, as it goes).
    ///
    /// # Errors
    /// As [`Owner::watch_live`].
    pub async fn watch_live_with(
        &self,
        camera: &CameraId,
        wait_secs: u64,
        for_at_most: Option<std::time::Duration>,
        out: &mut (dyn std::io::Write + Send),
        progress: &mut (dyn FnMut(&LiveOutcome) + Send),
    ) -> Result<LiveOutcome, ClientError> {
        use keyhole_core::live::{FRAME_HEADER_LEN, LiveOpener};
        use keyhole_core::live_check::{CHECKPOINT_INDEX, LiveCheck};
        let mut first_frame: Option<std::time::Instant> = None;
        let keys = self.camera(camera)?;
        let camera_key = keys.records[0].body().camera_key;
        // A fresh nonce: the camera's checkpoints must name it, so a recording is not live.
        let mut nonce = [0u8; keyhole_core::live_check::NONCE_LEN];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut nonce);
        let request = self
            .live_request(camera, nonce, std::time::Duration::from_secs(wait_secs))
            .await?;
        let asked = std::time::Instant::now();
        let resp = self
            .api
            .get_stream(&format!(
                "/v1/cameras/{camera}/live?wait_secs={wait_secs}&nonce={}&proof={}",
                hex::encode(request.nonce),
                hex::encode(request.proof)
            ))
            .await?;
        let mut body = resp.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        let mut opener: Option<(LiveOpener, LiveCheck)> = None;
        let mut outcome = LiveOutcome::default();
        let mut stream = crate::live_stream::LiveStream::default();
        loop {
            let Some(chunk) = body.next().await else {
                outcome.cut = true;
                break;
            };
            buf.extend_from_slice(&chunk?);
            if opener.is_none() {
                if buf.len() < PREFIX_LEN {
                    continue;
                }
                let header = Header::decode(&buf[..PREFIX_LEN]).map_err(untrusted)?;
                let viewing = keys.viewing.get(&header.epoch).ok_or_else(|| {
                    untrusted(format!("no viewing key for epoch {}", header.epoch))
                })?;
                let session =
                    LiveOpener::new(&buf[..PREFIX_LEN], &camera_key, viewing).map_err(untrusted)?;
                let check = LiveCheck::new(session.header(), camera_key, nonce);
                opener = Some((session, check));
                buf.drain(..PREFIX_LEN);
            }
            let Some((session, check)) = opener.as_mut() else {
                continue;
            };
            let mut stop = false;
            while buf.len() >= FRAME_HEADER_LEN && !stop {
                let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]) as usize;
                // A fragment is at most a chunk and its tag; a checkpoint is far smaller. A
                // longer length would have the device buffer whatever the server sends.
                if len > session.header().chunk_size() + 1024 {
                    return Err(untrusted(format!(
                        "live view: a record of {len} bytes, longer than the session's chunks"
                    )));
                }
                if buf.len() < FRAME_HEADER_LEN + len {
                    break;
                }
                let record: Vec<u8> = buf.drain(..FRAME_HEADER_LEN + len).collect();
                if record[..8] != CHECKPOINT_INDEX.to_be_bytes() {
                    let fragment = session.open_frame(&record).map_err(untrusted)?;
                    check.frame(&record[FRAME_HEADER_LEN..], fragment);
                    continue;
                }
                // Frames are shown only once the camera's checkpoint vouches for them.
                let since = u64::try_from(asked.elapsed().as_millis()).unwrap_or(u64::MAX);
                let shown = check
                    .checkpoint(&record[FRAME_HEADER_LEN..], since)
                    .map_err(|e| untrusted(format!("live view: {e}")))?;
                outcome.lag_ms = check.max_lag_ms();
                outcome.camera_clock = check.camera_clock();
                progress(&outcome);
                for fragment in shown {
                    outcome.bytes += stream.write(&fragment.data, fragment.skipped, out)?;
                    outcome.frames += 1;
                    outcome.skipped += fragment.skipped;
                    if fragment.last {
                        outcome.ended = true;
                        stop = true;
                        break;
                    }
                    let since = first_frame.get_or_insert_with(std::time::Instant::now);
                    if for_at_most.is_some_and(|limit| since.elapsed() >= limit) {
                        stop = true;
                        break;
                    }
                }
            }
            if stop {
                break;
            }
        }
        if let Some((_, check)) = &opener {
            outcome.lag_ms = check.max_lag_ms();
            outcome.unverified = check.unverified();
        }
        Ok(outcome)
    }
}
