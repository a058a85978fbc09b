//! A fragmented MP4 stream cut into the pieces a player takes, as its bytes arrive in pieces
//! of any size: the initialization segment, then each movie fragment (`moof` and its `mdat`)
//! with its track and whether it starts with a sync sample, so a viewer that falls behind can
//! skip to the next key frame.
//!
//! The input is untrusted. Boxes are taken whole and no larger than [`MAX_PIECE`]; nothing is
//! parsed beyond the box headers but a fragment's `tfhd` and `trun`.

use super::boxes::{Boxes, Cursor, child};
use super::{MAX_SAMPLES, Mp4Error};

/// The largest box a stream may hold: a picture's fragment is one picture.
pub const MAX_PIECE: usize = 64 << 20;

/// One piece of a fragmented MP4 stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The initialization segment: every box before the first `moof` (`ftyp`, `moov`).
    Init(Vec<u8>),
    /// A movie fragment: a `moof` and the `mdat` after it.
    Fragment {
        /// The `moof` and the `mdat`.
        bytes: Vec<u8>,
        /// The track of its first track fragment.
        track: u32,
        /// Whether its first sample is a sync sample (a key frame; any sound frame).
        sync: bool,
    },
}

impl Piece {
    /// Its bytes.
    #[must_use]
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Init(bytes) | Self::Fragment { bytes, .. } => bytes,
        }
    }
}

/// Cuts a fragmented MP4 stream into [`Piece`]s.
#[derive(Debug, Default)]
pub struct Splitter {
    /// Bytes of a box not yet whole.
    pending: Vec<u8>,
    /// The initialization segment so far, until the first `moof`.
    init: Option<Vec<u8>>,
    /// A `moof` waiting for its `mdat`, with its track and sync flag.
    moof: Option<(Vec<u8>, u32, bool)>,
}

