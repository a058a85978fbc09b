//! Seal/open round trips, random access and every tampering the envelope must catch.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use common::*;
use keyhole_core::envelope::{
    Header, Layout, OpenError, Opener, PREFIX_LEN, SealParams, Sealer, Suite, TAG_LEN, TRAILER_LEN,
    Tamper, open_object, seal_object, sealed_len,
};
use keyhole_core::event::{EventDetails, EventKind, open_event, seal_event};
use keyhole_core::live::{FRAME_HEADER_LEN, LiveError, LiveOpener, LiveSealer};
use keyhole_core::live_check::{
    CONFIRM_WITHIN, Checkpoint, LiveCheck, LiveCheckError, frame_digest,
};
use keyhole_core::{ObjectId, Timestamp};
use proptest::prelude::*;

const SUITES: [Suite; 2] = [Suite::Aes256Gcm, Suite::ChaCha20Poly1305];

fn seal(p: SealParams, plain: &[u8]) -> Vec<u8> {
    seal_object(p, plain, &viewing(1).public(), &camera(), &mut rng(7))
        .unwrap()
        .0
}

fn open(sealed: &[u8]) -> Result<Vec<u8>, OpenError> {
    open_object(sealed, &camera().public(), &viewing(1)).map(|(p, _)| p)
}

fn tamper_of(r: Result<Vec<u8>, OpenError>) -> Tamper {
    match r {
        Err(OpenError::Tampered(t)) => t,
        other => panic!("expected a tamper error, got {other:?}"),
    }
}

/// Seals with `update` calls split at `cuts` and opens with `update` calls split at `cuts2`.
fn round_trip_split(suite: Suite, len: usize, cuts: &[usize], cuts2: &[usize]) {
    let plain = plaintext(len, len as u64);
    let cam = camera();
    let mut sealed = Vec::new();
    let mut sealer = Sealer::new(
        params(suite, 10, 1),
        &viewing(1).public(),
        &cam,
        &mut rng(1),
        &mut sealed,
    )
    .unwrap();
    let mut at = 0;
    for &c in cuts.iter().chain([&len]) {
        let c = c.min(len).max(at);
        sealer.update(&plain[at..c], &mut sealed);
        at = c;
    }
    let summary = sealer.finish(&mut sealed);
    assert_eq!(summary.sealed_len, sealed.len() as u64);
    assert_eq!(
        summary.sealed_len,
        sealed_len(len as u64, 10),
        "known before sealing"
    );
    assert_eq!(summary.plaintext_len, len as u64);
    assert_eq!(
        sealed,
        seal_object(
            params(suite, 10, 1),
            &plain,
            &viewing(1).public(),
            &cam,
            &mut rng(1)
        )
        .unwrap()
        .0,
        "splitting the input must not change the output"
    );
    // Pushing the first piece, then reading the rest with its length known, makes the same
    // bytes.
    let head = cuts.first().map_or(0, |&c| c.min(len));
    let mut read = Vec::new();
    let mut sealer = Sealer::new(
        params(suite, 10, 1),
        &viewing(1).public(),
        &cam,
        &mut rng(1),
        &mut read,
    )
    .unwrap();
    sealer.update(&plain[..head], &mut read);
    let read_summary = sealer
        .seal_read(&mut &plain[head..], (len - head) as u64, &mut read)
        .unwrap();
    assert_eq!(
        read, sealed,
        "sealing from a reader must not change the output"
    );
    assert_eq!(read_summary, summary);

    let opener = Opener::new(&sealed, &cam.public(), &viewing(1)).unwrap();
    let mut stream = opener.stream();
    let body = &sealed[PREFIX_LEN..];
    let mut out = Vec::new();
    let mut at = 0;
    for &c in cuts2.iter().chain([&body.len()]) {
        let c = c.min(body.len()).max(at);
        stream.update(&body[at..c], &mut out).unwrap();
        at = c;
    }
    let opened = stream.finish(&mut out).unwrap();
    assert_eq!(out, plain);
    assert_eq!(opened.digest, summary.digest);
    assert_eq!(opened.chunks, summary.chunks);
}

