//! The full open path, `envelope::open_object`, with the fixture camera and viewing keys, and
//! the report's `Checked::from_open` on the result.
#![no_main]

use keyhole_core::envelope::{open_object, Header, Layout, OpenError, PREFIX_LEN};
use keyhole_core::report::Checked;
use keyhole_core_fuzz::{camera, viewing};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let result = open_object(data, &camera().public(), &viewing());
    let checked = Checked::from_open(data, result.clone().map(|(_, opened)| opened));
    match &result {
        Ok((plain, opened)) => {
            assert_eq!(plain.len() as u64, opened.plaintext_len);
            assert_eq!(Header::decode(data).as_ref(), Ok(&opened.header));
            let layout = Layout::new(&opened.header, data.len() as u64)
                .unwrap_or_else(|e| panic!("an object that opened has no layout: {e}"));
            assert_eq!(layout.chunks(), opened.chunks);
            assert_eq!(layout.plaintext_len(), opened.plaintext_len);
            assert!(matches!(checked, Checked::Verified(ref o) if o == opened));
        }
        Err(OpenError::Malformed(_)) => {
            assert!(Header::decode(data).is_err() || data.len() < PREFIX_LEN);
        }
        Err(OpenError::Tampered(_)) => {
            // Authentication failed after the header parsed; the report names that header.
            let header = Header::decode(data).expect("a tampered object has a header");
            assert!(matches!(checked, Checked::Failed { header: Some(ref h), .. } if *h == header));
        }
        Err(e) => panic!("unexpected open error {e:?}"),
    }
});
