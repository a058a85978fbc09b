//! The attacker homeowners meet, one attack per test: a tablet that joined by approval as a
//! person does, kept its key store (its device keys) and passphrase after it was revoked, knows
//! the account password, and has the server's help — played here by the phone's own credential,
//! which a helping server could lend it, and by the server's database, which it can write.
//!
//! Everything the tablet signs after its revocation is refused by the server, and what the
//! server stores for it anyway is refused by the camera and named, with the device, by the
//! owner's phone. The password gets it a credential that deletes, locks, replaces and reads
//! nothing; a credential lent by the server does no more without the phone's own key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::{Intruder, NOW, PASSWORD, ana_with_camera, join_by_approval, kept_key_store};
use keyhole_camera::Agent;
use keyhole_client::Owner;
use keyhole_core::keys::DeviceSigningKey;
use keyhole_core::log::{EntryBody, EntryKind, SignedEntry, statement_hash};
use keyhole_core::record::{CameraRecordBody, CameraState, SignedCameraRecord};
use keyhole_core::recovery::RecoveryBackup;
use keyhole_core::retention::RetentionFloorBody;
use keyhole_core::roster::{DeviceEntry, RosterBody, SignedRoster};
use keyhole_core::share::{Member, ShareBody};
use keyhole_core::signer::SignerKey;
use keyhole_core::{AccountKey, CameraId, DeviceId, HpkeSecretKey, ObjectId, Timestamp};
use keyhole_server::AppState;
use keyhole_server::store::{AccountId, LogAppend, Logged};
use keyhole_testkit::TestServer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The account after the phone revoked the tablet, and everything the tablet holds.
struct Revoked {
    server: TestServer,
    _dir: tempfile::TempDir,
    phone: Owner,
    camera: Agent,
    camera_id: CameraId,
    account_id: AccountId,
    /// The server's database, to store what the server accepts for the tablet.
    backdoor: AppState,
    tablet_id: DeviceId,
    /// The tablet's signing key, from the key store it kept.
    tablet_key: DeviceSigningKey,
    /// A credential the password gets the tablet (for a device no roster lists).
    password: Intruder,
    /// The phone's credential, lent by the server.
    lent: Intruder,
    rng: ChaCha20Rng,
}

impl Revoked {
    async fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(&dir.path().join("server")).await;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (endpoint, mut phone, phrase, mut camera, camera_id) =
            ana_with_camera(&server, dir.path(), &mut rng).await;

        // The tablet joins by approval, comparing codes, and keeps its key store.
        let tablet =
            join_by_approval(&mut phone, &endpoint, ("ana", "tablet"), NOW, &mut rng).await;
        let tablet_id = tablet.device_id();
        let contents = kept_key_store(&tablet, dir.path(), &mut rng);
        drop(tablet);

        // Its key store holds its own keys and no account key: the account key, which only the
        // recovery backup holds, appears in it neither raw nor in hex.
        let backdoor = server.backdoor().await;
        let account_id = backdoor
            .meta
            .camera(&camera_id.0)
            .await
            .unwrap()
            .unwrap()
            .account_id;
        let backup = backdoor
            .meta
            .recovery_backup(&account_id)
            .await
            .unwrap()
            .unwrap();
        let account_key = RecoveryBackup::decode(&backup)
            .unwrap()
            .open(&phrase)
            .unwrap()
            .account_key;
        let seed = account_key.seed();
        assert!(!contents.windows(32).any(|w| w == seed.as_slice()));
        assert!(!String::from_utf8_lossy(&contents).contains(&hex::encode(*seed)));
        let tablet_key = common::kept_signing_key(&contents);

        // The phone revokes the tablet: a roster without it, a new epoch for the camera.
        phone.revoke_device(tablet_id, NOW, &mut rng).await.unwrap();
        camera
            .record_clip(&[1; 3000], Timestamp(NOW.0 + 1000), &mut rng)
            .await
            .unwrap();
        assert_eq!(camera.upload_pending().await.unwrap(), 1);

