//! AAC (ISO/IEC 14496-3): the `AudioSpecificConfig` that describes a stream. An RTSP camera's
//! SDP and an MP4 file's `esds` box give it as these bytes; MP4 files carry them unchanged.

/// Sampling frequencies by `samplingFrequencyIndex` (14496-3 1.6.3.4, table 1.18).
const SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// The longest `AudioSpecificConfig` accepted: far more than any AAC configuration needs, and
/// small enough for a one-byte descriptor length in MP4.
pub const MAX_CONFIG_LEN: usize = 64;

/// Why an `AudioSpecificConfig` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AacError {
    /// The bytes end before the fields do.
    #[error("AAC configuration ends early")]
    Truncated,
    /// Longer than [`MAX_CONFIG_LEN`].
    #[error("AAC configuration longer than {MAX_CONFIG_LEN} bytes")]
    TooLong,
    /// A field holds a value that is reserved or out of range.
    #[error("AAC configuration: {0}")]
    Invalid(&'static str),
    /// A valid configuration this code does not handle.
    #[error("unsupported AAC configuration: {0}")]
    Unsupported(&'static str),
}

/// An AAC stream's configuration: the `AudioSpecificConfig` bytes and what they say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AacConfig {
    bytes: Vec<u8>,
    object_type: u8,
    sample_rate: u32,
    channels: u8,
    frame_len: u32,
}

impl AacConfig {
    /// Parses an `AudioSpecificConfig` (14496-3 1.6.2.1): AAC Main, LC, SSR or LTP, or HE-AAC
    /// (SBR, PS) over one of them, with a channel configuration of 1 to 7 (no program config
    /// element). Bytes after the fields read are kept but not interpreted.
    ///
    /// # Errors
    /// [`AacError`] for bytes that do not describe such a stream.
    pub fn parse(bytes: &[u8]) -> Result<Self, AacError> {
        if bytes.len() > MAX_CONFIG_LEN {
            return Err(AacError::TooLong);
        }
        let mut bits = Bits { bytes, at: 0 };
        let mut object_type = bits.object_type()?;
        let mut sample_rate = bits.frequency()?;
        let channels = match bits.take(4)? {
            0 => {
                return Err(AacError::Unsupported(
                    "channels given by a program config element",
                ));
            }
            n @ 1..=6 => u8::try_from(n).unwrap_or(0),
            7 => 8,
            _ => return Err(AacError::Invalid("reserved channel configuration")),
        };
        // Explicit HE-AAC signalling: the output rate, then the core codec's object type. The
        // MP4 track keeps the core rate, which is what its frames are counted in.
        if matches!(object_type, 5 | 29) {
            bits.frequency()?;
            object_type = bits.object_type()?;
        }
        let frame_len = match object_type {
            // GASpecificConfig (4.4.1): frameLengthFlag first.
            1..=4 => {
                if bits.take(1)? == 1 {
                    960
                } else {
                    1024
                }
            }
            _ => return Err(AacError::Unsupported("an audio object type other than AAC")),
        };
        if sample_rate == 0 {
            return Err(AacError::Invalid("zero sampling frequency"));
        }
        sample_rate = sample_rate.min(0x00ff_ffff);
        Ok(Self {
            bytes: bytes.to_vec(),
            object_type,
            sample_rate,
            channels,
            frame_len,
        })
    }

    /// The configuration of AAC-LC at `sample_rate` (one of the standard rates) with
    /// `channels` (1 to 6), 1024 samples a frame: what an encoder on the camera produces.
    ///
    /// # Errors
    /// [`AacError::Unsupported`] for another rate or channel count.
    pub fn low_complexity(sample_rate: u32, channels: u8) -> Result<Self, AacError> {
        let index = SAMPLE_RATES
            .iter()
            .position(|r| *r == sample_rate)
            .and_then(|i| u16::try_from(i).ok())
            .ok_or(AacError::Unsupported(
                "a sampling frequency outside the table",
            ))?;
        if !(1..=6).contains(&channels) {
            return Err(AacError::Unsupported("a channel count other than 1 to 6"));
        }
        // 5 bits object type 2, 4 bits index, 4 bits channels, 3 bits GASpecificConfig zero.
        let word = (2u16 << 11) | (index << 7) | (u16::from(channels) << 3);
        Self::parse(&word.to_be_bytes())
    }

