//! A second device is enrolled and sees the full history; once revoked, its credentials stop
//! working and nothing the camera records afterwards opens with any key it ever held, even if
//! the server hands it the bytes. A new key that could not be sealed is never used, and a
//! revocation interrupted part-way is finished by the next sync.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use base64::Engine as _;
use common::join_by_approval;
use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::Owner;
use keyhole_core::envelope::{OpenError, Tamper, open_object};
use keyhole_core::key_package::KeyPackage;
use keyhole_core::recovery::KdfParams;
use keyhole_core::roster::DeviceEntry;
use keyhole_core::{CameraId, DeviceId, DeviceKeys, Timestamp};
use keyhole_http::Endpoint;
use keyhole_testkit::TestServer;
use keyhole_testkit::hostile::HostileProxy;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const NOW: Timestamp = Timestamp(1_795_735_205_000);

#[tokio::test]
async fn a_revoked_device_opens_nothing_recorded_afterwards() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let url = server.url.clone();
    let rng = &mut ChaCha20Rng::seed_from_u64(11);
    let (endpoint, mut owner, _, mut camera, camera_id) =
        ana_with_camera(&server, dir.path(), rng).await;
    let before = camera.record_clip(&[1; 3000], NOW, rng).await.unwrap();
    assert_eq!(camera.upload_pending().await.unwrap(), 1);
    owner.sync_camera(&camera_id).await.unwrap();

    // A tablet is enrolled: it logs in with its own device id and gets the full history.
    let tablet = DeviceKeys::generate(rng);
    let tablet_id = DeviceId::random(rng);
    let http = keyhole_http::client(&endpoint).unwrap();
    let login: Value = http
        .post(format!("{url}/v1/login"))
        .json(&json!({"username": "ana", "password": "correct horse battery", "device_id": tablet_id.to_string()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let tablet_token = login["token"].as_str().unwrap().to_owned();
    let entry = DeviceEntry {
        id: tablet_id,
        name: "tablet".into(),
        added_at: NOW,
        signing_key: tablet.signing.public(),
        hpke_key: tablet.hpke.public(),
    };
    owner.add_device(entry, NOW, rng).await.unwrap();
    let packages = |token: String| {
        let (http, url) = (http.clone(), format!("{url}/v1/key-packages"));
        async move {
            let resp = http.get(url).bearer_auth(token).send().await.unwrap();
            (
                resp.status(),
                resp.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let (status, pkgs) = packages(tablet_token.clone()).await;
    assert_eq!(status, 200);
    let pkgs: Vec<KeyPackage> = pkgs["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            KeyPackage::decode(
                &base64::engine::general_purpose::STANDARD
                    .decode(p.as_str().unwrap())
                    .unwrap(),
            )
            .unwrap()
        })
        .collect();
    assert_eq!(pkgs.iter().map(|p| p.epoch).collect::<Vec<_>>(), vec![1]);
    let tablet_epoch1 = pkgs[0].open(&tablet.hpke, &pkgs[0].viewing_key).unwrap();
    let blob = |id: &keyhole_core::ObjectId| {
        std::fs::read(
            dir.path()
                .join("blobs/objects")
                .join(hex::encode(&id.0[..1]))
                .join(id.to_string()),
        )
        .unwrap()
    };
    let camera_key = {
        let backdoor = server.backdoor().await;
        let row = backdoor.meta.camera(&camera_id.0).await.unwrap().unwrap();
        keyhole_core::CameraPublicKey::from_bytes(&row.camera_key).unwrap()
    };
    assert!(
        open_object(&blob(&before), &camera_key, &tablet_epoch1.secret).is_ok(),
        "the tablet sees the history"
    );

    // The tablet is revoked: new roster, credentials refused, a new epoch for the camera.
    let epochs = owner.revoke_device(tablet_id, NOW, rng).await.unwrap();
    assert_eq!(epochs, vec![(camera_id, 2)]);
    assert_eq!(packages(tablet_token).await.0, 401);
    let after = camera
        .record_clip(&[2; 3000], Timestamp(NOW.0 + 1000), rng)
        .await
        .unwrap();
    assert_eq!(camera.upload_pending().await.unwrap(), 1);

    // Even with the server's help — the raw bytes and every key package stored for it — the
    // tablet opens nothing recorded after its revocation.
    assert_eq!(
        stored_epochs(&server, &camera_id, &tablet_id).await,
        vec![1],
        "no key package for the new epoch was ever made for the tablet"
    );
    assert_eq!(
        open_object(&blob(&after), &camera_key, &tablet_epoch1.secret).map(|_| ()),
        Err(OpenError::Tampered(Tamper::KeyUnwrap { epoch: 2 }))
    );
    // The owner's phone still opens both.
    owner.sync_camera(&camera_id).await.unwrap();
    let report = owner.verify(&camera_id, None).await.unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.entries.len(), 2);
    // A device cannot revoke itself.
    assert!(
        owner
            .revoke_device(owner.device_id(), NOW, rng)
            .await
            .is_err()
    );
    server.stop().await;
}

/// The epochs of every key package the server stores for `device` of `camera`'s account.
async fn stored_epochs(server: &TestServer, camera: &CameraId, device: &DeviceId) -> Vec<u32> {
    let backdoor = server.backdoor().await;
    let row = backdoor.meta.camera(&camera.0).await.unwrap().unwrap();
    let stored = backdoor
        .meta
        .key_packages(&row.account_id, &device.0)
        .await
        .unwrap();
    stored
        .iter()
        .map(|b| KeyPackage::decode(b).unwrap().epoch)
        .collect()
}

/// A server that takes no key packages for a moment.
fn busy(method: &Method, path: &str, _: &[u8]) -> Option<(StatusCode, Vec<u8>)> {
    (*method == Method::PUT && path.starts_with("/v1/key-packages"))
        .then(|| (StatusCode::SERVICE_UNAVAILABLE, b"busy".to_vec()))
}

/// Ana's account, its phone talking to the server through `view`.
async fn ana_through(view: &HostileProxy, rng: &mut ChaCha20Rng) -> Owner {
    let endpoint = Endpoint {
        url: view.url.clone(),
        pin: None,
        allow_plain_http: false,
    };
    Owner::create(
        &endpoint,
        "ana",
        "correct horse battery",
        "phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap()
    .0
}

/// A camera's first key, or a new epoch's, that cannot be sealed to every device is never named
/// in the camera's record: the camera keeps sealing to the key the devices hold, and trying
/// again works.
#[tokio::test]
async fn a_new_key_that_could_not_be_sealed_is_never_used() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let view = HostileProxy::start(&server.url).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(12);
    let mut owner = ana_through(&view, rng).await;
    let code = owner.start_pairing(&server.url, None, rng).await.unwrap();
    let mut camera = Agent::pair(
        &code.to_text(),
        &dir.path().join("camera"),
        AgentSettings::default(),
        rng,
    )
    .await
    .unwrap();
    // The server takes no key packages for a moment: pairing fails before any record names a
    // key, and succeeds when tried again.
    view.answer(busy);
    assert!(
        owner
            .finish_pairing(&code, "Porch", NOW, rng)
            .await
            .is_err()
    );
    view.clear();
    assert!(owner.cameras().is_empty());
    let camera_id = owner
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();

    // Again: the new epoch fails, and the camera,
    // fetching its record, still seals to epoch 1, which the phone opens.
    view.answer(busy);
    assert!(owner.rotate_epoch(&camera_id, NOW, rng).await.is_err());
    view.clear();
    camera.refresh_record(rng).await.unwrap();
    let during = camera.record_clip(&[1; 3000], NOW, rng).await.unwrap();
    camera.upload_pending().await.unwrap();
    owner.sync().await.unwrap();
    assert_eq!(owner.cameras()[0].2, 1);

    // Tried again, it works: the camera moves to epoch 2 and both clips open.
    assert_eq!(owner.rotate_epoch(&camera_id, NOW, rng).await.unwrap(), 2);
    camera.refresh_record(rng).await.unwrap();
    let after = camera.record_clip(&[2; 3000], NOW, rng).await.unwrap();
    camera.upload_pending().await.unwrap();
    owner.sync().await.unwrap();
    let report = owner.verify(&camera_id, None).await.unwrap();
    assert!(report.is_clean(), "{report}");
    let listed: Vec<_> = report.entries.iter().map(|e| e.listed_id).collect();
    assert!(listed.contains(&during) && listed.contains(&after));
    server.stop().await;
}

/// A revocation interrupted after the new roster (the server took no key packages for a
/// moment) is finished by the next sync: every camera gets a new epoch the revoked device lacks.
#[tokio::test]
async fn an_interrupted_revocation_is_finished_by_the_next_sync() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let view = HostileProxy::start(&server.url).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(13);
    let mut owner = ana_through(&view, rng).await;
    for name in ["porch", "garage"] {
        let code = owner.start_pairing(&server.url, None, rng).await.unwrap();
        Agent::pair(
            &code.to_text(),
            &dir.path().join(name),
            AgentSettings::default(),
            rng,
        )
        .await
        .unwrap();
        owner.finish_pairing(&code, name, NOW, rng).await.unwrap();
    }
    owner.sync().await.unwrap();
    let tablet = DeviceKeys::generate(rng);
    let tablet_id = DeviceId::random(rng);
    owner
        .add_device(
            DeviceEntry {
                id: tablet_id,
                name: "tablet".into(),
                added_at: NOW,
                signing_key: tablet.signing.public(),
                hpke_key: tablet.hpke.public(),
            },
            NOW,
            rng,
        )
        .await
        .unwrap();
    owner.sync().await.unwrap();
    // Nothing to finish: adding a device leaves every camera's key as it was.
    owner.sync().await.unwrap();
    assert!(owner.cameras().iter().all(|c| c.2 == 1));

    view.answer(busy);
    assert!(owner.revoke_device(tablet_id, NOW, rng).await.is_err());
    view.clear();
    assert_eq!(owner.devices().len(), 1, "the new roster was written");
    assert!(owner.cameras().iter().all(|c| c.2 == 1));

    owner.sync().await.unwrap();
    assert!(
        owner.cameras().iter().all(|c| c.2 == 2),
        "{:?}",
        owner.cameras()
    );
    // The server kept the tablet's packages: epoch 1 of each camera, nothing later.
    assert_eq!(
        stored_epochs(&server, &owner.cameras()[0].0, &tablet_id).await,
        vec![1, 1]
    );
    // Done: the next sync changes nothing.
    assert!(!owner.sync().await.unwrap());
    server.stop().await;
}

/// The attacker homeowners meet: a tablet that joined by approval as a person does, kept its
/// key store and passphrase after it was revoked, knows the account password, and has the
/// server's help. The password gets it a credential that deletes, locks, replaces and reads
/// nothing. Everything it signs after its revocation — a camera record naming a key it holds, a
/// roster re-adding itself or replacing the recovery key, a record pairing a camera of its own,
/// a share with an account it controls — is refused by the server even when an enrolled
/// device's credential carries it; what the server stores for it anyway is refused by the camera
/// and named, with the device, by the owner's phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_device_with_its_key_store_and_the_password_signs_nothing_that_counts() {
    use keyhole_core::keys::DeviceSigningKey;
    use keyhole_core::log::{EntryBody, EntryKind, SignedEntry, statement_hash};
    use keyhole_core::record::{CameraRecordBody, CameraState, SignedCameraRecord};
    use keyhole_core::recovery::RecoveryBackup;
    use keyhole_core::roster::SignedRoster;
    use keyhole_core::share::{Member, ShareBody};
    use keyhole_core::signer::SignerKey;
    use keyhole_core::{AccountKey, HpkeSecretKey};
    use keyhole_server::store::{LogAppend, Logged};

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let url = server.url.clone();
    let rng = &mut ChaCha20Rng::seed_from_u64(31);
    let (endpoint, mut phone, phrase, mut camera, camera_id) =
        ana_with_camera(&server, dir.path(), rng).await;

    // The tablet joins by approval, comparing codes, and keeps its key store.
    let tablet_rng = &mut ChaCha20Rng::seed_from_u64(32);
    let tablet = join_by_approval(&mut phone, &endpoint, ("ana", "tablet"), NOW, tablet_rng).await;
    let tablet_id = tablet.device_id();
    let contents = kept_key_store(&tablet, dir.path(), tablet_rng);

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
    let contents: Value = serde_json::from_slice(&contents).unwrap();
    let tablet_key = DeviceSigningKey::from_seed(
        &hex::decode(contents["device_signing_key"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    );
    let as_tablet = SignerKey::Device {
        id: tablet_id,
        key: &tablet_key,
    };
    drop(tablet);

    // The phone revokes the tablet: a roster without it, a new epoch for the camera.
    phone.revoke_device(tablet_id, NOW, rng).await.unwrap();
    camera
        .record_clip(&[1; 3000], Timestamp(NOW.0 + 1000), rng)
        .await
        .unwrap();
    assert_eq!(camera.upload_pending().await.unwrap(), 1);

    // What the tablet can build from what it holds and what the server shows: the log's head,
    // the roster in force, the camera's record.
    let entries = backdoor
        .meta
        .log_entries(&account_id, 0, 1000)
        .await
        .unwrap();
    let head = SignedEntry::decode(entries.last().unwrap()).unwrap();
    let roster = SignedRoster::decode(
        &backdoor
            .meta
            .roster(&account_id, None)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let record = SignedCameraRecord::decode(
        &backdoor
            .meta
            .camera_record(&camera_id.0, None)
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    let entry_for = |kind, subject, version, statement: &[u8]| {
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
        .sign(as_tablet)
        .unwrap()
    };
    // A new epoch whose viewing key the tablet holds.
    let rogue_viewing = HpkeSecretKey::generate(tablet_rng);
    let mut epoch = record.unverified_body().clone();
    epoch.version += 1;
    epoch.epoch += 1;
    epoch.viewing_key = rogue_viewing.public();
    let epoch = epoch.sign(as_tablet).unwrap();
    // Itself back in the roster; the recovery key replaced by one it holds.
    let mut rejoin = roster.unverified_body().clone();
    rejoin.version += 1;
    rejoin.previous = roster.hash();
    rejoin.devices.push(DeviceEntry {
        id: tablet_id,
        name: "tablet".into(),
        added_at: NOW,
        signing_key: tablet_key.public(),
        hpke_key: HpkeSecretKey::generate(tablet_rng).public(),
    });
    let mut recovery = roster.unverified_body().clone();
    recovery.version += 1;
    recovery.previous = roster.hash();
    recovery.recovery_key = HpkeSecretKey::generate(tablet_rng).public();
    // The password gets the tablet a fresh credential, for a device no roster lists; and the
    // phone's own credential, from its key store, stands in for a server that helps.
    let attacker = Intruder::log_in(&url, "ana", PASSWORD, DeviceId::random(tablet_rng)).await;
    let phone_store: Value =
        serde_json::from_slice(&kept_key_store(&phone, dir.path(), rng)).unwrap();
    let helped = Intruder {
        http: reqwest::Client::new(),
        url: url.clone(),
        token: phone_store["token"].as_str().unwrap().to_owned(),
    };
    // A camera of its own paired into the account: the credential makes a pairing token, the
    // camera registers, and the tablet signs its first record.
    let rogue_code = keyhole_core::pairing::PairingCode::new(
        &url,
        None,
        roster.unverified_body().account,
        tablet_rng,
    )
    .unwrap();
    let (status, _) = helped
        .post_json(
            "/v1/pairing-tokens",
            &json!({"token_id": rogue_code.token.to_string(), "ttl_secs": 600}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let rogue_camera = CameraId::random(tablet_rng);
    let rogue_camera_key = keyhole_core::CameraKey::generate(tablet_rng);
    let proof = keyhole_core::pairing::RegistrationProof::create(
        &rogue_code,
        rogue_camera,
        &rogue_camera_key,
    );
    let (status, _) = attacker
        .post(
            &format!("/v1/pairing-tokens/{}/register", rogue_code.token),
            proof.encode(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let pair = CameraRecordBody {
        camera_id: rogue_camera,
        version: 1,
        epoch: 1,
        state: CameraState::Active,
        name: "Spy".into(),
        camera_key: rogue_camera_key.public(),
        ..record.unverified_body().clone()
    }
    .sign(as_tablet)
    .unwrap();
    // The camera shared with an account it controls (created with the password it knows is
    // another; any account key will do for the statement).
    let share = ShareBody {
        owner: roster.unverified_body().account,
        camera_id,
        version: 1,
        issued_at: NOW,
        members: vec![Member {
            account: AccountKey::generate(tablet_rng).public(),
            name: "mallory".into(),
            expires_at: None,
        }],
    }
    .sign(as_tablet)
    .unwrap();

    let attempts = [
        (
            "a new epoch",
            EntryKind::CameraRecord,
            camera_id.0,
            epoch.unverified_body().version,
            epoch.encoded().to_vec(),
        ),
        (
            "re-adding itself",
            EntryKind::Roster,
            [0; 16],
            rejoin.version,
            rejoin.clone().sign(as_tablet).unwrap().encoded().to_vec(),
        ),
        (
            "a new recovery key",
            EntryKind::Roster,
            [0; 16],
            recovery.version,
            recovery.sign(as_tablet).unwrap().encoded().to_vec(),
        ),
        (
            "a camera of its own",
            EntryKind::CameraRecord,
            rogue_camera.0,
            1,
            pair.encoded().to_vec(),
        ),
        (
            "a share",
            EntryKind::Share,
            camera_id.0,
            1,
            share.encoded().to_vec(),
        ),
    ];
    for (what, kind, subject, version, statement) in &attempts {
        let entry = entry_for(*kind, *subject, *version, statement);
        let append = [entry.encoded(), statement].concat();
        // With the password's credential: not an enrolled device.
        let (status, message) = attacker.post("/v1/log", append.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {message}");
        assert!(message.contains("not_enrolled"), "{what}: {message}");
        // With an enrolled device's credential: the signature is the revoked tablet's.
        let (status, message) = helped.post("/v1/log", append).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {message}");
        assert!(
            message.contains(&format!("device {tablet_id}")) && message.contains("not list"),
            "{what}: {message}"
        );
    }
    // The password's credential deletes, locks and replaces nothing: footage, the camera, the
    // retention, the owner's devices, the recovery backup, key packages.
    let stored = backdoor
        .meta
        .objects(&camera_id.0, 0, i64::MIN..i64::MAX, 10)
        .await
        .unwrap();
    let object = keyhole_core::ObjectId(stored[0].object_id);
    for (method, path, body) in [
        (Method::DELETE, format!("/v1/objects/{object}"), Vec::new()),
        (
            Method::DELETE,
            format!("/v1/cameras/{camera_id}?footage=delete"),
            Vec::new(),
        ),
        (
            Method::PUT,
            "/v1/retention".to_owned(),
            br#"{"max_bytes": 0}"#.to_vec(),
        ),
        (
            Method::DELETE,
            format!("/v1/devices/{}", phone.device_id()),
            Vec::new(),
        ),
        (
            Method::PUT,
            "/v1/recovery-backup".to_owned(),
            b"KHRB".to_vec(),
        ),
        (Method::PUT, "/v1/key-packages".to_owned(), b"KHKP".to_vec()),
        (Method::GET, format!("/v1/objects/{object}"), Vec::new()),
    ] {
        let (status, message) = attacker.send(method.clone(), &path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {message}");
        assert!(
            message.contains("not_enrolled"),
            "{method} {path}: {message}"
        );
    }
    assert_eq!(
        backdoor
            .meta
            .objects(&camera_id.0, 0, i64::MIN..i64::MAX, 10)
            .await
            .unwrap()
            .len(),
        stored.len(),
        "nothing was deleted"
    );

    // Nor does the password make it the tablet again, or any device the roster lists.
    let (status, _) = Intruder::try_log_in(&url, "ana", PASSWORD, tablet_id).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "a device no roster lists may only join or recover"
    );
    let (status, message) = Intruder::try_log_in(&url, "ana", PASSWORD, phone.device_id()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{message}");

    // The server helps it anyway: the new epoch is stored, with its log entry.
    let entry = entry_for(
        EntryKind::CameraRecord,
        camera_id.0,
        epoch.unverified_body().version,
        epoch.encoded(),
    );
    backdoor
        .meta
        .append_log(
            &account_id,
            &LogAppend {
                sequence: i64::try_from(entry.unverified_body().sequence).unwrap(),
                previous: head.hash().0,
                hash: entry.hash().0,
                entry: entry.encoded(),
                statement: Logged::CameraRecord {
                    camera_id: camera_id.0,
                    version: i64::try_from(epoch.unverified_body().version).unwrap(),
                    body: epoch.encoded(),
                },
                account_key: None,
            },
        )
        .await
        .unwrap();
    // The camera refuses the record, says by whom, and seals nothing to the tablet's key.
    let refused = camera
        .record_clip(&[2; 3000], Timestamp(NOW.0 + 3000), rng)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains(&format!("device {tablet_id}"))
            && refused.to_string().contains("does not list"),
        "{refused}"
    );
    assert_eq!(
        camera.status().epoch,
        2,
        "still sealing to the phone's epoch"
    );
    // The phone shows what happened and which device did it.
    let shown = phone.sync().await.unwrap_err().to_string();
    assert!(
        shown.contains(&format!("device {tablet_id}")) && shown.contains("does not list"),
        "{shown}"
    );

    // The server also stores a roster re-adding the tablet: the camera, told of a record by the
    // tablet it now knows nothing of, follows the roster chain and refuses that roster.
    backdoor
        .meta
        .put_roster(
            &account_id,
            i64::try_from(rejoin.version).unwrap(),
            rejoin.sign(as_tablet).unwrap().encoded(),
        )
        .await
        .unwrap();
    let refused = camera
        .record_clip(&[3; 3000], Timestamp(NOW.0 + 4000), rng)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("device list") && refused.contains(&format!("device {tablet_id}")),
        "{refused}"
    );
    // Every object the camera sealed since the revocation opens on the phone's side only: none
    // under the tablet's key.
    let uploaded = camera.upload_pending().await.unwrap();
    assert!(uploaded >= 1, "the alerts the camera sealed are uploaded");
    let sealed = backdoor
        .meta
        .objects(&camera_id.0, 0, i64::MIN..i64::MAX, 1000)
        .await
        .unwrap();
    let epochs: Vec<i64> = sealed.iter().map(|o| o.epoch).collect();
    assert!(epochs.iter().all(|e| *e <= 2), "{epochs:?}");
    server.stop().await;
}

/// A tablet turns against the account and strikes first: it revokes the phone (a roster without
/// it, signed by the tablet while it was still listed, and a new epoch only the tablet holds).
/// The owner, with the recovery phrase on a new phone, takes the account back: the account key
/// signs a roster listing the new phone alone, the camera follows that roster over the tablet's
/// and moves to a new epoch, and nothing it records from then on opens with any key the tablet
/// holds; the server takes nothing the tablet signs any more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recovery_phrase_takes_the_account_back_from_a_device_that_struck_first() {
    use keyhole_core::HpkeSecretKey;
    use keyhole_core::signer::Signer;

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(41);
    let (endpoint, mut phone, phrase, mut camera, camera_id) =
        ana_with_camera(&server, dir.path(), rng).await;
    let tablet_rng = &mut ChaCha20Rng::seed_from_u64(42);
    let mut tablet =
        join_by_approval(&mut phone, &endpoint, ("ana", "tablet"), NOW, tablet_rng).await;

    // The tablet strikes first: the phone is out, and the camera follows the tablet's epoch.
    tablet
        .revoke_device(phone.device_id(), NOW, tablet_rng)
        .await
        .unwrap();
    camera
        .record_clip(&[1; 3000], Timestamp(NOW.0 + 1000), rng)
        .await
        .unwrap();
    assert_eq!(camera.status().epoch, 2);
    assert!(phone.sync().await.is_err(), "the phone is locked out");

    // The owner takes the account back with the phrase.
    let (mut new_phone, removed) = Owner::recover(
        &endpoint,
        "ana",
        PASSWORD,
        &phrase,
        "new phone",
        Timestamp(NOW.0 + 2000),
        rng,
    )
    .await
    .unwrap();
    assert_eq!(removed, ["tablet"]);
    assert_eq!(new_phone.devices().len(), 1);
    let backdoor = server.backdoor().await;
    let account = backdoor
        .meta
        .camera(&camera_id.0)
        .await
        .unwrap()
        .unwrap()
        .account_id;
    let newest = keyhole_core::roster::SignedRoster::decode(
        &backdoor.meta.roster(&account, None).await.unwrap().unwrap(),
    )
    .unwrap();
    assert_eq!(
        newest.signer(),
        Signer::Account,
        "the account key signed it"
    );
    assert!(
        newest
            .unverified_body()
            .devices
            .iter()
            .all(|d| d.id == new_phone.device_id())
    );

    // The camera follows the account key's roster over the tablet's, and the new epoch.
    let after = camera
        .record_clip(&[2; 3000], Timestamp(NOW.0 + 3000), rng)
        .await
        .unwrap();
    assert_eq!(camera.status().epoch, 3);
    assert_eq!(camera.upload_pending().await.unwrap(), 2);
    new_phone.sync_camera(&camera_id).await.unwrap();
    let mut plain = Vec::new();
    new_phone
        .export(&camera_id, &after, &mut plain)
        .await
        .unwrap();
    assert_eq!(plain, vec![2; 3000]);

    // Nothing recorded since opens with any viewing key the tablet holds, and the server takes
    // nothing more from it.
    let kept: Value =
        serde_json::from_slice(&kept_key_store(&tablet, dir.path(), tablet_rng)).unwrap();
    let blob = std::fs::read(
        dir.path()
            .join("server/blobs/objects")
            .join(hex::encode(&after.0[..1]))
            .join(after.to_string()),
    )
    .unwrap();
    let camera_key = keyhole_core::CameraPublicKey::from_bytes(
        &backdoor
            .meta
            .camera(&camera_id.0)
            .await
            .unwrap()
            .unwrap()
            .camera_key,
    )
    .unwrap();
    let held: Vec<HpkeSecretKey> = kept["cameras"][0]["viewing_keys"]
        .as_object()
        .unwrap()
        .values()
        .map(|k| {
            HpkeSecretKey::from_bytes(
                &hex::decode(k.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
            )
        })
        .collect();
    assert_eq!(held.len(), 2, "the tablet holds epochs 1 and 2");
    for key in &held {
        assert!(open_object(&blob, &camera_key, key).is_err());
    }
    assert!(
        tablet
            .rotate_epoch(&camera_id, Timestamp(NOW.0 + 4000), tablet_rng)
            .await
            .is_err()
    );
    server.stop().await;
}

const PASSWORD: &str = "correct horse battery";

/// Ana's account, made on her phone, with a camera (its state under `dir`) paired into it: the
/// server's endpoint, the phone, the recovery phrase, the camera and its id.
async fn ana_with_camera(
    server: &TestServer,
    dir: &std::path::Path,
    rng: &mut ChaCha20Rng,
) -> (
    Endpoint,
    Owner,
    keyhole_core::recovery::RecoveryPhrase,
    Agent,
    CameraId,
) {
    let endpoint = Endpoint {
        url: server.url.clone(),
        pin: None,
        allow_plain_http: false,
    };
    let (mut phone, phrase) = Owner::create(
        &endpoint,
        "ana",
        PASSWORD,
        "phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap();
    let code = phone.start_pairing(&server.url, None, rng).await.unwrap();
    let camera = Agent::pair(
        &code.to_text(),
        &dir.join("camera"),
        AgentSettings::default(),
        rng,
    )
    .await
    .unwrap();
    let camera_id = phone
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();
    (endpoint, phone, phrase, camera, camera_id)
}

/// `device`'s key store, saved under `dir` as the device keeps it, and opened again with its
/// passphrase by whoever holds the device: its contents.
fn kept_key_store(device: &Owner, dir: &std::path::Path, rng: &mut ChaCha20Rng) -> Vec<u8> {
    let store = dir.join(format!("{}.keys", device.device_id()));
    device
        .save_key_store(&store, "device passphrase", KdfParams::MINIMUM, rng)
        .unwrap();
    keyhole_core::keystore::KeyStore::decode(&std::fs::read(&store).unwrap())
        .unwrap()
        .open(b"device passphrase")
        .unwrap()
        .to_vec()
}

/// A password holder's credential, making raw API calls.
struct Intruder {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl Intruder {
    /// A password login for `device`: its status and body.
    async fn try_log_in(
        url: &str,
        user: &str,
        password: &str,
        device: DeviceId,
    ) -> (StatusCode, String) {
        let resp = reqwest::Client::new()
            .post(format!("{url}/v1/login"))
            .json(&json!({"username": user, "password": password, "device_id": device.to_string()}))
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn log_in(url: &str, user: &str, password: &str, device: DeviceId) -> Self {
        let http = reqwest::Client::new();
        let login: Value = http
            .post(format!("{url}/v1/login"))
            .json(&json!({"username": user, "password": password, "device_id": device.to_string()}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            http,
            url: url.to_owned(),
            token: login["token"].as_str().unwrap().to_owned(),
        }
    }

    async fn send(&self, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, String) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .body(body.clone());
        if body.starts_with(b"{") {
            request = request.header("content-type", "application/json");
        }
        let resp = request.send().await.unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn post_json(&self, path: &str, body: &Value) -> (StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }

    async fn post(&self, path: &str, body: Vec<u8>) -> (StatusCode, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.url))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.text().await.unwrap())
    }
}