        let url = server.url.clone();
        let password = Intruder::log_in(&url, "ana", PASSWORD, DeviceId::random(&mut rng)).await;
        let phone_store: Value =
            serde_json::from_slice(&kept_key_store(&phone, dir.path(), &mut rng)).unwrap();
        let lent = Intruder {
            http: reqwest::Client::new(),
            url,
            token: phone_store["token"].as_str().unwrap().to_owned(),
        };
        Self {
            server,
            _dir: dir,
            phone,
            camera,
            camera_id,
            account_id,
            backdoor,
            tablet_id,
            tablet_key,
            password,
            lent,
            rng,
        }
    }

    fn as_tablet(&self) -> SignerKey<'_> {
        SignerKey::Device {
            id: self.tablet_id,
            key: &self.tablet_key,
        }
    }

    async fn head(&self) -> SignedEntry {
        let entries = self
            .backdoor
            .meta
            .log_entries(&self.account_id, 0, 1000)
            .await
            .unwrap();
        SignedEntry::decode(entries.last().unwrap()).unwrap()
    }

    async fn roster(&self) -> SignedRoster {
        let stored = self.backdoor.meta.roster(&self.account_id, None).await;
        SignedRoster::decode(&stored.unwrap().unwrap()).unwrap()
    }

    async fn record(&self) -> SignedCameraRecord {
        let stored = self
            .backdoor
            .meta
            .camera_record(&self.camera_id.0, None)
            .await;
        SignedCameraRecord::decode(&stored.unwrap().unwrap()).unwrap()
    }

    /// The log entry after the head recording `statement`, signed by the tablet.
    async fn entry_for(
        &self,
        kind: EntryKind,
        subject: [u8; 16],
        version: u64,
        statement: &[u8],
    ) -> SignedEntry {
        let head = self.head().await;
        EntryBody {
            sequence: head.unverified_body().sequence + 1,
            previous: head.hash(),
            issued_at: Timestamp(NOW.0 + 2000),
            kind,
            subject,
            version,
            statement: statement_hash(statement),
            ..head.unverified_body().clone()
        }
        .sign(self.as_tablet())
        .unwrap()
    }

    /// The roster one version on, changed by `edit`, as the tablet signs it.
    async fn roster_change(&self, edit: impl FnOnce(&mut RosterBody)) -> SignedRoster {
        let roster = self.roster().await;
        let mut body = roster.unverified_body().clone();
        body.version += 1;
        body.previous = roster.hash();
        edit(&mut body);
        body.sign(self.as_tablet()).unwrap()
    }

    /// Offers `statement` for the log with the tablet's entry: refused with the password's
    /// credential (not an enrolled device) and with the lent one (the signer is the revoked
    /// tablet). Returns the entry.
    async fn server_refuses(
        &self,
        what: &str,
        (kind, subject): (EntryKind, [u8; 16]),
        version: u64,
        statement: &[u8],
    ) -> SignedEntry {
        let entry = self.entry_for(kind, subject, version, statement).await;
        let append = [entry.encoded(), statement].concat();
        let (status, message) = self.password.post("/v1/log", append.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {message}");
        assert!(message.contains("not_enrolled"), "{what}: {message}");
        let (status, message) = self.lent.post("/v1/log", append).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {message}");
        assert!(
            message.contains(&format!("device {}", self.tablet_id)) && message.contains("not list"),
            "{what}: {message}"
        );
        entry
    }

    /// The server stores `entry` and its statement anyway.
    async fn server_helps(&self, entry: &SignedEntry, statement: Logged<'_>) {
        let head = self.head().await;
        self.backdoor
            .meta
            .append_log(
                &self.account_id,
                &LogAppend {
                    sequence: i64::try_from(entry.unverified_body().sequence).unwrap(),
                    previous: head.hash().0,
                    hash: entry.hash().0,
                    entry: entry.encoded(),
                    statement,
                    account_key: None,
                },
            )
            .await
            .unwrap();
    }

    /// The phone's sync refuses what the server stored and names the tablet.
    async fn phone_names_the_tablet(&mut self) {
        let shown = self.phone.sync().await.unwrap_err().to_string();
        assert!(
            shown.contains(&format!("device {}", self.tablet_id))
                && shown.contains("does not list"),
            "{shown}"
        );
    }

    /// A request that destroys or replaces something: refused with the password's credential
    /// (not enrolled), with the lent credential alone (no device proof), and with the lent
    /// credential and a proof the tablet signs (not the phone's).
    async fn destroys_nothing(&self, method: Method, path: &str, body: &[u8]) {
        let what = format!("{method} {path}");
        let (status, message) = self
            .password
            .send(method.clone(), path, body.to_vec())
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {message}");
        assert!(message.contains("not_enrolled"), "{what}: {message}");
        let (status, message) = self.lent.send(method.clone(), path, body.to_vec()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {message}");
        assert!(message.contains("device_proof"), "{what}: {message}");
        for claimed in [self.tablet_id, self.phone.device_id()] {
            let (status, message) = self
                .lent
                .send_proven(
                    method.clone(),
                    path,
                    body.to_vec(),
                    (claimed, &self.tablet_key),
                )
                .await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {message}");
            assert!(message.contains("device_proof"), "{what}: {message}");
        }
    }

    async fn stored_objects(&self) -> Vec<ObjectId> {
        self.backdoor
            .meta
            .objects(&self.camera_id.0, 0, i64::MIN..i64::MAX, 1000)
            .await
            .unwrap()
            .iter()
            .map(|o| ObjectId(o.object_id))
            .collect()
    }
}

/// A new epoch whose viewing key the tablet holds: refused by the server; stored anyway, it is
/// refused by the camera (which keeps sealing to the phone's epoch) and named by the phone.
#[tokio::test]
async fn a_revoked_device_cannot_give_a_camera_a_key_it_holds() {
    let mut t = Revoked::new(31).await;
    let rogue_viewing = HpkeSecretKey::generate(&mut t.rng);
    let mut body = t.record().await.unverified_body().clone();
    body.version += 1;
    body.epoch += 1;
    body.viewing_key = rogue_viewing.public();
    let epoch = body.sign(t.as_tablet()).unwrap();
    let version = epoch.unverified_body().version;
    let subject = (EntryKind::CameraRecord, t.camera_id.0);
    let entry = t
        .server_refuses("a new epoch", subject, version, epoch.encoded())
        .await;
    t.server_helps(
        &entry,
        Logged::CameraRecord {
            camera_id: t.camera_id.0,
            version: i64::try_from(version).unwrap(),
            body: epoch.encoded(),
        },
    )
    .await;
    let refused = t
        .camera
        .record_clip(&[2; 3000], Timestamp(NOW.0 + 3000), &mut t.rng)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains(&format!("device {}", t.tablet_id)) && refused.contains("does not list"),
        "{refused}"
    );
    assert_eq!(t.camera.status().epoch, 2, "still the phone's epoch");
    t.phone_names_the_tablet().await;
    // Everything the camera sealed since the revocation is under the phone's epoch.
    assert!(t.camera.upload_pending().await.unwrap() >= 1);
    let sealed = t
        .backdoor
        .meta
        .objects(&t.camera_id.0, 0, i64::MIN..i64::MAX, 1000)
        .await
        .unwrap();
    assert!(sealed.iter().all(|o| o.epoch <= 2));
    t.server.stop().await;
}

