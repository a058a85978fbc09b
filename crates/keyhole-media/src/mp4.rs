//! MP4 files (ISO/IEC 14496-12, the ISO base media file format, with the AVC file format of
//! ISO/IEC 14496-15) holding one H.264 video track.
//!
//! [`write()`] makes a progressive file ("fast start": `moov` before `mdat`, so playback can begin
//! before the whole file has arrived) with every sample in one chunk; [`head()`] and
//! [`append_sample()`] make the same file a piece at a time, for clips kept on disk. [`read()`]
//! takes the first H.264 video track of a file back into [`AccessUnit`]s. For live view,
//! [`fragmented_init()`] and [`fragment()`] make a fragmented file, one access unit per
//! fragment, which a browser plays as it arrives (Media Source Extensions).
//!
//! The reader's input is untrusted. It never panics and never indexes outside its input; every
//! count, size and offset is checked before use; what it allocates is bounded by the input's
//! length (see [`read()`]); and it walks boxes only along the fixed paths it needs, never
//! recursively, so nesting depth is bounded by this code (nine levels), not by the file.

use crate::h264::{AccessUnit, SpsError, SpsInfo, TIMESCALE, nal, nal_type, parse_sps};

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
    /// [`read()`]: no track is H.264 video (`vide` handler, `avc1` or `avc3` entry with `avcC`).
    #[error("no H.264 video track")]
    NoVideoTrack,
    /// [`read()`]: a valid feature this reader does not implement.
    #[error("unsupported MP4: {0}")]
    Unsupported(&'static str),
    /// A size limit of this module was exceeded ([`MAX_SAMPLES`], or [`read()`]'s output budget).
    #[error("MP4 exceeds a limit: {0}")]
    Limit(&'static str),
    /// [`read()`]: the sample with this (zero-based) index lies outside the file.
    #[error("sample {index} lies outside the file")]
    SampleOutOfRange {
        /// Zero-based sample index.
        index: usize,
    },
}

/// The H.264 video track of an MP4 file, as [`read()`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mp4Video {
    /// Displayed width in pixels, from the sequence parameter set.
    pub width: u32,
    /// Displayed height in pixels, from the sequence parameter set.
    pub height: u32,
    /// The sequence parameter set NAL unit (from `avcC`, or the first in the samples).
    pub sps: Vec<u8>,
    /// The picture parameter set NAL unit (from `avcC`, or the first in the samples).
    pub pps: Vec<u8>,
    /// The samples in decode order, times in [`TIMESCALE`] ticks from the first sample's
    /// decode time (zero).
    pub access_units: Vec<AccessUnit>,
}

// ---------------------------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------------------------

/// What the writer needs to know of one sample before its bytes: [`head()`] lays out `moov`
/// from these, so the samples themselves can be streamed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Decode time in [`TIMESCALE`] ticks.
    pub dts: u64,
    /// Presentation time minus decode time, in ticks.
    pub pts_offset: u32,
    /// Whether it is a key frame.
    pub keyframe: bool,
    /// Its size in bytes, as [`append_sample()`] writes it.
    pub size: u32,
}

/// Writes `aus` (in decode order) as a progressive MP4 file with one H.264 track: [`head()`]
/// followed by each access unit's [`append_sample()`].
///
/// The first access unit carrying a sequence parameter set, and the first carrying a picture
/// parameter set, provide the `avcC` configuration.
///
/// # Errors
/// [`Mp4Error::Empty`], [`Mp4Error::FirstNotKeyframe`], [`Mp4Error::MissingParameterSet`],
/// [`Mp4Error::TooLarge`] for an access unit over `u32::MAX` bytes, and the errors of
/// [`head()`].
pub fn write(aus: &[AccessUnit]) -> Result<Vec<u8>, Mp4Error> {
    let first = aus.first().ok_or(Mp4Error::Empty)?;
    if !first.keyframe {
        return Err(Mp4Error::FirstNotKeyframe);
    }
    let sps = aus
        .iter()
        .find_map(|au| au.find(nal::SPS))
        .ok_or(Mp4Error::MissingParameterSet("sequence"))?;
    let pps = aus
        .iter()
        .find_map(|au| au.find(nal::PPS))
        .ok_or(Mp4Error::MissingParameterSet("picture"))?;
    let mut samples = Vec::with_capacity(aus.len());
    for au in aus {
        samples.push(Sample {
            dts: au.dts,
            pts_offset: au.pts_offset,
            keyframe: au.keyframe,
            size: sample_size(au)?,
        });
    }
    let mut out = head(&samples, sps, pps)?;
    let payload: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    out.reserve(usize::try_from(payload).map_err(|_| Mp4Error::TooLarge("file"))?);
    for au in aus {
        append_sample(au, &mut out)?;
    }
    Ok(out)
}

/// The part of an MP4 from the last key frame at or before `from` up to `to` (both in
/// [`TIMESCALE`] ticks from the file's first sample) as an MP4 of its own, starting at 0, so a
/// player decodes it from its first picture: an event's span cut from the segment that holds it.
/// Also returns where, in ticks, the part's first picture was in the whole. A `from` before the
/// first key frame starts at it; a `to` past the end ends at the end; at least one picture is
/// kept.
///
/// # Errors
/// What [`read()`] and [`write()`] refuse.
pub fn cut(bytes: &[u8], from: u64, to: u64) -> Result<(Vec<u8>, u64), Mp4Error> {
    let video = read(bytes)?;
    let aus = &video.access_units;
    let start = aus
        .iter()
        .rposition(|au| au.keyframe && au.dts <= from)
        .or_else(|| aus.iter().position(|au| au.keyframe))
        .ok_or(Mp4Error::FirstNotKeyframe)?;
    let base = aus[start].dts;
    let end = aus
        .iter()
        .skip(start + 1)
        .position(|au| au.dts >= to)
        .map_or(aus.len(), |i| start + 1 + i);
    let part: Vec<AccessUnit> = aus[start..end]
        .iter()
        .map(|au| AccessUnit {
            dts: au.dts - base,
            ..au.clone()
        })
        .collect();
    Ok((write(&part)?, base))
}

/// The size of `au` as an MP4 sample.
///
/// # Errors
/// [`Mp4Error::TooLarge`] over `u32::MAX` bytes.
pub fn sample_size(au: &AccessUnit) -> Result<u32, Mp4Error> {
    let mut size = 0u32;
    for n in au.picture_nals() {
        size = u32::try_from(n.len())
            .ok()
            .and_then(|len| len.checked_add(4))
            .and_then(|len| size.checked_add(len))
            .ok_or(Mp4Error::TooLarge("access unit"))?;
    }
    Ok(size)
}

/// Appends `au` as an MP4 sample: its NAL units other than parameter sets (which live in
/// `avcC`) and delimiters (not stored in MP4), each prefixed with its four-byte length.
/// Returns the bytes appended.
///
/// # Errors
/// [`Mp4Error::TooLarge`] over `u32::MAX` bytes.
pub fn append_sample(au: &AccessUnit, out: &mut Vec<u8>) -> Result<u32, Mp4Error> {
    let size = sample_size(au)?;
    for n in au.picture_nals() {
        // Each length fits u32: sample_size checked the sum.
        out.u32(u32::try_from(n.len()).map_err(|_| Mp4Error::TooLarge("NAL unit"))?);
        out.extend_from_slice(n);
    }
    Ok(size)
}

