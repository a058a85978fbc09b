//! `device_proof::DeviceProof::decode` (the `keyhole-proof` header), then `verify` under the
//! fixture roster. A header that decodes must encode back to itself (lower-cased), verify or
//! be refused without panicking, and the fixture device's own proof under its challenge must
//! verify for exactly the request it signed.
#![no_main]

use keyhole_core::device_proof::{DeviceProof, Request};
use keyhole_core_fuzz::{device_signing, roster, DEVICE_ID};
use libfuzzer_sys::fuzz_target;

const REQUEST: Request<'static> = Request {
    method: "DELETE",
    target: "/v1/objects/c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1",
    body: b"",
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(proof) = DeviceProof::decode(text) else {
        return;
    };
    assert_eq!(proof.encode(), text.to_lowercase(), "not canonical");
    let roster = roster();
    let _ = proof.verify(&roster, DEVICE_ID, &REQUEST);
    let own = DeviceProof::sign(proof.challenge, DEVICE_ID, &device_signing(), &REQUEST)
        .expect("a short request signs");
    assert!(own.verify(&roster, DEVICE_ID, &REQUEST).is_ok());
    let other = Request {
        body: data,
        ..REQUEST
    };
    if !data.is_empty() {
        assert!(own.verify(&roster, DEVICE_ID, &other).is_err());
    }
});
