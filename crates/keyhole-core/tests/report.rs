//! The verification report over a camera's listing: gaps, replays, reordering, swaps and
//! retired epochs, each with its message.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    missing_docs
)]

mod common;

use common::*;
use keyhole_core::camera_head::CameraHead;
use keyhole_core::envelope::{
    ObjectDigest, ObjectKind, SealParams, Suite, open_object, seal_object,
};
use keyhole_core::report::{
    Checked, DEFAULT_EPOCH_GRACE_MS, DEFAULT_SILENT_AFTER_MS, EpochStart, Expectations, Failure,
    Listed, Problem, Report, Silence,
};
use keyhole_core::{CameraId, CameraKey, ObjectId, Timestamp};

const T0: u64 = 1_795_735_205_000;

struct Clip {
    id: ObjectId,
    sealed: Vec<u8>,
}

/// Seals `n` chained objects (alternating clips and events) for `camera_id` with `key`.
fn chain(camera_id: CameraId, key: &CameraKey, n: u64, epoch_of: impl Fn(u64) -> u32) -> Vec<Clip> {
    let mut previous = ObjectDigest::default();
    (1..=n)
        .map(|seq| {
            let epoch = epoch_of(seq);
            let p = SealParams {
                kind: if seq % 2 == 0 {
                    ObjectKind::Event
                } else {
                    ObjectKind::Clip
                },
                suite: Suite::Aes256Gcm,
                chunk_log2: 10,
                camera_id,
                object_id: ObjectId([u8::try_from(seq).unwrap() + camera_id.0[0]; 16]),
                epoch,
                sequence: seq,
                previous,
                captured_at: Timestamp(T0 + seq * 3_600_000),
            };
            let (sealed, summary) = seal_object(
                p,
                &plaintext(1500, seq),
                &viewing(epoch).public(),
                key,
                &mut rng(seq),
            )
            .unwrap();
            previous = summary.digest;
            Clip {
                id: summary.header.object_id,
                sealed,
            }
        })
        .collect()
}

fn check(clip: &Clip, listed_id: ObjectId) -> Listed {
    let epoch = keyhole_core::envelope::Header::decode(&clip.sealed)
        .unwrap()
        .epoch;
    let result = open_object(&clip.sealed, &camera().public(), &viewing(epoch)).map(|(_, o)| o);
    Listed {
        listed_id,
        checked: Checked::from_open(&clip.sealed, result),
    }
}

fn expect() -> Expectations {
    Expectations {
        camera_id: CAMERA_ID,
        epochs: vec![EpochStart {
            epoch: 1,
            began: Timestamp(T0),
        }],
        first_sequence: 1,
        verified_before: None,
        epoch_grace_ms: DEFAULT_EPOCH_GRACE_MS,
        camera_head: None,
        silence: None,
    }
}

/// The camera's signed word that `sequence` is its newest object and everything up to
/// `delivered` reached the server, at `clock`, verified as a device would.
fn head(c: &[Clip], sequence: u64, delivered: u64, clock: u64) -> CameraHead {
    let all = Report::build(&expect(), &list(&c.iter().collect::<Vec<_>>()));
    let digest = all.entries[usize::try_from(sequence - 1).unwrap()]
        .digest
        .unwrap();
    let bytes = CameraHead {
        camera_id: CAMERA_ID,
        sequence,
        digest,
        delivered,
        clock: Timestamp(clock),
        silent_after_s: 900,
        record_version: 1,
        roster_version: 1,
        live_challenge: [0x1c; 32],
    }
    .sign(&camera())
    .unwrap();
    CameraHead::verify(&bytes, &CAMERA_ID, &camera().public()).unwrap()
}

fn list(clips: &[&Clip]) -> Vec<Listed> {
    clips.iter().map(|c| check(c, c.id)).collect()
}

fn problems(r: &Report) -> Vec<(usize, Problem)> {
    r.entries
        .iter()
        .enumerate()
        .flat_map(|(i, e)| e.problems.iter().map(move |p| (i, p.clone())))
        .collect()
}

#[test]
fn a_clean_listing_verifies() {
    let c = chain(CAMERA_ID, &camera(), 5, |_| 1);
    let r = Report::build(&expect(), &list(&c.iter().collect::<Vec<_>>()));
    assert!(r.is_clean(), "{r}");
    assert!(r.to_string().contains("5 of 5 objects verified"));
}

#[test]
fn hidden_and_deleted_objects_are_gaps() {
    let c = chain(CAMERA_ID, &camera(), 6, |_| 1);
    let r = Report::build(&expect(), &list(&[&c[0], &c[1], &c[3], &c[4]]));
    assert_eq!(r.missing, vec![3..=3]);
    // What a device verified before: the whole chain, its mark at sequence 6.
    let all = Report::build(&expect(), &list(&c.iter().collect::<Vec<_>>()));
    let mark = all.high_water(None).unwrap();
    assert_eq!(mark.sequence, 6);
    let mut e = expect();
    e.verified_before = Some(mark);
    let r = Report::build(&e, &list(&[&c[1], &c[2]]));
    assert_eq!(r.missing, vec![1..=1, 4..=6]);
    assert!(
        r.to_string()
            .contains("MISSING sequences 4–6: no verified object"),
        "{r}"
    );
    assert!(!r.is_clean());
    // A shorter listing never lowers the mark.
    assert_eq!(r.high_water(Some(mark)), Some(mark));
}

