//! A second device is enrolled and sees the full history; once revoked, its credentials stop
//! working and nothing the camera records afterwards opens with any key it ever held, even if
//! the server hands it the bytes. A new key that could not be sealed is never used, and a
//! revocation interrupted part-way is finished by the next sync.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use base64::Engine as _;
use common::{NOW, PASSWORD, ana_with_camera, device_login, join_by_approval, kept_key_store};
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
use serde_json::Value;

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

    // A tablet is enrolled: listed, it logs in with its own key and gets the full history.
    let tablet = DeviceKeys::generate(rng);
    let tablet_id = DeviceId::random(rng);
    let http = keyhole_http::client(&endpoint).unwrap();
    let entry = DeviceEntry {
        id: tablet_id,
        name: "tablet".into(),
        added_at: NOW,
        signing_key: tablet.signing.public(),
        hpke_key: tablet.hpke.public(),
    };
    let by_password = common::Intruder::log_in(&url, "ana", PASSWORD, tablet_id).await;
    owner.add_device(entry, NOW, rng).await.unwrap();
    let tablet_token = device_login(&url, owner.account(), tablet_id, &tablet.signing).await;
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
    // The password's credential stays a joining one once the roster lists the tablet: only
    // the credential its key got acts as the tablet.
    let (status, refused) = packages(by_password.token.clone()).await;
    assert_eq!(
        (status.as_u16(), refused["error"].as_str()),
        (403, Some("not_enrolled"))
    );
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
    let report = owner.verify(&camera_id).await.unwrap();
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
    let report = owner.verify(&camera_id).await.unwrap();
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
    let (tablet_id, _) = common::add_device(&mut owner, "tablet", rng).await;
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
    // The phone is locked out: its credential is revoked and its key gets it no new one. With
    // the password it reads the log again, and says by whom.
    let refused = phone.sync().await.unwrap_err();
    assert!(
        matches!(
            refused,
            keyhole_client::ClientError::Server { status: 401, .. }
        ),
        "{refused}"
    );
    let refused = phone.log_in_with_device_key().await.unwrap_err();
    assert!(
        matches!(&refused, keyhole_client::ClientError::Server { code, .. } if code == "not_found"),
        "{refused}"
    );
    phone.log_in_with_password("ana", PASSWORD).await.unwrap();
    let shown = phone.sync().await.unwrap_err();
    assert!(
        matches!(&shown, keyhole_client::ClientError::Removed { version: 3, by, .. }
            if by.contains("\"tablet\"") && by.contains(&tablet.device_id().to_string())),
        "{shown}"
    );

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

/// Two listed devices: the laptop, with its own credential and key, cannot replace a key package
/// the phone sealed (it would swap a good package for one nobody can open), not even the one
/// sealed to itself, which the phone sealed when it approved it. And a device whose credential the server stopped taking gets a new one with its own key
/// (never the password), while the roster lists it.
#[tokio::test]
async fn key_packages_are_their_sealers_and_a_listed_device_logs_in_with_its_key() {
    use keyhole_core::key_package::{Recipient, RecipientKey};

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(51);
    let (endpoint, mut phone, _, _camera, camera_id) =
        ana_with_camera(&server, dir.path(), rng).await;
    let mut laptop = join_by_approval(&mut phone, &endpoint, ("ana", "laptop"), NOW, rng).await;
    let kept = kept_key_store(&laptop, dir.path(), rng);
    let laptop_key = common::kept_signing_key(&kept);
    let store: Value = serde_json::from_slice(&kept).unwrap();
    let as_laptop = common::Intruder {
        http: reqwest::Client::new(),
        url: server.url.clone(),
        token: store["token"].as_str().unwrap().to_owned(),
    };
    let backdoor = server.backdoor().await;
    let account_id = backdoor
        .meta
        .camera(&camera_id.0)
        .await
        .unwrap()
        .unwrap()
        .account_id;
    let phone_slot = backdoor
        .meta
        .key_packages(&account_id, &phone.device_id().0)
        .await
        .unwrap();
    let sealed = KeyPackage::decode(&phone_slot[0]).unwrap();
    let forged = |recipient: Recipient, rng: &mut ChaCha20Rng| {
        KeyPackage::seal(
            sealed.owner,
            camera_id,
            sealed.epoch,
            &keyhole_core::HpkeSecretKey::generate(rng),
            recipient,
            &keyhole_core::HpkeSecretKey::generate(rng).public(),
            rng,
        )
        .unwrap()
        .encode()
    };
    let to_phone = forged(sealed.recipient, rng);
    let (status, message) = as_laptop
        .send_proven(
            Method::PUT,
            "/v1/key-packages",
            to_phone,
            (laptop.device_id(), &laptop_key),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{message}");
    assert!(
        message.contains(&format!("sealed by device {}", phone.device_id())),
        "{message}"
    );
    assert_eq!(
        backdoor
            .meta
            .key_packages(&account_id, &phone.device_id().0)
            .await
            .unwrap(),
        phone_slot,
        "the phone's package is as it sealed it"
    );
    // The laptop's own slot was sealed by the phone when it approved the laptop: the phone's
    // to replace too.
    let to_self = Recipient {
        account: sealed.owner,
        key: RecipientKey::Device(laptop.device_id()),
    };
    let (status, _) = as_laptop
        .send_proven(
            Method::PUT,
            "/v1/key-packages",
            forged(to_self, rng),
            (laptop.device_id(), &laptop_key),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    phone.sync().await.unwrap();
    assert!(phone.damaged_key_packages().is_empty());

    // The laptop's credential is logged out; its key gets it a new one.
    let (status, _) = as_laptop.post("/v1/logout", Vec::new()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let refused = laptop.sync().await.unwrap_err();
    assert!(
        matches!(
            refused,
            keyhole_client::ClientError::Server { status: 401, .. }
        ),
        "{refused}"
    );
    laptop.log_in_with_device_key().await.unwrap();
    laptop.sync().await.unwrap();
    server.stop().await;
}
