//! The device key store: a device saved to its passphrase-sealed file and opened again (as after
//! a restart) keeps its server credential, account, roster and every camera's keys, and opens
//! the footage; a wrong passphrase or an altered file opens nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::core::recovery::KdfParams;
use keyhole_client::core::report::Checked;
use keyhole_client::core::{ObjectId, Timestamp};
use keyhole_client::{ClientError, Owner};
use keyhole_http::Endpoint;
use keyhole_testkit::TestServer;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const NOW: Timestamp = Timestamp(1_795_735_205_000);

#[tokio::test]
async fn a_device_reopened_from_its_key_store_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start(&dir.path().join("server")).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(11);
    let endpoint = Endpoint {
        url: server.url.clone(),
        pin: None,
        allow_plain_http: false,
    };
    let (mut owner, _) = Owner::create(
        &endpoint,
        "ana",
        "correct horse battery",
        "laptop",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap();
    let code = owner.start_pairing(&server.url, None, rng).await.unwrap();
    let mut camera = Agent::pair(
        &code.to_text(),
        &dir.path().join("camera"),
        AgentSettings::default(),
        rng,
    )
    .await
    .unwrap();
    let camera_id = owner
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();
    let clip: ObjectId = camera.record_clip(&[7; 70_000], NOW, rng).await.unwrap();
    assert_eq!(owner.rotate_epoch(&camera_id, NOW, rng).await.unwrap(), 2);
    let second = camera.record_clip(&[8; 1000], NOW, rng).await.unwrap();
    camera.upload_pending().await.unwrap();
    owner.sync_camera(&camera_id).await.unwrap();

    let path = dir.path().join("keyhole.keys");
    owner
        .save_key_store(&path, "a long passphrase", KdfParams::MINIMUM, rng)
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let account_code = owner.account_code();
    drop(owner);

    // The file holds no key in the clear.
    let sealed = std::fs::read(&path).unwrap();
    assert!(!String::from_utf8_lossy(&sealed).contains("account_key"));

    assert!(matches!(
        Owner::load_key_store(&path, "a long passphrasE"),
        Err(ClientError::KeyStore(_))
    ));
    let mut altered = sealed.clone();
    let last = altered.len() - 1;
    altered[last] ^= 1;
    assert!(Owner::from_key_store(&altered, "a long passphrase").is_err());
    assert!(Owner::from_key_store(&sealed[..40], "a long passphrase").is_err());

    let mut reopened = Owner::load_key_store(&path, "a long passphrase").unwrap();
    assert_eq!(reopened.account_code(), account_code);
    // Its credential still works, and, without fetching anything but the objects, it opens
    // both epochs' clips.
    let report = reopened.verify(&camera_id).await.unwrap();
    assert!(report.is_clean(), "{report}");
    for (id, expected) in [(clip, vec![7; 70_000]), (second, vec![8; 1000])] {
        let mut out = Vec::new();
        let checked = reopened.export(&camera_id, &id, &mut out).await.unwrap();
        assert!(matches!(checked, Checked::Verified(_)));
        assert_eq!(out, expected);
    }
    server.stop().await;
}
