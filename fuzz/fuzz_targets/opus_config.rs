//! `OpusConfig::parse` (a `dOps` body) and `opus::packet_samples` on any bytes: what parses
//! writes back to the same bytes, and no packet plays longer than 120 ms.
#![no_main]

use keyhole_media::opus::{self, OpusConfig};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(config) = OpusConfig::parse(data) {
        assert_eq!(config.to_bytes(), data);
        assert!((1..=2).contains(&config.channels()));
    }
    if let Ok(samples) = opus::packet_samples(data) {
        assert!(samples <= 5760);
    }
});
