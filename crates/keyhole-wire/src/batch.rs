//! A batch upload: several sealed objects in one request body, each as a big-endian `u32`
//! length followed by that many bytes, so a battery camera sends a clip and its event with one
//! request.

use thiserror::Error;

/// Largest batch body the server reads.
pub const MAX_BYTES: usize = 8 << 20;
/// Most objects a camera puts in one batch.
pub const MAX_OBJECTS: usize = 16;

/// Why a batch body is refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum BatchError {
    /// The body stops inside a length prefix.
    #[error("batch ends inside a length")]
    CutLength,
    /// The body stops inside an object.
    #[error("batch ends inside an object")]
    CutObject,
    /// Over [`MAX_BYTES`] (or an object over `u32::MAX` bytes when building).
    #[error("batch is larger than {MAX_BYTES} bytes")]
    TooLarge,
}

/// The body for `objects`.
///
/// # Errors
/// [`BatchError::TooLarge`] if the body would exceed [`MAX_BYTES`].
pub fn encode(objects: &[&[u8]]) -> Result<Vec<u8>, BatchError> {
    let total: usize = objects.iter().map(|o| 4 + o.len()).sum();
    if total > MAX_BYTES {
        return Err(BatchError::TooLarge);
    }
    let mut body = Vec::with_capacity(total);
    for object in objects {
        let len = u32::try_from(object.len()).map_err(|_| BatchError::TooLarge)?;
        body.extend_from_slice(&len.to_be_bytes());
        body.extend_from_slice(object);
    }
    Ok(body)
}

/// The objects in a batch body, in order, borrowed from it.
///
/// # Errors
/// A body over [`MAX_BYTES`], or one that stops inside a length or an object.
pub fn split(body: &[u8]) -> Result<Vec<&[u8]>, BatchError> {
    if body.len() > MAX_BYTES {
        return Err(BatchError::TooLarge);
    }
    let mut rest = body;
    let mut objects = Vec::new();
    while !rest.is_empty() {
        let (len, after) = rest.split_first_chunk::<4>().ok_or(BatchError::CutLength)?;
        let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| BatchError::CutObject)?;
        if after.len() < len {
            return Err(BatchError::CutObject);
        }
        let (object, after) = after.split_at(len);
        objects.push(object);
        rest = after;
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let body = encode(&[b"clip", b"", b"event"]).unwrap();
        assert_eq!(body.len(), 4 * 3 + 9);
        assert_eq!(
            split(&body).unwrap(),
            vec![&b"clip"[..], &b""[..], &b"event"[..]]
        );
        assert_eq!(split(&[]).unwrap(), Vec::<&[u8]>::new());
        assert_eq!(split(&body[..2]), Err(BatchError::CutLength));
        assert_eq!(split(&body[..6]), Err(BatchError::CutObject));
        assert_eq!(split(&[0, 0, 0, 9, 1]), Err(BatchError::CutObject));
        let big = vec![0u8; MAX_BYTES];
        assert_eq!(encode(&[&big]), Err(BatchError::TooLarge));
        assert_eq!(split(&vec![0u8; MAX_BYTES + 1]), Err(BatchError::TooLarge));
    }
}
