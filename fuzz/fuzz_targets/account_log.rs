//! `log::SignedEntry::decode` and `log::HeadStatement::decode_unverified`, then the verified
//! paths under the fixture account key (entry 1) and roster (later entries). An entry that
//! decodes must be canonical: re-signing its body reproduces its bytes, and its direct
//! successor, signed by the roster's device, is accepted.
#![no_main]

use keyhole_core::keys::DeviceSigningKey;
use keyhole_core::log::{
    compare, Comparison, EntryKind, HeadStatement, LogError, SignedEntry, ENTRY_LEN, HEAD_LEN,
    MAX_MARKS,
};
use keyhole_core::signer::{SignerKey, TAIL_LEN};
use keyhole_core::Timestamp;
use keyhole_core_fuzz::{account, as_device, device_signing, roster};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let key = account();
    let account = key.public();
    if let Ok(statement) = HeadStatement::decode_unverified(data) {
        assert_eq!(HeadStatement::len_at(data).ok(), Some(data.len()));
        assert!(data.len() >= HEAD_LEN && statement.marks.len() <= MAX_MARKS);
        assert_eq!(HeadStatement::split(data).map(|s| s.len()).ok(), Some(1));
        let device = DeviceSigningKey::from_seed(&[0xd2; 32]);
        let resigned = statement.sign(&device);
        let body = data.len() - 64;
        assert_eq!(&resigned[..body], &data[..body], "not canonical");
        if statement.account == account {
            assert_eq!(
                HeadStatement::verify(&resigned, &account, &device.public()).as_ref(),
                Ok(&statement)
            );
        }
    }
    let Ok(signed) = SignedEntry::decode(data) else {
        return;
    };
    assert_eq!(signed.encoded(), data);
    assert_eq!(data.len(), ENTRY_LEN);
    let body = signed.unverified_body().clone();
    assert!(body.sequence != 0 && body.sequence != u64::MAX);
    let device_key = device_signing();
    let device = as_device(&device_key);
    let roster = roster();
    if body.account == account {
        let resigned = body
            .clone()
            .sign(SignerKey::Account(&key))
            .unwrap_or_else(|e| panic!("a decoded entry does not re-sign: {e}"));
        assert_eq!(
            &resigned.encoded()[..ENTRY_LEN - TAIL_LEN],
            &data[..ENTRY_LEN - TAIL_LEN],
            "log entry encoding is not canonical"
        );
        let by_device = body.clone().sign(device).expect("a device signs it too");
        assert!(by_device.verify_signature(&roster).is_ok());
        match resigned.clone().verify_first(&account) {
            Ok(head) => {
                assert_eq!(
                    head.accept(resigned.clone(), &roster).map(|h| h.hash()),
                    Ok(resigned.hash())
                );
                assert_eq!(
                    compare(&head, |_| None, head.sequence(), head.hash()),
                    Ok(Comparison::Same)
                );
                let next = head
                    .successor(EntryKind::Share, [1; 16], 1, data, Timestamp(1))
                    .sign(device);
                if head.sequence() == u64::MAX - 1 {
                    assert!(next.is_err(), "the last sequence has no successor");
                } else {
                    let next = next.expect("successor signs");
                    let accepted = head
                        .accept(next.clone(), &roster)
                        .expect("the successor is accepted");
                    assert_eq!(accepted.hash(), next.hash());
                    assert!(accepted.entry().records(EntryKind::Share, [1; 16], 1, data));
                }
            }
            Err(LogError::BadGenesis) => assert_eq!(body.sequence, 1),
            Err(LogError::Gap { .. }) => assert_ne!(body.sequence, 1),
            Err(e) => panic!("an entry signed by its own account failed to verify: {e}"),
        }
    }
    match signed.clone().verify_first(&account) {
        Ok(head) => assert_eq!(head.hash(), signed.hash()),
        Err(LogError::WrongAccount) => assert_ne!(body.account, account),
        Err(_) => {}
    }
});
