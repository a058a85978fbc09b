//! The metadata store's contract (`MetaStore`), run against the embedded SQLite store and
//! against a real PostgreSQL server started for the test: the same calls, the same answers.
//! Then the API on PostgreSQL and S3: pairing, upload, listing and download over HTTP; and
//! moving a populated embedded installation to PostgreSQL and S3 with `keyhole-server migrate`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::sync::Arc;

use common::{Owner, Server, list_objects, object_ids, seal, upload};
use keyhole_server::config::Secret;
use reqwest::StatusCode;

use keyhole_server::store::{
    AccountId, CameraRow, Credential, EnrollmentRow, EnrollmentStep, Inserted, LogAppend, Logged,
    MetaStore, ObjectRow, SqlStore, StoreError, Subject,
};
use keyhole_testkit::postgres::Postgres;
use keyhole_testkit::s3::S3Server;

const ANA: [u8; 16] = [1; 16];
const BOB: [u8; 16] = [2; 16];
const CAM: [u8; 16] = [3; 16];
const DEVICE: [u8; 16] = [4; 16];
const CYD: [u8; 16] = [7; 16];

fn conflict<T: std::fmt::Debug>(r: Result<T, StoreError>, words: &str) {
    match r {
        Err(StoreError::Conflict(why)) => assert!(why.contains(words), "{why:?}"),
        other => panic!("expected a conflict ({words}), got {other:?}"),
    }
}

fn object(id: u8, sequence: i64, captured_at: i64, size: i64) -> ObjectRow {
    ObjectRow {
        object_id: [id; 16],
        account_id: ANA,
        camera_id: CAM,
        kind: 1,
        sequence,
        epoch: 1,
        captured_at,
        size,
        summary: vec![id; 332],
        created_at: 1000,
    }
}

fn enrollment(id: u8, created_at: i64) -> EnrollmentRow {
    EnrollmentRow {
        enrollment_id: [id; 16],
        account_id: ANA,
        device_id: DEVICE,
        created_at,
        expires_at: created_at + 600_000,
        request: vec![id; 40],
        answer: None,
        reveal: None,
        grant: None,
        closed_at: None,
    }
}

async fn accounts_and_credentials(s: &dyn MetaStore) {
    s.create_account(ANA, "ana", "hash-a", 1).await.unwrap();
    s.create_account(BOB, "bob", "hash-b", 1).await.unwrap();
    conflict(s.create_account([9; 16], "ana", "x", 2).await, "taken");
    assert_eq!(
        s.account_by_username("ana").await.unwrap(),
        Some((ANA, "hash-a".into()))
    );
    assert_eq!(s.account_by_username("nobody").await.unwrap(), None);

    let phone = Credential {
        token_hash: [7; 32],
        account_id: ANA,
        subject: Subject::Device(DEVICE),
        created_at: 5,
        by_device_key: true,
    };
    s.insert_credential(&phone).await.unwrap();
    assert_eq!(s.credential(&[7; 32]).await.unwrap(), Some(phone.clone()));
    let laptop = Credential {
        token_hash: [8; 32],
        by_device_key: false,
        ..phone.clone()
    };
    s.insert_credential(&laptop).await.unwrap();
    assert_eq!(s.credential(&[8; 32]).await.unwrap(), Some(laptop.clone()));
    assert_eq!(
        s.revoke_subject(&ANA, Subject::Device(DEVICE), 9)
            .await
            .unwrap(),
        2
    );
    assert_eq!(s.credential(&[7; 32]).await.unwrap(), None);
    let tablet = Credential {
        token_hash: [6; 32],
        ..phone
    };
    s.insert_credential(&tablet).await.unwrap();
    s.revoke_credential(&[6; 32], 10).await.unwrap();
    assert_eq!(s.credential(&[6; 32]).await.unwrap(), None);
}