/// The start of a progressive MP4 file (`ftyp`, `moov`, and the `mdat` box header) for
/// `samples` in decode order, whose bytes follow it directly in that order.
///
/// Times are kept relative to the first sample's decode time, which becomes zero. The last
/// sample lasts as long as the one before it. No edit list is written, so with B-frames the
/// presentation starts at the first sample's `pts_offset`.
///
/// # Errors
/// [`Mp4Error::Empty`], [`Mp4Error::FirstNotKeyframe`], [`Mp4Error::Sps`] if `sps` does not
/// parse, [`Mp4Error::DtsNotIncreasing`], [`Mp4Error::Limit`] beyond [`MAX_SAMPLES`], and
/// [`Mp4Error::TooLarge`] if a gap between decode times, a `pts_offset` (above `i32::MAX`: many
/// readers take it as signed), a parameter set or the picture size does not fit its field.
pub fn head(samples: &[Sample], sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, Mp4Error> {
    let first = samples.first().ok_or(Mp4Error::Empty)?;
    if !first.keyframe {
        return Err(Mp4Error::FirstNotKeyframe);
    }
    let count = u32::try_from(samples.len())
        .ok()
        .filter(|n| *n <= MAX_SAMPLES)
        .ok_or(Mp4Error::Limit("more than MAX_SAMPLES access units"))?;
    let info = parse_sps(sps)?;

    let mut durations = Vec::with_capacity(samples.len());
    for (i, pair) in samples.windows(2).enumerate() {
        let [a, b] = pair else { continue };
        let gap = b
            .dts
            .checked_sub(a.dts)
            .filter(|d| *d > 0)
            .ok_or(Mp4Error::DtsNotIncreasing { index: i + 1 })?;
        durations
            .push(u32::try_from(gap).map_err(|_| Mp4Error::TooLarge("gap between decode times"))?);
    }
    durations.push(durations.last().copied().unwrap_or(LONE_SAMPLE_TICKS));

    // A ctts box only when some picture is shown later than it is decoded (B-frames).
    let pts_offsets = if samples.iter().any(|s| s.pts_offset != 0) {
        if samples
            .iter()
            .any(|s| s.pts_offset > i32::MAX.unsigned_abs())
        {
            return Err(Mp4Error::TooLarge("pts_offset"));
        }
        Some(samples.iter().map(|s| s.pts_offset).collect())
    } else {
        None
    };
    let mut keyframes = Vec::new();
    for (number, sample) in (1..=count).zip(samples) {
        if sample.keyframe {
            keyframes.push(number);
        }
    }
    let track = Track {
        info,
        sps,
        pps,
        durations,
        pts_offsets,
        keyframes,
        sizes: samples.iter().map(|s| s.size).collect(),
    };

    let payload: u64 = track.sizes.iter().map(|s| u64::from(*s)).sum();
    let ftyp = ftyp()?;
    let large_mdat = payload > u64::from(u32::MAX) - 8;
    let mdat_header: u64 = if large_mdat { 16 } else { 8 };
    // The one chunk starts right after the mdat header, so its offset depends on the size of
    // moov, which grows by four bytes if the offset needs co64: settle it by iterating (at
    // most three rounds, since the offset only grows).
    let mut chunk_offset = 0u64;
    let mut settled = None;
    for _ in 0..4 {
        let moov = track.moov(Some(chunk_offset))?;
        let at = u64::try_from(ftyp.len() + moov.len())
            .ok()
            .and_then(|n| n.checked_add(mdat_header))
            .ok_or(Mp4Error::TooLarge("moov box"))?;
        if at == chunk_offset {
            settled = Some(moov);
            break;
        }
        chunk_offset = at;
    }
    let moov = settled.ok_or(Mp4Error::TooLarge("moov box"))?;
    chunk_offset
        .checked_add(payload)
        .ok_or(Mp4Error::TooLarge("file"))?;
    let mut out = Vec::with_capacity(ftyp.len() + moov.len() + 16);
    out.extend_from_slice(&ftyp);
    out.extend_from_slice(&moov);
    if large_mdat {
        out.u32(1);
        out.extend_from_slice(b"mdat");
        out.u64(payload + 16);
    } else {
        out.u32(u32::try_from(payload + 8).map_err(|_| Mp4Error::TooLarge("mdat box"))?);
        out.extend_from_slice(b"mdat");
    }
    Ok(out)
}

/// What [`head()`] puts in `moov`, per-sample tables in decode order.
struct Track<'a> {
    info: SpsInfo,
    sps: &'a [u8],
    pps: &'a [u8],
    /// Per sample, in [`TIMESCALE`] ticks.
    durations: Vec<u32>,
    /// Per sample, when any is non-zero.
    pts_offsets: Option<Vec<u32>>,
    /// One-based numbers of the key frames.
    keyframes: Vec<u32>,
    /// Per sample, in bytes.
    sizes: Vec<u32>,
}

impl Track<'_> {
    /// The `moov` box. With `chunk_offset`, a progressive file's, its single chunk at that
    /// offset; without, a fragmented file's: empty sample tables and an `mvex`.
    fn moov(&self, chunk_offset: Option<u64>) -> Result<Vec<u8>, Mp4Error> {
        let media_duration: u64 = self.durations.iter().map(|d| u64::from(*d)).sum();
        let movie_duration = rescale(media_duration, TIMESCALE, MOVIE_TIMESCALE)?;
        let mut out = Vec::new();
        boxed(&mut out, b"moov", |o| {
            mvhd(o, movie_duration)?;
            boxed(o, b"trak", |o| {
                tkhd(o, movie_duration, &self.info)?;
                boxed(o, b"mdia", |o| {
                    mdhd(o, media_duration)?;
                    hdlr(o)?;
                    boxed(o, b"minf", |o| {
                        // vmhd's flags must be 1 (14496-12 12.1.2).
                        full_box(o, b"vmhd", 0, 1, |o| {
                            o.zeros(8); // graphicsmode, opcolor: copy
                            Ok(())
                        })?;
                        boxed(o, b"dinf", |o| {
                            full_box(o, b"dref", 0, 0, |o| {
                                o.u32(1);
                                // Flag 1: the media data is in this file.
                                full_box(o, b"url ", 0, 1, |_| Ok(()))
                            })
                        })?;
                        boxed(o, b"stbl", |o| match chunk_offset {
                            Some(at) => self.stbl(o, at),
                            None => self.empty_stbl(o),
                        })
                    })
                })
            })?;
            if chunk_offset.is_none() {
                boxed(o, b"mvex", |o| {
                    full_box(o, b"trex", 0, 0, |o| {
                        o.u32(1); // track_ID
                        o.u32(1); // default_sample_description_index
                        o.zeros(12); // default duration, size, flags: each fragment says
                        Ok(())
                    })
                })?;
            }
            Ok(())
        })?;
        Ok(out)
    }

    /// A fragmented file's sample tables: the sample entry alone, every sample being in a
    /// fragment.
    fn empty_stbl(&self, o: &mut Vec<u8>) -> Result<(), Mp4Error> {
        full_box(o, b"stsd", 0, 0, |o| {
            o.u32(1);
            self.avc1(o)
        })?;
        for table in [b"stts", b"stsc", b"stco"] {
            full_box(o, table, 0, 0, |o| {
                o.u32(0);
                Ok(())
            })?;
        }
        full_box(o, b"stsz", 0, 0, |o| {
            o.u32(0);
            o.u32(0);
            Ok(())
        })
    }

    fn stbl(&self, o: &mut Vec<u8>, chunk_offset: u64) -> Result<(), Mp4Error> {
        full_box(o, b"stsd", 0, 0, |o| {
            o.u32(1);
            self.avc1(o)
        })?;
        let durations = runs(&self.durations);
        full_box(o, b"stts", 0, 0, |o| {
            o.u32(count(durations.len())?);
            for (n, delta) in &durations {
                o.u32(*n);
                o.u32(*delta);
            }
            Ok(())
        })?;
        if let Some(offsets) = &self.pts_offsets {
            let offsets = runs(offsets);
            // Version 0: unsigned offsets, which every reader understands.
            full_box(o, b"ctts", 0, 0, |o| {
                o.u32(count(offsets.len())?);
                for (n, offset) in &offsets {
                    o.u32(*n);
                    o.u32(*offset);
                }
                Ok(())
            })?;
        }
        full_box(o, b"stss", 0, 0, |o| {
            o.u32(count(self.keyframes.len())?);
            for k in &self.keyframes {
                o.u32(*k);
            }
            Ok(())
        })?;
        full_box(o, b"stsc", 0, 0, |o| {
            o.u32(1);
            o.u32(1); // first chunk
            o.u32(count(self.sizes.len())?); // samples per chunk: all of them
            o.u32(1); // sample description index
            Ok(())
        })?;
        full_box(o, b"stsz", 0, 0, |o| {
            o.u32(0); // sizes differ: table follows
            o.u32(count(self.sizes.len())?);
            for s in &self.sizes {
                o.u32(*s);
            }
            Ok(())
        })?;
        match u32::try_from(chunk_offset) {
            Ok(offset) => full_box(o, b"stco", 0, 0, |o| {
                o.u32(1);
                o.u32(offset);
                Ok(())
            }),
            Err(_) => full_box(o, b"co64", 0, 0, |o| {
                o.u32(1);
                o.u64(chunk_offset);
                Ok(())
            }),
        }
    }

    /// The `avc1` sample entry (14496-12 12.1.3, 14496-15 5.4.2).
    fn avc1(&self, o: &mut Vec<u8>) -> Result<(), Mp4Error> {
        let width = u16::try_from(self.info.width).map_err(|_| Mp4Error::TooLarge("width"))?;
        let height = u16::try_from(self.info.height).map_err(|_| Mp4Error::TooLarge("height"))?;
        let sps_len = u16::try_from(self.sps.len()).map_err(|_| Mp4Error::TooLarge("SPS"))?;
        let pps_len = u16::try_from(self.pps.len()).map_err(|_| Mp4Error::TooLarge("PPS"))?;
        boxed(o, b"avc1", |o| {
            o.zeros(6); // reserved
            o.u16(1); // data_reference_index: the dref entry above
            o.zeros(16); // pre_defined, reserved
            o.u16(width);
            o.u16(height);
            o.u32(0x0048_0000); // 72 dpi, 16.16
            o.u32(0x0048_0000);
            o.u32(0); // reserved
            o.u16(1); // frame_count
            o.zeros(32); // compressorname: empty
            o.u16(0x18); // depth: colour, no alpha
            o.u16(0xffff); // pre_defined = -1
            boxed(o, b"avcC", |o| {
                o.u8(1); // configurationVersion
                o.u8(self.info.profile);
                o.u8(self.info.compatibility);
                o.u8(self.info.level);
                o.u8(0xfc | 3); // reserved bits, lengthSizeMinusOne = 3
                o.u8(0xe0 | 1); // reserved bits, one SPS
                o.u16(sps_len);
                o.extend_from_slice(self.sps);
                o.u8(1); // one PPS
                o.u16(pps_len);
                o.extend_from_slice(self.pps);
                Ok(())
            })
        })
    }
}

