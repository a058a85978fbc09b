//! Bad input at every API boundary: broken and mistyped JSON, a missing content type, bad query
//! parameters, unknown paths and methods, path-like and malformed ids, oversized bodies, garbage
//! where signed objects belong, expired, reused and unknown pairing tokens. Each is refused with a
//! JSON error naming what was wrong, and nothing stored before is lost or changed.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use keyhole_core::pairing::{PairingCode, RegistrationProof};
use keyhole_core::roster::RosterHash;
use keyhole_core::{CameraId, CameraKey};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// Sends a request and returns its status, error code and message, checking the error is JSON.
async fn refused(
    owner: &Owner,
    s: &Server,
    method: Method,
    path: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (StatusCode, String, String) {
    let mut req = owner
        .http
        .request(method.clone(), s.url(path))
        .bearer_auth(&owner.token);
    // Proven, so requests that need a device's proof are refused for their input alone.
    if method != Method::GET {
        let signed = body.as_ref().map_or(&[][..], |(_, b)| b.as_slice());
        let proof = owner.proof(owner.challenge(s).await, method.as_str(), path, signed);
        req = req.header(keyhole_core::device_proof::HEADER, proof);
    }
    if let Some((content_type, bytes)) = body {
        if !content_type.is_empty() {
            req = req.header("content-type", content_type);
        }
        req = req.body(bytes);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status();
    assert!(
        status.is_client_error(),
        "{path}: expected a refusal, got {status}"
    );
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{path}: error as {content_type:?}"
    );
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap().to_owned(),
        body["message"].as_str().unwrap().to_owned(),
    )
}

const JSON: &str = "application/json";

