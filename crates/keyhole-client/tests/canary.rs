//! The plaintext canary: a recognisable marker rendered into the camera's H.264 (an SEI message
//! in every key frame), played into its sound (as tones, encoded as Opus) and written into event
//! notes and thumbnails. After a full run — events,
//! live view, a device enrolled and revoked, the camera removed and transferred to another
//! account — neither the server's database, its blob folder, its log (at debug level) nor the
//! bytes it received or sent on the socket contain the canary, or any private key of the
//! accounts, devices or camera, raw or in hex.
//!
//! Each search is shown to work: the same search finds the canary in what the owner's device
//! decrypted. The sound's canary is heard in the decrypted clip's sound, and the Opus packets
//! that carry it, taken from that clip, are searched for like the canary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::RunningCamera;
use keyhole_camera::{Agent, AgentSettings};
use keyhole_client::Owner;
use keyhole_client::core::envelope::ObjectKind;
use keyhole_client::core::event::{EventDetails, EventKind};
use keyhole_client::core::keystore::KeyStore;
use keyhole_client::core::recovery::{KdfParams, RecoveryBackup};
use keyhole_client::core::report::Checked;
use keyhole_client::core::{CameraId, DeviceId, ObjectId, Timestamp};
use keyhole_http::Endpoint;
use keyhole_testkit::capture::Capture;
use keyhole_testkit::process::ServerProcess;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::Value;

const CANARY: &str = "KEYHOLE-CANARY-7c1d5e0a93b2";
const PASSWORD: &str = "correct horse battery";
const NOW: Timestamp = Timestamp(1_795_735_205_000);

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The Opus packets of a decrypted clip's sound, after checking the canary is heard in it; the
/// longest three come back (each tens of bytes: no chance match in what the server holds).
fn sound_packets(clip: &[u8]) -> Vec<Vec<u8>> {
    use keyhole_camera::sound::{MARKER_BIT_MS, MARKER_ONE_HZ, MARKER_ZERO_HZ};
    let audio = keyhole_media::mp4::read(clip)
        .unwrap()
        .audio
        .expect("the clip has sound");
    let mut decoder = keyhole_sound::OpusDecoder::new(16_000).unwrap();
    let mut pcm = Vec::new();
    for frame in &audio.frames {
        pcm.extend(decoder.decode(&frame.data).unwrap());
    }
    assert!(
        keyhole_testkit::hears_marker(
            &pcm,
            16_000,
            MARKER_BIT_MS,
            (MARKER_ZERO_HZ, MARKER_ONE_HZ),
            CANARY.as_bytes()
        ),
        "the canary is heard in the clip's sound"
    );
    let mut packets: Vec<Vec<u8>> = audio.frames.into_iter().map(|f| f.data).collect();
    packets.sort_by_key(|p| std::cmp::Reverse(p.len()));
    packets.truncate(3);
    assert!(packets.iter().all(|p| p.len() >= 16), "{packets:?}");
    packets
}

/// What the camera's speaker plays for `said` (16 kHz), and the three longest of the Opus
/// packets it travels in: encoded as the owner's device encodes it (20 ms packets, the last
/// padded with silence), decoded as the camera decodes it.
fn as_played(said: &[i16]) -> (Vec<i16>, Vec<Vec<u8>>) {
    let mut encoder =
        keyhole_sound::OpusEncoder::new(16_000, keyhole_client::talk::TALK_BITRATE).unwrap();
    let mut decoder = keyhole_sound::OpusDecoder::new(16_000).unwrap();
    let mut padded = said.to_vec();
    padded.resize(said.len().div_ceil(320) * 320, 0);
    let mut packets: Vec<Vec<u8>> = encoder
        .push(0, &padded)
        .unwrap()
        .into_iter()
        .map(|s| s.data)
        .collect();
    let pcm = packets
        .iter()
        .flat_map(|p| decoder.decode(p).unwrap())
        .collect();
    packets.sort_by_key(|p| std::cmp::Reverse(p.len()));
    packets.truncate(3);
    assert!(packets.iter().all(|p| p.len() >= 16), "{packets:?}");
    (pcm, packets)
}

