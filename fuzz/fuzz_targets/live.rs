//! `live::parse_frame` on any bytes, and `live::LiveOpener::open_frame` on a sequence of frames
//! (split by their own length fields) against the fixture live session, whose prefix is made
//! with fixed keys and a seeded RNG so frames sealed by `make_seeds` open.
#![no_main]

use std::sync::OnceLock;

use keyhole_core::envelope::TAG_LEN;
use keyhole_core::live::{frame_header, parse_frame, LiveError, LiveOpener, FRAME_HEADER_LEN};
use keyhole_core_fuzz::{camera, live_session, split_frames, viewing};
use libfuzzer_sys::fuzz_target;

fn prefix() -> &'static [u8] {
    static PREFIX: OnceLock<Vec<u8>> = OnceLock::new();
    PREFIX.get_or_init(|| live_session(&camera()).0)
}

fn check_parse(frame: &[u8]) {
    for max in [0, TAG_LEN, 1024 + TAG_LEN, usize::MAX] {
        if let Ok((index, body)) = parse_frame(frame, max) {
            assert!(body.len() >= TAG_LEN && body.len() <= max);
            assert_eq!(frame.len(), FRAME_HEADER_LEN + body.len());
            let len = u32::try_from(body.len()).expect("length came from a u32");
            assert_eq!(&frame_header(index, len)[..], &frame[..FRAME_HEADER_LEN]);
            assert_eq!(&frame[FRAME_HEADER_LEN..], body);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    check_parse(data);
    let camera_key = camera().public();
    let mut opener =
        LiveOpener::new(prefix(), &camera_key, &viewing()).expect("the fixture session opens");
    let max_body = opener.header().chunk_size() + TAG_LEN;
    let (mut next, mut ended) = (0u64, false);
    for frame in split_frames(data, 64) {
        check_parse(frame);
        let parsed = parse_frame(frame, max_body).ok();
        match opener.open_frame(frame) {
            Ok(fragment) => {
                assert!(!ended, "a frame opened after the final frame");
                let (index, body) = parsed.expect("an opened frame parses");
                assert_eq!(fragment.index, index);
                assert!(index >= next);
                assert_eq!(fragment.skipped, index - next);
                assert_eq!(fragment.data.len() + TAG_LEN, body.len());
                next = index.saturating_add(1);
                ended = fragment.last;
            }
            Err(LiveError::AfterEnd) => assert!(ended, "AfterEnd before the final frame"),
            Err(e) => {
                assert!(
                    !ended,
                    "after the final frame every frame is AfterEnd, got {e:?}"
                );
                match (e, parsed) {
                    (LiveError::Malformed(_), None) => {}
                    (LiveError::OutOfOrder { index, .. }, Some((i, _))) => {
                        assert!(index == i && i < next)
                    }
                    (LiveError::Tampered { index }, Some((i, _))) => {
                        assert!(index == i && i >= next)
                    }
                    (e, parsed) => panic!("unexpected {e:?} for a frame that parsed as {parsed:?}"),
                }
            }
        }
    }
});
