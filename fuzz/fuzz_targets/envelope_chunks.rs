//! Random access: `Layout::new` for the object's length and `Opener::open_chunk` on every
//! chunk, checked against `open_object`.
#![no_main]

use keyhole_core::envelope::{open_object, OpenError, Opener, Tamper};
use keyhole_core_fuzz::{camera, check_layout, viewing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let camera_key = camera().public();
    let viewing_key = viewing();
    let Ok(opener) = Opener::new(data, &camera_key, &viewing_key) else {
        return;
    };
    let whole = open_object(data, &camera_key, &viewing_key);
    let Some(layout) = check_layout(opener.header(), data.len() as u64) else {
        assert!(whole.is_err(), "an object with an impossible length opened");
        return;
    };

    let mut plain = Vec::new();
    let mut all_opened = true;
    for index in 0..layout.chunks() {
        let range = layout.chunk_range(index).expect("index < chunks");
        let bytes = &data[range.start as usize..range.end as usize];
        let mut buf = bytes.to_vec();
        match opener.open_chunk(&layout, index, &mut buf) {
            Ok(()) => {
                assert!(buf.len() <= opener.header().chunk_size());
                plain.extend_from_slice(&buf);
            }
            Err(e) => {
                assert!(
                    matches!(
                        e,
                        OpenError::Tampered(Tamper::Chunk { .. } | Tamper::Truncated { .. })
                    ),
                    "{e:?}"
                );
                all_opened = false;
            }
        }
        // A buffer of the wrong size is refused, never sliced out of bounds.
        if let Some((_, shorter)) = bytes.split_last() {
            assert!(opener
                .open_chunk(&layout, index, &mut shorter.to_vec())
                .is_err());
        }
    }
    assert!(opener
        .open_chunk(&layout, layout.chunks(), &mut Vec::new())
        .is_err());

    match whole {
        Ok((whole_plain, opened)) => {
            assert!(
                all_opened,
                "open_object succeeded but a chunk did not open alone"
            );
            assert_eq!(plain, whole_plain);
            assert_eq!(layout.chunks(), opened.chunks);
        }
        Err(e) if all_opened => {
            // Every chunk is authentic, so only the camera's content signature can fail.
            assert_eq!(
                e,
                OpenError::Tampered(Tamper::TrailerSignature),
                "all chunks opened"
            );
        }
        Err(_) => {}
    }
});
