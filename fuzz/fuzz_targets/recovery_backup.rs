//! `recovery::RecoveryBackup::decode` and re-encoding. `open` (Argon2id) runs only when the
//! backup asks for tiny parameters, read from the encoding since they are private: a hostile
//! backup with large ones is decode's problem to bound, not the fuzzer's to pay for.
#![no_main]

use std::sync::OnceLock;

use keyhole_core::recovery::{RecoveryBackup, RecoveryError, RecoveryPhrase};
use keyhole_core_fuzz::recovery_phrase;
use libfuzzer_sys::fuzz_target;

/// Offset of the Argon2 parameters: magic (4), format (1), account key (32).
const PARAMS_AT: usize = 37;

fn phrase() -> &'static RecoveryPhrase {
    static PHRASE: OnceLock<RecoveryPhrase> = OnceLock::new();
    PHRASE.get_or_init(recovery_phrase)
}

fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fuzz_target!(|data: &[u8]| {
    let Ok(backup) = RecoveryBackup::decode(data) else {
        return;
    };
    assert_eq!(
        backup.encode(),
        data,
        "recovery backup does not re-encode to its bytes"
    );
    let (memory_kib, iterations) = (be32(data, PARAMS_AT), be32(data, PARAMS_AT + 4));
    if memory_kib <= 64 && iterations <= 4 {
        match backup.open(phrase()) {
            Ok(secrets) => assert_eq!(secrets.account_key.public(), backup.account),
            Err(RecoveryError::WrongPhrase) => {}
            Err(e) => panic!("decoded backup failed to open with {e:?}"),
        }
    }
});
