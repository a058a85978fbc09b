//! The server's non-JSON request decoding (`keyhole-wire`): batch upload bodies, `Range`
//! and `Content-Range` headers, and messages from other servers. A body that splits re-encodes
//! to itself; a range is inside the object and not empty; a message that decodes re-encodes to
//! itself.
#![no_main]

use keyhole_wire::peer::PeerMessage;
use keyhole_wire::{batch, range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(objects) = batch::split(data) {
        assert_eq!(
            batch::encode(&objects).as_deref(),
            Ok(data),
            "batch re-encodes"
        );
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(m) = PeerMessage::decode(text) {
            assert_eq!(m.encode().as_deref(), Some(text), "message re-encodes");
        }
        if let Some((r, len)) = range::parse_content_range(text) {
            assert!(r.start < r.end && r.end <= len, "{text:?}: {r:?} of {len}");
        }
    }
    // The first 8 bytes choose the object's length, the rest is the header value.
    let Some((len, value)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Ok(value) = std::str::from_utf8(value) else {
        return;
    };
    let len = u64::from_le_bytes(*len);
    if let Ok(r) = range::parse(value, len) {
        assert!(r.start < r.end && r.end <= len, "{value:?} of {len}: {r:?}");
    }
});
