//! Writes valid seed inputs for every fuzz target: `make_seeds CORPUS_ROOT` creates
//! `CORPUS_ROOT/<target>/seed-<name>` files. All are made with the fixture keys and seeded RNGs
//! of `keyhole_core_fuzz`, so they verify inside the targets and the fuzzer starts from objects
//! that get past every signature, MAC and AEAD check. Run by `run.sh` before fuzzing.

use std::fs;
use std::path::{Path, PathBuf};

use keyhole_core::enrollment::DeviceGrant;
use keyhole_core::envelope::{
    open_object, seal_object, ObjectDigest, ObjectKind, ObjectVerifier, Suite, PREFIX_LEN,
};
use keyhole_core::event::{seal_event, EventDetails, EventKind};
use keyhole_core::key_package::{KeyPackage, Recipient, RecipientKey};
use keyhole_core::keys::DeviceSigningKey;
use keyhole_core::keystore::KeyStore;
use keyhole_core::live::LiveOpener;
use keyhole_core::pairing::{PairingCode, RegistrationProof};
use keyhole_core::record::{CameraRecordBody, CameraState};
use keyhole_core::recovery::{KdfParams, RecoveryBackup};
use keyhole_core::roster::DeviceEntry;
use keyhole_core::signer::SignerKey;
use keyhole_core::{HpkeSecretKey, ObjectId, Timestamp};
use keyhole_core_fuzz::*;
use keyhole_media::aac::AacConfig;
use keyhole_media::audio::{Audio, AudioConfig, AudioFrame};
use keyhole_media::h264::AccessUnit;
use keyhole_media::mp4;
use keyhole_media::opus::OpusConfig;

struct Out {
    root: PathBuf,
    count: usize,
}

impl Out {
    fn put(&mut self, target: &str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        let path = dir.join(format!("seed-{name}"));
        fs::write(&path, bytes).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        self.count += 1;
    }
}

fn envelopes(out: &mut Out) {
    let cam = camera();
    let view = viewing().public();
    let mut n = 0u64;
    for suite in [Suite::Aes256Gcm, Suite::ChaCha20Poly1305] {
        for (log2, len) in [
            (10, 0),
            (10, 1),
            (10, 1023),
            (10, 1024),
            (10, 1025),
            (10, 2048),
            (10, 3000),
            (11, 5000),
            (24, 3),
        ] {
            n += 1;
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let params = seal_params(ObjectKind::Clip, suite, log2, n);
            let (sealed, _) = seal_object(params, &plain, &view, &cam, &mut rng(n)).expect("seal");
            let mut verifier = ObjectVerifier::new(&sealed, &cam.public()).expect("verifier");
            verifier.update(&sealed[PREFIX_LEN..]);
            let (_, summary) = verifier.finish_summary().expect("summary");
            let mut seed = (sealed.len() as u64).to_be_bytes().to_vec();
            seed.extend_from_slice(summary.as_bytes());
            out.put("object_summary", &format!("{n}"), &seed);
            check_opens(&sealed);
            let name = format!("clip-{}-{log2}-{len}", suite.id());
            for t in [
                "envelope_header",
                "envelope_open",
                "envelope_stream",
                "envelope_chunks",
            ] {
                out.put(t, &name, &sealed);
            }
        }
    }
    let details = event_details();
    let mut params = seal_params(ObjectKind::Event, Suite::ChaCha20Poly1305, 10, 99);
    params.previous = ObjectDigest([0x77; 32]);
    let (sealed, _) =
        seal_event(params, &details[1], &view, &cam, &mut rng(99)).expect("seal event");
    check_opens(&sealed);
    for t in [
        "envelope_header",
        "envelope_open",
        "envelope_stream",
        "envelope_chunks",
    ] {
        out.put(t, "event", &sealed);
    }
    // The live session's prefix alone: a header that verifies but has no body.
    let (prefix, _) = live_session(&cam);
    out.put("envelope_header", "live-prefix", &prefix);
    out.put("envelope_open", "live-prefix", &prefix);
}

/// Seeds must get past authentication in the targets, which use the same fixture keys.
fn check_opens(sealed: &[u8]) {
    open_object(sealed, &camera().public(), &viewing())
        .unwrap_or_else(|e| panic!("seed does not open: {e}"));
}

