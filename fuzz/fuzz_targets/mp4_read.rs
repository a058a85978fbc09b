//! `mp4::read` on any bytes (H.264 and H.265 tracks). What reads must be well formed (no empty
//! NAL units; one codec; every key frame carries its parameter sets; sound frames lie in the file), must write back with
//! `mp4::write` or be refused with an error, and what `write` makes must read back to the same
//! samples: the same times and key frames, the same NAL units apart from parameter sets and
//! delimiters (which `write` keeps in `avcC` or `hvcC` or drops, and `read` re-inserts at key frames), and
//! the same sound frames with their configuration.
#![no_main]

use keyhole_core_fuzz::pictures;
use keyhole_media::h264::AccessUnit;
use keyhole_media::mp4::{self, Mp4Error};
use libfuzzer_sys::fuzz_target;

fn timing(aus: &[AccessUnit]) -> Vec<(u64, u32, bool)> {
    aus.iter()
        .map(|au| (au.dts, au.pts_offset, au.keyframe))
        .collect()
}

fuzz_target!(|data: &[u8]| {
    let Ok(video) = mp4::read(data) else {
        return;
    };
    assert!(!video.access_units.is_empty());
    assert!(video.access_units.len() <= mp4::MAX_SAMPLES as usize);
    for au in &video.access_units {
        assert!(au.nals.iter().all(|n| !n.is_empty()), "empty NAL unit");
        assert_eq!(au.codec, video.config.codec(), "one codec a track");
        if au.keyframe {
            for set in video.config.parameter_sets() {
                assert!(
                    au.find(au.codec.nal_type(&set)).is_some(),
                    "a key frame without its parameter sets"
                );
            }
        }
    }
    if let Some(audio) = &video.audio {
        let bytes: usize = audio.frames.iter().map(|f| f.data.len()).sum();
        assert!(bytes <= data.len(), "sound frames larger than the file");
    }
    let Ok(file) = mp4::write(&video.access_units, video.audio.as_ref()) else {
        return;
    };
    match mp4::read(&file) {
        Ok(again) => {
            assert_eq!(timing(&again.access_units), timing(&video.access_units));
            assert_eq!(pictures(&again.access_units), pictures(&video.access_units));
            let sound = |v: &mp4::Mp4Video| {
                v.audio.as_ref().map(|a| {
                    (
                        a.config.clone(),
                        a.frames.iter().map(|f| f.data.clone()).collect::<Vec<_>>(),
                    )
                })
            };
            assert_eq!(sound(&again), sound(&video));
        }
        // The output budget is relative to the file's length, which write may shrink.
        Err(Mp4Error::Limit(_)) => {}
        Err(e) => panic!("a file mp4::write made does not read back: {e}"),
    }
});
