//! `pairing::PairingCode::parse` on arbitrary UTF-8. A code that parses must print (`to_text`)
//! as the same code, and its text must be the input up to case, whitespace and dashes.
#![no_main]

use keyhole_core::pairing::{PairingCode, RegistrationProof};
use keyhole_core_fuzz::{camera, CAMERA_ID};
use libfuzzer_sys::fuzz_target;

fn clean(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(code) = PairingCode::parse(text) else {
        return;
    };
    let printed = code.to_text();
    let again =
        PairingCode::parse(&printed).unwrap_or_else(|e| panic!("printed code does not parse: {e}"));
    assert_eq!(again, code);
    assert_eq!(*again.to_text(), *printed);
    assert_eq!(
        clean(text),
        clean(&printed),
        "the code's text is not canonical"
    );
    // A camera that read this code can register.
    let proof = RegistrationProof::create(&code, CAMERA_ID, &camera());
    assert_eq!(
        RegistrationProof::decode(&proof.encode()).as_ref(),
        Ok(&proof)
    );
    proof
        .verify(&code)
        .unwrap_or_else(|e| panic!("a genuine registration proof failed: {e}"));
});
