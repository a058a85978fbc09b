//! A video track's decoder configuration: its codec and parameter sets, which MP4 keeps in the
//! sample entry (`avc1` with `avcC`, `hvc1` with `hvcC`) rather than in the samples.

use super::Mp4Error;
use crate::h264::{self, AccessUnit, Codec};
use crate::h265::{self, HevcConfig};

/// A video stream's codec and parameter sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoConfig {
    /// H.264 with its sequence and picture parameter sets.
    H264 {
        /// The sequence parameter set NAL unit.
        sps: Vec<u8>,
        /// The picture parameter set NAL unit.
        pps: Vec<u8>,
    },
    /// H.265 with its video, sequence and picture parameter sets.
    H265(HevcConfig),
}

impl VideoConfig {
    /// An H.264 configuration; checked when it is written.
    #[must_use]
    pub fn h264(sps: &[u8], pps: &[u8]) -> Self {
        Self::H264 {
            sps: sps.to_vec(),
            pps: pps.to_vec(),
        }
    }

    /// The configuration the first parameter sets in `aus` give, of their codec.
    ///
    /// # Errors
    /// [`Mp4Error::Empty`], [`Mp4Error::MissingParameterSet`], or an H.265 set that does not
    /// read.
    pub fn find(aus: &[AccessUnit]) -> Result<Self, Mp4Error> {
        let codec = aus.first().ok_or(Mp4Error::Empty)?.codec;
        let first = |kind: u8, which: &'static str| {
            aus.iter()
                .find_map(|au| au.find(kind))
                .ok_or(Mp4Error::MissingParameterSet(which))
        };
        Ok(match codec {
            Codec::H264 => Self::h264(
                first(h264::nal::SPS, "sequence")?,
                first(h264::nal::PPS, "picture")?,
            ),
            Codec::H265 => Self::H265(HevcConfig::new(
                first(h265::nal::VPS, "video")?,
                first(h265::nal::SPS, "sequence")?,
                first(h265::nal::PPS, "picture")?,
            )?),
        })
    }

    /// The codec.
    #[must_use]
    pub fn codec(&self) -> Codec {
        match self {
            Self::H264 { .. } => Codec::H264,
            Self::H265(_) => Codec::H265,
        }
    }

    /// The sequence parameter set.
    #[must_use]
    pub fn sps(&self) -> &[u8] {
        match self {
            Self::H264 { sps, .. } => sps,
            Self::H265(c) => &c.sps,
        }
    }

    /// The parameter sets in the order a key frame carries them in its stream.
    #[must_use]
    pub fn parameter_sets(&self) -> Vec<Vec<u8>> {
        match self {
            Self::H264 { sps, pps } => vec![sps.clone(), pps.clone()],
            Self::H265(c) => vec![c.vps.clone(), c.sps.clone(), c.pps.clone()],
        }
    }

    /// The displayed picture size, from the sequence parameter set.
    ///
    /// # Errors
    /// [`Mp4Error::Sps`] for an H.264 SPS that does not parse.
    pub fn size(&self) -> Result<(u32, u32), Mp4Error> {
        Ok(match self {
            Self::H264 { sps, .. } => {
                let info = h264::parse_sps(sps)?;
                (info.width, info.height)
            }
            Self::H265(c) => (c.info.width, c.info.height),
        })
    }
}
