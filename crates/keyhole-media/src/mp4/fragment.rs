//! Fragmented MP4 for live view: an initialization segment, then one fragment per picture or
//! sound frame, which a browser plays as it arrives (Media Source Extensions).

use super::boxes::*;
use super::moov::{AUDIO_TRACK_ID, Tables, TrackBox, VIDEO_TRACK_ID, ftyp, moov};
use super::write::append_sample;
use super::*;

/// Sample flags (14496-12 8.8.3.1) of a sample that depends on no other: a key frame, or any
/// sound frame.
const SYNC: u32 = 0x0200_0000;
/// Sample flags of a picture that depends on others and is not a sync sample.
const NOT_SYNC: u32 = 0x0101_0000;

/// The initialization segment of a fragmented file (`ftyp` and a `moov` with no samples and an
/// `mvex`), for the video stream `video` describes and, with `audio`, its sound.
///
/// # Errors
/// [`Mp4Error::Sps`] if an H.264 SPS does not parse, [`Mp4Error::TooLarge`] if a parameter set
/// or the picture size does not fit its field.
pub fn fragmented_init(
    video: &VideoConfig,
    audio: Option<&AudioConfig>,
) -> Result<Vec<u8>, Mp4Error> {
    let mut tracks = vec![TrackBox::video(video, Tables::default())?];
    tracks.extend(audio.map(|config| TrackBox::sound(config, 0, Tables::default())));
    let mut out = ftyp()?;
    out.extend(moov(&tracks, None)?);
    Ok(out)
}

/// One fragment (`moof` and `mdat`) holding picture `au`, the fragment numbered `sequence`
/// (from 1), lasting `duration` [`TIMESCALE`] ticks from its `dts`.
///
/// # Errors
/// [`Mp4Error::TooLarge`] if the sample does not fit its fields.
pub fn fragment(sequence: u32, au: &AccessUnit, duration: u32) -> Result<Vec<u8>, Mp4Error> {
    let mut sample = Vec::with_capacity(au.len() + 4 * au.nals.len());
    append_sample(au, &mut sample)?;
    one_sample(
        sequence,
        VIDEO_TRACK_ID,
        au.dts,
        duration,
        if au.keyframe { SYNC } else { NOT_SYNC },
        au.pts_offset,
        &sample,
    )
}

/// One fragment holding sound frame `frame` of the stream `config` describes, numbered
/// `sequence` in the same series as the pictures'. Its time is `frame.pts` in the track's
/// timescale, so the two tracks stay on one clock.
///
/// # Errors
/// [`Mp4Error::TooLarge`] if the frame does not fit its fields.
pub fn audio_fragment(
    sequence: u32,
    frame: &AudioFrame,
    config: &AudioConfig,
) -> Result<Vec<u8>, Mp4Error> {
    one_sample(
        sequence,
        AUDIO_TRACK_ID,
        rescale(frame.pts, TIMESCALE, config.timescale())?,
        config.frame_len(&frame.data),
        SYNC,
        0,
        &frame.data,
    )
}

/// A `moof` with one track fragment of one sample, then its `mdat`.
fn one_sample(
    sequence: u32,
    track: u32,
    decode_time: u64,
    duration: u32,
    flags: u32,
    pts_offset: u32,
    sample: &[u8],
) -> Result<Vec<u8>, Mp4Error> {
    let size = u32::try_from(sample.len()).map_err(|_| Mp4Error::TooLarge("sample"))?;
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
                    o.u32(track);
                    Ok(())
                })?;
                full_box(o, b"tfdt", 1, 0, |o| {
                    o.u64(decode_time);
                    Ok(())
                })?;
                // Data offset, and per sample: duration, size, flags, composition offset.
                full_box(o, b"trun", 0, 0x0000_0f01, |o| {
                    o.u32(1);
                    o.u32(data_offset);
                    o.u32(duration);
                    o.u32(size);
                    o.u32(flags);
                    o.u32(pts_offset);
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
    out.u32(size.checked_add(8).ok_or(Mp4Error::TooLarge("mdat box"))?);
    out.extend_from_slice(b"mdat");
    out.extend_from_slice(sample);
    Ok(out)
}
