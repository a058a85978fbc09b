//! `envelope::Header::decode` on any bytes; a header that decodes must re-encode to the same
//! bytes, and `Layout` must keep its promises for any claimed object length.
#![no_main]

use keyhole_core::envelope::{
    Header, Layout, CHUNK_LOG2_RANGE, HEADER_LEN, PREFIX_LEN, TAG_LEN, TRAILER_LEN,
};
use keyhole_core_fuzz::{check_layout, u64_at};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(header) = Header::decode(data) else {
        return;
    };
    let encoded = header.encode();
    assert_eq!(
        &encoded[..],
        &data[..HEADER_LEN],
        "header does not re-encode to its bytes"
    );
    assert_eq!(
        Header::decode(&encoded).as_ref(),
        Ok(&header),
        "re-decoding changed the header"
    );
    assert!(CHUNK_LOG2_RANGE.contains(&header.chunk_log2));

    // The bytes after the header are ignored by decode; use them as claimed lengths.
    let _ = check_layout(&header, data.len() as u64);
    let _ = check_layout(&header, u64_at(data, HEADER_LEN));
    let _ = check_layout(&header, u64_at(data, HEADER_LEN + 8) % (1 << 40));

    // And the other direction: a length built from a valid (chunks, last chunk) pair must be
    // accepted with exactly that many chunks.
    let cs = header.chunk_size() as u64;
    let ct = cs + TAG_LEN as u64;
    let chunks = 1 + u64_at(data, HEADER_LEN + 16) % (1 << 24);
    let last_pt = if chunks == 1 {
        u64_at(data, HEADER_LEN + 24) % (cs + 1)
    } else {
        1 + u64_at(data, HEADER_LEN + 24) % cs
    };
    let sealed = (PREFIX_LEN + TRAILER_LEN) as u64 + (chunks - 1) * ct + last_pt + TAG_LEN as u64;
    let layout = Layout::new(&header, sealed).unwrap_or_else(|e| {
        panic!("Layout::new refused {chunks} chunk(s), last {last_pt} bytes: {e}")
    });
    assert_eq!(layout.chunks(), chunks);
    assert_eq!(layout.plaintext_len(), (chunks - 1) * cs + last_pt);
    let _ = check_layout(&header, sealed);
});
