//! Transferring a camera, seen from both sides: the old owner removes it (keeping or deleting
//! its footage), the camera is reset, and the new owner pairs it. The old owner keeps or loses
//! the old footage as chosen and sees nothing new; the new owner sees nothing old.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use keyhole_camera::{Agent, AgentError, AgentSettings};
use keyhole_client::core::report::Checked;
use keyhole_client::core::{CameraId, ObjectId, Timestamp};
use keyhole_client::{ClientError, Owner};
use keyhole_core::recovery::KdfParams;
use keyhole_http::Endpoint;
use keyhole_testkit::TestServer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp(1_795_735_205_000);

async fn owner(url: &str, name: &str, rng: &mut ChaCha20Rng) -> Owner {
    let endpoint = Endpoint {
        url: url.to_owned(),
        pin: None,
        allow_plain_http: false,
    };
    Owner::create(
        &endpoint,
        name,
        "correct horse battery",
        "phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap()
    .0
}

async fn pair(
    owner: &mut Owner,
    url: &str,
    state: &std::path::Path,
    rng: &mut ChaCha20Rng,
) -> (Agent, CameraId) {
    let code = owner.start_pairing(url, None, rng).await.unwrap();
    let agent = Agent::pair(&code.to_text(), state, AgentSettings::default(), rng)
        .await
        .unwrap();
    let id = owner
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();
    owner.sync_camera(&id).await.unwrap();
    (agent, id)
}

async fn record(agent: &mut Agent, bytes: &[u8], rng: &mut ChaCha20Rng) -> ObjectId {
    let id = agent.record_clip(bytes, NOW, rng).await.unwrap();
    agent.upload_pending().await.unwrap();
    id
}

async fn opens(owner: &Owner, camera: &CameraId, object: &ObjectId) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    match owner.export(camera, object, &mut out).await {
        Ok(Checked::Verified(_)) => Some(out),
        _ => None,
    }
}

#[tokio::test]
async fn a_transferred_camera_keeps_old_and_new_owners_apart() {
    for keep_footage in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(&dir.path().join("server")).await;
        let rng = &mut ChaCha20Rng::seed_from_u64(13);
        let mut ana = owner(&server.url, "ana", rng).await;
        let mut bob = owner(&server.url, "bob", rng).await;
        let state = dir.path().join("camera");
        let (mut camera, ana_camera) = pair(&mut ana, &server.url, &state, rng).await;
        let old = record(&mut camera, b"ana's footage", rng).await;

        // Ana removes the camera; it seals nothing more for her.
        ana.remove_camera(&ana_camera, keep_footage, NOW)
            .await
            .unwrap();
        assert!(matches!(
            camera.record_clip(b"after removal", NOW, rng).await,
            Err(AgentError::Removed | AgentError::Refused(401, _))
        ));
        // Factory reset, then Bo pairs it: a new camera id in Bo's account.
        drop(camera);
        std::fs::remove_dir_all(&state).unwrap();
        let (mut camera, bob_camera) = pair(&mut bob, &server.url, &state, rng).await;
        assert_ne!(bob_camera, ana_camera);
        let new = record(&mut camera, b"bob's footage", rng).await;

        // Ana keeps or loses the old footage, as she chose, and sees nothing new.
        if keep_footage {
            assert_eq!(
                opens(&ana, &ana_camera, &old).await.as_deref(),
                Some(&b"ana's footage"[..])
            );
            let report = ana.verify(&ana_camera).await.unwrap();
            assert_eq!(report.entries.len(), 1);
        } else {
            assert!(opens(&ana, &ana_camera, &old).await.is_none());
            assert!(ana.sync_camera(&ana_camera).await.is_err());
        }
        assert!(opens(&ana, &ana_camera, &new).await.is_none());
        assert!(matches!(
            ana.verify(&bob_camera).await,
            Err(ClientError::Untrusted(_))
        ));

        // Bo sees the new footage only: the old camera and its objects are not his.
        assert_eq!(
            opens(&bob, &bob_camera, &new).await.as_deref(),
            Some(&b"bob's footage"[..])
        );
        let report = bob.verify(&bob_camera).await.unwrap();
        assert!(report.is_clean(), "{report}");
        assert_eq!(report.entries.len(), 1);
        assert!(opens(&bob, &bob_camera, &old).await.is_none());
        assert!(bob.sync_camera(&ana_camera).await.is_err());
        server.stop().await;
    }
}