/// Challenges are taken once, only by the device they were issued to, only before they expire,
/// and a device holds at most `MAX_OPEN_CHALLENGES`.
async fn challenges(s: &dyn MetaStore) {
    let other = [5; 16];
    s.create_challenge(&[1; 32], &ANA, &DEVICE, 100, 0)
        .await
        .unwrap();
    assert!(!s.take_challenge(&[1; 32], &ANA, &other, 1).await.unwrap());
    assert!(!s.take_challenge(&[1; 32], &BOB, &DEVICE, 1).await.unwrap());
    assert!(s.take_challenge(&[1; 32], &ANA, &DEVICE, 1).await.unwrap());
    assert!(!s.take_challenge(&[1; 32], &ANA, &DEVICE, 1).await.unwrap());
    s.create_challenge(&[2; 32], &ANA, &DEVICE, 100, 0)
        .await
        .unwrap();
    assert!(
        !s.take_challenge(&[2; 32], &ANA, &DEVICE, 100)
            .await
            .unwrap()
    );
    let max = u8::try_from(keyhole_server::store::MAX_OPEN_CHALLENGES).unwrap();
    for n in 0..=max {
        s.create_challenge(&[10 + n; 32], &ANA, &DEVICE, 1000 + i64::from(n), 0)
            .await
            .unwrap();
    }
    // The oldest went when one more than the limit came.
    assert!(!s.take_challenge(&[10; 32], &ANA, &DEVICE, 1).await.unwrap());
    for n in 1..=max {
        assert!(
            s.take_challenge(&[10 + n; 32], &ANA, &DEVICE, 1)
                .await
                .unwrap()
        );
    }
    s.set_password(&ANA, "hash-a2").await.unwrap();
    assert_eq!(
        s.account_by_username("ana").await.unwrap(),
        Some((ANA, "hash-a2".into()))
    );
}

async fn versions_only_get_newer(s: &dyn MetaStore) {
    assert_eq!(s.roster(&ANA, None).await.unwrap(), None);
    s.put_roster(&ANA, 1, b"roster 1").await.unwrap();
    s.put_roster(&ANA, 3, b"roster 3").await.unwrap();
    conflict(s.put_roster(&ANA, 3, b"again").await, "not newer");
    conflict(s.put_roster(&ANA, 2, b"older").await, "not newer");
    assert_eq!(
        s.roster(&ANA, None).await.unwrap(),
        Some(b"roster 3".to_vec())
    );
    assert_eq!(
        s.roster(&ANA, Some(1)).await.unwrap(),
        Some(b"roster 1".to_vec())
    );
    assert_eq!(s.roster(&BOB, None).await.unwrap(), None);
}

async fn pairing_and_cameras(s: &dyn MetaStore) {
    s.create_pairing_token(&ANA, &[10; 16], 100).await.unwrap();
    s.create_pairing_token(&ANA, &[11; 16], 5).await.unwrap();
    let camera = CameraRow {
        camera_id: CAM,
        account_id: BOB, // ignored: the token says whose camera it is
        camera_key: [12; 32],
        registration: b"proof".to_vec(),
        token_id: [10; 16],
        registered_at: 0,
        removed_at: None,
    };
    assert_eq!(
        s.complete_pairing(&camera, &[13; 32], 50).await.unwrap(),
        ANA
    );
    conflict(
        s.complete_pairing(
            &CameraRow {
                camera_id: [14; 16],
                ..camera.clone()
            },
            &[15; 32],
            51,
        )
        .await,
        "already used",
    );
    conflict(
        s.complete_pairing(
            &CameraRow {
                camera_id: [14; 16],
                token_id: [11; 16],
                ..camera.clone()
            },
            &[15; 32],
            51,
        )
        .await,
        "expired",
    );
    assert!(matches!(
        s.complete_pairing(
            &CameraRow {
                token_id: [99; 16],
                ..camera.clone()
            },
            &[15; 32],
            51
        )
        .await,
        Err(StoreError::NotFound)
    ));
    let stored = s.camera(&CAM).await.unwrap().unwrap();
    assert_eq!(stored.account_id, ANA);
    assert_eq!(stored.registered_at, 50);
    assert_eq!(stored.registration, b"proof");
    assert_eq!(
        s.cameras(&ANA).await.unwrap(),
        std::slice::from_ref(&stored)
    );
    assert!(s.cameras(&BOB).await.unwrap().is_empty());
    assert_eq!(
        s.camera_by_token(&ANA, &[10; 16]).await.unwrap(),
        Some(stored)
    );
    let credential = s.credential(&[13; 32]).await.unwrap().unwrap();
    assert_eq!(credential.subject, Subject::Camera(CAM));

    s.put_camera_record(&CAM, 1, b"record 1").await.unwrap();
    conflict(s.put_camera_record(&CAM, 1, b"again").await, "not newer");
    s.put_camera_record(&CAM, 2, b"record 2").await.unwrap();
    assert_eq!(
        s.camera_record(&CAM, None).await.unwrap(),
        Some(b"record 2".to_vec())
    );
    assert_eq!(
        s.camera_record(&CAM, Some(1)).await.unwrap(),
        Some(b"record 1".to_vec())
    );
}

