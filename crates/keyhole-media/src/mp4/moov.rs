//! The movie box (`moov`) both writers share: a video track (`avc1` or `hvc1`) and, when there
//! is sound, an audio track (`mp4a` or `Opus`), with their sample tables (a progressive file) or without them (a
//! fragmented file's initialization segment).

use super::boxes::*;
use super::*;

/// Track ID of the video track; the audio track, when there is one, follows it.
pub(super) const VIDEO_TRACK_ID: u32 = 1;
/// Track ID of the audio track.
pub(super) const AUDIO_TRACK_ID: u32 = 2;

/// What a track's sample entry describes.
pub(super) enum Entry<'a> {
    /// H.264 with its parameter sets.
    Avc {
        info: SpsInfo,
        sps: &'a [u8],
        pps: &'a [u8],
    },
    /// H.265 with its parameter sets.
    Hevc(&'a HevcConfig),
    /// AAC or Opus.
    Sound(&'a AudioConfig),
}

impl Entry<'_> {
    /// `mdhd` ticks per second: the video clock, or the audio's sample rate (so every frame
    /// lasts a whole number of ticks).
    pub(super) fn timescale(&self) -> u32 {
        match self {
            Self::Avc { .. } | Self::Hevc(_) => TIMESCALE,
            Self::Sound(config) => config.timescale(),
        }
    }
}

/// A progressive file's per-sample tables for one track, in decode order.
#[derive(Default)]
pub(super) struct Tables {
    /// Per sample, in the track's timescale.
    pub(super) durations: Vec<u32>,
    /// Per sample, when any is non-zero.
    pub(super) pts_offsets: Option<Vec<u32>>,
    /// One-based numbers of the sync samples; `None` when every sample is one (no `stss`).
    pub(super) keyframes: Option<Vec<u32>>,
    /// Per sample, in bytes.
    pub(super) sizes: Vec<u32>,
    /// Per chunk (a run of this track's samples that lie together): where it starts in the
    /// media data, counted from the first sample's first byte, and how many samples it holds.
    pub(super) chunks: Vec<(u64, u32)>,
}

/// One track of the movie.
pub(super) struct TrackBox<'a> {
    pub(super) id: u32,
    pub(super) entry: Entry<'a>,
    /// Where the track begins on the movie's timeline, in [`MOVIE_TIMESCALE`] ticks: an empty
    /// edit before its first sample when that comes after the video's first picture.
    pub(super) starts_at: u64,
    pub(super) tables: Tables,
}

impl<'a> TrackBox<'a> {
    /// The video track of the stream `config` describes.
    pub(super) fn video(config: &'a VideoConfig, tables: Tables) -> Result<Self, Mp4Error> {
        Ok(Self {
            id: VIDEO_TRACK_ID,
            entry: match config {
                VideoConfig::H264 { sps, pps } => Entry::Avc {
                    info: parse_sps(sps)?,
                    sps,
                    pps,
                },
                VideoConfig::H265(config) => Entry::Hevc(config),
            },
            starts_at: 0,
            tables,
        })
    }

    /// The sound track `config` describes, starting `starts_at` movie ticks in.
    pub(super) fn sound(config: &'a AudioConfig, starts_at: u64, tables: Tables) -> Self {
        Self {
            id: AUDIO_TRACK_ID,
            entry: Entry::Sound(config),
            starts_at,
            tables,
        }
    }

    fn media_duration(&self) -> u64 {
        self.tables.durations.iter().map(|d| u64::from(*d)).sum()
    }

    /// Its length on the movie's timeline, the empty edit included.
    fn movie_duration(&self) -> Result<u64, Mp4Error> {
        let media = rescale(
            self.media_duration(),
            self.entry.timescale(),
            MOVIE_TIMESCALE,
        )?;
        media
            .checked_add(self.starts_at)
            .ok_or(Mp4Error::TooLarge("duration"))
    }
}

