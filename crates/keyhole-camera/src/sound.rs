//! Sound on the camera. A source sends [`Media`]: pictures and sound frames on one clock. Sound
//! that arrives as AAC (an RTSP camera, an MP4 file) is kept as it came; sound the camera makes
//! itself (the synthetic camera) or gets as G.711 (cheap IP cameras) is encoded as Opus here
//! (`opus-pure`, a Rust port of libopus), in 20 ms packets: every browser and player opens both,
//! and Opus, unlike G.711, plays in a browser from MP4.

use std::sync::Arc;

use keyhole_media::audio::{AudioConfig, AudioFrame};
use keyhole_media::opus::OpusConfig;
use keyhole_media::{AccessUnit, TIMESCALE};

/// A frame of sound with the configuration of its stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sound {
    /// The stream's codec and configuration (shared by all its frames).
    pub config: Arc<AudioConfig>,
    /// The frame, timed on the pictures' clock.
    pub frame: AudioFrame,
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
    /// When it begins, in [`TIMESCALE`] ticks: a picture's decode time, a sound's start.
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

/// Why sound could not be encoded.
#[derive(Debug, thiserror::Error)]
#[error("sound encoder: {0}")]
pub struct SoundError(String);

/// Mono PCM in, 20 ms Opus packets out, each timed from the samples it holds.
pub struct OpusEncoder {
    /// Boxed: its state is some 23 kB.
    encoder: Box<opus_pure::OpusEncoder>,
    config: Arc<AudioConfig>,
    rate: u32,
    /// Samples waiting for a whole packet, and the time of the first.
    pending: Vec<i16>,
    pending_at: u64,
}

impl std::fmt::Debug for OpusEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusEncoder")
            .field("rate", &self.rate)
            .finish_non_exhaustive()
    }
}

/// Opus packets in, mono 16-bit PCM out at the rate asked for (talk-back's speaker).
pub struct OpusDecoder {
    /// Boxed: its state is some 20 kB.
    decoder: Box<opus_pure::OpusDecoder>,
    /// Samples in the longest Opus packet (120 ms) at the output rate.
    most: usize,
}

impl std::fmt::Debug for OpusDecoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpusDecoder")
            .field("most", &self.most)
            .finish_non_exhaustive()
    }
}

impl OpusDecoder {
    /// A decoder to mono at `rate` (8, 12, 16, 24 or 48 kHz).
    ///
    /// # Errors
    /// Another rate.
    pub fn new(rate: u32) -> Result<Self, SoundError> {
        if !OPUS_RATES.contains(&rate) {
            return Err(SoundError(format!("{rate} Hz is not an Opus output rate")));
        }
        let decoder = opus_pure::OpusDecoder::new(i32::try_from(rate).unwrap_or(48_000), 1)
            .map_err(|e| SoundError(e.to_string()))?;
        Ok(Self {
            decoder: Box::new(decoder),
            most: usize::try_from(rate).unwrap_or(48_000) * 120 / 1000,
        })
    }

    /// The samples of one packet, soft-clipped into 16 bits.
    ///
    /// # Errors
    /// A packet that is not Opus.
    pub fn decode(&mut self, packet: &[u8]) -> Result<Vec<i16>, SoundError> {
        let mut pcm = vec![0; self.most];
        let n = self
            .decoder
            .decode_s16(packet, self.most, &mut pcm)
            .map_err(|e| SoundError(e.to_string()))?;
        pcm.truncate(n);
        Ok(pcm)
    }
}

/// The rates Opus encodes from and decodes to.
pub const OPUS_RATES: [u32; 5] = [8000, 12_000, 16_000, 24_000, 48_000];

/// Opus packets of 20 ms.
const PACKET_MS: u32 = 20;

impl OpusEncoder {
    /// An encoder for mono sound at `rate` (8, 12, 16, 24 or 48 kHz), at `bitrate` bits a
    /// second.
    ///
    /// # Errors
    /// Another rate, or the encoder refusing its settings.
    pub fn new(rate: u32, bitrate: u32) -> Result<Self, SoundError> {
        if !OPUS_RATES.contains(&rate) {
            return Err(SoundError(format!("{rate} Hz is not an Opus input rate")));
        }
        let opus = |e: opus_pure::Error| SoundError(e.to_string());
        let mut encoder = Box::new(
            opus_pure::OpusEncoder::new(
                i32::try_from(rate).map_err(|_| SoundError("rate".into()))?,
                1,
                opus_pure::Application::Audio,
            )
            .map_err(opus)?,
        );
        encoder.bitrate_bps = i32::try_from(bitrate).unwrap_or(i32::MAX);
        // The decoder drops the encoder's look-ahead, counted at 48 kHz (RFC 7845 4.2).
        let look_ahead = u64::try_from(encoder.lookahead()).unwrap_or(u64::MAX);
        let pre_skip = u16::try_from(look_ahead * 48_000 / u64::from(rate))
            .map_err(|_| SoundError("look-ahead too long".into()))?;
        // The input rate is only informational, and players want Opus's own: Chromium refuses an
        // MP4 whose `dOps` rate differs from its sample entry's 48 kHz.
        let config = OpusConfig::new(1, pre_skip, keyhole_media::opus::SAMPLE_RATE)
            .map_err(|e| SoundError(e.to_string()))?;
        Ok(Self {
            encoder,
            config: Arc::new(AudioConfig::Opus(config)),
            rate,
            pending: Vec::new(),
            pending_at: 0,
        })
    }