async fn keys_and_backups(s: &dyn MetaStore) {
    const SEALER: [u8; 16] = [5; 16];
    assert_eq!(
        s.key_package_sealer(&ANA, &CAM, 1, &DEVICE).await.unwrap(),
        None
    );
    s.put_key_package(&ANA, &CAM, 2, &DEVICE, b"epoch 2", &SEALER)
        .await
        .unwrap();
    s.put_key_package(&ANA, &CAM, 1, &DEVICE, b"epoch 1, first", &DEVICE)
        .await
        .unwrap();
    s.put_key_package(&ANA, &CAM, 1, &DEVICE, b"epoch 1", &SEALER)
        .await
        .unwrap();
    s.put_key_package(&ANA, &CAM, 1, &[], b"recovery", &SEALER)
        .await
        .unwrap();
    // The sealer is replaced with the package.
    assert_eq!(
        s.key_package_sealer(&ANA, &CAM, 1, &DEVICE).await.unwrap(),
        Some(Some(SEALER.to_vec()))
    );
    assert_eq!(
        s.key_packages(&ANA, &DEVICE).await.unwrap(),
        [b"epoch 1".to_vec(), b"epoch 2".to_vec()]
    );
    assert_eq!(
        s.key_packages(&ANA, &[]).await.unwrap(),
        [b"recovery".to_vec()]
    );
    assert_eq!(s.recovery_backup(&ANA).await.unwrap(), None);
    s.put_recovery_backup(&ANA, b"backup 1").await.unwrap();
    s.put_recovery_backup(&ANA, b"backup 2").await.unwrap();
    assert_eq!(
        s.recovery_backup(&ANA).await.unwrap(),
        Some(b"backup 2".to_vec())
    );
}

async fn objects(s: &dyn MetaStore) {
    for (id, seq, at, size) in [(21, 1, 100, 1000), (22, 2, 200, 2000), (23, 3, 300, 3000)] {
        assert_eq!(
            s.insert_object(&object(id, seq, at, size)).await.unwrap(),
            Inserted::New
        );
    }
    assert_eq!(
        s.insert_object(&object(21, 1, 100, 1000)).await.unwrap(),
        Inserted::AlreadyPresent
    );
    conflict(
        s.insert_object(&ObjectRow {
            summary: vec![0; 332],
            ..object(21, 1, 100, 1000)
        })
        .await,
        "",
    );
    assert_eq!(
        s.object(&[22; 16]).await.unwrap(),
        Some(object(22, 2, 200, 2000))
    );
    let seqs = |rows: Vec<ObjectRow>| rows.iter().map(|o| o.sequence).collect::<Vec<_>>();
    assert_eq!(
        seqs(s.objects(&CAM, 0, 0..1000, 10).await.unwrap()),
        [1, 2, 3]
    );
    assert_eq!(seqs(s.objects(&CAM, 1, 0..1000, 1).await.unwrap()), [2]);
    assert_eq!(seqs(s.objects(&CAM, 0, 150..300, 10).await.unwrap()), [2]);
    assert_eq!(s.latest_object(&CAM).await.unwrap().unwrap().sequence, 3);
    assert_eq!(s.all_objects().await.unwrap().len(), 3);
    assert!(s.delete_object(&[21; 16]).await.unwrap());
    assert!(!s.delete_object(&[21; 16]).await.unwrap());
    assert_eq!(seqs(s.objects(&CAM, 0, 0..1000, 10).await.unwrap()), [2, 3]);
}

async fn audit_log(s: &dyn MetaStore) {
    for action in ["roster", "camera-paired", "camera-removed"] {
        s.audit(&ANA, 7, "device:04", action, "detail")
            .await
            .unwrap();
    }
    s.audit(&BOB, 7, "server", "retention", "").await.unwrap();
    let log = s.audit_log(&ANA, 0, 10).await.unwrap();
    let actions: Vec<&str> = log.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["roster", "camera-paired", "camera-removed"]);
    assert!(log.windows(2).all(|w| w[0].id < w[1].id));
    let rest = s.audit_log(&ANA, log[0].id, 1).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].action, "camera-paired");
}

async fn removal(s: &dyn MetaStore) {
    s.remove_camera(&CAM, 500).await.unwrap();
    s.remove_camera(&CAM, 600).await.unwrap();
    assert_eq!(
        s.camera(&CAM).await.unwrap().unwrap().removed_at,
        Some(500),
        "the first removal time stays"
    );
    assert_eq!(s.credential(&[13; 32]).await.unwrap(), None, "revoked");
    let deleted = s.delete_camera(&CAM).await.unwrap();
    let mut gone = deleted.objects.clone();
    gone.sort_unstable();
    assert_eq!(gone, [[22; 16], [23; 16]]);
    assert_eq!(deleted.bytes, 5000);
    assert_eq!(deleted.key_packages, 3);
    assert_eq!(deleted.camera_records, 2);
    assert_eq!(s.camera(&CAM).await.unwrap(), None);
    assert!(s.all_objects().await.unwrap().is_empty());
    assert!(s.key_packages(&ANA, &DEVICE).await.unwrap().is_empty());
}