/// A roster re-adding the tablet: refused by the server; stored anyway, refused by the phone,
/// which names the tablet — and by the camera, which follows the roster chain when a record
/// by the tablet reaches it.
#[tokio::test]
async fn a_revoked_device_cannot_re_add_itself() {
    let mut t = Revoked::new(32).await;
    let hpke = HpkeSecretKey::generate(&mut t.rng).public();
    let (tablet_id, signing_key) = (t.tablet_id, t.tablet_key.public());
    let rejoin = t
        .roster_change(|body| {
            body.devices.push(DeviceEntry {
                id: tablet_id,
                name: "tablet".into(),
                added_at: NOW,
                signing_key,
                hpke_key: hpke,
            });
        })
        .await;
    let version = rejoin.unverified_body().version;
    let entry = t
        .server_refuses(
            "re-adding itself",
            (EntryKind::Roster, [0; 16]),
            version,
            rejoin.encoded(),
        )
        .await;
    t.server_helps(
        &entry,
        Logged::Roster {
            version: i64::try_from(version).unwrap(),
            body: rejoin.encoded(),
        },
    )
    .await;
    t.phone_names_the_tablet().await;
    // A record by the tablet, stored as the server's latest, sends the camera to the roster
    // chain, where it finds the tablet's roster and refuses it.
    let mut body = t.record().await.unverified_body().clone();
    body.version += 1;
    body.epoch += 1;
    body.viewing_key = HpkeSecretKey::generate(&mut t.rng).public();
    let record = body.sign(t.as_tablet()).unwrap();
    t.backdoor
        .meta
        .put_camera_record(
            &t.camera_id.0,
            i64::try_from(record.unverified_body().version).unwrap(),
            record.encoded(),
        )
        .await
        .unwrap();
    let refused = t
        .camera
        .record_clip(&[3; 3000], Timestamp(NOW.0 + 4000), &mut t.rng)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("device list") && refused.contains(&format!("device {tablet_id}")),
        "{refused}"
    );
    t.server.stop().await;
}