fn live(out: &mut Out) {
    let cam = camera();
    let (prefix, mut sealer) = live_session(&cam);
    let mut frames = Vec::new();
    for (i, len) in [0usize, 5, 1024, 300].into_iter().enumerate() {
        let fragment: Vec<u8> = (0..len).map(|b| (b + i) as u8).collect();
        frames.push(
            sealer
                .seal_fragment(&fragment, i == 3)
                .expect("seal fragment"),
        );
    }
    let mut opener =
        LiveOpener::new(&prefix, &cam.public(), &viewing()).expect("live prefix opens");
    for f in &frames {
        opener
            .open_frame(f)
            .unwrap_or_else(|e| panic!("live seed frame does not open: {e}"));
    }
    out.put("live", "first-frame", &frames[0]);
    // A checkpoint vouching for the frames, naming a viewer.
    let header = opener.header();
    let checkpoint = keyhole_core::live_check::Checkpoint {
        camera_id: header.camera_id,
        session: header.object_id,
        clock: Timestamp(1_795_735_205_000),
        nonces: vec![([7; 16], Timestamp(1_795_735_204_500))],
        frames: frames
            .iter()
            .enumerate()
            .map(|(i, f)| {
                (
                    i as u64,
                    keyhole_core::live_check::frame_digest(
                        &f[keyhole_core::live::FRAME_HEADER_LEN..],
                    ),
                )
            })
            .collect(),
    }
    .sign(&cam)
    .expect("a fixture checkpoint is well formed");
    out.put("live_checkpoint", "fixture", &checkpoint);
    let challenge = keyhole_core::live_request::LiveChallenge::from_secret(&[0x3c; 32]);
    let request = keyhole_core::live_request::LiveRequest::make(
        &CAMERA_ID,
        1,
        &challenge.public(),
        &viewing(),
        [7; 16],
    )
    .expect("the fixture challenge is usable");
    out.put("live_request", "fixture", &request.encode());
    out.put("live", "all-frames", &frames.concat());
    out.put(
        "live",
        "skip-one",
        &[&frames[0][..], &frames[2][..], &frames[3][..]].concat(),
    );
    out.put(
        "live",
        "replay",
        &[&frames[1][..], &frames[1][..], &frames[0][..]].concat(),
    );
    out.put(
        "live",
        "after-end",
        &[&frames[3][..], &frames[0][..]].concat(),
    );
}

fn rosters(out: &mut Out) {
    let key = account();
    let devices: Vec<DeviceEntry> = (0..3u8)
        .map(|i| DeviceEntry {
            id: keyhole_core::DeviceId([0xd1 + i; 16]),
            name: ["Ana's phone", "laptop", "tablette ✓"][usize::from(i)].to_owned(),
            added_at: Timestamp(T0.0 + u64::from(i)),
            signing_key: DeviceSigningKey::from_seed(&[0x61 + i; 32]).public(),
            hpke_key: HpkeSecretKey::from_bytes(&[0x41 + i; 32]).public(),
        })
        .collect();
    let genesis = keyhole_core_fuzz::roster_v1();
    assert_eq!(genesis.unverified_body().devices[0].id, devices[0].id);
    out.put("roster", "v1", genesis.encoded());
    let trusted = genesis.verify_first(&key.public()).expect("verify roster");
    let mut next = trusted.successor(Timestamp(T0.0 + 10));
    next.devices = devices.clone();
    let device = device_signing();
    let v2 = next.sign(as_device(&device)).expect("sign roster v2");
    trusted.accept(v2.clone()).expect("roster v2 is accepted");
    out.put("roster", "v2", v2.encoded());
    let mut empty = trusted.successor(Timestamp(T0.0 + 20));
    empty.devices.clear();
    out.put(
        "roster",
        "v2-empty",
        empty
            .sign(SignerKey::Account(&key))
            .expect("sign")
            .encoded(),
    );
}

