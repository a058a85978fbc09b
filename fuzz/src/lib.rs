//! Fixtures shared by the fuzz targets and the seed generator (`examples/make_seeds.rs`).
//!
//! Every key is fixed, and every random input comes from a seeded `ChaCha20Rng`, so a seed
//! made by `make_seeds` verifies inside the targets (signatures, HPKE wraps, MACs), which lets
//! the fuzzer mutate objects that get past authentication instead of stopping at the first
//! signature check. The key bytes match `crates/keyhole-core/tests/common` (account `0x11`,
//! camera `0x21`, viewing key of epoch 1 `0x31`), so vectors made by those tests open too.

use keyhole_core::enrollment::{EnrollmentRequest, Joining, Transcript};
use keyhole_core::envelope::{
    Header, Layout, ObjectDigest, ObjectKind, SealParams, Suite, PREFIX_LEN, TAG_LEN, TRAILER_LEN,
};
use keyhole_core::keys::DeviceSigningKey;
use keyhole_core::live::LiveSealer;
use keyhole_core::pairing::PairingCode;
use keyhole_core::recovery::{RecoveryPhrase, RecoverySecrets};
use keyhole_core::roster::{DeviceEntry, Roster, RosterBody, RosterHash, SignedRoster};
use keyhole_core::signer::SignerKey;
use keyhole_core::{
    AccountKey, CameraId, CameraKey, DeviceId, DeviceKeys, HpkeSecretKey, ObjectId, Timestamp,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The camera every fixture names.
pub const CAMERA_ID: CameraId = CameraId([0xc1; 16]);
/// The enrolled device key packages are sealed to.
pub const DEVICE_ID: DeviceId = DeviceId([0xd1; 16]);
/// Capture time used by fixtures.
pub const T0: Timestamp = Timestamp(1_795_735_205_000);
/// Chunk size of the live session the `live` target opens (1 KiB fragments at most).
pub const LIVE_CHUNK_LOG2: u8 = 10;
/// Seed of the RNG that makes the live session prefix (and so its session key).
pub const LIVE_RNG_SEED: u64 = 0x6c69_7665;
/// Seed of the RNG that makes the pairing code the `registration_proof` target checks against.
pub const PAIRING_RNG_SEED: u64 = 0x7061_6972;
/// Seed of the RNG that makes the recovery phrase the `recovery_backup` target opens with.
pub const PHRASE_RNG_SEED: u64 = 0x7068_7261;
/// Server URL in fixture pairing codes.
pub const SERVER_URL: &str = "https://keyhole.test:8443";
/// The passphrase of the key store seeds (and of the key store vectors).
pub const KEY_STORE_PASSPHRASE: &[u8] = b"correct horse battery staple";

/// Seed of the RNG that makes the joining device's nonce in the enrollment fixture.
pub const ENROLLMENT_RNG_SEED: u64 = 0x6a6f_696e;
/// The joining device's HPKE private key in the enrollment fixture.
pub const JOINING_HPKE_KEY: [u8; 32] = [0x72; 32];

/// A deterministic RNG.
#[must_use]
pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The signing key of the enrolled device [`DEVICE_ID`], which signs the fixture records, log
/// entries, shares and acceptances.
#[must_use]
pub fn device_signing() -> DeviceSigningKey {
    DeviceSigningKey::from_seed(&[0x61; 32])
}

/// `key` (the fixture's [`device_signing`]) signing as [`DEVICE_ID`].
#[must_use]
pub fn as_device(key: &DeviceSigningKey) -> SignerKey<'_> {
    SignerKey::Device { id: DEVICE_ID, key }
}

/// Roster version 1 of the fixture account, signed by the account key: it lists [`DEVICE_ID`]
/// (with [`device_signing`]'s key), the roster in force for the fixture statements.
#[must_use]
pub fn roster_v1() -> SignedRoster {
    let key = account();
    RosterBody {
        account: key.public(),
        version: 1,
        previous: RosterHash([0; 32]),
        issued_at: T0,
        recovery_key: recovery_hpke().public(),
        devices: vec![DeviceEntry {
            id: DEVICE_ID,
            name: "Ana's phone".to_owned(),
            added_at: T0,
            signing_key: device_signing().public(),
            hpke_key: HpkeSecretKey::from_bytes(&[0x41; 32]).public(),
        }],
    }
    .sign(SignerKey::Account(&key))
    .expect("the fixture roster signs")
}

/// [`roster_v1`], verified.
#[must_use]
pub fn roster() -> Roster {
    roster_v1()
        .verify_first(&account().public())
        .expect("the fixture roster verifies")
}

/// The account identity key.
#[must_use]
pub fn account() -> AccountKey {
    AccountKey::from_seed(&[0x11; 32])
}

