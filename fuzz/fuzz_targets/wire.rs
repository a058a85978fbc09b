//! The non-JSON decoding of `keyhole-wire`: batch upload bodies, `Range` and `Content-Range`
//! headers, messages from other servers, and the announcement channel a device reads. A body
//! that splits re-encodes to itself; a range is inside the object and not empty; a message that
//! decodes re-encodes to itself; the channel's events re-encode to bytes that read back the
//! same, whether fed at once or in two pieces.
#![no_main]

use keyhole_wire::announce::{Reader, Stored};
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
    if let Ok(events) = Reader::new().feed(data) {
        let again: String = events.iter().map(|m| m.encode()).collect();
        assert_eq!(
            Reader::new().feed(again.as_bytes()),
            Ok(events),
            "events re-read"
        );
        let cut = data.len() / 2;
        let mut reader = Reader::new();
        let mut pieces = reader.feed(&data[..cut]).expect("a prefix reads");
        pieces.extend(reader.feed(&data[cut..]).expect("the rest reads"));
        assert_eq!(Reader::new().feed(data), Ok(pieces), "pieces read the same");
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(s) = Stored::decode(text) {
            assert_eq!(s.encode(), text, "a stored object's notice re-encodes");
        }
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
