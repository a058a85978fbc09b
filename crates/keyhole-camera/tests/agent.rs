//! The camera agent against the real server and the owner's client: it follows the owner's new
//! epochs, refuses to seal to a camera record the account did not sign or one older than it has
//! seen, and tells the owner with a sealed alert event.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use keyhole_camera::{Agent, AgentError, AgentSettings};
use keyhole_client::Owner;
use keyhole_client::core::event::{EventDetails, EventKind};
use keyhole_client::core::record::{CameraRecordBody, CameraState};
use keyhole_client::core::recovery::KdfParams;
use keyhole_client::core::report::Checked;
use keyhole_client::core::{AccountKey, CameraKey, HpkeSecretKey, Timestamp};
use keyhole_http::Endpoint;
use keyhole_testkit::TestServer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp(1_795_735_205_000);

#[tokio::test]
async fn camera_follows_new_epochs_and_refuses_a_substituted_record() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(dir.path()).await;
    let url = server.url.clone();
    let rng = &mut ChaCha20Rng::seed_from_u64(7);
    let endpoint = Endpoint {
        url: url.clone(),
        pin: None,
        allow_plain_http: false,
    };
    let (mut owner, _phrase) = Owner::create(
        &endpoint,
        "ana",
        "correct horse battery",
        "phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap();
    let code = owner.start_pairing(&url, None, rng).await.unwrap();
    let state = dir.path().join("camera");
    let mut camera = Agent::pair(&code.to_text(), &state, AgentSettings::default(), rng)
        .await
        .unwrap();
    // Before the owner signs a record, the camera has nothing it may seal to.
    assert!(matches!(
        camera.record_clip(b"early", NOW, rng).await,
        Err(AgentError::Refused(404, _))
    ));
    assert_eq!(camera.status().sealed, 0, "nothing was sealed");
    let camera_id = owner
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();

    camera.record_clip(&[1; 5000], NOW, rng).await.unwrap();
    assert_eq!(camera.upload_pending().await.unwrap(), 1);
    let first_record = server
        .backdoor()
        .await
        .meta
        .camera_record(&camera_id.0, Some(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        owner
            .rotate_epoch(&camera_id, Timestamp(NOW.0 + 1000), rng)
            .await
            .unwrap(),
        2
    );
    camera
        .record_clip(&[2; 5000], Timestamp(NOW.0 + 2000), rng)
        .await
        .unwrap();
    assert_eq!(camera.upload_pending().await.unwrap(), 1);
    assert_eq!(camera.status().epoch, 2);
    owner.sync().await.unwrap();
    let report = owner.verify(&camera_id).await.unwrap();
    assert!(report.is_clean(), "{report}");
    let epochs: Vec<u32> = report
        .entries
        .iter()
        .map(|e| e.header.as_ref().unwrap().epoch)
        .collect();
    assert_eq!(
        epochs,
        vec![1, 2],
        "the camera sealed to the new epoch after the rotation"
    );

    // The server serves the first record again (a genuine signature, but rolled back): refused.
    let backdoor = server.backdoor().await;
    backdoor
        .meta
        .put_camera_record(&camera_id.0, 3, &first_record)
        .await
        .unwrap();
    let refused = camera
        .record_clip(&[3; 5000], Timestamp(NOW.0 + 3000), rng)
        .await
        .unwrap_err();
    assert!(
        refused.to_string().contains("rolled back") || refused.to_string().contains("older"),
        "{refused}"
    );
    assert!(
        matches!(refused, AgentError::UntrustedRecord(_)),
        "{refused}"
    );

    // The server puts in a newer record of its own: its viewing key, signed by its own key.
    let server_key = AccountKey::generate(rng);
    let forged = CameraRecordBody {
        account: server_key.public(),
        camera_id,
        version: 4,
        issued_at: Timestamp(NOW.0 + 3000),
        name: "Porch".into(),
        state: CameraState::Active,
        camera_key: CameraKey::generate(rng).public(),
        epoch: 4,
        viewing_key: HpkeSecretKey::generate(rng).public(),
    }
    .sign(keyhole_core::signer::SignerKey::Account(&server_key))
    .unwrap();
    backdoor
        .meta
        .put_camera_record(&camera_id.0, 4, forged.encoded())
        .await
        .unwrap();
    let refused = camera
        .record_clip(&[3; 5000], Timestamp(NOW.0 + 4000), rng)
        .await
        .unwrap_err();
    assert!(
        matches!(refused, AgentError::UntrustedRecord(_)),
        "{refused}"
    );
    assert!(refused.to_string().starts_with("ALERT"), "{refused}");
    assert_eq!(
        camera.status().alerts.len(),
        2,
        "{:?}",
        camera.status().alerts
    );
    // Nothing was sealed to the server's key: besides the two honest clips, the server holds
    // only the two alert events, sealed to the last verified epoch, which the owner opens.
    assert_eq!(camera.upload_pending().await.unwrap(), 2);
    let report = owner.verify(&camera_id).await.unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(report.entries.len(), 4);
    for entry in &report.entries[2..] {
        assert_eq!(entry.header.as_ref().unwrap().epoch, 2);
        let mut plain = Vec::new();
        let checked = owner
            .export(
                &camera_id,
                &entry.header.as_ref().unwrap().object_id,
                &mut plain,
            )
            .await
            .unwrap();
        assert!(matches!(checked, Checked::Verified(_)));
        let event = EventDetails::decode(&plain).unwrap();
        assert_eq!(event.kind, EventKind::Alert);
        assert!(
            event.note.contains("refused a camera record"),
            "{}",
            event.note
        );
    }
    // The owner's device reads only the record versions the account log records: the
    // server's versions 3 and 4 are not among them, so it still holds version 2 (epoch 2).
    owner.sync().await.unwrap();
    assert_eq!(
        owner.cameras(),
        vec![(camera_id, "Porch".to_owned(), 2, false)]
    );
    server.stop().await;
}
