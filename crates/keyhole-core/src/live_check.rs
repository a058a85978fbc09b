//! Live freshness (PROTOCOL.md §8.2.1): that a live view is live, now, and the camera's.
//!
//! Frames are sealed under the session key, which every holder of the epoch's viewing key can
//! open — and so seal: a key holder working with the relay could slip in frames of its own, and
//! a relay alone can play back a session it recorded, or hold it back. So the camera also signs,
//! about once a second, a **checkpoint**: the session, its clock, the viewers' nonces it was
//! given with the time each reached it, and a digest of every frame it sent since the last
//! checkpoint. It travels in the frame stream as a record with index [`CHECKPOINT_INDEX`].
//!
//! A viewer ([`LiveCheck`]) asks with a fresh random nonce, holds each frame it opens until a
//! checkpoint lists it with the same digest, and shows nothing until a checkpoint carries its
//! nonce: a recorded session never does (*not live*), an injected frame is not listed (*injected*),
//! and the camera's time between receiving the nonce and signing a checkpoint, set against the
//! viewer's own time since asking, gives how far behind the view is (clocks need not agree).

use std::collections::VecDeque;
use std::fmt;

use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::envelope::Header;
use crate::ids::{CameraId, ObjectId, Timestamp};
use crate::keys::{CameraKey, CameraPublicKey, Signature};
use crate::live::LiveFragment;

/// The frame index that marks a checkpoint record in a live stream (no frame has it).
pub const CHECKPOINT_INDEX: u64 = u64::MAX;
/// Bytes of a viewer's nonce.
pub const NONCE_LEN: usize = 16;
/// Bytes of a frame digest: the first 16 of BLAKE3 over the frame's sealed body.
pub const DIGEST_LEN: usize = 16;
/// Most nonces one checkpoint carries (the newest viewers').
pub const MAX_NONCES: usize = 16;
/// Most frames one checkpoint lists.
pub const MAX_FRAMES: usize = 1024;
/// Checkpoints a viewer waits for its nonce before it calls the session not live.
pub const CONFIRM_WITHIN: u32 = 10;

const MAGIC: &[u8; 4] = b"KHLC";
const FORMAT: u8 = 1;
const CONTEXT: &str = "keyhole live checkpoint v1";

/// A viewer's nonce.
pub type Nonce = [u8; NONCE_LEN];

/// The digest of a frame's sealed body (ciphertext and tag), as checkpoints list it.
#[must_use]
pub fn frame_digest(body: &[u8]) -> [u8; DIGEST_LEN] {
    let mut digest = [0; DIGEST_LEN];
    digest.copy_from_slice(&blake3::hash(body).as_bytes()[..DIGEST_LEN]);
    digest
}

/// Why a live session is not shown as live.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum LiveCheckError {
    /// Not a well-formed checkpoint.
    #[error("malformed live checkpoint: {0}")]
    Malformed(DecodeError),
    /// The checkpoint's signature does not verify under the camera's key.
    #[error("a live checkpoint is not signed by the camera")]
    BadSignature,
    /// A checkpoint of another camera or another session.
    #[error("a live checkpoint of another session was served in this one")]
    OtherSession,
    /// A frame the camera did not send: injected by someone holding the session key.
    #[error("live frame {index} is not one the camera sent (injected by a holder of the key)")]
    Injected {
        /// The frame's index.
        index: u64,
    },
    /// The camera's checkpoints never named this viewer's request: a recorded session played
    /// back, not the camera now.
    #[error(
        "this live session does not answer this device's request: a recording played back, \
         not the camera now"
    )]
    NotLive,
}

crate::codec::malformed_from!(LiveCheckError);

/// What a camera signs about a live session, about once a second.
#[derive(Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The camera.
    pub camera_id: CameraId,
    /// The session: its header's object id.
    pub session: ObjectId,
    /// The camera's clock when it signed.
    pub clock: Timestamp,
    /// The viewers' nonces the camera was given, each with its clock when it got it (at most
    /// [`MAX_NONCES`], each once).
    pub nonces: Vec<(Nonce, Timestamp)>,
    /// Every frame sent since the previous checkpoint: index and digest ([`frame_digest`]), in
    /// increasing order (at most [`MAX_FRAMES`]).
    pub frames: Vec<(u64, [u8; DIGEST_LEN])>,
}

impl fmt::Debug for Checkpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Checkpoint")
            .field("camera_id", &self.camera_id)
            .field("session", &self.session)
            .field("clock", &self.clock)
            .field("nonces", &self.nonces.len())
            .field("frames", &self.frames.len())
            .finish()
    }
}

