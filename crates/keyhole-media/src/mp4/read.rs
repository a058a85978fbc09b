//! The reader: untrusted bytes in, access units and sound frames out.

use super::boxes::*;
use super::*;

/// Reads the first H.264 or H.265 video track of an MP4 file.
///
/// The track is the first `trak` with a `vide` handler whose first sample entry is `avc1` or
/// `avc3` with an `avcC` box, or `hvc1` or `hev1` with an `hvcC` box holding every parameter
/// set. Its samples are found through `stsz`, `stsc` and `stco`/`co64`, split into NAL units
/// by the record's length size, and timed by `stts` and `ctts` (converted to [`TIMESCALE`];
/// negative `ctts` version 1 offsets shift every presentation time so the smallest offset is
/// zero). `stss` marks the key frames (all samples when it is absent), and every key frame that
/// does not already carry them all gets the parameter sets inserted at its start (after an
/// access unit delimiter, if it has one), so each key frame can be decoded alone.
/// Edit lists are ignored. A file whose samples are in movie fragments is refused.
///
/// The sound is the first `trak` with a `soun` handler whose first sample entry is `mp4a` with
/// an `esds` naming MPEG-4 audio and an AAC configuration, or `Opus` with a `dOps`; other sound
/// tracks are passed over.
/// Its frames are timed like the pictures; of its edit list only a leading empty edit counts,
/// which delays the sound on the pictures' timeline. A sound track with no samples is no sound.
///
/// Bounds: at most [`MAX_SAMPLES`] samples a track, whose sizes must add up to no more than the
/// file's length; the access units returned hold at most four times the file's length (plus
/// 1 MiB) of NAL unit bytes, counting the inserted parameter sets, and the sound frames at
/// most the file's length.
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
            codec: track.codec(),
            dts,
            pts_offset,
            keyframe: keyframes.get(index).copied().unwrap_or(false),
            nals,
        });
    }

    let config = match track.sets {
        // avc3 may leave the parameter sets out of avcC; then the first in-band ones stand in.
        Sets::Avc { sps, pps } => {
            let in_band = |kind| aus.iter().find_map(|au| au.find(kind)).map(<[u8]>::to_vec);
            let sps = sps
                .map(<[u8]>::to_vec)
                .or_else(|| in_band(nal::SPS))
                .ok_or(Mp4Error::MissingParameterSet("sequence"))?;
            let pps = pps
                .map(<[u8]>::to_vec)
                .or_else(|| in_band(nal::PPS))
                .ok_or(Mp4Error::MissingParameterSet("picture"))?;
            VideoConfig::H264 { sps, pps }
        }
        Sets::Hevc(config) => VideoConfig::H265(config),
    };
    let (width, height) = config.size()?;

    // Key frames carry the parameter sets, as the stream would: a cut starts at one.
    let sets = config.parameter_sets();
    let codec = config.codec();
    let sets_len: usize = sets.iter().map(Vec::len).sum();
    let kinds: Vec<u8> = sets.iter().map(|set| codec.nal_type(set)).collect();
    for au in aus.iter_mut().filter(|au| au.keyframe) {
        if kinds.iter().all(|kind| au.find(*kind).is_some()) {
            continue;
        }
        used = used.saturating_add(sets_len);
        if used > budget {
            return Err(Mp4Error::Limit(
                "access units larger than four times the file",
            ));
        }
        au.put_in_front(sets.iter().cloned());
    }

    // A sound track without samples is no sound.
    let audio = match find_audio(moov)? {
        Some(track) => Some(read_audio(bytes, moov, &track)?).filter(|a| !a.frames.is_empty()),
        None => None,
    };
    Ok(Mp4Video {
        width,
        height,
        config,
        access_units: aus,
        audio,
    })
}

/// The parts of the audio track [`read()`] needs.
struct AudioTrack<'a> {
    /// `mdhd` ticks per second (non-zero).
    timescale: u32,
    config: AudioConfig,
    /// The leading empty edit, in the movie's timescale.
    delay: u64,
    stbl: &'a [u8],
}

fn find_audio(moov: &[u8]) -> Result<Option<AudioTrack<'_>>, Mp4Error> {
    for b in Boxes::new(moov) {
        let b = b?;
        if &b.kind == b"trak"
            && let Some(track) = audio_track(b.body)?
        {
            return Ok(Some(track));
        }
    }
    Ok(None)
}