#[tokio::test]
async fn every_boundary_refuses_bad_input_clearly_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let roster = ana.get(&s, "/v1/roster").await.bytes().await.unwrap();
    let (_, camera_id, camera_token, _) = ana.pair(&s, 2).await;

    // JSON bodies: broken, mistyped, with unknown fields, or not declared as JSON.
    for (path, method) in [
        ("/v1/accounts", Method::POST),
        ("/v1/login", Method::POST),
        ("/v1/pairing-tokens", Method::POST),
    ] {
        let cases: [(&str, &[u8], StatusCode, &str); 4] = [
            (JSON, b"{", StatusCode::BAD_REQUEST, "bad_request"),
            (JSON, b"[1, 2]", StatusCode::BAD_REQUEST, "bad_request"),
            (
                JSON,
                br#"{"username": 5, "max_bytes": "a lot", "token_id": 7}"#,
                StatusCode::BAD_REQUEST,
                "bad_request",
            ),
            (
                "text/plain",
                br#"{"username": "bo"}"#,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
            ),
        ];
        for (content_type, body, status, code) in cases {
            let (got, error, message) = refused(
                &ana,
                &s,
                method.clone(),
                path,
                Some((content_type, body.to_vec())),
            )
            .await;
            assert_eq!((got, error.as_str()), (status, code), "{path}: {message}");
            assert!(!message.is_empty());
        }
    }
    let (status, _, message) = refused(
        &ana,
        &s,
        Method::POST,
        "/v1/accounts",
        Some((
            JSON,
            br#"{"username": "mallory", "password": "long enough!", "admin": true}"#.to_vec(),
        )),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(message.contains("unknown field"), "{message}");

    // Query parameters of the wrong type.
    for path in [
        format!("/v1/cameras/{camera_id}/objects?after=abc"),
        "/v1/audit?limit=-1".to_owned(),
        format!("/v1/cameras/{camera_id}/record?version=first"),
        "/v1/key-packages?recipient=../../etc".to_owned(),
    ] {
        let (status, error, message) = refused(&ana, &s, Method::GET, &path, None).await;
        assert_eq!(
            (status, error.as_str()),
            (StatusCode::BAD_REQUEST, "bad_request"),
            "{path}: {message}"
        );
    }

    // Unknown paths and methods.
    let (status, error, _) = refused(&ana, &s, Method::GET, "/v1/nothing-here", None).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );
    let (status, error, _) = refused(&ana, &s, Method::PATCH, "/v1/roster", None).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );

    // Path-like and malformed ids never reach storage.
    for path in [
        "/v1/objects/..%2F..%2F..%2Fetc%2Fpasswd",
        "/v1/objects/0123456789abcdef0123456789abcde",
        "/v1/objects/0123456789abcdef0123456789abcdeg",
        "/v1/cameras/..%2Fkeyhole.sqlite3/record",
        "/v1/enrollments/..%2F..",
    ] {
        let (status, _, message) = refused(&ana, &s, Method::GET, path, None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(message.contains("32 hex digits"), "{path}: {message}");
    }

    // Dot segments are resolved before routing: they name no route at all.
    let (status, error, _) =
        refused(&ana, &s, Method::GET, "/v1/objects/%2e%2e/%2e%2e/etc", None).await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::NOT_FOUND, "not_found")
    );

    // Oversized bodies are refused before they are read.
    let (status, error, _) = refused(
        &ana,
        &s,
        Method::POST,
        "/v1/log",
        Some(("", vec![0; 64 * 1024 + 1])),
    )
    .await;
    assert_eq!(
        (status, error.as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
    );
    let (status, ..) = refused(
        &ana,
        &s,
        Method::POST,
        "/v1/enrollments",
        Some(("", vec![0; 4096])),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // Garbage where signed or sealed objects belong.
    for (method, path, what) in [
        (Method::POST, "/v1/log".to_owned(), "223-byte entry"),
        (Method::PUT, "/v1/key-packages".to_owned(), "key package"),
        (
            Method::POST,
            "/v1/enrollments".to_owned(),
            "enrollment request",
        ),
    ] {
        let (status, _, message) = refused(
            &ana,
            &s,
            method,
            &path,
            Some(("", b"KHxx\x01garbage".to_vec())),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert!(message.contains(what), "{path}: {message}");
    }
    // A log append: garbage for the entry, then a good entry for a garbage statement.
    let garbage = b"KHxx\x01garbage";
    for (subject, what) in [
        (ROSTER, "not a roster"),
        (camera_record(camera_id), "not a camera record"),
    ] {
        let resp = ana
            .post_log(&s, &[7; keyhole_core::log::ENTRY_LEN], garbage)
            .await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let message = resp.json::<Value>().await.unwrap()["message"].to_string();
        assert!(message.contains("not a log entry"), "{message}");
        let entry = ana.next_entry(&s, subject, 2, garbage).await;
        let resp = ana.post_log(&s, entry.encoded(), garbage).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
        let message = resp.json::<Value>().await.unwrap()["message"].to_string();
        assert!(message.contains(what), "{message}");
    }
    let garbage_object = reqwest::Client::new()
        .put(s.url(&format!("/v1/objects/{}", "ab".repeat(16))))
        .bearer_auth(&camera_token)
        .body(vec![7u8; 5000])
        .send()
        .await
        .unwrap();
    assert_eq!(garbage_object.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        ana.get(&s, &format!("/v1/objects/{}", "ab".repeat(16)))
            .await
            .status(),
        StatusCode::NOT_FOUND,
        "nothing of it was stored"
    );

    // Pairing tokens: out-of-range lifetimes; unknown, reused and expired tokens.
    for ttl in [0, 3601] {
        let (status, _, message) = refused(
            &ana,
            &s,
            Method::POST,
            "/v1/pairing-tokens",
            Some((
                JSON,
                serde_json::to_vec(&json!({"token_id": "cd".repeat(16), "ttl_secs": ttl})).unwrap(),
            )),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("ttl_secs"), "{message}");
    }
    let mut r = rng(3);
    let register = |code: &PairingCode, camera: &CameraKey, id: CameraId| {
        let proof = RegistrationProof::create(code, id, camera);
        reqwest::Client::new()
            .post(s.url(&format!("/v1/pairing-tokens/{}/register", code.token)))
            .body(proof.encode())
            .send()
    };
    let code = PairingCode::new(&s.base, None, ana.account.public(), &mut r).unwrap();
    let camera = CameraKey::generate(&mut r);
    let unknown = register(&code, &camera, CameraId::random(&mut r))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let announce = |code: &PairingCode, ttl: u64| {
        ana.http
            .post(s.url("/v1/pairing-tokens"))
            .bearer_auth(&ana.token)
            .json(&json!({"token_id": code.token.to_string(), "ttl_secs": ttl}))
            .send()
    };
    assert_eq!(
        announce(&code, 600).await.unwrap().status(),
        StatusCode::CREATED
    );
    let first = register(&code, &camera, CameraId::random(&mut r))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = register(
        &code,
        &CameraKey::generate(&mut r),
        CameraId::random(&mut r),
    )
    .await
    .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    let body: Value = again.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("already used"),
        "{body}"
    );
    let short = PairingCode::new(&s.base, None, ana.account.public(), &mut r).unwrap();
    assert_eq!(
        announce(&short, 1).await.unwrap().status(),
        StatusCode::CREATED
    );
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let late = register(&short, &camera, CameraId::random(&mut r))
        .await
        .unwrap();
    assert_eq!(late.status(), StatusCode::CONFLICT);
    let body: Value = late.json().await.unwrap();
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );

    // Nothing was lost or changed: the same roster, the camera still listed, the server well.
    assert_eq!(
        ana.get(&s, "/v1/roster").await.bytes().await.unwrap(),
        roster
    );
    let cameras: Value = ana.get(&s, "/v1/cameras").await.json().await.unwrap();
    assert_eq!(cameras.as_array().unwrap().len(), 2, "{cameras}");
    let v2 = ana.roster(2, ana.roster(1, RosterHash([0; 32])).hash());
    assert_eq!(
        ana.append(&s, ROSTER, 2, v2.encoded()).await.status(),
        StatusCode::CREATED,
        "the roster is still version 1, the log unchanged"
    );
    s.stop().await;
}
