//! The hostile-server suite: the real camera agent and the real client talk to the real server
//! through [`HostileProxy`]s that tamper with what the server serves, one proxy for what the
//! owner's devices see and one for what the camera sees. Each test mounts one attack, checks
//! that the proxy really applied it, and checks that it is refused or reported with the message
//! that names it, and that nothing wrong is shown as fine.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::{ClientError, JoinRequest, Owner, Playback};
use keyhole_core::envelope::{Header, Layout, PREFIX_LEN, SealParams, Sealer};
use keyhole_core::event::{EventDetails, EventKind};
use keyhole_core::pairing::{PairingCode, PairingSecret, RegistrationProof};
use keyhole_core::record::{CameraRecordBody, CameraState};
use keyhole_core::recovery::{KdfParams, RecoveryPhrase};
use keyhole_core::report::{Checked, Report};
use keyhole_core::{
    AccountKey, CameraId, CameraKey, DeviceKeys, HpkeSecretKey, ObjectId, Timestamp,
};
use keyhole_http::Endpoint;
use keyhole_testkit::TestServer;
use keyhole_testkit::hostile::HostileProxy;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use reqwest::Method;
use serde_json::Value;

const NOW: Timestamp = Timestamp(1_795_735_205_000);
const PASSWORD: &str = "correct horse battery";
/// Bytes per recorded clip: five 64 KiB chunks.
const CLIP_LEN: usize = 300_000;

/// One account with one camera; the owner and the camera each behind their own proxy.
struct World {
    dir: tempfile::TempDir,
    server: TestServer,
    owner_view: HostileProxy,
    camera_view: HostileProxy,
    owner: Owner,
    phrase: RecoveryPhrase,
    camera: Agent,
    camera_id: CameraId,
    rng: ChaCha20Rng,
}

fn endpoint(url: &str) -> Endpoint {
    Endpoint {
        url: url.to_owned(),
        pin: None,
        allow_plain_http: false,
    }
}

/// An account on `server` whose owner talks through `owner_view`, with a camera (state in
/// `camera_dir`) paired through `camera_view`.
async fn account(
    name: &str,
    owner_view: &HostileProxy,
    camera_view: &HostileProxy,
    camera_dir: &std::path::Path,
    rng: &mut ChaCha20Rng,
) -> (Owner, RecoveryPhrase, Agent, CameraId) {
    let (mut owner, phrase) = Owner::create(
        &endpoint(&owner_view.url),
        name,
        PASSWORD,
        "phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap();
    let code = owner
        .start_pairing(&camera_view.url, None, rng)
        .await
        .unwrap();
    let camera = Agent::pair(&code.to_text(), camera_dir, AgentSettings::default(), rng)
        .await
        .unwrap();
    let camera_id = owner
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();
    (owner, phrase, camera, camera_id)
}

impl World {
    async fn new(seed: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let server = TestServer::start(&dir.path().join("server")).await;
        let owner_view = HostileProxy::start(&server.url).await;
        let camera_view = HostileProxy::start(&server.url).await;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let (owner, phrase, camera, camera_id) = account(
            "ana",
            &owner_view,
            &camera_view,
            &dir.path().join("camera"),
            &mut rng,
        )
        .await;
        Self {
            dir,
            server,
            owner_view,
            camera_view,
            owner,
            phrase,
            camera,
            camera_id,
            rng,
        }
    }

    /// The camera records and uploads `n` clips; the owner syncs. Returns their ids and bytes.
    async fn clips(&mut self, n: u8, captured_at: Timestamp) -> Vec<(ObjectId, Vec<u8>)> {
        let mut out = Vec::new();
        for i in 0..n {
            let video: Vec<u8> = (0..CLIP_LEN).map(|j| (j % 251) as u8 ^ i).collect();
            let id = self
                .camera
                .record_clip(&video, captured_at, &mut self.rng)
                .await
                .unwrap();
            out.push((id, video));
        }
        self.camera.upload_pending().await.unwrap();
        self.owner.sync_camera(&self.camera_id).await.unwrap();
        out
    }

    /// The full check: every object downloaded and opened, so attacks on the stored bytes
    /// show. (The listing-only check is attacked in
    /// `a_listing_is_verified_from_its_summaries_and_its_lies_are_caught`.)
    async fn report(&mut self) -> Report {
        self.owner
            .verify_full_at(&self.camera_id, keyhole_client::now(), &mut |_, _| {})
            .await
            .unwrap()
    }

    /// The listing-only check: the chain from the objects' summaries.
    async fn chain_problems(&mut self, object: &ObjectId) -> Vec<String> {
        let report = self.owner.verify(&self.camera_id).await.unwrap();
        let entry = report
            .entries
            .iter()
            .find(|e| e.listed_id == *object)
            .unwrap_or_else(|| panic!("{object} not listed:\n{report}"));
        entry.problems.iter().map(ToString::to_string).collect()
    }

    /// The problems the report finds with `object`, as text.
    async fn problems(&mut self, object: &ObjectId) -> Vec<String> {
        let report = self.report().await;
        let entry = report
            .entries
            .iter()
            .find(|e| e.listed_id == *object)
            .unwrap_or_else(|| panic!("{object} not listed:\n{report}"));
        entry.problems.iter().map(ToString::to_string).collect()
    }

    async fn export(&self, object: &ObjectId) -> Checked {
        let mut out = Vec::new();
        self.owner
            .export(&self.camera_id, object, &mut out)
            .await
            .unwrap()
    }

    /// The stored bytes of an object, read from the server's blob folder.
    fn stored(&self, object: &ObjectId) -> Vec<u8> {
        std::fs::read(
            self.dir
                .path()
                .join("server/blobs/objects")
                .join(hex::encode(&object.0[..1]))
                .join(object.to_string()),
        )
        .unwrap()
    }
}

fn get(path: String) -> impl Fn(&Method, &str) -> bool + Send + Sync + 'static {
    move |m: &Method, p: &str| *m == Method::GET && p == path
}

/// Answers `GET path` with 204 No Content: a server withholding what is there.
fn withhold(
    path: String,
) -> impl Fn(&Method, &str, &[u8]) -> Option<(reqwest::StatusCode, Vec<u8>)> + Send + Sync + 'static
{
    move |m: &Method, p: &str, _: &[u8]| {
        (*m == Method::GET && p == path).then(|| (reqwest::StatusCode::NO_CONTENT, Vec::new()))
    }
}

fn get_prefix(prefix: String) -> impl Fn(&Method, &str) -> bool + Send + Sync + 'static {
    move |m: &Method, p: &str| *m == Method::GET && p.starts_with(&prefix)
}

// ---------------------------------------------------------------------------------------------
// Keys: roster, pairing, camera records