/// The track in `trak` if it is AAC or Opus sound; `None` if it is another kind of track.
fn audio_track(trak: &[u8]) -> Result<Option<AudioTrack<'_>>, Mp4Error> {
    let Some(mdia) = child(trak, "mdia")? else {
        return Ok(None);
    };
    if handler(mdia)? != Some(*b"soun") {
        return Ok(None);
    }
    let stbl = require(require(mdia, "minf")?, "stbl")?;
    let Some(entry) = first_entry(stbl)? else {
        return Ok(None);
    };
    if !matches!(&entry.kind, b"mp4a" | b"Opus") {
        return Ok(None);
    }
    // AudioSampleEntry (14496-12 12.2.3) is 28 bytes before its children; QuickTime's sound
    // descriptions versions 1 and 2 add 16 and 36.
    let mut c = Cursor::new(entry.body);
    c.skip(8, "mp4a")?;
    let fields = match c.u16("mp4a")? {
        0 => 28,
        1 => 44,
        2 => 64,
        _ => return Err(Mp4Error::Unsupported("sound sample entry version")),
    };
    let children = entry
        .body
        .get(fields..)
        .ok_or(Mp4Error::Truncated("audio sample entry"))?;
    let config = if &entry.kind == b"Opus" {
        AudioConfig::Opus(OpusConfig::parse(require(children, "dOps")?)?)
    } else {
        let Some(esds) = child(children, "esds")? else {
            return Ok(None);
        };
        let Some(config) = decoder_specific_info(esds)? else {
            return Ok(None);
        };
        AudioConfig::Aac(AacConfig::parse(config)?)
    };
    let timescale = media_timescale(mdia)?;
    Ok(Some(AudioTrack {
        timescale,
        config,
        delay: leading_empty_edit(trak)?,
        stbl,
    }))
}

/// The `AudioSpecificConfig` in an `esds` box, if its stream is MPEG-4 audio (14496-1 7.2.6.5:
/// `ES_Descriptor`, then its `DecoderConfigDescriptor` and that one's `DecoderSpecificInfo`).
fn decoder_specific_info(esds: &[u8]) -> Result<Option<&[u8]>, Mp4Error> {
    let mut c = Cursor::new(esds);
    c.skip(4, "esds")?; // version, flags
    let Some(mut es) = descriptor(&mut c, 0x03)? else {
        return Ok(None);
    };
    es.skip(2, "ES_Descriptor")?; // ES_ID
    let flags = es.u8("ES_Descriptor")?;
    if flags & 0x80 != 0 {
        es.skip(2, "ES_Descriptor")?; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        let len = es.u8("ES_Descriptor")?;
        es.skip(usize::from(len), "ES_Descriptor")?; // URL
    }
    if flags & 0x20 != 0 {
        es.skip(2, "ES_Descriptor")?; // OCR_ES_Id
    }
    let Some(mut decoder) = descriptor(&mut es, 0x04)? else {
        return Ok(None);
    };
    if decoder.u8("DecoderConfigDescriptor")? != 0x40 {
        return Ok(None); // not MPEG-4 audio
    }
    decoder.skip(12, "DecoderConfigDescriptor")?; // stream type, buffer size, bit rates
    Ok(descriptor(&mut decoder, 0x05)?.map(|info| info.rest()))
}

/// The body of the first descriptor tagged `tag` among those `c` is at, skipping others.
/// Lengths take one to four bytes, seven bits each (14496-1 8.3.3).
fn descriptor<'a>(c: &mut Cursor<'a>, tag: u8) -> Result<Option<Cursor<'a>>, Mp4Error> {
    while !c.rest().is_empty() {
        let this = c.u8("descriptor")?;
        let mut len = 0usize;
        for i in 0..4 {
            let byte = c.u8("descriptor length")?;
            len = (len << 7) | usize::from(byte & 0x7f);
            if byte & 0x80 == 0 {
                break;
            }
            if i == 3 {
                return Err(Mp4Error::Malformed("descriptor length over four bytes"));
            }
        }
        let body = c.bytes(len, "descriptor")?;
        if this == tag {
            return Ok(Some(Cursor::new(body)));
        }
    }
    Ok(None)
}

/// The length of a leading empty edit in `trak`'s edit list, in the movie's timescale; zero
/// without one.
fn leading_empty_edit(trak: &[u8]) -> Result<u64, Mp4Error> {
    let Some(elst) = child(trak, "edts")?
        .map(|e| child(e, "elst"))
        .transpose()?
        .flatten()
    else {
        return Ok(0);
    };
    let mut c = Cursor::new(elst);
    let long = c.u8("elst")? == 1;
    c.skip(3, "elst")?;
    if c.u32("elst")? == 0 {
        return Ok(0);
    }
    let (duration, empty) = if long {
        (c.u64("elst")?, c.u64("elst")? == u64::MAX)
    } else {
        (u64::from(c.u32("elst")?), c.u32("elst")? == u32::MAX)
    };
    Ok(if empty { duration } else { 0 })
}