fn records(out: &mut Out) {
    let key = account();
    for (i, (name, state, epoch)) in [
        ("Front door", CameraState::Active, 1),
        ("", CameraState::Removed, 7),
        ("Garage ✓", CameraState::Active, u32::MAX),
    ]
    .into_iter()
    .enumerate()
    {
        let body = CameraRecordBody {
            account: key.public(),
            camera_id: if i == 1 {
                keyhole_core::CameraId([0xc2; 16])
            } else {
                CAMERA_ID
            },
            version: 1 + i as u64,
            issued_at: T0,
            name: name.to_owned(),
            state,
            camera_key: camera().public(),
            epoch,
            viewing_key: viewing().public(),
        };
        let camera_id = body.camera_id;
        let device = device_signing();
        let signed = body.sign(as_device(&device)).expect("sign record");
        signed
            .clone()
            .verify_first(&roster(), &camera_id)
            .expect("record seed verifies");
        out.put("record", &format!("record-{i}"), signed.encoded());
    }
}

fn key_packages(out: &mut Out) {
    let owner = account().public();
    let to_device = Recipient {
        account: owner,
        key: RecipientKey::Device(DEVICE_ID),
    };
    let pkg = KeyPackage::seal(
        owner,
        CAMERA_ID,
        1,
        &viewing(),
        to_device,
        &device_hpke().public(),
        &mut rng(1),
    )
    .expect("seal key package");
    pkg.open(&device_hpke(), &viewing().public())
        .expect("device key package opens");
    out.put("key_package", "device", &pkg.encode());
    let to_recovery = Recipient {
        account: owner,
        key: RecipientKey::Recovery,
    };
    let pkg = KeyPackage::seal(
        owner,
        CAMERA_ID,
        2,
        &viewing(),
        to_recovery,
        &recovery_hpke().public(),
        &mut rng(2),
    )
    .expect("seal key package");
    pkg.open(&recovery_hpke(), &viewing().public())
        .expect("recovery key package opens");
    out.put("key_package", "recovery", &pkg.encode());
}

fn event_details() -> Vec<EventDetails> {
    vec![
        EventDetails {
            kind: EventKind::Motion,
            started_at: T0,
            duration_ms: 0,
            clip: None,
            note: String::new(),
            thumbnail_jpeg: Vec::new(),
        },
        EventDetails {
            kind: EventKind::Doorbell,
            started_at: T0,
            duration_ms: 12_000,
            clip: Some(ObjectId([0x0c; 16])),
            note: "porch ✓".to_owned(),
            thumbnail_jpeg: vec![
                0xff, 0xd8, 0xff, 0xe0, 0, 0x10, b'J', b'F', b'I', b'F', 0, 0xff, 0xd9,
            ],
        },
        EventDetails {
            kind: EventKind::Alert,
            started_at: Timestamp(u64::MAX),
            duration_ms: u32::MAX,
            clip: None,
            note: "x".repeat(255),
            thumbnail_jpeg: vec![0; 300],
        },
    ]
}

fn events(out: &mut Out) {
    for (i, d) in event_details().iter().enumerate() {
        out.put(
            "event",
            &format!("event-{i}"),
            &d.encode().expect("encode event"),
        );
    }
}

fn device_proofs(out: &mut Out) {
    let request = keyhole_core::device_proof::Request {
        method: "DELETE",
        target: "/v1/objects/c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1",
        body: b"",
    };
    let proof = keyhole_core::device_proof::DeviceProof::sign(
        keyhole_core::device_proof::Challenge([0x77; 32]),
        DEVICE_ID,
        &device_signing(),
        &request,
    )
    .expect("device proof");
    out.put("device_proof", "fixture", proof.encode().as_bytes());
}

fn camera_heads(out: &mut Out) {
    let head = keyhole_core::camera_head::CameraHead {
        camera_id: CAMERA_ID,
        sequence: 3,
        digest: keyhole_core::envelope::ObjectDigest([3; 32]),
        delivered: 2,
        clock: keyhole_core::Timestamp(1_795_735_205_000),
        silent_after_s: 900,
        record_version: 1,
        roster_version: 1,
        live_challenge: [0x1c; 32],
    };
    let signed = head.sign(&camera()).expect("a fixture head is well formed");
    out.put("camera_head", "fixture", &signed);
}

fn retention_floors(out: &mut Out) {
    let device = device_signing();
    let floor = keyhole_core::retention::RetentionFloorBody {
        owner: account().public(),
        camera_id: CAMERA_ID,
        version: 2,
        issued_at: keyhole_core::Timestamp(1_795_735_205_000),
        keep_from: 120,
        max_age_days: 30,
    }
    .sign(as_device(&device))
    .expect("a fixture floor is well formed");
    out.put("retention_floor", "fixture", floor.encoded());
}

