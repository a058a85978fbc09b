//! `Opener::new` then `StreamOpener::update` fed in pieces, split at points derived from the
//! input (many next to chunk boundaries), then `finish`. However the body is split, the result
//! must be exactly what `open_object` gives for the whole object.
#![no_main]

use keyhole_core::envelope::{open_object, Opener, PREFIX_LEN, TAG_LEN};
use keyhole_core_fuzz::{camera, viewing, Cuts};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let camera_key = camera().public();
    let viewing_key = viewing();
    let Ok(opener) = Opener::new(data, &camera_key, &viewing_key) else {
        return;
    };
    let ct_chunk = opener.header().chunk_size() + TAG_LEN;
    let body = &data[PREFIX_LEN..];
    let mut cuts = Cuts::from_input(data);
    let points = cuts.points(body.len(), ct_chunk);

    let mut stream = opener.stream();
    let mut out = Vec::new();
    let mut at = 0;
    let mut split = Ok(());
    for &p in points.iter().chain([&body.len()]) {
        split = stream.update(&body[at..p], &mut out);
        if split.is_err() {
            break;
        }
        at = p;
    }
    let split = split
        .and_then(|()| stream.finish(&mut out))
        .map(|opened| (out, opened));
    let whole = open_object(data, &camera_key, &viewing_key);
    assert_eq!(
        split, whole,
        "splitting the body at {points:?} changed the result"
    );
});
