//! Access units of H.264 (ITU-T H.264) and H.265 streams: splitting Annex B byte streams into
//! NAL units, grouping them into access units, and reading a picture's size from an H.264
//! sequence parameter set ([`crate::h265`] reads H.265's).

/// Ticks per second of every timestamp here: the 90 kHz clock of RTP and MPEG.
pub const TIMESCALE: u32 = 90_000;

/// NAL unit types this crate cares about (H.264 Table 7-1).
pub mod nal {
    /// A slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// A slice of an IDR picture: a key frame.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
}

/// The video coding standard of a stream: how its NAL unit headers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Codec {
    /// H.264 (AVC): one-byte NAL headers.
    #[default]
    H264,
    /// H.265 (HEVC): two-byte NAL headers.
    H265,
}

impl Codec {
    /// The type of a NAL unit of this codec (0 for an empty unit).
    #[must_use]
    pub fn nal_type(self, nal: &[u8]) -> u8 {
        match self {
            Self::H264 => nal_type(nal),
            Self::H265 => crate::h265::nal_type(nal),
        }
    }

    /// Whether the unit is a slice of a picture decoding may start at: IDR for H.264; IDR,
    /// CRA or BLA (an IRAP picture) for H.265.
    #[must_use]
    pub fn is_key(self, nal: &[u8]) -> bool {
        match self {
            Self::H264 => nal_type(nal) == nal::IDR,
            Self::H265 => crate::h265::is_irap(nal),
        }
    }

    /// Whether the unit is a slice (part of a coded picture).
    fn is_slice(self, nal: &[u8]) -> bool {
        match self {
            Self::H264 => matches!(nal_type(nal), nal::SLICE | nal::IDR),
            Self::H265 => !nal.is_empty() && crate::h265::nal_type(nal) < 32,
        }
    }

    /// Whether the slice is its picture's first: H.264's `first_mb_in_slice` is zero (ue(v):
    /// the single bit 1); H.265's `first_slice_segment_in_pic_flag` is set.
    fn is_first_slice(self, nal: &[u8]) -> bool {
        match self {
            Self::H264 => nal.get(1).is_some_and(|b| b & 0x80 != 0),
            Self::H265 => nal.get(2).is_some_and(|b| b & 0x80 != 0),
        }
    }

    /// Whether a unit that is not a slice begins a new access unit after a picture
    /// (H.264 7.4.1.2.3, H.265 7.4.2.4.4).
    fn starts_access_unit(self, nal: &[u8]) -> bool {
        use crate::h265::nal as hevc;
        match self {
            Self::H264 => matches!(nal_type(nal), nal::AUD | nal::SPS | nal::PPS | nal::SEI),
            // Parameter sets, delimiters, prefix SEI (39) and the reserved types that precede.
            Self::H265 => matches!(
                crate::h265::nal_type(nal),
                hevc::VPS | hevc::SPS | hevc::PPS | hevc::AUD | 39 | 41..=44 | 48..=55
            ),
        }
    }

    /// Whether the unit is kept out of MP4 samples: parameter sets (in the sample entry) and
    /// access unit delimiters (14496-15 5.3.2, 8.3.2).
    fn is_out_of_band(self, nal: &[u8]) -> bool {
        use crate::h265::nal as hevc;
        match self {
            Self::H264 => matches!(nal_type(nal), nal::SPS | nal::PPS | nal::AUD),
            Self::H265 => matches!(
                crate::h265::nal_type(nal),
                hevc::VPS | hevc::SPS | hevc::PPS | hevc::AUD
            ),
        }
    }
}

/// One coded picture: its NAL units (without start codes or length prefixes) and its time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessUnit {
    /// The stream's codec.
    pub codec: Codec,
    /// Decode time in [`TIMESCALE`] ticks.
    pub dts: u64,
    /// Presentation time minus decode time, in ticks (zero without B-frames).
    pub pts_offset: u32,
    /// Whether this picture is an IDR picture, where a clip may start.
    pub keyframe: bool,
    /// The NAL units, each starting with its one-byte header.
    pub nals: Vec<Vec<u8>>,
}

impl AccessUnit {
    /// Builds an H.264 access unit from NAL units, marking it a key frame if any is an IDR
    /// slice.
    #[must_use]
    pub fn new(dts: u64, nals: Vec<Vec<u8>>) -> Self {
        Self::of(Codec::H264, dts, nals)
    }

