//! The `Range` header of a download: one `bytes=` range, in any of its three forms; and the
//! `Content-Range` header of the answer.

use std::ops::Range;

use thiserror::Error;

/// Why a `Range` header is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RangeError {
    /// Not a `bytes=` range.
    #[error("only byte ranges are supported")]
    NotBytes,
    /// More than one range.
    #[error("only one range per request is supported")]
    Multiple,
    /// Not `a-b`, `a-` or `-n` with decimal numbers.
    #[error("malformed range")]
    Malformed,
    /// Well formed, but selects no byte of the object.
    #[error("the range selects no byte of the object")]
    Unsatisfiable,
}

/// The bytes `value` selects from an object of `len` bytes: `bytes=a-b` (inclusive, `b`
/// clipped to the end), `bytes=a-` or `bytes=-n` (the last `n`).
///
/// # Errors
/// See [`RangeError`].
pub fn parse(value: &str, len: u64) -> Result<Range<u64>, RangeError> {
    let spec = value.strip_prefix("bytes=").ok_or(RangeError::NotBytes)?;
    if spec.contains(',') {
        return Err(RangeError::Multiple);
    }
    let (a, b) = spec.split_once('-').ok_or(RangeError::Malformed)?;
    let (a, b) = (a.trim(), b.trim());
    let num = |s: &str| {
        if s.bytes().all(|c| c.is_ascii_digit()) {
            s.parse::<u64>().map_err(|_| RangeError::Malformed)
        } else {
            Err(RangeError::Malformed)
        }
    };
    let range = match (a.is_empty(), b.is_empty()) {
        (true, false) => len.saturating_sub(num(b)?)..len,
        (false, true) => num(a)?..len,
        (false, false) => {
            let (start, last) = (num(a)?, num(b)?);
            if last < start {
                return Err(RangeError::Malformed);
            }
            start..last.saturating_add(1).min(len)
        }
        (true, true) => return Err(RangeError::Malformed),
    };
    if range.start >= range.end {
        return Err(RangeError::Unsatisfiable);
    }
    Ok(range)
}

/// The bytes and whole length a `Content-Range: bytes a-b/len` answer names; `None` for anything
/// else (an unknown length `*`, `b < a`, `b` past the end, not decimal).
#[must_use]
pub fn parse_content_range(value: &str) -> Option<(Range<u64>, u64)> {
    let (span, len) = value.strip_prefix("bytes ")?.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    let num = |s: &str| {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse::<u64>().ok())
            .flatten()
    };
    let (first, last, len) = (num(first)?, num(last)?, num(len)?);
    (first <= last && last < len).then(|| (first..last + 1, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("bytes 0-99/1000"), Some((0..100, 1000)));
        assert_eq!(
            parse_content_range("bytes 999-999/1000"),
            Some((999..1000, 1000))
        );
        for bad in [
            "bytes 0-99/*",
            "bytes 5-4/1000",
            "bytes 0-1000/1000",
            "bytes */1000",
            "items 0-1/2",
            "bytes 0-1/2/3",
            "bytes +0-1/2",
            "bytes 0-18446744073709551615/18446744073709551615",
            "",
        ] {
            assert_eq!(parse_content_range(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_three_forms_and_refusals() {
        assert_eq!(parse("bytes=0-99", 1000), Ok(0..100));
        assert_eq!(parse("bytes=900-", 1000), Ok(900..1000));
        assert_eq!(parse("bytes=-10", 1000), Ok(990..1000));
        assert_eq!(parse("bytes=990-5000", 1000), Ok(990..1000));
        assert_eq!(parse("bytes=-5000", 1000), Ok(0..1000));
        assert_eq!(parse("items=0-1", 1000), Err(RangeError::NotBytes));
        assert_eq!(parse("bytes=0-1,5-6", 1000), Err(RangeError::Multiple));
        assert_eq!(parse("bytes=-", 1000), Err(RangeError::Malformed));
        assert_eq!(parse("bytes=+1-2", 1000), Err(RangeError::Malformed));
        assert_eq!(parse("bytes=5-2", 1000), Err(RangeError::Malformed));
        assert_eq!(parse("bytes=1000-", 1000), Err(RangeError::Unsatisfiable));
        assert_eq!(parse("bytes=-0", 1000), Err(RangeError::Unsatisfiable));
        assert_eq!(
            parse("bytes=99999999999999999999-", 10),
            Err(RangeError::Malformed)
        );
    }
}
