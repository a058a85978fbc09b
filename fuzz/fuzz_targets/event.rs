//! `event::EventDetails::decode`; details that decode must re-encode to the same bytes.
#![no_main]

use keyhole_core::event::{EventDetails, MAX_NOTE, MAX_THUMBNAIL};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(details) = EventDetails::decode(data) else {
        return;
    };
    assert!(details.note.len() <= MAX_NOTE);
    assert!(details.thumbnail_jpeg.len() <= MAX_THUMBNAIL);
    let encoded = details
        .encode()
        .unwrap_or_else(|e| panic!("decoded event does not encode: {e}"));
    assert_eq!(encoded, data, "event does not re-encode to its bytes");
});