impl Checkpoint {
    fn encode_body(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.nonces.len() * 24 + self.frames.len() * 24);
        w.bytes(MAGIC).u8(FORMAT);
        w.bytes(&self.camera_id.0).bytes(&self.session.0);
        w.u64(self.clock.0);
        // `check` keeps both counts in range.
        w.u8(u8::try_from(self.nonces.len()).unwrap_or(u8::MAX));
        for (nonce, at) in &self.nonces {
            w.bytes(nonce).u64(at.0);
        }
        w.u16(u16::try_from(self.frames.len()).unwrap_or(u16::MAX));
        for (index, digest) in &self.frames {
            w.u64(*index).bytes(digest);
        }
        w.into_vec()
    }

    /// The rules no encoding shows.
    fn check(&self) -> Result<(), DecodeError> {
        if self.nonces.len() > MAX_NONCES {
            return Err(DecodeError::Invalid("a checkpoint carries too many nonces"));
        }
        if self.frames.len() > MAX_FRAMES {
            return Err(DecodeError::Invalid("a checkpoint lists too many frames"));
        }
        for (i, (nonce, _)) in self.nonces.iter().enumerate() {
            if self.nonces[..i].iter().any(|(n, _)| n == nonce) {
                return Err(DecodeError::Invalid("a checkpoint carries a nonce twice"));
            }
        }
        if self.frames.windows(2).any(|w| w[0].0 >= w[1].0)
            || self.frames.iter().any(|(i, _)| *i == CHECKPOINT_INDEX)
        {
            return Err(DecodeError::Invalid(
                "a checkpoint's frames are not in increasing order",
            ));
        }
        Ok(())
    }

    /// Signs the checkpoint with the camera's key; returns its encoding.
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a checkpoint that breaks the rules above.
    pub fn sign(&self, key: &CameraKey) -> Result<Vec<u8>, DecodeError> {
        self.check()?;
        let mut encoded = self.encode_body();
        let signature = key.sign(CONTEXT, &[&encoded]);
        encoded.extend_from_slice(&signature.0);
        Ok(encoded)
    }

    /// Parses a checkpoint and checks that `camera_key` signed it for `camera`'s `session`.
    ///
    /// # Errors
    /// [`LiveCheckError::Malformed`], [`LiveCheckError::BadSignature`] or
    /// [`LiveCheckError::OtherSession`].
    pub fn verify(
        bytes: &[u8],
        camera: &CameraId,
        session: &ObjectId,
        camera_key: &CameraPublicKey,
    ) -> Result<Self, LiveCheckError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, MAGIC, FORMAT, "live checkpoint")?;
        let camera_id = CameraId(r.array("camera id")?);
        let session_id = ObjectId(r.array("session")?);
        let clock = Timestamp(r.u64("clock")?);
        let count = usize::from(r.u8("nonce count")?);
        let mut nonces = Vec::with_capacity(count.min(MAX_NONCES));
        for _ in 0..count {
            nonces.push((r.array("nonce")?, Timestamp(r.u64("nonce received at")?)));
        }
        let count = usize::from(r.u16("frame count")?);
        let mut frames = Vec::with_capacity(count.min(MAX_FRAMES));
        for _ in 0..count {
            frames.push((r.u64("frame index")?, r.array("frame digest")?));
        }
        let signed_len = bytes.len() - r.remaining();
        let signature = Signature(r.array("signature")?);
        r.finish()?;
        let checkpoint = Self {
            camera_id,
            session: session_id,
            clock,
            nonces,
            frames,
        };
        checkpoint.check()?;
        camera_key
            .verify(CONTEXT, &[&bytes[..signed_len]], &signature)
            .map_err(|_| LiveCheckError::BadSignature)?;
        if checkpoint.camera_id != *camera || checkpoint.session != *session {
            return Err(LiveCheckError::OtherSession);
        }
        Ok(checkpoint)
    }
}

/// A frame opened but not yet vouched for by a checkpoint.
#[derive(Debug)]
struct Held {
    digest: [u8; DIGEST_LEN],
    fragment: LiveFragment,
}

/// A viewer's check of one live session: frames are released only once a checkpoint lists
/// them and one has named this viewer's nonce.
#[derive(Debug)]
pub struct LiveCheck {
    camera_id: CameraId,
    camera_key: CameraPublicKey,
    session: ObjectId,
    nonce: Nonce,
    /// Opened frames no checkpoint has listed yet, in arrival order.
    pending: VecDeque<Held>,
    /// Listed frames, held until the nonce is confirmed.
    vouched: Vec<LiveFragment>,
    /// The camera's clock when it received this viewer's nonce, once a checkpoint said so.
    received_at: Option<Timestamp>,
    /// The camera's clock in the newest checkpoint, once one named this viewer's nonce.
    camera_clock: Option<Timestamp>,
    checkpoints: u32,
    max_lag_ms: Option<u64>,
    unverified: u64,
}

