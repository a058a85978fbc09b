//! The owner's flows against the real server: set-up, pairing (and a substituted camera key
//! refused), a camera uploading sealed clips, verification, export, and a hostile server that
//! alters and hides stored objects.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

use keyhole_client::{ClientError, Owner};
use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, SealParams, Suite, seal_object,
};
use keyhole_core::pairing::{PairingCode, PairingSecret, RegistrationProof};
use keyhole_core::record::SignedCameraRecord;
use keyhole_core::recovery::KdfParams;
use keyhole_core::report::{Checked, Problem};
use keyhole_core::{CameraId, CameraKey, ObjectId, Timestamp};
use keyhole_http::Endpoint;
use keyhole_testkit::TestServer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

const NOW: Timestamp = Timestamp(1_795_735_205_000);

/// The camera's side of pairing, as the camera agent does it: read the code, register.
async fn camera_registers(
    http: &reqwest::Client,
    code_text: &str,
    key: &CameraKey,
    id: CameraId,
) -> String {
    let code = PairingCode::parse(code_text).unwrap();
    let proof = RegistrationProof::create(&code, id, key);
    let resp = http
        .post(format!(
            "{}/v1/pairing-tokens/{}/register",
            code.server_url, code.token
        ))
        .body(proof.encode())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json::<Value>().await.unwrap()["camera_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn set_up_pair_record_verify_export_and_catch_a_hostile_server() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let url = server.url.clone();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let endpoint = Endpoint {
        url: url.clone(),
        pin: None,
        allow_plain_http: false,
    };
    let (mut ana, phrase) = Owner::create(
        &endpoint,
        "ana",
        "correct horse battery",
        "Ana's phone",
        KdfParams::MINIMUM,
        NOW,
        &mut rng,
    )
    .await
    .unwrap();
    assert_eq!(phrase.words().split(' ').count(), 12);
    assert_eq!(ana.account_code().to_string().len(), 47);

    // Pairing: the code travels out of band; the camera registers; the owner checks the proof.
    let http = keyhole_http::client(&endpoint).unwrap();
    let code = ana.start_pairing(&url, None, &mut rng).await.unwrap();
    let camera = CameraKey::generate(&mut rng);
    let camera_id = CameraId::random(&mut rng);
    let camera_token = camera_registers(&http, &code.to_text(), &camera, camera_id).await;
    assert_eq!(
        ana.finish_pairing(&code, "Front door", NOW, &mut rng)
            .await
            .unwrap(),
        camera_id
    );

    // A server that answers a pairing with its own key is refused: its proof cannot carry the
    // secret it never saw.
    let code2 = ana.start_pairing(&url, None, &mut rng).await.unwrap();
    let mut server_view = code2.clone();
    server_view.secret = PairingSecret::from_bytes(&[0; 32]);
    let _ = camera_registers(
        &http,
        &server_view.to_text(),
        &CameraKey::generate(&mut rng),
        CameraId::random(&mut rng),
    )
    .await;
    let refused = ana
        .finish_pairing(&code2, "Not a camera", NOW, &mut rng)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, ClientError::Untrusted(ref m) if m.contains("does not verify")),
        "{refused}"
    );

    // The camera follows the roster from the pinned account key (one version so far), fetches
    // its record, verifies it as signed by a device of that roster, seals and uploads three
    // chained objects.
    let roster = http
        .get(format!("{url}/v1/cameras/{camera_id}/roster"))
        .bearer_auth(&camera_token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let roster = keyhole_core::roster::SignedRoster::decode(&roster)
        .unwrap()
        .verify_first(&code.account)
        .unwrap();
    let record = http
        .get(format!("{url}/v1/cameras/{camera_id}/record"))
        .bearer_auth(&camera_token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let record = SignedCameraRecord::decode(&record)
        .unwrap()
        .verify_first(&roster, &camera_id)
        .unwrap();
    let mut previous = ObjectDigest::default();
    let mut clips = Vec::new();
    for seq in 1..=3u64 {
        let params = SealParams {
            kind: if seq == 2 {
                ObjectKind::Event
            } else {
                ObjectKind::Clip
            },
            suite: Suite::Aes256Gcm,
            chunk_log2: DEFAULT_CHUNK_LOG2,
            camera_id,
            object_id: ObjectId::random(&mut rng),
            epoch: record.body().epoch,
            sequence: seq,
            previous,
            captured_at: Timestamp(NOW.0 + seq * 60_000),
        };
        let plain: Vec<u8> = (0..200_000u32)
            .map(|i| (i.wrapping_mul(seq as u32 + 7) % 251) as u8)
            .collect();
        let (sealed, summary) = seal_object(
            params,
            &plain,
            &record.body().viewing_key,
            &camera,
            &mut rng,
        )
        .unwrap();
        previous = summary.digest;
        let resp = http
            .put(format!("{url}/v1/objects/{}", params.object_id))
            .bearer_auth(&camera_token)
            .body(sealed)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        clips.push((params.object_id, plain));
    }

    // The owner's device learns the viewing key from its key package, verifies and exports.
    ana.sync_camera(&camera_id).await.unwrap();
    let report = ana.verify_at(&camera_id, NOW).await.unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.entries.len(), 3);
    let mut exported = Vec::new();
    let checked = ana
        .export(&camera_id, &clips[0].0, &mut exported)
        .await
        .unwrap();
    assert!(matches!(checked, Checked::Verified(_)));
    assert_eq!(exported, clips[0].1);

    // A hostile server: alters the stored bytes of clip 1 and hides the event.
    let blob = |id: &ObjectId| {
        dir.path()
            .join("blobs/objects")
            .join(hex::encode(&id.0[..1]))
            .join(id.to_string())
    };
    let mut bytes = std::fs::read(blob(&clips[0].0)).unwrap();
    bytes[100_000] ^= 0x20;
    std::fs::write(blob(&clips[0].0), bytes).unwrap();
    let backdoor = server.backdoor().await;
    assert!(backdoor.meta.delete_object(&clips[1].0.0).await.unwrap());
    // From the summaries alone the chain shows the hidden event, not the altered bytes.
    let report = ana.verify_at(&camera_id, NOW).await.unwrap();
    assert!(report.entries[0].is_verified(), "{report}");
    assert_eq!(report.missing, vec![2..=2], "{report}");
    let report = ana
        .verify_full_at(&camera_id, NOW, &mut |_, _| {})
        .await
        .unwrap();
    assert!(!report.is_clean());
    let text = report.to_string();
    assert!(
        matches!(
            report.entries[0].problems.as_slice(),
            [Problem::Tampered(_)]
        ),
        "{text}"
    );
    assert!(report.entries[1].problems.is_empty(), "{text}");
    assert_eq!(report.missing, vec![1..=2], "{text}");
    assert!(
        text.contains("tampered: chunk 1 failed authentication"),
        "{text}"
    );
    let mut discarded = Vec::new();
    assert!(matches!(
        ana.export(&camera_id, &clips[0].0, &mut discarded)
            .await
            .unwrap(),
        Checked::Failed { .. }
    ));

    // The camera list shows the last upload. A camera still sealing to the old epoch well after
    // a new one was signed (its newest record withheld from it) is flagged.
    let status = ana.camera_statuses(keyhole_client::now()).await.unwrap();
    let latest = status[0].latest.unwrap();
    assert_eq!(
        (latest.epoch, latest.captured_at),
        (1, Timestamp(NOW.0 + 180_000))
    );
    assert!(!status[0].stale_epoch);
    ana.rotate_epoch(&camera_id, NOW, &mut rng).await.unwrap();
    ana.sync_camera(&camera_id).await.unwrap();
    let params = SealParams {
        kind: ObjectKind::Clip,
        suite: Suite::Aes256Gcm,
        chunk_log2: DEFAULT_CHUNK_LOG2,
        camera_id,
        object_id: ObjectId::random(&mut rng),
        epoch: 1,
        sequence: 4,
        previous,
        captured_at: Timestamp(NOW.0 + 20 * 60_000),
    };
    let (sealed, _) = seal_object(
        params,
        b"sealed to the retired key",
        &record.body().viewing_key,
        &camera,
        &mut rng,
    )
    .unwrap();
    let resp = http
        .put(format!("{url}/v1/objects/{}", params.object_id))
        .bearer_auth(&camera_token)
        .body(sealed)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let status = ana.camera_statuses(keyhole_client::now()).await.unwrap();
    assert_eq!(status[0].epoch, 2);
    assert_eq!(status[0].latest.unwrap().epoch, 1);
    assert!(status[0].stale_epoch);
    server.stop().await;
}