/// The camera's signing key.
#[must_use]
pub fn camera() -> CameraKey {
    CameraKey::from_seed(&[0x21; 32])
}

/// The camera's viewing key (epoch 1).
#[must_use]
pub fn viewing() -> HpkeSecretKey {
    HpkeSecretKey::from_bytes(&[0x31; 32])
}

/// The enrolled device's HPKE key ([`DEVICE_ID`]).
#[must_use]
pub fn device_hpke() -> HpkeSecretKey {
    HpkeSecretKey::from_bytes(&[0x41; 32])
}

/// The account's recovery key.
#[must_use]
pub fn recovery_hpke() -> HpkeSecretKey {
    HpkeSecretKey::from_bytes(&[0x51; 32])
}

/// What the recovery backup fixtures protect.
#[must_use]
pub fn recovery_secrets() -> RecoverySecrets {
    RecoverySecrets {
        account_key: account(),
        recovery_key: recovery_hpke(),
    }
}

/// The recovery phrase backups are sealed under.
#[must_use]
pub fn recovery_phrase() -> RecoveryPhrase {
    RecoveryPhrase::generate(&mut rng(PHRASE_RNG_SEED))
}

/// The pairing code registration proofs answer.
#[must_use]
pub fn pairing_code() -> PairingCode {
    PairingCode::new(
        SERVER_URL,
        None,
        account().public(),
        &mut rng(PAIRING_RNG_SEED),
    )
    .unwrap_or_else(|e| panic!("fixture pairing code: {e}"))
}

/// Seal parameters for a fixture object.
#[must_use]
pub fn seal_params(kind: ObjectKind, suite: Suite, chunk_log2: u8, sequence: u64) -> SealParams {
    SealParams {
        kind,
        suite,
        chunk_log2,
        camera_id: CAMERA_ID,
        object_id: ObjectId([0x0b; 16]),
        epoch: 1,
        sequence,
        previous: ObjectDigest::default(),
        captured_at: T0,
    }
}

/// Starts the fixed live session: its prefix (header and signature) and the sealer that makes
/// frames the `live` target accepts.
#[must_use]
pub fn live_session(camera_key: &CameraKey) -> (Vec<u8>, LiveSealer<'_>) {
    let mut prefix = Vec::new();
    let sealer = LiveSealer::new(
        seal_params(ObjectKind::Live, Suite::Aes256Gcm, LIVE_CHUNK_LOG2, 0),
        &viewing().public(),
        camera_key,
        &mut rng(LIVE_RNG_SEED),
        &mut prefix,
    )
    .unwrap_or_else(|e| panic!("fixture live session: {e}"));
    (prefix, sealer)
}

/// Splits `data` into live frames using each frame's own length field, so a concatenation of
/// well-formed frames splits back into them. At most `max` frames; the rest is one frame.
#[must_use]
pub fn split_frames(data: &[u8], max: usize) -> Vec<&[u8]> {
    let mut frames = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if frames.len() + 1 == max || rest.len() < 12 {
            frames.push(rest);
            break;
        }
        let body_len = u32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize;
        let end = body_len.saturating_add(12).min(rest.len());
        let (frame, tail) = rest.split_at(end);
        frames.push(frame);
        rest = tail;
    }
    frames
}

/// A small deterministic generator for cut points (splitmix64).
#[derive(Debug, Clone)]
pub struct Cuts(u64);