/// The camera's head names objects no device has seen yet: a listing that ends before what the
/// camera delivered hides them (even every object), another object at the head's sequence is a
/// swap, and what is still on the camera is waiting, not missing.
#[test]
fn what_the_camera_signed_it_delivered_must_be_listed() {
    let c = chain(CAMERA_ID, &camera(), 6, |_| 1);
    let mut e = expect();
    e.camera_head = Some(head(&c, 6, 6, T0));
    let newest_hidden = Report::build(&e, &list(&[&c[0], &c[1], &c[2], &c[3]]));
    assert_eq!(newest_hidden.missing, vec![5..=6], "{newest_hidden}");
    assert!(!newest_hidden.is_clean());
    let all_hidden = Report::build(&e, &[]);
    assert_eq!(all_hidden.missing, vec![1..=6]);
    assert!(all_hidden.to_string().contains("MISSING sequences 1–6"));
    assert!(!all_hidden.is_clean());
    // Sealed but still on the camera: waiting, not a problem.
    e.camera_head = Some(head(&c, 6, 4, T0));
    let spooled = Report::build(&e, &list(&[&c[0], &c[1], &c[2], &c[3]]));
    assert!(spooled.is_clean(), "{spooled}");
    assert_eq!(spooled.waiting, Some(5..=6));
    assert!(spooled.to_string().contains("WAITING sequences 5–6"));
    // The head names sequence 3's digest; another authentic object there is named.
    let other = chain(CAMERA_ID, &camera(), 4, |_| 2);
    e.camera_head = Some(head(&c, 3, 3, T0));
    e.epochs.push(EpochStart {
        epoch: 2,
        began: Timestamp(T0),
    });
    let swapped = Report::build(&e, &list(&[&c[0], &c[1], &other[2]]));
    assert!(
        problems(&swapped).contains(&(2, Problem::NotAsSigned { sequence: 3 })),
        "{swapped}"
    );
}

/// A camera that promised its next head within 900 s and has not been heard from since is
/// silent; one never heard from is silent a day after pairing.
#[test]
fn a_camera_not_heard_from_for_longer_than_it_promised_is_silent() {
    let c = chain(CAMERA_ID, &camera(), 2, |_| 1);
    let mut e = expect();
    e.camera_head = Some(head(&c, 2, 2, T0));
    e.silence = Some(Silence {
        now: Timestamp(T0 + 899_000),
        paired_at: Timestamp(T0),
    });
    let heard = Report::build(&e, &list(&[&c[0], &c[1]]));
    assert_eq!(heard.silent_since, None);
    assert!(heard.is_clean(), "{heard}");
    e.silence = Some(Silence {
        now: Timestamp(T0 + 900_000),
        paired_at: Timestamp(T0),
    });
    let silent = Report::build(&e, &list(&[&c[0], &c[1]]));
    assert_eq!(silent.silent_since, Some(Timestamp(T0)));
    assert!(!silent.is_clean());
    assert!(silent.to_string().contains("SILENT"), "{silent}");
    // Never heard from.
    e.camera_head = None;
    e.silence = Some(Silence {
        now: Timestamp(T0 + DEFAULT_SILENT_AFTER_MS),
        paired_at: Timestamp(T0),
    });
    assert_eq!(
        Report::build(&e, &[]).silent_since,
        Some(Timestamp(T0)),
        "never heard from"
    );
    // A removed camera owes nothing.
    e.silence = None;
    assert!(Report::build(&e, &[]).is_clean());
}

/// Another authentic object at the sequence this device verified before (one the camera sealed
/// on a chain it did not keep, or a replay of another epoch's) is named, not taken as the
/// newest.
#[test]
fn an_object_other_than_the_one_verified_before_is_named() {
    let c = chain(CAMERA_ID, &camera(), 3, |_| 1);
    let mark = Report::build(&expect(), &list(&c.iter().collect::<Vec<_>>()))
        .high_water(None)
        .unwrap();
    // The same chain but for its third object, sealed to another epoch: another digest.
    let other = chain(CAMERA_ID, &camera(), 3, |s| if s == 3 { 2 } else { 1 });
    let mut e = expect();
    e.verified_before = Some(mark);
    let r = Report::build(&e, &list(&other.iter().collect::<Vec<_>>()));
    assert!(
        r.entries[2]
            .problems
            .contains(&Problem::NotAsVerified { sequence: 3 }),
        "{r}"
    );
    assert!(!r.is_clean());
    assert_eq!(r.high_water(Some(mark)), Some(mark), "the mark stays");
}

