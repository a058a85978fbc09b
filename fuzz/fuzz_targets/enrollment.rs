//! `enrollment::{EnrollmentRequest, DeviceGrant}::decode`, re-encoding, and the steps that take
//! their fields: the commitment check, the code, and opening a grant against the fixture request
//! (the seed grant opens; anything altered must fail cleanly).
#![no_main]

use std::sync::OnceLock;

use keyhole_core::enrollment::{DeviceGrant, EnrollmentError, EnrollmentRequest, Transcript};
use keyhole_core::HpkeSecretKey;
use keyhole_core_fuzz::{enrollment, JOINING_HPKE_KEY};
use libfuzzer_sys::fuzz_target;

static FIXTURE: OnceLock<(EnrollmentRequest, Transcript)> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = EnrollmentRequest::decode(data) {
        assert_eq!(
            request.encode(),
            data,
            "request does not re-encode to its bytes"
        );
        if let Ok(transcript) = request.check_reveal(&[1; 32], &[2; 32]) {
            assert!(transcript.code().0 < 1_000_000);
        }
    }
    if let Ok(grant) = DeviceGrant::decode(data) {
        assert_eq!(
            grant.encode(),
            data,
            "grant does not re-encode to its bytes"
        );
        let (_, transcript) = FIXTURE.get_or_init(enrollment);
        let key = HpkeSecretKey::from_bytes(&JOINING_HPKE_KEY);
        match grant.open(&key, transcript) {
            Ok(_roster_version) => {}
            Err(EnrollmentError::CannotOpen) => {}
            Err(e) => panic!("grant failed with {e:?}"),
        }
    }
});
