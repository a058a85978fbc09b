//! Opus (RFC 6716) as MP4 carries it ("Encapsulation of Opus in ISO Base Media File Format"):
//! the `dOps` box that describes a stream, and how long a packet plays, from its table of
//! contents byte. Opus is always timed at 48 kHz, whatever rate was encoded.

/// Opus's clock: every packet's length is a whole number of these ticks.
pub const SAMPLE_RATE: u32 = 48_000;

/// Why a `dOps` body or an Opus packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpusError {
    /// The bytes end before the fields do.
    #[error("Opus header ends early")]
    Truncated,
    /// A field holds a value this code does not handle.
    #[error("unsupported Opus stream: {0}")]
    Unsupported(&'static str),
    /// A packet whose frames add up to more than 120 ms, which RFC 6716 forbids.
    #[error("Opus packet longer than 120 ms")]
    TooLong,
}

/// An Opus stream's configuration, as the `dOps` box holds it (mono or stereo: channel mapping
/// family 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpusConfig {
    channels: u8,
    pre_skip: u16,
    input_rate: u32,
}

impl OpusConfig {
    /// A stream of `channels` (1 or 2) encoded from sound at `input_rate`, whose decoder
    /// discards `pre_skip` samples (at 48 kHz) at the start.
    ///
    /// # Errors
    /// [`OpusError::Unsupported`] for more than two channels.
    pub fn new(channels: u8, pre_skip: u16, input_rate: u32) -> Result<Self, OpusError> {
        if !(1..=2).contains(&channels) {
            return Err(OpusError::Unsupported("more than two channels"));
        }
        Ok(Self {
            channels,
            pre_skip,
            input_rate,
        })
    }

    /// Parses a `dOps` body: `Version` 0, `OutputChannelCount`, `PreSkip`, `InputSampleRate`,
    /// `OutputGain` (which must be 0), and `ChannelMappingFamily` 0.
    ///
    /// # Errors
    /// [`OpusError`] for anything else.
    pub fn parse(dops: &[u8]) -> Result<Self, OpusError> {
        let [version, channels, p0, p1, r0, r1, r2, r3, g0, g1, family] =
            *dops.first_chunk::<11>().ok_or(OpusError::Truncated)?;
        if version != 0 {
            return Err(OpusError::Unsupported("dOps version other than 0"));
        }
        if family != 0 || dops.len() != 11 {
            return Err(OpusError::Unsupported("a channel mapping table"));
        }
        if [g0, g1] != [0, 0] {
            return Err(OpusError::Unsupported("an output gain"));
        }
        Self::new(
            channels,
            u16::from_be_bytes([p0, p1]),
            u32::from_be_bytes([r0, r1, r2, r3]),
        )
    }

    /// The `dOps` body.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![0, self.channels];
        out.extend_from_slice(&self.pre_skip.to_be_bytes());
        out.extend_from_slice(&self.input_rate.to_be_bytes());
        out.extend_from_slice(&[0, 0, 0]); // output gain 0, channel mapping family 0
        out
    }

    /// Channels.
    #[must_use]
    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// Samples (at 48 kHz) the decoder drops at the start.
    #[must_use]
    pub fn pre_skip(&self) -> u16 {
        self.pre_skip
    }

    /// The rate the sound was captured at (informational).
    #[must_use]
    pub fn input_rate(&self) -> u32 {
        self.input_rate
    }
}

/// How many 48 kHz samples `packet` plays (RFC 6716 3.1 and 3.2): the frame size its
/// configuration number gives, times its frame count.
///
/// # Errors
/// [`OpusError::Truncated`] for an empty packet or a code 3 packet without its count byte,
/// [`OpusError::TooLong`] past 120 ms.
pub fn packet_samples(packet: &[u8]) -> Result<u32, OpusError> {
    let toc = *packet.first().ok_or(OpusError::Truncated)?;
    let config = toc >> 3;
    // Frame sizes in 48 kHz samples (RFC 6716 table 2): SILK-only 10/20/40/60 ms, hybrid
    // 10/20 ms, CELT-only 2.5/5/10/20 ms.
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config % 4)],
        12..=15 => [480, 960][usize::from(config % 2)],
        _ => [120, 240, 480, 960][usize::from(config % 4)],
    };
    let frames = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1).ok_or(OpusError::Truncated)? & 0x3f),
    };
    let samples = frame * frames;
    if samples > 5760 {
        return Err(OpusError::TooLong);
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dops_round_trips_and_refuses_what_it_does_not_handle() {
        let config = OpusConfig::new(1, 312, 16_000).unwrap();
        let bytes = config.to_bytes();
        assert_eq!(bytes, [0, 1, 0x01, 0x38, 0, 0, 0x3e, 0x80, 0, 0, 0]);
        assert_eq!(OpusConfig::parse(&bytes), Ok(config));
        assert_eq!(OpusConfig::parse(&bytes[..10]), Err(OpusError::Truncated));
        for (at, value) in [(0, 1), (1, 3), (1, 0), (8, 1), (10, 1)] {
            let mut bad = bytes.clone();
            bad[at] = value;
            assert!(
                matches!(OpusConfig::parse(&bad), Err(OpusError::Unsupported(_))),
                "byte {at} = {value}"
            );
        }
    }

    #[test]
    fn packet_lengths_follow_the_table_of_contents() {
        // CELT-only 20 ms (config 31), one frame; SILK 60 ms (config 3); hybrid 10 ms
        // (config 12), two frames; CELT 2.5 ms (config 16), code 3 with 8 frames.
        assert_eq!(packet_samples(&[31 << 3, 0xff]), Ok(960));
        assert_eq!(packet_samples(&[3 << 3]), Ok(2880));
        assert_eq!(packet_samples(&[(12 << 3) | 1]), Ok(960));
        assert_eq!(packet_samples(&[(16 << 3) | 3, 8]), Ok(960));
        assert_eq!(packet_samples(&[(3 << 3) | 2]), Ok(5760));
        assert_eq!(packet_samples(&[(3 << 3) | 3, 3]), Err(OpusError::TooLong));
        assert_eq!(packet_samples(&[]), Err(OpusError::Truncated));
        assert_eq!(packet_samples(&[(31 << 3) | 3]), Err(OpusError::Truncated));
    }
}