    /// The stream's configuration.
    #[must_use]
    pub fn config(&self) -> &Arc<AudioConfig> {
        &self.config
    }

    /// Takes `pcm`, whose first sample is at `at` (a gap since the last call starts afresh from
    /// `at`); returns the packets now complete.
    ///
    /// # Errors
    /// libopus failing to encode.
    pub fn push(&mut self, at: u64, pcm: &[i16]) -> Result<Vec<Sound>, SoundError> {
        let per_packet = usize::try_from(self.rate * PACKET_MS / 1000).unwrap_or(usize::MAX);
        if self.pending.is_empty() {
            self.pending_at = at;
        }
        self.pending.extend_from_slice(pcm);
        let mut out = Vec::new();
        let mut done = 0;
        let mut packet = vec![0; opus_pure::MAX_PACKET_BYTES];
        while self.pending.len() - done >= per_packet {
            let len = self
                .encoder
                .encode_s16(
                    &self.pending[done..done + per_packet],
                    per_packet,
                    &mut packet,
                )
                .map_err(|e| SoundError(e.to_string()))?;
            let data = packet.get(..len).unwrap_or_default().to_vec();
            out.push(Sound {
                config: self.config.clone(),
                frame: AudioFrame {
                    pts: self.pending_at + self.ticks(done),
                    data,
                },
            });
            done += per_packet;
        }
        self.pending_at += self.ticks(done);
        self.pending.drain(..done);
        Ok(out)
    }

    fn ticks(&self, samples: usize) -> u64 {
        u64::try_from(samples).unwrap_or(u64::MAX) * u64::from(TIMESCALE) / u64::from(self.rate)
    }
}

/// G.711 μ-law (PCMU) to linear PCM (ITU-T G.711).
#[must_use]
pub fn from_mu_law(byte: u8) -> i16 {
    let b = !byte;
    let exponent = (b >> 4) & 7;
    let mantissa = i16::from(b & 0x0f);
    let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
    if b & 0x80 != 0 { -magnitude } else { magnitude }
}

/// G.711 A-law (PCMA) to linear PCM (ITU-T G.711).
#[must_use]
pub fn from_a_law(byte: u8) -> i16 {
    let b = byte ^ 0x55;
    let exponent = (b >> 4) & 7;
    let mantissa = i16::from(b & 0x0f);
    let magnitude = match exponent {
        0 => (mantissa << 4) + 8,
        e => ((mantissa << 4) + 0x108) << (e - 1),
    };
    if b & 0x80 != 0 { magnitude } else { -magnitude }
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
    use super::*;

    #[test]
    fn g711_decodes_to_the_standard_values() {
        // Silence, the extremes and middle codes of each law, as ffmpeg's decoders give them
        // (all 256 codes of both laws were checked against ffmpeg once).
        for (code, mu) in [
            (0xff, 0),
            (0x7f, 0),
            (0x00, -32124),
            (0x80, 32124),
            (0xcf, 924),
        ]
        .into_iter()
        .chain([(0x3c, -2364), (0x9a, 10876)])
        {
            assert_eq!(from_mu_law(code), mu, "mu-law {code:#x}");
        }
        for (code, a) in [(0xd5, 8), (0x55, -8), (0xaa, 32256), (0x2a, -32256)]
            .into_iter()
            .chain([(0x3c, -13056), (0x9a, 4032)])
        {
            assert_eq!(from_a_law(code), a, "A-law {code:#x}");
        }
    }

    #[test]
    fn packets_are_20_ms_and_timed_from_their_samples() {
        let mut encoder = OpusEncoder::new(16_000, 24_000).unwrap();
        let mut tone = Tone::default();
        // 50 ms at a time: packets come out whole, each 1800 ticks after the one before.
        let mut packets = Vec::new();
        for i in 0..4u64 {
            packets.extend(
                encoder
                    .push(i * 4500, &tone.next(800, 16_000, i > 1))
                    .unwrap(),
            );
        }
        assert_eq!(packets.len(), 10);
        for (i, p) in (0u64..).zip(&packets) {
            assert_eq!(p.frame.pts, i * 1800);
            assert_eq!(keyhole_media::opus::packet_samples(&p.frame.data), Ok(960));
        }
        let AudioConfig::Opus(config) = encoder.config().as_ref() else {
            panic!("Opus");
        };
        assert_eq!((config.channels(), config.input_rate()), (1, 48_000));
        assert!(config.pre_skip() > 0);
        assert!(OpusEncoder::new(44_100, 24_000).is_err());
    }

    #[test]
    fn a_marker_played_into_the_sound_is_heard_after_opus_and_no_other_is() {
        let marker = b"KEYHOLE-7c1d";
        let mut tone = Tone::with_marker(marker);
        let mut encoder = OpusEncoder::new(16_000, 24_000).unwrap();
        // Two rounds of the marker (1.92 s each): a whole one from any starting point.
        let packets = encoder
            .push(0, &tone.next(4 * 16_000, 16_000, false))
            .unwrap();
        let mut decoder = opus_pure::OpusDecoder::new(16_000, 1).unwrap();
        let mut pcm = Vec::new();
        for p in &packets {
            let mut out = [0i16; 320];
            let n = decoder.decode_s16(&p.frame.data, 320, &mut out).unwrap();
            pcm.extend_from_slice(&out[..n]);
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