/// `user`'s recovery backup, fetched with a fresh password login.
async fn recovery_backup(
    http: &reqwest::Client,
    url: &str,
    user: &str,
    rng: &mut ChaCha20Rng,
) -> Vec<u8> {
    let login: Value = http
        .post(format!("{url}/v1/login"))
        .json(&serde_json::json!({"username": user, "password": PASSWORD, "device_id": DeviceId::random(rng).to_string()}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    http.get(format!("{url}/v1/recovery-backup"))
        .bearer_auth(login["token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// Every private key a device holds, from its key store's contents: the device's two keys and
/// every viewing key (no device holds the account key).
fn device_secrets(owner: &Owner) -> Vec<Vec<u8>> {
    let sealed = owner
        .to_key_store(
            "passphrase",
            KdfParams::MINIMUM,
            &mut ChaCha20Rng::seed_from_u64(0),
        )
        .unwrap();
    let contents = KeyStore::decode(&sealed)
        .unwrap()
        .open(b"passphrase")
        .unwrap();
    let json: Value = serde_json::from_slice(&contents).unwrap();
    assert!(
        json.get("account_key").is_none(),
        "no device keeps the account key"
    );
    let mut secrets: Vec<Vec<u8>> = ["device_signing_key", "device_hpke_key"]
        .iter()
        .map(|k| hex::decode(json[k].as_str().unwrap()).unwrap())
        .collect();
    for camera in json["cameras"].as_array().unwrap() {
        for key in camera["viewing_keys"].as_object().unwrap().values() {
            secrets.push(hex::decode(key.as_str().unwrap()).unwrap());
        }
    }
    secrets
}

/// The camera's signing key, from its identity file.
fn camera_secret(state: &Path) -> Vec<u8> {
    let identity: Value =
        serde_json::from_slice(&std::fs::read(state.join("identity")).unwrap()).unwrap();
    hex::decode(identity["signing_key"].as_str().unwrap()).unwrap()
}

fn endpoint(url: &str) -> Endpoint {
    Endpoint {
        url: url.to_owned(),
        pin: None,
        allow_plain_http: false,
    }
}

async fn pair(
    owner: &mut Owner,
    url: &str,
    state: &Path,
    rng: &mut ChaCha20Rng,
) -> (Agent, CameraId) {
    let code = owner.start_pairing(url, None, rng).await.unwrap();
    let camera = Agent::pair(&code.to_text(), state, AgentSettings::default(), rng)
        .await
        .unwrap();
    let id = owner
        .finish_pairing(&code, "Porch", NOW, rng)
        .await
        .unwrap();
    (camera, id)
}

/// An event whose note and thumbnail carry the canary, recorded and uploaded.
async fn canary_event(camera: &mut Agent, rng: &mut ChaCha20Rng) -> ObjectId {
    let mut thumbnail = vec![0xff, 0xd8];
    thumbnail.extend_from_slice(CANARY.as_bytes());
    thumbnail.extend_from_slice(&[0xff, 0xd9]);
    let id = camera
        .record_event(
            &EventDetails {
                kind: EventKind::External,
                started_at: NOW,
                duration_ms: 0,
                clip: None,
                note: format!("gate opened by {CANARY}"),
                thumbnail_jpeg: thumbnail,
            },
            rng,
        )
        .await
        .unwrap();
    camera.upload_pending().await.unwrap();
    id
}

async fn opened(owner: &mut Owner, camera: &CameraId, object: &ObjectId) -> Vec<u8> {
    owner.sync_camera(camera).await.unwrap();
    let mut plain = Vec::new();
    let checked = owner.export(camera, object, &mut plain).await.unwrap();
    assert!(matches!(checked, Checked::Verified(_)));
    plain
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_never_holds_or_sees_plaintext_or_private_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    let log = dir.path().join("server.log");
    let server = ServerProcess::spawn_logged(&data, &log);
    let wire = Capture::start(&server.url).await;
    let rng = &mut ChaCha20Rng::seed_from_u64(31);
    let (mut ana, ana_phrase) = Owner::create(
        &endpoint(&wire.url),
        "ana",
        PASSWORD,
        "phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap();
    let state = dir.path().join("camera");
    let (camera, camera_id) = pair(&mut ana, &wire.url, &state, rng).await;
    let mut secrets = vec![camera_secret(&state)];

    // The camera runs: the synthetic scene with the canary in every key frame; a doorbell
    // event, then live view.
    let running = RunningCamera::start(camera, &state, Some(CANARY)).await;
    let control = running.control.clone();
    let http = reqwest::Client::new();
    http.post(format!("{control}/doorbell"))
        .send()
        .await
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status: Value = http
            .get(format!("{control}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["uploaded"].as_u64() >= Some(2) && status["spool_objects"] == 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no upload: {status}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    ana.sync_camera(&camera_id).await.unwrap();
    let mut live = Vec::new();
    let watched = ana
        .watch_live(&camera_id, 30, Some(Duration::from_secs(2)), &mut live)
        .await
        .unwrap();
    assert!(watched.frames > 10);
    assert!(
        contains(&live, CANARY.as_bytes()),
        "the live video carries the canary"
    );

    // Talk-back: the canary said as tones through the camera's speaker, which plays exactly
    // what Opus makes of what was said.
    let said =
        keyhole_camera::sound::Tone::with_marker(CANARY.as_bytes()).next(16_000 * 5, 16_000, false);
    let said_bytes: Vec<u8> = said.iter().flat_map(|s| s.to_le_bytes()).collect();
    let talked = ana
        .talk(&camera_id, &mut said_bytes.as_slice(), 16_000, 30)
        .await
        .unwrap();
    assert_eq!(talked.packets, 250);
    let status = running
        .status_when(|s| s["talk_sessions"].as_u64() >= Some(1))
        .await;
    assert_eq!(status["talk_refused"], 0, "{status}");
    let (played, talk_packets) = as_played(&said);
    let heard = running.heard();
    assert_eq!(heard.len(), played.len());
    assert!(heard == played, "the speaker plays what was said");
    assert!(
        keyhole_testkit::hears_marker(
            &heard,
            16_000,
            keyhole_camera::sound::MARKER_BIT_MS,
            (
                keyhole_camera::sound::MARKER_ZERO_HZ,
                keyhole_camera::sound::MARKER_ONE_HZ
            ),
            CANARY.as_bytes()
        ),
        "the canary is heard from the camera's speaker"
    );
    running.stop().await.unwrap();

    // The recorded clip opens with the canary in it.
    ana.sync_camera(&camera_id).await.unwrap();
    let report = ana.verify(&camera_id).await.unwrap();
    assert!(report.is_clean(), "{report}");
    // The press's event comes first (sealed at once), then its clip.
    let clip = report
        .entries
        .iter()
        .find(|e| e.header.as_ref().map(|h| h.kind) == Some(ObjectKind::Clip))
        .expect("the press's clip")
        .listed_id;
    let opened_clip = opened(&mut ana, &camera_id, &clip).await;
    assert!(contains(&opened_clip, CANARY.as_bytes()));
    let sound = sound_packets(&opened_clip);

    // An event with the canary in its note and thumbnail.
    let mut camera = Agent::open(&state, AgentSettings::default()).unwrap();
    let event = canary_event(&mut camera, rng).await;
    assert!(contains(
        &opened(&mut ana, &camera_id, &event).await,
        CANARY.as_bytes()
    ));

    // A device enrolled, then revoked: a new epoch; another canary event under it.
    let (tablet_id, _) = common::add_device(&mut ana, "tablet", rng).await;
    ana.revoke_device(tablet_id, NOW, rng).await.unwrap();
    let event = canary_event(&mut camera, rng).await;
    assert!(contains(
        &opened(&mut ana, &camera_id, &event).await,
        CANARY.as_bytes()
    ));

    // Ana's keys (every epoch's viewing key among them), a recovered device's, and the
    // account and recovery keys from the backup. Recovery removes the phone (lost, as far as the
    // phrase's holder is concerned) and moves the camera to a new epoch.
    secrets.extend(device_secrets(&ana));
    let (mut recovered, _) = Owner::recover(
        &endpoint(&wire.url),
        "ana",
        PASSWORD,
        &ana_phrase,
        "laptop",
        NOW,
        rng,
    )
    .await
    .unwrap();
    secrets.extend(device_secrets(&recovered));
    let backup = recovery_backup(&http, &server.url, "ana", rng).await;
    let opened_backup = RecoveryBackup::decode(&backup)
        .unwrap()
        .open(&ana_phrase)
        .unwrap();
    secrets.push(opened_backup.recovery_key.to_bytes().to_vec());
    secrets.push(opened_backup.account_key.seed().to_vec());

    // Removed, reset, and paired into Bob's account: his canary event opens for him.
    recovered
        .remove_camera(&camera_id, true, NOW)
        .await
        .unwrap();
    drop(camera);
    std::fs::remove_dir_all(&state).unwrap();
    let (mut bob, bob_phrase) = Owner::create(
        &endpoint(&wire.url),
        "bob",
        PASSWORD,
        "bob's phone",
        KdfParams::MINIMUM,
        NOW,
        rng,
    )
    .await
    .unwrap();
    let (mut camera, bobs_camera) = pair(&mut bob, &wire.url, &state, rng).await;
    secrets.push(camera_secret(&state));
    let event = canary_event(&mut camera, rng).await;
    assert!(contains(
        &opened(&mut bob, &bobs_camera, &event).await,
        CANARY.as_bytes()
    ));
    secrets.extend(device_secrets(&bob));
    let bob_backup = recovery_backup(&http, &server.url, "bob", rng).await;
    secrets.push(
        RecoveryBackup::decode(&bob_backup)
            .unwrap()
            .open(&bob_phrase)
            .unwrap()
            .account_key
            .seed()
            .to_vec(),
    );
    server.stop();

    // Now search: the database and blob folder, the log, and both directions of the wire.
    let mut places: Vec<(String, Vec<u8>)> = files(&data)
        .into_iter()
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    let log_bytes = std::fs::read(&log).unwrap();
    assert!(
        contains(&log_bytes, b"DEBUG") || contains(&log_bytes, b"INFO"),
        "the server logged"
    );
    // A log written to a file carries no terminal colour codes.
    assert!(
        !log_bytes.contains(&0x1b),
        "escape sequences in the server log"
    );
    places.push(("server log".into(), log_bytes));
    places.push(("bytes the server received".into(), wire.received()));
    places.push(("bytes the server sent".into(), wire.sent()));
    // The capture really saw the uploads: the stored clip's sealed bytes are in it.
    let stored_clip = std::fs::read(
        data.join("blobs/objects")
            .join(hex::encode(&clip.0[..1]))
            .join(clip.to_string()),
    )
    .unwrap();
    let received = &places[places.len() - 2].1;
    assert!(contains(
        received,
        &stored_clip[..stored_clip.len().min(2048)]
    ));
    secrets.sort();
    secrets.dedup();
    // Two account keys, three devices' two keys each, Ana's recovery key, four viewing keys
    // (three epochs of Ana's camera, one of Bob's), two camera keys.
    assert_eq!(secrets.len(), 15, "{} distinct secrets", secrets.len());
    let mut needles: Vec<(String, Vec<u8>)> =
        vec![("the canary".into(), CANARY.as_bytes().to_vec())];
    for (i, packet) in sound.into_iter().enumerate() {
        needles.push((format!("sound packet {i} of the canary"), packet));
    }
    for (i, packet) in talk_packets.into_iter().enumerate() {
        needles.push((format!("talk-back packet {i} of the canary"), packet));
    }
    for (i, secret) in secrets.iter().enumerate() {
        assert_eq!(secret.len(), 32);
        needles.push((format!("private key {i}"), secret.clone()));
        needles.push((
            format!("private key {i} in hex"),
            hex::encode(secret).into_bytes(),
        ));
    }
    for (place, bytes) in &places {
        for (what, needle) in &needles {
            assert!(!contains(bytes, needle), "{what} found in {place}");
        }
    }
}