    /// Builds an access unit of `codec` from NAL units, marking it a key frame if any is a
    /// slice decoding may start at.
    #[must_use]
    pub fn of(codec: Codec, dts: u64, nals: Vec<Vec<u8>>) -> Self {
        let keyframe = nals.iter().any(|n| codec.is_key(n));
        Self {
            codec,
            dts,
            pts_offset: 0,
            keyframe,
            nals,
        }
    }

    /// The first NAL unit of `kind` (a type of this unit's codec), if any.
    #[must_use]
    pub fn find(&self, kind: u8) -> Option<&[u8]> {
        self.nals
            .iter()
            .find(|n| self.codec.nal_type(n) == kind)
            .map(Vec::as_slice)
    }

    /// Puts `units` (parameter sets) at the start, after an access unit delimiter if there is
    /// one: a delimiter must stay first (H.264 7.4.1.2.3, H.265 7.4.2.4.4).
    pub fn put_in_front(&mut self, units: impl IntoIterator<Item = Vec<u8>>) {
        let delimiter = match self.codec {
            Codec::H264 => nal::AUD,
            Codec::H265 => crate::h265::nal::AUD,
        };
        let at = usize::from(
            self.nals
                .first()
                .is_some_and(|n| self.codec.nal_type(n) == delimiter),
        );
        self.nals.splice(at..at, units);
    }

    /// The NAL units that code the picture: parameter sets, access unit delimiters and empty
    /// units aside. These are what an MP4 sample holds (14496-15 5.3.2).
    pub fn picture_nals(&self) -> impl Iterator<Item = &[u8]> {
        self.nals
            .iter()
            .filter(|n| !n.is_empty() && !self.codec.is_out_of_band(n))
            .map(Vec::as_slice)
    }

    /// The access unit as an Annex B byte stream (four-byte start codes).
    #[must_use]
    pub fn to_annex_b(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.nals.iter().map(|n| n.len() + 4).sum());
        for n in &self.nals {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(n);
        }
        out
    }

    /// Total size of the NAL units.
    #[must_use]
    pub fn len(&self) -> usize {
        self.nals.iter().map(Vec::len).sum()
    }

    /// Whether the access unit carries no bytes.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Keeps a stream's newest parameter sets and puts them in front of key frames that lack them
/// (after an access unit delimiter), so every key frame can start a clip: an RTSP camera may
/// send them only with its first picture, or only with IDR pictures and not with H.265's CRA
/// pictures.
#[derive(Debug, Default)]
pub struct ParameterSets {
    /// By NAL type, the newest of each.
    newest: Vec<(u8, Vec<u8>)>,
}

impl ParameterSets {
    /// Remembers `au`'s parameter sets and, if it is a key frame, gives it those it lacks.
    pub fn fill(&mut self, au: &mut AccessUnit) {
        let codec = au.codec;
        let kinds: &[u8] = match codec {
            Codec::H264 => &[nal::SPS, nal::PPS],
            Codec::H265 => &[
                crate::h265::nal::VPS,
                crate::h265::nal::SPS,
                crate::h265::nal::PPS,
            ],
        };
        for unit in &au.nals {
            let kind = codec.nal_type(unit);
            if kinds.contains(&kind) {
                self.newest.retain(|(k, _)| *k != kind);
                self.newest.push((kind, unit.clone()));
            }
        }
        if !au.keyframe {
            return;
        }
        let missing: Vec<Vec<u8>> = kinds
            .iter()
            .filter(|kind| au.find(**kind).is_none())
            .filter_map(|kind| self.newest.iter().find(|(k, _)| k == kind))
            .map(|(_, unit)| unit.clone())
            .collect();
        au.put_in_front(missing);
    }
}

/// The type of a NAL unit (the low five bits of its header; 0 for an empty unit).
#[must_use]
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |h| h & 0x1f)
}

/// Splits an Annex B byte stream at its start codes (`00 00 01` or `00 00 00 01`) into NAL
/// units. Bytes before the first start code are ignored; trailing zero bytes of a unit (the
/// leading zero of a four-byte start code) are dropped.
#[must_use]
pub fn split_annex_b(data: &[u8]) -> Vec<&[u8]> {
    let mut units = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            if let Some(s) = start {
                push_unit(&mut units, &data[s..i]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push_unit(&mut units, &data[s..]);
    }
    units
}

fn push_unit<'a>(units: &mut Vec<&'a [u8]>, unit: &'a [u8]) {
    let mut end = unit.len();
    while end > 0 && unit[end - 1] == 0 {
        end -= 1;
    }
    if end > 0 {
        units.push(&unit[..end]);
    }
}

