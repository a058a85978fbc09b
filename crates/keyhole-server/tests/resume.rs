//! Resumable uploads: the server is killed in the middle of an upload; after a restart the
//! camera asks where the upload stands and sends only the rest.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_by_a_crash_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::spawn(dir.path());
    let ana = Owner::new(&s, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    let (id, clip) = seal(&camera, camera_id, &viewing, 1, 3_000_000);
    let id = id.to_string();

    // Send the first third, then hold the connection open: the server has some bytes and the
    // upload is in flight when it is killed.
    let first = clip.len() / 3;
    let (tx, upload) = open_put(s.url(&format!("/v1/objects/{id}")), &camera_token);
    for piece in clip[..first].chunks(64 * 1024) {
        tx.send(piece.to_vec()).await.unwrap();
    }
    // Wait until the server has written all of it (a condition, not a delay).
    let seen = wait_for_offset(&s, &camera_token, &id, first as u64).await;
    assert_eq!(seen, first as u64);
    // Still being received: not yet the place to resume from.
    assert_eq!(status(&s, &camera_token, &id).await["in_progress"], true);
    s.kill();
    // The client sees the connection drop; what matters is what the server kept.
    let _ = upload.await;
    drop(tx);

    let s = Server::spawn(dir.path());
    let st = status(&s, &camera_token, &id).await;
    assert_eq!(st["stored"], false);
    assert_eq!(st["in_progress"], false);
    let offset = usize::try_from(st["offset"].as_u64().unwrap()).unwrap();
    assert_eq!(offset, first, "the partial upload survived the crash");
    // A wrong offset is refused without harm; resuming without a partial is refused.
    let wrong = put_from(
        &s,
        &camera_token,
        &id,
        offset + 1,
        clip[offset + 1..].to_vec(),
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::CONFLICT);
    let other = seal(&camera, camera_id, &viewing, 2, 1000).0.to_string();
    assert_eq!(
        put_from(&s, &camera_token, &other, 10, vec![0; 10])
            .await
            .status(),
        StatusCode::CONFLICT
    );
    // Another camera cannot see or continue this upload.
    let (_, _, bob_cam_token, _) = Owner::new(&s, "bob", 3).await.pair(&s, 4).await;
    assert_eq!(status(&s, &bob_cam_token, &id).await["offset"], 0);

    let done = put_from(&s, &camera_token, &id, offset, clip[offset..].to_vec()).await;
    assert_eq!(done.status(), StatusCode::CREATED);
    let st = status(&s, &camera_token, &id).await;
    assert_eq!(st["stored"], true);
    // The owner's device credential survives the server's restarts (a password login would
    // be for a device no roster lists, which reads no footage).
    let token = ana.token.clone();
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
    assert_eq!(bytes, clip);

    // Resuming with a corrupted remainder is refused and leaves nothing: the whole object is
    // verified, not just the new part.
    let (id3, clip3) = seal(&camera, camera_id, &viewing, 3, 500_000);
    let id3 = id3.to_string();
    let half = clip3.len() / 2;
    let (tx, pending) = open_put(s.url(&format!("/v1/objects/{id3}")), &camera_token);
    tx.send(clip3[..half].to_vec()).await.unwrap();
    assert_eq!(
        wait_for_offset(&s, &camera_token, &id3, half as u64).await,
        half as u64
    );
    s.kill();
    let _ = pending.await;
    drop(tx);
    let s = Server::spawn(dir.path());
    let mut bad = clip3[half..].to_vec();
    bad[1000] ^= 1;
    assert_eq!(
        put_from(&s, &camera_token, &id3, half, bad).await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(status(&s, &camera_token, &id3).await["offset"], 0);
    s.stop().await;
}

/// A camera may leave only so many abandoned uploads (each up to the object size limit) on
/// the server's disk: past that a new upload is refused, saying why, while resuming one of
/// them (or starting one of them over) still works, and finishing one makes room again. Here
/// a partial upload counts as abandoned at once (`abandoned_upload_secs = 0`); by default it
/// must go unwritten for a minute, so uploads in progress never count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abandoned_uploads_are_capped_per_camera_and_resuming_still_works() {
    use keyhole_server::api::MAX_ABANDONED_UPLOADS;
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(keyhole_server::Config {
        data_dir: dir.path().to_owned(),
        insecure_http: true,
        abandoned_upload_secs: 0,
        ..keyhole_server::Config::default()
    })
    .await;
    let ana = Owner::new(&s, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    let sent = 64 * 1024;
    let mut unfinished = Vec::new();
    for seq in 1..=u64::try_from(MAX_ABANDONED_UPLOADS).unwrap() {
        let (id, clip) = seal(&camera, camera_id, &viewing, seq, 256 * 1024);
        let id = id.to_string();
        // The first 64 KiB, then the connection is cut: the server keeps them to resume.
        let (tx, upload) = open_put(s.url(&format!("/v1/objects/{id}")), &camera_token);
        tx.send(clip[..sent].to_vec()).await.unwrap();
        assert_eq!(
            wait_for_offset(&s, &camera_token, &id, sent as u64).await,
            sent as u64
        );
        upload.abort();
        let _ = upload.await;
        unfinished.push((id, clip));
    }

    let seq = u64::try_from(MAX_ABANDONED_UPLOADS).unwrap() + 1;
    let (id, clip) = seal(&camera, camera_id, &viewing, seq, 1000);
    let refused = upload(&s, &camera_token, id, clip.clone()).await;
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let message = refused.json::<serde_json::Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("uploads unfinished"), "{message}");

    // Starting one of them over adds nothing and is taken (and cut off again); resuming one is
    // not a new upload; once it is stored there is room again.
    let (last, last_clip) = &unfinished[unfinished.len() - 1];
    let (tx, again) = open_put(s.url(&format!("/v1/objects/{last}")), &camera_token);
    tx.send(last_clip[..sent].to_vec()).await.unwrap();
    assert_eq!(
        wait_for_offset(&s, &camera_token, last, sent as u64).await,
        sent as u64
    );
    again.abort();
    let _ = again.await;
    let (first, first_clip) = &unfinished[0];
    let resumed = put_from(&s, &camera_token, first, sent, first_clip[sent..].to_vec()).await;
    assert_eq!(resumed.status(), StatusCode::CREATED);
    assert_eq!(
        upload(&s, &camera_token, id, clip).await.status(),
        StatusCode::CREATED
    );
}
