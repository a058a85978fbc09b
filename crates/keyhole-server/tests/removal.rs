//! Camera removal with keep and delete, transfer to another account, the audit log and
//! retention by the owner's signed floors.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use keyhole_core::key_package::{KeyPackage, Recipient, RecipientKey};
use keyhole_core::log::EntryKind;
use keyhole_core::retention::{RetentionFloorBody, SignedRetentionFloor};
use keyhole_core::signer::SignerKey;
use keyhole_core::{CameraId, DeviceId, DeviceKeys, Timestamp};
use reqwest::StatusCode;
use serde_json::Value;

async fn remove(owner: &Owner, s: &Server, camera: &str, footage: &str) -> reqwest::Response {
    let path = format!("/v1/cameras/{camera}?footage={footage}");
    owner
        .proven(s, reqwest::Method::DELETE, &path, Vec::new())
        .await
}

/// Logs `camera`'s retention floor version `version`: objects before `keep_from` may go.
async fn log_floor(
    owner: &Owner,
    s: &Server,
    camera: CameraId,
    version: u64,
    keep_from: u64,
) -> reqwest::Response {
    let floor = RetentionFloorBody {
        owner: owner.account.public(),
        camera_id: camera,
        version,
        issued_at: Timestamp(1_795_735_205_000),
        keep_from,
        max_age_days: 30,
    }
    .sign(owner.signer())
    .unwrap();
    owner
        .append(
            s,
            (EntryKind::Retention, camera.0),
            version,
            floor.encoded(),
        )
        .await
}