fn pairing(out: &mut Out) {
    let code = pairing_code();
    out.put("pairing_code", "fixture", code.to_text().as_bytes());
    let with_fp = PairingCode::new(
        "http://192.0.2.1:8080/x",
        Some([0xab; 32]),
        account().public(),
        &mut rng(5),
    )
    .expect("pairing code");
    let text = with_fp.to_text();
    out.put("pairing_code", "fingerprint", text.as_bytes());
    out.put(
        "pairing_code",
        "typed",
        text.to_lowercase().replace('-', " ").as_bytes(),
    );
    let proof = RegistrationProof::create(&code, CAMERA_ID, &camera());
    proof.verify(&code).expect("registration proof verifies");
    out.put("registration_proof", "fixture", &proof.encode());
    let other = RegistrationProof::create(&with_fp, CAMERA_ID, &camera());
    out.put("registration_proof", "other-code", &other.encode());
}

fn recovery(out: &mut Out) {
    let phrase = recovery_phrase();
    let words = phrase.words();
    out.put("recovery_phrase", "fixture", words.as_bytes());
    out.put(
        "recovery_phrase",
        "typed",
        format!("  {}\n", words.to_uppercase().replace(' ', "\t ")).as_bytes(),
    );
    let secrets = recovery_secrets();
    for (name, params) in [
        ("minimum", KdfParams::MINIMUM),
        (
            "small",
            KdfParams {
                memory_kib: 64,
                iterations: 2,
                parallelism: 2,
            },
        ),
    ] {
        let backup =
            RecoveryBackup::seal(&phrase, &secrets, params, &mut rng(3)).expect("seal backup");
        backup.open(&phrase).expect("recovery backup seed opens");
        out.put("recovery_backup", name, &backup.encode());
    }
    // The default parameters (64 MiB) written over a cheap backup: it decodes (the target does
    // not open it), without paying for a 64 MiB Argon2id here.
    let mut big = RecoveryBackup::seal(&phrase, &secrets, KdfParams::MINIMUM, &mut rng(4))
        .expect("seal")
        .encode();
    let d = KdfParams::DEFAULT;
    for (i, v) in [d.memory_kib, d.iterations, d.parallelism]
        .into_iter()
        .enumerate()
    {
        big[37 + 4 * i..41 + 4 * i].copy_from_slice(&v.to_be_bytes());
    }
    out.put("recovery_backup", "default-params", &big);
}

fn key_stores(out: &mut Out) {
    for (name, contents) in [("empty", &b""[..]), ("json", &br#"{"version":1}"#[..])] {
        let store = KeyStore::seal(
            KEY_STORE_PASSPHRASE,
            contents,
            KdfParams::MINIMUM,
            &mut rng(5),
        )
        .expect("seal key store");
        out.put("key_store", name, &store.encode());
    }
}

fn enrollments(out: &mut Out) {
    let (request, transcript) = enrollment();
    out.put("enrollment", "request", &request.encode());
    let grant = DeviceGrant::seal(2, &request, &transcript, &mut rng(6)).expect("seal grant");
    out.put("enrollment", "grant", &grant.encode());
}

fn wire(out: &mut Out) {
    let batch =
        keyhole_wire::batch::encode(&[b"a sealed clip", b"", b"its event"]).expect("a small batch");
    out.put("wire", "batch", &batch);
    for (name, value) in [
        ("range-a-b", "bytes=0-99"),
        ("range-suffix", "bytes=-64"),
        ("range-open", "bytes=100-"),
    ] {
        let mut seed = 1000u64.to_le_bytes().to_vec();
        seed.extend_from_slice(value.as_bytes());
        out.put("wire", name, &seed);
    }
}

/// A small H.264 clip: key frames every `gop` pictures carrying their parameter sets, an SEI
/// and an access unit delimiter on the first, a two-slice picture, and B-frame style
/// presentation offsets when `b_frames`.
fn clip(sps: &[u8], frames: u8, gop: u8, b_frames: bool) -> Vec<AccessUnit> {
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];
    (0..frames)
        .map(|i| {
            let mut nals = Vec::new();
            if i == 0 {
                nals.push(vec![0x09, 0xf0]);
            }
            if i % gop == 0 {
                nals.extend([sps.to_vec(), PPS.to_vec(), vec![0x06, 5, 1, 0x80]]);
                nals.push(vec![0x65, 0x88, 0x84, i, 0x21]);
            } else {
                nals.push(vec![0x41, 0x9a, i, 0x3f]);
                if i % 3 == 1 {
                    nals.push(vec![0x41, 0x40, i]); // second slice of the same picture
                }
            }
            let mut au = AccessUnit::new(u64::from(i) * 6000, nals);
            if b_frames {
                au.pts_offset = [12_000, 0, 6000][usize::from(i % 3)];
            }
            au
        })
        .collect()
}

