//! Reading parameter sets bit by bit: the RBSP of a NAL unit (emulation prevention bytes taken
//! out), fixed-width fields and Exp-Golomb codes (H.264 and H.265 clause 7.2, 9.2).

/// Why a parameter set could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SpsError {
    /// The unit is not a sequence parameter set.
    #[error("not a sequence parameter set")]
    NotSps,
    /// The set ends early or has a value out of range.
    #[error("malformed sequence parameter set: {0}")]
    Malformed(&'static str),
}

/// Bit reader over an RBSP (emulation prevention bytes removed).
pub(crate) struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    pub(crate) fn new(nal_payload: &[u8]) -> Self {
        let mut data = Vec::with_capacity(nal_payload.len());
        let mut zeros = 0;
        for &b in nal_payload {
            if zeros >= 2 && b == 3 {
                zeros = 0;
                continue;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            data.push(b);
        }
        Self { data, pos: 0 }
    }

    pub(crate) fn bit(&mut self) -> Result<u32, SpsError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(SpsError::Malformed("ends early"))?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u32::from(bit))
    }

    pub(crate) fn bits(&mut self, n: u32) -> Result<u32, SpsError> {
        let mut v = 0;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    /// Exp-Golomb `ue(v)`, limited to 31 leading zeros (values below 2^32 - 1).
    pub(crate) fn ue(&mut self) -> Result<u32, SpsError> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(SpsError::Malformed("exp-golomb code too long"));
            }
        }
        let rest = self.bits(zeros)?;
        ((1u64 << zeros) - 1 + u64::from(rest))
            .try_into()
            .map_err(|_| SpsError::Malformed("exp-golomb value too large"))
    }

    pub(crate) fn se(&mut self) -> Result<i64, SpsError> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

pub(crate) fn ue_max(bits: &mut Bits, max: u32, what: &'static str) -> Result<u32, SpsError> {
    let v = bits.ue()?;
    if v > max {
        return Err(SpsError::Malformed(what));
    }
    Ok(v)
}
