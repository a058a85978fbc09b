//! Sharing a camera with another Keyhole account, end to end: each side compares the other's
//! account code; the member lists, opens and verifies the owner's footage; the owner follows the
//! member's devices (a new one gets the key, a revoked one means a new epoch); after withdrawal
//! the member opens nothing recorded afterwards, even from a server that keeps serving it. A
//! device the server adds to the member's roster gets nothing. Every shared camera follows the
//! member's devices, and a seal or new epoch that failed is made at the next sync. The member
//! watches live too, until withdrawn. Every device of the member opens what is shared once one
//! of them accepted the owner, and forgets it once one stops accepting.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use base64::Engine as _;
mod common;

use std::time::Duration;

use common::{RunningCamera, join_by_approval};
use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::{ClientError, Owner};
use keyhole_core::key_package::KeyPackage;
use keyhole_core::recovery::KdfParams;
use keyhole_core::report::{Checked, Failure, Problem};
use keyhole_core::roster::DeviceEntry;
use keyhole_core::{CameraId, DeviceId, DeviceKeys, ObjectId, Timestamp};
use keyhole_http::Endpoint;
use keyhole_testkit::TestServer;
use keyhole_testkit::hostile::HostileProxy;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::{Method, StatusCode};
use serde_json::Value;

const NOW: Timestamp = Timestamp(1_795_735_205_000);
const PASSWORD: &str = "correct horse battery";

fn endpoint(url: &str) -> Endpoint {
    Endpoint {
        url: url.to_owned(),
        pin: None,
        allow_plain_http: false,
    }
}

async fn account(url: &str, name: &str, rng: &mut ChaCha20Rng) -> Owner {
    Owner::create(
        &endpoint(url),
        name,
        PASSWORD,
        "phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap()
    .0
}

/// A camera paired to `owner` as "Porch" (its state under `dir`).
async fn paired(
    owner: &mut Owner,
    url: &str,
    dir: &std::path::Path,
    rng: &mut ChaCha20Rng,
) -> (Agent, CameraId) {
    let code = owner.start_pairing(url, None, rng).await.unwrap();
    let camera = Agent::pair(
        &code.to_text(),
        &dir.join("camera"),
        AgentSettings::default(),
        rng,
    )
    .await
    .unwrap();
    let id = owner
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();
    (camera, id)
}

/// A new device of `owner`'s account (`user`), joined by approval from it.
/// Adds a tablet to `owner`'s account (its keys made here, as if exchanged out of band).
async fn add_tablet(owner: &mut Owner, rng: &mut ChaCha20Rng) -> (DeviceKeys, DeviceId) {
    let tablet = DeviceKeys::generate(rng);
    let id = DeviceId::random(rng);
    let entry = DeviceEntry {
        id,
        name: "tablet".into(),
        added_at: NOW,
        signing_key: tablet.signing.public(),
        hpke_key: tablet.hpke.public(),
    };
    owner.add_device(entry, NOW, rng).await.unwrap();
    (tablet, id)
}

/// Ana shares `camera` with Bo, giving Bo's account code, until withdrawn.
async fn share_with_bob(
    ana: &mut Owner,
    bob: &Owner,
    camera: &CameraId,
    rng: &mut ChaCha20Rng,
) -> Result<(), ClientError> {
    let code = bob.account_code().to_string();
    ana.share_camera(camera, "bob", &code, None, NOW, rng).await
}

/// The member's key packages for `device` (its own by default), as the server holds them.
async fn packages(owner: &Owner, device: Option<DeviceId>) -> Vec<KeyPackage> {
    let query = device.map_or(String::new(), |d| format!("?recipient={d}"));
    let answer: Value = owner
        .api()
        .get_json(&format!("/v1/key-packages{query}"))
        .await
        .unwrap();
    answer["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(p.as_str().unwrap())
                .unwrap();
            KeyPackage::decode(&bytes).unwrap()
        })
        .collect()
}

