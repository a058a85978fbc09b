//! H.265 (HEVC) parameter sets: what an MP4 `hvc1` track needs from a camera's stream. The
//! sequence parameter set gives the profile, tier, level, chroma format, bit depths and picture
//! size (ITU-T H.265 7.3.2.2, 7.3.3); the decoder configuration record (`hvcC`, ISO/IEC 14496-15
//! 8.3.3) carries them with the parameter sets themselves, and is both written and read here.

use crate::rbsp::{Bits, SpsError, ue_max};

/// H.265 NAL unit types this crate acts on (H.265 Table 7-1).
pub mod nal {
    /// Broken link access, the first of the intra random access point (IRAP) types 16..=23.
    pub const BLA_W_LP: u8 = 16;
    /// The last IRAP type (reserved ones included).
    pub const IRAP_LAST: u8 = 23;
    /// Video parameter set.
    pub const VPS: u8 = 32;
    /// Sequence parameter set.
    pub const SPS: u8 = 33;
    /// Picture parameter set.
    pub const PPS: u8 = 34;
    /// Access unit delimiter.
    pub const AUD: u8 = 35;
}

/// The type of an H.265 NAL unit from its two-byte header (0 for an empty unit).
#[must_use]
pub fn nal_type(nal: &[u8]) -> u8 {
    nal.first().map_or(0, |b| (b >> 1) & 0x3f)
}

/// Whether the unit is a slice of an intra random access point picture, where decoding may
/// start (IDR, CRA or BLA).
#[must_use]
pub fn is_irap(nal: &[u8]) -> bool {
    (nal::BLA_W_LP..=nal::IRAP_LAST).contains(&nal_type(nal))
}

/// The profile, tier and level of a stream (H.265 7.3.3, the general part).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileTierLevel {
    /// `general_profile_space`, 0..=3.
    pub profile_space: u8,
    /// `general_tier_flag`: the High tier.
    pub high_tier: bool,
    /// `general_profile_idc` (1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions).
    pub profile: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 the most significant bit.
    pub compatibility: u32,
    /// The 48 bits from `general_progressive_source_flag` on, as `hvcC` carries them.
    pub constraints: [u8; 6],
    /// `general_level_idc`: 30 times the level (93 is level 3.1).
    pub level: u8,
}

/// What the MP4 writer needs from an H.265 sequence parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HevcSps {
    /// Profile, tier and level.
    pub ptl: ProfileTierLevel,
    /// `sps_max_sub_layers_minus1` + 1: temporal layers, 1..=7.
    pub sub_layers: u8,
    /// `sps_temporal_id_nesting_flag`.
    pub temporal_id_nested: bool,
    /// `chroma_format_idc`: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format: u8,
    /// Bits per luma sample, 8..=15.
    pub luma_bits: u8,
    /// Bits per chroma sample, 8..=15.
    pub chroma_bits: u8,
    /// Displayed width in pixels (after the conformance window).
    pub width: u32,
    /// Displayed height in pixels (after the conformance window).
    pub height: u32,
}

/// The largest picture side taken, in luma samples (H.265 level 6.2 allows 8 444 × 8 444 at
/// most for one side with the other at its least; twice that leaves room and stops nonsense).
const MAX_SIDE: u32 = 16_888;

fn byte(b: &mut Bits, n: u32, what: &'static str) -> Result<u8, SpsError> {
    u8::try_from(b.bits(n)?).map_err(|_| SpsError::Malformed(what))
}

/// `profile_tier_level(1, max_sub_layers_minus1)` (H.265 7.3.3): the general part kept, the
/// sub-layers' skipped.
fn profile_tier_level(
    b: &mut Bits,
    max_sub_layers_minus1: u32,
) -> Result<ProfileTierLevel, SpsError> {
    let profile_space = byte(b, 2, "profile space")?;
    let high_tier = b.bit()? == 1;
    let profile = byte(b, 5, "profile")?;
    let compatibility = b.bits(32)?;
    let mut constraints = [0u8; 6];
    for c in &mut constraints {
        *c = byte(b, 8, "constraint flags")?;
    }
    let level = byte(b, 8, "level")?;
    let mut present = Vec::with_capacity(max_sub_layers_minus1 as usize);
    for _ in 0..max_sub_layers_minus1 {
        present.push((b.bit()? == 1, b.bit()? == 1));
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            b.bits(2)?; // reserved_zero_2bits
        }
    }
    for (profile_present, level_present) in present {
        if profile_present {
            // Profile space, tier, profile, 32 compatibility flags, 48 more bits.
            b.bits(8)?;
            b.bits(32)?;
            b.bits(24)?;
            b.bits(24)?;
        }
        if level_present {
            b.bits(8)?;
        }
    }
    Ok(ProfileTierLevel {
        profile_space,
        high_tier,
        profile,
        compatibility,
        constraints,
        level,
    })
}

