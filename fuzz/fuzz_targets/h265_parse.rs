//! `h265::parse_sps` on any bytes (and on them behind an SPS header, to reach the fields), and
//! `h265::HevcConfig::from_hvcc`: never panics; a size is never zero; a record that reads writes
//! back into one that reads the same; the codecs string always starts `hvc1.`.
#![no_main]

use keyhole_media::h265::{self, HevcConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let behind_header = [&[0x42, 0x01][..], data].concat();
    for unit in [data, &behind_header] {
        if let Ok(sps) = h265::parse_sps(unit) {
            assert!(sps.width > 0 && sps.height > 0);
            assert!((8..=15).contains(&sps.luma_bits) && (8..=15).contains(&sps.chroma_bits));
            assert!((1..=7).contains(&sps.sub_layers));
        }
    }
    if let Ok(config) = HevcConfig::from_hvcc(data) {
        let again = HevcConfig::from_hvcc(&config.to_hvcc()).expect("a written record reads");
        assert_eq!(again, config);
        assert!(config.codecs().starts_with("hvc1."));
    }
});
