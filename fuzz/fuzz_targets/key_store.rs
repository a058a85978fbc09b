//! `keystore::KeyStore::decode` and re-encoding. `open` (Argon2id) runs only when the store asks
//! for tiny parameters: a hostile store with large ones is decode's problem to bound, not the
//! fuzzer's to pay for.
#![no_main]

use keyhole_core::keystore::{KeyStore, KeyStoreError};
use keyhole_core_fuzz::KEY_STORE_PASSPHRASE;
use libfuzzer_sys::fuzz_target;

/// Offset of the Argon2 parameters: magic (4), format (1).
const PARAMS_AT: usize = 5;

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fuzz_target!(|data: &[u8]| {
    let Ok(store) = KeyStore::decode(data) else {
        return;
    };
    assert_eq!(
        store.encode(),
        data,
        "key store does not re-encode to its bytes"
    );
    let (memory_kib, iterations) = (be32(data, PARAMS_AT), be32(data, PARAMS_AT + 4));
    if memory_kib <= 64 && iterations <= 4 {
        match store.open(KEY_STORE_PASSPHRASE) {
            Ok(contents) => assert!(contents.len() + 16 + 45 == data.len()),
            Err(KeyStoreError::WrongPassphrase) => {}
            Err(e) => panic!("decoded key store failed to open with {e:?}"),
        }
    }
});
