//! What a live view carries: the pictures and sound of a session as a fragmented MP4 stream
//! (PROTOCOL.md §8.2), which a player or a browser plays as it arrives. The stream starts at a
//! key frame with the initialization segment (the video track, and the sound's track when the
//! source had sound by then); then each picture and each sound frame is a fragment of its own,
//! timed from that key frame. After a fragment is dropped (the upload is behind), pictures wait
//! for the next key frame, so nothing that follows depends on what is missing.

use std::sync::Arc;

use keyhole_media::audio::{AudioConfig, AudioFrame};
use keyhole_media::mp4::{self, Mp4Error, VideoConfig};
use keyhole_media::{AccessUnit, TIMESCALE};

use crate::sound::Sound;

/// Turns a session's pictures and sound into the fragments of its stream.
#[derive(Debug, Default)]
pub struct LiveMux {
    /// The configuration of the sound heard last, for the initialization segment.
    heard: Option<Arc<AudioConfig>>,
    /// Once the stream has begun: the first picture's time, and the sound it carries.
    began: Option<(u64, Option<Arc<AudioConfig>>)>,
    /// The last fragment's number.
    sequence: u32,
    /// The last picture's time and how long the one before it lasted.
    last: Option<(u64, u32)>,
    /// Pictures wait for a key frame (after a drop).
    waiting: bool,
}

impl LiveMux {
    /// A stream whose initialization segment carries the track of `heard`, the sound heard
    /// last, unless other sound comes before its first key frame.
    #[must_use]
    pub fn new(heard: Option<Arc<AudioConfig>>) -> Self {
        Self {
            heard,
            ..Self::default()
        }
    }

    /// The bytes `au` adds to the stream: nothing before the first key frame (or, after a
    /// drop, the next one); the initialization segment before the first.
    ///
    /// # Errors
    /// A picture MP4 cannot hold, or a first key frame whose parameter sets do not parse.
    pub fn picture(&mut self, au: &AccessUnit) -> Result<Option<Vec<u8>>, Mp4Error> {
        if (self.waiting || self.began.is_none()) && !au.keyframe {
            return Ok(None);
        }
        let mut out = Vec::new();
        let base = match &self.began {
            Some((base, _)) => *base,
            None => {
                let Ok(video) = VideoConfig::find(std::slice::from_ref(au)) else {
                    return Ok(None);
                };
                out = mp4::fragmented_init(&video, self.heard.as_deref())?;
                self.began = Some((au.dts, self.heard.clone()));
                au.dts
            }
        };
        self.waiting = false;
        let mut picture = au.clone();
        picture.dts = au.dts.saturating_sub(base);
        // How long this picture shows is not known until the next: the gap before it stands in.
        let duration = match self.last {
            Some((last, gap)) if picture.dts > last => {
                u32::try_from(picture.dts - last).unwrap_or(gap)
            }
            Some((_, gap)) => gap,
            None => TIMESCALE / 15,
        };
        self.last = Some((picture.dts, duration));
        self.sequence += 1;
        out.extend(mp4::fragment(self.sequence, &picture, duration)?);
        Ok(Some(out))
    }

    /// The bytes `sound` adds to the stream: its fragment once the stream has begun with this
    /// sound's track, and if it starts no earlier than the first picture.
    ///
    /// # Errors
    /// A frame MP4 cannot hold.
    pub fn sound(&mut self, sound: &Sound) -> Result<Option<Vec<u8>>, Mp4Error> {
        self.heard = Some(sound.config.clone());
        let Some((base, Some(config))) = &self.began else {
            return Ok(None);
        };
        if *config != sound.config || sound.frame.pts < *base {
            return Ok(None);
        }
        let frame = AudioFrame {
            pts: sound.frame.pts - base,
            data: sound.frame.data.clone(),
        };
        self.sequence += 1;
        mp4::audio_fragment(self.sequence, &frame, config).map(Some)
    }

    /// A picture's fragment was not sent: pictures wait for the next key frame.
    pub fn dropped(&mut self) {
        self.waiting = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use keyhole_media::mp4::{Piece, Splitter};
    use keyhole_media::opus::OpusConfig;

    const SPS: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

    fn picture(i: u64) -> AccessUnit {
        let nals = if i.is_multiple_of(5) {
            vec![SPS.to_vec(), PPS.to_vec(), vec![0x65, 0x88, 1]]
        } else {
            vec![vec![0x41, 0x9a, 2]]
        };
        AccessUnit::new(1000 + i * 6000, nals)
    }

    fn sound(config: &Arc<AudioConfig>, pts: u64) -> Sound {
        Sound {
            config: config.clone(),
            frame: AudioFrame {
                pts,
                data: vec![31 << 3, 1],
            },
        }
    }

    /// The (track, sync) of each fragment of `stream`, after its initialization segment.
    fn fragments(stream: &[u8]) -> Vec<(u32, bool)> {
        let pieces = Splitter::new().push(stream).unwrap();
        assert!(matches!(pieces[0], Piece::Init(_)));
        pieces[1..]
            .iter()
            .map(|p| match p {
                Piece::Fragment { track, sync, .. } => (*track, *sync),
                Piece::Init(_) => panic!("a second initialization segment"),
            })
            .collect()
    }

    #[test]
    fn starts_at_a_key_frame_with_the_sound_heard_and_skips_to_one_after_a_drop() {
        let config = Arc::new(AudioConfig::Opus(OpusConfig::new(1, 312, 16_000).unwrap()));
        let mut mux = LiveMux::default();
        let mut stream = Vec::new();
        // Sound before the first picture is heard (it shapes the stream) but not sent.
        assert_eq!(mux.sound(&sound(&config, 0)).unwrap(), None);
        assert_eq!(
            LiveMux::new(Some(config.clone())).heard,
            mux.heard,
            "as when the capture loop heard it before the session"
        );
        for i in 0..12 {
            if i == 7 {
                mux.dropped();
            }
            stream.extend(mux.picture(&picture(i)).unwrap().unwrap_or_default());
            stream.extend(
                mux.sound(&sound(&config, 1000 + i * 6000))
                    .unwrap()
                    .unwrap_or_default(),
            );
        }
        let init =
            mp4::fragmented_init(&mp4::VideoConfig::h264(&SPS, &PPS), Some(&config)).unwrap();
        assert!(
            stream.starts_with(&init),
            "the initialization segment has the sound"
        );
        // Pictures 0 to 6, a drop, then 10 and 11 from the key frame; sound throughout.
        let mut expected = Vec::new();
        for i in 0..12u64 {
            if !(7..10).contains(&i) {
                expected.push((1, i.is_multiple_of(5)));
            }
            expected.push((2, true));
        }
        assert_eq!(fragments(&stream), expected);
    }
}
