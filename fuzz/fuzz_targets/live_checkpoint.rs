//! `live_check::Checkpoint::verify` under the fixture camera's key: never panics, a checkpoint
//! that verifies signs back to exactly the same bytes (one encoding each), and a viewer's check
//! takes it without panicking whatever frames it holds.
#![no_main]

use keyhole_core::live::LiveFragment;
use keyhole_core::live_check::{Checkpoint, LiveCheck};
use keyhole_core::ObjectId;
use keyhole_core_fuzz::{camera, live_session, CAMERA_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = camera();
    let (prefix, _) = live_session(&key);
    let header =
        keyhole_core::envelope::Header::decode(&prefix[..keyhole_core::envelope::PREFIX_LEN])
            .expect("the fixture session's header");
    let session: ObjectId = header.object_id;
    if let Ok(checkpoint) = Checkpoint::verify(data, &CAMERA_ID, &session, &key.public()) {
        let again = checkpoint
            .sign(&key)
            .expect("a verified checkpoint is well formed");
        assert_eq!(again, data, "not canonical");
    }
    let mut check = LiveCheck::new(&header, key.public(), [7; 16]);
    for index in 0..3 {
        check.frame(
            &data[..data.len().min(16 + index as usize)],
            LiveFragment {
                index,
                skipped: 0,
                last: false,
                data: Vec::new(),
            },
        );
    }
    let _ = check.checkpoint(data, 1_000);
});
