//! `pairing::RegistrationProof::decode`, re-encoding, and `verify` against the fixture
//! pairing code.
#![no_main]

use std::sync::OnceLock;

use keyhole_core::pairing::{PairingCode, PairingError, RegistrationProof};
use keyhole_core_fuzz::pairing_code;
use libfuzzer_sys::fuzz_target;

fn code() -> &'static PairingCode {
    static CODE: OnceLock<PairingCode> = OnceLock::new();
    CODE.get_or_init(pairing_code)
}

fuzz_target!(|data: &[u8]| {
    let Ok(proof) = RegistrationProof::decode(data) else {
        return;
    };
    assert_eq!(
        proof.encode(),
        data,
        "registration proof does not re-encode to its bytes"
    );
    match proof.verify(code()) {
        Ok(()) => assert_eq!(proof.token, code().token),
        Err(PairingError::BadProof) => {}
        Err(e) => panic!("unexpected verification error {e:?}"),
    }
});
