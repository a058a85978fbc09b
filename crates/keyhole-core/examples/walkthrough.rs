//! A walk through the protocol in one process: set up an account, pair a camera, seal a clip,
//! open it on the owner's phone, and watch tampering, a substituted key and a hidden clip being
//! caught. `cargo run -p keyhole-core --example walkthrough`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use keyhole_core::envelope::{
    DEFAULT_CHUNK_LOG2, ObjectDigest, ObjectKind, SealParams, Suite, open_object, seal_object,
};
use keyhole_core::key_package::{KeyPackage, Recipient, RecipientKey};
use keyhole_core::pairing::{PairingCode, RegistrationProof};
use keyhole_core::record::{CameraRecordBody, CameraState};
use keyhole_core::recovery::{KdfParams, RecoveryBackup, RecoveryPhrase, RecoverySecrets};
use keyhole_core::report::{
    Checked, DEFAULT_EPOCH_GRACE_MS, EpochStart, Expectations, Listed, Report,
};
use keyhole_core::roster::{DeviceEntry, RosterBody, RosterHash};
use keyhole_core::signer::SignerKey;
use keyhole_core::{
    AccountKey, CameraId, CameraKey, DeviceId, DeviceKeys, HpkeSecretKey, ObjectId, Timestamp,
};
use rand_core::OsRng;

fn main() {
    let rng = &mut OsRng;
    let now = Timestamp(1_795_735_205_000);

    // 1. Set-up on the first phone: account key, device keys, recovery phrase, roster.
    let account = AccountKey::generate(rng);
    let phone = DeviceKeys::generate(rng);
    let phone_id = DeviceId::random(rng);
    let recovery_key = HpkeSecretKey::generate(rng);
    let phrase = RecoveryPhrase::generate(rng);
    let backup = RecoveryBackup::seal(
        &phrase,
        &RecoverySecrets {
            account_key: AccountKey::from_seed(&account.seed()),
            recovery_key: HpkeSecretKey::from_bytes(&recovery_key.to_bytes()),
        },
        KdfParams::DEFAULT,
        rng,
    )
    .unwrap();
    let roster = RosterBody {
        account: account.public(),
        version: 1,
        previous: RosterHash([0; 32]),
        issued_at: now,
        recovery_key: recovery_key.public(),
        devices: vec![DeviceEntry {
            id: phone_id,
            name: "Ana's phone".into(),
            added_at: now,
            signing_key: phone.signing.public(),
            hpke_key: phone.hpke.public(),
        }],
    }
    .sign(SignerKey::Account(&account))
    .unwrap()
    .verify_first(&account.public())
    .unwrap();
    // The account key is cold from here on: only the recovery backup holds it.
    println!(
        "account code (compare out of band): {}",
        account.public().account_code()
    );
    println!("recovery phrase (shown once):        {}", &*phrase.words());
    println!(
        "recovery backup for the server:      {} bytes, Argon2id-sealed",
        backup.encode().len()
    );

    // 2. Pairing: the code reaches the camera out of band; the camera's proof comes back.
    let code = PairingCode::new(
        "https://keyhole.home.arpa:8443",
        Some([0xab; 32]),
        account.public(),
        rng,
    )
    .unwrap();
    println!(
        "pairing code:                        {}…",
        &code.to_text()[..40]
    );
    let camera = CameraKey::generate(rng);
    let camera_id = CameraId::random(rng);
    let on_camera = PairingCode::parse(&code.to_text()).unwrap();
    let proof = RegistrationProof::create(&on_camera, camera_id, &camera);
    proof.verify(&code).unwrap();
    let server_key = CameraKey::generate(rng);
    let substituted = RegistrationProof::create(
        &PairingCode::new("https://x.example", None, account.public(), rng).unwrap(),
        camera_id,
        &server_key,
    );
    println!(
        "server-substituted camera key:       {}",
        substituted.verify(&code).unwrap_err()
    );

    // 3. The phone makes the epoch-1 viewing key, signs the camera record with its own device
    // key, seals key packages.
    let viewing = HpkeSecretKey::generate(rng);
    let record = CameraRecordBody {
        account: account.public(),
        camera_id,
        version: 1,
        issued_at: now,
        name: "Front door".into(),
        state: CameraState::Active,
        camera_key: proof.camera_key,
        epoch: 1,
        viewing_key: viewing.public(),
    }
    .sign(SignerKey::Device {
        id: phone_id,
        key: &phone.signing,
    })
    .unwrap();
    let package = KeyPackage::seal(
        account.public(),
        camera_id,
        1,
        &viewing,
        Recipient {
            account: account.public(),
            key: RecipientKey::Device(phone_id),
        },
        &roster.device(&phone_id).unwrap().hpke_key,
        rng,
    )
    .unwrap();

    // 4. The camera follows the roster chain from the pinned account key, verifies the record
    // as signed by a device that roster lists, and seals three clips.
    let camera_roster = roster
        .signed()
        .clone()
        .verify_first(&on_camera.account)
        .unwrap();
    let verified = record
        .clone()
        .verify_first(&camera_roster, &camera_id)
        .unwrap();
    let mut previous = ObjectDigest::default();
    let mut clips = Vec::new();
    for seq in 1..=3u64 {
        let params = SealParams {
            kind: ObjectKind::Clip,
            suite: Suite::Aes256Gcm,
            chunk_log2: DEFAULT_CHUNK_LOG2,
            camera_id,
            object_id: ObjectId::random(rng),
            epoch: verified.body().epoch,
            sequence: seq,
            previous,
            captured_at: Timestamp(now.0 + seq * 60_000),
        };
        let video = format!("pretend H.264 #{seq} ").repeat(20_000).into_bytes();
        let (sealed, summary) =
            seal_object(params, &video, &verified.body().viewing_key, &camera, rng).unwrap();
        previous = summary.digest;
        clips.push((summary.header.object_id, sealed));
    }
    println!(
        "camera sealed 3 clips:               {} bytes each",
        clips[0].1.len()
    );

    // 5. The phone opens its key package and verifies the clips; then the server misbehaves.
    let key = package
        .open(&phone.hpke, &verified.body().viewing_key)
        .unwrap();
    let expect = Expectations {
        camera_id,
        epochs: vec![EpochStart {
            epoch: 1,
            began: now,
        }],
        first_sequence: 1,
        verified_before: None,
        epoch_grace_ms: DEFAULT_EPOCH_GRACE_MS,
        camera_head: None,
        silence: None,
    };
    let check = |id: ObjectId, sealed: &[u8]| Listed {
        listed_id: id,
        checked: Checked::from_open(
            sealed,
            open_object(sealed, &proof.camera_key, &key.secret).map(|(_, o)| o),
        ),
    };
    let honest: Vec<Listed> = clips.iter().map(|(id, s)| check(*id, s)).collect();
    println!("\nhonest server:\n{}", Report::build(&expect, &honest));
    let mut altered = clips[0].1.clone();
    let n = altered.len();
    altered[n / 2] ^= 1;
    let hostile = vec![check(clips[0].0, &altered), check(clips[2].0, &clips[2].1)];
    println!(
        "hostile server (one clip altered, one hidden):\n{}",
        Report::build(&expect, &hostile)
    );
}
