//! Live sessions: a header like a clip's (kind [`ObjectKind::Live`], sequence 0, no previous
//! digest), then H.264 Annex B
//! fragments sealed one by one as frames `index ‖ length ‖ ciphertext ‖ tag`, under a fresh
//! session key wrapped to the camera's current viewing key.
//!
//! Frame indexes count up from 0 and are the STREAM counter, so a relay can drop frames for a
//! slow viewer (the viewer sees the skip) but cannot reorder, replay or alter them, nor end the
//! session early without the viewer noticing the missing final frame.

use rand_core::CryptoRngCore;
use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer};
use crate::envelope::{Header, ObjectKind, OpenError, Opener, SealParams, Sealer, TAG_LEN};
use crate::keys::{CameraKey, CameraPublicKey, HpkePublicKey, HpkeSecretKey};

/// Bytes before a frame's ciphertext: index (8) and length (4).
pub const FRAME_HEADER_LEN: usize = 12;

/// Why a live frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LiveError {
    /// The session header did not verify.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The frame is not well formed.
    #[error("malformed live frame: {0}")]
    Malformed(DecodeError),
    /// The frame's index is not after the previous frame's: replayed or reordered.
    #[error("live frame {index} arrived after frame {previous} (replayed or reordered)")]
    OutOfOrder {
        /// This frame's index.
        index: u64,
        /// The index already seen.
        previous: u64,
    },
    /// The frame failed authentication.
    #[error("live frame {index} failed authentication (altered or injected)")]
    Tampered {
        /// The frame's index.
        index: u64,
    },
    /// A frame came after the session's final frame.
    #[error("live frame arrived after the session ended")]
    AfterEnd,
    /// The fragment is larger than the session's frame size.
    #[error("live fragment of {len} bytes exceeds the session maximum {max}")]
    TooLarge {
        /// Fragment size.
        len: usize,
        /// The session's maximum.
        max: usize,
    },
}

crate::codec::malformed_from!(LiveError);

/// Seals a live session on the camera.
pub struct LiveSealer<'k> {
    sealer: Sealer<'k>,
    next_index: u64,
    ended: bool,
}

impl<'k> LiveSealer<'k> {
    /// Starts a session. `params.kind` becomes [`ObjectKind::Live`] and `params.sequence` 0;
    /// `params.chunk_log2` sets the largest fragment. Appends the session prefix (header and
    /// signature) to `out`; it must reach every viewer before the frames.
    ///
    /// # Errors
    /// As [`Sealer::new`].
    pub fn new(
        mut params: SealParams,
        viewing_key: &HpkePublicKey,
        camera_key: &'k CameraKey,
        rng: &mut impl CryptoRngCore,
        out: &mut Vec<u8>,
    ) -> Result<Self, DecodeError> {
        params.kind = ObjectKind::Live;
        params.sequence = 0;
        params.previous = crate::envelope::ObjectDigest::default();
        let sealer = Sealer::new(params, viewing_key, camera_key, rng, out)?;
        Ok(Self {
            sealer,
            next_index: 0,
            ended: false,
        })
    }

    /// The session header.
    #[must_use]
    pub fn header(&self) -> &Header {
        self.sealer.header()
    }

    /// The index the next frame gets (the number sealed so far).
    #[must_use]
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    /// Seals one fragment as the next frame; `last` ends the session.
    ///
    /// # Errors
    /// [`LiveError::TooLarge`] or [`LiveError::AfterEnd`].
    pub fn seal_fragment(&mut self, fragment: &[u8], last: bool) -> Result<Vec<u8>, LiveError> {
        let max = self.sealer.header().chunk_size();
        if fragment.len() > max {
            return Err(LiveError::TooLarge {
                len: fragment.len(),
                max,
            });
        }
        if self.ended {
            return Err(LiveError::AfterEnd);
        }
        let len = u32::try_from(fragment.len() + TAG_LEN).map_err(|_| LiveError::TooLarge {
            len: fragment.len(),
            max,
        })?;
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + fragment.len() + TAG_LEN);
        frame.extend_from_slice(&self.next_index.to_be_bytes());
        frame.extend_from_slice(&len.to_be_bytes());
        let mut body = fragment.to_vec();
        self.sealer.seal_indexed(self.next_index, last, &mut body);
        frame.extend_from_slice(&body);
        self.next_index += 1;
        self.ended = last;
        Ok(frame)
    }
}