#[test]
fn round_trips_at_chunk_boundaries() {
    for suite in SUITES {
        // Past 256 KiB, `seal_read` writes out a full buffer and goes on.
        for len in [
            0,
            1,
            1023,
            1024,
            1025,
            2047,
            2048,
            2049,
            5 * 1024,
            256 * 1024,
            256 * 1024 + 1,
            300 * 1024 + 5,
        ] {
            round_trip_split(suite, len, &[], &[]);
            round_trip_split(
                suite,
                len,
                &[1, 1024, 1025, 3000],
                &[17, 1040, 1041, 1104, 2000],
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn round_trip_any_length_and_split(
        len in 0usize..6000,
        mut cuts in proptest::collection::vec(0usize..6000, 0..6),
        mut cuts2 in proptest::collection::vec(0usize..7000, 0..6),
        chacha in any::<bool>(),
    ) {
        cuts.sort_unstable();
        cuts2.sort_unstable();
        let suite = if chacha { Suite::ChaCha20Poly1305 } else { Suite::Aes256Gcm };
        round_trip_split(suite, len, &cuts, &cuts2);
    }

    #[test]
    fn any_flipped_bit_is_caught(len in 0usize..3000, pos in any::<prop::sample::Index>(), bit in 0u8..8) {
        let mut sealed = seal(params(Suite::ChaCha20Poly1305, 10, 1), &plaintext(len, 3));
        let i = pos.index(sealed.len());
        sealed[i] ^= 1 << bit;
        prop_assert!(open(&sealed).is_err());
    }

    #[test]
    fn header_round_trips(seq in any::<u64>(), epoch in any::<u32>(), t in any::<u64>(), log2 in 10u8..=24) {
        let mut p = params(Suite::Aes256Gcm, log2, 1);
        p.sequence = seq;
        p.epoch = epoch;
        p.captured_at = Timestamp(t);
        let mut out = Vec::new();
        let cam = camera();
        let sealer = Sealer::new(p, &viewing(1).public(), &cam, &mut rng(2), &mut out).unwrap();
        let h = Header::decode(&out).unwrap();
        prop_assert_eq!(&h, sealer.header());
        prop_assert_eq!(h.encode().to_vec(), out[..h.encode().len()].to_vec());
    }
}

#[test]
fn every_chunk_opens_by_random_access() {
    for suite in SUITES {
        let plain = plaintext(10_000, 9);
        let sealed = seal(params(suite, 10, 1), &plain);
        let opener = Opener::new(&sealed[..PREFIX_LEN], &camera().public(), &viewing(1)).unwrap();
        let layout = Layout::new(opener.header(), sealed.len() as u64).unwrap();
        assert_eq!(layout.chunks(), 10);
        assert_eq!(layout.plaintext_len(), 10_000);
        // Seek into the middle first, then everything from the end backwards.
        assert_eq!(layout.chunk_at(5_000), Some(4));
        assert_eq!(layout.chunk_at(10_000), None);
        for i in (0..layout.chunks()).rev() {
            let r = layout.chunk_range(i).unwrap();
            let mut buf = sealed[r.start as usize..r.end as usize].to_vec();
            opener.open_chunk(&layout, i, &mut buf).unwrap();
            let start = (i * 1024) as usize;
            assert_eq!(buf, plain[start..(start + 1024).min(plain.len())]);
        }
        assert_eq!(layout.trailer_range().end, sealed.len() as u64);
        assert!(layout.chunk_range(10).is_none());
    }
}

#[test]
fn truncation_is_named() {
    let plain = plaintext(5 * 1024 + 100, 4);
    let sealed = seal(params(Suite::Aes256Gcm, 10, 1), &plain);
    let ct = 1024 + TAG_LEN;
    for keep in 1..=5 {
        // Whole chunks kept, the rest (final chunk and trailer) cut off.
        let cut = &sealed[..PREFIX_LEN + keep * ct];
        assert_eq!(
            tamper_of(open(cut)),
            Tamper::Truncated {
                chunks: keep as u64
            }
        );
        // Same, with the real trailer re-attached.
        let mut spliced = cut.to_vec();
        spliced.extend_from_slice(&sealed[sealed.len() - TRAILER_LEN..]);
        assert_eq!(
            tamper_of(open(&spliced)),
            Tamper::Truncated {
                chunks: keep as u64
            }
        );
    }
    // Random access sees the same through the layout of the shortened object.
    let cut = &sealed[..PREFIX_LEN + 3 * ct + TRAILER_LEN];
    let opener = Opener::new(cut, &camera().public(), &viewing(1)).unwrap();
    let layout = Layout::new(opener.header(), cut.len() as u64).unwrap();
    let r = layout.chunk_range(2).unwrap();
    let mut buf = cut[r.start as usize..r.end as usize].to_vec();
    assert_eq!(
        opener.open_chunk(&layout, 2, &mut buf),
        Err(OpenError::Tampered(Tamper::Truncated { chunks: 3 }))
    );
    // Cutting inside the prefix is a malformed object.
    assert!(matches!(
        open(&sealed[..PREFIX_LEN - 1]),
        Err(OpenError::Malformed(_))
    ));
    assert_eq!(
        tamper_of(open(&sealed[..PREFIX_LEN])),
        Tamper::Truncated { chunks: 0 }
    );
}

#[test]
fn reordered_duplicated_and_spliced_chunks_fail() {
    let plain = plaintext(4 * 1024, 5);
    let sealed = seal(params(Suite::ChaCha20Poly1305, 10, 1), &plain);
    let ct = 1024 + TAG_LEN;
    let chunk = |s: &[u8], i: usize| s[PREFIX_LEN + i * ct..PREFIX_LEN + (i + 1) * ct].to_vec();
    let rebuild = |order: &[Vec<u8>]| {
        let mut v = sealed[..PREFIX_LEN].to_vec();
        for c in order {
            v.extend_from_slice(c);
        }
        v.extend_from_slice(&sealed[sealed.len() - TRAILER_LEN..]);
        v
    };
    let c: Vec<Vec<u8>> = (0..4).map(|i| chunk(&sealed, i)).collect();
    let swapped = rebuild(&[c[1].clone(), c[0].clone(), c[2].clone(), c[3].clone()]);
    assert_eq!(tamper_of(open(&swapped)), Tamper::Chunk { index: 0 });
    let duplicated = rebuild(&[c[0].clone(), c[0].clone(), c[2].clone(), c[3].clone()]);
    assert_eq!(tamper_of(open(&duplicated)), Tamper::Chunk { index: 1 });
    // A chunk from another clip of the same camera, epoch and position.
    let other = seal(params(Suite::ChaCha20Poly1305, 10, 2), &plain);
    let spliced = rebuild(&[c[0].clone(), chunk(&other, 1), c[2].clone(), c[3].clone()]);
    assert_eq!(tamper_of(open(&spliced)), Tamper::Chunk { index: 1 });
    // Bytes appended after the trailer.
    let mut longer = sealed.clone();
    longer.extend_from_slice(&[0; 7]);
    assert!(open(&longer).is_err());
}

#[test]
fn wrong_keys_and_altered_header_or_trailer_fail() {
    let sealed = seal(default_params(), &plaintext(3000, 6));
    assert_eq!(
        tamper_of(open_object(&sealed, &other_camera().public(), &viewing(1)).map(|x| x.0)),
        Tamper::HeaderSignature
    );
    assert_eq!(
        tamper_of(open_object(&sealed, &camera().public(), &viewing(2)).map(|x| x.0)),
        Tamper::KeyUnwrap { epoch: 1 }
    );
    let mut seq_changed = sealed.clone();
    seq_changed[50] ^= 1; // inside the sequence number
    assert_eq!(tamper_of(open(&seq_changed)), Tamper::HeaderSignature);
    let mut trailer = sealed.clone();
    let n = trailer.len();
    trailer[n - 1] ^= 0x80;
    assert_eq!(tamper_of(open(&trailer)), Tamper::TrailerSignature);
    let mut sig = sealed.clone();
    sig[PREFIX_LEN - 1] ^= 1;
    assert_eq!(tamper_of(open(&sig)), Tamper::HeaderSignature);
}

/// A party holding the clip key (a revoked device working with the server) can re-encrypt
/// chunks that pass the AEAD, but not forge the camera's trailer signature over them.
#[test]
fn key_holder_cannot_alter_content_unnoticed() {
    let cam = camera();
    let genuine = seal(default_params(), &plaintext(3000, 1));
    let forged = seal_object(
        default_params(),
        &plaintext(3000, 2),
        &viewing(1).public(),
        &other_camera(),
        &mut rng(7),
    )
    .unwrap()
    .0;
    // Same rng → same clip key and header (except the signature); graft forged chunks and
    // trailer onto the genuine camera-signed prefix.
    let mut spliced = genuine[..PREFIX_LEN].to_vec();
    spliced.extend_from_slice(&forged[PREFIX_LEN..]);
    assert_eq!(
        tamper_of(open_object(&spliced, &cam.public(), &viewing(1)).map(|x| x.0)),
        Tamper::TrailerSignature
    );
}

#[test]
fn sealing_from_a_reader_that_ends_early_fails() {
    let cam = camera();
    let plain = plaintext(3000, 1);
    let mut out = Vec::new();
    let sealer = Sealer::new(
        params(Suite::Aes256Gcm, 10, 1),
        &viewing(1).public(),
        &cam,
        &mut rng(1),
        &mut out,
    )
    .unwrap();
    let err = sealer
        .seal_read(&mut &plain[..], 3001, &mut out)
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
}

#[test]
fn seal_rejects_bad_chunk_size() {
    let cam = camera();
    for bad in [9u8, 25] {
        let p = params(Suite::Aes256Gcm, bad, 1);
        assert!(Sealer::new(p, &viewing(1).public(), &cam, &mut rng(1), &mut Vec::new()).is_err());
    }
}

#[test]
fn layout_rejects_impossible_lengths() {
    let sealed = seal(params(Suite::Aes256Gcm, 10, 1), &plaintext(2048, 1));
    let h = Header::decode(&sealed).unwrap();
    assert!(Layout::new(&h, sealed.len() as u64).is_ok());
    for len in [
        0,
        PREFIX_LEN + TRAILER_LEN + 15,
        PREFIX_LEN + 1024 + TAG_LEN + TAG_LEN + TRAILER_LEN,
    ] {
        assert_eq!(
            Layout::new(&h, len as u64),
            Err(Tamper::Length { len: len as u64 })
        );
    }
}

#[test]
fn event_round_trip_and_kind_check() {
    let details = EventDetails {
        kind: EventKind::Doorbell,
        started_at: Timestamp(1_795_735_205_000),
        duration_ms: 12_500,
        clip: Some(ObjectId([9; 16])),
        note: "front door".into(),
        thumbnail_jpeg: plaintext(40_000, 8),
    };
    let (sealed, summary) = seal_event(
        default_params(),
        &details,
        &viewing(1).public(),
        &camera(),
        &mut rng(3),
    )
    .unwrap();
    let (opened, obj) = open_event(&sealed, &camera().public(), &viewing(1)).unwrap();
    assert_eq!(opened, details);
    assert_eq!(obj.digest, summary.digest);
    let clip = seal(default_params(), b"not an event");
    assert!(open_event(&clip, &camera().public(), &viewing(1)).is_err());
    assert_eq!(
        EventDetails::decode(&details.encode().unwrap()).unwrap(),
        details
    );
    let too_big = EventDetails {
        note: "x".repeat(300),
        ..details
    };
    assert!(too_big.encode().is_err());
}

#[test]
fn live_session_frames() {
    let cam = camera();
    let mut prefix = Vec::new();
    let mut p = default_params();
    p.chunk_log2 = 12;
    let mut sealer =
        LiveSealer::new(p, &viewing(1).public(), &cam, &mut rng(4), &mut prefix).unwrap();
    let frags: Vec<Vec<u8>> = (0..5).map(|i| plaintext(100 + i * 500, i as u64)).collect();
    let frames: Vec<Vec<u8>> = frags
        .iter()
        .enumerate()
        .map(|(i, f)| sealer.seal_fragment(f, i == 4).unwrap())
        .collect();
    assert_eq!(
        sealer.seal_fragment(b"late", false),
        Err(LiveError::AfterEnd)
    );
    assert!(matches!(
        sealer.seal_fragment(&[0; 5000], false),
        Err(LiveError::TooLarge { .. })
    ));

    let mut viewer = LiveOpener::new(&prefix, &cam.public(), &viewing(1)).unwrap();
    let f0 = viewer.open_frame(&frames[0]).unwrap();
    assert_eq!(
        (f0.index, f0.skipped, f0.last, &f0.data),
        (0, 0, false, &frags[0])
    );
    // The relay dropped frame 1 for a slow viewer: visible as a skip.
    let f2 = viewer.open_frame(&frames[2]).unwrap();
    assert_eq!((f2.index, f2.skipped), (2, 1));
    assert_eq!(
        viewer.open_frame(&frames[1]),
        Err(LiveError::OutOfOrder {
            index: 1,
            previous: 2
        })
    );
    let mut bad = frames[3].clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert_eq!(
        viewer.open_frame(&bad),
        Err(LiveError::Tampered { index: 3 })
    );
    assert_eq!(viewer.open_frame(&frames[3]).unwrap().data, frags[3]);
    assert!(viewer.open_frame(&frames[4]).unwrap().last);
    assert_eq!(viewer.open_frame(&frames[4]), Err(LiveError::AfterEnd));
    // A clip prefix is not a live session, and a viewer for another camera refuses it.
    let clip = seal(default_params(), b"x");
    assert!(LiveOpener::new(&clip, &cam.public(), &viewing(1)).is_err());
    assert!(LiveOpener::new(&prefix, &other_camera().public(), &viewing(1)).is_err());
}

#[test]
fn overhead_is_small() {
    // 2 MB clip, 64 KiB chunks: header, two signatures and one tag per chunk.
    let sealed = seal(default_params(), &plaintext(2_000_000, 1));
    let overhead = sealed.len() - 2_000_000;
    assert_eq!(overhead, PREFIX_LEN + 31 * TAG_LEN + TRAILER_LEN);
    assert!((overhead as f64) / 2_000_000.0 < 0.001);
}

#[test]
fn a_server_can_check_the_header_signature_alone() {
    use keyhole_core::envelope::verify_prefix;
    let sealed = seal(default_params(), b"clip");
    let h = verify_prefix(&sealed[..PREFIX_LEN], &camera().public()).unwrap();
    assert_eq!(h.sequence, 1);
    assert_eq!(
        verify_prefix(&sealed, &other_camera().public()),
        Err(OpenError::Tampered(Tamper::HeaderSignature))
    );
    assert!(matches!(
        verify_prefix(&sealed[..PREFIX_LEN - 1], &camera().public()),
        Err(OpenError::Malformed(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// The keyless verifier accepts exactly what the camera sealed, however it is split, and
    /// refuses any truncation, extension or flipped byte.
    #[test]
    fn keyless_verifier(len in 0usize..5000, cut in any::<prop::sample::Index>(), flip in any::<prop::sample::Index>(), drop in 1usize..200) {
        use keyhole_core::envelope::ObjectVerifier;
        let (sealed, summary) = seal_object(params(Suite::Aes256Gcm, 10, 1), &plaintext(len, 9), &viewing(1).public(), &camera(), &mut rng(3)).unwrap();
        let run = |bytes: &[u8], split: usize| -> Result<_, OpenError> {
            let mut v = ObjectVerifier::new(bytes, &camera().public())?;
            let body = &bytes[PREFIX_LEN..];
            let split = split.min(body.len());
            v.update(&body[..split]);
            v.update(&body[split..]);
            v.finish()
        };
        let body_len = sealed.len() - PREFIX_LEN;
        prop_assert_eq!(run(&sealed, cut.index(body_len + 1)), Ok(summary.digest));
        let short = &sealed[..sealed.len() - drop.min(body_len)];
        prop_assert!(run(short, cut.index(body_len)).is_err());
        let mut long = sealed.clone();
        long.push(0);
        prop_assert!(run(&long, cut.index(body_len)).is_err());
        let mut flipped = sealed.clone();
        let i = PREFIX_LEN + flip.index(body_len);
        flipped[i] ^= 1;
        prop_assert!(run(&flipped, cut.index(body_len)).is_err());
        prop_assert!(ObjectVerifier::new(&sealed, &other_camera().public()).is_err());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    /// The chunk digester, however the bytes are split, digests exactly the chunks the layout
    /// names, and the summary the keyless verifier returns verifies to the same digest.
    #[test]
    fn chunk_digests_follow_the_layout(len in 0usize..6000, cut in any::<prop::sample::Index>()) {
        use keyhole_core::envelope::{ChunkDigester, Layout, ObjectVerifier, digest_chunk};
        let (sealed, summary) = seal_object(params(Suite::ChaCha20Poly1305, 10, 1), &plaintext(len, 4), &viewing(1).public(), &camera(), &mut rng(5)).unwrap();
        let header = Header::decode(&sealed).unwrap();
        let layout = Layout::new(&header, sealed.len() as u64).unwrap();
        let body = &sealed[PREFIX_LEN..];
        let split = cut.index(body.len() + 1);
        let mut digester = ChunkDigester::new(&header);
        digester.update(&body[..split]);
        digester.update(&body[split..]);
        let digests = digester.finish();
        prop_assert_eq!(digests.len() as u64, layout.chunks());
        for i in 0..layout.chunks() {
            let r = layout.chunk_range(i).unwrap();
            let chunk = &sealed[r.start as usize..r.end as usize];
            prop_assert!(digests.matches(i, chunk));
            prop_assert_eq!(digests.get(i), Some(&digest_chunk(chunk)));
        }
        prop_assert!(!digests.matches(layout.chunks(), b""));
        let mut v = ObjectVerifier::new(&sealed, &camera().public()).unwrap();
        v.update(body);
        let (digest, listed) = v.finish_summary().unwrap();
        prop_assert_eq!(digest, summary.digest);
        prop_assert_eq!(listed.digest(), summary.digest);
        prop_assert_eq!(listed.verify(sealed.len() as u64, &camera().public()).unwrap().object.digest, summary.digest);
    }
}

/// A live session as the camera makes it and a viewer opens it: the prefix, the viewer's check
/// (asking with nonce `[9; 16]`) and the frames `0..n`, each as sealed, with its opened fragment.
fn live_viewed(
    n: usize,
) -> (
    LiveOpener,
    LiveCheck,
    Vec<(Vec<u8>, keyhole_core::live::LiveFragment)>,
) {
    let cam = camera();
    let mut prefix = Vec::new();
    let mut p = default_params();
    p.chunk_log2 = 12;
    let mut sealer =
        LiveSealer::new(p, &viewing(1).public(), &cam, &mut rng(5), &mut prefix).unwrap();
    let mut opener = LiveOpener::new(&prefix, &cam.public(), &viewing(1)).unwrap();
    let check = LiveCheck::new(opener.header(), cam.public(), [9; 16]);
    let frames = (0..n)
        .map(|i| {
            let frame = sealer
                .seal_fragment(&plaintext(300, i as u64), false)
                .unwrap();
            let fragment = opener.open_frame(&frame).unwrap();
            (frame, fragment)
        })
        .collect();
    (opener, check, frames)
}

/// The camera's checkpoint for `frames` (indexes with their sealed frames), naming `nonces`.
fn checkpoint(
    session: ObjectId,
    clock: u64,
    nonces: &[([u8; 16], u64)],
    frames: &[(u64, &[u8])],
) -> Vec<u8> {
    Checkpoint {
        camera_id: CAMERA_ID,
        session,
        clock: Timestamp(clock),
        nonces: nonces.iter().map(|(n, t)| (*n, Timestamp(*t))).collect(),
        frames: frames
            .iter()
            .map(|(i, frame)| (*i, frame_digest(&frame[FRAME_HEADER_LEN..])))
            .collect(),
    }
    .sign(&camera())
    .unwrap()
}

/// Frames are shown only once a checkpoint lists them and one names this viewer's request; the
/// lag is the viewer's time since asking less the camera's since it got the request.
#[test]
fn live_frames_are_shown_once_vouched_for_and_asked_for() {
    let (opener, mut check, frames) = live_viewed(3);
    let session = opener.header().object_id;
    for (frame, fragment) in &frames {
        check.frame(&frame[FRAME_HEADER_LEN..], fragment.clone());
    }
    let listed: Vec<(u64, &[u8])> = frames
        .iter()
        .enumerate()
        .map(|(i, (f, _))| (i as u64, f.as_slice()))
        .collect();
    // Vouched for, but the camera has not named this viewer yet: nothing shown.
    let before = checkpoint(session, 1_000, &[([1; 16], 900)], &listed);
    assert!(check.checkpoint(&before, 500).unwrap().is_empty());
    assert_eq!(check.max_lag_ms(), None);
    // Named: the three frames come out, in order; the camera got the request at 1 200 and
    // signed at 2 000 (800 ms), the viewer asked 900 ms ago: 100 ms behind.
    let named = checkpoint(session, 2_000, &[([1; 16], 900), ([9; 16], 1_200)], &[]);
    let shown = check.checkpoint(&named, 900).unwrap();
    assert_eq!(shown.iter().map(|f| f.index).collect::<Vec<_>>(), [0, 1, 2]);
    assert_eq!(check.max_lag_ms(), Some(100));
    // Held back 10 s more: the lag says so.
    let late = checkpoint(session, 3_000, &[([9; 16], 1_200)], &[]);
    check.checkpoint(&late, 11_800).unwrap();
    assert_eq!(check.max_lag_ms(), Some(10_000));
    assert_eq!(check.unverified(), 0);
}

/// A frame sealed under the session key by a holder of the viewing key opens like the camera's,
/// and the camera's checkpoint shows it is not the camera's.
#[test]
fn a_live_frame_injected_by_a_key_holder_is_caught() {
    let (holder, mut check, frames) = live_viewed(3);
    let session = holder.header().object_id;
    // The relay passes frame 0, then a frame the key holder sealed as frame 1.
    let forged = holder.seal_frame(1, false, b"someone else's picture");
    // A second viewer's opener of the same session (the same seeded sealer makes it).
    let mut opener = {
        let cam = camera();
        let mut prefix = Vec::new();
        let mut p = default_params();
        p.chunk_log2 = 12;
        let _ = LiveSealer::new(p, &viewing(1).public(), &cam, &mut rng(5), &mut prefix).unwrap();
        LiveOpener::new(&prefix, &cam.public(), &viewing(1)).unwrap()
    };
    let first = opener.open_frame(&frames[0].0).unwrap();
    let injected = opener.open_frame(&forged).unwrap();
    assert_eq!(injected.data, b"someone else's picture", "it opens");
    check.frame(&frames[0].0[FRAME_HEADER_LEN..], first);
    check.frame(&forged[FRAME_HEADER_LEN..], injected);
    let listed: Vec<(u64, &[u8])> = frames
        .iter()
        .enumerate()
        .map(|(i, (f, _))| (i as u64, f.as_slice()))
        .collect();
    let cp = checkpoint(session, 1_000, &[([9; 16], 900)], &listed);
    assert_eq!(
        check.checkpoint(&cp, 200),
        Err(LiveCheckError::Injected { index: 1 })
    );
}

/// A session whose checkpoints never name this viewer's request is a recording played back.
#[test]
fn a_live_session_that_never_names_the_request_is_not_live() {
    let (opener, mut check, _) = live_viewed(0);
    let session = opener.header().object_id;
    for n in 1..CONFIRM_WITHIN {
        let cp = checkpoint(session, u64::from(n) * 1000, &[([1; 16], 10)], &[]);
        assert_eq!(check.checkpoint(&cp, 0), Ok(Vec::new()));
    }
    let cp = checkpoint(session, 99_000, &[([1; 16], 10)], &[]);
    assert_eq!(check.checkpoint(&cp, 0), Err(LiveCheckError::NotLive));
    // Another session's checkpoint, or an altered one, is refused outright.
    let other = checkpoint(ObjectId([3; 16]), 1, &[], &[]);
    assert_eq!(
        check.checkpoint(&other, 0),
        Err(LiveCheckError::OtherSession)
    );
    let mut altered = checkpoint(session, 1, &[([9; 16], 1)], &[]);
    altered[40] ^= 1;
    assert_eq!(
        check.checkpoint(&altered, 0),
        Err(LiveCheckError::BadSignature)
    );
}
