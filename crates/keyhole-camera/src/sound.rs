//! Sound on the camera. A source sends [`Media`]: pictures and sound frames on one clock. Sound
//! that arrives as AAC (an RTSP camera, an MP4 file) is kept as it came; sound the camera makes
//! itself (the synthetic camera, whose [`Tone`] is here) or gets as G.711 (cheap IP cameras) is
//! encoded as Opus by `keyhole-sound`, in 20 ms packets: every browser and player opens both,
//! and Opus, unlike G.711, plays in a browser from MP4.

use std::sync::Arc;

use keyhole_media::AccessUnit;
use keyhole_media::audio::{AudioConfig, AudioFrame};
use keyhole_sound::{OpusEncoder, SoundError};

/// A frame of sound with the configuration of its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sound {
    /// The stream's codec and configuration (shared by all its frames).
    pub config: Arc<AudioConfig>,
    /// The frame, timed on the pictures' clock.
    pub frame: AudioFrame,
}

impl Sound {
    /// The frames `encoder` completes with `pcm`, whose first sample is at `at`, each with the
    /// encoder's stream configuration.
    ///
    /// # Errors
    /// The encoder failing.
    pub fn encode(
        encoder: &mut OpusEncoder,
        at: u64,
        pcm: &[i16],
    ) -> Result<Vec<Self>, SoundError> {
        let config = encoder.config().clone();
        Ok(encoder
            .push(at, pcm)?
            .into_iter()
            .map(|frame| Self {
                config: config.clone(),
                frame,
            })
            .collect())
    }
}

/// What a source delivers, in time order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Media {
    /// A picture.
    Picture(AccessUnit),
    /// A frame of sound.
    Sound(Sound),
}

impl Media {
    /// When it begins, in [`keyhole_media::TIMESCALE`] ticks: a picture's decode time, a sound's start.
    #[must_use]
    pub fn time(&self) -> u64 {
        match self {
            Self::Picture(au) => au.dts,
            Self::Sound(s) => s.frame.pts,
        }
    }

    /// Moves it to `time` on the clock.
    pub fn set_time(&mut self, time: u64) {
        match self {
            Self::Picture(au) => au.dts = time,
            Self::Sound(s) => s.frame.pts = time,
        }
    }
}

/// How the synthetic camera writes a marker into its sound (for tests that search for the
/// sound's plaintext): each bit of the marker, first byte first and most significant bit first,
/// is a tone this long…
pub const MARKER_BIT_MS: u32 = 20;
/// …at this frequency for a 0…
pub const MARKER_ZERO_HZ: u32 = 1000;
/// …and this one for a 1, the marker over and over while the scene is empty.
pub const MARKER_ONE_HZ: u32 = 2000;

/// The synthetic camera's sound: a quiet hum (or the marker, when it has one) while the scene is
/// empty, a two-tone chime while a visitor walks through, so what is heard changes with what is
/// seen.
#[derive(Debug, Default)]
pub struct Tone {
    /// Samples made so far (the phase).
    made: u64,
    /// The marker's bits, when there is one.
    marker: Vec<bool>,
}

impl Tone {
    /// A tone that plays `marker` as [`MARKER_ZERO_HZ`] and [`MARKER_ONE_HZ`] bits while the
    /// scene is empty.
    #[must_use]
    pub fn with_marker(marker: &[u8]) -> Self {
        Self {
            made: 0,
            marker: marker
                .iter()
                .flat_map(|byte| (0..8).rev().map(move |bit| byte >> bit & 1 == 1))
                .collect(),
        }
    }

    /// The next `n` samples at `rate`, with or without a visitor.
    pub fn next(&mut self, n: usize, rate: u32, visitor: bool) -> Vec<i16> {
        let rate = u64::from(rate.max(1));
        let bit_len = rate * u64::from(MARKER_BIT_MS) / 1000;
        (0..n)
            .map(|_| {
                let made = self.made;
                self.made += 1;
                let marker_bit = usize::try_from(made / bit_len.max(1)).ok().and_then(|bit| {
                    self.marker
                        .get(bit.checked_rem(self.marker.len())?)
                        .copied()
                });
                let (hz, level) = match (visitor, (made * 4 / rate) % 2, marker_bit) {
                    // 660 and 880 Hz, a quarter second each.
                    (true, 0, _) => (660, 8000.0),
                    (true, _, _) => (880, 8000.0),
                    (false, _, Some(one)) => (
                        u64::from(if one { MARKER_ONE_HZ } else { MARKER_ZERO_HZ }),
                        6000.0,
                    ),
                    (false, _, None) => (220, 1500.0),
                };
                // The phase, in turns, kept exact by working in whole cycles.
                let turns = (made * hz % rate) as f64 / rate as f64;
                // Within ±8000 by construction.
                #[allow(clippy::cast_possible_truncation)]
                let sample = (level * (std::f64::consts::TAU * turns).sin()).round() as i16;
                sample
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use keyhole_sound::OpusEncoder;

    use super::*;

    #[test]
    fn a_marker_played_into_the_sound_is_heard_after_opus_and_no_other_is() {
        let marker = b"KEYHOLE-7c1d";
        let mut tone = Tone::with_marker(marker);
        let mut encoder = OpusEncoder::new(16_000, 24_000).unwrap();
        // Two rounds of the marker (1.92 s each): a whole one from any starting point.
        let packets = encoder
            .push(0, &tone.next(4 * 16_000, 16_000, false))
            .unwrap();
        let mut decoder = keyhole_sound::OpusDecoder::new(16_000).unwrap();
        let mut pcm = Vec::new();
        for p in &packets {
            pcm.extend(decoder.decode(&p.data).unwrap());
        }
        // From an arbitrary point, as a clip would start.
        let pcm = &pcm[1234..];
        let hears = |m: &[u8]| {
            keyhole_testkit::hears_marker(
                pcm,
                16_000,
                MARKER_BIT_MS,
                (MARKER_ZERO_HZ, MARKER_ONE_HZ),
                m,
            )
        };
        assert!(hears(marker));
        assert!(!hears(b"KEYHOLE-7c1e"));
        assert!(!hears(b"another one"));
    }
}
