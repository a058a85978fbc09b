//! MP4 files (ISO/IEC 14496-12, the ISO base media file format, with the AVC and HEVC file
//! formats of ISO/IEC 14496-15 and MPEG-4 audio in `esds` of ISO/IEC 14496-14) holding one
//! H.264 or H.265 video track and, when there is sound, one AAC or Opus audio track.
//!
//! [`write()`] makes a progressive file ("fast start": `moov` before `mdat`, so playback can begin
//! before the whole file has arrived), the two tracks' samples interleaved in time; [`head()`],
//! [`append_sample()`] and the sound frames' own bytes make the same file a piece at a time, for
//! clips kept on disk. [`read()`] takes the first H.264 video track of a file, and its first AAC
//! track, back into [`AccessUnit`]s and [`AudioFrame`]s. For live view, [`fragmented_init()`],
//! [`fragment()`] and [`audio_fragment()`] make a fragmented file, one sample per fragment,
//! which a browser plays as it arrives (Media Source Extensions); a [`Splitter`] cuts such a
//! stream back into the pieces a player takes.
//!
//! The reader's input is untrusted. It never panics and never indexes outside its input; every
//! count, size and offset is checked before use; what it allocates is bounded by the input's
//! length (see [`read()`]); and it walks boxes only along the fixed paths it needs, never
//! recursively, so nesting depth is bounded by this code (nine levels), not by the file.

use crate::aac::{AacConfig, AacError};
use crate::audio::{Audio, AudioConfig, AudioFrame};
use crate::h264::{AccessUnit, Codec, SpsError, SpsInfo, TIMESCALE, nal, nal_type, parse_sps};
use crate::h265::HevcConfig;
use crate::opus::{OpusConfig, OpusError};

mod boxes;
mod fragment;
mod moov;
mod read;
mod split;
#[cfg(test)]
mod tests;
mod video;
mod write;

pub use fragment::{audio_fragment, fragment, fragmented_init};
pub use read::read;
pub use split::{MAX_PIECE, Piece, Splitter};
pub use video::VideoConfig;
pub use write::{Sample, TrackKind, append_sample, cut, head, sample_size, write};

/// Most samples (access units) [`read()`] accepts and [`write()`] writes: about 92 hours at 30
/// frames per second. It bounds the per-sample tables either side allocates.
pub const MAX_SAMPLES: u32 = 10_000_000;

/// `mvhd` timescale: milliseconds, the usual movie clock.
const MOVIE_TIMESCALE: u32 = 1000;

/// Duration given to the only sample of a one-frame file, which has no next sample to measure
/// against: one frame at 15 frames per second.
const LONE_SAMPLE_TICKS: u32 = TIMESCALE / 15;

/// Bytes of a `VisualSampleEntry` (14496-12 12.1.3) before its child boxes.
const VISUAL_SAMPLE_ENTRY_LEN: usize = 78;

/// Slack added to [`read()`]'s output budget so small files with tiny samples are not refused.
const OUTPUT_SLACK: usize = 1 << 20;

/// Why an MP4 file could not be written or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Mp4Error {
    /// There are no access units: none were given to [`write()`], or the file's video track
    /// has no samples.
    #[error("no access units")]
    Empty,
    /// Writing: the first access unit is not a key frame, so nothing could decode it.
    #[error("the first access unit is not a key frame")]
    FirstNotKeyframe,
    /// No sequence or picture parameter set (the argument says which) was found.
    #[error("no {0} parameter set")]
    MissingParameterSet(&'static str),
    /// Writing: the access unit at this index does not have a later decode time than the
    /// one before it.
    #[error("decode time of access unit {index} does not increase")]
    DtsNotIncreasing {
        /// Index of the offending access unit.
        index: usize,
    },
    /// The sequence parameter set does not parse.
    #[error("sequence parameter set: {0}")]
    Sps(#[from] SpsError),
    /// Writing: a value does not fit the fields MP4 has for it.
    #[error("{0} too large for MP4")]
    TooLarge(&'static str),
    /// [`read()`]: a box or table ends before its fields do.
    #[error("malformed MP4: {0} ends early")]
    Truncated(&'static str),
    /// [`read()`]: the box structure or a table is inconsistent.
    #[error("malformed MP4: {0}")]
    Malformed(&'static str),
    /// [`read()`]: a box the video track needs is missing.
    #[error("malformed MP4: no {0} box")]
    MissingBox(&'static str),
    /// [`read()`]: the file has no movie box (`moov`).
    #[error("not an MP4 file: no moov box")]
    NoMovie,
    /// [`read()`]: the samples are in movie fragments (`moof`), which this reader does not
    /// follow.
    #[error("fragmented MP4 is not supported")]
    Fragmented,
    /// [`read()`]: no track is H.264 or H.265 video (`vide` handler, an `avc1` or `avc3` entry
    /// with `avcC`, or an `hvc1` or `hev1` entry with `hvcC`).
    #[error("no H.264 or H.265 video track")]
    NoVideoTrack,
    /// The H.265 parameter sets or `hvcC` record are refused.
    #[error("H.265 configuration: {0}")]
    Hevc(#[from] crate::h265::HevcConfigError),
    /// [`read()`]: a valid feature this reader does not implement.
    #[error("unsupported MP4: {0}")]
    Unsupported(&'static str),
    /// A size limit of this module was exceeded ([`MAX_SAMPLES`], or [`read()`]'s output budget).
    #[error("MP4 exceeds a limit: {0}")]
    Limit(&'static str),
    /// The audio track cannot be written or read, for the reason given.
    #[error("audio: {0}")]
    Audio(&'static str),
    /// [`read()`]: the sound track's AAC configuration is refused.
    #[error("AAC configuration: {0}")]
    AacConfig(#[from] AacError),
    /// [`read()`]: the sound track's Opus configuration is refused.
    #[error("Opus configuration: {0}")]
    OpusConfig(#[from] OpusError),
    /// [`read()`]: the sample with this (zero-based) index lies outside the file.
    #[error("sample {index} lies outside the file")]
    SampleOutOfRange {
        /// Zero-based sample index.
        index: usize,
    },
}

/// The video track of an MP4 file, as [`read()`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp4Video {
    /// Displayed width in pixels, from the sequence parameter set.
    pub width: u32,
    /// Displayed height in pixels, from the sequence parameter set.
    pub height: u32,
    /// The codec and parameter sets (from `avcC` or `hvcC`, or the first in the samples).
    pub config: VideoConfig,
    /// The samples in decode order, times in [`TIMESCALE`] ticks from the first sample's
    /// decode time (zero).
    pub access_units: Vec<AccessUnit>,
    /// The first AAC or Opus sound track, if the file has one, on the same clock.
    pub audio: Option<Audio>,
}