/// One opened live fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveFragment {
    /// The frame's index.
    pub index: u64,
    /// Frames dropped since the previous one received (by the relay, for a slow viewer).
    pub skipped: u64,
    /// Whether this is the session's final frame.
    pub last: bool,
    /// The fragment: the next bytes of the H.264 Annex B stream.
    pub data: Vec<u8>,
}

/// Opens a live session on a viewer.
#[derive(Debug)]
pub struct LiveOpener {
    opener: Opener,
    next_index: u64,
    ended: bool,
}

/// Splits a frame into its index and sealed body.
///
/// # Errors
/// [`DecodeError`] if the frame is malformed or longer than `max_body`.
pub fn parse_frame(frame: &[u8], max_body: usize) -> Result<(u64, &[u8]), DecodeError> {
    let mut r = Reader::new(frame);
    let index = r.u64("frame index")?;
    let body = r.var32("frame body", max_body)?;
    r.finish()?;
    if body.len() < TAG_LEN {
        return Err(DecodeError::Truncated("frame tag"));
    }
    Ok((index, body))
}

/// Encodes a frame header (index and body length); used by relays and tests.
#[must_use]
pub fn frame_header(index: u64, body_len: u32) -> [u8; FRAME_HEADER_LEN] {
    let mut w = Writer::with_capacity(FRAME_HEADER_LEN);
    w.u64(index).u32(body_len);
    let mut out = [0u8; FRAME_HEADER_LEN];
    out.copy_from_slice(w.as_slice());
    out
}

impl LiveOpener {
    /// Verifies the session prefix under the camera's key and unwraps the session key.
    ///
    /// # Errors
    /// As [`Opener::new`]; [`DecodeError::WrongFormat`] if it is not a live session.
    pub fn new(
        prefix: &[u8],
        camera_key: &CameraPublicKey,
        viewing_key: &HpkeSecretKey,
    ) -> Result<Self, LiveError> {
        let opener = Opener::new(prefix, camera_key, viewing_key)?;
        if opener.header().kind != ObjectKind::Live {
            return Err(DecodeError::WrongFormat("live session").into());
        }
        Ok(Self {
            opener,
            next_index: 0,
            ended: false,
        })
    }

    /// Seals `fragment` as frame `index` under the session key, as any holder of the session's
    /// viewing key can once it opened the prefix — every device of the account, and members'.
    /// Such a frame opens here like the camera's own: what tells them apart is the camera's
    /// signed checkpoints ([`crate::live_check`]). The hostile-relay tests forge frames with it.
    #[must_use]
    pub fn seal_frame(&self, index: u64, last: bool, fragment: &[u8]) -> Vec<u8> {
        let mut body = fragment.to_vec();
        self.opener.seal_indexed(index, last, &mut body);
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
        frame.extend_from_slice(&index.to_be_bytes());
        frame.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
        frame.extend_from_slice(&body);
        frame
    }

    /// The session header.
    #[must_use]
    pub fn header(&self) -> &Header {
        self.opener.header()
    }

    /// Opens the next frame received.
    ///
    /// # Errors
    /// [`LiveError`] naming what was wrong; the session state is unchanged on error, so later
    /// good frames still open.
    pub fn open_frame(&mut self, frame: &[u8]) -> Result<LiveFragment, LiveError> {
        if self.ended {
            return Err(LiveError::AfterEnd);
        }
        let (index, body) = parse_frame(frame, self.opener.header().chunk_size() + TAG_LEN)?;
        if index < self.next_index {
            return Err(LiveError::OutOfOrder {
                index,
                previous: self.next_index.saturating_sub(1),
            });
        }
        for last in [false, true] {
            let mut data = body.to_vec();
            if self.opener.open_indexed(index, last, &mut data) {
                let skipped = index - self.next_index;
                self.next_index = index.saturating_add(1);
                self.ended = last;
                return Ok(LiveFragment {
                    index,
                    skipped,
                    last,
                    data,
                });
            }
        }
        Err(LiveError::Tampered { index })
    }
}
