//! Keyhole's speech codecs, shared by the camera (its own sound and G.711 from IP cameras,
//! encoded as Opus; talk-back played through its speaker) and the owner's devices (talk-back
//! encoded from the microphone). Opus is `opus-pure`, a Rust port of libopus: no C toolchain or
//! system library, so it cross-builds for every board the camera runs on. Packets are 20 ms.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

use std::sync::Arc;

use keyhole_media::TIMESCALE;
use keyhole_media::audio::{AudioConfig, AudioFrame};
use keyhole_media::opus::OpusConfig;

/// Why sound could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[error("sound codec: {0}")]
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

    /// Takes `pcm`, whose first sample is at `at` in [`TIMESCALE`] ticks (a gap since the last
    /// call starts afresh from `at`); returns the packets now complete, each timed from its
    /// first sample.
    ///
    /// # Errors
    /// libopus failing to encode.
    pub fn push(&mut self, at: u64, pcm: &[i16]) -> Result<Vec<AudioFrame>, SoundError> {
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
            out.push(AudioFrame {
                pts: self.pending_at + self.ticks(done),
                data,
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

/// Linear PCM to G.711 μ-law, as an IP camera sends its sound (ITU-T G.711); what
/// [`from_mu_law`] turns back to within the law's step at that level.
#[must_use]
pub fn to_mu_law(sample: i16) -> u8 {
    let sign = if sample < 0 { 0x80 } else { 0 };
    let magnitude = i32::from(sample).unsigned_abs().min(32_635) + 0x84;
    let exponent = (31 - magnitude.leading_zeros()).saturating_sub(7).min(7);
    let mantissa = (magnitude >> (exponent + 3)) & 0x0f;
    // Both fit in their bits: the exponent is at most 7, the mantissa 4 bits.
    #[allow(clippy::cast_possible_truncation)]
    let code = sign | (exponent << 4) as u8 | mantissa as u8;
    !code
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
    fn mu_law_round_trips_within_its_step() {
        for sample in (i16::MIN..=i16::MAX).step_by(7) {
            let back = i32::from(from_mu_law(to_mu_law(sample)));
            let clipped = i32::from(sample).clamp(-32_635, 32_635);
            // The step doubles with each of the eight segments: 8 near zero, 1024 at the top.
            let step = (clipped.abs() / 16).max(8);
            assert!(
                (back - clipped).abs() <= step,
                "{sample} came back as {back}"
            );
        }
        assert_eq!(to_mu_law(0), 0xff);
    }

    #[test]
    #[allow(clippy::cast_possible_truncation)]
    fn packets_are_20_ms_and_timed_from_their_samples() {
        let mut encoder = OpusEncoder::new(16_000, 24_000).unwrap();
        // 50 ms at a time: packets come out whole, each 1800 ticks after the one before.
        let mut packets = Vec::new();
        for i in 0..4u64 {
            let pcm: Vec<i16> = (0..800)
                .map(|n| ((n * 37 + i * 11) % 4000) as i16)
                .collect();
            packets.extend(encoder.push(i * 4500, &pcm).unwrap());
        }
        assert_eq!(packets.len(), 10);
        for (i, p) in (0u64..).zip(&packets) {
            assert_eq!(p.pts, i * 1800);
            assert_eq!(keyhole_media::opus::packet_samples(&p.data), Ok(960));
        }
        let AudioConfig::Opus(config) = encoder.config().as_ref() else {
            panic!("Opus");
        };
        assert_eq!((config.channels(), config.input_rate()), (1, 48_000));
        assert!(config.pre_skip() > 0);
        assert!(OpusEncoder::new(44_100, 24_000).is_err());
    }

    #[test]
    // Samples within ±8000 by construction.
    #[allow(clippy::cast_possible_truncation)]
    fn decoding_gives_back_what_was_encoded() {
        let mut encoder = OpusEncoder::new(16_000, 24_000).unwrap();
        let mut decoder = OpusDecoder::new(16_000).unwrap();
        // A 500 Hz tone, loud: Opus keeps its shape once its look-ahead has passed.
        let pcm: Vec<i16> = (0..16_000)
            .map(|n| {
                (8000.0 * (std::f64::consts::TAU * 500.0 * f64::from(n) / 16_000.0).sin()) as i16
            })
            .collect();
        let mut heard = Vec::new();
        for packet in encoder.push(0, &pcm).unwrap() {
            heard.extend(decoder.decode(&packet.data).unwrap());
        }
        assert_eq!(heard.len(), 16_000);
        let energy = |s: &[i16]| s.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>();
        let tail = &heard[8000..];
        assert!(
            energy(tail) > 0.5 * energy(&pcm[8000..]),
            "the tone comes back"
        );
        assert!(OpusDecoder::new(44_100).is_err());
    }
}
