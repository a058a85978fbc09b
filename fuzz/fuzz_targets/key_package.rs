//! `key_package::KeyPackage::decode`, re-encoding, and `open` with the fixture device or
//! recovery key (whichever the package names).
#![no_main]

use keyhole_core::key_package::{KeyPackage, KeyPackageError, RecipientKey};
use keyhole_core::HpkePublicKey;
use keyhole_core_fuzz::{device_hpke, recovery_hpke};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(pkg) = KeyPackage::decode(data) else {
        return;
    };
    assert_eq!(
        pkg.encode(),
        data,
        "key package does not re-encode to its bytes"
    );
    let secret = match pkg.recipient.key {
        RecipientKey::Device(_) => device_hpke(),
        RecipientKey::Recovery => recovery_hpke(),
    };
    match pkg.open(&secret, &pkg.viewing_key) {
        Ok(opened) => {
            assert_eq!((opened.camera_id, opened.epoch), (pkg.camera_id, pkg.epoch));
            assert_eq!(opened.secret.public(), pkg.viewing_key);
            // The same package against a key the account did not sign is refused.
            let mut other = pkg.viewing_key.0;
            other[0] ^= 1;
            assert_eq!(
                pkg.open(&secret, &HpkePublicKey(other)).err(),
                Some(KeyPackageError::UnsignedViewingKey)
            );
        }
        Err(KeyPackageError::CannotOpen | KeyPackageError::UnsignedViewingKey) => {}
        Err(e) => panic!("unexpected key package error {e:?}"),
    }
});