#[test]
fn replayed_and_reordered_objects_are_named() {
    let c = chain(CAMERA_ID, &camera(), 4, |_| 1);
    // Sequence 2 replayed as a new object at the end, under a new id.
    let mut l = list(&[&c[0], &c[1], &c[2], &c[3]]);
    l.push(check(&c[1], ObjectId([0xee; 16])));
    let p = problems(&Report::build(&expect(), &l));
    assert!(p.contains(&(4, Problem::Mislabeled { sealed_id: c[1].id })));
    assert!(p.contains(&(
        4,
        Problem::Duplicate {
            sequence: 2,
            first: c[1].id
        }
    )));
    assert!(p.contains(&(
        4,
        Problem::OutOfOrder {
            sequence: 2,
            after: 4
        }
    )));
    // Two objects listed in swapped order.
    let r = Report::build(&expect(), &list(&[&c[0], &c[2], &c[1], &c[3]]));
    assert_eq!(
        problems(&r),
        vec![(
            2,
            Problem::OutOfOrder {
                sequence: 2,
                after: 3
            }
        )]
    );
    assert!(
        r.to_string()
            .contains("reordered: sequence 2 is listed after sequence 3")
    );
}

#[test]
fn swaps_between_cameras_and_broken_links_are_named() {
    let mine = chain(CAMERA_ID, &camera(), 3, |_| 1);
    // Another camera's (or account's) clip put in place of sequence 2.
    let theirs = chain(OTHER_CAMERA_ID, &other_camera(), 3, |_| 1);
    let r = Report::build(&expect(), &list(&[&mine[0], &theirs[1], &mine[2]]));
    assert_eq!(
        problems(&r),
        vec![(
            1,
            Problem::OtherCamera {
                camera: OTHER_CAMERA_ID
            }
        )]
    );
    assert_eq!(r.missing, vec![2..=2]);
    assert!(r.to_string().contains("sealed by another camera"));
    // A genuine sequence-2 object from a different chain of the same camera (e.g. from before
    // a reset) does not follow from sequence 1.
    let alt = chain(CAMERA_ID, &camera(), 3, |s| if s == 1 { 2 } else { 1 });
    let r = Report::build(&expect(), &list(&[&mine[0], &alt[1], &mine[2]]));
    let p = problems(&r);
    assert!(
        p.contains(&(1, Problem::BrokenChain { sequence: 2 })),
        "{p:?}"
    );
    assert!(
        p.contains(&(2, Problem::BrokenChain { sequence: 3 })),
        "{p:?}"
    );
}

#[test]
fn tampered_objects_are_reported_with_their_reason() {
    let c = chain(CAMERA_ID, &camera(), 3, |_| 1);
    let mut bad = Clip {
        id: c[1].id,
        sealed: c[1].sealed.clone(),
    };
    let n = bad.sealed.len();
    bad.sealed[n - 100] ^= 4;
    let r = Report::build(&expect(), &list(&[&c[0], &bad, &c[2]]));
    let p = problems(&r);
    assert!(matches!(p.as_slice(), [(1, Problem::Tampered(_))]), "{p:?}");
    assert_eq!(r.missing, vec![2..=2]);
    let r = Report::build(
        &expect(),
        &[Listed {
            listed_id: c[0].id,
            checked: Checked::Failed {
                header: None,
                reason: Failure::NoViewingKey { epoch: 7 },
            },
        }],
    );
    assert!(r.to_string().contains("epoch 7"));
}

#[test]
fn sealing_to_a_retired_epoch_is_flagged() {
    // Epoch 2 began between sequence 2 and 3, but the server withheld the new record, so the
    // camera kept sealing sequence 3 and 4 to epoch 1.
    let c = chain(CAMERA_ID, &camera(), 4, |_| 1);
    let mut e = expect();
    e.epochs.push(EpochStart {
        epoch: 2,
        began: Timestamp(T0 + 2 * 3_600_000 + 60_000),
    });
    let p = problems(&Report::build(&e, &list(&c.iter().collect::<Vec<_>>())));
    assert_eq!(
        p,
        vec![
            (
                2,
                Problem::RetiredEpoch {
                    epoch: 1,
                    current: 2
                }
            ),
            (
                3,
                Problem::RetiredEpoch {
                    epoch: 1,
                    current: 2
                }
            ),
        ]
    );
    // Within the grace period, it is not.
    e.epochs[1].began = Timestamp(T0 + 3 * 3_600_000 - 60_000);
    let p = problems(&Report::build(&e, &list(&c.iter().collect::<Vec<_>>())));
    assert_eq!(
        p,
        vec![(
            3,
            Problem::RetiredEpoch {
                epoch: 1,
                current: 2
            }
        )]
    );
    // An epoch that goes back along the sequence.
    let back = chain(CAMERA_ID, &camera(), 3, |s| if s == 2 { 2 } else { 1 });
    let mut e = expect();
    e.epochs.push(EpochStart {
        epoch: 2,
        began: Timestamp(T0),
    });
    e.epoch_grace_ms = u64::MAX;
    let p = problems(&Report::build(&e, &list(&back.iter().collect::<Vec<_>>())));
    assert_eq!(
        p,
        vec![(
            2,
            Problem::RetiredEpoch {
                epoch: 1,
                current: 2
            }
        )]
    );
}
