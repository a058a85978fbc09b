//! `live_request::LiveRequest::decode`, then the fixture camera's check of it: never panics,
//! what decodes encodes back to the same bytes, and a made-up proof is never taken.
#![no_main]

use keyhole_core::live_request::{LiveChallenge, LiveRequest};
use keyhole_core_fuzz::{viewing, CAMERA_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = LiveRequest::decode(data) else {
        return;
    };
    assert_eq!(request.encode(), data, "not canonical");
    let challenge = LiveChallenge::from_secret(&[0x3c; 32]);
    let genuine = LiveRequest::make(
        &CAMERA_ID,
        1,
        &challenge.public(),
        &viewing(),
        request.nonce,
    )
    .expect("the fixture challenge is usable");
    let taken = challenge.verify(&CAMERA_ID, 1, &viewing().public(), &request);
    assert_eq!(taken, request == genuine, "only the genuine proof is taken");
});
