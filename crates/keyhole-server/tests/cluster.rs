//! Two `keyhole-server` processes on one PostgreSQL database and one S3 bucket: what goes in
//! through one comes out of the other, is announced to a device following through the other,
//! live view is relayed (and never fetched from a server not in `peers`) from the camera's server to the
//! viewer's, talk-back from the device's server to the camera's, and a server killed in the middle of an upload loses nothing: the camera finishes
//! the upload on the other server from where the first one stopped.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use common::*;
use keyhole_server::blobs::s3::PART_BYTES;
use keyhole_testkit::postgres::Postgres;
use keyhole_testkit::s3::S3Server;
use reqwest::StatusCode;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port()
}

/// A server process on `pg` and `s3` at `port`, advertising its own URL to the other, at
/// `peer`.
fn spawn(dir: &std::path::Path, pg: &Postgres, s3: &S3Server, port: u16, peer: u16) -> Server {
    let c = s3.config();
    let s3_table = format!(
        "{{ bucket = {:?}, endpoint = {:?}, access_key_id = \"test\", \
         secret_access_key = \"testsecret\", allow_http = true }}",
        c.bucket,
        c.endpoint.unwrap()
    );
    let env = [
        ("KEYHOLE_DATABASE_URL", pg.url.clone()),
        ("KEYHOLE_S3", s3_table),
        ("KEYHOLE_ADVERTISE_URL", format!("http://127.0.0.1:{port}")),
        ("KEYHOLE_PEERS", format!("[\"http://127.0.0.1:{peer}\"]")),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    Server::spawn_with(dir, &format!("127.0.0.1:{port}"), &env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_share_one_database_and_bucket() {
    let Some((pg, s3)) = Postgres::start().zip(S3Server::start()) else {
        eprintln!("PostgreSQL or s3s-fs is not installed: skipped (CI installs both)");
        return;
    };
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (port_a, port_b) = (free_port(), free_port());
    let a = spawn(dir_a.path(), &pg, &s3, port_a, port_b);
    let b = spawn(dir_b.path(), &pg, &s3, port_b, port_a);

    // An account made through A, a camera paired through B.
    let ana = Owner::new(&a, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&b, 2).await;

    // Clips uploaded through A are announced to the device following B, listed and downloaded
    // through B.
    let mut announced = Announcements::open(&ana, &b).await;
    let mut clips = Vec::new();
    for seq in 1..=3 {
        let (id, body) = seal(&camera, camera_id, &viewing, seq, 200_000);
        assert_eq!(
            upload(&a, &camera_token, id, body.clone()).await.status(),
            StatusCode::CREATED
        );
        assert_eq!(
            announced.next().await,
            Some(keyhole_wire::announce::Message::Objects {
                camera: camera_id.0,
                sequence: seq
            }),
            "B announces what A stored"
        );
        clips.push((id.to_string(), body));
    }
    let ids: Vec<String> = clips.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        object_ids(&list_objects(&b, &ana.token, &camera_id.to_string()).await),
        ids
    );
    for (id, body) in &clips {
        let got = ana.get(&b, &format!("/v1/objects/{id}")).await;
        assert_eq!(got.bytes().await.unwrap(), body[..]);
    }

    // Live view: the viewer waits on B, the camera asks A whether anyone wants it (A hears of
    // B's viewer through PostgreSQL), streams to A, and B relays A's session.
    let watch = ana.watch(&b, camera_id, 30);
    let wanted: serde_json::Value = reqwest::Client::new()
        .get(a.url("/v1/live/wanted?wait_secs=30"))
        .bearer_auth(&camera_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(wanted["wanted"], true, "A learns of the viewer on B");
    // Every frame arrives through B, in order, and opens.
    stream_to_viewer(&a, &camera_token, &camera, camera_id, &viewing, watch).await;

    // Whoever can write to the database can NOTIFY, but cannot have a viewer's credential sent
    // elsewhere: "live here" from a URL not in B's peers is ignored, before and while a viewer
    // waits on B, and nothing connects to that URL.
    let rogue = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let lie = keyhole_wire::peer::PeerMessage {
        verb: keyhole_wire::peer::Verb::Live,
        camera: camera_id.0,
        url: format!("http://{}", rogue.local_addr().unwrap()),
    }
    .encode()
    .unwrap();
    let db = sqlx::PgPool::connect(&pg.url).await.unwrap();
    let notify = || {
        sqlx::query("SELECT pg_notify('keyhole_live', $1)")
            .bind(lie.clone())
            .execute(&db)
    };
    notify().await.unwrap();
    let watch = ana.watch(&b, camera_id, 3);
    notify().await.unwrap();
    let answered = tokio::time::timeout(std::time::Duration::from_secs(30), watch)
        .await
        .expect("B answers the viewer instead of waiting on another server");
    assert_eq!(answered.unwrap().status(), StatusCode::NOT_FOUND);
    assert!(
        tokio::time::timeout(std::time::Duration::ZERO, rogue.accept())
            .await
            .is_err(),
        "B connected to a server not in its peers"
    );

    // Talking back: the camera streams live to A and listens for talk there; the device talks
    // through B, which passes the stream to A unopened, and A to the camera.
    let watch = ana.watch(&b, camera_id, 30);
    let (prefix, _, _) = live_session(&camera, camera_id, &viewing);
    let (live, publish) = open_put(a.url("/v1/live"), &camera_token);
    live.send(prefix).await.unwrap();
    assert_eq!(watch.await.unwrap().status(), StatusCode::OK);
    let listen = {
        let request = reqwest::Client::new()
            .get(a.url("/v1/talk?wait_secs=30"))
            .bearer_auth(&camera_token);
        tokio::spawn(async move { request.send().await.unwrap().bytes().await.unwrap() })
    };
    let mut said = keyhole_core::talk::TalkHeader {
        suite: keyhole_core::envelope::Suite::ChaCha20Poly1305,
        camera_id,
        epoch: 1,
        challenge: [1; 32],
        ephemeral: [2; 32],
        session: [3; 16],
    }
    .encode()
    .to_vec();
    said.extend_from_slice(b"frames the servers pass on unopened");
    let talked = reqwest::Client::new()
        .put(b.url(&format!("/v1/cameras/{camera_id}/talk")))
        .bearer_auth(&ana.token)
        .body(said.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(talked.status(), StatusCode::OK);
    assert_eq!(
        listen.await.unwrap(),
        said,
        "the camera on A hears what was said on B"
    );
    drop(live);
    let _ = publish.await;

    // A is killed in the middle of a 14 MB upload, once it has written one part to the bucket
    // (what it held in memory beyond that is lost with it).
    let (id, big) = seal(&camera, camera_id, &viewing, 4, 14 << 20);
    let id = id.to_string();
    let (tx, pending) = open_put(a.url(&format!("/v1/objects/{id}")), &camera_token);
    let sent = PART_BYTES + PART_BYTES / 2;
    for piece in big[..sent].chunks(256 * 1024) {
        tx.send(piece.to_vec()).await.unwrap();
    }
    let kept = wait_for_offset(&a, &camera_token, &id, PART_BYTES as u64).await;
    assert_eq!(kept, PART_BYTES as u64, "one part is in the bucket");
    a.kill();
    let _ = pending.await;
    drop(tx);

    // The camera asks B where the upload stands and sends only the rest there.
    let st = status(&b, &camera_token, &id).await;
    assert_eq!(st["stored"], false);
    let offset = usize::try_from(st["offset"].as_u64().unwrap()).unwrap();
    assert_eq!(offset, PART_BYTES, "B sees the part A wrote");
    assert_eq!(
        put_from(&b, &camera_token, &id, offset, big[offset..].to_vec())
            .await
            .status(),
        StatusCode::CREATED
    );

    // Nothing is lost: B lists and serves all four clips intact.
    clips.push((id, big));
    let ids: Vec<String> = clips.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(
        object_ids(&list_objects(&b, &ana.token, &camera_id.to_string()).await),
        ids
    );
    for (id, body) in &clips {
        let got = ana.get(&b, &format!("/v1/objects/{id}")).await;
        assert!(got.bytes().await.unwrap() == body[..], "clip {id} intact");
    }
    b.stop().await;

    // And the shared stores are consistent: every row has its blob, every blob its row.
    let state = keyhole_server::AppState::open(keyhole_server::Config {
        data_dir: dir_b.path().to_owned(),
        database_url: Some(keyhole_server::config::Secret::new(pg.url.clone())),
        s3: Some(s3.config()),
        ..keyhole_server::Config::default()
    })
    .await
    .unwrap();
    let report = keyhole_server::check::run(&state).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.objects, 4);
}
