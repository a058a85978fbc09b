//! `roster::SignedRoster::decode`, then `verify_first` under the fixture account key and
//! `accept` after the fixture roster. A roster that decodes must be canonical: re-signing its
//! body reproduces its bytes.
#![no_main]

use keyhole_core::roster::{RosterError, SignedRoster, MAX_DEVICES, MAX_NAME};
use keyhole_core::signer::{SignerKey, TAIL_LEN};
use keyhole_core::Timestamp;
use keyhole_core_fuzz::{account, roster};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = SignedRoster::decode(data) else {
        return;
    };
    assert_eq!(signed.encoded(), data);
    let body = signed.unverified_body().clone();
    assert!(body.devices.len() <= MAX_DEVICES);
    assert!(body.devices.iter().all(|d| d.name.len() <= MAX_NAME));
    assert_ne!(body.version, 0);

    let key = account();
    let account = key.public();
    let body_len = data.len() - TAIL_LEN;
    if body.account == account {
        // Ed25519 is deterministic: the body re-encodes to the same bytes, and it is this
        // account's, so the whole roster is reproduced when the signature was genuine.
        let resigned = body
            .clone()
            .sign(SignerKey::Account(&key))
            .unwrap_or_else(|e| panic!("a decoded roster does not re-sign: {e}"));
        assert_eq!(
            &resigned.encoded()[..body_len],
            &data[..body_len],
            "roster encoding is not canonical"
        );
        assert_eq!(
            SignedRoster::decode(resigned.encoded()).as_ref(),
            Ok(&resigned)
        );
        // The re-signed roster verifies, so the verified paths run on fuzzed content too.
        match resigned.clone().verify_first(&account) {
            Ok(roster) => {
                assert_eq!(roster.body(), &body);
                assert_eq!(
                    roster.accept(resigned.clone()).map(|r| r.hash()),
                    Ok(resigned.hash())
                );
                // Every verified roster below the last version, u64::MAX - 1, has a successor
                // (regressions/roster: the version once overflowed at u64::MAX, which is now
                // refused, and the last version's successor must be refused too).
                let successor = roster
                    .successor(Timestamp(1))
                    .sign(SignerKey::Account(&key));
                if roster.body().version == u64::MAX - 1 {
                    assert!(successor.is_err(), "the last version has no successor");
                } else {
                    let next = successor.expect("successor signs");
                    let accepted = roster
                        .accept(next.clone())
                        .expect("the direct successor is accepted");
                    assert_eq!(accepted.hash(), next.hash());
                }
            }
            Err(RosterError::BadGenesis) => {
                assert!(body.version == 1 && body.previous.0 != [0; 32])
            }
            Err(e) => panic!("a roster signed by its own account failed to verify: {e}"),
        }
    }

    match signed.clone().verify_first(&account) {
        Ok(roster) => {
            assert_eq!(roster.hash(), signed.hash());
            assert_eq!(
                roster.accept(signed.clone()).map(|r| r.hash()),
                Ok(signed.hash())
            );
        }
        Err(RosterError::WrongAccount) => assert_ne!(body.account, account),
        Err(_) => {}
    }
    // As the fixture account's next roster: whatever it is, it is refused or accepted without
    // a panic, and accepted only as version 2 chained to version 1.
    if let Ok(next) = roster().accept(signed.clone()) {
        assert!(next.body().version <= 2);
    }
});
