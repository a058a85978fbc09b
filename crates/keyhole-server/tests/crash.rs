//! SIGKILL the server in the middle of many concurrent uploads, restart it, and check that every
//! acknowledged object is intact, no partial object is listed, and retries never duplicate.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use futures_util::StreamExt;
use keyhole_core::envelope::{ObjectVerifier, PREFIX_LEN};
use keyhole_core::{CameraPublicKey, ObjectId};
use reqwest::StatusCode;

const UPLOADS: u64 = 48;
/// Sizes grow with the sequence number, so completions are spread out and the kill lands
/// while the larger uploads are still being sent.
fn size(seq: u64) -> usize {
    200_000 + usize::try_from(seq).unwrap() * 40_000
}

/// Streams `body` in 16 KiB pieces, yielding between them, so uploads overlap and the kill
/// lands while many are half-sent.
fn paced(body: &[u8]) -> reqwest::Body {
    let pieces: Vec<Vec<u8>> = body.chunks(16 * 1024).map(<[u8]>::to_vec).collect();
    let stream = futures_util::stream::iter(pieces).then(|p| async move {
        tokio::task::yield_now().await;
        Ok::<_, std::io::Error>(p)
    });
    reqwest::Body::wrap_stream(stream)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_uploads_loses_no_acknowledged_object() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::spawn(dir.path());
    let ana = Owner::new(&s, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    let clips: Vec<(ObjectId, Vec<u8>)> = (1..=UPLOADS)
        .map(|seq| seal(&camera, camera_id, &viewing, seq, size(seq)))
        .collect();

    let acked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let done = Arc::new(AtomicUsize::new(0));
    let (kill_tx, kill_rx) = tokio::sync::oneshot::channel::<()>();
    let kill_tx = Arc::new(std::sync::Mutex::new(Some(kill_tx)));
    let mut tasks = Vec::new();
    for (id, body) in clips.clone() {
        let (url, token) = (s.url(&format!("/v1/objects/{id}")), camera_token.clone());
        let (acked, done, kill_tx) = (acked.clone(), done.clone(), kill_tx.clone());
        tasks.push(tokio::spawn(async move {
            let resp = reqwest::Client::new()
                .put(url)
                .bearer_auth(token)
                .body(paced(&body))
                .send()
                .await;
            if let Ok(r) = resp
                && r.status().is_success()
            {
                acked.lock().unwrap().push(id);
            }
            // Kill once a third of the uploads have been answered.
            if done.fetch_add(1, Ordering::SeqCst) + 1 == (UPLOADS / 3) as usize
                && let Some(tx) = kill_tx.lock().unwrap().take()
            {
                let _ = tx.send(());
            }
        }));
    }
    kill_rx.await.unwrap();
    s.kill();
    for t in tasks {
        t.await.unwrap();
    }
    let acked: Vec<ObjectId> = acked.lock().unwrap().clone();
    assert!(
        !acked.is_empty(),
        "some uploads must have been acknowledged before the kill"
    );
    assert!(
        (acked.len() as u64) < UPLOADS,
        "the kill must land while uploads are in flight"
    );

    // After a restart: every acknowledged object is listed and intact; everything listed is a
    // complete object exactly as the camera sealed it.
    let s = Server::spawn(dir.path());
    // The owner's device credential survives the restart.
    let token = ana.token.clone();
    let listed = list_objects(&s, &token, &camera_id.to_string()).await;
    let listed_ids: Vec<String> = listed
        .iter()
        .map(|o| o["object_id"].as_str().unwrap().to_owned())
        .collect();
    for id in &acked {
        assert!(
            listed_ids.contains(&id.to_string()),
            "acknowledged {id} is missing"
        );
    }
    let key = CameraPublicKey::from_bytes(&camera.public().to_bytes()).unwrap();
    for id in &listed_ids {
        let bytes = ana
            .http
            .get(s.url(&format!("/v1/objects/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let original = &clips.iter().find(|(c, _)| c.to_string() == *id).unwrap().1;
        assert_eq!(
            &bytes[..],
            &original[..],
            "{id} differs from what the camera sent"
        );
        let mut v = ObjectVerifier::new(&bytes, &key).unwrap();
        v.update(&bytes[PREFIX_LEN..]);
        v.finish().unwrap();
    }

    // The camera retries everything: each object ends up stored exactly once.
    for (id, body) in &clips {
        let resp = upload(&s, &camera_token, *id, body.clone()).await;
        assert!(
            resp.status() == StatusCode::CREATED || resp.status() == StatusCode::OK,
            "{}",
            resp.status()
        );
    }
    let listed = list_objects(&s, &token, &camera_id.to_string()).await;
    assert_eq!(listed.len() as u64, UPLOADS);
    let seqs: Vec<i64> = listed
        .iter()
        .map(|o| o["sequence"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=UPLOADS as i64).collect::<Vec<_>>());
    s.stop().await;

    // Storage is consistent: no row without its blob, no corrupt blob. (A kill between rename
    // and commit may leave a blob without a row; the retry above committed it.)
    let state = open_storage(dir.path()).await;
    let report = keyhole_server::check::run(&state).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.objects as u64, UPLOADS);
}
