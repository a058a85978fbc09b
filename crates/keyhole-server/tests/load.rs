//! Crash under load: 200 cameras (of four accounts) upload concurrently, retrying like the
//! camera agent does, while the server process is killed with SIGKILL and restarted at the same
//! address three times. Afterwards every acknowledged clip is stored exactly once, byte for byte
//! as sealed, and verifies; storage checks clean; and each server process stayed within a memory
//! bound while it ran.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, ObjectVerifier, PREFIX_LEN, SealParams, Suite,
    seal_object,
};
use keyhole_core::{CameraId, CameraKey, CameraPublicKey, HpkeSecretKey, ObjectId};

const ACCOUNTS: u64 = 4;
const CAMERAS_PER_ACCOUNT: u64 = 50;
const CLIPS_PER_CAMERA: u64 = 3;
const KILLS: usize = 3;
/// Peak resident memory allowed to one server process.
const MAX_SERVER_RSS_KIB: u64 = 256 * 1024;

struct Camera {
    key: CameraKey,
    id: CameraId,
    token: String,
    clips: Vec<(ObjectId, Vec<u8>)>,
}

fn seal(camera: &Camera, viewing: &HpkeSecretKey, index: u64, seq: u64) -> (ObjectId, Vec<u8>) {
    let mut r = rng(index * 1000 + seq);
    let object_id = ObjectId::random(&mut r);
    let params = SealParams {
        kind: ObjectKind::Clip,
        suite: Suite::ChaCha20Poly1305,
        chunk_log2: DEFAULT_CHUNK_LOG2,
        camera_id: camera.id,
        object_id,
        epoch: 1,
        sequence: seq,
        previous: ObjectDigest::default(),
        captured_at: keyhole_core::Timestamp(1_795_735_205_000 + seq),
    };
    let len = 20_000 + usize::try_from((index * 7919 + seq * 104_729) % 60_000).unwrap();
    let plain = vec![u8::try_from(index % 251).unwrap(); len];
    let sealed = seal_object(params, &plain, &viewing.public(), &camera.key, &mut r)
        .unwrap()
        .0;
    (object_id, sealed)
}

/// Streams in 8 KiB pieces, yielding between them, so uploads overlap and kills land mid-body.
fn paced(body: &[u8]) -> reqwest::Body {
    let pieces: Vec<Vec<u8>> = body.chunks(8 * 1024).map(<[u8]>::to_vec).collect();
    let stream = futures_util::stream::iter(pieces).then(|p| async move {
        tokio::task::yield_now().await;
        Ok::<_, std::io::Error>(p)
    });
    reqwest::Body::wrap_stream(stream)
}

/// Peak resident set of a process, in KiB.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_cameras_through_three_server_kills_lose_and_duplicate_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::spawn(dir.path());
    let addr = server.base.trim_start_matches("http://").to_owned();

    // Four accounts, fifty cameras each, three sealed clips per camera.
    let mut owners = Vec::new();
    let mut cameras = Vec::new();
    for a in 0..ACCOUNTS {
        let owner = Owner::new(&server, &format!("owner{a}"), 10 + a).await;
        for c in 0..CAMERAS_PER_ACCOUNT {
            let index = a * CAMERAS_PER_ACCOUNT + c;
            let (key, id, token, viewing) = owner.pair(&server, 1000 + index).await;
            let mut camera = Camera {
                key,
                id,
                token,
                clips: Vec::new(),
            };
            camera.clips = (1..=CLIPS_PER_CAMERA)
                .map(|seq| seal(&camera, &viewing, index, seq))
                .collect();
            cameras.push((a, camera));
        }
        owners.push(owner);
    }
    let total = cameras.len() * usize::try_from(CLIPS_PER_CAMERA).unwrap();
    assert_eq!(cameras.len(), 200);

    // Every camera uploads its clips in order, retrying each until the server acknowledges it.
    let base = Arc::new(Mutex::new(server.base.clone()));
    let acked = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for (_, camera) in &cameras {
        let (base, acked, http) = (base.clone(), acked.clone(), http.clone());
        let token = camera.token.clone();
        let clips = camera.clips.clone();
        tasks.push(tokio::spawn(async move {
            let mut attempts = 0u32;
            for (id, body) in clips {
                loop {
                    attempts += 1;
                    let url = format!("{}/v1/objects/{id}", base.lock().unwrap());
                    let sent = http
                        .put(url)
                        .bearer_auth(&token)
                        .body(paced(&body))
                        .send()
                        .await;
                    match sent {
                        Ok(r) if r.status().is_success() => break,
                        Ok(r) if r.status().is_client_error() && r.status() != 409 => {
                            panic!("{id} refused: {}", r.status())
                        }
                        _ => tokio::time::sleep(Duration::from_millis(100)).await,
                    }
                }
                acked.fetch_add(1, Ordering::SeqCst);
            }
            attempts
        }));
    }

    // Kill the server three times as acknowledgements pass a quarter, a half and three quarters.
    let mut server = server;
    let mut peaks = Vec::new();
    for k in 1..=KILLS {
        let threshold = total * k / (KILLS + 1);
        while acked.load(Ordering::SeqCst) < threshold {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        peaks.push(peak_rss_kib(server.pid()));
        server.kill();
        tokio::time::sleep(Duration::from_millis(200)).await;
        server = Server::spawn_on(dir.path(), &addr);
        *base.lock().unwrap() = server.base.clone();
    }
    let mut attempts = 0;
    for t in tasks {
        attempts += t.await.unwrap();
    }
    peaks.push(peak_rss_kib(server.pid()));
    assert_eq!(acked.load(Ordering::SeqCst), total);
    eprintln!("{total} clips in {attempts} attempts; server peaks {peaks:?} KiB");
    assert!(
        attempts as usize > total,
        "the kills interrupted uploads ({attempts} attempts for {total} clips)"
    );
    for peak in &peaks {
        assert!(
            *peak < MAX_SERVER_RSS_KIB,
            "a server process peaked at {peak} KiB (bound {MAX_SERVER_RSS_KIB})"
        );
    }

    // Every clip listed exactly once under its camera, byte for byte as sealed, and verifying.
    // Each owner's device credential survives the kills.
    let tokens: HashMap<u64, String> = (0..ACCOUNTS)
        .map(|a| (a, owners[usize::try_from(a).unwrap()].token.clone()))
        .collect();
    for (a, camera) in &cameras {
        let token = &tokens[a];
        let ids = object_ids(&list_objects(&server, token, &camera.id.to_string()).await);
        let expected: Vec<String> = camera.clips.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(ids, expected, "camera {}", camera.id);
        let key = CameraPublicKey::from_bytes(&camera.key.public().to_bytes()).unwrap();
        for (id, sealed) in &camera.clips {
            let stored = http
                .get(server.url(&format!("/v1/objects/{id}")))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(&stored[..], &sealed[..], "{id}");
            let mut v = ObjectVerifier::new(&stored, &key).unwrap();
            v.update(&stored[PREFIX_LEN..]);
            v.finish().unwrap();
        }
    }
    server.stop().await;

    let state = open_storage(dir.path()).await;
    let report = keyhole_server::check::run(&state).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.objects, total);
}
