//! `record::SignedCameraRecord::decode`, then `verify_first` under the fixture roster. A record
//! that decodes must be canonical: re-signing its body reproduces its bytes.
#![no_main]

use keyhole_core::record::{RecordError, SignedCameraRecord, MAX_NAME};
use keyhole_core::signer::TAIL_LEN;
use keyhole_core::Timestamp;
use keyhole_core_fuzz::{account, as_device, device_signing, roster, CAMERA_ID};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(signed) = SignedCameraRecord::decode(data) else {
        return;
    };
    assert_eq!(signed.encoded(), data);
    let body = signed.unverified_body().clone();
    assert!(body.name.len() <= MAX_NAME);

    let account = account().public();
    let device = device_signing();
    let key = as_device(&device);
    let roster = roster();
    let body_len = data.len() - TAIL_LEN;
    if body.account == account {
        let resigned = body
            .clone()
            .sign(key)
            .unwrap_or_else(|e| panic!("a decoded record does not re-sign: {e}"));
        assert_eq!(
            &resigned.encoded()[..body_len],
            &data[..body_len],
            "record encoding is not canonical"
        );
        assert_eq!(
            SignedCameraRecord::decode(resigned.encoded()).as_ref(),
            Ok(&resigned)
        );
        let record = resigned
            .clone()
            .verify_first(&roster, &body.camera_id)
            .unwrap_or_else(|e| panic!("a record signed by a listed device failed to verify: {e}"));
        assert_eq!(record.body(), &body);
        assert_eq!(
            record.accept(resigned.clone(), &roster).map(|r| r.hash()),
            Ok(record.hash())
        );
        // Every verified record below the last version, u64::MAX - 1, has a successor
        // (regressions/record: the version once overflowed at u64::MAX, which is now refused,
        // and the last version's successor must be refused too).
        let successor = record.successor(Timestamp(1)).sign(key);
        if record.body().version == u64::MAX - 1 {
            assert!(successor.is_err(), "the last version has no successor");
        } else {
            let next = successor.expect("successor signs");
            let accepted = record
                .accept(next.clone(), &roster)
                .expect("the next version is accepted");
            assert_eq!(accepted.signed(), &next);
        }
    }

    for camera in [body.camera_id, CAMERA_ID] {
        match signed.clone().verify_first(&roster, &camera) {
            Ok(record) => {
                assert_eq!(record.body(), &body);
                assert_eq!(
                    record.accept(signed.clone(), &roster).map(|r| r.hash()),
                    Ok(record.hash())
                );
            }
            Err(RecordError::WrongAccount) => assert_ne!(body.account, account),
            Err(RecordError::WrongCamera { expected, found }) => {
                assert_eq!((expected, found), (camera, body.camera_id));
                assert_ne!(camera, body.camera_id);
            }
            Err(_) => {}
        }
    }
});