/// Whether the object verifies on `device`, and the report's problems with it.
async fn opens(device: &mut Owner, camera: &CameraId, object: &ObjectId) -> Vec<Problem> {
    let report = device.verify(camera).await.unwrap();
    report
        .entries
        .iter()
        .find(|e| e.listed_id == *object)
        .unwrap_or_else(|| panic!("{object} not listed: {report}"))
        .problems
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_camera_is_viewed_by_the_member_until_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let bob_view = HostileProxy::start(&server.url).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(21);
    let mut ana = account(&server.url, "ana", rng).await;
    let mut bob = account(&bob_view.url, "bob", rng).await;
    let (mut camera, camera_id) = paired(&mut ana, &server.url, dir.path(), rng).await;
    let before = camera.record_clip(&[1; 3000], NOW, rng).await.unwrap();
    camera.upload_pending().await.unwrap();
    ana.sync().await.unwrap();

    // Bo has not accepted shares from Ana: she cannot share with him. A wrong code is refused
    // on both sides.
    let refused = share_with_bob(&mut ana, &bob, &camera_id, rng)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Server { status: 404, .. }),
        "{refused}"
    );
    let wrong = "00000 00000 00000 00000 00000 00000 00000 00000";
    assert!(matches!(
        bob.accept_shares_from("ana", wrong).await,
        Err(ClientError::Untrusted(m)) if m.contains("account code")
    ));
    bob.accept_shares_from("ana", &ana.account_code().to_string())
        .await
        .unwrap();
    assert!(matches!(
        ana.share_camera(&camera_id, "bob", wrong, None, NOW, rng).await,
        Err(ClientError::Untrusted(m)) if m.contains("account code")
    ));

    // Shared: Bo's device learns the camera and opens what it recorded in this epoch.
    share_with_bob(&mut ana, &bob, &camera_id, rng)
        .await
        .unwrap();
    assert_eq!(
        ana.shares(),
        vec![(camera_id, vec![("bob".to_owned(), None)])]
    );
    let during = camera.record_clip(&[2; 3000], NOW, rng).await.unwrap();
    camera.upload_pending().await.unwrap();
    bob.sync().await.unwrap();
    assert_eq!(bob.shared_by(&camera_id).as_deref(), Some("ana"));
    assert_eq!(opens(&mut bob, &camera_id, &before).await, vec![]);
    assert_eq!(opens(&mut bob, &camera_id, &during).await, vec![]);
    let report = bob.verify(&camera_id).await.unwrap();
    assert!(report.is_clean(), "{report}");
    // Bo can look, not change.
    assert!(matches!(
        bob.remove_camera(&camera_id, false, NOW).await,
        Err(ClientError::Untrusted(m)) if m.contains("only its owner")
    ));

    // Bo adds a tablet: Ana's device, syncing, seals the camera's key to it without being asked.
    let (tablet, tablet_id) = add_tablet(&mut bob, rng).await;
    assert!(packages(&bob, Some(tablet_id)).await.is_empty());
    ana.sync().await.unwrap();
    let sealed = packages(&bob, Some(tablet_id)).await;
    assert_eq!(sealed.len(), 1);
    assert_eq!(sealed[0].camera_id, camera_id);
    assert!(sealed[0].open(&tablet.hpke, &sealed[0].viewing_key).is_ok());
    // Bo revokes the tablet: Ana's device, syncing, starts a new epoch, sealed to Bo's phone and
    // not to the tablet.
    bob.revoke_device(tablet_id, NOW, rng).await.unwrap();
    ana.sync().await.unwrap();
    assert_eq!(
        ana.cameras()[0].2,
        2,
        "a new epoch once a member's device went"
    );
    assert!(
        packages(&bob, Some(tablet_id))
            .await
            .iter()
            .all(|p| p.epoch == 1)
    );
    assert!(packages(&bob, None).await.iter().any(|p| p.epoch == 2));

    // Withdrawn: a new epoch, and the camera seals to it from its next record.
    let epoch = ana
        .unshare_camera(&camera_id, "bob", NOW, rng)
        .await
        .unwrap();
    assert_eq!(epoch, 3);
    assert!(ana.shares().is_empty());
    camera.refresh_record(rng).await.unwrap();
    let after = camera.record_clip(&[3; 3000], NOW, rng).await.unwrap();
    camera.upload_pending().await.unwrap();
    assert!(opens(&mut ana, &camera_id, &after).await.is_empty());
    // The server no longer serves Bo the camera...
    bob.sync().await.unwrap();
    assert!(matches!(
        bob.verify(&camera_id).await,
        Err(ClientError::Server { status: 404, .. })
    ));
    // ...and a server that does anyway gives him nothing he can open: no key of epoch 3 was
    // sealed to any of his devices.
    let listing: Vec<u8> = ana
        .api()
        .get_bytes(&format!("/v1/cameras/{camera_id}/objects"))
        .await
        .unwrap();
    let mut served = vec![(format!("/v1/cameras/{camera_id}/objects"), listing)];
    for id in [before, during, after] {
        let path = format!("/v1/objects/{id}");
        served.push((path.clone(), ana.api().get_bytes(&path).await.unwrap()));
    }
    bob_view.answer(move |method, path, _| {
        let path = path.split('?').next().unwrap();
        (*method == Method::GET)
            .then(|| served.iter().find(|(p, _)| p == path))
            .flatten()
            .map(|(_, body)| (StatusCode::OK, body.clone()))
    });
    assert_eq!(opens(&mut bob, &camera_id, &during).await, vec![]);
    assert_eq!(
        opens(&mut bob, &camera_id, &after).await,
        vec![Problem::NoViewingKey { epoch: 3 }]
    );
    let mut opened = Vec::new();
    assert!(matches!(
        bob.export(&camera_id, &after, &mut opened).await.unwrap(),
        Checked::Failed {
            reason: Failure::NoViewingKey { epoch: 3 },
            ..
        }
    ));
    assert!(opened.is_empty());
    assert!(packages(&bob, None).await.iter().all(|p| p.epoch < 3));
    // Two listings and the object were answered by the server that should not have.
    assert!(bob_view.applied() >= 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shared_camera_follows_the_members_devices_and_failed_steps_are_made_later() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let ana_view = HostileProxy::start(&server.url).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(24);
    let mut ana = account(&ana_view.url, "ana", rng).await;
    let mut bob = account(&server.url, "bob", rng).await;
    let (_porch, porch) = paired(&mut ana, &server.url, &dir.path().join("porch"), rng).await;
    let (_garage, garage) = paired(&mut ana, &server.url, &dir.path().join("garage"), rng).await;
    ana.sync().await.unwrap();
    bob.accept_shares_from("ana", &ana.account_code().to_string())
        .await
        .unwrap();
    let cameras_sealed_to = |packages: Vec<KeyPackage>, epoch: u32| {
        let mut cameras: Vec<CameraId> = packages
            .iter()
            .filter(|p| p.epoch == epoch)
            .map(|p| p.camera_id)
            .collect();
        cameras.sort();
        cameras
    };
    let mut both = vec![porch, garage];
    both.sort();

    // Sharing the garage fails after its share statement was written (the server takes no key
    // packages for a moment): Bo is a member but holds no key for it...
    share_with_bob(&mut ana, &bob, &porch, rng).await.unwrap();
    ana_view.answer(|method, path, _| {
        (*method == Method::PUT && path.starts_with("/v1/key-packages"))
            .then(|| (StatusCode::SERVICE_UNAVAILABLE, b"busy".to_vec()))
    });
    assert!(share_with_bob(&mut ana, &bob, &garage, rng).await.is_err());
    ana_view.clear();
    assert_eq!(ana.shares().len(), 2);
    assert_eq!(
        cameras_sealed_to(packages(&bob, None).await, 1),
        vec![porch]
    );
    // ...until Ana's next sync, on her device as reopened from its key store, seals it.
    let store = ana
        .to_key_store("a long passphrase", KdfParams::MINIMUM, rng)
        .unwrap();
    let mut ana = Owner::from_key_store(&store, "a long passphrase").unwrap();
    ana.sync().await.unwrap();
    assert_eq!(cameras_sealed_to(packages(&bob, None).await, 1), both);

    // Bo adds a tablet: both cameras' keys are sealed to it, not only the first one followed.
    let (_, tablet_id) = add_tablet(&mut bob, rng).await;
    ana.sync().await.unwrap();
    assert_eq!(
        cameras_sealed_to(packages(&bob, Some(tablet_id)).await, 1),
        both
    );
    // Nothing more to do at the next sync: no camera gets a new key.
    ana.sync().await.unwrap();
    assert!(ana.cameras().iter().all(|c| c.2 == 1));

    // Bo revokes the tablet: both cameras get a new epoch, sealed to his phone and not to it.
    bob.revoke_device(tablet_id, NOW, rng).await.unwrap();
    ana.sync().await.unwrap();
    assert!(
        ana.cameras().iter().all(|c| c.2 == 2),
        "{:?}",
        ana.cameras()
    );
    assert_eq!(cameras_sealed_to(packages(&bob, None).await, 2), both);
    assert!(cameras_sealed_to(packages(&bob, Some(tablet_id)).await, 2).is_empty());

    // Withdrawing the garage: the share statement is written, then the new epoch's record is
    // not (the server takes the first log entry and no more)...
    let appends = std::sync::atomic::AtomicUsize::new(0);
    ana_view.answer(move |method, path, _| {
        let append = *method == Method::POST && path.starts_with("/v1/log");
        (append && appends.fetch_add(1, std::sync::atomic::Ordering::SeqCst) >= 1)
            .then(|| (StatusCode::SERVICE_UNAVAILABLE, b"busy".to_vec()))
    });
    assert!(ana.unshare_camera(&garage, "bob", NOW, rng).await.is_err());
    ana_view.clear();
    assert_eq!(ana.shares(), vec![(porch, vec![("bob".to_owned(), None)])]);
    // ...so Bo's phone still holds the garage's current key, until Ana's next sync starts the
    // new epoch, sealed to her devices only.
    ana.sync().await.unwrap();
    let epochs: Vec<(CameraId, u32)> = ana.cameras().iter().map(|c| (c.0, c.2)).collect();
    assert!(
        epochs.contains(&(garage, 3)) && epochs.contains(&(porch, 2)),
        "{epochs:?}"
    );
    assert!(cameras_sealed_to(packages(&bob, None).await, 3).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_watches_live_until_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(25);
    let mut ana = account(&server.url, "ana", rng).await;
    let mut bob = account(&server.url, "bob", rng).await;
    let (camera, camera_id) = paired(&mut ana, &server.url, dir.path(), rng).await;
    ana.sync().await.unwrap();
    bob.accept_shares_from("ana", &ana.account_code().to_string())
        .await
        .unwrap();
    share_with_bob(&mut ana, &bob, &camera_id, rng)
        .await
        .unwrap();
    bob.sync().await.unwrap();

    // The camera runs (its synthetic scene, recording nothing) and streams when asked.
    let running = RunningCamera::start(camera, &dir.path().join("camera"), None).await;

    // Bo watches: every frame opens and verifies on his device.
    let mut video = Vec::new();
    let watched = bob
        .watch_live(&camera_id, 30, Some(Duration::from_secs(2)), &mut video)
        .await
        .unwrap();
    assert!(watched.frames > 5, "{watched:?}");
    assert!(!video.is_empty());

    // Withdrawn: the server no longer lets him ask.
    ana.unshare_camera(&camera_id, "bob", NOW, rng)
        .await
        .unwrap();
    let refused = bob
        .watch_live(&camera_id, 5, Some(Duration::from_secs(1)), &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Server { status: 404, .. }),
        "{refused}"
    );
    running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_device_of_the_member_opens_what_is_shared_after_one_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(26);
    let mut ana = account(&server.url, "ana", rng).await;
    let mut bob = account(&server.url, "bob", rng).await;
    let mut tablet = join_by_approval(
        &mut bob,
        &endpoint(&server.url),
        ("bob", "tablet"),
        NOW,
        &mut ChaCha20Rng::seed_from_u64(27),
    )
    .await;
    let (mut camera, camera_id) = paired(&mut ana, &server.url, dir.path(), rng).await;
    ana.sync().await.unwrap();

    // Bo compares Ana's code on his phone only; it goes in his account's log.
    bob.accept_shares_from("ana", &ana.account_code().to_string())
        .await
        .unwrap();
    share_with_bob(&mut ana, &bob, &camera_id, rng)
        .await
        .unwrap();
    let clip = camera.record_clip(&[4; 3000], NOW, rng).await.unwrap();
    camera.upload_pending().await.unwrap();

    // His tablet, which never compared the code, learns the acceptance from the log and opens
    // the shared camera's footage.
    assert!(tablet.accepted_owners().is_empty());
    tablet.sync().await.unwrap();
    assert_eq!(tablet.accepted_owners(), vec!["ana".to_owned()]);
    // Kept in its key store, verified again when opened.
    let store = tablet
        .to_key_store("a long passphrase", KdfParams::MINIMUM, rng)
        .unwrap();
    let mut tablet = Owner::from_key_store(&store, "a long passphrase").unwrap();
    assert_eq!(tablet.accepted_owners(), vec!["ana".to_owned()]);
    assert_eq!(tablet.shared_by(&camera_id).as_deref(), Some("ana"));
    assert_eq!(opens(&mut tablet, &camera_id, &clip).await, vec![]);

    // A laptop joining later does too, once Ana's device has followed Bo's roster.
    let mut laptop = join_by_approval(
        &mut tablet,
        &endpoint(&server.url),
        ("bob", "laptop"),
        NOW,
        &mut ChaCha20Rng::seed_from_u64(28),
    )
    .await;
    ana.sync().await.unwrap();
    laptop.sync().await.unwrap();
    assert_eq!(laptop.shared_by(&camera_id).as_deref(), Some("ana"));
    assert_eq!(opens(&mut laptop, &camera_id, &clip).await, vec![]);
    // Accepting again changes nothing.
    let version = bob.api().get_bytes("/v1/log").await.unwrap().len();
    bob.accept_shares_from("ana", &ana.account_code().to_string())
        .await
        .unwrap();
    assert_eq!(bob.api().get_bytes("/v1/log").await.unwrap().len(), version);

    // Bo stops accepting Ana's shares, on his phone: each of his devices forgets her camera,
    // keys included, and she can no longer share with him.
    bob.sync().await.unwrap();
    assert_eq!(bob.shared_by(&camera_id).as_deref(), Some("ana"));
    bob.refuse_shares_from("ana").await.unwrap();
    assert!(bob.cameras().iter().all(|c| c.0 != camera_id));
    laptop.sync().await.unwrap();
    assert!(laptop.accepted_owners().is_empty());
    assert!(laptop.cameras().iter().all(|c| c.0 != camera_id));
    let refused = share_with_bob(&mut ana, &bob, &camera_id, rng)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Server { status: 404, .. }),
        "{refused}"
    );
    assert!(matches!(
        bob.refuse_shares_from("ana").await,
        Err(ClientError::Untrusted(m)) if m.contains("not accepted")
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_the_server_adds_to_the_members_roster_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let ana_view = HostileProxy::start(&server.url).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(22);
    let mut ana = account(&ana_view.url, "ana", rng).await;
    let mut bob = account(&server.url, "bob", rng).await;
    let (_camera, camera_id) = paired(&mut ana, &server.url, dir.path(), rng).await;
    ana.sync().await.unwrap();
    bob.accept_shares_from("ana", &ana.account_code().to_string())
        .await
        .unwrap();

    // The server shows Ana Bo's roster with a device of its own appended (the count byte at
    // offset 117), the signed tail (Bo's device and signature) left as it was.
    let server_device = DeviceKeys::generate(rng);
    ana_view.rewrite(
        |m, p| *m == Method::GET && p.starts_with("/v1/accounts/bob/roster"),
        move |roster| {
            let signature = roster.split_off(roster.len() - keyhole_core::signer::TAIL_LEN);
            roster[117] += 1;
            roster.extend_from_slice(&[0xee; 16]);
            roster.push(6);
            roster.extend_from_slice(b"server");
            roster.extend_from_slice(&NOW.0.to_be_bytes());
            roster.extend_from_slice(&server_device.signing.public().to_bytes());
            roster.extend_from_slice(&server_device.hpke.public().0);
            roster.extend_from_slice(&signature);
        },
    );
    let refused = share_with_bob(&mut ana, &bob, &camera_id, rng)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Untrusted(m)
            if m.contains("bob's device list") && m.contains("signature")),
        "{refused}"
    );
    assert!(ana_view.applied() >= 1);
    // Nothing was shared or sealed.
    assert!(ana.shares().is_empty());
    assert!(packages(&bob, Some(DeviceId([0xee; 16]))).await.is_empty());
    assert!(packages(&bob, None).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_share_is_withdrawn_with_a_new_epoch() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(23);
    let mut ana = account(&server.url, "ana", rng).await;
    let mut bob = account(&server.url, "bob", rng).await;
    let (_camera, camera_id) = paired(&mut ana, &server.url, dir.path(), rng).await;
    ana.sync().await.unwrap();
    bob.accept_shares_from("ana", &ana.account_code().to_string())
        .await
        .unwrap();
    // Shared for two seconds by this machine's clock: the server serves Bo the camera until
    // then; after it, the server no longer does, and Ana's next sync withdraws the share and
    // re-keys the camera.
    let code = bob.account_code().to_string();
    let now = Timestamp(u64::try_from(keyhole_server::now_ms()).unwrap());
    let until = Timestamp(now.0 + 2000);
    ana.share_camera(&camera_id, "bob", &code, Some(until), now, rng)
        .await
        .unwrap();
    assert_eq!(
        ana.shares(),
        vec![(camera_id, vec![("bob".to_owned(), Some(until))])]
    );
    let record = format!("/v1/cameras/{camera_id}/record");
    assert!(bob.api().get_bytes(&record).await.is_ok());
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(matches!(
        bob.api().get_bytes(&record).await,
        Err(ClientError::Server { status: 404, .. })
    ));
    ana.sync().await.unwrap();
    assert!(ana.shares().is_empty(), "the expired share was withdrawn");
    assert_eq!(ana.cameras()[0].2, 2, "with a new epoch");
    assert!(packages(&bob, None).await.iter().all(|p| p.epoch == 1));
}

