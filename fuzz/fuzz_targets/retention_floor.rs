//! `retention::SignedRetentionFloor::decode`, then `retention::accept` under the fixture roster.
//! A floor that decodes must be canonical (re-signing its body reproduces its bytes) and keep
//! from sequence 1 at the lowest; a successor that raises the floor is accepted, one that lowers
//! it never is.
#![no_main]

use keyhole_core::retention::{self, RetentionError, SignedRetentionFloor};
use keyhole_core::signer::TAIL_LEN;
use keyhole_core::Timestamp;
use keyhole_core_fuzz::{account, as_device, device_signing, roster};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = SignedRetentionFloor::decode(data) else {
        return;
    };
    assert_eq!(signed.encoded(), data);
    let body = signed.unverified_body().clone();
    assert!(body.keep_from >= 1);

    if body.owner != account().public() {
        return;
    }
    let device = device_signing();
    let key = as_device(&device);
    let roster = roster();
    let body_len = data.len() - TAIL_LEN;
    let resigned = body
        .clone()
        .sign(key)
        .unwrap_or_else(|e| panic!("a decoded retention floor does not re-sign: {e}"));
    assert_eq!(
        &resigned.encoded()[..body_len],
        &data[..body_len],
        "retention floor encoding is not canonical"
    );
    let floor = retention::accept(None, resigned, &roster, &body.camera_id)
        .unwrap_or_else(|e| panic!("a floor signed by the roster's device failed: {e}"));
    // Version u64::MAX - 1 has no successor: u64::MAX is never a version.
    if body.version >= u64::MAX - 1 {
        return;
    }
    let mut next = floor.successor(Timestamp(1));
    next.keep_from = body.keep_from.saturating_add(1);
    let raised = next.clone().sign(key).expect("a raised floor signs");
    assert!(retention::accept(Some(&floor), raised, &roster, &body.camera_id).is_ok());
    if body.keep_from > 1 {
        next.keep_from = body.keep_from - 1;
        let lowered = next.sign(key).expect("a lowered floor signs");
        assert!(matches!(
            retention::accept(Some(&floor), lowered, &roster, &body.camera_id),
            Err(RetentionError::Lowered { .. })
        ));
    }
});