/// A device the server inserts: a new entry appended to the signed roster's device list (the
/// count byte sits at offset 117), the signed tail (signer and signature) left as it was.
fn inject_device(roster: &mut Vec<u8>) {
    let signature = roster.split_off(roster.len() - keyhole_core::signer::TAIL_LEN);
    roster[117] += 1;
    let keys = DeviceKeys::generate(&mut ChaCha20Rng::seed_from_u64(99));
    roster.extend_from_slice(&[0xee; 16]);
    roster.push(6);
    roster.extend_from_slice(b"server");
    roster.extend_from_slice(&NOW.0.to_be_bytes());
    roster.extend_from_slice(&keys.signing.public().to_bytes());
    roster.extend_from_slice(&keys.hpke.public().0);
    roster.extend_from_slice(&signature);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_roster_with_an_injected_device_is_refused() {
    let w = World::new(1).await;
    // Every roster served, whichever version is asked for.
    w.owner_view
        .rewrite(get_prefix("/v1/roster".into()), inject_device);

    // Recovering the account reads the roster: refused.
    let refused = Owner::recover(
        &endpoint(&w.owner_view.url),
        "ana",
        PASSWORD,
        &w.phrase,
        "new phone",
        NOW,
        &mut ChaCha20Rng::seed_from_u64(2),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Untrusted(m) if m.contains("signature does not verify")),
        "{refused}"
    );
    // So is joining by approval.
    let refused = JoinRequest::start(
        &endpoint(&w.owner_view.url),
        "ana",
        PASSWORD,
        "tablet",
        &mut ChaCha20Rng::seed_from_u64(3),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Untrusted(m) if m.contains("signature does not verify")),
        "{refused}"
    );
    assert_eq!(w.owner_view.applied(), 2);
    assert_eq!(w.owner.devices().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_roster_shown_to_a_joining_device_is_refused() {
    let mut w = World::new(9).await;
    // Version 2 lists a laptop; the server keeps serving version 1 to whoever asks.
    common::add_device(&mut w.owner, "laptop", &mut w.rng).await;
    // The joining device is shown the account log as it was before the approval: each read
    // returns one entry, the last one it reads is the laptop's roster, and the entry that lists
    // the tablet never arrives.
    let joining_view = HostileProxy::start(&w.server.url).await;
    joining_view.rewrite(get_prefix("/v1/log?after=".into()), |entries| {
        entries.truncate(keyhole_core::log::ENTRY_LEN);
    });
    let mut tablet_rng = ChaCha20Rng::seed_from_u64(10);
    let mut joining = JoinRequest::start(
        &endpoint(&joining_view.url),
        "ana",
        PASSWORD,
        "tablet",
        &mut tablet_rng,
    )
    .await
    .unwrap();
    let pending = w.owner.pending_enrollments().await.unwrap();
    let (code, approval) = tokio::join!(
        joining.exchange(),
        w.owner.answer_enrollment(&pending[0], &mut w.rng)
    );
    assert_eq!(code.unwrap(), approval.as_ref().unwrap().code());
    let (joined, approved) = tokio::join!(
        joining.finish(&mut tablet_rng),
        w.owner
            .approve_enrollment(approval.unwrap(), NOW, &mut w.rng)
    );
    approved.unwrap();
    let refused = joined.unwrap_err();
    assert!(
        matches!(&refused, ClientError::Untrusted(m) if m.contains("does not list this device")),
        "{refused}"
    );
    assert!(joining_view.applied() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_camera_key_substituted_at_pairing_is_refused() {
    let mut w = World::new(4).await;
    let code = w
        .owner
        .start_pairing(&w.camera_view.url, None, &mut w.rng)
        .await
        .unwrap();
    // The server knows the token and the account key, not the pairing secret.
    let server_view = PairingCode {
        secret: PairingSecret::from_bytes(&[0; 32]),
        ..code.clone()
    };
    let server_key = CameraKey::generate(&mut w.rng);
    w.owner_view.rewrite(
        get(format!("/v1/pairing-tokens/{}/registration", code.token)),
        move |body| {
            let real = RegistrationProof::decode(body).unwrap();
            *body = RegistrationProof::create(&server_view, real.camera_id, &server_key).encode();
        },
    );
    let _garage = Agent::pair(
        &code.to_text(),
        &w.dir.path().join("garage"),
        AgentSettings::default(),
        &mut w.rng,
    )
    .await
    .unwrap();
    let refused = w
        .owner
        .finish_pairing(&code, "Garage", NOW, &mut w.rng)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ClientError::Untrusted(m) if m.contains("does not verify")),
        "{refused}"
    );
    assert_eq!(w.owner_view.applied(), 1);
    assert_eq!(w.owner.cameras().len(), 1, "no record was signed for it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_camera_record_is_flagged() {
    let mut w = World::new(5).await;
    w.clips(1, NOW).await;
    // A tablet is enrolled, then revoked: epoch 2. The server keeps showing the camera
    // version 1, so the camera keeps sealing to a key the tablet holds.
    let record = format!("/v1/cameras/{}/record", w.camera_id);
    w.camera_view.redirect(move |m, p| {
        (*m == Method::GET && p == record).then(|| format!("{record}?version=1"))
    });
    let (tablet_id, _) = common::add_device(&mut w.owner, "tablet", &mut w.rng).await;
    let epochs = w
        .owner
        .revoke_device(tablet_id, NOW, &mut w.rng)
        .await
        .unwrap();
    assert_eq!(epochs, vec![(w.camera_id, 2)]);
    let hour_later = Timestamp(NOW.0 + 3_600_000);
    let late = w.clips(1, hour_later).await;
    assert!(w.camera_view.applied() >= 1);
    let problems = w.problems(&late[0].0).await;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("retired epoch 1") && p.contains("withheld")),
        "{problems:?}"
    );
    let status = w
        .owner
        .camera_statuses(keyhole_client::now())
        .await
        .unwrap();
    assert!(status[0].stale_epoch);
}

fn foreign_record(camera_id: CameraId, camera_key: keyhole_core::CameraPublicKey) -> Vec<u8> {
    let other = AccountKey::from_seed(&[0x66; 32]);
    CameraRecordBody {
        account: other.public(),
        camera_id,
        version: 9,
        issued_at: NOW,
        name: "Porch".into(),
        state: CameraState::Active,
        camera_key,
        epoch: 9,
        viewing_key: HpkeSecretKey::from_bytes(&[0x67; 32]).public(),
    }
    .sign(keyhole_core::signer::SignerKey::Account(&other))
    .unwrap()
    .encoded()
    .to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_and_foreign_camera_records_are_refused_by_camera_and_client() {
    let mut w = World::new(6).await;
    w.owner
        .rotate_epoch(&w.camera_id, NOW, &mut w.rng)
        .await
        .unwrap();
    w.clips(1, NOW).await;
    let record = format!("/v1/cameras/{}/record", w.camera_id);
    let current = w.server.backdoor().await;
    let camera_key = {
        let row = current.meta.camera(&w.camera_id.0).await.unwrap().unwrap();
        keyhole_core::CameraPublicKey::from_bytes(&row.camera_key).unwrap()
    };

    // The camera, holding version 2, is offered version 1: refused, alerted, nothing sealed to
    // the old key.
    let to_v1 = record.clone();
    w.camera_view.redirect(move |m, p| {
        (*m == Method::GET && p == to_v1).then(|| format!("{to_v1}?version=1"))
    });
    let refused = w
        .camera
        .record_clip(b"during a rollback", NOW, &mut w.rng)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("older"), "{refused}");
    assert!(
        w.camera
            .status()
            .alerts
            .iter()
            .any(|a| a.contains("rollback")),
        "{:?}",
        w.camera.status().alerts
    );
    // The camera's alert reaches the owner as a sealed event.
    w.camera_view.clear();
    w.camera.upload_pending().await.unwrap();
    let report = w.report().await;
    assert!(report.is_clean(), "{report}");
    let alert = report.entries.last().unwrap().listed_id;
    let mut plain = Vec::new();
    w.owner
        .export(&w.camera_id, &alert, &mut plain)
        .await
        .unwrap();
    let alert = EventDetails::decode(&plain).unwrap();
    assert_eq!(alert.kind, EventKind::Alert);
    assert!(alert.note.contains("rollback"), "{}", alert.note);

    // A record signed by another account: refused by the camera and by the client.
    let forged = foreign_record(w.camera_id, camera_key);
    let f = forged.clone();
    w.camera_view
        .rewrite(get(record.clone()), move |body| *body = f.clone());
    let refused = w
        .camera
        .record_clip(b"under a forged record", NOW, &mut w.rng)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("another account"), "{refused}");
    // A device reads only the record versions the account log records, each checked against
    // its entry: a device restoring the account (which reads the whole history) refuses version
    // 2 replaced by the forgery, and version 2 replaced by version 1 (a rollback).
    let version_2 = format!("{record}?version=2");
    w.owner_view
        .rewrite(get(version_2.clone()), move |body| *body = forged.clone());
    let restore = async |w: &mut World| {
        Owner::recover(
            &endpoint(&w.owner_view.url),
            "ana",
            PASSWORD,
            &w.phrase,
            "new phone",
            NOW,
            &mut w.rng,
        )
        .await
        .unwrap_err()
    };
    let refused = restore(&mut w).await;
    assert!(
        matches!(&refused, ClientError::Untrusted(m)
            if m.contains("record version 2 of camera") && m.contains("not the one the account log records")),
        "{refused}"
    );
    w.owner_view.clear();
    w.owner_view.redirect(move |m, p| {
        (*m == Method::GET && p == version_2).then(|| format!("{record}?version=1"))
    });
    let refused = restore(&mut w).await;
    assert!(
        matches!(&refused, ClientError::Untrusted(m) if m.contains("not the one the account log records")),
        "{refused}"
    );
    // Nothing was changed by the refused restores: the account still has its one device.
    w.owner.sync().await.unwrap();
    assert_eq!(w.owner.devices().len(), 1);
    assert!(w.camera_view.applied() >= 2 && w.owner_view.applied() >= 2);
}

// ---------------------------------------------------------------------------------------------
// Objects: altered, cut, swapped, replayed, hidden