impl Splitter {
    /// A splitter at the start of a stream.
    #[must_use]
    pub fn new() -> Self {
        Self {
            init: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// A splitter taking a stream up again at a `moof`, past its initialization segment (after
    /// a gap: what was pending is dropped).
    #[must_use]
    pub fn resumed() -> Self {
        Self::default()
    }

    /// Takes the next bytes of the stream; returns the pieces they complete.
    ///
    /// # Errors
    /// A box larger than [`MAX_PIECE`] or smaller than its header, an `mdat` without a `moof`
    /// before it, or a `moof` without a track fragment. After an error the stream is not
    /// followed further.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Piece>, Mp4Error> {
        self.pending.extend_from_slice(bytes);
        let mut pieces = Vec::new();
        let mut at = 0;
        while let Some(len) = box_len(&self.pending[at..])? {
            let end = at + len;
            let whole = &self.pending[at..end];
            match whole.get(4..8) {
                Some(b"moof") => {
                    if let Some(init) = self.init.take() {
                        pieces.push(Piece::Init(init));
                    }
                    let (track, sync) = first_sample(whole.get(8..).unwrap_or_default())?;
                    self.moof = Some((whole.to_vec(), track, sync));
                }
                Some(b"mdat") => {
                    let (mut moof, track, sync) = self
                        .moof
                        .take()
                        .ok_or(Mp4Error::Malformed("media data without a movie fragment"))?;
                    moof.extend_from_slice(whole);
                    pieces.push(Piece::Fragment {
                        bytes: moof,
                        track,
                        sync,
                    });
                }
                // The initialization segment, whatever it holds; after it, boxes a player does
                // not need (free space, indexes) are passed over.
                _ => {
                    if let Some(init) = &mut self.init {
                        init.extend_from_slice(whole);
                    }
                }
            }
            at = end;
        }
        self.pending.drain(..at);
        Ok(pieces)
    }
}

/// The length of the whole box at the start of `data`, once it has all arrived.
fn box_len(data: &[u8]) -> Result<Option<usize>, Mp4Error> {
    let Some(header) = data
        .first_chunk::<16>()
        .map(<[u8; 16]>::as_slice)
        .or(data.get(..8))
    else {
        return Ok(None);
    };
    let mut c = Cursor::new(header);
    let (len, header_len) = match c.u32("box header")? {
        // A 64-bit size follows the type.
        1 => {
            c.skip(4, "box header")?;
            let Ok(large) = c.u64("box header") else {
                return Ok(None);
            };
            (usize::try_from(large).unwrap_or(usize::MAX), 16)
        }
        // "To the end of the file" has no end in a stream.
        0 => {
            return Err(Mp4Error::Unsupported(
                "a box running to the end of a stream",
            ));
        }
        n => (usize::try_from(n).unwrap_or(usize::MAX), 8),
    };
    if len < header_len {
        return Err(Mp4Error::Malformed("box smaller than its header"));
    }
    if len > MAX_PIECE {
        return Err(Mp4Error::Limit("a box in a stream larger than MAX_PIECE"));
    }
    Ok((data.len() >= len).then_some(len))
}

/// The track and sync flag of a `moof` body's first track fragment's first sample (14496-12
/// 8.8.7, 8.8.8): the first sample's flags from `trun`, else the default in `tfhd`; without
/// either, sync (a sound track's samples all are).
fn first_sample(moof: &[u8]) -> Result<(u32, bool), Mp4Error> {
    let traf = child(moof, "traf")?.ok_or(Mp4Error::MissingBox("traf"))?;
    let mut tfhd = Cursor::new(child(traf, "tfhd")?.ok_or(Mp4Error::MissingBox("tfhd"))?);
    let tfhd_flags = tfhd.u32("tfhd")? & 0x00ff_ffff;
    let track = tfhd.u32("tfhd")?;
    // base-data-offset, sample-description-index, default duration and size come first.
    for (flag, len) in [(0x01, 8), (0x02, 4), (0x08, 4), (0x10, 4)] {
        if tfhd_flags & flag != 0 {
            tfhd.skip(len, "tfhd")?;
        }
    }
    let mut flags = (tfhd_flags & 0x20 != 0)
        .then(|| tfhd.u32("tfhd"))
        .transpose()?;
    for b in Boxes::new(traf) {
        let b = b?;
        if &b.kind != b"trun" {
            continue;
        }
        let mut trun = Cursor::new(b.body);
        let trun_flags = trun.u32("trun")? & 0x00ff_ffff;
        let count = trun.u32("trun")?;
        if count > MAX_SAMPLES {
            return Err(Mp4Error::Limit("more than MAX_SAMPLES samples"));
        }
        if trun_flags & 0x01 != 0 {
            trun.skip(4, "trun")?; // data offset
        }
        if trun_flags & 0x04 != 0 {
            flags = Some(trun.u32("trun")?);
        } else if trun_flags & 0x400 != 0 && count > 0 {
            // The first sample's duration and size come before its flags.
            let before =
                4 * usize::from(trun_flags & 0x100 != 0) + 4 * usize::from(trun_flags & 0x200 != 0);
            trun.skip(before, "trun")?;
            flags = Some(trun.u32("trun")?);
        }
        break;
    }
    // sample_is_non_sync_sample is bit 16.
    Ok((track, flags.is_none_or(|f| f & 0x0001_0000 == 0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AccessUnit;
    use crate::aac::AacConfig;
    use crate::audio::{AudioConfig, AudioFrame};
    use crate::mp4::VideoConfig;
    use crate::mp4::{audio_fragment, fragment, fragmented_init};

    const SPS: [u8; 10] = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
    const PPS: [u8; 4] = [0x68, 0xce, 0x3c, 0x80];

    /// A live stream: the initialization segment, a key frame, a sound frame, a picture.
    fn stream() -> (Vec<u8>, Vec<Vec<u8>>) {
        let config = AudioConfig::Aac(AacConfig::low_complexity(16_000, 1).unwrap());
        let init = fragmented_init(&VideoConfig::h264(&SPS, &PPS), Some(&config)).unwrap();
        let key = AccessUnit::new(0, vec![SPS.to_vec(), PPS.to_vec(), vec![0x65, 0x88, 1]]);
        let picture = AccessUnit::new(6000, vec![vec![0x41, 0x9a, 2]]);
        let sound = AudioFrame {
            pts: 3000,
            data: vec![0x21, 0x10, 5],
        };
        let pieces = vec![
            init,
            fragment(1, &key, 6000).unwrap(),
            audio_fragment(2, &sound, &config).unwrap(),
            fragment(3, &picture, 6000).unwrap(),
        ];
        (pieces.concat(), pieces)
    }

    #[test]
    fn cuts_a_live_stream_into_its_pieces_however_it_arrives() {
        let (bytes, pieces) = stream();
        let expected = vec![
            Piece::Init(pieces[0].clone()),
            Piece::Fragment {
                bytes: pieces[1].clone(),
                track: 1,
                sync: true,
            },
            Piece::Fragment {
                bytes: pieces[2].clone(),
                track: 2,
                sync: true,
            },
            Piece::Fragment {
                bytes: pieces[3].clone(),
                track: 1,
                sync: false,
            },
        ];
        for step in [1, 7, 100, bytes.len()] {
            let mut splitter = Splitter::new();
            let mut got = Vec::new();
            for part in bytes.chunks(step) {
                got.extend(splitter.push(part).unwrap());
            }
            assert_eq!(got, expected, "in pieces of {step}");
        }
    }

    #[test]
    fn refuses_what_is_not_a_stream_of_boxes() {
        let (_, pieces) = stream();
        // An mdat with no moof before it.
        let mut orphan = pieces[0].clone();
        orphan.extend_from_slice(&[0, 0, 0, 9, b'm', b'd', b'a', b't', 0]);
        assert!(matches!(
            Splitter::new().push(&orphan),
            Err(Mp4Error::Malformed(_))
        ));
        assert!(matches!(
            Splitter::new().push(&[0, 0, 0, 4, b'f', b'r', b'e', b'e']),
            Err(Mp4Error::Malformed(_))
        ));
        assert!(matches!(
            Splitter::new().push(&[0, 0, 0, 0, b'm', b'o', b'o', b'f']),
            Err(Mp4Error::Unsupported(_))
        ));
        let huge = u32::try_from(MAX_PIECE + 1).unwrap().to_be_bytes();
        assert!(matches!(
            Splitter::new().push(&[&huge[..], b"mdat"].concat()),
            Err(Mp4Error::Limit(_))
        ));
        // A moof without a track fragment.
        assert!(matches!(
            Splitter::new().push(&[0, 0, 0, 8, b'm', b'o', b'o', b'f']),
            Err(Mp4Error::MissingBox("traf"))
        ));
    }
}
