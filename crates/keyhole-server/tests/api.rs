//! The real server on 127.0.0.1:0 with a temporary data folder, driven over HTTP.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use base64::Engine as _;
use common::*;
use keyhole_core::envelope::{ObjectSummary, open_object};
use keyhole_core::key_package::{KeyPackage, Recipient, RecipientKey};
use keyhole_core::log::{ENTRY_LEN, EntryBody, EntryKind, HeadStatement, LogHash};
use keyhole_core::pairing::{PairingCode, RegistrationProof};
use keyhole_core::recovery::{KdfParams, RecoveryBackup, RecoveryPhrase, RecoverySecrets};
use keyhole_core::roster::RosterHash;
use keyhole_core::signer::SignerKey;
use keyhole_core::{
    AccountKey, CameraId, CameraKey, DeviceId, DeviceKeys, HpkeSecretKey, ObjectId, Timestamp,
};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

#[tokio::test]
async fn health_and_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let http = reqwest::Client::new();
    let health: Value = http
        .get(s.url("/health"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");

    let bad = http
        .post(s.url("/v1/accounts"))
        .json(&json!({"username": "x", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(bad).await, "bad_request");
    let short = http
        .post(s.url("/v1/accounts"))
        .json(&json!({"username": "ana", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(short.status(), StatusCode::BAD_REQUEST);
    let unknown_field = http
        .post(s.url("/v1/accounts"))
        .json(&json!({"username": "ana", "password": "correct horse battery", "admin": true}))
        .send()
        .await
        .unwrap();
    assert!(unknown_field.status().is_client_error());
    assert_eq!(
        create_account(&s, &http, "ana").await.status(),
        StatusCode::CREATED
    );
    let dup = create_account(&s, &http, "ana").await;
    assert_eq!(dup.status(), StatusCode::CONFLICT);
    assert_eq!(error_code(dup).await, "conflict");

    let device = DeviceId([1; 16]);
    assert_eq!(
        login(&s, &http, "ana", "wrong password!", &device)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        login(&s, &http, "nobody", "wrong password!", &device)
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let ok = login(&s, &http, "ana", "correct horse battery", &device).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let token = ok.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // The token works for what a joining device may do (no roster lists the device yet), not
    // for more; then logout revokes it.
    assert_eq!(
        http.get(s.url("/v1/log"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let not_enrolled = http
        .get(s.url("/v1/cameras"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(not_enrolled.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(not_enrolled).await, "not_enrolled");
    assert_eq!(
        http.post(s.url("/v1/logout"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        http.get(s.url("/v1/cameras"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        http.get(s.url("/v1/cameras"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        http.get(s.url("/v1/cameras"))
            .bearer_auth("forged")
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::UNAUTHORIZED
    );

    // Rate limiting: ten failures lock the username, even for the right password.
    for _ in 0..10 {
        assert_eq!(
            login(&s, &http, "ana", "wrong password!", &device)
                .await
                .status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let limited = login(&s, &http, "ana", "correct horse battery", &device).await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    s.stop().await;
}

#[tokio::test]
async fn rosters_records_key_packages_and_backup() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let v1 = ana.roster(1, RosterHash([0; 32]));
    assert_eq!(
        ana.get(&s, "/v1/roster").await.bytes().await.unwrap(),
        v1.encoded()
    );
    // Version 1 again, or a rollback, is refused; a forged roster too.
    assert_eq!(
        ana.append(&s, ROSTER, 1, v1.encoded()).await.status(),
        StatusCode::CONFLICT
    );
    let v2 = ana.roster(2, v1.hash());
    assert_eq!(
        ana.append(&s, ROSTER, 2, v2.encoded()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        ana.get(&s, "/v1/roster").await.bytes().await.unwrap(),
        v2.encoded()
    );
    assert_eq!(
        ana.get(&s, "/v1/roster?version=1")
            .await
            .bytes()
            .await
            .unwrap(),
        v1.encoded()
    );
    let stranger = AccountKey::generate(&mut rng(9));
    let mut forged = v2.unverified_body().clone();
    forged.version = 3;
    forged.account = stranger.public();
    let forged = forged.sign(SignerKey::Account(&stranger)).unwrap();
    let resp = ana.append(&s, ROSTER, 3, forged.encoded()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        ana.append(&s, ROSTER, 3, b"garbage").await.status(),
        StatusCode::BAD_REQUEST
    );
    // Rosters are written only with their log entry.
    assert_eq!(
        ana.put(&s, "/v1/roster", v2.encoded().to_vec())
            .await
            .status(),
        StatusCode::METHOD_NOT_ALLOWED
    );

    let (_camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    // The camera reads its own record; the owner too.
    let record = reqwest::Client::new()
        .get(s.url(&format!("/v1/cameras/{camera_id}/record")))
        .bearer_auth(&camera_token)
        .send()
        .await
        .unwrap();
    assert_eq!(record.status(), StatusCode::OK);
    assert_eq!(
        ana.get(&s, &format!("/v1/cameras/{camera_id}/record"))
            .await
            .status(),
        StatusCode::OK
    );
    let cams: Value = ana.get(&s, "/v1/cameras").await.json().await.unwrap();
    assert_eq!(cams[0]["camera_id"], camera_id.to_string());

    let recipient = Recipient {
        account: ana.account.public(),
        key: RecipientKey::Device(ana.device_id),
    };
    let pkg = KeyPackage::seal(
        ana.account.public(),
        camera_id,
        1,
        &viewing,
        recipient,
        &ana.device.hpke.public(),
        &mut rng(3),
    )
    .unwrap();
    assert_eq!(
        ana.proven(&s, reqwest::Method::PUT, "/v1/key-packages", pkg.encode())
            .await
            .status(),
        StatusCode::CREATED
    );
    let got: Value = ana.get(&s, "/v1/key-packages").await.json().await.unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(got["packages"][0].as_str().unwrap())
        .unwrap();
    assert_eq!(
        KeyPackage::decode(&bytes)
            .unwrap()
            .open(&ana.device.hpke, &viewing.public())
            .unwrap()
            .epoch,
        1
    );

    let phrase = RecoveryPhrase::generate(&mut rng(4));
    let secrets = RecoverySecrets {
        account_key: AccountKey::from_seed(&ana.account.seed()),
        recovery_key: HpkeSecretKey::from_bytes(&[0x40; 32]),
    };
    let backup = RecoveryBackup::seal(&phrase, &secrets, KdfParams::MINIMUM, &mut rng(5)).unwrap();
    assert_eq!(
        ana.proven(
            &s,
            reqwest::Method::PUT,
            "/v1/recovery-backup",
            backup.encode()
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    let fetched = ana
        .get(&s, "/v1/recovery-backup")
        .await
        .bytes()
        .await
        .unwrap();
    assert!(
        RecoveryBackup::decode(&fetched)
            .unwrap()
            .open(&phrase)
            .is_ok()
    );
    s.stop().await;
}

#[tokio::test]
async fn the_account_log_takes_only_its_next_entry_with_its_statement() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let (_camera, _, camera_token, _) = ana.pair(&s, 2).await;
    let head = ana.log_head(&s).await.unwrap();
    assert_eq!(
        head.sequence(),
        2,
        "roster version 1, then the camera record"
    );
    let v1 = ana.roster(1, RosterHash([0; 32]));
    let v2 = ana.roster(2, v1.hash());
    let next = |body: EntryBody| body.sign(ana.signer()).unwrap();
    let outsider = DeviceKeys::generate(&mut rng(6));
    let good = head.successor(EntryKind::Roster, [0; 16], 2, v2.encoded(), Timestamp(5));

    let refused = [
        // Not the next entry: the same sequence again, a gap, another predecessor.
        (
            next(EntryBody {
                sequence: 2,
                ..good.clone()
            }),
            v2.encoded().to_vec(),
            StatusCode::CONFLICT,
            "does not follow the stored head (entry 2)",
        ),
        (
            next(EntryBody {
                sequence: 4,
                ..good.clone()
            }),
            v2.encoded().to_vec(),
            StatusCode::CONFLICT,
            "does not follow",
        ),
        (
            next(EntryBody {
                previous: LogHash([9; 32]),
                ..good.clone()
            }),
            v2.encoded().to_vec(),
            StatusCode::CONFLICT,
            "does not follow",
        ),
        // Recording other bytes, or another version, than the statement sent.
        (
            next(good.clone()),
            v1.encoded().to_vec(),
            StatusCode::BAD_REQUEST,
            "does not record the statement",
        ),
        (
            next(EntryBody {
                version: 3,
                ..good.clone()
            }),
            v2.encoded().to_vec(),
            StatusCode::BAD_REQUEST,
            "records version 3",
        ),
        // Signed by another key.
        (
            EntryBody {
                account: AccountKey::generate(&mut rng(5)).public(),
                ..good.clone()
            }
            .sign(SignerKey::Account(&AccountKey::generate(&mut rng(5))))
            .unwrap(),
            v2.encoded().to_vec(),
            StatusCode::BAD_REQUEST,
            "log entry refused",
        ),
        // Signed by a device the roster in force does not list (revoked, or never enrolled).
        (
            good.clone()
                .sign(SignerKey::Device {
                    id: DeviceId([0x42; 16]),
                    key: &outsider.signing,
                })
                .unwrap(),
            v2.encoded().to_vec(),
            StatusCode::BAD_REQUEST,
            "which the roster in force does not list",
        ),
    ];
    for (entry, statement, status, why) in refused {
        let resp = ana.post_log(&s, entry.encoded(), &statement).await;
        assert_eq!(resp.status(), status, "{why}");
        let message = resp.json::<Value>().await.unwrap()["message"].to_string();
        assert!(message.contains(why), "{message}");
    }
    assert_eq!(ana.log_head(&s).await.unwrap(), head, "nothing was stored");
    assert_eq!(
        ana.get(&s, "/v1/roster").await.bytes().await.unwrap(),
        v1.encoded()
    );

    let resp = ana.post_log(&s, next(good).encoded(), v2.encoded()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(ana.log_head(&s).await.unwrap().sequence(), 3);
    assert_eq!(
        ana.get(&s, "/v1/roster").await.bytes().await.unwrap(),
        v2.encoded()
    );
    let page = ana.get(&s, "/v1/log?after=1&limit=1").await;
    assert_eq!(page.bytes().await.unwrap().len(), ENTRY_LEN);
    assert_eq!(
        ana.get(&s, "/v1/log?limit=1001").await.status(),
        StatusCode::BAD_REQUEST
    );
    let audit: Value = ana.get(&s, "/v1/audit").await.json().await.unwrap();
    assert!(
        audit.as_array().unwrap().iter().any(|e| e["detail"]
            == format!(
                "log entry 3 by device {}: roster version 2 (1 devices)",
                ana.device_id
            )),
        "{audit}"
    );

    // Head statements: the caller's own, signed by the key the roster lists for it.
    let statement = |device: DeviceId, key: &keyhole_core::DeviceKeys| {
        HeadStatement {
            account: ana.account.public(),
            device,
            sequence: 3,
            head: LogHash([3; 32]),
            seen_at: Timestamp(6),
            marks: Vec::new(),
        }
        .sign(&key.signing)
    };
    let own = statement(ana.device_id, &ana.device);
    let stranger = keyhole_core::DeviceKeys::generate(&mut rng(6));
    for (body, why) in [
        (statement(DeviceId([7; 16]), &ana.device), "its own"),
        (statement(ana.device_id, &stranger), "log head refused"),
        (own[..100].to_vec(), "not a log head"),
    ] {
        let resp = ana.put(&s, "/v1/log/heads", body).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{why}");
        let message = resp.json::<Value>().await.unwrap()["message"].to_string();
        assert!(message.contains(why), "{message}");
    }
    assert!(
        ana.get(&s, "/v1/log/heads")
            .await
            .bytes()
            .await
            .unwrap()
            .is_empty()
    );
    let resp = ana.put(&s, "/v1/log/heads", own.clone()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_eq!(
        ana.get(&s, "/v1/log/heads").await.bytes().await.unwrap(),
        own
    );

    // Cameras neither read nor write the log.
    for path in ["/v1/log", "/v1/log/heads"] {
        let resp = reqwest::Client::new()
            .get(s.url(path))
            .bearer_auth(&camera_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
    s.stop().await;
}

#[tokio::test]
async fn pairing_tokens_are_one_time_and_proofs_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let mut r = rng(7);
    let code = PairingCode::new(&s.base, None, ana.account.public(), &mut r).unwrap();
    let token_req = json!({"token_id": code.token.to_string(), "ttl_secs": 600});
    let http = reqwest::Client::new();
    assert_eq!(
        http.post(s.url("/v1/pairing-tokens"))
            .bearer_auth(&ana.token)
            .json(&token_req)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::CREATED
    );
    let too_long = json!({"token_id": hex::encode([9u8; 16]), "ttl_secs": 100_000});
    assert_eq!(
        http.post(s.url("/v1/pairing-tokens"))
            .bearer_auth(&ana.token)
            .json(&too_long)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    let proof = RegistrationProof::create(&code, CameraId([5; 16]), &CameraKey::generate(&mut r));
    let register = |body: Vec<u8>, token: String| {
        let http = http.clone();
        let url = s.url(&format!("/v1/pairing-tokens/{token}/register"));
        async move { http.post(url).body(body).send().await.unwrap() }
    };
    assert_eq!(
        register(b"junk".to_vec(), code.token.to_string())
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        register(proof.encode(), hex::encode([8u8; 16]))
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        register(proof.encode(), code.token.to_string())
            .await
            .status(),
        StatusCode::CREATED
    );
    assert_eq!(
        register(proof.encode(), code.token.to_string())
            .await
            .status(),
        StatusCode::CONFLICT,
        "tokens are one-time"
    );
    let unknown = PairingCode::new(&s.base, None, ana.account.public(), &mut r).unwrap();
    let p2 = RegistrationProof::create(&unknown, CameraId([6; 16]), &CameraKey::generate(&mut r));
    assert_eq!(
        register(p2.encode(), unknown.token.to_string())
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    s.stop().await;
}

#[tokio::test]
async fn objects_upload_list_download_and_authorization() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let bob = Owner::new(&s, "bob", 2).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 3).await;
    let (bob_camera, bob_camera_id, bob_camera_token, bob_viewing) = bob.pair(&s, 4).await;

    let (id1, clip1) = seal(&camera, camera_id, &viewing, 1, 300_000);
    let resp = upload(&s, &camera_token, id1, clip1.clone()).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let first: Value = resp.json().await.unwrap();
    // A retry (the camera did not see the answer) is acknowledged, not duplicated.
    let again = upload(&s, &camera_token, id1, clip1.clone()).await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["created"], false);
    assert_eq!(again["digest"].as_str().unwrap().len(), 64);
    assert_eq!(again["digest"], first["digest"]);
    let (id2, clip2) = seal(&camera, camera_id, &viewing, 2, 10);
    assert_eq!(
        upload(&s, &camera_token, id2, clip2.clone()).await.status(),
        StatusCode::CREATED
    );

    // Refused uploads: a truncated object, another camera's object, a mislabelled id, garbage,
    // and a device credential.
    let (id3, clip3) = seal(&camera, camera_id, &viewing, 3, 200_000);
    let resp = upload(&s, &camera_token, id3, clip3[..clip3.len() - 1000].to_vec()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let (bid, bclip) = seal(&bob_camera, bob_camera_id, &bob_viewing, 1, 1000);
    assert_eq!(
        upload(&s, &camera_token, bid, bclip.clone()).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        upload(&s, &camera_token, ObjectId([7; 16]), clip2.clone())
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        upload(&s, &camera_token, ObjectId([7; 16]), vec![0; 50])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        upload(&s, &ana.token, id3, clip3.clone()).await.status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        upload(&s, &bob_camera_token, bid, bclip).await.status(),
        StatusCode::CREATED
    );

    // Listing shows only committed objects, in sequence order, with pagination.
    let list: Value = ana
        .get(&s, &format!("/v1/cameras/{camera_id}/objects"))
        .await
        .json()
        .await
        .unwrap();
    let seqs: Vec<i64> = list["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(list["objects"][0]["object_id"], id1.to_string());
    assert!(list["next_after"].is_null());
    // Each listed object carries its summary, which verifies under the camera's key to the
    // digest the upload answered with.
    let listed = &list["objects"][0];
    let summary = ObjectSummary::decode(
        &base64::engine::general_purpose::STANDARD
            .decode(listed["summary"].as_str().unwrap())
            .unwrap(),
    )
    .unwrap();
    let verified = summary
        .verify(listed["size"].as_u64().unwrap(), &camera.public())
        .unwrap();
    assert_eq!(
        verified.object.digest.to_string(),
        first["digest"].as_str().unwrap()
    );
    // A listed size that implies one more chunk than the camera signed does not verify.
    let one_more_chunk = verified.object.header.chunk_size() as u64 + 16;
    assert!(
        summary
            .verify(
                listed["size"].as_u64().unwrap() + one_more_chunk,
                &camera.public()
            )
            .is_err()
    );
    let page: Value = ana
        .get(&s, &format!("/v1/cameras/{camera_id}/objects?limit=1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["objects"].as_array().unwrap().len(), 1);
    assert_eq!(page["next_after"], 1);
    let page2: Value = ana
        .get(&s, &format!("/v1/cameras/{camera_id}/objects?after=1"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page2["objects"][0]["sequence"], 2);

    // Download whole, then ranges; the bytes open with the viewing key.
    let whole = ana.get(&s, &format!("/v1/objects/{id1}")).await;
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await.unwrap();
    assert_eq!(whole, clip1);
    assert!(open_object(&whole, &camera.public(), &viewing).is_ok());
    let part = ana
        .http
        .get(s.url(&format!("/v1/objects/{id1}")))
        .bearer_auth(&ana.token)
        .header("Range", "bytes=1000-1999")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 1000-1999/{}", clip1.len())
    );
    assert_eq!(part.bytes().await.unwrap(), clip1[1000..2000]);
    let tail = ana
        .http
        .get(s.url(&format!("/v1/objects/{id1}")))
        .bearer_auth(&ana.token)
        .header("Range", "bytes=-64")
        .send()
        .await
        .unwrap();
    assert_eq!(tail.bytes().await.unwrap(), clip1[clip1.len() - 64..]);
    let beyond = ana
        .http
        .get(s.url(&format!("/v1/objects/{id1}")))
        .bearer_auth(&ana.token)
        .header("Range", format!("bytes={}-", clip1.len()))
        .send()
        .await
        .unwrap();
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    // Bob sees nothing of Ana's; Ana's camera cannot list or download.
    assert_eq!(
        bob.get(&s, &format!("/v1/cameras/{camera_id}/objects"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bob.get(&s, &format!("/v1/objects/{id1}")).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bob.get(&s, &format!("/v1/cameras/{camera_id}/record"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bob.proven(&s, Method::DELETE, &format!("/v1/objects/{id1}"), vec![])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let cam_list = reqwest::Client::new()
        .get(s.url(&format!("/v1/cameras/{camera_id}/objects")))
        .bearer_auth(&camera_token)
        .send()
        .await
        .unwrap();
    assert_eq!(cam_list.status(), StatusCode::FORBIDDEN);

    // Deletion: the token alone is not enough, nor a proof for another request or one used
    // already; the device's proof of this request is.
    let delete = format!("/v1/objects/{id2}");
    let unproven = ana
        .http
        .delete(s.url(&delete))
        .bearer_auth(&ana.token)
        .send()
        .await
        .unwrap();
    assert_eq!(unproven.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(unproven).await, "device_proof");
    let challenge = ana.challenge(&s).await;
    let for_other = ana.proof(challenge, "DELETE", &format!("/v1/objects/{id1}"), b"");
    let send = |proof: String| {
        ana.http
            .delete(s.url(&delete))
            .bearer_auth(&ana.token)
            .header(keyhole_core::device_proof::HEADER, proof)
            .send()
    };
    let refused = send(for_other).await.unwrap();
    assert_eq!(error_code(refused).await, "device_proof");
    // The refused attempt used the challenge up.
    let reused = send(ana.proof(challenge, "DELETE", &delete, b""))
        .await
        .unwrap();
    assert_eq!(error_code(reused).await, "device_proof");
    assert_eq!(
        ana.proven(&s, Method::DELETE, &delete, vec![])
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        ana.get(&s, &format!("/v1/objects/{id2}")).await.status(),
        StatusCode::NOT_FOUND
    );

    // A listed device's credentials are not revoked (the roster goes first); a credential
    // logged out is refused, and the device logs in again with its own key.
    let revoke = format!("/v1/devices/{}", ana.device_id);
    assert_eq!(
        ana.proven(&s, Method::DELETE, &revoke, vec![])
            .await
            .status(),
        StatusCode::CONFLICT
    );
    let logout = ana
        .http
        .post(s.url("/v1/logout"))
        .bearer_auth(&ana.token)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        ana.get(&s, "/v1/cameras").await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = ana.device_login(&s).await;
    assert_eq!(again.status(), StatusCode::OK);
    let token = again.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let cameras = ana
        .http
        .get(s.url("/v1/cameras"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(cameras.status(), StatusCode::OK);

    // Everything survives a restart, and storage checks clean.
    s.stop().await;
    let s = Server::start(dir.path()).await;
    let relogin = login(
        &s,
        &bob.http,
        "ana",
        "correct horse battery",
        &DeviceId([3; 16]),
    )
    .await;
    let token = relogin.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // A password login is for a device no roster lists: it reads no footage.
    let refused = bob
        .http
        .get(s.url(&format!("/v1/objects/{id1}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    s.stop().await;
    let state = open_storage(dir.path()).await;
    let report = keyhole_server::check::run(&state).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.objects, 2);
    // A lost blob and a stray one are both reported.
    let blob = dir
        .path()
        .join("blobs/objects")
        .join(hex::encode(&id1.0[..1]))
        .join(id1.to_string());
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(
        dir.path()
            .join("blobs/objects")
            .join(hex::encode(&id1.0[..1]))
            .join(hex::encode([0xee; 16])),
        b"x",
    )
    .unwrap();
    // A blob altered in place is reported: it no longer verifies to its summary.
    let blob2 = dir
        .path()
        .join("blobs/objects")
        .join(hex::encode(&bid.0[..1]))
        .join(bid.to_string());
    let mut bytes = std::fs::read(&blob2).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&blob2, bytes).unwrap();
    let report = keyhole_server::check::run(&state).await.unwrap();
    assert_eq!(report.missing_blobs, vec![id1.to_string()]);
    assert_eq!(report.corrupt_blobs, vec![bid.to_string()]);
    assert_eq!(report.orphan_blobs, vec![hex::encode([0xee; 16])]);
}

#[tokio::test]
async fn metrics_count_uploads_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    let (id, clip) = seal(&camera, camera_id, &viewing, 1, 1000);
    assert_eq!(
        upload(&s, &camera_token, id, clip.clone()).await.status(),
        StatusCode::CREATED
    );
    assert_eq!(
        upload(&s, &camera_token, id, clip.clone()).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        upload(&s, &camera_token, ObjectId([1; 16]), vec![0; 300])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let text = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "keyhole_objects_stored_total 1".to_owned(),
        format!("keyhole_object_bytes_stored_total {}", clip.len()),
        "keyhole_uploads_repeated_total 1".to_owned(),
        "keyhole_uploads_refused_total 1".to_owned(),
    ] {
        assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
    }
    assert!(text.contains("# TYPE keyhole_downloads_total counter"));
    s.stop().await;
}

#[tokio::test]
async fn listing_filters_by_capture_time() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    // seal() stamps sequence n at 1_795_735_205_000 + n ms.
    for seq in 1..=5 {
        let (id, clip) = seal(&camera, camera_id, &viewing, seq, 100);
        assert_eq!(
            upload(&s, &camera_token, id, clip).await.status(),
            StatusCode::CREATED
        );
    }
    let t = 1_795_735_205_000u64;
    let list: Value = ana
        .get(
            &s,
            &format!(
                "/v1/cameras/{camera_id}/objects?since={}&until={}",
                t + 2,
                t + 4
            ),
        )
        .await
        .json()
        .await
        .unwrap();
    let seqs: Vec<i64> = list["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, vec![2, 3]);
    s.stop().await;
}

fn batch(objects: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for o in objects {
        body.extend_from_slice(&u32::try_from(o.len()).unwrap().to_be_bytes());
        body.extend_from_slice(o);
    }
    body
}

#[tokio::test]
async fn batch_uploads_store_each_object_as_a_single_upload_would() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    let (_, _, other_token, _) = ana.pair(&s, 3).await;
    let (id1, clip1) = seal(&camera, camera_id, &viewing, 1, 5000);
    let (id2, clip2) = seal(&camera, camera_id, &viewing, 2, 300);
    let post = |token: &str, body: Vec<u8>| {
        reqwest::Client::new()
            .post(s.url("/v1/objects"))
            .bearer_auth(token)
            .body(body)
            .send()
    };
    // Another camera cannot store this camera's objects.
    let resp = post(&other_token, batch(&[&clip1])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // A truncated batch, and an altered object, store nothing.
    let mut cut = batch(&[&clip1, &clip2]);
    cut.truncate(cut.len() - 10);
    assert_eq!(
        post(&camera_token, cut).await.unwrap().status(),
        StatusCode::BAD_REQUEST
    );
    let mut altered = clip2.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert_eq!(
        post(&camera_token, batch(&[&altered]))
            .await
            .unwrap()
            .status(),
        StatusCode::BAD_REQUEST
    );
    // Too large is refused before reading.
    let resp = post(&camera_token, vec![0; (8 << 20) + 1]).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // The clip and its event in one request; a retry stores nothing twice.
    let resp = post(&camera_token, batch(&[&clip1, &clip2])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["objects"][0]["object_id"], id1.to_string());
    assert_eq!(body["objects"][1]["created"], true);
    let resp = post(&camera_token, batch(&[&clip1, &clip2])).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        upload(&s, &camera_token, id2, clip2.clone()).await.status(),
        StatusCode::OK
    );
    let listed: Value = ana
        .get(&s, &format!("/v1/cameras/{camera_id}/objects"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["objects"].as_array().unwrap().len(), 2);
    let stored = ana.get(&s, &format!("/v1/objects/{id1}")).await;
    assert_eq!(stored.bytes().await.unwrap(), clip1);
    s.stop().await;
}
