//! `share::SignedShare::decode`, then `verify` under the fixture roster. A statement that
//! decodes must be canonical (re-signing its body reproduces its bytes), keep the limits, and
//! its successor, signed by the roster's device, must be accepted.
#![no_main]

use keyhole_core::share::{SignedShare, MAX_MEMBERS, MAX_NAME};
use keyhole_core::signer::TAIL_LEN;
use keyhole_core::Timestamp;
use keyhole_core_fuzz::{account, as_device, device_signing, roster};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = SignedShare::decode(data) else {
        return;
    };
    assert_eq!(signed.encoded(), data);
    let body = signed.unverified_body().clone();
    assert!(body.members.len() <= MAX_MEMBERS);
    assert!(body.members.iter().all(|m| m.name.len() <= MAX_NAME));
    assert!(body.members.iter().all(|m| m.account != body.owner));

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
        .unwrap_or_else(|e| panic!("a decoded share statement does not re-sign: {e}"));
    assert_eq!(
        &resigned.encoded()[..body_len],
        &data[..body_len],
        "share encoding is not canonical"
    );
    let share = resigned
        .verify(&roster, &body.camera_id)
        .unwrap_or_else(|e| panic!("a statement signed by its owner failed to verify: {e}"));
    for m in &body.members {
        let viewing = share.viewer(&m.account, Timestamp(0)).is_some();
        assert_eq!(viewing, m.expires_at.is_none_or(|t| t.0 > 0));
    }
    if let Ok(next) = share.successor(Timestamp(1)).sign(key) {
        assert!(
            share.accept(next, &roster).is_ok(),
            "a successor was refused"
        );
    } else {
        assert_eq!(
            body.version,
            u64::MAX - 1,
            "only the last version has no successor"
        );
    }
});