fn read_audio(bytes: &[u8], moov: &[u8], track: &AudioTrack<'_>) -> Result<Audio, Mp4Error> {
    let stbl = track.stbl;
    let sizes = sample_sizes(require(stbl, "stsz")?, bytes.len())?;
    let decode = decode_times(require(stbl, "stts")?, sizes.len())?;
    let chunks = chunk_offsets(stbl)?;
    let offsets = sample_offsets(require(stbl, "stsc")?, &chunks, &sizes)?;
    let mut c = Cursor::new(require(moov, "mvhd")?);
    let version = c.u8("mvhd")?;
    c.skip(if version == 1 { 3 + 16 } else { 3 + 8 }, "mvhd")?;
    let movie_timescale = c.u32("mvhd")?;
    let delay = rescale(track.delay, movie_timescale, TIMESCALE)?;
    let mut frames = Vec::with_capacity(sizes.len());
    for (index, ((size, offset), time)) in sizes.iter().zip(&offsets).zip(&decode).enumerate() {
        let data = usize::try_from(*offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(usize::try_from(*size).ok()?)?))
            .and_then(|range| bytes.get(range))
            .ok_or(Mp4Error::SampleOutOfRange { index })?;
        let pts = rescale(*time, track.timescale, TIMESCALE)?
            .checked_add(delay)
            .ok_or(Mp4Error::Malformed("sound time out of range"))?;
        frames.push(AudioFrame {
            pts,
            data: data.to_vec(),
        });
    }
    Ok(Audio {
        config: track.config.clone(),
        frames,
    })
}

/// The handler type in `mdia`'s `hdlr`, if it has one.
fn handler(mdia: &[u8]) -> Result<Option<[u8; 4]>, Mp4Error> {
    let Some(hdlr) = child(mdia, "hdlr")? else {
        return Ok(None);
    };
    let mut c = Cursor::new(hdlr);
    c.skip(8, "hdlr")?; // version, flags, pre_defined
    Ok(Some(c.array::<4>("hdlr")?))
}

/// The first sample entry in `stbl`'s `stsd`. Only the first is used; `stsc` refusing other
/// indices keeps that sound.
fn first_entry(stbl: &[u8]) -> Result<Option<Mp4Box<'_>>, Mp4Error> {
    let mut c = Cursor::new(require(stbl, "stsd")?);
    c.skip(8, "stsd")?; // version, flags, entry_count
    Boxes::new(c.rest()).next().transpose()
}

/// `mdhd`'s timescale, which must not be zero.
fn media_timescale(mdia: &[u8]) -> Result<u32, Mp4Error> {
    let mut c = Cursor::new(require(mdia, "mdhd")?);
    let version = c.u8("mdhd")?;
    // flags, then creation and modification times of 32 or 64 bits.
    c.skip(if version == 1 { 3 + 16 } else { 3 + 8 }, "mdhd")?;
    let timescale = c.u32("mdhd")?;
    if timescale == 0 {
        return Err(Mp4Error::Malformed("zero timescale"));
    }
    Ok(timescale)
}

/// The parts of the video track [`read()`] needs.
struct VideoTrack<'a> {
    /// `mdhd` ticks per second (non-zero).
    timescale: u32,
    /// Bytes of each NAL unit's length prefix in the samples: 1, 2 or 4.
    length_size: usize,
    sets: Sets<'a>,
    stbl: &'a [u8],
}

/// The parameter sets a sample entry carries.
enum Sets<'a> {
    /// `avcC`'s first SPS and PPS, if it has them.
    Avc {
        sps: Option<&'a [u8]>,
        pps: Option<&'a [u8]>,
    },
    /// `hvcC`, which must have all three.
    Hevc(HevcConfig),
}

impl VideoTrack<'_> {
    fn codec(&self) -> Codec {
        match self.sets {
            Sets::Avc { .. } => Codec::H264,
            Sets::Hevc(_) => Codec::H265,
        }
    }
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

/// The track in `trak` if it is H.264 or H.265 video; `None` if it is another kind of track.
fn video_track(trak: &[u8]) -> Result<Option<VideoTrack<'_>>, Mp4Error> {
    let Some(mdia) = child(trak, "mdia")? else {
        return Ok(None);
    };
    if handler(mdia)? != Some(*b"vide") {
        return Ok(None);
    }
    let stbl = require(require(mdia, "minf")?, "stbl")?;
    let Some(entry) = first_entry(stbl)? else {
        return Ok(None);
    };
    let hevc = match &entry.kind {
        b"avc1" | b"avc3" => false,
        b"hvc1" | b"hev1" => true,
        _ => return Ok(None),
    };
    let entry_children = entry
        .body
        .get(VISUAL_SAMPLE_ENTRY_LEN..)
        .ok_or(Mp4Error::Truncated("visual sample entry"))?;
    if hevc {
        // hvcC (14496-15 8.3.3.1), with every parameter set in it: NAL lengths of 4 bytes.
        let Some(hvcc) = child(entry_children, "hvcC")? else {
            return Ok(None);
        };
        return Ok(Some(VideoTrack {
            timescale: media_timescale(mdia)?,
            length_size: 4,
            sets: Sets::Hevc(HevcConfig::from_hvcc(hvcc)?),
            stbl,
        }));
    }
    let Some(avcc) = child(entry_children, "avcC")? else {
        return Ok(None);
    };
    let timescale = media_timescale(mdia)?;

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
        sets: Sets::Avc { sps, pps },
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
pub(super) fn split_nals(sample: &[u8], length_size: usize) -> Result<Vec<Vec<u8>>, Mp4Error> {
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