/// The initialization segment of a fragmented file (`ftyp` and a `moov` with no samples and an
/// `mvex`), for the stream `sps` and `pps` describe.
///
/// # Errors
/// [`Mp4Error::Sps`] if `sps` does not parse, [`Mp4Error::TooLarge`] if a parameter set or the
/// picture size does not fit its field.
pub fn fragmented_init(sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, Mp4Error> {
    let track = Track {
        info: parse_sps(sps)?,
        sps,
        pps,
        durations: Vec::new(),
        pts_offsets: None,
        keyframes: Vec::new(),
        sizes: Vec::new(),
    };
    let mut out = ftyp()?;
    out.extend(track.moov(None)?);
    Ok(out)
}

/// One fragment (`moof` and `mdat`) holding `au`, the fragment numbered `sequence` (from 1),
/// lasting `duration` [`TIMESCALE`] ticks from its `dts`.
///
/// # Errors
/// [`Mp4Error::TooLarge`] if the sample does not fit its fields.
pub fn fragment(sequence: u32, au: &AccessUnit, duration: u32) -> Result<Vec<u8>, Mp4Error> {
    let mut sample = Vec::with_capacity(au.len() + 4 * au.nals.len());
    let size = append_sample(au, &mut sample)?;
    // Sample flags (14496-12 8.8.3.1): a key frame depends on nothing; any other picture
    // depends on others and is not a sync sample.
    let flags: u32 = if au.keyframe {
        0x0200_0000
    } else {
        0x0101_0000
    };
    let moof = |data_offset: u32| -> Result<Vec<u8>, Mp4Error> {
        let mut o = Vec::new();
        boxed(&mut o, b"moof", |o| {
            full_box(o, b"mfhd", 0, 0, |o| {
                o.u32(sequence);
                Ok(())
            })?;
            boxed(o, b"traf", |o| {
                // Flag 0x020000: offsets count from this moof.
                full_box(o, b"tfhd", 0, 0x02_0000, |o| {
                    o.u32(1);
                    Ok(())
                })?;
                full_box(o, b"tfdt", 1, 0, |o| {
                    o.u64(au.dts);
                    Ok(())
                })?;
                // Data offset, and per sample: duration, size, flags, composition offset.
                full_box(o, b"trun", 0, 0x0000_0f01, |o| {
                    o.u32(1);
                    o.u32(data_offset);
                    o.u32(duration);
                    o.u32(size);
                    o.u32(flags);
                    o.u32(au.pts_offset);
                    Ok(())
                })
            })
        })?;
        Ok(o)
    };
    // The sample starts after the moof and the mdat header; the moof's size does not depend on
    // the offset written in it.
    let len = moof(0)?.len();
    let offset = u32::try_from(len + 8).map_err(|_| Mp4Error::TooLarge("moof box"))?;
    let mut out = moof(offset)?;
    out.u32(u32::try_from(sample.len() + 8).map_err(|_| Mp4Error::TooLarge("mdat box"))?);
    out.extend_from_slice(b"mdat");
    out.extend_from_slice(&sample);
    Ok(out)
}

fn ftyp() -> Result<Vec<u8>, Mp4Error> {
    let mut out = Vec::new();
    boxed(&mut out, b"ftyp", |o| {
        o.extend_from_slice(b"isom");
        o.u32(512);
        for brand in [b"isom", b"iso2", b"avc1", b"mp41"] {
            o.extend_from_slice(brand);
        }
        Ok(())
    })?;
    Ok(out)
}

/// Version 1 (64-bit times) only when the duration does not fit version 0.
fn version_for(duration: u64) -> (u8, bool) {
    let long = u32::try_from(duration).is_err();
    (u8::from(long), long)
}

/// Creation and modification times: zero ("unknown"), so the same input always gives the same
/// bytes; when a clip was recorded is kept outside the file.
fn put_times(o: &mut Vec<u8>, long: bool) {
    o.zeros(if long { 16 } else { 8 });
}

fn put_duration(o: &mut Vec<u8>, long: bool, duration: u64) {
    match u32::try_from(duration) {
        Ok(d) if !long => o.u32(d),
        _ => o.u64(duration),
    }
}

/// The identity transformation matrix (14496-12 8.2.2.3).
fn put_matrix(o: &mut Vec<u8>) {
    for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        o.u32(v);
    }
}

fn mvhd(o: &mut Vec<u8>, duration: u64) -> Result<(), Mp4Error> {
    let (version, long) = version_for(duration);
    full_box(o, b"mvhd", version, 0, |o| {
        put_times(o, long);
        o.u32(MOVIE_TIMESCALE);
        put_duration(o, long, duration);
        o.u32(0x0001_0000); // rate 1.0
        o.u16(0x0100); // volume 1.0
        o.zeros(10); // reserved
        put_matrix(o);
        o.zeros(24); // pre_defined
        o.u32(2); // next_track_ID
        Ok(())
    })
}

fn tkhd(o: &mut Vec<u8>, duration: u64, info: &SpsInfo) -> Result<(), Mp4Error> {
    let fixed = |v: u32| {
        v.checked_mul(1 << 16)
            .ok_or(Mp4Error::TooLarge("picture size"))
    };
    let (width, height) = (fixed(info.width)?, fixed(info.height)?);
    let (version, long) = version_for(duration);
    // Flags: track enabled (1) and in the movie (2).
    full_box(o, b"tkhd", version, 3, |o| {
        put_times(o, long);
        o.u32(1); // track_ID
        o.u32(0); // reserved
        put_duration(o, long, duration);
        o.zeros(8); // reserved
        o.u16(0); // layer
        o.u16(0); // alternate_group
        o.u16(0); // volume: not audio
        o.u16(0); // reserved
        put_matrix(o);
        o.u32(width);
        o.u32(height);
        Ok(())
    })
}

fn mdhd(o: &mut Vec<u8>, duration: u64) -> Result<(), Mp4Error> {
    let (version, long) = version_for(duration);
    full_box(o, b"mdhd", version, 0, |o| {
        put_times(o, long);
        o.u32(TIMESCALE);
        put_duration(o, long, duration);
        // ISO 639-2 "und", three 5-bit letters minus 0x60.
        o.u16(
            (u16::from(b'u' - 0x60) << 10) | (u16::from(b'n' - 0x60) << 5) | u16::from(b'd' - 0x60),
        );
        o.u16(0); // pre_defined
        Ok(())
    })
}

fn hdlr(o: &mut Vec<u8>) -> Result<(), Mp4Error> {
    full_box(o, b"hdlr", 0, 0, |o| {
        o.u32(0); // pre_defined
        o.extend_from_slice(b"vide");
        o.zeros(12); // reserved
        o.extend_from_slice(b"VideoHandler\0");
        Ok(())
    })
}

/// Run-length encodes `values` as (count, value) pairs, as stts and ctts store them.
fn runs(values: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &v in values {
        match out.last_mut() {
            // Counts stay below MAX_SAMPLES, which write checked.
            Some((n, value)) if *value == v => *n = n.saturating_add(1),
            _ => out.push((1, v)),
        }
    }
    out
}

