//! Progressive MP4 files: `moov` first, then the samples of both tracks, interleaved in the
//! order they were given.

use super::boxes::*;
use super::moov::{Tables, TrackBox, ftyp, moov};
use super::*;

/// Which track a sample belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrackKind {
    /// The H.264 video track.
    Video,
    /// The AAC audio track.
    Audio,
}

/// What the writer needs to know of one sample before its bytes: [`head()`] lays out `moov`
/// from these, so the samples themselves can be streamed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Its track.
    pub track: TrackKind,
    /// Decode time in [`TIMESCALE`] ticks (an audio frame's start).
    pub dts: u64,
    /// Presentation time minus decode time, in ticks (zero for audio).
    pub pts_offset: u32,
    /// Whether it is a key frame (every audio frame is).
    pub keyframe: bool,
    /// Its size in bytes, as [`append_sample()`] writes it (an audio frame's length).
    pub size: u32,
    /// Sound: how long it plays, in the track's ticks ([`AudioConfig::frame_len`]). Pictures:
    /// zero (the next picture's time says).
    pub length: u32,
}

impl Sample {
    /// The sample for video access unit `au`.
    ///
    /// # Errors
    /// [`Mp4Error::TooLarge`] over `u32::MAX` bytes.
    pub fn video(au: &AccessUnit) -> Result<Self, Mp4Error> {
        Ok(Self {
            track: TrackKind::Video,
            dts: au.dts,
            pts_offset: au.pts_offset,
            keyframe: au.keyframe,
            size: sample_size(au)?,
            length: 0,
        })
    }

    /// The sample for sound frame `frame` of the stream `config` describes.
    ///
    /// # Errors
    /// [`Mp4Error::TooLarge`] over `u32::MAX` bytes.
    pub fn audio(frame: &AudioFrame, config: &AudioConfig) -> Result<Self, Mp4Error> {
        Ok(Self {
            track: TrackKind::Audio,
            dts: frame.pts,
            pts_offset: 0,
            keyframe: true,
            size: u32::try_from(frame.data.len()).map_err(|_| Mp4Error::TooLarge("audio frame"))?,
            length: config.frame_len(&frame.data),
        })
    }
}

/// Writes `aus` (in decode order), and `audio` if given, as a progressive MP4 file: [`head()`]
/// followed by the samples of both, interleaved by time (a picture before a sound that starts
/// with it).
///
/// The first parameter sets of each kind in the access units provide the sample entry's
/// configuration (`avcC` or `hvcC`, by the access units' codec).
///
/// # Errors
/// [`Mp4Error::Empty`], [`Mp4Error::FirstNotKeyframe`], [`Mp4Error::MissingParameterSet`],
/// [`Mp4Error::TooLarge`] for a sample over `u32::MAX` bytes, and the errors of [`head()`].
pub fn write(aus: &[AccessUnit], audio: Option<&Audio>) -> Result<Vec<u8>, Mp4Error> {
    let first = aus.first().ok_or(Mp4Error::Empty)?;
    if !first.keyframe {
        return Err(Mp4Error::FirstNotKeyframe);
    }
    if aus.iter().any(|au| au.codec != first.codec) {
        return Err(Mp4Error::Malformed("access units of two codecs"));
    }
    let video = VideoConfig::find(aus)?;
    let frames = audio.map_or(&[][..], |a| a.frames.as_slice());
    // Both tracks in time order, a picture before a sound that starts with it.
    enum Item<'a> {
        Picture(&'a AccessUnit),
        Sound(&'a AudioFrame, &'a AudioConfig),
    }
    let mut items = Vec::with_capacity(aus.len() + frames.len());
    let (mut v, mut a) = (aus.iter().peekable(), frames.iter().peekable());
    loop {
        let picture_next = match (v.peek(), a.peek()) {
            (Some(au), Some(frame)) => au.dts <= frame.pts,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => break,
        };
        if picture_next && let Some(au) = v.next() {
            items.push(Item::Picture(au));
        } else if let (Some(frame), Some(audio)) = (a.next(), audio) {
            items.push(Item::Sound(frame, &audio.config));
        }
    }
    let mut samples = Vec::with_capacity(items.len());
    for item in &items {
        samples.push(match item {
            Item::Picture(au) => Sample::video(au)?,
            Item::Sound(frame, config) => Sample::audio(frame, config)?,
        });
    }
    let mut out = head(&samples, &video, audio.map(|a| &a.config))?;
    let payload: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    out.reserve(usize::try_from(payload).map_err(|_| Mp4Error::TooLarge("file"))?);
    for item in items {
        match item {
            Item::Picture(au) => {
                append_sample(au, &mut out)?;
            }
            Item::Sound(frame, _) => out.extend_from_slice(&frame.data),
        }
    }
    Ok(out)
}

