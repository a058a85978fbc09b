//! `acceptance::SignedAcceptance::decode`, then `verify` under the fixture roster. A statement
//! that decodes must be canonical (re-signing its body reproduces its bytes), keep the limits,
//! and its successor, signed by the roster's device, must be accepted.
#![no_main]

use keyhole_core::acceptance::{SignedAcceptance, MAX_NAME, MAX_OWNERS};
use keyhole_core::signer::TAIL_LEN;
use keyhole_core::Timestamp;
use keyhole_core_fuzz::{account, as_device, device_signing, roster};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = SignedAcceptance::decode(data) else {
        return;
    };
    assert_eq!(signed.encoded(), data);
    let body = signed.unverified_body().clone();
    assert!(body.owners.len() <= MAX_OWNERS);
    assert!(body
        .owners
        .iter()
        .all(|o| !o.name.is_empty() && o.name.len() <= MAX_NAME));
    assert!(body.owners.iter().all(|o| o.account != body.account));

    if body.account != account().public() {
        return;
    }
    let device = device_signing();
    let key = as_device(&device);
    let roster = roster();
    let body_len = data.len() - TAIL_LEN;
    let resigned = body
        .clone()
        .sign(key)
        .unwrap_or_else(|e| panic!("a decoded acceptance statement does not re-sign: {e}"));
    assert_eq!(
        &resigned.encoded()[..body_len],
        &data[..body_len],
        "acceptance encoding is not canonical"
    );
    let accepted = resigned
        .verify(&roster)
        .unwrap_or_else(|e| panic!("a statement signed by its account failed to verify: {e}"));
    if let Ok(next) = accepted.successor(Timestamp(1)).sign(key) {
        assert!(
            accepted.accept(next, &roster).is_ok(),
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