fn count(len: usize) -> Result<u32, Mp4Error> {
    u32::try_from(len).map_err(|_| Mp4Error::TooLarge("table"))
}

fn rescale(ticks: u64, from: u32, to: u32) -> Result<u64, Mp4Error> {
    if from == 0 {
        return Err(Mp4Error::Malformed("zero timescale"));
    }
    let scaled = u128::from(ticks) * u128::from(to) / u128::from(from);
    u64::try_from(scaled).map_err(|_| Mp4Error::Malformed("timestamp out of range"))
}

/// Appends a box of type `kind` whose body `body` writes, then fills in its size.
fn boxed(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    let start = out.len();
    out.u32(0);
    out.extend_from_slice(kind);
    body(out)?;
    let size = u32::try_from(out.len() - start).map_err(|_| Mp4Error::TooLarge("box"))?;
    if let Some(field) = out.get_mut(start..start + 4) {
        field.copy_from_slice(&size.to_be_bytes());
    }
    Ok(())
}

/// A "full box": one version byte and 24 bits of flags before the body.
fn full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    boxed(out, kind, |o| {
        o.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(o)
    })
}

/// Big-endian field writers.
trait Put {
    fn u8(&mut self, v: u8);
    fn u16(&mut self, v: u16);
    fn u32(&mut self, v: u32);
    fn u64(&mut self, v: u64);
    fn zeros(&mut self, n: usize);
}

impl Put for Vec<u8> {
    fn u8(&mut self, v: u8) {
        self.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
}

// ---------------------------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------------------------

/// Reads the first H.264 video track of an MP4 file.
///
/// The track is the first `trak` with a `vide` handler whose first sample entry is `avc1` or
/// `avc3` with an `avcC` box. Its samples are found through `stsz`, `stsc` and `stco`/`co64`,
/// split into NAL units by `avcC`'s length size, and timed by `stts` and `ctts` (converted to
/// [`TIMESCALE`]; negative `ctts` version 1 offsets shift every presentation time so the
/// smallest offset is zero). `stss` marks the key frames (all samples when it is absent), and
/// every key frame that does not already carry both gets the SPS and PPS inserted at its start
/// (after an access unit delimiter, if it has one), so each key frame can be decoded alone.
/// Edit lists are ignored. A file whose samples are in movie fragments is refused.
///
/// Bounds: at most [`MAX_SAMPLES`] samples, whose sizes must add up to no more than the file's
/// length; the access units returned hold at most four times the file's length (plus 1 MiB)
/// of NAL unit bytes, counting the inserted parameter sets.
///
/// # Errors
/// Any [`Mp4Error`] that names [`read()`], [`Mp4Error::Empty`] when the track has no samples,
/// [`Mp4Error::MissingParameterSet`], and [`Mp4Error::Sps`] when the SPS does not parse.
pub fn read(bytes: &[u8]) -> Result<Mp4Video, Mp4Error> {
    let mut moov = None;
    let mut fragmented = false;
    for b in Boxes::new(bytes) {
        let b = b?;
        match &b.kind {
            b"moov" if moov.is_none() => moov = Some(b.body),
            b"moof" => fragmented = true,
            _ => {}
        }
    }
    let Some(moov) = moov else {
        return Err(if fragmented {
            Mp4Error::Fragmented
        } else {
            Mp4Error::NoMovie
        });
    };
    fragmented |= child(moov, "mvex")?.is_some();
    let track = find_track(moov)?;
    let stbl = track.stbl;

    let sizes = match child(stbl, "stsz")? {
        Some(stsz) => sample_sizes(stsz, bytes.len())?,
        None if fragmented => return Err(Mp4Error::Fragmented),
        None => return Err(Mp4Error::MissingBox("stsz")),
    };
    if sizes.is_empty() {
        return Err(if fragmented {
            Mp4Error::Fragmented
        } else {
            Mp4Error::Empty
        });
    }
    let count = sizes.len();
    let decode = decode_times(require(stbl, "stts")?, count)?;
    let composition = composition_offsets(child(stbl, "ctts")?, count)?;
    let keyframes = sync_samples(child(stbl, "stss")?, count)?;
    let chunks = chunk_offsets(stbl)?;
    let offsets = sample_offsets(require(stbl, "stsc")?, &chunks, &sizes)?;

    // ctts version 1 may go negative; shifting every presentation time by the same amount
    // keeps their order and spacing and makes every pts_offset non-negative.
    let shift = composition.iter().copied().min().unwrap_or(0).min(0);
    let budget = bytes.len().saturating_mul(4).saturating_add(OUTPUT_SLACK);
    let mut used = 0usize;
    let mut aus = Vec::with_capacity(count);
    // Every sample is located before any is parsed, so a file that points outside itself is
    // refused as such rather than for whatever bytes a misplaced sample happens to hold.
    let mut data = Vec::with_capacity(count);
    for (index, (size, offset)) in sizes.iter().zip(&offsets).enumerate() {
        let sample = usize::try_from(*offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(usize::try_from(*size).ok()?)?))
            .and_then(|range| bytes.get(range))
            .ok_or(Mp4Error::SampleOutOfRange { index })?;
        data.push(sample);
    }
    let samples = data.iter().zip(&decode).zip(&composition);
    for (index, ((data, dts), cts)) in samples.enumerate() {
        let nals = split_nals(data, track.length_size)?;
        used = used.saturating_add(nals.iter().map(Vec::len).sum());
        if used > budget {
            return Err(Mp4Error::Limit(
                "access units larger than four times the file",
            ));
        }
        let pts = cts
            .checked_sub(shift)
            .and_then(|c| u64::try_from(c).ok())
            .and_then(|c| dts.checked_add(c))
            .ok_or(Mp4Error::Malformed("composition time out of range"))?;
        let dts = rescale(*dts, track.timescale, TIMESCALE)?;
        let pts_offset = rescale(pts, track.timescale, TIMESCALE)?
            .checked_sub(dts)
            .and_then(|o| u32::try_from(o).ok())
            .ok_or(Mp4Error::Malformed("composition offset out of range"))?;
        aus.push(AccessUnit {
            dts,
            pts_offset,
            keyframe: keyframes.get(index).copied().unwrap_or(false),
            nals,
        });
    }

    // avc3 may leave the parameter sets out of avcC; then the first in-band ones stand in.
    let in_band = |kind| aus.iter().find_map(|au| au.find(kind)).map(<[u8]>::to_vec);
    let sps = track
        .sps
        .map(<[u8]>::to_vec)
        .or_else(|| in_band(nal::SPS))
        .ok_or(Mp4Error::MissingParameterSet("sequence"))?;
    let pps = track
        .pps
        .map(<[u8]>::to_vec)
        .or_else(|| in_band(nal::PPS))
        .ok_or(Mp4Error::MissingParameterSet("picture"))?;
    let info = parse_sps(&sps)?;

    let sets_len = sps.len() + pps.len();
    for au in aus.iter_mut().filter(|au| au.keyframe) {
        if au.find(nal::SPS).is_some() && au.find(nal::PPS).is_some() {
            continue;
        }
        used = used.saturating_add(sets_len);
        if used > budget {
            return Err(Mp4Error::Limit(
                "access units larger than four times the file",
            ));
        }
        // An access unit delimiter must stay first (H.264 7.4.1.2.3).
        let at = usize::from(au.nals.first().is_some_and(|n| nal_type(n) == nal::AUD));
        au.nals.splice(at..at, [sps.clone(), pps.clone()]);
    }

    Ok(Mp4Video {
        width: info.width,
        height: info.height,
        sps,
        pps,
        access_units: aus,
    })
}

/// The parts of the video track [`read()`] needs.
struct VideoTrack<'a> {
    /// `mdhd` ticks per second (non-zero).
    timescale: u32,
    /// Bytes of each NAL unit's length prefix in the samples: 1, 2 or 4.
    length_size: usize,
    sps: Option<&'a [u8]>,
    pps: Option<&'a [u8]>,
    stbl: &'a [u8],
}

fn find_track(moov: &[u8]) -> Result<VideoTrack<'_>, Mp4Error> {
    for b in Boxes::new(moov) {
        let b = b?;
        if &b.kind == b"trak"
            && let Some(track) = video_track(b.body)?
        {
            return Ok(track);
        }
    }
    Err(Mp4Error::NoVideoTrack)
}