impl Cuts {
    /// A generator seeded from all of `data` (FNV-1a), so every mutation moves the cuts.
    #[must_use]
    pub fn from_input(data: &[u8]) -> Self {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in data {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        Self(h)
    }

    /// The next pseudo-random value.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in `0..=max`.
    pub fn upto(&mut self, max: usize) -> usize {
        (self.next_u64() % (max as u64 + 1)) as usize
    }

    /// Sorted cut points in `0..=len`: some uniform, some next to the sealed-chunk boundaries
    /// (multiples of `ct_chunk`, and a trailer's length before them), where `update` changes
    /// between buffering and opening.
    pub fn points(&mut self, len: usize, ct_chunk: usize) -> Vec<usize> {
        let n = 1 + self.upto(7);
        let mut cuts: Vec<usize> = (0..n)
            .map(|_| match self.upto(3) {
                0 => self.upto(len),
                _ => {
                    let chunks = len / ct_chunk.max(1);
                    let base = self.upto(chunks) * ct_chunk;
                    let base = if self.upto(1) == 0 {
                        base + TRAILER_LEN
                    } else {
                        base
                    };
                    let delta = self.upto(4) as isize - 2;
                    base.saturating_add_signed(delta).min(len)
                }
            })
            .collect();
        cuts.sort_unstable();
        cuts
    }
}

/// Checks everything [`Layout`] promises for an object of `sealed_len` bytes with `header`'s
/// chunk size, and returns the layout when the length is a possible one.
///
/// # Panics
/// If a promise is broken: a bug.
#[must_use]
pub fn check_layout(header: &Header, sealed_len: u64) -> Option<Layout> {
    let tag = TAG_LEN as u64;
    let cs = header.chunk_size() as u64;
    let ct = cs + tag;
    let layout = match Layout::new(header, sealed_len) {
        Ok(l) => l,
        Err(_) => {
            // Refused lengths are exactly those no (chunks, last chunk) pair produces.
            // Refused lengths are exactly those no (chunks, last chunk) pair produces: with
            // extra = full·ct + rem bytes past the smallest object (one empty chunk), a
            // length is possible iff rem ≤ chunk size and, after full chunks, the last chunk
            // is not empty (rem ≥ 1).
            let fixed = (PREFIX_LEN + TRAILER_LEN) as u64 + tag;
            if let Some(extra) = sealed_len.checked_sub(fixed) {
                let (full, rem) = (extra / ct, extra % ct);
                let possible = rem <= cs && (full == 0 || rem >= 1);
                assert!(
                    !possible,
                    "Layout::new refused the possible length {sealed_len} (chunk size {cs})"
                );
            }
            return None;
        }
    };
    let n = layout.chunks();
    assert!(n >= 1, "a layout has at least one chunk");
    let first = layout.chunk_range(0).expect("chunk 0 exists");
    let last = layout.chunk_range(n - 1).expect("the last chunk exists");
    let trailer = layout.trailer_range();
    assert_eq!(
        first.start, PREFIX_LEN as u64,
        "chunk 0 starts after the prefix"
    );
    assert_eq!(
        last.end, trailer.start,
        "the trailer follows the last chunk"
    );
    assert_eq!(trailer.end, sealed_len, "the trailer ends the object");
    assert_eq!(trailer.end - trailer.start, TRAILER_LEN as u64);
    assert!(layout.chunk_range(n).is_none(), "no chunk past the end");
    for i in [0, n / 2, n.saturating_sub(2)] {
        if i + 1 < n {
            let r = layout.chunk_range(i).expect("in range");
            let next = layout.chunk_range(i + 1).expect("in range");
            assert_eq!(r.end - r.start, ct, "non-final chunk {i} is full");
            assert_eq!(r.end, next.start, "chunks {i} and {} are contiguous", i + 1);
        }
    }
    let last_len = last.end - last.start;
    assert!(
        last_len >= tag && last_len <= ct,
        "last chunk length {last_len}"
    );
    assert!(
        n == 1 || last_len > tag,
        "only a one-chunk object has an empty last chunk"
    );
    let pt = layout.plaintext_len();
    assert_eq!(
        u128::from(pt),
        u128::from(n - 1) * u128::from(cs) + u128::from(last_len - tag)
    );
    assert_eq!(
        u128::from(sealed_len),
        (PREFIX_LEN + TRAILER_LEN) as u128
            + u128::from(n - 1) * u128::from(ct)
            + u128::from(last_len),
    );
    assert_eq!(
        layout.chunk_at(pt),
        None,
        "no chunk holds the byte past the end"
    );
    if pt > 0 {
        assert_eq!(layout.chunk_at(0), Some(0));
        assert_eq!(layout.chunk_at(pt - 1), Some(n - 1));
    }
    Some(layout)
}

/// Reads a big-endian `u64` from up to 8 bytes of `data` at `at` (zero-padded).
#[must_use]
pub fn u64_at(data: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = data.get(at..) {
        let n = src.len().min(8);
        b[..n].copy_from_slice(&src[..n]);
    }
    u64::from_be_bytes(b)
}

/// Each access unit's picture NAL units, for comparing video before and after an MP4 round trip.
pub fn pictures(aus: &[keyhole_media::AccessUnit]) -> Vec<Vec<&[u8]>> {
    aus.iter().map(|au| au.picture_nals().collect()).collect()
}

/// The enrollment request the `enrollment` target opens grants against, and its transcript
/// (the approving device's nonce fixed at `0xa2…`).
#[must_use]
pub fn enrollment() -> (EnrollmentRequest, Transcript) {
    let keys = DeviceKeys {
        signing: DeviceSigningKey::from_seed(&[0x71; 32]),
        hpke: HpkeSecretKey::from_bytes(&JOINING_HPKE_KEY),
    };
    let joining = Joining::new(
        account().public(),
        DEVICE_ID,
        "fuzz tablet",
        &keys,
        &mut rng(ENROLLMENT_RNG_SEED),
    )
    .expect("a short device name");
    let (_, transcript) = joining.reveal(&[0xa2; 32]);
    (joining.request().clone(), transcript)
}
