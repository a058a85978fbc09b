//! `h264::split_annex_b`, `group_access_units` and `parse_sps` on any bytes, then `mp4::write`
//! of the access units found: a file it accepts must read back with the same timing, key
//! frames and picture NAL units.
#![no_main]

use keyhole_core_fuzz::pictures;
use keyhole_media::h264::{self, nal, nal_type};
use keyhole_media::mp4::{self, Mp4Error};
use libfuzzer_sys::fuzz_target;

const FRAME_TICKS: u64 = 3000;

fuzz_target!(|data: &[u8]| {
    let units = h264::split_annex_b(data);
    for unit in &units {
        assert!(
            !unit.is_empty() && unit.last() != Some(&0),
            "unit keeps a start code zero"
        );
        if let Ok(info) = h264::parse_sps(unit) {
            assert!(info.width > 0 && info.height > 0);
        }
    }
    let aus = h264::group_access_units(units.iter().copied(), FRAME_TICKS);
    assert!(aus.iter().map(|au| au.nals.len()).sum::<usize>() <= units.len());
    for (i, au) in aus.iter().enumerate() {
        assert_eq!(au.dts, FRAME_TICKS * i as u64);
        assert_eq!(au.keyframe, au.find(nal::IDR).is_some());
        for sps in au.nals.iter().filter(|n| nal_type(n) == nal::SPS) {
            let _ = h264::parse_sps(sps);
        }
    }

    let Ok(file) = mp4::write(&aus, None) else {
        return;
    };
    match mp4::read(&file) {
        Ok(video) => {
            assert_eq!(video.access_units.len(), aus.len());
            for (read, written) in video.access_units.iter().zip(&aus) {
                assert_eq!(
                    (read.dts, read.pts_offset, read.keyframe),
                    (written.dts, 0, written.keyframe)
                );
            }
            assert_eq!(pictures(&video.access_units), pictures(&aus));
        }
        Err(Mp4Error::Limit(_)) => {}
        Err(e) => panic!("a file mp4::write made does not read back: {e}"),
    }
});