/// Reads an H.265 sequence parameter set NAL unit (H.265 7.3.2.2) as far as the bit depths.
///
/// # Errors
/// [`SpsError`] if `nal` is not an SPS or is malformed.
pub fn parse_sps(nal: &[u8]) -> Result<HevcSps, SpsError> {
    if nal_type(nal) != nal::SPS || nal.len() < 3 {
        return Err(SpsError::NotSps);
    }
    let mut b = Bits::new(&nal[2..]);
    b.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = b.bits(3)?;
    if max_sub_layers_minus1 > 6 {
        return Err(SpsError::Malformed("sub-layers"));
    }
    let temporal_id_nested = b.bit()? == 1;
    let ptl = profile_tier_level(&mut b, max_sub_layers_minus1)?;
    ue_max(&mut b, 15, "sps id")?;
    let chroma_format = ue_max(&mut b, 3, "chroma format")?;
    let separate_planes = chroma_format == 3 && b.bit()? == 1;
    let width = ue_max(&mut b, MAX_SIDE, "picture width")?;
    let height = ue_max(&mut b, MAX_SIDE, "picture height")?;
    // The conformance window is counted in chroma samples (H.265 Table 6-1).
    let (sub_width, sub_height) = match (chroma_format, separate_planes) {
        (1, _) => (2, 2),
        (2, _) => (2, 1),
        _ => (1, 1),
    };
    let (mut left, mut right, mut top, mut bottom) = (0, 0, 0, 0);
    if b.bit()? == 1 {
        left = ue_max(&mut b, MAX_SIDE, "conformance window")?;
        right = ue_max(&mut b, MAX_SIDE, "conformance window")?;
        top = ue_max(&mut b, MAX_SIDE, "conformance window")?;
        bottom = ue_max(&mut b, MAX_SIDE, "conformance window")?;
    }
    let width = width
        .checked_sub(sub_width * (left + right))
        .filter(|w| *w > 0)
        .ok_or(SpsError::Malformed(
            "conformance window wider than the picture",
        ))?;
    let height = height
        .checked_sub(sub_height * (top + bottom))
        .filter(|h| *h > 0)
        .ok_or(SpsError::Malformed(
            "conformance window taller than the picture",
        ))?;
    // `hvcC` has three bits for each (16-bit video is a profile cameras do not use).
    let luma_bits = 8 + ue_max(&mut b, 7, "luma bit depth")?;
    let chroma_bits = 8 + ue_max(&mut b, 7, "chroma bit depth")?;
    Ok(HevcSps {
        ptl,
        sub_layers: u8::try_from(max_sub_layers_minus1 + 1).unwrap_or(7),
        temporal_id_nested,
        chroma_format: u8::try_from(chroma_format).unwrap_or(1),
        luma_bits: u8::try_from(luma_bits).unwrap_or(16),
        chroma_bits: u8::try_from(chroma_bits).unwrap_or(16),
        width,
        height,
    })
}

