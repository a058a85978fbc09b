//! `mp4::Splitter` on any bytes, fed in two parts (the first byte says where to cut): it never
//! panics, what it gives back is cut from its input (whole boxes, in order, no more bytes than
//! came in), each fragment starts with its `moof`, and feeding the same bytes at once gives the
//! same pieces.
#![no_main]

use keyhole_media::mp4::{Piece, Splitter};
use libfuzzer_sys::fuzz_target;

fn split(parts: &[&[u8]]) -> (Vec<Piece>, bool) {
    let mut splitter = Splitter::new();
    let mut pieces = Vec::new();
    for part in parts {
        match splitter.push(part) {
            Ok(more) => pieces.extend(more),
            Err(_) => return (pieces, false),
        }
    }
    (pieces, true)
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, stream)) = data.split_first() else {
        return;
    };
    let at = usize::from(cut).min(stream.len());
    let (pieces, ok) = split(&[&stream[..at], &stream[at..]]);
    let total: usize = pieces.iter().map(|p| p.bytes().len()).sum();
    assert!(total <= stream.len());
    for piece in &pieces {
        if let Piece::Fragment { bytes, .. } = piece {
            assert_eq!(bytes.get(4..8), Some(&b"moof"[..]));
        }
    }
    let (whole, whole_ok) = split(&[stream]);
    if ok && whole_ok {
        assert_eq!(pieces, whole, "the same pieces however the bytes arrive");
    }
});