/// A roster that replaces the recovery key with one the tablet holds: refused by the server;
/// stored anyway, refused by the phone, which names the tablet.
#[tokio::test]
async fn a_revoked_device_cannot_replace_the_recovery_key() {
    let mut t = Revoked::new(33).await;
    let key = HpkeSecretKey::generate(&mut t.rng).public();
    let roster = t.roster_change(|body| body.recovery_key = key).await;
    let version = roster.unverified_body().version;
    let entry = t
        .server_refuses(
            "a new recovery key",
            (EntryKind::Roster, [0; 16]),
            version,
            roster.encoded(),
        )
        .await;
    t.server_helps(
        &entry,
        Logged::Roster {
            version: i64::try_from(version).unwrap(),
            body: roster.encoded(),
        },
    )
    .await;
    t.phone_names_the_tablet().await;
    t.server.stop().await;
}

/// A camera of the tablet's own, paired into the account (the lent credential makes a pairing
/// token, the camera registers, the tablet signs its first record): the record is refused.
#[tokio::test]
async fn a_revoked_device_cannot_pair_a_camera() {
    let mut t = Revoked::new(34).await;
    let account = t.roster().await.unverified_body().account;
    let code =
        keyhole_core::pairing::PairingCode::new(&t.server.url, None, account, &mut t.rng).unwrap();
    let (status, _) = t
        .lent
        .post_json(
            "/v1/pairing-tokens",
            &json!({"token_id": code.token.to_string(), "ttl_secs": 600}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let spy = CameraId::random(&mut t.rng);
    let spy_key = keyhole_core::CameraKey::generate(&mut t.rng);
    let proof = keyhole_core::pairing::RegistrationProof::create(&code, spy, &spy_key);
    let (status, _) = t
        .password
        .post(
            &format!("/v1/pairing-tokens/{}/register", code.token),
            proof.encode(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let record = CameraRecordBody {
        camera_id: spy,
        version: 1,
        epoch: 1,
        state: CameraState::Active,
        name: "Spy".into(),
        camera_key: spy_key.public(),
        ..t.record().await.unverified_body().clone()
    }
    .sign(t.as_tablet())
    .unwrap();
    t.server_refuses(
        "a camera of its own",
        (EntryKind::CameraRecord, spy.0),
        1,
        record.encoded(),
    )
    .await;
    assert!(!t.phone.cameras().iter().any(|(id, ..)| *id == spy));
    t.server.stop().await;
}

/// The camera shared with an account the tablet controls: the share is refused; stored
/// anyway, refused by the phone, which names the tablet.
#[tokio::test]
async fn a_revoked_device_cannot_share_a_camera_with_its_own_account() {
    let mut t = Revoked::new(35).await;
    let share = ShareBody {
        owner: t.roster().await.unverified_body().account,
        camera_id: t.camera_id,
        version: 1,
        issued_at: NOW,
        members: vec![Member {
            account: AccountKey::generate(&mut t.rng).public(),
            name: "mallory".into(),
            expires_at: None,
        }],
    }
    .sign(t.as_tablet())
    .unwrap();
    let entry = t
        .server_refuses(
            "a share",
            (EntryKind::Share, t.camera_id.0),
            1,
            share.encoded(),
        )
        .await;
    t.server_helps(
        &entry,
        Logged::Share {
            camera_id: t.camera_id.0,
            version: 1,
            body: share.encoded(),
            members: &[],
        },
    )
    .await;
    t.phone_names_the_tablet().await;
    t.server.stop().await;
}

/// Footage and the camera itself: nothing is deleted.
#[tokio::test]
async fn a_revoked_device_deletes_no_footage() {
    let t = Revoked::new(36).await;
    let stored = t.stored_objects().await;
    t.destroys_nothing(Method::DELETE, &format!("/v1/objects/{}", stored[0]), b"")
        .await;
    t.destroys_nothing(
        Method::DELETE,
        &format!("/v1/cameras/{}?footage=delete", t.camera_id),
        b"",
    )
    .await;
    assert_eq!(t.stored_objects().await, stored, "nothing was deleted");
    let (status, message) = t
        .password
        .send(
            Method::GET,
            &format!("/v1/objects/{}", stored[0]),
            Vec::new(),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "it reads none either: {message}"
    );
    t.server.stop().await;
}

/// A retention floor that lets every object go: refused by the server; stored anyway, refused
/// by the phone naming the tablet.
#[tokio::test]
async fn a_revoked_device_cannot_move_the_retention_floor() {
    let mut t = Revoked::new(37).await;
    let floor = RetentionFloorBody {
        owner: t.roster().await.unverified_body().account,
        camera_id: t.camera_id,
        version: 1,
        issued_at: NOW,
        keep_from: u64::MAX - 1,
        max_age_days: 1,
    }
    .sign(t.as_tablet())
    .unwrap();
    let entry = t
        .server_refuses(
            "a retention floor",
            (EntryKind::Retention, t.camera_id.0),
            1,
            floor.encoded(),
        )
        .await;
    t.server_helps(
        &entry,
        Logged::Retention {
            camera_id: t.camera_id.0,
            version: 1,
            body: floor.encoded(),
        },
    )
    .await;
    t.phone_names_the_tablet().await;
    t.server.stop().await;
}

/// The phone's credentials revoked: the phone keeps working.
#[tokio::test]
async fn a_revoked_device_cannot_revoke_the_owners_devices() {
    let mut t = Revoked::new(38).await;
    t.destroys_nothing(
        Method::DELETE,
        &format!("/v1/devices/{}", t.phone.device_id()),
        b"",
    )
    .await;
    t.phone.sync().await.unwrap();
    t.server.stop().await;
}

/// The recovery backup replaced with one nobody can open, the key packages with ones that do
/// not open: both stay as they were, and the phone's sync opens its packages still.
#[tokio::test]
async fn a_revoked_device_cannot_replace_the_recovery_backup_or_key_packages() {
    let mut t = Revoked::new(39).await;
    let backup = t
        .backdoor
        .meta
        .recovery_backup(&t.account_id)
        .await
        .unwrap();
    let phone = t.phone.device_id();
    let recipient = phone.0.to_vec();
    let packages = t
        .backdoor
        .meta
        .key_packages(&t.account_id, &recipient)
        .await
        .unwrap();
    t.destroys_nothing(Method::PUT, "/v1/recovery-backup", b"KHRB")
        .await;
    let pkg = keyhole_core::key_package::KeyPackage::decode(&packages[0]).unwrap();
    // A real package for the phone's slot, sealed to a key the tablet holds.
    let forged = keyhole_core::key_package::KeyPackage::seal(
        pkg.owner,
        pkg.camera_id,
        pkg.epoch,
        &HpkeSecretKey::generate(&mut t.rng),
        pkg.recipient,
        &HpkeSecretKey::generate(&mut t.rng).public(),
        &mut t.rng,
    )
    .unwrap();
    t.destroys_nothing(Method::PUT, "/v1/key-packages", &forged.encode())
        .await;
    assert_eq!(
        t.backdoor
            .meta
            .recovery_backup(&t.account_id)
            .await
            .unwrap(),
        backup
    );
    assert_eq!(
        t.backdoor
            .meta
            .key_packages(&t.account_id, &recipient)
            .await
            .unwrap(),
        packages
    );
    t.phone.sync().await.unwrap();
    assert!(t.phone.damaged_key_packages().is_empty());
    t.server.stop().await;
}

/// Logging in again: the password gets the tablet only a credential for joining (and none for
/// the phone); its kept device key gets it no challenge, and a challenge the server issues it
/// anyway gets it no credential.
#[tokio::test]
async fn a_revoked_device_cannot_log_in_again() {
    let t = Revoked::new(40).await;
    let url = &t.server.url;
    let (status, _) = Intruder::try_log_in(url, "ana", PASSWORD, t.tablet_id).await;
    assert_eq!(status, StatusCode::OK, "only to join or recover");
    let (status, message) = Intruder::try_log_in(url, "ana", PASSWORD, t.phone.device_id()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{message}");

    let http = reqwest::Client::new();
    let who = serde_json::to_vec(&json!({
        "account": hex::encode(t.roster().await.unverified_body().account.to_bytes()),
        "device_id": t.tablet_id.to_string(),
    }))
    .unwrap();
    let asked = http
        .post(format!("{url}/v1/login/challenge"))
        .header("content-type", "application/json")
        .body(who.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::NOT_FOUND);
    let challenge = [0x5a; 32];
    t.backdoor
        .meta
        .create_challenge(&challenge, &t.account_id, &t.tablet_id.0, i64::MAX, 0)
        .await
        .unwrap();
    let request = keyhole_core::device_proof::Request {
        method: "POST",
        target: "/v1/login/device",
        body: &who,
    };
    let proof = keyhole_core::device_proof::DeviceProof::sign(
        keyhole_core::device_proof::Challenge(challenge),
        t.tablet_id,
        &t.tablet_key,
        &request,
    )
    .unwrap();
    let refused = http
        .post(format!("{url}/v1/login/device"))
        .header(keyhole_core::device_proof::HEADER, proof.encode())
        .body(who)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.text().await.unwrap().contains("not_enrolled"));
    t.server.stop().await;
}

/// After the revocation the phone changes the password the tablet's holder knows: the old one
/// logs nothing in any more, the new one does (for joining); neither the password's credential
/// nor a lent one without the phone's proof could have changed it.
#[tokio::test]
async fn the_owner_changes_the_password_and_the_old_one_stops_working() {
    let t = Revoked::new(41).await;
    let change = br#"{"password": "the tablet's new password"}"#;
    t.destroys_nothing(Method::PUT, "/v1/password", change)
        .await;
    let url = &t.server.url;
    let (status, _) = Intruder::try_log_in(url, "ana", PASSWORD, DeviceId([7; 16])).await;
    assert_eq!(status, StatusCode::OK, "unchanged so far");
    t.phone
        .change_password("a new and longer password")
        .await
        .unwrap();
    let (status, _) = Intruder::try_log_in(url, "ana", PASSWORD, DeviceId([7; 16])).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) =
        Intruder::try_log_in(url, "ana", "a new and longer password", DeviceId([7; 16])).await;
    assert_eq!(status, StatusCode::OK);
    let short = t.phone.change_password("short").await.unwrap_err();
    assert!(short.to_string().contains("10 to 1024"), "{short}");
    t.server.stop().await;
}