/// Why an H.265 decoder configuration could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HevcConfigError {
    /// The sequence parameter set could not be read.
    #[error(transparent)]
    Sps(#[from] SpsError),
    /// A parameter set is missing, of the wrong type, or too long for the record.
    #[error("H.265 parameter sets: {0}")]
    ParameterSets(&'static str),
    /// The record is not one this crate reads.
    #[error("malformed hvcC: {0}")]
    Malformed(&'static str),
}

/// An H.265 stream's decoder configuration: its parameter sets, and what its SPS says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// The video parameter set.
    pub vps: Vec<u8>,
    /// The sequence parameter set.
    pub sps: Vec<u8>,
    /// The picture parameter set.
    pub pps: Vec<u8>,
    /// What the SPS says.
    pub info: HevcSps,
}

/// Fixed bytes of an `hvcC` record before its arrays.
const RECORD_HEAD: usize = 23;
/// At most this many arrays, and units per array, are read.
const MAX_UNITS: usize = 16;

impl HevcConfig {
    /// The configuration of a stream with these parameter sets.
    ///
    /// # Errors
    /// [`HevcConfigError`] for a unit of the wrong type, longer than 65 535 bytes, or an SPS
    /// that does not parse.
    pub fn new(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Self, HevcConfigError> {
        for (unit, kind, what) in [
            (vps, nal::VPS, "no video parameter set"),
            (sps, nal::SPS, "no sequence parameter set"),
            (pps, nal::PPS, "no picture parameter set"),
        ] {
            if nal_type(unit) != kind || unit.len() < 3 {
                return Err(HevcConfigError::ParameterSets(what));
            }
            if unit.len() > usize::from(u16::MAX) {
                return Err(HevcConfigError::ParameterSets(
                    "a parameter set is too long",
                ));
            }
        }
        Ok(Self {
            vps: vps.to_vec(),
            sps: sps.to_vec(),
            pps: pps.to_vec(),
            info: parse_sps(sps)?,
        })
    }

    /// The `hvcC` record (ISO/IEC 14496-15 8.3.3.1): the SPS's profile, tier, level and
    /// formats, 4-byte NAL lengths, and one complete array each of VPS, SPS and PPS.
    #[must_use]
    pub fn to_hvcc(&self) -> Vec<u8> {
        let i = &self.info;
        let mut out =
            Vec::with_capacity(RECORD_HEAD + 15 + self.vps.len() + self.sps.len() + self.pps.len());
        out.push(1); // configurationVersion
        out.push(i.ptl.profile_space << 6 | u8::from(i.ptl.high_tier) << 5 | i.ptl.profile);
        out.extend_from_slice(&i.ptl.compatibility.to_be_bytes());
        out.extend_from_slice(&i.ptl.constraints);
        out.push(i.ptl.level);
        out.extend_from_slice(&[0xf0, 0x00]); // min_spatial_segmentation_idc 0
        out.push(0xfc); // parallelismType 0: unknown
        out.push(0xfc | i.chroma_format);
        out.push(0xf8 | (i.luma_bits - 8));
        out.push(0xf8 | (i.chroma_bits - 8));
        out.extend_from_slice(&[0, 0]); // avgFrameRate: unspecified
        // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
        out.push((i.sub_layers & 7) << 3 | u8::from(i.temporal_id_nested) << 2 | 3);
        out.push(3); // numOfArrays
        for (kind, unit) in [
            (nal::VPS, &self.vps),
            (nal::SPS, &self.sps),
            (nal::PPS, &self.pps),
        ] {
            out.push(0x80 | kind); // array_completeness: every set is here
            out.extend_from_slice(&1u16.to_be_bytes());
            // `new` keeps every unit within 16 bits.
            out.extend_from_slice(&u16::try_from(unit.len()).unwrap_or(u16::MAX).to_be_bytes());
            out.extend_from_slice(unit);
        }
        out
    }

    /// Reads an `hvcC` record: its first VPS, SPS and PPS (other arrays, such as SEI, are
    /// skipped), which must describe the same stream the record says.
    ///
    /// # Errors
    /// [`HevcConfigError`] for another version, NAL lengths other than 4 bytes, a missing
    /// parameter set, a record that ends early or goes on, or one whose SPS disagrees with it.
    pub fn from_hvcc(record: &[u8]) -> Result<Self, HevcConfigError> {
        let short = HevcConfigError::Malformed("ends early");
        let head = record.get(..RECORD_HEAD).ok_or(short.clone())?;
        if head[0] != 1 {
            return Err(HevcConfigError::Malformed("not version 1"));
        }
        if head[21] & 3 != 3 {
            return Err(HevcConfigError::Malformed("NAL lengths other than 4 bytes"));
        }
        let arrays = usize::from(head[22]);
        if arrays > MAX_UNITS {
            return Err(HevcConfigError::Malformed("too many arrays"));
        }
        let (mut vps, mut sps, mut pps) = (None, None, None);
        let mut at = RECORD_HEAD;
        for _ in 0..arrays {
            let kind = record.get(at).ok_or(short.clone())? & 0x3f;
            let count = record.get(at + 1..at + 3).ok_or(short.clone())?;
            let count = usize::from(u16::from_be_bytes([count[0], count[1]]));
            if count > MAX_UNITS {
                return Err(HevcConfigError::Malformed("too many parameter sets"));
            }
            at += 3;
            for _ in 0..count {
                let len = record.get(at..at + 2).ok_or(short.clone())?;
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                let unit = record.get(at + 2..at + 2 + len).ok_or(short.clone())?;
                at += 2 + len;
                if nal_type(unit) != kind {
                    return Err(HevcConfigError::Malformed("a unit not of its array's type"));
                }
                let slot = match kind {
                    nal::VPS => &mut vps,
                    nal::SPS => &mut sps,
                    nal::PPS => &mut pps,
                    _ => continue,
                };
                slot.get_or_insert(unit);
            }
        }
        if at != record.len() {
            return Err(HevcConfigError::Malformed("bytes after the arrays"));
        }
        let (Some(vps), Some(sps), Some(pps)) = (vps, sps, pps) else {
            return Err(HevcConfigError::ParameterSets(
                "the record lacks VPS, SPS or PPS",
            ));
        };
        let config = Self::new(vps, sps, pps)?;
        // What the record says in its head must be what its SPS says.
        if !same_stream(&config.to_hvcc()[..RECORD_HEAD], head) {
            return Err(HevcConfigError::Malformed(
                "the record and its SPS disagree",
            ));
        }
        Ok(config)
    }

    /// The RFC 6381 codecs parameter (ISO/IEC 14496-15 E.3): `hvc1.` profile space and
    /// profile, compatibility flags (bit-reversed, hexadecimal), tier and level, then the
    /// constraint bytes up to the last non-zero one. For example `hvc1.1.6.L93.B0`.
    #[must_use]
    pub fn codecs(&self) -> String {
        let p = &self.info.ptl;
        let space = ["", "A", "B", "C"][usize::from(p.profile_space & 3)];
        let mut out = format!(
            "hvc1.{space}{}.{:X}.{}{}",
            p.profile,
            p.compatibility.reverse_bits(),
            if p.high_tier { 'H' } else { 'L' },
            p.level
        );
        let kept = p
            .constraints
            .iter()
            .rposition(|b| *b != 0)
            .map_or(0, |i| i + 1);
        for b in &p.constraints[..kept] {
            out.push_str(&format!(".{b:X}"));
        }
        out
    }
}

/// Whether two record heads describe the same stream: profile, tier, level and formats, the
/// fields a muxer may fill otherwise (segmentation, parallelism, frame rate) aside.
fn same_stream(ours: &[u8], theirs: &[u8]) -> bool {
    ours[1..13] == theirs[1..13]
        && ours[16..19] == theirs[16..19]
        && ours[21] & 0x3f == theirs[21] & 0x3f
}

#[cfg(test)]
mod tests {
    use super::*;

    /// x265's parameter sets for a 320×240 Main-profile stream at level 2 (made with
    /// `ffmpeg -f lavfi -i testsrc=size=320x240 -c:v libx265 -f hevc`).
    const VPS: &[u8] = &[
        0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00,
        0x03, 0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x98, 0x09,
    ];
    const SPS: &[u8] = &[
        0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00,
        0x03, 0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0f, 0x16, 0x59, 0x59, 0xa4, 0x93, 0x2b, 0xc0, 0x5a,
        0x02, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x1e, 0x10,
    ];
    const PPS: &[u8] = &[0x44, 0x01, 0xc1, 0x72, 0xb4, 0x62, 0x40];

    #[test]
    fn an_x265_sps_reads_as_main_profile_at_its_size() {
        let sps = parse_sps(SPS).unwrap();
        assert_eq!(
            (sps.ptl.profile, sps.ptl.level, sps.ptl.high_tier),
            (1, 60, false)
        );
        assert_eq!((sps.width, sps.height), (320, 240));
        assert_eq!(
            (sps.chroma_format, sps.luma_bits, sps.chroma_bits),
            (1, 8, 8)
        );
        assert_eq!(sps.ptl.compatibility, 0x6000_0000);
    }

    #[test]
    fn hvcc_round_trips_and_names_its_codec() {
        let config = HevcConfig::new(VPS, SPS, PPS).unwrap();
        let record = config.to_hvcc();
        assert_eq!(HevcConfig::from_hvcc(&record).unwrap(), config);
        assert_eq!(config.codecs(), "hvc1.1.6.L60.90");
        for cut in 0..record.len() {
            assert!(
                HevcConfig::from_hvcc(&record[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut longer = record.clone();
        longer.push(0);
        assert!(HevcConfig::from_hvcc(&longer).is_err());
    }

    #[test]
    fn a_record_that_disagrees_with_its_sps_is_refused() {
        let mut record = HevcConfig::new(VPS, SPS, PPS).unwrap().to_hvcc();
        record[12] ^= 0x01; // the level
        assert_eq!(
            HevcConfig::from_hvcc(&record),
            Err(HevcConfigError::Malformed(
                "the record and its SPS disagree"
            ))
        );
    }

    #[test]
    fn units_of_the_wrong_type_are_refused() {
        assert!(HevcConfig::new(SPS, SPS, PPS).is_err());
        assert_eq!(parse_sps(PPS), Err(SpsError::NotSps));
        assert!(is_irap(&[0x26, 0x01]) && !is_irap(&[0x02, 0x01]));
    }
}