fn media(out: &mut Out) {
    // x264 baseline 1280x720 and high-profile 1920x1080 (cropped) sequence parameter sets.
    let sps720 = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    let sps1080 = [
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03,
        0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
    ];
    for (name, aus) in [
        ("720-gop5", clip(&sps720, 12, 5, false)),
        ("720-b-frames", clip(&sps720, 12, 6, true)),
        ("1080-one-frame", clip(&sps1080, 1, 1, false)),
        ("1080-b-frames", clip(&sps1080, 7, 4, true)),
    ] {
        let file = mp4::write(&aus, None).unwrap_or_else(|e| panic!("write {name}: {e}"));
        mp4::read(&file).unwrap_or_else(|e| panic!("seed {name} does not read: {e}"));
        out.put("mp4_read", name, &file);
        let stream: Vec<u8> = aus.iter().flat_map(AccessUnit::to_annex_b).collect();
        out.put("h264_parse", name, &stream);
    }
    // With sound: AAC-LC at 16 kHz starting a little after the first picture (an edit list),
    // and at 48 kHz stereo with a frame lost.
    for (name, config, start, step, skip) in [
        (
            "720-sound-16k",
            AacConfig::low_complexity(16_000, 1).map(AudioConfig::Aac),
            900,
            5760,
            None,
        ),
        (
            "720-sound-48k-gap",
            AacConfig::low_complexity(48_000, 2).map(AudioConfig::Aac),
            0,
            1920,
            Some(4),
        ),
    ] {
        let config = config.unwrap_or_else(|e| panic!("{name}: {e}"));
        let frames = (0..40u64)
            .filter(|i| Some(*i) != skip)
            .map(|i| AudioFrame {
                pts: start + i * step,
                data: vec![0x21, 0x10, i as u8, 0x05],
            })
            .collect();
        let audio = Audio { config, frames };
        let file = mp4::write(&clip(&sps720, 12, 5, false), Some(&audio))
            .unwrap_or_else(|e| panic!("write {name}: {e}"));
        mp4::read(&file).unwrap_or_else(|e| panic!("seed {name} does not read: {e}"));
        out.put("mp4_read", name, &file);
    }
    for (name, config) in [
        ("lc-16k-mono", &[0x14, 0x08][..]),
        ("lc-44k-stereo", &[0x12, 0x10]),
        ("lc-8k-960", &[0x15, 0x8c]),
        ("he-aac-explicit", &[0x2b, 0x09, 0x88, 0x00]),
        ("escaped-frequency", &[0x17, 0x80, 0x1f, 0x40, 0x08]),
    ] {
        AacConfig::parse(config).unwrap_or_else(|e| panic!("seed {name}: {e}"));
        out.put("aac_config", name, config);
    }
    // Opus: a dOps body, and packets of each mode and frame count code.
    let opus = OpusConfig::new(1, 312, 16_000).unwrap_or_else(|e| panic!("Opus: {e}"));
    let frames = (0..20u64)
        .map(|i| AudioFrame {
            pts: i * 1800,
            data: vec![31 << 3, i as u8, 0x55],
        })
        .collect();
    let audio = Audio {
        config: AudioConfig::Opus(opus.clone()),
        frames,
    };
    let file = mp4::write(&clip(&sps720, 12, 5, false), Some(&audio))
        .unwrap_or_else(|e| panic!("write Opus seed: {e}"));
    out.put("mp4_read", "720-opus", &file);
    // A live stream: the initialization segment with sound, then a fragment of each kind.
    let sps: &[u8] = &sps720;
    let pps: &[u8] = &[0x68, 0xce, 0x3c, 0x80];
    let mut live = mp4::fragmented_init(&mp4::VideoConfig::h264(sps, pps), Some(&audio.config))
        .unwrap_or_else(|e| panic!("live seed: {e}"));
    for (n, au) in clip(&sps720, 6, 5, false).iter().enumerate() {
        let n = n as u32;
        live.extend(mp4::fragment(2 * n + 1, au, 6000).unwrap_or_else(|e| panic!("live seed: {e}")));
        live.extend(
            mp4::audio_fragment(2 * n + 2, &audio.frames[n as usize], &audio.config)
                .unwrap_or_else(|e| panic!("live seed: {e}")),
        );
    }
    let mut seed = vec![77];
    seed.extend_from_slice(&live);
    out.put("mp4_split", "live-with-sound", &seed);
    // H.265: x265's parameter sets for 320x240 Main (keyhole-media's h265 tests), a key frame
    // and two pictures, as an MP4 file, its hvcC record and its SPS.
    let vps: Vec<u8> = vec![
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
    ];
    let hevc_sps: Vec<u8> = vec![
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x1e, 0x10,
    ];
    let hevc_pps: Vec<u8> = vec![0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];
    let hevc: Vec<AccessUnit> = (0..3u64)
        .map(|i| {
            let slice = if i == 0 { vec![0x26, 0x01, 0xaf, 0x1d] } else { vec![0x02, 0x01, 0xd0, 0x2a] };
            let nals = if i == 0 {
                vec![vps.clone(), hevc_sps.clone(), hevc_pps.clone(), slice]
            } else {
                vec![slice]
            };
            AccessUnit::of(keyhole_media::Codec::H265, i * 6000, nals)
        })
        .collect();
    let file = mp4::write(&hevc, None).unwrap_or_else(|e| panic!("H.265 seed: {e}"));
    out.put("mp4_read", "h265", &file);
    let record = keyhole_media::h265::HevcConfig::new(&vps, &hevc_sps, &hevc_pps)
        .unwrap_or_else(|e| panic!("H.265 seed: {e}"));
    out.put("h265_parse", "hvcc", &record.to_hvcc());
    out.put("h265_parse", "sps", &hevc_sps);
    out.put("opus_config", "dops-mono", &opus.to_bytes());
    for (name, packet) in [
        ("celt-20ms", &[31 << 3, 1][..]),
        ("silk-60ms-two", &[(3 << 3) | 1]),
        ("code3", &[(16 << 3) | 3, 8]),
    ] {
        out.put("opus_config", name, packet);
    }
}