/// Where each chunk of a sealed object lies.
fn chunks(sealed: &[u8]) -> Vec<std::ops::Range<usize>> {
    let header = Header::decode(&sealed[..PREFIX_LEN]).unwrap();
    let layout = Layout::new(&header, sealed.len() as u64).unwrap();
    (0..layout.chunks())
        .map(|i| {
            let r = layout.chunk_range(i).unwrap();
            r.start as usize..r.end as usize
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn altered_and_cut_objects_are_reported_and_never_exported() {
    let mut w = World::new(7).await;
    let clips = w.clips(3, NOW).await;
    let target = clips[1].0;
    let sealed = w.stored(&target);
    let c = chunks(&sealed);
    assert_eq!(c.len(), 5);
    type Attack = Box<dyn Fn(&mut Vec<u8>) + Send + Sync>;
    let (c1, c2, last) = (c[1].clone(), c[2].clone(), c[4].clone());
    let attacks: Vec<(&str, Attack, &str)> = vec![
        (
            "a header byte flipped",
            Box::new(|b| b[40] ^= 1),
            "header is not signed",
        ),
        (
            "a payload byte flipped",
            Box::new(|b| b[PREFIX_LEN + 70_000] ^= 1),
            "chunk 1 failed authentication",
        ),
        (
            "the trailer flipped",
            Box::new(|b| *b.last_mut().unwrap() ^= 1),
            "signature over the content does not verify",
        ),
        (
            "two chunks swapped",
            Box::new(move |b| {
                let (one, two) = (b[c1.clone()].to_vec(), b[c2.clone()].to_vec());
                b.splice(c2.clone(), one);
                b.splice(c1.clone(), two);
            }),
            "chunk 1 failed authentication",
        ),
        (
            "a chunk dropped",
            {
                let r = c[2].clone();
                Box::new(move |b| {
                    b.drain(r.clone());
                })
            },
            "chunk 2 failed authentication",
        ),
        (
            "a chunk duplicated",
            {
                let r = c[2].clone();
                Box::new(move |b| {
                    let copy = b[r.clone()].to_vec();
                    b.splice(r.end..r.end, copy);
                })
            },
            "chunk 3 failed authentication",
        ),
        (
            "cut after four chunks",
            Box::new(move |b| b.truncate(last.start)),
            "clip is truncated: it stops after 4 chunk(s)",
        ),
        (
            "cut by 1000 bytes",
            Box::new(|b| b.truncate(b.len() - 1000)),
            "chunk 4 failed authentication",
        ),
    ];
    for (what, attack, message) in attacks {
        w.owner_view.clear();
        let before = w.owner_view.applied();
        w.owner_view
            .rewrite(get(format!("/v1/objects/{target}")), attack);
        let problems = w.problems(&target).await;
        assert!(
            problems.iter().any(|p| p.contains(message)),
            "{what}: {problems:?}"
        );
        assert!(
            matches!(w.export(&target).await, Checked::Failed { .. }),
            "{what}: exported"
        );
        assert!(w.owner_view.applied() > before, "{what} was not applied");
        // The untouched neighbours still verify.
        assert!(w.problems(&clips[0].0).await.is_empty(), "{what}");
    }

    // An event's thumbnail altered: the event is reported, not shown.
    w.owner_view.clear();
    let event = w
        .camera
        .record_event(
            &EventDetails {
                kind: EventKind::Doorbell,
                started_at: NOW,
                duration_ms: 1000,
                clip: Some(target),
                note: String::new(),
                thumbnail_jpeg: vec![0xab; 40_000],
            },
            &mut w.rng,
        )
        .await
        .unwrap();
    w.camera.upload_pending().await.unwrap();
    w.owner_view
        .rewrite(get(format!("/v1/objects/{event}")), |b| {
            let at = b.len() / 2;
            b[at] ^= 0x80;
        });
    let problems = w.problems(&event).await;
    assert!(
        problems.iter().any(|p| p.starts_with("tampered")),
        "{problems:?}"
    );
    assert!(matches!(w.export(&event).await, Checked::Failed { .. }));
}

/// Rewrites the listed entry of `object` in a listing's JSON with `change`.
fn listed_entry(
    object: ObjectId,
    change: impl Fn(&mut serde_json::Map<String, Value>) + Send + Sync + 'static,
) -> impl Fn(&mut Vec<u8>) + Send + Sync + 'static {
    move |body: &mut Vec<u8>| {
        let mut listing: Value = serde_json::from_slice(body).unwrap();
        for entry in listing["objects"].as_array_mut().unwrap() {
            if entry["object_id"] == object.to_string() {
                change(entry.as_object_mut().unwrap());
            }
        }
        *body = serde_json::to_vec(&listing).unwrap();
    }
}

/// A summary field changed by `change` on its decoded bytes.
fn summary_bytes(entry: &mut serde_json::Map<String, Value>, change: impl Fn(&mut Vec<u8>)) {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut bytes = b64.decode(entry["summary"].as_str().unwrap()).unwrap();
    change(&mut bytes);
    entry.insert("summary".into(), Value::String(b64.encode(bytes)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_is_verified_from_its_summaries_and_its_lies_are_caught() {
    let mut w = World::new(17).await;
    let clips = w.clips(3, NOW).await;
    let (first, second, third) = (clips[0].0, clips[1].0, clips[2].0);
    let listing = format!("/v1/cameras/{}/objects?after=0", w.camera_id);

    // Honest: the chain verifies without downloading a single object (the rule below counts
    // every object download).
    let before = w.owner_view.applied();
    w.owner_view.rewrite(
        |m: &Method, p: &str| *m == Method::GET && p.starts_with("/v1/objects/"),
        |_| {},
    );
    assert!(w.owner.verify(&w.camera_id).await.unwrap().is_clean());
    assert_eq!(w.owner_view.applied(), before);

    let third_summary = {
        let listed: Value = w.owner.api().get_json(&listing).await.unwrap();
        listed["objects"][2]["summary"].clone()
    };
    type Lie = Box<dyn Fn(&mut serde_json::Map<String, Value>) + Send + Sync>;
    let lies: Vec<(&str, Lie, &str)> = vec![
        (
            "a header byte of the summary flipped",
            Box::new(|e| summary_bytes(e, |b| b[40] ^= 1)),
            "header is not signed",
        ),
        (
            "the payload digest in the summary changed",
            Box::new(|e| summary_bytes(e, |b| b[PREFIX_LEN + 3] ^= 1)),
            "signature over the content does not verify",
        ),
        (
            "the size claims one more chunk",
            Box::new(|e| {
                let size = e["size"].as_u64().unwrap() + 65_552;
                e.insert("size".into(), size.into());
            }),
            "signature over the content does not verify",
        ),
        (
            "the size is impossible",
            Box::new(|e| {
                e.insert("size".into(), 100.into());
            }),
            "does not fit the chunk layout",
        ),
        (
            "the third clip's summary listed as the second",
            Box::new(move |e| {
                e.insert("summary".into(), third_summary.clone());
            }),
            "lists it under another id",
        ),
    ];
    for (what, lie, message) in lies {
        w.owner_view.clear();
        let before = w.owner_view.applied();
        w.owner_view
            .rewrite(get(listing.clone()), listed_entry(second, lie));
        let problems = w.chain_problems(&second).await;
        assert!(w.owner_view.applied() > before, "{what} was not applied");
        assert!(
            problems.iter().any(|p| p.contains(message)),
            "{what}: {problems:?}"
        );
        assert!(w.chain_problems(&first).await.is_empty(), "{what}");
    }

    // Without a summary the device falls back to opening the object, which verifies.
    w.owner_view.clear();
    w.owner_view.rewrite(
        get(listing.clone()),
        listed_entry(third, |e| {
            e.remove("summary");
        }),
    );
    assert!(w.chain_problems(&third).await.is_empty());

    // Stored bytes altered while the listing stays honest: the listing-only check cannot see
    // it, but nothing altered is ever exported, and the full check names it.
    w.owner_view.clear();
    w.owner_view
        .rewrite(get(format!("/v1/objects/{second}")), |b| {
            b[PREFIX_LEN + 70_000] ^= 1;
        });
    assert!(w.chain_problems(&second).await.is_empty());
    assert!(matches!(w.export(&second).await, Checked::Failed { .. }));
    let problems = w.problems(&second).await;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("chunk 1 failed authentication")),
        "{problems:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunk_made_by_a_holder_of_the_clip_key_is_caught_during_playback() {
    let mut w = World::new(18).await;
    let video: Vec<u8> = (0..CLIP_LEN).map(|j| (j % 251) as u8).collect();
    // The holder of the clip key: it repeats the camera's random draws (object ids, then the
    // clip key and the HPKE wrap), so it seals other video under the very same header,
    // with its own signing key — its chunks open under that header and clip key.
    w.camera.refresh_record(&mut w.rng).await.unwrap();
    let mut holder = w.rng.clone();
    let clip = w.camera.seal_clip(&video, NOW, &mut w.rng).unwrap();
    w.camera.upload_pending().await.unwrap();
    w.owner.sync_camera(&w.camera_id).await.unwrap();
    let sealed = w.stored(&clip);
    let header = Header::decode(&sealed).unwrap();
    let record = keyhole_core::record::SignedCameraRecord::decode(
        &w.owner
            .api()
            .get_bytes(&format!("/v1/cameras/{}/record", w.camera_id))
            .await
            .unwrap(),
    )
    .unwrap();
    // The agent draws an object id, and another for the parameters it then replaces.
    let _ = (ObjectId::random(&mut holder), ObjectId::random(&mut holder));
    let params = SealParams {
        kind: header.kind,
        suite: header.suite,
        chunk_log2: header.chunk_log2,
        camera_id: header.camera_id,
        object_id: header.object_id,
        epoch: header.epoch,
        sequence: header.sequence,
        previous: header.previous,
        captured_at: header.captured_at,
    };
    let other: Vec<u8> = vec![0x5a; CLIP_LEN];
    let holders_key = CameraKey::generate(&mut ChaCha20Rng::seed_from_u64(99));
    let mut forged = Vec::new();
    let mut sealer = Sealer::new(
        params,
        &record.unverified_body().viewing_key,
        &holders_key,
        &mut holder,
        &mut forged,
    )
    .unwrap();
    sealer.update(&other, &mut forged);
    let _ = sealer.finish(&mut forged);
    assert_eq!(
        forged[..172],
        sealed[..172],
        "the holder's header is the camera's"
    );
    let c = chunks(&sealed);
    let swapped = c[2].clone();
    let forged_chunk = forged[swapped.clone()].to_vec();

    // The server serves the holder's chunk 2 in every ranged read of it, and the honest
    // clip when the whole is fetched: the chunk opens, and the whole clip verifies.
    let at = swapped.clone();
    w.owner_view.rewrite(
        |m: &Method, p: &str| *m == Method::GET && p.starts_with("/v1/objects/"),
        move |b| {
            if b.len() == (at.end - at.start) {
                b.copy_from_slice(&forged_chunk);
            }
        },
    );
    let reader = w.owner.open_clip(&w.camera_id, &clip).await.unwrap();
    let chunk_size = header.chunk_size() as u64;
    let read = reader.read(2 * chunk_size..3 * chunk_size).await;
    assert!(w.owner_view.applied() > 0, "the chunk was not swapped");
    // Read before the whole clip is checked, the holder's chunk opens under the clip key (and
    // is named when the check ends); read after, it is refused before it is opened. Which
    // comes first is the network's to decide: both are shown (and `playback::tests` takes
    // each order in turn).
    match read {
        Ok(plain) => assert_eq!(
            plain,
            other[2 * chunk_size as usize..3 * chunk_size as usize],
            "the holder's chunk opens under the clip key"
        ),
        Err(ClientError::Untrusted(why)) => {
            assert!(why.contains("not the chunk the camera sealed"), "{why}");
        }
        Err(e) => panic!("{e}"),
    }
    // Bound to what the camera sealed: once the whole clip is checked, the swap is named, and
    // the clip is not verified.
    let outcome = reader.checked().await;
    assert!(
        matches!(&outcome, Playback::Tampered(why) if why.contains("chunk 2 served for playback")),
        "{outcome:?}"
    );
    assert!(reader.read(0..1000).await.is_err());
    // Read again after the check: refused before it is opened.
    let reader = w.owner.open_clip(&w.camera_id, &clip).await.unwrap();
    assert_eq!(reader.checked().await, Playback::Verified);
    assert_eq!(reader.read(0..1000).await.unwrap(), video[..1000]);
    let refused = reader.read(2 * chunk_size..3 * chunk_size).await;
    assert!(
        matches!(&refused, Err(ClientError::Untrusted(why)) if why.contains("not the chunk the camera sealed")),
        "{refused:?}"
    );
    assert!(matches!(reader.playback(), Playback::Tampered(_)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swapped_replayed_and_hidden_objects_are_caught() {
    let mut w = World::new(8).await;
    let clips = w.clips(3, NOW).await;
    let (first, second, third) = (clips[0].0, clips[1].0, clips[2].0);

    // Another of the account's cameras, and another account's camera.
    let mut garage_code = w
        .owner
        .start_pairing(&w.camera_view.url, None, &mut w.rng)
        .await
        .unwrap();
    let mut garage = Agent::pair(
        &garage_code.to_text(),
        &w.dir.path().join("garage"),
        AgentSettings::default(),
        &mut w.rng,
    )
    .await
    .unwrap();
    let garage_id = w
        .owner
        .finish_pairing(&garage_code, "Garage", NOW, &mut w.rng)
        .await
        .unwrap();
    garage_code.secret = PairingSecret::from_bytes(&[0; 32]);
    let garage_clip = garage
        .record_clip(b"garage", NOW, &mut w.rng)
        .await
        .unwrap();
    let garage_event = garage
        .record_event(
            &EventDetails {
                kind: EventKind::Motion,
                started_at: NOW,
                duration_ms: 1000,
                clip: Some(garage_clip),
                note: String::new(),
                thumbnail_jpeg: vec![0xcd; 100],
            },
            &mut w.rng,
        )
        .await
        .unwrap();
    garage.upload_pending().await.unwrap();
    w.owner.sync_camera(&garage_id).await.unwrap();
    let bob_view = HostileProxy::start(&w.server.url).await;
    let (_bob, _, mut bobs_camera, _) = account(
        "bob",
        &bob_view,
        &bob_view,
        &w.dir.path().join("bob"),
        &mut w.rng,
    )
    .await;
    let bobs = bobs_camera
        .record_clip(&[7; CLIP_LEN], NOW, &mut w.rng)
        .await
        .unwrap();
    bobs_camera.upload_pending().await.unwrap();
    let bobs_bytes = w.stored(&bobs);

    let serve = |from: ObjectId, to: ObjectId| {
        move |m: &Method, p: &str| {
            (*m == Method::GET && p == format!("/v1/objects/{from}"))
                .then(|| format!("/v1/objects/{to}"))
        }
    };
    let expect = |problems: Vec<String>, message: &str, what: &str| {
        assert!(
            problems.iter().any(|p| p.contains(message)),
            "{what}: {problems:?}"
        );
    };

    // The garage's clip served as the porch's second.
    w.owner_view.redirect(serve(second, garage_clip));
    expect(
        w.problems(&second).await,
        "sealed by another camera",
        "swap between cameras",
    );
    assert!(matches!(w.export(&second).await, Checked::Failed { .. }));
    // Bob's clip served as Ana's second.
    w.owner_view.clear();
    w.owner_view
        .rewrite(get(format!("/v1/objects/{second}")), move |b| {
            *b = bobs_bytes.clone();
        });
    expect(
        w.problems(&second).await,
        "sealed by another camera",
        "swap between accounts",
    );
    assert!(matches!(w.export(&second).await, Checked::Failed { .. }));
    // An old clip replayed in place of a new one.
    w.owner_view.clear();
    w.owner_view.redirect(serve(third, first));
    expect(
        w.problems(&third).await,
        "lists it under another id",
        "replay as new",
    );
    assert!(matches!(w.export(&third).await, Checked::Failed { .. }));
    // An old clip listed twice.
    let listing = format!("/v1/cameras/{}/objects", w.camera_id);
    w.owner_view.clear();
    w.owner_view.rewrite(get_prefix(listing.clone()), |b| {
        let mut page: Value = serde_json::from_slice(b).unwrap();
        let objects = page["objects"].as_array_mut().unwrap();
        if let Some(again) = objects.first().cloned() {
            objects.push(again);
        }
        *b = serde_json::to_vec(&page).unwrap();
    });
    let report = w.report().await;
    assert!(
        report
            .to_string()
            .contains("replayed: sequence 1 was already listed"),
        "{report}"
    );
    // A clip hidden from the listing: a gap.
    w.owner_view.clear();
    let hidden = second.to_string();
    w.owner_view.rewrite(get_prefix(listing), move |b| {
        let mut page: Value = serde_json::from_slice(b).unwrap();
        page["objects"]
            .as_array_mut()
            .unwrap()
            .retain(|o| o["object_id"] != hidden.as_str());
        *b = serde_json::to_vec(&page).unwrap();
    });
    let report = w.report().await;
    assert_eq!(report.missing, vec![2..=2], "{report}");
    assert!(!report.is_clean());
    // Another camera's event (and thumbnail) served for the porch's: refused.
    w.owner_view.clear();
    let porch_event = w
        .camera
        .record_event(
            &EventDetails {
                kind: EventKind::Doorbell,
                started_at: NOW,
                duration_ms: 1000,
                clip: Some(third),
                note: String::new(),
                thumbnail_jpeg: vec![0xef; 100],
            },
            &mut w.rng,
        )
        .await
        .unwrap();
    w.camera.upload_pending().await.unwrap();
    w.owner_view.redirect(serve(porch_event, garage_event));
    expect(
        w.problems(&porch_event).await,
        "sealed by another camera",
        "another camera's event",
    );
    assert!(matches!(
        w.export(&porch_event).await,
        Checked::Failed { .. }
    ));
    assert!(w.owner_view.applied() >= 6);
}

/// What a device once verified, the server cannot take back: with the newest clip hidden from
/// the listing, or every clip, the report names them missing — also after the device's key
/// store was saved and opened again — where a device without that memory would see a clean,
/// shorter history; and the camera list, which reads the newest object's signed header rather
/// than the server's word, says the server is withholding what this device saw.
#[tokio::test]
async fn objects_hidden_after_a_device_verified_them_are_caught() {
    let mut w = World::new(9).await;
    let clips = w.clips(3, NOW).await;
    assert!(w.report().await.is_clean());
    let listing = format!("/v1/cameras/{}/objects", w.camera_id);
    let hide = |keep: usize| {
        move |b: &mut Vec<u8>| {
            let mut page: Value = serde_json::from_slice(b).unwrap();
            page["objects"].as_array_mut().unwrap().truncate(keep);
            *b = serde_json::to_vec(&page).unwrap();
        }
    };

    // The camera list reads the newest object's signed header, not the server's fields.
    let status = &w
        .owner
        .camera_statuses(keyhole_client::now())
        .await
        .unwrap()[0];
    assert_eq!(status.latest.map(|l| l.sequence), Some(3));
    assert_eq!((status.withheld_after, &status.problem), (None, &None));
    // The server names an older clip as the newest, then none.
    let first = clips[0].0.to_string();
    w.owner_view.rewrite(get("/v1/cameras".into()), move |b| {
        let mut cameras: Value = serde_json::from_slice(b).unwrap();
        cameras[0]["latest"]["object_id"] = Value::String(first.clone());
        cameras[0]["latest"]["sequence"] = 9.into();
        *b = serde_json::to_vec(&cameras).unwrap();
    });
    let status = &w
        .owner
        .camera_statuses(keyhole_client::now())
        .await
        .unwrap()[0];
    assert_eq!(
        status.latest.map(|l| l.sequence),
        Some(1),
        "from the header"
    );
    assert_eq!(status.withheld_after, Some(3));
    w.owner_view.clear();
    w.owner_view.rewrite(get("/v1/cameras".into()), |b| {
        let mut cameras: Value = serde_json::from_slice(b).unwrap();
        cameras[0]["latest"] = Value::Null;
        *b = serde_json::to_vec(&cameras).unwrap();
    });
    let status = &w
        .owner
        .camera_statuses(keyhole_client::now())
        .await
        .unwrap()[0];
    assert_eq!((status.latest, status.withheld_after), (None, Some(3)));
    w.owner_view.clear();

    // The newest clip hidden.
    w.owner_view.rewrite(get_prefix(listing.clone()), hide(2));
    let report = w.report().await;
    assert_eq!(report.missing, vec![3..=3], "{report}");
    assert!(
        report
            .to_string()
            .contains("MISSING sequence 3: no verified object"),
        "{report}"
    );
    // Every clip hidden.
    w.owner_view.clear();
    w.owner_view.rewrite(get_prefix(listing.clone()), hide(0));
    let report = w.report().await;
    assert_eq!(report.missing, vec![1..=3], "{report}");
    assert!(!report.is_clean());
    // The device remembers across a restart: its key store keeps the mark.
    let store = w
        .owner
        .to_key_store("passphrase", KdfParams::MINIMUM, &mut w.rng)
        .unwrap();
    w.owner = Owner::from_key_store(&store, "passphrase").unwrap();
    let report = w.report().await;
    assert_eq!(report.missing, vec![1..=3], "{report}");
    // Shown again, the history is whole; a new clip moves the mark on.
    w.owner_view.clear();
    assert!(w.report().await.is_clean());
    let newer = w.clips(1, NOW).await;
    assert!(w.report().await.is_clean());
    w.owner_view.rewrite(get_prefix(listing), hide(3));
    let report = w.report().await;
    assert_eq!(report.missing, vec![4..=4], "{report}");
    assert_ne!(newer[0].0, clips[2].0);
}

/// What one device verified, the account's other devices expect: the phone's signed head
/// carries its mark, and the laptop — which never listed the newest clip — reports it missing
/// when the server hides it from the laptop alone.
#[tokio::test]
async fn what_one_device_verified_the_others_expect() {
    let mut w = World::new(10).await;
    let laptop_view = HostileProxy::start(&w.server.url).await;
    let mut laptop = common::join_by_approval(
        &mut w.owner,
        &endpoint(&laptop_view.url),
        ("ana", "laptop"),
        NOW,
        &mut w.rng,
    )
    .await;
    w.clips(3, NOW).await;
    assert!(w.report().await.is_clean());
    // The server hides the newest clip from the laptop, which has verified nothing yet.
    let listing = format!("/v1/cameras/{}/objects", w.camera_id);
    laptop_view.rewrite(get_prefix(listing), |b| {
        let mut page: Value = serde_json::from_slice(b).unwrap();
        page["objects"].as_array_mut().unwrap().truncate(2);
        *b = serde_json::to_vec(&page).unwrap();
    });
    // And withholds the camera's heads from it, which would name the clip too.
    laptop_view.answer(withhold(format!("/v1/cameras/{}/head", w.camera_id)));
    laptop.sync().await.unwrap();
    // (As of pairing time, so that the withheld heads do not yet make the camera silent.)
    let alone = laptop.verify_at(&w.camera_id, NOW).await.unwrap();
    assert!(alone.is_clean(), "nothing to expect yet: {alone}");
    // The phone syncs: its head now carries its mark. The laptop's next sync reads it.
    w.owner.sync().await.unwrap();
    laptop.sync().await.unwrap();
    let report = laptop.verify(&w.camera_id).await.unwrap();
    assert_eq!(report.missing, vec![3..=3], "{report}");
    assert_eq!(
        laptop.verified_up_to(&w.camera_id).map(|m| m.sequence),
        Some(3)
    );
}

/// The camera is a witness: every upload carries its signed head, so a device that has verified
/// nothing yet still finds the newest clip hidden, or every clip, and the camera list says the
/// server withholds them — where, without heads, both listings verify clean.
#[tokio::test]
async fn the_newest_objects_are_caught_by_the_cameras_head_on_a_device_that_saw_none() {
    let mut w = World::new(13).await;
    let listing = format!("/v1/cameras/{}/objects", w.camera_id);
    let hide = |keep: usize| {
        move |b: &mut Vec<u8>| {
            let mut page: Value = serde_json::from_slice(b).unwrap();
            page["objects"].as_array_mut().unwrap().truncate(keep);
            *b = serde_json::to_vec(&page).unwrap();
        }
    };
    // The server hides from the start, before the device has verified anything.
    w.owner_view.rewrite(get_prefix(listing.clone()), hide(2));
    w.owner_view.rewrite(get("/v1/cameras".into()), |b| {
        let mut cameras: Value = serde_json::from_slice(b).unwrap();
        cameras[0]["latest"] = Value::Null;
        *b = serde_json::to_vec(&cameras).unwrap();
    });
    w.clips(3, NOW).await;
    assert_eq!(w.owner.verified_up_to(&w.camera_id), None);
    let report = w.report().await;
    assert_eq!(report.missing, vec![3..=3], "{report}");
    assert!(!report.is_clean());
    let head = w.owner.camera_head(&w.camera_id).unwrap();
    assert_eq!((head.sequence, head.delivered), (3, 3));
    let status = &w
        .owner
        .camera_statuses(keyhole_client::now())
        .await
        .unwrap()[0];
    assert_eq!((status.latest, status.withheld_after), (None, Some(3)));
    assert_eq!(status.heard, Some(head.clock));
    // Every object hidden.
    w.owner_view.clear();
    w.owner_view.rewrite(get_prefix(listing), hide(0));
    let report = w.report().await;
    assert_eq!(report.missing, vec![1..=3], "{report}");
    assert!(
        report.to_string().contains("MISSING sequences 1–3"),
        "{report}"
    );
    assert!(w.owner_view.applied() >= 3);
}

/// A camera whose heads the server withholds — or answers with an old one — is shown silent
/// once the time it promised has passed, in the report and the camera list; one never heard
/// from is silent a day after pairing.
#[tokio::test]
async fn a_camera_whose_heads_are_withheld_is_shown_silent() {
    let mut w = World::new(14).await;
    w.clips(1, NOW).await;
    let report = w.report().await;
    assert!(report.is_clean(), "{report}");
    let held = w.owner.camera_head(&w.camera_id).unwrap();
    let soon = Timestamp(held.clock.0 + 60_000);
    let late = held.silent_from();
    async fn status(owner: &Owner, at: Timestamp) -> keyhole_client::CameraStatus {
        owner.camera_statuses(at).await.unwrap()[0].clone()
    }
    assert_eq!(status(&w.owner, soon).await.silent_since, None);
    // From now on the server keeps the camera's heads to itself, and its uploads' too.
    w.owner_view
        .answer(withhold(format!("/v1/cameras/{}/head", w.camera_id)));
    w.camera.send_head().await.unwrap();
    let report = w.owner.verify_at(&w.camera_id, soon).await.unwrap();
    assert!(report.is_clean(), "not yet: {report}");
    let report = w.owner.verify_at(&w.camera_id, late).await.unwrap();
    assert_eq!(report.silent_since, Some(held.clock), "{report}");
    assert!(!report.is_clean());
    assert!(report.to_string().contains("SILENT"), "{report}");
    assert_eq!(status(&w.owner, late).await.silent_since, Some(held.clock));
    assert!(w.owner_view.applied() >= 2);
    // Honest again: the camera's newest head clears it.
    w.owner_view.clear();
    let report = w.owner.verify_at(&w.camera_id, late).await.unwrap();
    assert_eq!(report.silent_since, None, "{report}");

    // A camera paired but never heard from.
    let quiet = World::new(15).await;
    let paired = quiet.owner.camera_statuses(NOW).await.unwrap()[0].clone();
    assert_eq!((paired.heard, paired.silent_since), (None, None));
    let day_later = Timestamp(NOW.0 + keyhole_core::report::DEFAULT_SILENT_AFTER_MS);
    let status = quiet.owner.camera_statuses(day_later).await.unwrap()[0].clone();
    assert_eq!(status.silent_since, Some(NOW));
}

/// A server that freezes one device's view of the account (its log and the devices' heads as
/// they were) while another device revokes a third is caught by the camera's fresh head, which
/// names the newer record and device list: the frozen device's sync says so instead of
/// carrying on. Without the check, that sync succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_account_history_is_caught_by_the_cameras_head() {
    let mut w = World::new(16).await;
    let laptop_view = HostileProxy::start(&w.server.url).await;
    let mut laptop = common::join_by_approval(
        &mut w.owner,
        &endpoint(&laptop_view.url),
        ("ana", "laptop"),
        NOW,
        &mut w.rng,
    )
    .await;
    let tablet = common::join_by_approval(
        &mut w.owner,
        &endpoint(&w.owner_view.url),
        ("ana", "tablet"),
        NOW,
        &mut w.rng,
    )
    .await;
    w.clips(1, NOW).await;
    // The server remembers the heads as the laptop saw them, and from here shows the laptop
    // nothing newer of the log.
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = seen.clone();
    laptop_view.rewrite(get("/v1/log/heads".into()), move |b| {
        keep.lock().unwrap().clone_from(b);
    });
    laptop.sync().await.unwrap();
    laptop_view.clear();
    let heads = seen.lock().unwrap().clone();
    assert!(!heads.is_empty());
    laptop_view.answer(move |m, p, _| {
        (*m == Method::GET && p.starts_with("/v1/log?"))
            .then(|| (reqwest::StatusCode::OK, Vec::new()))
    });
    laptop_view.answer(move |m, p, _| {
        (*m == Method::GET && p == "/v1/log/heads")
            .then(|| (reqwest::StatusCode::OK, heads.clone()))
    });
    // The phone revokes the tablet: a new device list and a new epoch for the camera, which
    // the camera picks up and names in its next head.
    w.owner
        .revoke_device(tablet.device_id(), NOW, &mut w.rng)
        .await
        .unwrap();
    w.camera.refresh_record(&mut w.rng).await.unwrap();
    w.camera.send_head().await.unwrap();
    let err = laptop.sync().await.unwrap_err();
    assert!(matches!(err, ClientError::Stale(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("old account history"), "{text}");
    assert!(text.contains("\"Porch\""), "{text}");
    assert!(laptop_view.applied() >= 2);
}

/// Retention the owner set lets old footage go without a false alarm, on every device of the
/// account, while anything else the server deletes is still reported missing; a clip stamped
/// long ago by a camera whose clock jumped back does not take newer footage with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_lets_old_footage_go_and_nothing_else_unnoticed() {
    const DAY: u64 = 86_400_000;
    let mut w = World::new(17).await;
    // Capture times around this machine's clock, so the camera's heads are fresh.
    let now = keyhole_client::now();
    w.clips(3, Timestamp(now.0 - 40 * DAY)).await;
    let kept = w.clips(2, Timestamp(now.0 - 60_000)).await;
    // Then the camera's clock jumps back to 1970 (a board without a clock, booted before it
    // learned the time): that clip looks old, but what came before it is not.
    w.clips(1, Timestamp(1_000)).await;
    w.owner.set_retention(&w.camera_id, 30, now).await.unwrap();
    assert_eq!(w.owner.retention(&w.camera_id).unwrap().keep_from, 1);
    // Verifying moves the floor past the three clips older than 30 days, and no further: the
    // server deletes below it.
    let report = w.owner.verify_at(&w.camera_id, now).await.unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(w.owner.retention(&w.camera_id).unwrap().keep_from, 4);
    let state = w.server.backdoor().await;
    let swept = keyhole_server::retention::sweep(&state).await.unwrap();
    assert_eq!(swept.unwrap().objects, 3);

    // No false alarm: the report starts at the floor, here and on a laptop that never saw the
    // old clips (the camera's head names all five, so without the floor it would call 1-3
    // missing).
    let report = w.owner.verify_at(&w.camera_id, now).await.unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!((report.first_sequence, report.entries.len()), (4, 3));
    assert!(
        report
            .to_string()
            .contains("from sequence 4: the owner's retention"),
        "{report}"
    );
    let mut laptop = common::join_by_approval(
        &mut w.owner,
        &endpoint(&w.owner_view.url),
        ("ana", "laptop"),
        NOW,
        &mut w.rng,
    )
    .await;
    laptop.sync().await.unwrap();
    assert_eq!(laptop.retention(&w.camera_id).unwrap().keep_from, 4);
    let report = laptop.verify_at(&w.camera_id, now).await.unwrap();
    assert!(report.is_clean(), "{report}");

    // A deletion the floor does not cover is reported, on both devices.
    assert!(state.meta.delete_object(&kept[0].0.0).await.unwrap());
    for device in [&mut w.owner, &mut laptop] {
        let report = device.verify_at(&w.camera_id, now).await.unwrap();
        assert_eq!(report.missing, vec![4..=4], "{report}");
    }
}

/// A live view the server cuts off is reported as cut off, not as ended; one the viewer stops
/// is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_view_cut_off_by_the_server_is_reported() {
    let mut w = World::new(18).await;
    w.owner.sync_camera(&w.camera_id).await.unwrap();
    let live = format!("/v1/cameras/{}/live", w.camera_id);
    let running = common::RunningCamera::start(w.camera, &w.dir.path().join("camera"), None).await;
    let limit = Some(std::time::Duration::from_secs(1));
    let watched = w
        .owner
        .watch_live(&w.camera_id, 30, limit, &mut Vec::new())
        .await
        .unwrap();
    assert!(watched.frames > 0 && !watched.cut, "{watched:?}");
    // The server passes on the session's prefix and a few frames, then ends the stream.
    w.owner_view.cut(
        move |m, p| *m == Method::GET && p.starts_with(&live),
        PREFIX_LEN + 4096,
    );
    let cut = w
        .owner
        .watch_live(&w.camera_id, 30, None, &mut Vec::new())
        .await
        .unwrap();
    assert!(cut.cut && !cut.ended, "{cut:?}");
    assert!(w.owner_view.applied() >= 1);
    running.stop().await.unwrap();
}

/// Starts world `w`'s camera (its synthetic scene streams live when asked) with the owner
/// holding its key; the camera leaves `w`. Yields the running camera and its live view's path.
macro_rules! run_camera {
    ($w:ident) => {{
        $w.owner.sync_camera(&$w.camera_id).await.unwrap();
        let live = format!("/v1/cameras/{}/live", $w.camera_id);
        let running =
            common::RunningCamera::start($w.camera, &$w.dir.path().join("camera"), None).await;
        (running, live)
    }};
}

/// The viewing key of `owner`'s first camera, as its key store keeps it.
fn held_viewing_key(owner: &Owner, dir: &std::path::Path, rng: &mut ChaCha20Rng) -> HpkeSecretKey {
    let kept: Value = serde_json::from_slice(&common::kept_key_store(owner, dir, rng)).unwrap();
    HpkeSecretKey::from_bytes(
        &hex::decode(kept["cameras"][0]["viewing_keys"]["1"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap(),
    )
}

/// A request for `camera`'s live view with `nonce`, as a device holding `viewing` (epoch 1)
/// makes it against the challenge in the camera's head.
async fn live_request(
    owner: &Owner,
    camera: &CameraId,
    camera_key: &keyhole_core::CameraPublicKey,
    viewing: &HpkeSecretKey,
    nonce: [u8; 16],
) -> keyhole_core::live_request::LiveRequest {
    let head = signed_head(owner, camera, camera_key).await;
    keyhole_core::live_request::LiveRequest::make(camera, 1, &head.live_challenge, viewing, nonce)
        .unwrap()
}

/// `camera`'s newest head as the server serves it, verified under `camera_key`, once it has
/// sent one.
async fn signed_head(
    owner: &Owner,
    camera: &CameraId,
    camera_key: &keyhole_core::CameraPublicKey,
) -> keyhole_core::camera_head::CameraHead {
    let head = loop {
        let head = owner
            .api()
            .get_bytes(&format!("/v1/cameras/{camera}/head"))
            .await
            .unwrap();
        if !head.is_empty() {
            break head;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    keyhole_core::camera_head::CameraHead::verify(&head, camera, camera_key).unwrap()
}

/// The camera's key as the server registered it.
async fn server_camera_key(
    server: &TestServer,
    camera: &CameraId,
) -> keyhole_core::CameraPublicKey {
    keyhole_core::CameraPublicKey::from_bytes(
        &server
            .backdoor()
            .await
            .meta
            .camera(&camera.0)
            .await
            .unwrap()
            .unwrap()
            .camera_key,
    )
    .unwrap()
}

/// Reads a live session as the server streams it (prefix and records) until `checkpoints` of
/// the camera's checkpoints are in: a recording someone could play back.
async fn record_live(
    owner: &Owner,
    live: &str,
    request: &keyhole_core::live_request::LiveRequest,
    checkpoints: usize,
) -> Vec<u8> {
    use futures_util::StreamExt as _;
    use keyhole_core::live::FRAME_HEADER_LEN;
    let asked = format!(
        "{live}?wait_secs=30&nonce={}&proof={}",
        hex::encode(request.nonce),
        hex::encode(request.proof)
    );
    let mut body = owner.api().get_stream(&asked).await.unwrap().bytes_stream();
    let mut recorded = Vec::new();
    let (mut at, mut seen) = (PREFIX_LEN, 0);
    while seen < checkpoints {
        recorded.extend_from_slice(&body.next().await.unwrap().unwrap());
        while recorded.len() >= at + FRAME_HEADER_LEN {
            let len = u32::from_be_bytes(recorded[at + 8..at + 12].try_into().unwrap()) as usize;
            if recorded.len() < at + FRAME_HEADER_LEN + len {
                break;
            }
            if recorded[at..at + 8] == [0xff; 8] {
                seen += 1;
            }
            at += FRAME_HEADER_LEN + len;
        }
    }
    recorded.truncate(at);
    recorded
}

/// A live session recorded earlier and played back by the server is refused as not live: the
/// camera's checkpoints name another request than this device's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_live_session_played_back_is_not_live() {
    let mut w = World::new(19).await;
    let (running, live) = run_camera!(w);
    let viewing = held_viewing_key(&w.owner, w.dir.path(), &mut w.rng);
    let camera_key = server_camera_key(&w.server, &w.camera_id).await;
    let request = live_request(&w.owner, &w.camera_id, &camera_key, &viewing, [1; 16]).await;
    let recorded = record_live(&w.owner, &live, &request, 12).await;
    let path = live.clone();
    w.owner_view.answer(move |m, p, _| {
        (*m == Method::GET && p.starts_with(&path))
            .then(|| (reqwest::StatusCode::OK, recorded.clone()))
    });
    let refused = w
        .owner
        .watch_live(&w.camera_id, 30, None, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("a recording played back, not the camera now"),
        "{refused}"
    );
    assert!(w.owner_view.applied() >= 1);
    running.stop().await.unwrap();
}

/// A live view the server holds back 10 s is shown with how far behind it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_view_held_back_says_how_far_behind_it_is() {
    let mut w = World::new(20).await;
    let (running, live) = run_camera!(w);
    let honest = w
        .owner
        .watch_live(
            &w.camera_id,
            30,
            Some(std::time::Duration::from_secs(1)),
            &mut Vec::new(),
        )
        .await
        .unwrap();
    assert!(honest.lag_ms.unwrap() < 5_000, "{honest:?}");
    w.owner_view.delay(
        move |m, p| *m == Method::GET && p.starts_with(&live),
        std::time::Duration::from_secs(10),
    );
    let held = w
        .owner
        .watch_live(
            &w.camera_id,
            30,
            Some(std::time::Duration::from_secs(1)),
            &mut Vec::new(),
        )
        .await
        .unwrap();
    assert!(held.frames > 0, "{held:?}");
    assert!(held.lag_ms.unwrap() >= 9_000, "{held:?}");
    assert!(held.delayed() && !honest.delayed());
    assert!(w.owner_view.applied() >= 1);
    running.stop().await.unwrap();
}

/// A frame a holder of the viewing key seals into the session opens under the session key, and
/// is caught: the camera's checkpoint lists another frame at its index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_frame_injected_by_a_holder_of_the_key_is_caught() {
    let mut w = World::new(21).await;
    let (running, live) = run_camera!(w);
    // The holder: this account's own device, its viewing key read from its key store.
    let viewing = held_viewing_key(&w.owner, w.dir.path(), &mut w.rng.clone());
    let camera_key = server_camera_key(&w.server, &w.camera_id).await;
    w.owner_view.live_records(
        move |m, p| *m == Method::GET && p.starts_with(&live),
        move |prefix, record| {
            let index = u64::from_be_bytes(record[..8].try_into().unwrap());
            if index != 3 {
                return vec![record.to_vec()];
            }
            let holder =
                keyhole_core::live::LiveOpener::new(prefix, &camera_key, &viewing).unwrap();
            vec![holder.seal_frame(3, false, b"a picture the camera never took")]
        },
    );
    let refused = w
        .owner
        .watch_live(
            &w.camera_id,
            30,
            Some(std::time::Duration::from_secs(3)),
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("live frame 3 is not one the camera sent"),
        "{refused}"
    );
    assert!(w.owner_view.applied() >= 1);
    running.stop().await.unwrap();
}

/// The server says a device wants live view, with a request no holder of the viewing key made:
/// the camera does not wake (it counts and says so); an honest request still works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_live_request_wakes_no_camera() {
    let mut w = World::new(22).await;
    let forged = keyhole_core::live_request::LiveRequest {
        nonce: [1; 16],
        proof: [2; 32],
    };
    let answer = serde_json::json!({"wanted": true, "requests": [hex::encode(forged.encode())]});
    w.camera_view.answer(move |m, p, _| {
        (*m == Method::GET && p.starts_with("/v1/live/wanted"))
            .then(|| (reqwest::StatusCode::OK, answer.to_string().into_bytes()))
    });
    let (running, _) = run_camera!(w);
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        let status: Value = http
            .get(format!("{}/status", running.control))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["live_refused"].as_u64().unwrap_or(0) >= 2 {
            break status;
        }
        assert!(std::time::Instant::now() < deadline, "{status}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(
        status["alerts"].as_array().unwrap().iter().any(|a| a
            .as_str()
            .unwrap()
            .contains("without a request from a device holding")),
        "{status}"
    );
    assert!(w.camera_view.applied() >= 2);
    // The server stops forging: a device holding the key is answered.
    w.camera_view.clear();
    let watched = w
        .owner
        .watch_live(
            &w.camera_id,
            30,
            Some(std::time::Duration::from_secs(1)),
            &mut Vec::new(),
        )
        .await
        .unwrap();
    assert!(watched.frames > 0, "{watched:?}");
    running.stop().await.unwrap();
}

/// Says `ms` milliseconds of a chime through `camera` as `owner` (16 kHz).
async fn say(owner: &Owner, camera: &CameraId, ms: usize) -> keyhole_client::talk::TalkOutcome {
    let said = keyhole_camera::sound::Tone::default().next(16 * ms, 16_000, true);
    let bytes: Vec<u8> = said.iter().flat_map(|s| s.to_le_bytes()).collect();
    owner
        .talk(camera, &mut bytes.as_slice(), 16_000, 30)
        .await
        .unwrap()
}

/// A talk stream the server plays to the camera again, or holds back, is not played: the camera
/// refuses a session it heard before, and sound more than 5 s late by its own clock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn talk_played_again_or_held_back_is_not_played() {
    let mut w = World::new(24).await;
    let talk = |m: &Method, p: &str| *m == Method::GET && p.starts_with("/v1/talk");
    // The server keeps what it passes to the camera.
    let kept = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let keep = kept.clone();
    w.camera_view.rewrite(talk, move |body| {
        if !body.is_empty() {
            keep.lock().unwrap().clone_from(body);
        }
    });
    let (running, _) = run_camera!(w);
    let said = say(&w.owner, &w.camera_id, 500).await;
    assert_eq!(said.packets, 25);
    let status = running.status_when(|s| s["talk_sessions"] == 1).await;
    assert_eq!(status["talk_played"], 25, "{status}");
    assert_eq!(status["talk_refused"], 0, "{status}");
    let heard = running.heard();
    assert_eq!(heard.len(), 25 * 320);
    let recorded = kept.lock().unwrap().clone();
    assert!(recorded.len() > keyhole_core::talk::HEADER_LEN + 25 * 16);

    // From now on the server holds talk back 6 s on its way to the camera.
    w.camera_view.clear();
    w.camera_view.delay(talk, std::time::Duration::from_secs(6));
    // Played again: refused as heard before.
    let again = w
        .owner
        .api()
        .put_stream(
            &format!("/v1/cameras/{}/talk", w.camera_id),
            recorded.into(),
        )
        .await;
    let status = running
        .status_when(|s| s["talk_refused"].as_u64() >= Some(1))
        .await;
    assert_eq!(status["talk_played"], 25, "{status} {again:?}");
    // Held back: every frame, the final one among them, is too late.
    say(&w.owner, &w.camera_id, 500).await;
    let status = running.status_when(|s| s["talk_sessions"] == 2).await;
    assert_eq!(status["talk_refused"], 1 + 26, "{status}");
    assert_eq!(status["talk_played"], 25, "{status}");
    assert_eq!(running.heard(), heard, "nothing more was played");
    assert!(w.camera_view.applied() >= 1);
    running.stop().await.unwrap();
}

/// Only a holder of the camera's current viewing key speaks through it: a session the server
/// seals with a device's key from before its revocation (the epoch before, or claiming the
/// current one) or with a key of its own is refused, and nothing is played; the owner is heard.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_holder_of_the_current_viewing_key_is_heard() {
    let mut w = World::new(25).await;
    // A tablet joins, keeping epoch 1's key, and is revoked: the camera moves to epoch 2.
    w.owner.sync_camera(&w.camera_id).await.unwrap();
    let kept = held_viewing_key(&w.owner, w.dir.path(), &mut w.rng.clone());
    let (tablet_id, _) = common::add_device(&mut w.owner, "tablet", &mut w.rng).await;
    w.owner
        .revoke_device(tablet_id, NOW, &mut w.rng)
        .await
        .unwrap();
    let (running, _) = run_camera!(w);
    say(&w.owner, &w.camera_id, 200).await;
    let status = running
        .status_when(|s| s["talk_sessions"] == 1 && s["epoch"] == 2)
        .await;
    assert_eq!(status["talk_played"], 10, "{status}");
    let heard = running.heard();

    let camera_key = server_camera_key(&w.server, &w.camera_id).await;
    let head = signed_head(&w.owner, &w.camera_id, &camera_key).await;
    let servers_own = HpkeSecretKey::from_bytes(&[0x5e; 32]);
    for (refused, (epoch, key)) in [(1, &kept), (2, &kept), (2, &servers_own)]
        .into_iter()
        .enumerate()
    {
        let mut session = keyhole_core::talk::TalkSealer::start(
            w.camera_id,
            epoch,
            &head.live_challenge,
            key,
            keyhole_core::envelope::Suite::ChaCha20Poly1305,
            &mut w.rng,
        )
        .unwrap();
        let mut body = session.header().to_vec();
        // A packet of silence, naming the camera's clock as it stands.
        let spoken = keyhole_core::talk::Spoken {
            seen: keyhole_camera::now(),
            since_ms: 0,
            audio: vec![0xf8, 0xff, 0xfe],
        };
        body.extend(session.seal(&spoken, true).unwrap());
        let _ = w
            .owner
            .api()
            .put_stream(&format!("/v1/cameras/{}/talk", w.camera_id), body.into())
            .await;
        let status = running
            .status_when(|s| s["talk_refused"].as_u64() >= Some(refused as u64 + 1))
            .await;
        assert_eq!(status["talk_played"], 10, "{status}");
    }
    assert_eq!(running.heard(), heard, "nothing more was played");
    running.stop().await.unwrap();
}

/// A key package the server damages, and one it makes up, are skipped and said: the recovery
/// goes on, every other package opens, and the whole history opens on the recovered device.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_key_packages_are_skipped_and_reported_never_the_end_of_a_recovery() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut w = World::new(12).await;
    let before = w.clips(1, NOW).await;
    w.owner
        .rotate_epoch(&w.camera_id, NOW, &mut w.rng)
        .await
        .unwrap();
    let after = w.clips(1, Timestamp(NOW.0 + 1000)).await;
    // The recovery key's packages come with a copy of the first with its last byte (in the
    // HPKE tag) flipped, and a package that does not decode.
    w.owner_view.rewrite(
        get("/v1/key-packages?recipient=recovery".into()),
        move |body| {
            let mut listing: Value = serde_json::from_slice(body).unwrap();
            let packages = listing["packages"].as_array_mut().unwrap();
            let mut damaged = b64.decode(packages[0].as_str().unwrap()).unwrap();
            *damaged.last_mut().unwrap() ^= 1;
            packages.insert(0, Value::String(b64.encode(damaged)));
            packages.insert(0, Value::String(b64.encode(b"not a key package")));
            *body = serde_json::to_vec(&listing).unwrap();
        },
    );
    let (mut recovered, _) = Owner::recover(
        &endpoint(&w.owner_view.url),
        "ana",
        PASSWORD,
        &w.phrase,
        "new phone",
        NOW,
        &mut w.rng,
    )
    .await
    .unwrap();
    assert_eq!(w.owner_view.applied(), 1);
    let damaged = recovered.damaged_key_packages().to_vec();
    assert_eq!(damaged.len(), 2, "{damaged:?}");
    assert!(damaged.iter().any(|d| d.contains("does not decode")));
    assert!(
        damaged
            .iter()
            .any(|d| d.contains(&format!("camera {}", w.camera_id)))
    );
    for (id, video) in before.iter().chain(&after) {
        let mut plain = Vec::new();
        recovered
            .export(&w.camera_id, id, &mut plain)
            .await
            .unwrap();
        assert_eq!(plain, *video);
    }
    // A listing without them: nothing to say.
    w.owner_view.clear();
    recovered.sync().await.unwrap();
    assert!(recovered.damaged_key_packages().is_empty());
}

/// What the announcement channel says is a hint, never evidence: a server announcing objects
/// that do not exist, for the device's camera and for a camera it does not know, makes the
/// device sync and find nothing new; its index keeps only what the camera sealed, and its mark
/// does not move to the announced sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn announcements_are_hints_and_their_lies_show_nothing() {
    use keyhole_client::wire::announce::Message;
    let mut w = World::new(41).await;
    w.clips(2, NOW).await;
    let dir = tempfile::tempdir().unwrap();
    let mut index = w.owner.open_index(&dir.path().join("index")).unwrap();
    w.owner
        .sync_index(&w.camera_id, &mut index, keyhole_client::now(), &mut w.rng)
        .await
        .unwrap();
    let held = index.resume_from(&w.camera_id).unwrap();
    assert!(held.is_some_and(|h| h < 999));

    let stranger = [7u8; 16];
    let lies: String = [
        Message::Ready,
        Message::Objects {
            camera: w.camera_id.0,
            sequence: 999,
        },
        Message::Objects {
            camera: stranger,
            sequence: 1,
        },
    ]
    .iter()
    .map(Message::encode)
    .collect();
    w.owner_view.answer(move |m, p, _| {
        (*m == Method::GET && p == "/v1/announcements")
            .then(|| (reqwest::StatusCode::OK, lies.clone().into_bytes()))
    });
    let mut channel = w.owner.announcements().await.unwrap();
    assert_eq!(
        channel.next().await.unwrap(),
        Message::Objects {
            camera: w.camera_id.0,
            sequence: 999
        }
    );
    let report = w
        .owner
        .sync_index(&w.camera_id, &mut index, keyhole_client::now(), &mut w.rng)
        .await
        .unwrap();
    assert!(report.is_clean(), "{report}");
    assert_eq!(
        index.resume_from(&w.camera_id).unwrap(),
        held,
        "nothing new is taken from the announcement"
    );
    assert_eq!(
        channel.next().await.unwrap(),
        Message::Objects {
            camera: stranger,
            sequence: 1
        }
    );
    assert!(
        w.owner
            .sync_index(
                &keyhole_core::CameraId(stranger),
                &mut index,
                keyhole_client::now(),
                &mut w.rng
            )
            .await
            .is_err(),
        "a camera the device holds no record of is not synced"
    );
    assert!(matches!(
        channel.next().await,
        Err(ClientError::Announcements(_))
    ));
    assert!(w.owner_view.applied() > 0, "the lies were told");
}

/// A server cannot make a device hold more than it should: a listing padded past the answer
/// limit (still valid JSON: whitespace) is refused as it arrives, and a live record whose
/// length is longer than the session's chunks is refused at its header, before the device
/// buffers what follows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_and_live_records_longer_than_allowed_are_refused_not_held() {
    let mut w = World::new(43).await;
    w.clips(1, NOW).await;
    let listing = format!("/v1/cameras/{}/objects", w.camera_id);
    w.owner_view.rewrite(
        move |m, p| *m == Method::GET && p.starts_with(&listing),
        |body| body.resize(keyhole_client::api::MAX_ANSWER + 1, b' '),
    );
    let refused = w.owner.verify(&w.camera_id).await.unwrap_err();
    assert!(refused.to_string().contains("answer is over"), "{refused}");
    assert!(w.owner_view.applied() >= 1);
    w.owner_view.clear();

    let (running, live) = run_camera!(w);
    w.owner_view.live_records(
        move |m, p| *m == Method::GET && p.starts_with(&live),
        |_, record| {
            let mut huge = record.to_vec();
            huge[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
            vec![huge]
        },
    );
    let refused = w
        .owner
        .watch_live(
            &w.camera_id,
            30,
            Some(std::time::Duration::from_secs(3)),
            &mut Vec::new(),
        )
        .await
        .unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("longer than the session's chunks"),
        "{refused}"
    );
    assert!(w.owner_view.applied() >= 1);
    running.stop().await.unwrap();
}
