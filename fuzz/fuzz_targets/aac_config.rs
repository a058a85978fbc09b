//! `AacConfig::parse` on any bytes: what parses has a sample rate, a channel count and a frame
//! length in range, keeps its bytes, and parses again to the same configuration.
#![no_main]

use keyhole_media::aac::AacConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(config) = AacConfig::parse(data) else {
        return;
    };
    assert!(config.sample_rate() > 0);
    assert!((1..=8).contains(&config.channels()));
    assert!(matches!(config.frame_len(), 960 | 1024));
    assert!((1..=4).contains(&config.object_type()));
    assert_eq!(config.bytes(), data);
    assert_eq!(AacConfig::parse(config.bytes()), Ok(config));
});