/// The `moov` box of `tracks`. With `data_start` (where the first sample's first byte is in
/// the file), a progressive file's, with full sample tables; without, a fragmented file's:
/// empty sample tables and an `mvex`.
pub(super) fn moov(tracks: &[TrackBox<'_>], data_start: Option<u64>) -> Result<Vec<u8>, Mp4Error> {
    let mut movie_duration = 0;
    for track in tracks {
        movie_duration = movie_duration.max(track.movie_duration()?);
    }
    let next_track = count(tracks.len() + 1)?;
    let mut out = Vec::new();
    boxed(&mut out, b"moov", |o| {
        mvhd(o, movie_duration, next_track)?;
        for track in tracks {
            trak(o, track, data_start)?;
        }
        if data_start.is_none() {
            boxed(o, b"mvex", |o| {
                for track in tracks {
                    full_box(o, b"trex", 0, 0, |o| {
                        o.u32(track.id);
                        o.u32(1); // default_sample_description_index
                        o.zeros(12); // default duration, size, flags: each fragment says
                        Ok(())
                    })?;
                }
                Ok(())
            })?;
        }
        Ok(())
    })?;
    Ok(out)
}

fn trak(o: &mut Vec<u8>, track: &TrackBox<'_>, data_start: Option<u64>) -> Result<(), Mp4Error> {
    let duration = track.movie_duration()?;
    boxed(o, b"trak", |o| {
        tkhd(o, track, duration)?;
        if track.starts_at > 0 {
            edts(o, track.starts_at, duration - track.starts_at)?;
        }
        boxed(o, b"mdia", |o| {
            mdhd(o, track.entry.timescale(), track.media_duration())?;
            let (handler, name): (&[u8; 4], &[u8]) = match track.entry {
                Entry::Avc { .. } | Entry::Hevc(_) => (b"vide", b"VideoHandler\0"),
                Entry::Sound(_) => (b"soun", b"SoundHandler\0"),
            };
            full_box(o, b"hdlr", 0, 0, |o| {
                o.u32(0); // pre_defined
                o.extend_from_slice(handler);
                o.zeros(12); // reserved
                o.extend_from_slice(name);
                Ok(())
            })?;
            boxed(o, b"minf", |o| {
                match track.entry {
                    // vmhd's flags must be 1 (14496-12 12.1.2).
                    Entry::Avc { .. } | Entry::Hevc(_) => full_box(o, b"vmhd", 0, 1, |o| {
                        o.zeros(8); // graphicsmode, opcolor: copy
                        Ok(())
                    })?,
                    Entry::Sound(_) => full_box(o, b"smhd", 0, 0, |o| {
                        o.zeros(4); // balance: centre, reserved
                        Ok(())
                    })?,
                }
                boxed(o, b"dinf", |o| {
                    full_box(o, b"dref", 0, 0, |o| {
                        o.u32(1);
                        // Flag 1: the media data is in this file.
                        full_box(o, b"url ", 0, 1, |_| Ok(()))
                    })
                })?;
                boxed(o, b"stbl", |o| {
                    full_box(o, b"stsd", 0, 0, |o| {
                        o.u32(1);
                        match &track.entry {
                            Entry::Avc { info, sps, pps } => avc1(o, info, sps, pps),
                            Entry::Hevc(config) => hvc1(o, config),
                            Entry::Sound(AudioConfig::Aac(config)) => mp4a(o, config),
                            Entry::Sound(AudioConfig::Opus(config)) => opus(o, config),
                        }
                    })?;
                    match data_start {
                        Some(at) => stbl(o, &track.tables, at),
                        None => empty_stbl(o),
                    }
                })
            })
        })
    })
}

/// A fragmented file's sample tables: none, every sample being in a fragment.
fn empty_stbl(o: &mut Vec<u8>) -> Result<(), Mp4Error> {
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

fn stbl(o: &mut Vec<u8>, tables: &Tables, data_start: u64) -> Result<(), Mp4Error> {
    let durations = runs(&tables.durations);
    full_box(o, b"stts", 0, 0, |o| {
        o.u32(count(durations.len())?);
        for (n, delta) in &durations {
            o.u32(*n);
            o.u32(*delta);
        }
        Ok(())
    })?;
    if let Some(offsets) = &tables.pts_offsets {
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
    if let Some(keyframes) = &tables.keyframes {
        full_box(o, b"stss", 0, 0, |o| {
            o.u32(count(keyframes.len())?);
            for k in keyframes {
                o.u32(*k);
            }
            Ok(())
        })?;
    }
    // (first chunk, samples per chunk) wherever the count changes.
    let mut per_chunk: Vec<(u32, u32)> = Vec::new();
    for (number, (_, n)) in (1u32..).zip(&tables.chunks) {
        if per_chunk.last().is_none_or(|(_, last)| last != n) {
            per_chunk.push((number, *n));
        }
    }
    full_box(o, b"stsc", 0, 0, |o| {
        o.u32(count(per_chunk.len())?);
        for (first, n) in &per_chunk {
            o.u32(*first);
            o.u32(*n);
            o.u32(1); // sample description index
        }
        Ok(())
    })?;
    full_box(o, b"stsz", 0, 0, |o| {
        o.u32(0); // sizes differ: table follows
        o.u32(count(tables.sizes.len())?);
        for s in &tables.sizes {
            o.u32(*s);
        }
        Ok(())
    })?;
    let mut offsets = Vec::with_capacity(tables.chunks.len());
    for (at, _) in &tables.chunks {
        offsets.push(
            data_start
                .checked_add(*at)
                .ok_or(Mp4Error::TooLarge("file"))?,
        );
    }
    let entries = count(offsets.len())?;
    if offsets.iter().all(|at| u32::try_from(*at).is_ok()) {
        full_box(o, b"stco", 0, 0, |o| {
            o.u32(entries);
            for at in &offsets {
                o.u32(u32::try_from(*at).map_err(|_| Mp4Error::TooLarge("chunk offset"))?);
            }
            Ok(())
        })
    } else {
        full_box(o, b"co64", 0, 0, |o| {
            o.u32(entries);
            for at in &offsets {
                o.u64(*at);
            }
            Ok(())
        })
    }
}

/// The fields of a `VisualSampleEntry` (14496-12 12.1.3) before its child boxes.
fn visual_sample_entry(o: &mut Vec<u8>, width: u32, height: u32) -> Result<(), Mp4Error> {
    let width = u16::try_from(width).map_err(|_| Mp4Error::TooLarge("width"))?;
    let height = u16::try_from(height).map_err(|_| Mp4Error::TooLarge("height"))?;
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
    Ok(())
}

/// The `hvc1` sample entry (14496-15 8.4.1): every parameter set in `hvcC`, none in the
/// samples.
fn hvc1(o: &mut Vec<u8>, config: &HevcConfig) -> Result<(), Mp4Error> {
    boxed(o, b"hvc1", |o| {
        visual_sample_entry(o, config.info.width, config.info.height)?;
        boxed(o, b"hvcC", |o| {
            o.extend_from_slice(&config.to_hvcc());
            Ok(())
        })
    })
}

/// The `avc1` sample entry (14496-12 12.1.3, 14496-15 5.4.2).
fn avc1(o: &mut Vec<u8>, info: &SpsInfo, sps: &[u8], pps: &[u8]) -> Result<(), Mp4Error> {
    let sps_len = u16::try_from(sps.len()).map_err(|_| Mp4Error::TooLarge("SPS"))?;
    let pps_len = u16::try_from(pps.len()).map_err(|_| Mp4Error::TooLarge("PPS"))?;
    boxed(o, b"avc1", |o| {
        visual_sample_entry(o, info.width, info.height)?;
        boxed(o, b"avcC", |o| {
            o.u8(1); // configurationVersion
            o.u8(info.profile);
            o.u8(info.compatibility);
            o.u8(info.level);
            o.u8(0xfc | 3); // reserved bits, lengthSizeMinusOne = 3
            o.u8(0xe0 | 1); // reserved bits, one SPS
            o.u16(sps_len);
            o.extend_from_slice(sps);
            o.u8(1); // one PPS
            o.u16(pps_len);
            o.extend_from_slice(pps);
            Ok(())
        })
    })
}

/// The `mp4a` sample entry (14496-12 12.2.3, 14496-14 5.6) with its `esds`: an
/// `ES_Descriptor` holding the `DecoderConfigDescriptor` (MPEG-4 audio) whose
/// `DecoderSpecificInfo` is the `AudioSpecificConfig` (14496-1 7.2.6).
fn mp4a(o: &mut Vec<u8>, config: &AacConfig) -> Result<(), Mp4Error> {
    let asc = config.bytes();
    // Every descriptor's length fits one byte: the configuration is at most 64 bytes.
    let len = |n: usize| u8::try_from(n).map_err(|_| Mp4Error::TooLarge("AAC configuration"));
    let specific = len(asc.len())?;
    let decoder = len(13 + 2 + asc.len())?;
    let es = len(3 + 2 + usize::from(decoder) + 3)?;
    boxed(o, b"mp4a", |o| {
        audio_sample_entry(o, config.channels(), config.sample_rate());
        full_box(o, b"esds", 0, 0, |o| {
            o.u8(0x03); // ES_DescrTag
            o.u8(es);
            o.u16(0); // ES_ID: none, as in MP4 files
            o.u8(0); // no dependency, URL or OCR stream; priority 0
            o.u8(0x04); // DecoderConfigDescrTag
            o.u8(decoder);
            o.u8(0x40); // objectTypeIndication: MPEG-4 audio
            o.u8((0x05 << 2) | 1); // streamType audio, upStream 0, reserved 1
            o.zeros(3); // bufferSizeDB: unknown
            o.zeros(8); // maxBitrate, avgBitrate: unknown
            o.u8(0x05); // DecSpecificInfoTag
            o.u8(specific);
            o.extend_from_slice(asc);
            o.u8(0x06); // SLConfigDescrTag
            o.u8(1);
            o.u8(0x02); // predefined: MP4 files
            Ok(())
        })
    })
}

/// The `Opus` sample entry with its `dOps` (Opus in ISOBMFF 4.3).
fn opus(o: &mut Vec<u8>, config: &OpusConfig) -> Result<(), Mp4Error> {
    boxed(o, b"Opus", |o| {
        audio_sample_entry(o, config.channels(), crate::opus::SAMPLE_RATE);
        boxed(o, b"dOps", |o| {
            o.extend_from_slice(&config.to_bytes());
            Ok(())
        })
    })
}

/// The fields of an `AudioSampleEntry` (14496-12 12.2.3) before its child boxes.
fn audio_sample_entry(o: &mut Vec<u8>, channels: u8, sample_rate: u32) {
    o.zeros(6); // reserved
    o.u16(1); // data_reference_index
    o.zeros(8); // reserved
    o.u16(u16::from(channels));
    o.u16(16); // samplesize
    o.zeros(4); // pre_defined, reserved
    // 16.16; rates above 65535 Hz do not fit and are left to the codec's configuration.
    o.u16(u16::try_from(sample_rate).unwrap_or(0));
    o.u16(0);
}

pub(super) fn ftyp() -> Result<Vec<u8>, Mp4Error> {
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

fn mvhd(o: &mut Vec<u8>, duration: u64, next_track: u32) -> Result<(), Mp4Error> {
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
        o.u32(next_track);
        Ok(())
    })
}

fn tkhd(o: &mut Vec<u8>, track: &TrackBox<'_>, duration: u64) -> Result<(), Mp4Error> {
    let fixed = |v: u32| {
        v.checked_mul(1 << 16)
            .ok_or(Mp4Error::TooLarge("picture size"))
    };
    let (width, height, volume) = match &track.entry {
        Entry::Avc { info, .. } => (fixed(info.width)?, fixed(info.height)?, 0),
        Entry::Hevc(config) => (fixed(config.info.width)?, fixed(config.info.height)?, 0),
        Entry::Sound(_) => (0, 0, 0x0100),
    };
    let (version, long) = version_for(duration);
    // Flags: track enabled (1) and in the movie (2).
    full_box(o, b"tkhd", version, 3, |o| {
        put_times(o, long);
        o.u32(track.id);
        o.u32(0); // reserved
        put_duration(o, long, duration);
        o.zeros(8); // reserved
        o.u16(0); // layer
        o.u16(0); // alternate_group
        o.u16(volume);
        o.u16(0); // reserved
        put_matrix(o);
        o.u32(width);
        o.u32(height);
        Ok(())
    })
}

/// An edit list that starts the track `empty` movie ticks into the movie: an empty edit, then
/// the whole media from its start (14496-12 8.6.6).
fn edts(o: &mut Vec<u8>, empty: u64, media: u64) -> Result<(), Mp4Error> {
    let (version, long) = version_for(empty.max(media));
    boxed(o, b"edts", |o| {
        full_box(o, b"elst", version, 0, |o| {
            o.u32(2);
            for (duration, media_time) in [(empty, -1i64), (media, 0)] {
                put_duration(o, long, duration);
                if long {
                    o.u64(u64::from_be_bytes(media_time.to_be_bytes()));
                } else {
                    o.u32(u32::from_be_bytes(
                        i32::try_from(media_time).unwrap_or(-1).to_be_bytes(),
                    ));
                }
                o.u32(0x0001_0000); // media_rate 1.0
            }
            Ok(())
        })
    })
}

fn mdhd(o: &mut Vec<u8>, timescale: u32, duration: u64) -> Result<(), Mp4Error> {
    let (version, long) = version_for(duration);
    full_box(o, b"mdhd", version, 0, |o| {
        put_times(o, long);
        o.u32(timescale);
        put_duration(o, long, duration);
        // ISO 639-2 "und", three 5-bit letters minus 0x60.
        o.u16(
            (u16::from(b'u' - 0x60) << 10) | (u16::from(b'n' - 0x60) << 5) | u16::from(b'd' - 0x60),
        );
        o.u16(0); // pre_defined
        Ok(())
    })
}