/// Rows of the device index sealed with the `index_row` target's key (device 1 of the vectors).
fn index_rows(out: &mut Out) {
    let key = keyhole_core::at_rest::IndexKey::derive(&keyhole_core::DeviceKeys {
        signing: DeviceSigningKey::from_seed(&[0x61; 32]),
        hpke: HpkeSecretKey::from_bytes(&[0x61; 32]),
    });
    for (n, plain) in [&b""[..], b"event details", &[0xab; 3000]]
        .iter()
        .enumerate()
    {
        let row = format!("event{n}").into_bytes();
        let mut seed = vec![row.len() as u8];
        seed.extend_from_slice(&row);
        seed.extend_from_slice(&key.seal_with_nonce(&row, plain, [n as u8; 12]));
        out.put("index_row", &format!("{n}"), &seed);
    }
}

fn main() {
    let root = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "corpus".to_owned());
    let mut out = Out {
        root: Path::new(&root).to_path_buf(),
        count: 0,
    };
    envelopes(&mut out);
    live(&mut out);
    rosters(&mut out);
    records(&mut out);
    key_packages(&mut out);
    events(&mut out);
    pairing(&mut out);
    device_proofs(&mut out);
    camera_heads(&mut out);
    index_rows(&mut out);
    retention_floors(&mut out);
    recovery(&mut out);
    key_stores(&mut out);
    enrollments(&mut out);
    wire(&mut out);
    media(&mut out);
    println!("make_seeds: wrote {} seed files under {root}", out.count);
}