/// The track in `trak` if it is H.264 video; `None` if it is another kind of track.
fn video_track(trak: &[u8]) -> Result<Option<VideoTrack<'_>>, Mp4Error> {
    let Some(mdia) = child(trak, "mdia")? else {
        return Ok(None);
    };
    let Some(hdlr) = child(mdia, "hdlr")? else {
        return Ok(None);
    };
    let mut c = Cursor::new(hdlr);
    c.skip(8, "hdlr")?; // version, flags, pre_defined
    if &c.array::<4>("hdlr")? != b"vide" {
        return Ok(None);
    }
    let stbl = require(require(mdia, "minf")?, "stbl")?;
    let mut c = Cursor::new(require(stbl, "stsd")?);
    c.skip(8, "stsd")?; // version, flags, entry_count
    // Only the first sample entry is used; stsc refusing other indices keeps that sound.
    let Some(entry) = Boxes::new(c.rest()).next().transpose()? else {
        return Ok(None);
    };
    if !matches!(&entry.kind, b"avc1" | b"avc3") {
        return Ok(None);
    }
    let entry_children = entry
        .body
        .get(VISUAL_SAMPLE_ENTRY_LEN..)
        .ok_or(Mp4Error::Truncated("visual sample entry"))?;
    let Some(avcc) = child(entry_children, "avcC")? else {
        return Ok(None);
    };

    let mut c = Cursor::new(require(mdia, "mdhd")?);
    let version = c.u8("mdhd")?;
    // flags, then creation and modification times of 32 or 64 bits.
    c.skip(if version == 1 { 3 + 16 } else { 3 + 8 }, "mdhd")?;
    let timescale = c.u32("mdhd")?;
    if timescale == 0 {
        return Err(Mp4Error::Malformed("zero timescale"));
    }

    // avcC: AVCDecoderConfigurationRecord (14496-15 5.3.3.1). Bytes after the PPS (the
    // high-profile extension) are not needed.
    let mut c = Cursor::new(avcc);
    if c.u8("avcC")? != 1 {
        return Err(Mp4Error::Unsupported("avcC version other than 1"));
    }
    c.skip(3, "avcC")?; // profile, compatibility, level: the SPS has them too
    let length_size = match c.u8("avcC")? & 3 {
        0 => 1,
        1 => 2,
        3 => 4,
        _ => return Err(Mp4Error::Malformed("NAL length size of 3 bytes")),
    };
    let sps_count = c.u8("avcC")? & 0x1f;
    let sps = parameter_sets(&mut c, sps_count, nal::SPS)?;
    let pps_count = c.u8("avcC")?;
    let pps = parameter_sets(&mut c, pps_count, nal::PPS)?;
    Ok(Some(VideoTrack {
        timescale,
        length_size,
        sps,
        pps,
        stbl,
    }))
}

/// Reads `count` length-prefixed parameter sets of type `kind` from avcC; returns the first.
fn parameter_sets<'a>(
    c: &mut Cursor<'a>,
    count: u8,
    kind: u8,
) -> Result<Option<&'a [u8]>, Mp4Error> {
    let mut first = None;
    for _ in 0..count {
        let len = c.u16("avcC")?;
        let set = c.bytes(usize::from(len), "avcC")?;
        if nal_type(set) != kind {
            return Err(Mp4Error::Malformed("avcC parameter set of the wrong type"));
        }
        first.get_or_insert(set);
    }
    Ok(first)
}

/// stsz: per-sample sizes, at most [`MAX_SAMPLES`], adding up to at most `file_len` (samples
/// do not overlap in a valid file; this also bounds what the fixed-size form can claim).
fn sample_sizes(stsz: &[u8], file_len: usize) -> Result<Vec<u32>, Mp4Error> {
    let mut c = Cursor::new(stsz);
    c.skip(4, "stsz")?;
    let fixed = c.u32("stsz")?;
    let count = c.u32("stsz")?;
    if count > MAX_SAMPLES {
        return Err(Mp4Error::Limit("more than MAX_SAMPLES samples"));
    }
    let count = usize::try_from(count).map_err(|_| Mp4Error::Limit("sample count"))?;
    let too_big = Mp4Error::Malformed("samples add up to more than the file");
    let file_len = u64::try_from(file_len).map_err(|_| Mp4Error::Limit("file length"))?;
    if fixed != 0 {
        let total = u64::from(fixed).saturating_mul(u64::try_from(count).unwrap_or(u64::MAX));
        if total > file_len {
            return Err(too_big);
        }
        return Ok(vec![fixed; count]);
    }
    let table = c.bytes(
        count.checked_mul(4).ok_or(Mp4Error::Truncated("stsz"))?,
        "stsz",
    )?;
    let mut t = Cursor::new(table);
    let mut sizes = Vec::with_capacity(count);
    let mut total = 0u64;
    for _ in 0..count {
        let size = t.u32("stsz")?;
        total = total.saturating_add(u64::from(size));
        sizes.push(size);
    }
    if total > file_len {
        return Err(too_big);
    }
    Ok(sizes)
}

/// stts: each sample's decode time in media ticks, from zero.
fn decode_times(stts: &[u8], count: usize) -> Result<Vec<u64>, Mp4Error> {
    let mut c = Cursor::new(stts);
    c.skip(4, "stts")?;
    let (entries, mut t) = table(&mut c, 8, "stts")?;
    let mut times = Vec::with_capacity(count);
    let mut time = 0u64;
    for _ in 0..entries {
        if times.len() == count {
            break;
        }
        let n = usize::try_from(t.u32("stts")?).unwrap_or(usize::MAX);
        let delta = u64::from(t.u32("stts")?);
        for _ in 0..n.min(count - times.len()) {
            times.push(time);
            time = time
                .checked_add(delta)
                .ok_or(Mp4Error::Malformed("decode time out of range"))?;
        }
    }
    if times.len() < count {
        return Err(Mp4Error::Malformed(
            "stts describes fewer samples than stsz",
        ));
    }
    Ok(times)
}

/// ctts: each sample's composition offset in media ticks (zero without ctts). Version 0
/// offsets are unsigned, version 1 signed.
fn composition_offsets(ctts: Option<&[u8]>, count: usize) -> Result<Vec<i64>, Mp4Error> {
    let Some(ctts) = ctts else {
        return Ok(vec![0; count]);
    };
    let mut c = Cursor::new(ctts);
    let signed = c.u8("ctts")? == 1;
    c.skip(3, "ctts")?;
    let (entries, mut t) = table(&mut c, 8, "ctts")?;
    let mut offsets = Vec::with_capacity(count);
    for _ in 0..entries {
        if offsets.len() == count {
            break;
        }
        let n = usize::try_from(t.u32("ctts")?).unwrap_or(usize::MAX);
        let raw = t.u32("ctts")?;
        let offset = if signed {
            i64::from(i32::from_be_bytes(raw.to_be_bytes()))
        } else {
            i64::from(raw)
        };
        offsets.extend(std::iter::repeat_n(offset, n.min(count - offsets.len())));
    }
    if offsets.len() < count {
        return Err(Mp4Error::Malformed(
            "ctts describes fewer samples than stsz",
        ));
    }
    Ok(offsets)
}

/// stss: which samples are key frames (all of them without stss).
fn sync_samples(stss: Option<&[u8]>, count: usize) -> Result<Vec<bool>, Mp4Error> {
    let Some(stss) = stss else {
        return Ok(vec![true; count]);
    };
    let mut keyframes = vec![false; count];
    let mut c = Cursor::new(stss);
    c.skip(4, "stss")?;
    let (entries, mut t) = table(&mut c, 4, "stss")?;
    for _ in 0..entries {
        let number = usize::try_from(t.u32("stss")?).unwrap_or(usize::MAX);
        let slot = number
            .checked_sub(1)
            .and_then(|i| keyframes.get_mut(i))
            .ok_or(Mp4Error::Malformed("sync sample number out of range"))?;
        *slot = true;
    }
    Ok(keyframes)
}

/// stco or co64: each chunk's offset in the file.
fn chunk_offsets(stbl: &[u8]) -> Result<Vec<u64>, Mp4Error> {
    let (body, wide) = match (child(stbl, "stco")?, child(stbl, "co64")?) {
        (Some(stco), _) => (stco, false),
        (None, Some(co64)) => (co64, true),
        (None, None) => return Err(Mp4Error::MissingBox("stco")),
    };
    let what = if wide { "co64" } else { "stco" };
    let mut c = Cursor::new(body);
    c.skip(4, what)?;
    let (entries, mut t) = table(&mut c, if wide { 8 } else { 4 }, what)?;
    let mut offsets = Vec::with_capacity(entries);
    for _ in 0..entries {
        offsets.push(if wide {
            t.u64(what)?
        } else {
            u64::from(t.u32(what)?)
        });
    }
    Ok(offsets)
}