async fn enrollments(s: &dyn MetaStore) {
    let now = 1_000_000;
    s.create_enrollment(&enrollment(31, now), 2).await.unwrap();
    s.create_enrollment(&enrollment(32, now + 1), 2)
        .await
        .unwrap();
    conflict(
        s.create_enrollment(&enrollment(33, now + 2), 2).await,
        "waiting",
    );
    let open = s.open_enrollments(&ANA, now).await.unwrap();
    assert_eq!(
        open.iter().map(|e| e.enrollment_id[0]).collect::<Vec<_>>(),
        [31, 32]
    );
    let id = [31; 16];
    conflict(
        s.set_enrollment_step(&ANA, &id, EnrollmentStep::Reveal, b"r", now)
            .await,
        "before",
    );
    s.set_enrollment_step(&ANA, &id, EnrollmentStep::Answer, b"a", now)
        .await
        .unwrap();
    conflict(
        s.set_enrollment_step(&ANA, &id, EnrollmentStep::Answer, b"a2", now)
            .await,
        "already",
    );
    s.set_enrollment_step(&ANA, &id, EnrollmentStep::Reveal, b"r", now)
        .await
        .unwrap();
    s.set_enrollment_step(&ANA, &id, EnrollmentStep::Grant, b"g", now)
        .await
        .unwrap();
    let row = s.enrollment(&ANA, &id).await.unwrap().unwrap();
    assert_eq!(
        (row.answer, row.reveal, row.grant),
        (
            Some(b"a".to_vec()),
            Some(b"r".to_vec()),
            Some(b"g".to_vec())
        )
    );
    assert!(s.close_enrollment(&ANA, &id, now).await.unwrap());
    assert!(!s.close_enrollment(&ANA, &id, now).await.unwrap());
    conflict(
        s.set_enrollment_step(&ANA, &[32; 16], EnrollmentStep::Answer, b"a", now + 700_000)
            .await,
        "expired",
    );
    assert!(matches!(
        s.set_enrollment_step(&BOB, &[32; 16], EnrollmentStep::Answer, b"a", now)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(
        s.open_enrollments(&ANA, now + 700_000)
            .await
            .unwrap()
            .is_empty()
    );
}

fn append(sequence: i64, previous: u8, hash: u8, version: i64, body: &[u8]) -> LogAppend<'_> {
    LogAppend {
        sequence,
        previous: [previous; 32],
        hash: [hash; 32],
        entry: body,
        statement: Logged::Roster { version, body },
        account_key: None,
    }
}

async fn account_log(s: &dyn MetaStore) {
    assert!(s.log_entries(&ANA, 0, 10).await.unwrap().is_empty());
    conflict(
        s.append_log(&ANA, &append(2, 0, 2, 10, b"e2")).await,
        "does not follow",
    );
    s.append_log(&ANA, &append(1, 0, 1, 10, b"e1"))
        .await
        .unwrap();
    // Again, skipping one, or naming another predecessor: refused.
    for (a, why) in [
        (
            append(1, 0, 9, 11, b"x"),
            "does not follow the stored head (entry 1)",
        ),
        (append(3, 1, 3, 11, b"x"), "does not follow"),
        (append(2, 7, 2, 11, b"x"), "does not follow"),
    ] {
        conflict(s.append_log(&ANA, &a).await, why);
    }
    // A statement that is not newer takes its entry down with it: both or neither.
    conflict(
        s.append_log(&ANA, &append(2, 1, 2, 10, b"e2")).await,
        "not newer",
    );
    assert_eq!(
        s.log_entries(&ANA, 0, 10).await.unwrap(),
        vec![b"e1".to_vec()]
    );
    s.append_log(&ANA, &append(2, 1, 2, 11, b"e2"))
        .await
        .unwrap();
    s.append_log(&ANA, &append(3, 2, 3, 12, b"e3"))
        .await
        .unwrap();
    assert_eq!(
        s.roster(&ANA, None).await.unwrap(),
        Some(b"e3".to_vec()),
        "the statement was stored with its entry"
    );
    assert_eq!(
        s.log_entries(&ANA, 1, 1).await.unwrap(),
        vec![b"e2".to_vec()]
    );
    assert_eq!(s.log_entries(&ANA, 1, 10).await.unwrap().len(), 2);
    assert!(s.log_entries(&BOB, 0, 10).await.unwrap().is_empty());

    s.put_log_head(&ANA, &DEVICE, b"head 1").await.unwrap();
    s.put_log_head(&ANA, &[5; 16], b"other").await.unwrap();
    s.put_log_head(&ANA, &DEVICE, b"head 2").await.unwrap();
    assert_eq!(
        s.log_heads(&ANA).await.unwrap(),
        vec![b"head 2".to_vec(), b"other".to_vec()]
    );
    assert!(s.log_heads(&BOB).await.unwrap().is_empty());
}

async fn sharing(s: &dyn MetaStore) {
    s.create_account(CYD, "cyd", "hash-c", 1).await.unwrap();
    // Account keys are indexed with log entry 1 (ANA's was written above).
    let key = |a: &AccountId| {
        let mut k = [0u8; 32];
        k[..16].copy_from_slice(a);
        k
    };
    s.append_log(
        &CYD,
        &LogAppend {
            account_key: Some(key(&CYD)),
            ..append(1, 0, 1, 50, b"cyd 1")
        },
    )
    .await
    .unwrap();
    assert_eq!(s.account_by_key(&key(&CYD)).await.unwrap(), Some(CYD));
    assert_eq!(s.account_key(&CYD).await.unwrap(), Some(key(&CYD)));
    assert_eq!(s.account_by_key(&[9; 32]).await.unwrap(), None);
    assert_eq!(
        s.account_key(&ANA).await.unwrap(),
        None,
        "not given with its entry 1"
    );

    // CYD's acceptance statements: each version's owners replace its consents.
    let accepts = |sequence: u8, version: i64, body: &'static [u8], owners| LogAppend {
        statement: Logged::Acceptance {
            version,
            body,
            owners,
        },
        ..append(i64::from(sequence), sequence - 1, sequence, 0, body)
    };
    assert!(!s.share_consent(&CYD, &ANA).await.unwrap());
    s.append_log(&CYD, &accepts(2, 1, b"accepts ana", &[ANA]))
        .await
        .unwrap();
    assert!(s.share_consent(&CYD, &ANA).await.unwrap());
    assert!(!s.share_consent(&ANA, &CYD).await.unwrap());
    conflict(
        s.append_log(&CYD, &accepts(3, 1, b"again", &[])).await,
        "not newer",
    );
    s.append_log(&CYD, &accepts(3, 2, b"accepts nobody", &[]))
        .await
        .unwrap();
    assert!(!s.share_consent(&CYD, &ANA).await.unwrap());
    s.append_log(&CYD, &accepts(4, 3, b"accepts ana again", &[ANA]))
        .await
        .unwrap();
    assert!(s.share_consent(&CYD, &ANA).await.unwrap());
    assert_eq!(
        s.acceptance(&CYD, Some(2)).await.unwrap(),
        Some(b"accepts nobody".to_vec())
    );
    assert_eq!(
        s.acceptance(&CYD, None).await.unwrap(),
        Some(b"accepts ana again".to_vec())
    );
    assert_eq!(s.acceptance(&ANA, None).await.unwrap(), None);

    // A camera of ANA's, shared with CYD until 1000, then with nobody.
    let camera = [40; 16];
    s.create_pairing_token(&ANA, &[41; 16], 100).await.unwrap();
    s.complete_pairing(
        &CameraRow {
            camera_id: camera,
            account_id: ANA,
            camera_key: [42; 32],
            registration: b"proof".to_vec(),
            token_id: [41; 16],
            registered_at: 0,
            removed_at: None,
        },
        &[43; 32],
        50,
    )
    .await
    .unwrap();
    let shared = |sequence, previous, version, members| LogAppend {
        sequence,
        previous: [previous; 32],
        hash: [u8::try_from(sequence).unwrap(); 32],
        entry: b"entry",
        statement: Logged::Share {
            camera_id: camera,
            version,
            body: b"share",
            members,
        },
        account_key: None,
    };
    assert!(!s.share_member(&camera, &CYD, 0).await.unwrap());
    s.append_log(&ANA, &shared(4, 3, 1, &[(CYD, Some(1000))]))
        .await
        .unwrap();
    assert!(s.share_member(&camera, &CYD, 999).await.unwrap());
    assert!(
        !s.share_member(&camera, &CYD, 1000).await.unwrap(),
        "expired"
    );
    assert!(!s.share_member(&camera, &ANA, 0).await.unwrap());
    assert_eq!(
        s.share(&camera, None).await.unwrap(),
        Some(b"share".to_vec())
    );
    conflict(s.append_log(&ANA, &shared(5, 4, 1, &[])).await, "not newer");
    assert!(
        s.share_member(&camera, &CYD, 0).await.unwrap(),
        "unchanged by the refusal"
    );
    s.append_log(&ANA, &shared(5, 4, 2, &[])).await.unwrap();
    assert!(
        !s.share_member(&camera, &CYD, 0).await.unwrap(),
        "withdrawn"
    );
    assert!(s.share(&camera, Some(1)).await.unwrap().is_some());
    // Deleting the camera takes its shares with it.
    s.delete_camera(&camera).await.unwrap();
    assert_eq!(s.share(&camera, None).await.unwrap(), None);
}