#[tokio::test]
async fn keep_and_delete_removal_then_transfer() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let bob = Owner::new(&s, "bob", 2).await;
    let (front, front_id, front_token, front_view) = ana.pair(&s, 3).await;
    let (back, back_id, back_token, back_view) = ana.pair(&s, 4).await;
    let (f1, f1_bytes) = seal(&front, front_id, &front_view, 1, 5000);
    let (b1, b1_bytes) = seal(&back, back_id, &back_view, 1, 7000);
    assert_eq!(
        upload(&s, &front_token, f1, f1_bytes.clone())
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&s, &back_token, b1, b1_bytes.clone()).await.status(),
        StatusCode::CREATED
    );
    let pkg = KeyPackage::seal(
        ana.account.public(),
        back_id,
        1,
        &back_view,
        Recipient {
            account: ana.account.public(),
            key: RecipientKey::Device(ana.device_id),
        },
        &ana.device.hpke.public(),
        &mut rng(5),
    )
    .unwrap();
    assert_eq!(
        ana.proven(&s, reqwest::Method::PUT, "/v1/key-packages", pkg.encode())
            .await
            .status(),
        StatusCode::CREATED
    );

    // The owner must choose; Bob cannot remove Ana's camera.
    assert_eq!(
        remove(&ana, &s, &front_id.to_string(), "maybe")
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        remove(&bob, &s, &front_id.to_string(), "keep")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // Keep: the camera's credential stops, its footage stays listed and downloadable.
    let kept: Value = remove(&ana, &s, &front_id.to_string(), "keep")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(kept["footage"], "keep");
    assert_eq!(kept["objects_deleted"], 0);
    let (f2, f2_bytes) = seal(&front, front_id, &front_view, 2, 5000);
    assert_eq!(
        upload(&s, &front_token, f2, f2_bytes).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let list: Value = ana
        .get(&s, &format!("/v1/cameras/{front_id}/objects"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["objects"].as_array().unwrap().len(), 1);
    assert_eq!(
        ana.get(&s, &format!("/v1/objects/{f1}"))
            .await
            .bytes()
            .await
            .unwrap(),
        f1_bytes
    );

    // Delete: objects, blobs, records and key packages go, with a report.
    let deleted: Value = remove(&ana, &s, &back_id.to_string(), "delete")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(deleted["footage"], "delete");
    assert_eq!(deleted["objects_deleted"], 1);
    assert_eq!(
        deleted["bytes_deleted"].as_u64().unwrap(),
        b1_bytes.len() as u64
    );
    assert_eq!(deleted["key_packages_deleted"], 1);
    assert_eq!(deleted["camera_records_deleted"], 1);
    assert_eq!(
        ana.get(&s, &format!("/v1/objects/{b1}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ana.get(&s, &format!("/v1/cameras/{back_id}/record"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let pkgs: Value = ana.get(&s, "/v1/key-packages").await.json().await.unwrap();
    assert!(pkgs["packages"].as_array().unwrap().is_empty());
    let blob = dir
        .path()
        .join("blobs/objects")
        .join(hex::encode(&b1.0[..1]))
        .join(b1.to_string());
    assert!(!blob.exists(), "the blob itself is gone from disk");
    assert_eq!(
        upload(&s, &back_token, b1, b1_bytes).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Transfer: after a factory reset the camera pairs into Bob's account under a new id;
    // each account sees only its own.
    let (bob_cam, bob_cam_id, bob_cam_token, bob_view) = bob.pair(&s, 6).await;
    let (n1, n1_bytes) = seal(&bob_cam, bob_cam_id, &bob_view, 1, 3000);
    assert_eq!(
        upload(&s, &bob_cam_token, n1, n1_bytes).await.status(),
        StatusCode::CREATED
    );
    let ana_cams: Value = ana.get(&s, "/v1/cameras").await.json().await.unwrap();
    let bob_cams: Value = bob.get(&s, "/v1/cameras").await.json().await.unwrap();
    assert!(
        ana_cams
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["camera_id"] != bob_cam_id.to_string())
    );
    assert_eq!(bob_cams.as_array().unwrap().len(), 1);
    assert_eq!(
        bob.get(&s, &format!("/v1/objects/{f1}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        ana.get(&s, &format!("/v1/objects/{n1}")).await.status(),
        StatusCode::NOT_FOUND
    );

    // The audit log tells Ana what happened, and Bob sees none of it.
    let log: Value = ana.get(&s, "/v1/audit").await.json().await.unwrap();
    let actions: Vec<&str> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "login",
        "roster",
        "pairing-token",
        "camera-registered",
        "camera-record",
        "key-package",
        "camera-removed",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(
        actions.iter().filter(|a| **a == "camera-removed").count(),
        2
    );
    let bob_log: Value = bob.get(&s, "/v1/audit").await.json().await.unwrap();
    assert!(bob_log.as_array().unwrap().iter().all(|e| {
        !e["detail"]
            .as_str()
            .unwrap()
            .contains(&front_id.to_string())
    }));
    let after = log.as_array().unwrap()[2]["id"].as_i64().unwrap();
    let tail: Value = ana
        .get(&s, &format!("/v1/audit?after={after}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        tail.as_array().unwrap().len(),
        log.as_array().unwrap().len() - 3
    );
    s.stop().await;

    let state = open_storage(dir.path()).await;
    assert!(keyhole_server::check::run(&state).await.unwrap().is_clean());
}

/// The server deletes a camera's objects below the floor its owner's device logged, and
/// nothing else; a floor that goes down, or one signed by a device the roster does not list, is
/// refused.
#[tokio::test]
async fn retention_deletes_below_the_logged_floor_only() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let (cam, cam_id, cam_token, view) = ana.pair(&s, 2).await;
    let mut sizes = Vec::new();
    for seq in 1..=6 {
        let (id, bytes) = seal(&cam, cam_id, &view, seq, 10_000);
        sizes.push(bytes.len() as i64);
        assert_eq!(
            upload(&s, &cam_token, id, bytes).await.status(),
            StatusCode::CREATED
        );
    }
    let state = open_storage(dir.path()).await;
    // No floor: nothing goes.
    let swept = keyhole_server::retention::sweep(&state).await.unwrap();
    assert_eq!(swept.unwrap().objects, 0);

    assert_eq!(
        log_floor(&ana, &s, cam_id, 1, 3).await.status(),
        StatusCode::CREATED
    );
    // Down again, or signed by a device the roster does not list: refused.
    let resp = log_floor(&ana, &s, cam_id, 2, 2).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let stranger = DeviceKeys::generate(&mut rng(9));
    let forged = RetentionFloorBody {
        owner: ana.account.public(),
        camera_id: cam_id,
        version: 2,
        issued_at: Timestamp(1_795_735_205_000),
        keep_from: 6,
        max_age_days: 1,
    }
    .sign(SignerKey::Device {
        id: DeviceId([9; 16]),
        key: &stranger.signing,
    })
    .unwrap();
    let subject = (EntryKind::Retention, cam_id.0);
    let entry = ana.next_entry(&s, subject, 2, forged.encoded()).await;
    let resp = ana.post_log(&s, entry.encoded(), forged.encoded()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(
        resp.text().await.unwrap().contains("does not list"),
        "the refusal names the unlisted signer"
    );
    // Devices read the floor the log records.
    let served = ana
        .get(&s, &format!("/v1/cameras/{cam_id}/retention?version=1"))
        .await;
    assert_eq!(served.status(), StatusCode::OK);
    let served = SignedRetentionFloor::decode(&served.bytes().await.unwrap()).unwrap();
    assert_eq!(served.unverified_body().keep_from, 3);

    let swept = keyhole_server::retention::sweep(&state)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(swept.objects, 2);
    assert_eq!(swept.bytes, sizes[0] + sizes[1]);
    let left: Vec<i64> = state
        .meta
        .objects(&cam_id.0, 0, 0..i64::MAX, 100)
        .await
        .unwrap()
        .iter()
        .map(|o| o.sequence)
        .collect();
    assert_eq!(left, vec![3, 4, 5, 6]);
    assert!(keyhole_server::check::run(&state).await.unwrap().is_clean());
    let audit = ana.get(&s, "/v1/audit").await.text().await.unwrap();
    assert!(audit.contains("before sequence 3"), "{audit}");
    s.stop().await;
}