/// stsc with the chunk offsets and sample sizes: each sample's offset in the file.
fn sample_offsets(stsc: &[u8], chunks: &[u64], sizes: &[u32]) -> Result<Vec<u64>, Mp4Error> {
    let mut c = Cursor::new(stsc);
    c.skip(4, "stsc")?;
    let (entries, mut t) = table(&mut c, 12, "stsc")?;
    // (first chunk, samples per chunk), first chunks one-based and strictly increasing.
    let mut runs: Vec<(usize, u32)> = Vec::with_capacity(entries);
    for _ in 0..entries {
        let first = usize::try_from(t.u32("stsc")?).unwrap_or(usize::MAX);
        let per_chunk = t.u32("stsc")?;
        if t.u32("stsc")? != 1 {
            return Err(Mp4Error::Unsupported("more than one sample description"));
        }
        let expected = runs
            .last()
            .map_or(first == 1, |(previous, _)| first > *previous);
        if !expected {
            return Err(Mp4Error::Malformed("stsc first chunks out of order"));
        }
        runs.push((first, per_chunk));
    }
    let mut offsets = Vec::with_capacity(sizes.len());
    // Chunk numbers are disjoint ranges clamped to the chunks that exist, so these loops run
    // at most chunks.len() times in all, and the inner one stops once every sample is placed.
    for (i, (first, per_chunk)) in runs.iter().enumerate() {
        let end = runs
            .get(i + 1)
            .map_or(usize::MAX, |(next, _)| *next)
            .min(chunks.len().saturating_add(1));
        for chunk in *first..end {
            let Some(mut at) = chunk.checked_sub(1).and_then(|c| chunks.get(c)).copied() else {
                break;
            };
            for _ in 0..*per_chunk {
                let Some(size) = sizes.get(offsets.len()) else {
                    break;
                };
                offsets.push(at);
                at = at
                    .checked_add(u64::from(*size))
                    .ok_or(Mp4Error::Malformed("sample offset out of range"))?;
            }
            if offsets.len() == sizes.len() {
                return Ok(offsets);
            }
        }
    }
    Err(Mp4Error::Malformed("chunks hold fewer samples than stsz"))
}

/// Splits a sample into its NAL units (each after a big-endian length of `length_size`
/// bytes). Zero-length units are dropped: they carry no header and nothing to decode.
fn split_nals(sample: &[u8], length_size: usize) -> Result<Vec<Vec<u8>>, Mp4Error> {
    let mut c = Cursor::new(sample);
    let mut nals = Vec::new();
    while !c.rest().is_empty() {
        let len = c
            .bytes(length_size, "NAL unit length")?
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let unit = c
            .bytes(len, "sample")
            .map_err(|_| Mp4Error::Malformed("NAL unit overruns its sample"))?;
        if !unit.is_empty() {
            nals.push(unit.to_vec());
        }
    }
    Ok(nals)
}

/// Reads a table's entry count and returns it with a cursor over exactly its entries,
/// refusing a count the box cannot hold before anything is allocated for it.
fn table<'a>(
    c: &mut Cursor<'a>,
    entry_len: usize,
    what: &'static str,
) -> Result<(usize, Cursor<'a>), Mp4Error> {
    let entries = usize::try_from(c.u32(what)?).map_err(|_| Mp4Error::Truncated(what))?;
    let len = entries
        .checked_mul(entry_len)
        .ok_or(Mp4Error::Truncated(what))?;
    Ok((entries, Cursor::new(c.bytes(len, what)?)))
}

/// The body of the first child box of type `kind` in `parent`'s body, if any.
fn child<'a>(parent: &'a [u8], kind: &'static str) -> Result<Option<&'a [u8]>, Mp4Error> {
    for b in Boxes::new(parent) {
        let b = b?;
        if b.kind.as_slice() == kind.as_bytes() {
            return Ok(Some(b.body));
        }
    }
    Ok(None)
}

fn require<'a>(parent: &'a [u8], kind: &'static str) -> Result<&'a [u8], Mp4Error> {
    child(parent, kind)?.ok_or(Mp4Error::MissingBox(kind))
}

/// One box: its type and its body (after the header).
struct Mp4Box<'a> {
    kind: [u8; 4],
    body: &'a [u8],
}

/// The boxes in a container's body, in order. After an error it yields nothing more.
struct Boxes<'a> {
    rest: &'a [u8],
}

impl<'a> Boxes<'a> {
    fn new(body: &'a [u8]) -> Self {
        Self { rest: body }
    }

