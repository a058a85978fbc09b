//! Live view through the relay: the camera publishes a sealed session, a device of the account
//! watches and opens it; other accounts and cameras cannot watch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use reqwest::StatusCode;

#[tokio::test]
async fn a_device_watches_a_sealed_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let bob = Owner::new(&s, "bob", 2).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 3).await;

    // The viewer asks first and waits for the camera.
    let watch = ana.watch(&s, camera_id, 20);

    // The camera seals a session and streams it as one request body.
    let prefix = stream_to_viewer(&s, &camera_token, &camera, camera_id, &viewing, watch).await;

    // No session now: a short wait ends in 404. Bob and the camera itself may not watch.
    assert_eq!(
        ana.get(&s, &format!("/v1/cameras/{camera_id}/live?wait_secs=0"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        bob.get(&s, &format!("/v1/cameras/{camera_id}/live?wait_secs=0"))
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let cam = reqwest::Client::new()
        .get(s.url(&format!("/v1/cameras/{camera_id}/live?wait_secs=0")))
        .bearer_auth(&camera_token)
        .send()
        .await
        .unwrap();
    assert_eq!(cam.status(), StatusCode::FORBIDDEN);
    // A session with a forged header is refused.
    let mut forged = prefix.clone();
    forged[60] ^= 1;
    let refused = reqwest::Client::new()
        .put(s.url("/v1/live"))
        .bearer_auth(&camera_token)
        .body(forged)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    s.stop().await;
}