/// The part of an MP4 from the last key frame at or before `from` up to `to` (both in
/// [`TIMESCALE`] ticks from the file's first sample) as an MP4 of its own, starting at 0, so a
/// player decodes it from its first picture: an event's span cut from the segment that holds it,
/// with the sound of the same span. Also returns where, in ticks, the part's first picture was
/// in the whole. A `from` before the first key frame starts at it; a `to` past the end ends at
/// the end; at least one picture is kept.
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
    // The sound that starts while the part's pictures show.
    let until = aus.get(end).map_or(u64::MAX, |au| au.dts);
    let audio = video.audio.map(|audio| Audio {
        frames: audio
            .frames
            .into_iter()
            .filter(|f| (base..until).contains(&f.pts))
            .map(|f| AudioFrame {
                pts: f.pts - base,
                data: f.data,
            })
            .collect(),
        config: audio.config,
    });
    Ok((write(&part, audio.as_ref())?, base))
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
/// `samples`, whose bytes follow it directly in that order. Each track's samples must be in
/// decode order; the two tracks may interleave in any way. Audio samples need `audio`, the
/// stream's configuration.
///
/// Times are kept relative to the first picture's decode time, which becomes zero. The last
/// picture lasts as long as the one before it, the last sound its `length`. Sound that starts
/// after the first picture is placed on the timeline by an edit list; sound may not start
/// before it. Frame times within an eighth of a frame of following on from the frame before
/// are taken to do so, so the sound plays without gaps. No edit list is written for the
/// video, so with B-frames the presentation starts at the first picture's `pts_offset`.
///
/// # Errors
/// [`Mp4Error::Empty`] without pictures, [`Mp4Error::FirstNotKeyframe`], [`Mp4Error::Sps`] if
/// an H.264 SPS does not parse, [`Mp4Error::DtsNotIncreasing`], [`Mp4Error::Limit`] beyond
/// [`MAX_SAMPLES`] in a track, [`Mp4Error::Audio`] for sound without `audio` or before the
/// first picture, and [`Mp4Error::TooLarge`] if a gap between decode times, a `pts_offset`
/// (above `i32::MAX`: many readers take it as signed), a parameter set or the picture size
/// does not fit its field.
pub fn head(
    samples: &[Sample],
    video_config: &VideoConfig,
    audio: Option<&AudioConfig>,
) -> Result<Vec<u8>, Mp4Error> {
    let mut pictures = Vec::new();
    let mut sound = Vec::new();
    let mut chunks = [Vec::new(), Vec::new()];
    let mut at = 0u64;
    let mut previous = None;
    for sample in samples {
        let which = usize::from(sample.track == TrackKind::Audio);
        match sample.track {
            TrackKind::Video => pictures.push(sample),
            TrackKind::Audio => sound.push(sample),
        }
        let track_chunks: &mut Vec<(u64, u32)> = &mut chunks[which];
        match track_chunks.last_mut() {
            Some((_, n)) if previous == Some(sample.track) => *n += 1,
            _ => track_chunks.push((at, 1)),
        }
        previous = Some(sample.track);
        at = at
            .checked_add(u64::from(sample.size))
            .ok_or(Mp4Error::TooLarge("file"))?;
    }
    let payload = at;
    let [video_chunks, audio_chunks] = chunks;

    let first = pictures.first().ok_or(Mp4Error::Empty)?;
    if !first.keyframe {
        return Err(Mp4Error::FirstNotKeyframe);
    }
    let base = first.dts;
    let mut tracks = vec![TrackBox::video(
        video_config,
        video_tables(&pictures, video_chunks)?,
    )?];
    if let Some(first_sound) = sound.first() {
        let config = audio.ok_or(Mp4Error::Audio("sound without its configuration"))?;
        let lead = first_sound
            .dts
            .checked_sub(base)
            .ok_or(Mp4Error::Audio("sound starts before the first picture"))?;
        tracks.push(TrackBox::sound(
            config,
            rescale(lead, TIMESCALE, MOVIE_TIMESCALE)?,
            audio_tables(&sound, config, audio_chunks)?,
        ));
    }

    let ftyp = ftyp()?;
    let large_mdat = payload > u64::from(u32::MAX) - 8;
    let mdat_header: u64 = if large_mdat { 16 } else { 8 };
    // The samples start right after the mdat header, so their offsets depend on the size of
    // moov, which grows if an offset needs co64: settle it by iterating (a few rounds at most,
    // since the offsets only grow).
    let mut data_start = 0u64;
    let mut settled = None;
    for _ in 0..4 {
        let moov = moov(&tracks, Some(data_start))?;
        let start = u64::try_from(ftyp.len() + moov.len())
            .ok()
            .and_then(|n| n.checked_add(mdat_header))
            .ok_or(Mp4Error::TooLarge("moov box"))?;
        if start == data_start {
            settled = Some(moov);
            break;
        }
        data_start = start;
    }
    let moov = settled.ok_or(Mp4Error::TooLarge("moov box"))?;
    data_start
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

fn sample_count(samples: &[&Sample]) -> Result<u32, Mp4Error> {
    u32::try_from(samples.len())
        .ok()
        .filter(|n| *n <= MAX_SAMPLES)
        .ok_or(Mp4Error::Limit("more than MAX_SAMPLES samples in a track"))
}

fn video_tables(samples: &[&Sample], chunks: Vec<(u64, u32)>) -> Result<Tables, Mp4Error> {
    let count = sample_count(samples)?;
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
    let keyframes = (1..=count)
        .zip(samples)
        .filter(|(_, s)| s.keyframe)
        .map(|(number, _)| number)
        .collect();
    Ok(Tables {
        durations,
        pts_offsets,
        keyframes: Some(keyframes),
        sizes: samples.iter().map(|s| s.size).collect(),
        chunks,
    })
}

/// The sound track's tables, timed in its timescale. Each frame starts where the one before
/// ended unless its time says it comes more than an eighth of a frame earlier or later (sound
/// was lost): clock rounding then never opens tiny gaps between frames.
fn audio_tables(
    samples: &[&Sample],
    config: &AudioConfig,
    chunks: Vec<(u64, u32)>,
) -> Result<Tables, Mp4Error> {
    sample_count(samples)?;
    let first = samples.first().map_or(0, |s| s.dts);
    // (start, length) of the frame before.
    let mut before: Option<(u64, u64)> = None;
    let mut starts: Vec<u64> = Vec::with_capacity(samples.len());
    for (index, sample) in samples.iter().enumerate() {
        let stated = rescale(
            sample.dts.saturating_sub(first),
            TIMESCALE,
            config.timescale(),
        )?;
        let start = match before {
            None => 0,
            Some((at, len)) if stated.abs_diff(at + len) <= len / 8 => at + len,
            Some((at, _)) if stated > at => stated,
            Some(_) => return Err(Mp4Error::DtsNotIncreasing { index }),
        };
        before = Some((start, u64::from(sample.length.max(1))));
        starts.push(start);
    }
    let mut durations = Vec::with_capacity(starts.len());
    for pair in starts.windows(2) {
        let [a, b] = pair else { continue };
        durations.push(u32::try_from(b - a).map_err(|_| Mp4Error::TooLarge("gap in the sound"))?);
    }
    durations.push(samples.last().map_or(0, |s| s.length.max(1)));
    Ok(Tables {
        durations,
        pts_offsets: None,
        keyframes: None,
        sizes: samples.iter().map(|s| s.size).collect(),
        chunks,
    })
}
