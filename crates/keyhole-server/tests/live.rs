//! Live view through the relay: the camera publishes a sealed session, a device of the account
//! watches and opens it; other accounts and cameras cannot watch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use futures_util::StreamExt;
use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, PREFIX_LEN, SealParams, Suite,
};
use keyhole_core::live::{FRAME_HEADER_LEN, LiveOpener, LiveSealer};
use keyhole_core::{ObjectId, Timestamp};
use reqwest::StatusCode;

#[tokio::test]
async fn a_device_watches_a_sealed_live_session() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let bob = Owner::new(&s, "bob", 2).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 3).await;

    // The viewer asks first and waits for the camera.
    let watch = {
        let (http, url, token) = (
            ana.http.clone(),
            s.url(&format!("/v1/cameras/{camera_id}/live?wait_secs=20")),
            ana.token.clone(),
        );
        tokio::spawn(async move { http.get(url).bearer_auth(token).send().await.unwrap() })
    };

    // The camera seals a session and streams it as one request body.
    let mut prefix = Vec::new();
    let params = SealParams {
        kind: ObjectKind::Live,
        suite: Suite::ChaCha20Poly1305,
        chunk_log2: DEFAULT_CHUNK_LOG2,
        camera_id,
        object_id: ObjectId([4; 16]),
        epoch: 1,
        sequence: 0,
        previous: ObjectDigest::default(),
        captured_at: Timestamp(1_795_735_205_000),
    };
    let mut sealer =
        LiveSealer::new(params, &viewing.public(), &camera, &mut rng(5), &mut prefix).unwrap();
    let fragments: Vec<Vec<u8>> = (0..5u8)
        .map(|i| vec![i; 1000 + usize::from(i) * 3000])
        .collect();
    let frames: Vec<Vec<u8>> = fragments
        .iter()
        .enumerate()
        .map(|(i, f)| sealer.seal_fragment(f, i == 4).unwrap())
        .collect();
    let (tx, publish) = open_put(s.url("/v1/live"), &camera_token);
    tx.send(prefix.clone()).await.unwrap();

    let resp = watch.await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut stream = resp.bytes_stream();
    let mut got = Vec::new();
    while got.len() < PREFIX_LEN {
        got.extend_from_slice(&stream.next().await.unwrap().unwrap());
    }
    assert_eq!(&got[..PREFIX_LEN], &prefix[..]);
    let mut viewer = LiveOpener::new(&got[..PREFIX_LEN], &camera.public(), &viewing).unwrap();
    got.drain(..PREFIX_LEN);

    // Only now does the camera send frames, so the viewer is certainly subscribed.
    for f in &frames {
        tx.send(f.clone()).await.unwrap();
    }
    drop(tx);
    let mut opened = Vec::new();
    loop {
        while got.len() >= FRAME_HEADER_LEN {
            let len = u32::from_be_bytes(got[8..12].try_into().unwrap()) as usize;
            if got.len() < FRAME_HEADER_LEN + len {
                break;
            }
            let frame: Vec<u8> = got.drain(..FRAME_HEADER_LEN + len).collect();
            opened.push(viewer.open_frame(&frame).unwrap());
        }
        match stream.next().await {
            Some(chunk) => got.extend_from_slice(&chunk.unwrap()),
            None => break,
        }
    }
    assert_eq!(opened.len(), 5);
    assert!(opened.iter().all(|f| f.skipped == 0));
    assert!(opened[4].last);
    let data: Vec<Vec<u8>> = opened.into_iter().map(|f| f.data).collect();
    assert_eq!(data, fragments);
    let published: serde_json::Value = publish.await.unwrap().unwrap().json().await.unwrap();
    assert_eq!(published["frames"], 5);

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