impl LiveCheck {
    /// Starts checking the session whose verified `header` this is, for a viewer that asked
    /// with `nonce`.
    #[must_use]
    pub fn new(header: &Header, camera_key: CameraPublicKey, nonce: Nonce) -> Self {
        Self {
            camera_id: header.camera_id,
            camera_key,
            session: header.object_id,
            nonce,
            pending: VecDeque::new(),
            vouched: Vec::new(),
            received_at: None,
            camera_clock: None,
            checkpoints: 0,
            max_lag_ms: None,
            unverified: 0,
        }
    }

    /// Holds a frame the session opened (`body`: its sealed bytes as received) until a
    /// checkpoint vouches for it.
    pub fn frame(&mut self, body: &[u8], fragment: LiveFragment) {
        self.pending.push_back(Held {
            digest: frame_digest(body),
            fragment,
        });
    }

    /// Takes a checkpoint record (`since_request_ms`: this viewer's time since it asked) and
    /// returns the frames now vouched for and live, in order.
    ///
    /// # Errors
    /// A checkpoint that does not verify; a frame the camera did not send
    /// ([`LiveCheckError::Injected`]); no checkpoint naming this viewer's nonce after
    /// [`CONFIRM_WITHIN`] of them ([`LiveCheckError::NotLive`]).
    pub fn checkpoint(
        &mut self,
        bytes: &[u8],
        since_request_ms: u64,
    ) -> Result<Vec<LiveFragment>, LiveCheckError> {
        let checkpoint =
            Checkpoint::verify(bytes, &self.camera_id, &self.session, &self.camera_key)?;
        self.checkpoints = self.checkpoints.saturating_add(1);
        if let Some((_, at)) = checkpoint.nonces.iter().find(|(n, _)| *n == self.nonce) {
            self.received_at.get_or_insert(*at);
        }
        if let Some(received_at) = self.received_at {
            let camera_ms = checkpoint.clock.0.saturating_sub(received_at.0);
            let lag = since_request_ms.saturating_sub(camera_ms);
            self.max_lag_ms = Some(self.max_lag_ms.map_or(lag, |m| m.max(lag)));
            self.camera_clock = self.camera_clock.max(Some(checkpoint.clock));
        }
        if let (Some(first), Some(last)) = (checkpoint.frames.first(), checkpoint.frames.last()) {
            let (first, last) = (first.0, last.0);
            while let Some(held) = self.pending.front().filter(|h| h.fragment.index <= last) {
                let index = held.fragment.index;
                let listed = checkpoint
                    .frames
                    .binary_search_by_key(&index, |(i, _)| *i)
                    .ok()
                    .map(|at| checkpoint.frames[at].1);
                match listed {
                    Some(digest) if digest == held.digest => {}
                    // Sent before this checkpoint's frames: vouched for by one that did not
                    // arrive here. Dropped, not shown.
                    None if index < first => self.unverified += 1,
                    _ => return Err(LiveCheckError::Injected { index }),
                }
                if let Some(held) = self.pending.pop_front()
                    && listed.is_some()
                {
                    self.vouched.push(held.fragment);
                }
            }
        }
        if self.received_at.is_none() {
            if self.checkpoints >= CONFIRM_WITHIN {
                return Err(LiveCheckError::NotLive);
            }
            return Ok(Vec::new());
        }
        Ok(std::mem::take(&mut self.vouched))
    }

    /// How far behind the camera this view has been at most, in milliseconds, once confirmed.
    #[must_use]
    pub fn max_lag_ms(&self) -> Option<u64> {
        self.max_lag_ms
    }

    /// The camera's clock in the newest checkpoint once one named this viewer's nonce: a moment
    /// of the camera's own time this viewer saw, live (talk-back names it, PROTOCOL.md §8.4).
    #[must_use]
    pub fn camera_clock(&self) -> Option<Timestamp> {
        self.camera_clock
    }

    /// Frames dropped because no checkpoint vouched for them (one was lost on the way), counting
    /// those still held now.
    #[must_use]
    pub fn unverified(&self) -> u64 {
        self.unverified + self.pending.len() as u64 + self.vouched.len() as u64
    }
}