/// Every part of the contract, in an order where each builds on the last.
async fn conformance(s: &dyn MetaStore) {
    accounts_and_credentials(s).await;
    challenges(s).await;
    versions_only_get_newer(s).await;
    pairing_and_cameras(s).await;
    keys_and_backups(s).await;
    objects(s).await;
    audit_log(s).await;
    removal(s).await;
    enrollments(s).await;
    account_log(s).await;
    sharing(s).await;
}

/// Many writers racing for the same next versions: exactly one wins each. Many devices asking
/// to join at once: no more wait than the limit allows.
async fn racing_writers(s: Arc<dyn MetaStore>) {
    let mut tasks = Vec::new();
    for writer in 0..8u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut won = Vec::new();
            for version in 10..30 {
                if s.put_roster(&BOB, version, &[writer]).await.is_ok() {
                    won.push(version);
                }
            }
            won
        }));
    }
    let mut won = Vec::new();
    for t in tasks {
        won.extend(t.await.unwrap());
    }
    won.sort_unstable();
    let before = won.len();
    won.dedup();
    assert_eq!(won.len(), before, "a version was stored twice");
    assert_eq!(won.last(), Some(&29));
    assert!(s.roster(&BOB, Some(29)).await.unwrap().is_some());

    // Log appends racing for the same sequence numbers: exactly one wins each, and the roster
    // version stored with it is the winner's.
    let mut tasks = Vec::new();
    for writer in 0..8u8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 1..=20u8 {
                let body = [writer];
                let a = append(i64::from(seq), seq - 1, seq, 100 + i64::from(seq), &body);
                let _ = s.append_log(&BOB, &a).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let entries = s.log_entries(&BOB, 0, 100).await.unwrap();
    assert_eq!(entries.len(), 20);
    for (seq, entry) in (1..=20i64).zip(&entries) {
        assert_eq!(
            s.roster(&BOB, Some(100 + seq)).await.unwrap().as_ref(),
            Some(entry),
            "entry {seq}"
        );
    }

    for round in 0..20u8 {
        let now = 10_000_000 + i64::from(round) * 1_000_000;
        let joins: Vec<_> = (0..6u8)
            .map(|n| {
                let s = s.clone();
                let row = EnrollmentRow {
                    account_id: BOB,
                    ..enrollment(100 + round * 6 + n, now)
                };
                tokio::spawn(async move { s.create_enrollment(&row, 2).await.is_ok() })
            })
            .collect();
        let mut accepted = 0;
        for j in joins {
            accepted += usize::from(j.await.unwrap());
        }
        assert_eq!(accepted, 2, "round {round}: the limit is 2 waiting");
        assert_eq!(s.open_enrollments(&BOB, now).await.unwrap().len(), 2);
        for e in s.open_enrollments(&BOB, now).await.unwrap() {
            s.close_enrollment(&BOB, &e.enrollment_id, now)
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keyhole.sqlite3");
    let store = Arc::new(SqlStore::open_sqlite(&path).await.unwrap());
    conformance(store.as_ref()).await;
    assert!(
        dir.path().join("keyhole.sqlite3-wal").exists(),
        "write-ahead log in use"
    );
    drop(store);
    let reopened = Arc::new(SqlStore::open_sqlite(&path).await.unwrap());
    assert!(reopened.account_by_username("bob").await.unwrap().is_some());
    racing_writers(reopened).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_keeps_the_contract() {
    let Some(pg) = Postgres::start() else {
        eprintln!("PostgreSQL is not installed: skipped (CI installs it and runs this)");
        return;
    };
    let store = Arc::new(SqlStore::open_postgres(&pg.url).await.unwrap());
    conformance(store.as_ref()).await;
    // A second server on the same database: migrations already applied, same data.
    let second = Arc::new(SqlStore::open_postgres(&pg.url).await.unwrap());
    assert!(second.account_by_username("bob").await.unwrap().is_some());
    racing_writers(second).await;
}

/// A server config with metadata in `pg` and blobs in `s3`.
fn scaled(dir: &std::path::Path, pg: &Postgres, s3: &S3Server) -> keyhole_server::Config {
    keyhole_server::Config {
        data_dir: dir.to_owned(),
        insecure_http: true,
        database_url: Some(Secret::new(pg.url.clone())),
        s3: Some(s3.config()),
        ..keyhole_server::Config::default()
    }
}

/// PostgreSQL and an S3 server, or `None` (skipped) where they are not installed.
fn scaled_stores() -> Option<(Postgres, S3Server)> {
    let stores = Postgres::start().zip(S3Server::start());
    if stores.is_none() {
        eprintln!("PostgreSQL or s3s-fs is not installed: skipped (CI installs both)");
    }
    stores
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_runs_on_postgres_and_s3() {
    let Some((pg, s3)) = scaled_stores() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(scaled(dir.path(), &pg, &s3)).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    let mut ids = Vec::new();
    for seq in 1..=3 {
        let (id, body) = seal(&camera, camera_id, &viewing, seq, 100_000);
        assert_eq!(
            upload(&s, &camera_token, id, body.clone()).await.status(),
            StatusCode::CREATED
        );
        // A retried upload is recognised, not stored twice.
        assert!(
            upload(&s, &camera_token, id, body)
                .await
                .status()
                .is_success()
        );
        ids.push(id.to_string());
    }
    assert_eq!(
        object_ids(&list_objects(&s, &ana.token, &camera_id.to_string()).await),
        ids
    );
    let (_, sealed) = seal(&camera, camera_id, &viewing, 2, 100_000);
    let got = ana.get(&s, &format!("/v1/objects/{}", ids[1])).await;
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.bytes().await.unwrap(), sealed);

    // A clip larger than one part object: joined by a multipart upload, read back by range.
    let (id, big) = seal(&camera, camera_id, &viewing, 4, 20 << 20);
    assert_eq!(
        upload(&s, &camera_token, id, big.clone()).await.status(),
        StatusCode::CREATED
    );
    let got = ana.get(&s, &format!("/v1/objects/{id}")).await;
    assert!(
        got.bytes().await.unwrap() == big,
        "the 20 MB clip reads back"
    );
    let part = ana
        .http
        .get(s.url(&format!("/v1/objects/{id}")))
        .bearer_auth(&ana.token)
        .header("range", "bytes=10000000-10000099")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.bytes().await.unwrap(), big[10_000_000..10_000_100]);

    // Nothing went to a SQLite file or the blob folder.
    assert!(!dir.path().join("keyhole.sqlite3").exists());
    assert!(!dir.path().join("blobs").exists());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_installation_moves_to_postgres_and_s3() {
    let Some((pg, s3)) = scaled_stores() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // A populated embedded installation: an account, a camera, clips, an audit log.
    let s = Server::start(dir.path()).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    let mut ids = Vec::new();
    for seq in 1..=3 {
        let (id, body) = seal(&camera, camera_id, &viewing, seq, 50_000);
        assert_eq!(
            upload(&s, &camera_token, id, body).await.status(),
            StatusCode::CREATED
        );
        ids.push(id.to_string());
    }
    let audit_before: serde_json::Value = ana.get(&s, "/v1/audit").await.json().await.unwrap();
    s.stop().await;

    // The scaled layout's settings, as a config file (the secret inside is not printed).
    let config = dir.path().join("scaled.toml");
    let s3c = s3.config();
    std::fs::write(
        &config,
        format!(
            "database_url = {:?}\n[s3]\nbucket = {:?}\nendpoint = {:?}\n\
             access_key_id = \"test\"\nsecret_access_key = \"testsecret\"\nallow_http = true\n",
            pg.url,
            s3c.bucket,
            s3c.endpoint.unwrap()
        ),
    )
    .unwrap();
    let migrate = || {
        std::process::Command::new(keyhole_testkit::process::binary("keyhole-server"))
            .arg("--data-dir")
            .arg(dir.path())
            .arg("--config")
            .arg(&config)
            .arg("migrate")
            .output()
            .unwrap()
    };
    let out = migrate();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("blobs: 3 copied to bucket keyhole, 0 already there"),
        "{stdout}"
    );
    assert!(stdout.contains("objects: 3 rows"), "{stdout}");
    assert!(
        !stdout.contains("postgres://") && !stdout.contains("testsecret"),
        "no secret is printed: {stdout}"
    );

    // The embedded stores moved aside: metadata from PostgreSQL, blobs from S3. Everything is
    // there, the same token still works, and the audit log goes on from where it was.
    for name in ["keyhole.sqlite3", "blobs"] {
        std::fs::rename(
            dir.path().join(name),
            dir.path().join(format!("{name}.moved")),
        )
        .unwrap();
    }
    let s = Server::start_with(scaled(dir.path(), &pg, &s3)).await;
    assert_eq!(
        object_ids(&list_objects(&s, &ana.token, &camera_id.to_string()).await),
        ids
    );
    let (_, sealed) = seal(&camera, camera_id, &viewing, 3, 50_000);
    let got = ana.get(&s, &format!("/v1/objects/{}", ids[2])).await;
    assert_eq!(got.bytes().await.unwrap(), sealed);
    let audit_after: serde_json::Value = ana.get(&s, "/v1/audit").await.json().await.unwrap();
    assert_eq!(audit_after, audit_before);
    let (id, body) = seal(&camera, camera_id, &viewing, 4, 50_000);
    assert_eq!(
        upload(&s, &camera_token, id, body).await.status(),
        StatusCode::CREATED,
        "the camera's credential moved too"
    );
    let state = keyhole_server::AppState::open(scaled(dir.path(), &pg, &s3))
        .await
        .unwrap();
    let report = keyhole_server::check::run(&state).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.objects, 4);
    s.stop().await;

    // Run again (as after an interruption): the blobs are found in place, and the copy into a
    // database that is no longer empty is refused.
    for name in ["keyhole.sqlite3", "blobs"] {
        std::fs::rename(
            dir.path().join(format!("{name}.moved")),
            dir.path().join(name),
        )
        .unwrap();
    }
    let out = migrate();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("blobs: 0 copied to bucket keyhole, 3 already there"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("already holds 1 account"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Retention runs on every server; they take turns, so what is below a camera's floor is
/// deleted and counted once however many sweep at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn servers_on_one_database_take_turns_at_retention() {
    let Some((pg, s3)) = scaled_stores() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_with(scaled(dir.path(), &pg, &s3)).await;
    let ana = Owner::new(&s, "ana", 1).await;
    let (camera, camera_id, camera_token, viewing) = ana.pair(&s, 2).await;
    for seq in 1..=8 {
        let (id, body) = seal(&camera, camera_id, &viewing, seq, 20_000);
        assert_eq!(
            upload(&s, &camera_token, id, body).await.status(),
            StatusCode::CREATED
        );
    }
    let floor = keyhole_core::retention::RetentionFloorBody {
        owner: ana.account.public(),
        camera_id,
        version: 1,
        issued_at: keyhole_core::Timestamp(1_795_735_205_000),
        keep_from: 6,
        max_age_days: 1,
    }
    .sign(ana.signer())
    .unwrap();
    let subject = (keyhole_core::log::EntryKind::Retention, camera_id.0);
    let logged = ana.append(&s, subject, 1, floor.encoded()).await;
    assert_eq!(logged.status(), StatusCode::CREATED);
    s.stop().await;

    // Four servers' states on the shared stores.
    let mut servers = Vec::new();
    for _ in 0..4 {
        servers.push(
            keyhole_server::AppState::open(scaled(dir.path(), &pg, &s3))
                .await
                .unwrap(),
        );
    }
    // While one holds the turn, the others are told to skip.
    let turn = servers[0].meta.try_lock("retention").await.unwrap();
    assert!(turn.is_some());
    assert!(
        keyhole_server::retention::sweep(&servers[1])
            .await
            .unwrap()
            .is_none()
    );
    drop(turn);

    // Keep the newest three: all four sweep at once, several times over.
    let mut deleted = 0;
    for _ in 0..5 {
        let sweeps: Vec<_> = servers
            .iter()
            .map(|state| {
                let state = state.clone();
                tokio::spawn(async move { keyhole_server::retention::sweep(&state).await })
            })
            .collect();
        for sweep in sweeps {
            if let Some(swept) = sweep.await.unwrap().unwrap() {
                deleted += swept.objects;
            }
        }
    }
    assert_eq!(deleted, 5, "exactly the five oldest went");
    let left: Vec<i64> = servers[0]
        .meta
        .objects(&camera_id.0, 0, 0..i64::MAX, 100)
        .await
        .unwrap()
        .iter()
        .map(|o| o.sequence)
        .collect();
    assert_eq!(left, [6, 7, 8]);
    let report = keyhole_server::check::run(&servers[0]).await.unwrap();
    assert!(report.is_clean(), "{report:?}");
}