/// A member account's device that the member revoked, keeping its key store and knowing the
/// member's password, gets nothing more of the shared camera: the owner's next sync starts a new
/// epoch sealed only to the member's remaining devices, its old credential is refused, the
/// password's credential reads no footage, and what the camera records afterwards opens with no
/// key the device holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_revoked_device_gets_nothing_more_of_a_shared_camera() {
    use keyhole_core::envelope::open_object;
    use keyhole_core::keystore::KeyStore;
    use keyhole_core::{CameraPublicKey, HpkeSecretKey};

    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(61);
    let mut ana = account(&server.url, "ana", rng).await;
    let mut bob = account(&server.url, "bob", rng).await;
    let (mut camera, camera_id) = paired(&mut ana, &server.url, dir.path(), rng).await;
    ana.sync().await.unwrap();
    bob.accept_shares_from("ana", &ana.account_code().to_string())
        .await
        .unwrap();
    let mut tablet = join_by_approval(
        &mut bob,
        &endpoint(&server.url),
        ("bob", "tablet"),
        NOW,
        &mut ChaCha20Rng::seed_from_u64(62),
    )
    .await;
    share_with_bob(&mut ana, &bob, &camera_id, rng)
        .await
        .unwrap();
    let before = camera.record_clip(b"before", NOW, rng).await.unwrap();
    camera.upload_pending().await.unwrap();
    tablet.sync().await.unwrap();
    assert!(opens(&mut tablet, &camera_id, &before).await.is_empty());
    let store = dir.path().join("tablet.keys");
    tablet
        .save_key_store(&store, "tablet passphrase", KdfParams::MINIMUM, rng)
        .unwrap();
    let kept: Value = serde_json::from_slice(
        &KeyStore::decode(&std::fs::read(&store).unwrap())
            .unwrap()
            .open(b"tablet passphrase")
            .unwrap(),
    )
    .unwrap();

    // Bob revokes the tablet; Ana's next sync moves the camera to a new epoch.
    bob.revoke_device(tablet.device_id(), NOW, rng)
        .await
        .unwrap();
    ana.sync().await.unwrap();
    let after = camera
        .record_clip(b"after", Timestamp(NOW.0 + 1000), rng)
        .await
        .unwrap();
    camera.upload_pending().await.unwrap();
    assert_eq!(camera.status().epoch, 2);
    bob.sync().await.unwrap();
    assert!(
        opens(&mut bob, &camera_id, &after).await.is_empty(),
        "Bob's phone still views"
    );

    // The tablet's credential is refused; the password's reads no footage.
    assert!(tablet.sync().await.is_err());
    let login: Value = reqwest::Client::new()
        .post(server.url("/v1/login"))
        .json(&serde_json::json!({
            "username": "bob",
            "password": PASSWORD,
            "device_id": DeviceId::random(rng).to_string(),
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        format!("/v1/objects/{after}"),
        format!("/v1/cameras/{camera_id}/objects"),
        format!("/v1/cameras/{camera_id}/live"),
    ] {
        let resp = reqwest::Client::new()
            .get(server.url(&path))
            .bearer_auth(login["token"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert!(
            resp.status() == StatusCode::FORBIDDEN || resp.status() == StatusCode::NOT_FOUND,
            "{path}: {}",
            resp.status()
        );
    }

    // And no key the tablet kept opens what the camera recorded since.
    let backdoor = server.backdoor().await;
    let camera_key = CameraPublicKey::from_bytes(
        &backdoor
            .meta
            .camera(&camera_id.0)
            .await
            .unwrap()
            .unwrap()
            .camera_key,
    )
    .unwrap();
    let sealed = std::fs::read(
        dir.path()
            .join("server/blobs/objects")
            .join(hex::encode(&after.0[..1]))
            .join(after.to_string()),
    )
    .unwrap();
    let held: Vec<HpkeSecretKey> = kept["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["viewing_keys"].as_object().unwrap().values())
        .map(|k| {
            HpkeSecretKey::from_bytes(
                &hex::decode(k.as_str().unwrap())
                    .unwrap()
                    .try_into()
                    .unwrap(),
            )
        })
        .collect();
    assert!(!held.is_empty(), "the tablet held the shared camera's key");
    for key in &held {
        assert!(open_object(&sealed, &camera_key, key).is_err());
    }
    server.stop().await;
}
