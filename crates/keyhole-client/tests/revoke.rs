//! A second device is enrolled and sees the full history; once revoked, its credentials stop
//! working and nothing the camera records afterwards opens with any key it ever held, even if
//! the server hands it the bytes. A new key that could not be sealed is never used, and a
//! revocation interrupted part-way is finished by the next sync.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use base64::Engine as _;
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
    let endpoint = Endpoint {
        url: url.clone(),
        pin: None,
        allow_plain_http: false,
    };
    let (mut owner, _) = Owner::create(
        &endpoint,
        "ana",
        "correct horse battery",
        "phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap();
    let code = owner.start_pairing(&url, None, rng).await.unwrap();
    let mut camera = Agent::pair(
        &code.to_text(),
        &dir.path().join("camera"),
        AgentSettings::default(),
        rng,
    )
    .await
    .unwrap();
    let camera_id = owner
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();
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
