//! `envelope::ObjectSummary` (PROTOCOL.md §7.12): the input is a sealed length (8 bytes,
//! big-endian) and the summary bytes, checked under the fixture camera's key. Never panics; a
//! summary that verifies names the digest its bytes hash to and a chunk layout that fits its
//! length.
#![no_main]

use keyhole_core::envelope::{Layout, ObjectSummary};
use keyhole_core_fuzz::camera;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let sealed_len = u64::from_be_bytes(*len);
    let Ok(summary) = ObjectSummary::decode(rest) else {
        return;
    };
    assert_eq!(summary.as_bytes()[..], rest[..], "decode is not exact");
    if let Ok(verified) = summary.verify(sealed_len, &camera().public()) {
        assert_eq!(verified.object.digest, summary.digest());
        assert_eq!(verified.payload_digest, summary.payload_digest());
        let layout = Layout::new(&verified.object.header, sealed_len).expect("verified layout");
        assert_eq!(layout.chunks(), verified.object.chunks);
        assert_eq!(layout.plaintext_len(), verified.object.plaintext_len);
    }
});
