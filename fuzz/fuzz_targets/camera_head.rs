//! `camera_head::CameraHead::verify` under the fixture camera's key: never panics, and a head
//! that verifies signs back to exactly the same bytes (one encoding per head).
#![no_main]

use keyhole_core::camera_head::CameraHead;
use keyhole_core_fuzz::{camera, CAMERA_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = camera();
    if let Ok(head) = CameraHead::verify(data, &CAMERA_ID, &key.public()) {
        let again = head.sign(&key).expect("a verified head is well formed");
        assert_eq!(again, data, "not canonical");
    }
});