/// Groups a sequence of H.264 NAL units into access units (H.264 7.4.1.2.3): a new one begins
/// at an access unit delimiter, a parameter set or SEI after a picture, or a slice whose
/// `first_mb_in_slice` is zero. Access units get consecutive times `frame_ticks` apart.
#[must_use]
pub fn group_access_units<'a>(
    units: impl IntoIterator<Item = &'a [u8]>,
    frame_ticks: u64,
) -> Vec<AccessUnit> {
    group_access_units_of(Codec::H264, units, frame_ticks)
}

/// [`group_access_units`] for a stream of `codec` (for H.265, H.265 7.4.2.4.4: a delimiter,
/// parameter set or prefix SEI after a picture, or a slice with
/// `first_slice_segment_in_pic_flag` set, begins the next).
#[must_use]
pub fn group_access_units_of<'a>(
    codec: Codec,
    units: impl IntoIterator<Item = &'a [u8]>,
    frame_ticks: u64,
) -> Vec<AccessUnit> {
    let mut grouper = Grouper::new(codec, frame_ticks);
    let mut out: Vec<AccessUnit> = units.into_iter().filter_map(|u| grouper.push(u)).collect();
    out.extend(grouper.finish());
    out
}

/// Access units from NAL units arriving one at a time (the rule of [`group_access_units`]).
#[derive(Debug)]
struct Grouper {
    codec: Codec,
    frame_ticks: u64,
    emitted: u64,
    current: Vec<Vec<u8>>,
    has_picture: bool,
}

impl Grouper {
    fn new(codec: Codec, frame_ticks: u64) -> Self {
        Self {
            codec,
            frame_ticks,
            emitted: 0,
            current: Vec::new(),
            has_picture: false,
        }
    }

    /// Adds a unit; returns the access unit it completed, if it began a new one.
    fn push(&mut self, unit: &[u8]) -> Option<AccessUnit> {
        let is_slice = self.codec.is_slice(unit);
        let starts_new = self.has_picture
            && if is_slice {
                self.codec.is_first_slice(unit)
            } else {
                self.codec.starts_access_unit(unit)
            };
        let done = if starts_new { self.take() } else { None };
        self.has_picture |= is_slice;
        self.current.push(unit.to_vec());
        done
    }

    fn take(&mut self) -> Option<AccessUnit> {
        self.has_picture = false;
        if self.current.is_empty() {
            return None;
        }
        let dts = self.frame_ticks.saturating_mul(self.emitted);
        self.emitted += 1;
        Some(AccessUnit::of(
            self.codec,
            dts,
            std::mem::take(&mut self.current),
        ))
    }

    /// The last access unit, if it holds a picture.
    fn finish(mut self) -> Option<AccessUnit> {
        if self.has_picture { self.take() } else { None }
    }
}

/// Splits an H.264 or H.265 Annex B byte stream into access units as it arrives, in pieces of
/// any size (a camera encoder writing to a pipe). Access units get consecutive times
/// `frame_ticks` apart. Memory is bounded by one access unit plus one unfinished NAL unit.
#[derive(Debug)]
pub struct AnnexBReader {
    buffer: Vec<u8>,
    grouper: Grouper,
}

impl AnnexBReader {
    /// A reader of H.264 stamping access units `frame_ticks` apart.
    #[must_use]
    pub fn new(frame_ticks: u64) -> Self {
        Self::of(Codec::H264, frame_ticks)
    }

    /// A reader of `codec` stamping access units `frame_ticks` apart.
    #[must_use]
    pub fn of(codec: Codec, frame_ticks: u64) -> Self {
        Self {
            buffer: Vec::new(),
            grouper: Grouper::new(codec, frame_ticks),
        }
    }

    /// Adds the next bytes of the stream; returns the access units they completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<AccessUnit> {
        self.buffer.extend_from_slice(bytes);
        // Everything before the last start code is complete NAL units.
        let Some(last) = self.buffer.windows(3).rposition(|w| w == [0, 0, 1]) else {
            return Vec::new();
        };
        let complete: Vec<Vec<u8>> = split_annex_b(&self.buffer[..last])
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        self.buffer.drain(..last);
        complete
            .iter()
            .filter_map(|u| self.grouper.push(u))
            .collect()
    }

    /// The stream ended: the access units still held.
    #[must_use]
    pub fn finish(mut self) -> Vec<AccessUnit> {
        let rest = std::mem::take(&mut self.buffer);
        let mut out: Vec<AccessUnit> = split_annex_b(&rest)
            .into_iter()
            .filter_map(|u| self.grouper.push(u))
            .collect();
        out.extend(self.grouper.finish());
        out
    }
}