    /// The `AudioSpecificConfig` bytes, as given.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The (core) audio object type: 1 Main, 2 LC, 3 SSR, 4 LTP.
    #[must_use]
    pub fn object_type(&self) -> u8 {
        self.object_type
    }

    /// Samples per second of the core stream.
    #[must_use]
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Channels.
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Samples per channel in one frame: 1024, or 960.
    #[must_use]
    pub fn frame_len(&self) -> u32 {
        self.frame_len
    }

    /// The RFC 6381 codec string (`mp4a.40.2` for AAC-LC), as browsers' media APIs take it.
    #[must_use]
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// MSB-first bit reader over the configuration.
struct Bits<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Result<u32, AacError> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = self.bytes.get(self.at / 8).ok_or(AacError::Truncated)?;
            v = (v << 1) | u32::from((byte >> (7 - self.at % 8)) & 1);
            self.at += 1;
        }
        Ok(v)
    }

    /// `GetAudioObjectType()`: five bits, 31 escaping to 32 plus six more.
    fn object_type(&mut self) -> Result<u8, AacError> {
        let kind = match self.take(5)? {
            31 => 32 + self.take(6)?,
            n => n,
        };
        u8::try_from(kind).map_err(|_| AacError::Invalid("audio object type"))
    }

    /// A `samplingFrequencyIndex`, or the escape and a 24-bit frequency.
    fn frequency(&mut self) -> Result<u32, AacError> {
        match self.take(4)? {
            0xf => self.take(24),
            i => SAMPLE_RATES
                .get(usize::try_from(i).unwrap_or(usize::MAX))
                .copied()
                .ok_or(AacError::Invalid("reserved sampling frequency index")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_configurations_cameras_send() {
        // AAC-LC 16 kHz mono (0x1408), 44.1 kHz stereo (0x1210), 48 kHz mono (0x1188), and
        // 8 kHz mono with 960-sample frames.
        for (bytes, rate, channels, frame) in [
            (vec![0x14, 0x08], 16_000, 1, 1024),
            (vec![0x12, 0x10], 44_100, 2, 1024),
            (vec![0x11, 0x88], 48_000, 1, 1024),
            (vec![0x15, 0x8c], 8_000, 1, 960),
        ] {
            let config = AacConfig::parse(&bytes).unwrap();
            assert_eq!(
                (
                    config.object_type(),
                    config.sample_rate(),
                    config.channels()
                ),
                (2, rate, channels)
            );
            assert_eq!(config.frame_len(), frame);
            assert_eq!(config.bytes(), bytes.as_slice());
            assert_eq!(config.codec_string(), "mp4a.40.2");
        }
        // HE-AAC, explicit: SBR (5) at 24 kHz core, 48 kHz out, over LC.
        let he = AacConfig::parse(&[0x2b, 0x09, 0x88, 0x00]).unwrap();
        assert_eq!((he.object_type(), he.sample_rate()), (2, 24_000));
        // An escaped explicit frequency.
        let odd = AacConfig::parse(&[0x17, 0x80, 0x1f, 0x40, 0x08]).unwrap();
        assert_eq!(odd.sample_rate(), 16_000);
    }

    #[test]
    fn makes_the_configuration_it_reads() {
        let config = AacConfig::low_complexity(16_000, 1).unwrap();
        assert_eq!(config.bytes(), [0x14, 0x08]);
        assert_eq!(
            AacConfig::low_complexity(8_000, 2).unwrap().bytes(),
            [0x15, 0x90]
        );
        assert!(AacConfig::low_complexity(17_000, 1).is_err());
        assert!(AacConfig::low_complexity(16_000, 0).is_err());
    }

    #[test]
    fn refuses_what_it_does_not_handle() {
        assert_eq!(AacConfig::parse(&[]), Err(AacError::Truncated));
        assert_eq!(AacConfig::parse(&[0x14]), Err(AacError::Truncated));
        // Reserved frequency index 13.
        assert!(matches!(
            AacConfig::parse(&[0x16, 0x88]),
            Err(AacError::Invalid(_))
        ));
        // Channels from a program config element.
        assert!(matches!(
            AacConfig::parse(&[0x14, 0x00]),
            Err(AacError::Unsupported(_))
        ));
        // Object type 23 (ER AAC-LD).
        assert!(matches!(
            AacConfig::parse(&[0xb9, 0x88]),
            Err(AacError::Unsupported(_))
        ));
        assert_eq!(
            AacConfig::parse(&[0x14; MAX_CONFIG_LEN + 1]),
            Err(AacError::TooLong)
        );
    }
}
