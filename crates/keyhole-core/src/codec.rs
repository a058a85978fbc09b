//! The canonical binary encoding used by every signed or sealed format.
//!
//! Integers are big-endian; variable-length fields carry a length prefix of a stated width and
//! a stated maximum; decoders reject trailing bytes, so each value has exactly one encoding and
//! a signature over an encoding is a signature over the value.

use thiserror::Error;

/// Why bytes could not be decoded. Every variant names the field that was being read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended before the field was complete.
    #[error("input ends inside {0}")]
    Truncated(&'static str),
    /// Bytes remain after the value ended.
    #[error("{0} unexpected bytes after the end")]
    TrailingBytes(usize),
    /// A length prefix exceeds the field's maximum.
    #[error("{field} is {len} bytes, more than the maximum {max}")]
    TooLong {
        /// The field being read.
        field: &'static str,
        /// The declared length.
        len: usize,
        /// The maximum allowed.
        max: usize,
    },
    /// The field holds a value the format does not allow.
    #[error("invalid {0}")]
    Invalid(&'static str),
    /// The magic bytes or format version are not one this library reads.
    #[error("not a {0} (wrong magic or unsupported version)")]
    WrongFormat(&'static str),
}

/// Appends encoded fields to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// An empty writer.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A writer with room for `n` bytes.
    #[must_use]
    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    /// Appends one byte.
    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// Appends a big-endian `u16`.
    pub fn u16(&mut self, v: u16) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u32`.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends a big-endian `u64`.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes(&v.to_be_bytes())
    }

    /// Appends bytes with no length prefix (fixed-size fields).
    pub fn bytes(&mut self, v: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(v);
        self
    }

    /// Appends bytes with a one-byte length prefix.
    ///
    /// # Panics
    /// If `v` is longer than 255 bytes; callers check lengths when they build the value.
    pub fn var8(&mut self, v: &[u8]) -> &mut Self {
        let len = u8::try_from(v.len()).unwrap_or_else(|_| unreachable!("var8 field over 255"));
        self.u8(len).bytes(v)
    }

    /// Appends bytes with a four-byte length prefix.
    ///
    /// # Panics
    /// If `v` is 4 GiB or longer; callers check lengths when they build the value.
    pub fn var32(&mut self, v: &[u8]) -> &mut Self {
        let len = u32::try_from(v.len()).unwrap_or_else(|_| unreachable!("var32 field over 4 GiB"));
        self.u32(len).bytes(v)
    }

    /// The bytes written so far.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded bytes.
    #[must_use]
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads encoded fields from a byte slice, front to back.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    #[must_use]
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    #[must_use]
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// Takes the next `n` bytes.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] if fewer remain.
    pub fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() < n {
            return Err(DecodeError::Truncated(field));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// Takes a fixed-size array.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] if fewer than `N` bytes remain.
    pub fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }

    /// Reads one byte.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] at the end of input.
    pub fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    /// Reads a big-endian `u16`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] at the end of input.
    pub fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u32`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] at the end of input.
    pub fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_be_bytes(self.array(field)?))
    }

    /// Reads a big-endian `u64`.
    ///
    /// # Errors
    /// [`DecodeError::Truncated`] at the end of input.
    pub fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_be_bytes(self.array(field)?))
    }

    /// Reads bytes with a one-byte length prefix, at most `max` long.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`] or [`DecodeError::Truncated`].
    pub fn var8(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::from(self.u8(field)?);
        Self::check_len(field, len, max)?;
        self.take(len, field)
    }

    /// Reads bytes with a four-byte length prefix, at most `max` long.
    ///
    /// # Errors
    /// [`DecodeError::TooLong`] or [`DecodeError::Truncated`].
    pub fn var32(&mut self, field: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = usize::try_from(self.u32(field)?).map_err(|_| DecodeError::Invalid(field))?;
        Self::check_len(field, len, max)?;
        self.take(len, field)
    }

    /// Reads a UTF-8 string with a one-byte length prefix.
    ///
    /// # Errors
    /// As [`Reader::var8`], or [`DecodeError::Invalid`] if the bytes are not UTF-8.
    pub fn string8(&mut self, field: &'static str, max: usize) -> Result<String, DecodeError> {
        let raw = self.var8(field, max)?;
        String::from_utf8(raw.to_vec()).map_err(|_| DecodeError::Invalid(field))
    }

    /// Checks that the whole input was consumed.
    ///
    /// # Errors
    /// [`DecodeError::TrailingBytes`] if any bytes remain.
    pub fn finish(self) -> Result<(), DecodeError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    fn check_len(field: &'static str, len: usize, max: usize) -> Result<(), DecodeError> {
        if len > max {
            return Err(DecodeError::TooLong { field, len, max });
        }
        Ok(())
    }
}

/// Checks a magic prefix and format version byte.
pub(crate) fn expect_magic(
    r: &mut Reader<'_>,
    magic: &[u8; 4],
    version: u8,
    what: &'static str,
) -> Result<(), DecodeError> {
    let got: [u8; 4] = r.array(what)?;
    let v = r.u8(what)?;
    if &got != magic || v != version {
        return Err(DecodeError::WrongFormat(what));
    }
    Ok(())
}

/// `From<DecodeError>` for an error enum whose `Malformed` variant carries it. Not `#[from]`:
/// that would also make the decode error the source, and reports that print the chain after
/// the message (which already includes it) would say it twice.
macro_rules! malformed_from {
    ($error:ty) => {
        impl From<$crate::codec::DecodeError> for $error {
            fn from(e: $crate::codec::DecodeError) -> Self {
                Self::Malformed(e)
            }
        }
    };
}
pub(crate) use malformed_from;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_trailing() {
        let mut w = Writer::new();
        w.u8(7)
            .u16(0x1234)
            .u32(9)
            .u64(u64::MAX)
            .var8(b"abc")
            .var32(b"");
        let bytes = w.into_vec();
        let mut r = Reader::new(&bytes);
        assert_eq!(r.u8("a").unwrap(), 7);
        assert_eq!(r.u16("b").unwrap(), 0x1234);
        assert_eq!(r.u32("c").unwrap(), 9);
        assert_eq!(r.u64("d").unwrap(), u64::MAX);
        assert_eq!(r.var8("e", 3).unwrap(), b"abc");
        assert_eq!(r.var32("f", 0).unwrap(), b"");
        r.finish().unwrap();

        let mut longer = bytes.clone();
        longer.push(0);
        let mut r = Reader::new(&longer);
        r.take(bytes.len(), "all").unwrap();
        assert_eq!(r.finish(), Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn length_limits_and_truncation() {
        let mut r = Reader::new(&[4, 1, 2, 3, 4]);
        assert_eq!(
            r.clone().var8("name", 3),
            Err(DecodeError::TooLong {
                field: "name",
                len: 4,
                max: 3
            })
        );
        assert_eq!(
            Reader::new(&[5, 1]).var8("name", 9),
            Err(DecodeError::Truncated("name"))
        );
        assert_eq!(r.var8("name", 4).unwrap(), &[1, 2, 3, 4]);
        assert_eq!(
            Reader::new(&[0xff]).string8("s", 9),
            Err(DecodeError::TooLong {
                field: "s",
                len: 255,
                max: 9
            })
        );
        assert_eq!(
            Reader::new(&[2, b'a']).string8("s", 9),
            Err(DecodeError::Truncated("s"))
        );
        assert_eq!(
            Reader::new(&[1, 0xff]).string8("s", 9),
            Err(DecodeError::Invalid("s"))
        );
    }
}