pub use crate::rbsp::SpsError;
use crate::rbsp::{Bits, ue_max};

/// What the MP4 writer needs from a sequence parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    /// `profile_idc`.
    pub profile: u8,
    /// The constraint flags byte.
    pub compatibility: u8,
    /// `level_idc`.
    pub level: u8,
    /// Displayed width in pixels (after cropping).
    pub width: u32,
    /// Displayed height in pixels (after cropping).
    pub height: u32,
}

fn skip_scaling_list(bits: &mut Bits, size: u32) -> Result<(), SpsError> {
    let mut last = 8i64;
    let mut next = 8i64;
    for _ in 0..size {
        if next != 0 {
            let delta = bits.se()?;
            if !(-128..=127).contains(&delta) {
                return Err(SpsError::Malformed("scaling list delta"));
            }
            next = (last + delta + 256) % 256;
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

/// Reads profile, level and picture size from a sequence parameter set NAL unit (H.264 7.3.2.1).
///
/// # Errors
/// [`SpsError`] if `nal` is not an SPS or is malformed.
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, SpsError> {
    if nal_type(nal) != nal::SPS {
        return Err(SpsError::NotSps);
    }
    let mut b = Bits::new(&nal[1..]);
    let profile = u8::try_from(b.bits(8)?).map_err(|_| SpsError::Malformed("profile"))?;
    let compatibility = u8::try_from(b.bits(8)?).map_err(|_| SpsError::Malformed("flags"))?;
    let level = u8::try_from(b.bits(8)?).map_err(|_| SpsError::Malformed("level"))?;
    ue_max(&mut b, 31, "sps id")?;
    let mut chroma_format = 1;
    if matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    ) {
        chroma_format = ue_max(&mut b, 3, "chroma format")?;
        let separate_planes = chroma_format == 3 && b.bit()? == 1;
        if separate_planes {
            chroma_format = 0;
        }
        ue_max(&mut b, 6, "luma bit depth")?;
        ue_max(&mut b, 6, "chroma bit depth")?;
        b.bit()?; // qpprime_y_zero_transform_bypass_flag
        if b.bit()? == 1 {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if b.bit()? == 1 {
                    skip_scaling_list(&mut b, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    ue_max(&mut b, 12, "log2_max_frame_num")?;
    match ue_max(&mut b, 2, "pic_order_cnt_type")? {
        0 => {
            ue_max(&mut b, 12, "log2_max_pic_order_cnt_lsb")?;
        }
        1 => {
            b.bit()?;
            b.se()?;
            b.se()?;
            let cycle = ue_max(&mut b, 255, "ref frames in poc cycle")?;
            for _ in 0..cycle {
                b.se()?;
            }
        }
        _ => {}
    }
    ue_max(&mut b, 32, "max_num_ref_frames")?;
    b.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = ue_max(&mut b, 1023, "picture width")? + 1;
    let height_units = ue_max(&mut b, 1023, "picture height")? + 1;
    let frame_mbs_only = b.bit()?;
    if frame_mbs_only == 0 {
        b.bit()?; // mb_adaptive_frame_field_flag
    }
    b.bit()?; // direct_8x8_inference_flag
    let mut width = width_mbs * 16;
    let mut height = (2 - frame_mbs_only) * height_units * 16;
    if b.bit()? == 1 {
        let (unit_x, unit_y) = if chroma_format == 0 {
            (1, 2 - frame_mbs_only)
        } else {
            let sub_w = if chroma_format == 3 { 1 } else { 2 };
            let sub_h = if chroma_format == 1 { 2 } else { 1 };
            (sub_w, sub_h * (2 - frame_mbs_only))
        };
        let left = b.ue()?;
        let right = b.ue()?;
        let top = b.ue()?;
        let bottom = b.ue()?;
        let crop_x = left
            .checked_add(right)
            .and_then(|c| c.checked_mul(unit_x))
            .filter(|c| *c < width)
            .ok_or(SpsError::Malformed("horizontal crop"))?;
        let crop_y = top
            .checked_add(bottom)
            .and_then(|c| c.checked_mul(unit_y))
            .filter(|c| *c < height)
            .ok_or(SpsError::Malformed("vertical crop"))?;
        width -= crop_x;
        height -= crop_y;
    }
    Ok(SpsInfo {
        profile,
        compatibility,
        level,
        width,
        height,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_frames_without_their_parameter_sets_get_the_newest() {
        let (vps, sps, pps) = (vec![0x40, 1, 9], vec![0x42, 1, 9], vec![0x44, 1, 9]);
        let aud = vec![0x46, 1, 0x50];
        let mut sets = ParameterSets::default();
        // An IDR with its sets, a picture, then a CRA after a delimiter, without them.
        let mut first = AccessUnit::of(
            Codec::H265,
            0,
            vec![vps.clone(), sps.clone(), pps.clone(), vec![0x26, 1, 0x80]],
        );
        sets.fill(&mut first);
        assert_eq!(first.nals.len(), 4);
        let mut picture = AccessUnit::of(Codec::H265, 1, vec![vec![0x02, 1, 0x80]]);
        sets.fill(&mut picture);
        assert_eq!(picture.nals.len(), 1);
        let cra = vec![0x2a, 1, 0x80];
        let mut key = AccessUnit::of(Codec::H265, 2, vec![aud.clone(), cra.clone()]);
        assert!(key.keyframe);
        sets.fill(&mut key);
        assert_eq!(key.nals, vec![aud, vps, sps, pps, cra]);
    }

    #[test]
    fn splits_three_and_four_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0,
        ];
        let units = split_annex_b(&data);
        assert_eq!(
            units,
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4][..]]
        );
        assert!(split_annex_b(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn a_stream_read_in_pieces_groups_as_a_whole() {
        // AUD, SPS, PPS, IDR in two slices; then three P pictures, one of two slices.
        let units: Vec<Vec<u8>> = vec![
            vec![0x09, 0xf0],
            vec![0x67, 0x42, 0xc0, 0x1f],
            vec![0x68, 0xce],
            vec![0x65, 0x88, 1],
            vec![0x65, 0x40, 2],
            vec![0x41, 0x9a, 3],
            vec![0x41, 0x9a, 4],
            vec![0x41, 0x40, 5],
            vec![0x41, 0x9a, 6],
        ];
        let mut stream = Vec::new();
        for u in &units {
            stream.extend_from_slice(&[0, 0, 0, 1]);
            stream.extend_from_slice(u);
        }
        let whole = group_access_units(split_annex_b(&stream), 6000);
        assert_eq!(whole.len(), 4);
        for piece in [1, 2, 3, 5, 7, 64] {
            let mut reader = AnnexBReader::new(6000);
            let mut got = Vec::new();
            for chunk in stream.chunks(piece) {
                got.extend(reader.push(chunk));
            }
            got.extend(reader.finish());
            assert_eq!(got, whole, "pieces of {piece}");
        }
    }

    #[test]
    fn groups_pictures_into_access_units() {
        let sps: &[u8] = &[0x67, 0x42];
        let pps: &[u8] = &[0x68, 0xce];
        let idr: &[u8] = &[0x65, 0x88, 1];
        let p1: &[u8] = &[0x41, 0x9a, 2];
        let p1b: &[u8] = &[0x41, 0x40, 3]; // second slice of the same picture
        let p2: &[u8] = &[0x41, 0x9a, 4];
        let aus = group_access_units([sps, pps, idr, p1, p1b, p2], 6000);
        assert_eq!(aus.len(), 3);
        assert!(aus[0].keyframe && !aus[1].keyframe);
        assert_eq!(aus[0].nals.len(), 3);
        assert_eq!(aus[1].nals.len(), 2);
        assert_eq!(aus[2].dts, 12_000);
    }

    // x264 baseline 1280x720 SPS (cropping none) and 1920x1080 (8 lines cropped).
    #[test]
    fn reads_picture_size() {
        let sps720 = [0x67, 0x42, 0xc0, 0x1f, 0xda, 0x01, 0x40, 0x16, 0xe8, 0x40];
        let info = parse_sps(&sps720).unwrap();
        assert_eq!((info.profile, info.level), (66, 31));
        assert_eq!((info.width, info.height), (1280, 720));
        let sps1080 = [
            0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00,
            0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
        ];
        let info = parse_sps(&sps1080).unwrap();
        assert_eq!((info.width, info.height), (1920, 1080));
        assert_eq!(parse_sps(&[0x68, 1]), Err(SpsError::NotSps));
        assert!(matches!(
            parse_sps(&[0x67, 0x42]),
            Err(SpsError::Malformed(_))
        ));
    }
}