    fn split(data: &'a [u8]) -> Result<(Mp4Box<'a>, &'a [u8]), Mp4Error> {
        let mut c = Cursor::new(data);
        let size = c.u32("box header")?;
        let kind = c.array::<4>("box header")?;
        let size = match size {
            // Size 0: the box runs to the end of its container (the file, at the top level).
            0 => data.len(),
            1 => usize::try_from(c.u64("box header")?).unwrap_or(usize::MAX),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        if &kind == b"uuid" {
            c.skip(16, "box header")?; // extended type
        }
        if size < c.pos {
            return Err(Mp4Error::Malformed("box smaller than its header"));
        }
        let body = data
            .get(c.pos..size)
            .ok_or(Mp4Error::Malformed("box overruns its container"))?;
        let rest = data.get(size..).unwrap_or_default();
        Ok((Mp4Box { kind, body }, rest))
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<Mp4Box<'a>, Mp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        // Some QuickTime writers end a container with a 32-bit zero terminator.
        if self.rest.is_empty() || self.rest == [0; 4] {
            return None;
        }
        match Self::split(self.rest) {
            Ok((b, rest)) => {
                self.rest = rest;
                Some(Ok(b))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Big-endian field reader over a slice; every read is bounds-checked and names what it read
/// in its error.
struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Mp4Error> {
        let end = self.pos.checked_add(n).ok_or(Mp4Error::Truncated(what))?;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or(Mp4Error::Truncated(what))?;
        self.pos = end;
        Ok(bytes)
    }

    fn skip(&mut self, n: usize, what: &'static str) -> Result<(), Mp4Error> {
        self.bytes(n, what).map(|_| ())
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], Mp4Error> {
        self.bytes(N, what)?
            .try_into()
            .map_err(|_| Mp4Error::Truncated(what))
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, Mp4Error> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, Mp4Error> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, Mp4Error> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, Mp4Error> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // x264 baseline 1280x720 (see h264.rs) and a matching picture parameter set.
    const SPS: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];
    const AUD: [u8; 2] = [0x09, 0xf0];

    fn idr(n: u8) -> Vec<u8> {
        vec![0x65, 0x88, 0x84, n]
    }

    fn slice(n: u8) -> Vec<u8> {
        vec![0x41, 0x9a, n, 0x7f, n]
    }

    /// Twelve access units with key frames every five, uneven durations, an access unit
    /// delimiter, an SEI and a two-slice picture; `pts` gives B-frame style offsets.
    fn clip(pts: bool) -> Vec<AccessUnit> {
        let mut aus = Vec::new();
        let mut dts = 0u64;
        for i in 0..12u8 {
            let nals = match i {
                0 => vec![SPS.to_vec(), PPS.to_vec(), vec![0x06, 5, 1, 0x80], idr(i)],
                5 => vec![AUD.to_vec(), SPS.to_vec(), PPS.to_vec(), idr(i)],
                10 => vec![idr(i)],
                3 => vec![slice(i), vec![0x41, 0x40, i]],
                _ => vec![slice(i)],
            };
            let mut au = AccessUnit::new(dts, nals);
            if pts {
                au.pts_offset = [6000, 0, 3000, 9000][usize::from(i % 4)];
            }
            aus.push(au);
            dts += if i % 3 == 0 { 3003 } else { 3000 };
        }
        aus
    }

    /// What read returns for `aus` written out: parameter sets and delimiters gone from the
    /// samples, then the SPS and PPS in front of every key frame.
    fn expected(aus: &[AccessUnit]) -> Vec<AccessUnit> {
        aus.iter()
            .map(|au| {
                let mut nals: Vec<Vec<u8>> = au.picture_nals().map(<[u8]>::to_vec).collect();
                if au.keyframe {
                    nals.splice(0..0, [SPS.to_vec(), PPS.to_vec()]);
                }
                AccessUnit { nals, ..au.clone() }
            })
            .collect()
    }

    #[test]
    fn a_cut_starts_at_the_key_frame_before_and_reads_back_from_zero() {
        let whole = write(&clip(false)).unwrap();
        // 21006 ticks falls in access unit 6; the key frame before it is 5, at 15006; 27009 is
        // where 9 starts.
        let (part, at) = cut(&whole, 21_006, 27_009).unwrap();
        assert_eq!(at, 15_006);
        let read_back = read(&part).unwrap();
        let want: Vec<AccessUnit> = expected(&clip(false))[5..9]
            .iter()
            .map(|au| AccessUnit {
                dts: au.dts - 15_006,
                ..au.clone()
            })
            .collect();
        assert_eq!(read_back.access_units, want);
        // Before the first key frame, and past the end: the whole clip from its first picture.
        let (all, at) = cut(&whole, 0, u64::MAX).unwrap();
        assert_eq!((at, read(&all).unwrap().access_units.len()), (0, 12));
        // An empty span at a key frame keeps that picture.
        let (one, _) = cut(&whole, 30_012, 30_012).unwrap();
        assert_eq!(read(&one).unwrap().access_units.len(), 1);
    }

    #[test]
    fn head_then_samples_is_the_whole_file() {
        for pts in [false, true] {
            let aus = clip(pts);
            let samples: Vec<Sample> = aus
                .iter()
                .map(|au| Sample {
                    dts: au.dts,
                    pts_offset: au.pts_offset,
                    keyframe: au.keyframe,
                    size: sample_size(au).unwrap(),
                })
                .collect();
            let mut file = head(&samples, &SPS, &PPS).unwrap();
            for (au, sample) in aus.iter().zip(&samples) {
                assert_eq!(append_sample(au, &mut file).unwrap(), sample.size);
            }
            assert_eq!(file, write(&aus).unwrap());
        }
        let mut late = Sample {
            dts: 0,
            pts_offset: 0,
            keyframe: false,
            size: 4,
        };
        assert_eq!(head(&[late], &SPS, &PPS), Err(Mp4Error::FirstNotKeyframe));
        late.keyframe = true;
        assert_eq!(
            head(&[late, late], &SPS, &PPS),
            Err(Mp4Error::DtsNotIncreasing { index: 1 })
        );
        assert!(matches!(head(&[late], &PPS, &PPS), Err(Mp4Error::Sps(_))));
    }

    fn position(file: &[u8], kind: &[u8; 4]) -> usize {
        file.windows(4).position(|w| w == kind).unwrap() - 4
    }

    fn top_level(file: &[u8]) -> Vec<[u8; 4]> {
        Boxes::new(file).map(|b| b.unwrap().kind).collect()
    }

    fn stbl(file: &[u8]) -> &[u8] {
        let moov = child(file, "moov").unwrap().unwrap();
        let path = ["trak", "mdia", "minf", "stbl"];
        path.iter()
            .fold(moov, |body, kind| require(body, kind).unwrap())
    }

    #[test]
    fn round_trip_preserves_every_access_unit() {
        for pts in [false, true] {
            let aus = clip(pts);
            let file = write(&aus).unwrap();
            assert_eq!(
                top_level(&file),
                [*b"ftyp", *b"moov", *b"mdat"],
                "fast start: moov before mdat"
            );
            assert_eq!(child(stbl(&file), "ctts").unwrap().is_some(), pts);
            let video = read(&file).unwrap();
            assert_eq!((video.width, video.height), (1280, 720));
            assert_eq!(
                (video.sps.as_slice(), video.pps.as_slice()),
                (&SPS[..], &PPS[..])
            );
            assert_eq!(video.access_units, expected(&aus));
            // What read returns writes back to the same file.
            assert_eq!(write(&video.access_units).unwrap(), file);
        }
    }

    #[test]
    fn writes_the_boxes_players_expect() {
        let file = write(&clip(false)).unwrap();
        assert_eq!(&file[..32], b"\0\0\0\x20ftypisom\0\0\x02\0isomiso2avc1mp41");
        let stbl = stbl(&file);
        // Durations: 3003, 3000, 3000 repeating, the last repeated once more.
        let stts = require(stbl, "stts").unwrap();
        let mut c = Cursor::new(stts);
        c.skip(4, "").unwrap();
        let mut runs = Vec::new();
        for _ in 0..c.u32("").unwrap() {
            runs.push((c.u32("").unwrap(), c.u32("").unwrap()));
        }
        let mut expect = Vec::new();
        for _ in 0..4 {
            expect.extend([(1, 3003), (2, 3000)]);
        }
        expect.pop();
        expect.push((2, 3000));
        assert_eq!(runs, expect);
        let stss = require(stbl, "stss").unwrap();
        assert_eq!(
            stss,
            [0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 6, 0, 0, 0, 11]
        );
        // The one chunk starts right after the mdat header.
        let stco = require(stbl, "stco").unwrap();
        let mdat = position(&file, b"mdat");
        assert_eq!(stco[8..], u32::try_from(mdat + 8).unwrap().to_be_bytes());
        let avcc = &file[position(&file, b"avcC") + 8..];
        assert_eq!(avcc[..8], [1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 10]);
        // tkhd: enabled and in movie; 1280x720 in 16.16 at its end.
        let moov = child(&file, "moov").unwrap().unwrap();
        let tkhd = require(require(moov, "trak").unwrap(), "tkhd").unwrap();
        assert_eq!(tkhd[..4], [0, 0, 0, 3]);
        assert_eq!(tkhd[tkhd.len() - 8..], [5, 0, 0, 0, 2, 0xd0, 0, 0]);
    }

    #[test]
    fn single_sample_lasts_a_fifteenth_of_a_second() {
        let au = AccessUnit::new(777, vec![SPS.to_vec(), PPS.to_vec(), idr(1)]);
        let file = write(std::slice::from_ref(&au)).unwrap();
        let stts = require(stbl(&file), "stts").unwrap();
        assert_eq!(stts[4..], [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0x17, 0x70]);
        let video = read(&file).unwrap();
        assert_eq!(video.access_units.len(), 1);
        assert_eq!(video.access_units[0].dts, 0, "times start at zero");
        assert_eq!(
            video.access_units[0].nals,
            [SPS.to_vec(), PPS.to_vec(), idr(1)]
        );
    }

    #[test]
    fn write_refuses_what_it_cannot_store() {
        assert_eq!(write(&[]), Err(Mp4Error::Empty));
        let aus = clip(false);
        assert_eq!(write(&aus[1..]), Err(Mp4Error::FirstNotKeyframe));
        let without = |kind: u8| {
            let mut aus = clip(false);
            for au in &mut aus {
                au.nals.retain(|n| nal_type(n) != kind);
            }
            write(&aus)
        };
        assert_eq!(
            without(nal::SPS),
            Err(Mp4Error::MissingParameterSet("sequence"))
        );
        assert_eq!(
            without(nal::PPS),
            Err(Mp4Error::MissingParameterSet("picture"))
        );
        let mut same = clip(false);
        same[4].dts = same[3].dts;
        assert_eq!(write(&same), Err(Mp4Error::DtsNotIncreasing { index: 4 }));
        let mut back = clip(false);
        back[7].dts = 1;
        assert_eq!(write(&back), Err(Mp4Error::DtsNotIncreasing { index: 7 }));
        let mut bad_sps = clip(false);
        bad_sps[0].nals[0] = vec![0x67, 0x42];
        assert!(matches!(write(&bad_sps), Err(Mp4Error::Sps(_))));
        let mut gap = clip(false);
        gap[1].dts = 1 << 40;
        assert_eq!(
            write(&gap[..2]),
            Err(Mp4Error::TooLarge("gap between decode times"))
        );
        let mut late = clip(false);
        late[2].pts_offset = u32::MAX;
        assert_eq!(write(&late), Err(Mp4Error::TooLarge("pts_offset")));
    }

    #[test]
    fn every_truncation_is_refused_without_panic() {
        for pts in [false, true] {
            let file = write(&clip(pts)).unwrap();
            for len in 0..file.len() {
                assert!(read(&file[..len]).is_err(), "length {len} was accepted");
            }
        }
    }

    #[test]
    fn corrupted_bytes_never_panic() {
        let file = write(&clip(true)).unwrap();
        for i in 0..file.len() {
            for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = file.clone();
                bad[i] = v;
                let _ = read(&bad);
                bad[i] ^= file[i].wrapping_add(1);
                let _ = read(&bad);
            }
        }
    }

    #[test]
    fn samples_outside_the_file_are_refused() {
        let file = write(&clip(false)).unwrap();
        let stco = position(&file, b"stco");
        let mdat = position(&file, b"mdat");
        // Shift the chunk by one byte: the last sample then ends one past the file.
        let mut bad = file.clone();
        let shifted = u32::try_from(mdat + 9).unwrap();
        bad[stco + 16..stco + 20].copy_from_slice(&shifted.to_be_bytes());
        assert_eq!(read(&bad), Err(Mp4Error::SampleOutOfRange { index: 11 }));
        bad[stco + 16..stco + 20].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(read(&bad), Err(Mp4Error::SampleOutOfRange { index: 0 }));
        // Sizes that add up to more than the file are refused before anything is placed.
        let stsz = position(&file, b"stsz");
        let mut big = file.clone();
        big[stsz + 20..stsz + 24].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(read(&big), Err(Mp4Error::Malformed(_))));
        // A fixed sample size claiming MAX_SAMPLES samples.
        let mut many = file;
        many[stsz + 12..stsz + 16].copy_from_slice(&1u32.to_be_bytes());
        many[stsz + 16..stsz + 20].copy_from_slice(&MAX_SAMPLES.to_be_bytes());
        assert!(read(&many).is_err());
    }

    #[test]
    fn fragmented_files_are_refused() {
        let info = parse_sps(&SPS).unwrap();
        let empty = Track {
            info,
            sps: &SPS,
            pps: &PPS,
            durations: Vec::new(),
            pts_offsets: None,
            keyframes: Vec::new(),
            sizes: Vec::new(),
        };
        let mut file = ftyp().unwrap();
        file.extend(empty.moov(Some(0)).unwrap());
        assert_eq!(read(&file), Err(Mp4Error::Empty));
        boxed(&mut file, b"moof", |o| {
            full_box(o, b"mfhd", 0, 0, |o| {
                o.u32(1);
                Ok(())
            })
        })
        .unwrap();
        boxed(&mut file, b"mdat", |o| {
            o.extend_from_slice(&[0, 0, 0, 4]);
            o.extend_from_slice(&idr(0));
            Ok(())
        })
        .unwrap();
        assert_eq!(read(&file), Err(Mp4Error::Fragmented));
        assert_eq!(
            Mp4Error::Fragmented.to_string(),
            "fragmented MP4 is not supported"
        );
        // moof alone, without moov.
        let moof = position(&file, b"moof");
        assert_eq!(read(&file[moof..]), Err(Mp4Error::Fragmented));
    }

    #[test]
    fn reads_large_and_open_ended_mdat_headers() {
        let aus = clip(false);
        let file = write(&aus).unwrap();
        let mdat = position(&file, b"mdat");
        // size 0: to the end of the file.
        let mut open = file.clone();
        open[mdat..mdat + 4].copy_from_slice(&[0; 4]);
        assert_eq!(read(&open).unwrap().access_units, expected(&aus));
        // size 1 with a 64-bit largesize: eight more header bytes, so the chunk moves.
        let payload = &file[mdat + 8..];
        let mut large = file[..mdat].to_vec();
        large.extend_from_slice(&1u32.to_be_bytes());
        large.extend_from_slice(b"mdat");
        large.extend_from_slice(&(u64::try_from(payload.len()).unwrap() + 16).to_be_bytes());
        large.extend_from_slice(payload);
        let stco = position(&large, b"stco");
        let offset = u32::try_from(mdat + 16).unwrap();
        large[stco + 16..stco + 20].copy_from_slice(&offset.to_be_bytes());
        assert_eq!(read(&large).unwrap().access_units, expected(&aus));
    }

    #[test]
    fn reads_optional_and_alternative_tables() {
        // Without stss (renamed to a free box), every sample is a key frame.
        let aus = clip(false);
        let file = write(&aus).unwrap();
        let mut no_stss = file.clone();
        let stss = position(&file, b"stss");
        no_stss[stss + 4..stss + 8].copy_from_slice(b"free");
        let video = read(&no_stss).unwrap();
        assert!(video.access_units.iter().all(|au| au.keyframe));
        assert_eq!(
            video.access_units[1].nals[..2],
            [SPS.to_vec(), PPS.to_vec()]
        );

        // Fixed sample size: the table after it is then ignored.
        let same: Vec<AccessUnit> = (0..4u8)
            .map(|i| {
                let nals = if i == 0 {
                    vec![SPS.to_vec(), PPS.to_vec(), idr(i)]
                } else {
                    vec![vec![0x41, 0x9a, i, i]]
                };
                AccessUnit::new(u64::from(i) * 6000, nals)
            })
            .collect();
        let mut file = write(&same).unwrap();
        let stsz = position(&file, b"stsz");
        file[stsz + 12..stsz + 16].copy_from_slice(&8u32.to_be_bytes());
        file[stsz + 20..stsz + 36].fill(0xee);
        assert_eq!(read(&file).unwrap().access_units, expected(&same));

        // ctts version 1 with a negative offset: all presentation times move up together.
        let mut aus = clip(false)[..3].to_vec();
        for (au, pts) in aus.iter_mut().zip([3000, 0, 6000]) {
            au.pts_offset = pts;
        }
        let mut file = write(&aus).unwrap();
        let ctts = position(&file, b"ctts");
        file[ctts + 8] = 1;
        file[ctts + 20..ctts + 24].copy_from_slice(&(-3000i32).to_be_bytes());
        let offsets: Vec<u32> = read(&file)
            .unwrap()
            .access_units
            .iter()
            .map(|au| au.pts_offset)
            .collect();
        assert_eq!(offsets, [0, 3000, 9000]);
    }

    #[test]
    fn converts_other_timescales() {
        // 15360 ticks per second (what ffmpeg picks for 15 fps): 1024 ticks = 6000 at 90 kHz.
        let aus: Vec<AccessUnit> = clip(true)
            .into_iter()
            .enumerate()
            .map(|(i, mut au)| {
                au.dts = 6000 * u64::try_from(i).unwrap();
                au.pts_offset = if i % 2 == 0 { 12_000 } else { 0 };
                au
            })
            .collect();
        let mut file = write(&aus).unwrap();
        let mdhd = position(&file, b"mdhd");
        file[mdhd + 20..mdhd + 24].copy_from_slice(&15_360u32.to_be_bytes());
        let stts = position(&file, b"stts");
        file[stts + 20..stts + 24].copy_from_slice(&1024u32.to_be_bytes());
        let ctts = position(&file, b"ctts");
        let entries = u32::from_be_bytes(file[ctts + 12..ctts + 16].try_into().unwrap());
        for e in 0..usize::try_from(entries).unwrap() {
            let at = ctts + 20 + 8 * e;
            if file[at..at + 4] != [0; 4] {
                file[at..at + 4].copy_from_slice(&2048u32.to_be_bytes());
            }
        }
        assert_eq!(read(&file).unwrap().access_units, expected(&aus));
    }

    #[test]
    fn splits_every_nal_length_size() {
        let sample = [0, 2, 0x41, 1, 0, 3, 0x41, 0, 0, 0, 1, 0x41];
        assert_eq!(
            split_nals(&sample, 2).unwrap(),
            [vec![0x41, 1], vec![0x41, 0, 0], vec![0x41]]
        );
        assert_eq!(
            split_nals(&[2, 0x65, 1, 0, 1, 0x41], 1).unwrap(),
            [vec![0x65, 1], vec![0x41]],
            "zero-length units are dropped"
        );
        assert_eq!(
            split_nals(&[0, 0, 0, 5, 0x65], 4),
            Err(Mp4Error::Malformed("NAL unit overruns its sample"))
        );
        assert_eq!(
            split_nals(&[0, 0, 0], 4),
            Err(Mp4Error::Truncated("NAL unit length"))
        );
    }

    #[test]
    fn refuses_files_without_h264_video() {
        assert_eq!(read(&[]), Err(Mp4Error::NoMovie));
        assert_eq!(read(&ftyp().unwrap()), Err(Mp4Error::NoMovie));
        let file = write(&clip(false)).unwrap();
        let mut sound = file.clone();
        let hdlr = position(&file, b"hdlr");
        sound[hdlr + 16..hdlr + 20].copy_from_slice(b"soun");
        assert_eq!(read(&sound), Err(Mp4Error::NoVideoTrack));
        let mut hevc = file.clone();
        // The sample entry, not the ftyp brand of the same name.
        let stsd = position(&file, b"stsd");
        let avc1 = stsd + position(&file[stsd..], b"avc1");
        hevc[avc1 + 4..avc1 + 8].copy_from_slice(b"hvc1");
        assert_eq!(read(&hevc), Err(Mp4Error::NoVideoTrack));
        // A box claiming more than its container holds.
        let mut over = file;
        let moov = position(&over, b"moov");
        over[moov..moov + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            read(&over),
            Err(Mp4Error::Malformed("box overruns its container"))
        );
    }
}
