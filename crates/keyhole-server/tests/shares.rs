//! Sharing a camera with another account over HTTP: the member must accept shares from the owner
//! before the owner may read its roster or name it; a member may list, download and read the
//! camera's records and share, never remove or delete; withdrawal and expiry end its access.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use keyhole_core::acceptance::{AcceptanceBody, AcceptedOwner};
use keyhole_core::key_package::{KeyPackage, Recipient, RecipientKey};
use keyhole_core::log::EntryKind;
use keyhole_core::share::{Member, ShareBody, SignedShare};
use keyhole_core::{CameraId, Timestamp};
use reqwest::StatusCode;
use serde_json::Value;

fn share(ana: &Owner, camera: CameraId, version: u64, members: Vec<Member>) -> SignedShare {
    ShareBody {
        owner: ana.account.public(),
        camera_id: camera,
        version,
        issued_at: Timestamp(1_795_735_205_000),
        members,
    }
    .sign(ana.signer())
    .unwrap()
}

fn member(o: &Owner, expires_at: Option<Timestamp>) -> Member {
    Member {
        account: o.account.public(),
        name: "Bo".into(),
        expires_at,
    }
}

async fn status(o: &Owner, s: &Server, path: &str) -> StatusCode {
    o.get(s, path).await.status()
}

