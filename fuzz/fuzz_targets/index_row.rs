//! `at_rest::IndexKey::open` (PROTOCOL.md §13.1): the input is a row name's length (1 byte), the
//! row name, then the sealed row, opened with the fixture device's key. Never panics; a row that
//! opens seals back, under its own nonce, to exactly the same bytes.
#![no_main]

use keyhole_core::at_rest::{IndexKey, ROW_NONCE_LEN};
use keyhole_core::keys::DeviceSigningKey;
use keyhole_core::{DeviceKeys, HpkeSecretKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&len, rest)) = data.split_first() else {
        return;
    };
    let Some((row, sealed)) = rest.split_at_checked(usize::from(len)) else {
        return;
    };
    let key = IndexKey::derive(&DeviceKeys {
        signing: DeviceSigningKey::from_seed(&[0x61; 32]),
        hpke: HpkeSecretKey::from_bytes(&[0x61; 32]),
    });
    if let Ok(plain) = key.open(row, sealed) {
        let mut nonce = [0u8; ROW_NONCE_LEN];
        nonce.copy_from_slice(&sealed[..ROW_NONCE_LEN]);
        assert_eq!(
            key.seal_with_nonce(row, &plain, nonce),
            sealed,
            "not canonical"
        );
    }
});
