//! The enrollment relay (PROTOCOL section 14) over HTTP: who may send which message, in which
//! order, once, and what the server refuses.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use base64::Engine as _;
use common::*;
use keyhole_core::enrollment::{DeviceGrant, Joining, answer};
use keyhole_core::{DeviceId, DeviceKeys};
use reqwest::StatusCode;
use serde_json::Value;

struct Device {
    id: DeviceId,
    token: String,
    http: reqwest::Client,
}

impl Device {
    async fn log_in(s: &Server, name: &str, id: DeviceId) -> Self {
        let http = reqwest::Client::new();
        let resp = login(s, &http, name, "correct horse battery", &id).await;
        assert_eq!(resp.status(), StatusCode::OK);
        let token = resp.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned();
        Self { id, token, http }
    }

    async fn send(&self, method: reqwest::Method, url: String, body: Vec<u8>) -> reqwest::Response {
        self.http
            .request(method, url)
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn messages_in_order_once_each_from_the_right_device() {
    use reqwest::Method;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let owner = Owner::new(&s, "ana", 1).await;
    let approver = Device {
        id: owner.device_id,
        token: owner.token.clone(),
        http: owner.http.clone(),
    };
    let mut r = rng(2);
    let new = Device::log_in(&s, "ana", DeviceId::random(&mut r)).await;
    let keys = DeviceKeys::generate(&mut r);
    let joining = Joining::new(owner.account.public(), new.id, "tablet", &keys, &mut r).unwrap();
    let request = joining.request().encode();

    // A request for another device than the caller's, and garbage, are refused.
    let other = Joining::new(
        owner.account.public(),
        DeviceId([7; 16]),
        "x",
        &keys,
        &mut r,
    )
    .unwrap()
    .request()
    .encode();
    let resp = new
        .send(Method::POST, s.url("/v1/enrollments"), other)
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = new
        .send(
            Method::POST,
            s.url("/v1/enrollments"),
            b"KHER\x01junk".to_vec(),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);

    let resp = new
        .send(Method::POST, s.url("/v1/enrollments"), request.clone())
        .await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.unwrap()["enrollment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let step = |name: &str| s.url(&format!("/v1/enrollments/{id}/{name}"));

    // The approving device sees it.
    let listed: Value = approver
        .send(Method::GET, s.url("/v1/enrollments"), vec![])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(
        b64.decode(listed[0]["request"].as_str().unwrap()).unwrap(),
        request
    );

    // Wrong sender, wrong order, wrong size.
    let n_a = answer(&mut r);
    assert_eq!(
        new.send(Method::PUT, step("answer"), n_a.to_vec())
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        approver
            .send(Method::PUT, step("reveal"), vec![0; 32])
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    let resp = new.send(Method::PUT, step("reveal"), vec![0; 32]).await;
    assert_eq!(resp.status(), StatusCode::CONFLICT);
    assert_eq!(
        approver
            .send(Method::PUT, step("answer"), vec![0; 31])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        approver
            .send(Method::PUT, step("nonsense"), vec![0; 32])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // The exchange.
    assert_eq!(
        approver
            .send(Method::PUT, step("answer"), n_a.to_vec())
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let resp = approver
        .send(Method::PUT, step("answer"), vec![1; 32])
        .await;
    assert_eq!(
        resp.status(),
        StatusCode::CONFLICT,
        "an answer is written once"
    );
    let (n_j, transcript) = joining.reveal(&n_a);
    assert_eq!(
        new.send(Method::PUT, step("reveal"), n_j.to_vec())
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        approver
            .send(Method::PUT, step("grant"), vec![0; 85])
            .await
            .status(),
        StatusCode::BAD_REQUEST
    );
    let grant = DeviceGrant::seal(2, joining.request(), &transcript, &mut r).unwrap();
    assert_eq!(
        approver
            .send(Method::PUT, step("grant"), grant.encode())
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    let seen: Value = new
        .send(Method::GET, s.url(&format!("/v1/enrollments/{id}")), vec![])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        b64.decode(seen["grant"].as_str().unwrap()).unwrap(),
        grant.encode()
    );
    assert_eq!(seen["answer"], b64.encode(n_a));
    assert_eq!(seen["reveal"], b64.encode(n_j));

    // Closed: no longer listed, no further steps.
    let close = s.url(&format!("/v1/enrollments/{id}"));
    assert_eq!(
        new.send(Method::DELETE, close.clone(), vec![])
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        new.send(Method::DELETE, close, vec![]).await.status(),
        StatusCode::NOT_FOUND
    );
    let listed: Value = approver
        .send(Method::GET, s.url("/v1/enrollments"), vec![])
        .await
        .json()
        .await
        .unwrap();
    assert!(listed.as_array().unwrap().is_empty());

    // Another account sees none of it.
    let _stranger = Owner::new(&s, "bob", 3).await;
    let bob = Device::log_in(&s, "bob", DeviceId::random(&mut r)).await;
    assert_eq!(
        bob.send(Method::GET, s.url(&format!("/v1/enrollments/{id}")), vec![])
            .await
            .status(),
        StatusCode::NOT_FOUND
    );

    // At most four wait at once.
    for n in 0..5u8 {
        let device = Device::log_in(&s, "ana", DeviceId([n + 0x40; 16])).await;
        let request = Joining::new(owner.account.public(), device.id, "spam", &keys, &mut r)
            .unwrap()
            .request()
            .encode();
        let resp = device
            .send(Method::POST, s.url("/v1/enrollments"), request)
            .await;
        let expected = if n < 4 {
            StatusCode::CREATED
        } else {
            StatusCode::CONFLICT
        };
        assert_eq!(resp.status(), expected, "request {n}");
    }
    s.stop().await;
}