#[tokio::test]
async fn members_view_until_withdrawn_and_never_change_anything() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let bo = Owner::new(&s, "bob", 3).await;
    let cy = Owner::new(&s, "cyd", 5).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    let (object_id, sealed) = seal(&camera, camera_id, &viewing, 1, 5000);
    assert_eq!(
        upload(&s, &camera_token, object_id, sealed.clone())
            .await
            .status(),
        StatusCode::CREATED
    );
    let subject = (EntryKind::Share, camera_id.0);
    let objects = format!("/v1/cameras/{camera_id}/objects");
    let object = format!("/v1/objects/{object_id}");

    // Bo reads Ana's key to compare her account code.
    let key: Value = bo
        .get(&s, "/v1/accounts/ana/key")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        key["account_key"],
        hex::encode(ana.account.public().to_bytes())
    );
    assert_eq!(
        status(&bo, &s, "/v1/accounts/nobody/key").await,
        StatusCode::NOT_FOUND
    );

    // Before Bo accepts shares from Ana, she can neither read his roster nor name him.
    assert_eq!(
        status(&ana, &s, "/v1/accounts/bob/roster").await,
        StatusCode::NOT_FOUND
    );
    let v1 = share(&ana, camera_id, 1, vec![member(&bo, None)]);
    let resp = ana.append(&s, subject, 1, v1.encoded()).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    let message = resp.json::<Value>().await.unwrap()["message"].to_string();
    assert!(message.contains("has not accepted shares"), "{message}");
    assert_eq!(status(&bo, &s, &objects).await, StatusCode::NOT_FOUND);

    // Bo accepts shares from Ana in an acceptance statement, through his log. One naming a key
    // no account here has, or signed by another account, is refused.
    let accepts = |version: u64, owners: Vec<AcceptedOwner>| {
        AcceptanceBody {
            account: bo.account.public(),
            version,
            issued_at: Timestamp(1_795_735_205_000),
            owners,
        }
        .sign(bo.signer())
        .unwrap()
    };
    let named = |o: &Owner, name: &str| AcceptedOwner {
        account: o.account.public(),
        name: name.into(),
    };
    let acceptance = (EntryKind::Acceptance, [0; 16]);
    let stranger = AcceptedOwner {
        account: keyhole_core::AccountKey::from_seed(&[9; 32]).public(),
        name: "stranger".into(),
    };
    let resp = bo
        .append(&s, acceptance, 1, accepts(1, vec![stranger]).encoded())
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let forged = AcceptanceBody {
        account: cy.account.public(),
        version: 1,
        issued_at: Timestamp(1_795_735_205_000),
        owners: vec![named(&ana, "ana")],
    }
    .sign(cy.signer())
    .unwrap();
    let resp = bo.append(&s, acceptance, 1, forged.encoded()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let accepted = accepts(1, vec![named(&ana, "ana")]);
    let resp = bo.append(&s, acceptance, 1, accepted.encoded()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        bo.get(&s, "/v1/acceptance").await.bytes().await.unwrap(),
        accepted.encoded()
    );
    assert_eq!(
        ana.get(&s, "/v1/accounts/bob/roster")
            .await
            .bytes()
            .await
            .unwrap(),
        bo.get(&s, "/v1/roster").await.bytes().await.unwrap()
    );
    // Cy did not accept: still hidden from Ana.
    assert_eq!(
        status(&ana, &s, "/v1/accounts/cyd/roster").await,
        StatusCode::NOT_FOUND
    );

    // Shared: Bo lists, downloads, reads the record and the share statement.
    assert_eq!(
        ana.append(&s, subject, 1, v1.encoded()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        object_ids(&list_objects(&s, &bo.token, &camera_id.to_string()).await),
        vec![object_id.to_string()]
    );
    assert_eq!(bo.get(&s, &object).await.bytes().await.unwrap(), sealed);
    assert_eq!(
        status(&bo, &s, &format!("/v1/cameras/{camera_id}/record")).await,
        StatusCode::OK
    );
    assert_eq!(
        bo.get(&s, &format!("/v1/cameras/{camera_id}/share"))
            .await
            .bytes()
            .await
            .unwrap(),
        v1.encoded()
    );
    assert_eq!(status(&cy, &s, &objects).await, StatusCode::NOT_FOUND);
    assert_eq!(status(&cy, &s, &object).await, StatusCode::NOT_FOUND);

    // Ana seals the viewing key to Bo's device; it is stored where his device finds it. A
    // package for Cy, whom the camera is not shared with, is refused.
    let to = |o: &Owner| {
        KeyPackage::seal(
            ana.account.public(),
            camera_id,
            1,
            &viewing,
            Recipient {
                account: o.account.public(),
                key: RecipientKey::Device(o.device_id),
            },
            &o.device.hpke.public(),
            &mut rng(7),
        )
        .unwrap()
        .encode()
    };
    assert_eq!(
        ana.proven(&s, reqwest::Method::PUT, "/v1/key-packages", to(&bo))
            .await
            .status(),
        StatusCode::CREATED
    );
    let packages: Value = bo.get(&s, "/v1/key-packages").await.json().await.unwrap();
    assert_eq!(packages["packages"].as_array().unwrap().len(), 1);
    assert_eq!(
        ana.proven(&s, reqwest::Method::PUT, "/v1/key-packages", to(&cy))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );

    // Bo changes nothing of Ana's: no deleting, removing, writing records or shares, sealing.
    for (method, path) in [
        (reqwest::Method::DELETE, object.clone()),
        (
            reqwest::Method::DELETE,
            format!("/v1/cameras/{camera_id}?footage=delete"),
        ),
    ] {
        let resp = bo.proven(&s, method, &path, Vec::new()).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{path}");
    }
    let bo_share = ShareBody {
        owner: bo.account.public(),
        ..share(&ana, camera_id, 2, vec![]).unverified_body().clone()
    }
    .sign(bo.signer())
    .unwrap();
    assert_eq!(
        bo.append(&s, subject, 2, bo_share.encoded()).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bo.proven(&s, reqwest::Method::PUT, "/v1/key-packages", to(&bo))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        bo.get(&s, &object).await.status(),
        StatusCode::OK,
        "still viewing"
    );

    // Withdrawn: Bo's access ends.
    let v2 = share(&ana, camera_id, 2, vec![]);
    assert_eq!(
        ana.append(&s, subject, 2, v2.encoded()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(status(&bo, &s, &objects).await, StatusCode::NOT_FOUND);
    assert_eq!(status(&bo, &s, &object).await, StatusCode::NOT_FOUND);
    assert_eq!(status(&ana, &s, &object).await, StatusCode::OK);

    // Shared again until a moment already past: no access either.
    let v3 = share(&ana, camera_id, 3, vec![member(&bo, Some(Timestamp(1)))]);
    assert_eq!(
        ana.append(&s, subject, 3, v3.encoded()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(status(&bo, &s, &objects).await, StatusCode::NOT_FOUND);
    let v4 = share(
        &ana,
        camera_id,
        4,
        vec![member(&bo, Some(Timestamp(u64::MAX / 2)))],
    );
    assert_eq!(
        ana.append(&s, subject, 4, v4.encoded()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(status(&bo, &s, &objects).await, StatusCode::OK);

    // Bo no longer accepts shares from Ana: she can no longer read his roster or name him.
    let resp = bo
        .append(&s, acceptance, 2, accepts(2, vec![]).encoded())
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        status(&ana, &s, "/v1/accounts/bob/roster").await,
        StatusCode::NOT_FOUND
    );
    let v5 = share(&ana, camera_id, 5, vec![member(&bo, None)]);
    assert_eq!(
        ana.append(&s, subject, 5, v5.encoded()).await.status(),
        StatusCode::CONFLICT
    );
    s.stop().await;
}

/// The announcement channel tells the owner's and the members' devices of each stored object
/// (camera and sequence, nothing more), and nobody else; a withdrawn share is announced no
/// more. A subscriber's next message after another account's upload being the announcement
/// of its own camera's upload shows the other was not sent to it.
#[tokio::test]
async fn announcements_reach_the_owner_and_members_only() {
    use keyhole_wire::announce::Message;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let bo = Owner::new(&s, "bob", 3).await;
    let cy = Owner::new(&s, "cyd", 5).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    let (bo_camera, bo_camera_id, bo_token, bo_viewing) = bo.pair(&s, 4).await;
    let (cy_camera, cy_camera_id, cy_token, cy_viewing) = cy.pair(&s, 6).await;
    let accepted = AcceptanceBody {
        account: bo.account.public(),
        version: 1,
        issued_at: Timestamp(1_795_735_205_000),
        owners: vec![AcceptedOwner {
            account: ana.account.public(),
            name: "ana".into(),
        }],
    }
    .sign(bo.signer())
    .unwrap();
    let resp = bo
        .append(&s, (EntryKind::Acceptance, [0; 16]), 1, accepted.encoded())
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let subject = (EntryKind::Share, camera_id.0);
    let v1 = share(&ana, camera_id, 1, vec![member(&bo, None)]);
    assert_eq!(
        ana.append(&s, subject, 1, v1.encoded()).await.status(),
        StatusCode::CREATED
    );

    let (mut to_ana, mut to_bo, mut to_cy) = (
        Announcements::open(&ana, &s).await,
        Announcements::open(&bo, &s).await,
        Announcements::open(&cy, &s).await,
    );
    let stored = |camera: CameraId, sequence: u64| {
        Some(Message::Objects {
            camera: camera.0,
            sequence,
        })
    };
    let (id, sealed) = seal(&camera, camera_id, &viewing, 1, 5000);
    assert_eq!(
        upload(&s, &camera_token, id, sealed).await.status(),
        StatusCode::CREATED
    );
    let (id, sealed) = seal(&cy_camera, cy_camera_id, &cy_viewing, 1, 5000);
    assert_eq!(
        upload(&s, &cy_token, id, sealed).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(to_ana.next().await, stored(camera_id, 1));
    assert_eq!(to_bo.next().await, stored(camera_id, 1), "a member is told");
    assert_eq!(
        to_cy.next().await,
        stored(cy_camera_id, 1),
        "another account is not told of Ana's camera"
    );

    // Withdrawn: Bo is told of his own camera, no more of Ana's.
    let v2 = share(&ana, camera_id, 2, vec![]);
    assert_eq!(
        ana.append(&s, subject, 2, v2.encoded()).await.status(),
        StatusCode::CREATED
    );
    let (id, sealed) = seal(&camera, camera_id, &viewing, 2, 5000);
    assert_eq!(
        upload(&s, &camera_token, id, sealed).await.status(),
        StatusCode::CREATED
    );
    let (id, sealed) = seal(&bo_camera, bo_camera_id, &bo_viewing, 1, 5000);
    assert_eq!(
        upload(&s, &bo_token, id, sealed).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(to_ana.next().await, stored(camera_id, 2));
    assert_eq!(to_bo.next().await, stored(bo_camera_id, 1));

    // A camera's credential has no channel.
    let refused = reqwest::Client::new()
        .get(s.url("/v1/announcements"))
        .bearer_auth(&camera_token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

/// A device whose credential ends is told nothing more: its announcement channel ends at the
/// next keep-alive (every second here), when the server checks the credential again.
#[tokio::test]
async fn an_announcement_channel_ends_with_its_credential() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(keyhole_server::Config {
        data_dir: dir.path().to_owned(),
        insecure_http: true,
        keep_alive_secs: 1,
        ..keyhole_server::Config::default()
    })
    .await;
    let ana = Owner::new(&s, "ana", 1).await;
    let mut channel = Announcements::open(&ana, &s).await;
    let out = ana
        .http
        .post(s.url("/v1/logout"))
        .bearer_auth(&ana.token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(20), channel.next())
        .await
        .expect("the channel ends within 20 keep-alives");
    assert_eq!(ended, None);
}
