//! Sound alongside the pictures: which codec a track holds and its frames. A camera's own sound
//! (the synthetic camera, or G.711 from an IP camera) is encoded as Opus on the camera; AAC from
//! a camera or a file is kept as it came.

use crate::aac::AacConfig;
use crate::opus::{self, OpusConfig};

/// A sound track's codec and configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioConfig {
    /// AAC, with its `AudioSpecificConfig`.
    Aac(AacConfig),
    /// Opus, with its `dOps` fields.
    Opus(OpusConfig),
}

impl AudioConfig {
    /// Ticks per second of the track in MP4: the AAC sample rate, or Opus's 48 kHz, so every
    /// frame lasts a whole number of ticks.
    #[must_use]
    pub fn timescale(&self) -> u32 {
        match self {
            Self::Aac(c) => c.sample_rate(),
            Self::Opus(_) => opus::SAMPLE_RATE,
        }
    }

    /// Channels.
    #[must_use]
    pub fn channels(&self) -> u8 {
        match self {
            Self::Aac(c) => c.channels(),
            Self::Opus(c) => c.channels(),
        }
    }

    /// How long `frame` plays, in [`AudioConfig::timescale`] ticks: an AAC frame's fixed
    /// length, or what an Opus packet's table of contents says (20 ms if it says nothing
    /// valid).
    #[must_use]
    pub fn frame_len(&self, frame: &[u8]) -> u32 {
        match self {
            Self::Aac(c) => c.frame_len(),
            Self::Opus(_) => opus::packet_samples(frame).unwrap_or(960),
        }
    }

    /// The RFC 6381 codec string browsers' media APIs take: `mp4a.40.2` or `opus`.
    #[must_use]
    pub fn codec_string(&self) -> String {
        match self {
            Self::Aac(c) => c.codec_string(),
            Self::Opus(_) => "opus".to_owned(),
        }
    }
}

/// One frame of sound: an AAC access unit (no ADTS header) or an Opus packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// When it begins, in [`crate::TIMESCALE`] ticks on the pictures' clock.
    pub pts: u64,
    /// The frame.
    pub data: Vec<u8>,
}

/// A sound track: its configuration and its frames in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audio {
    /// The stream's configuration.
    pub config: AudioConfig,
    /// The frames, in time order.
    pub frames: Vec<AudioFrame>,
}
