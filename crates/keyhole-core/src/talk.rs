//! Talking back (PROTOCOL.md §8.4): an owner's device speaks through the camera's speaker.
//!
//! A talk session is sealed to the camera's live **challenge** (the X25519 key its signed heads
//! name, §8.2.2) and authenticated by the **viewing key** of the camera's current epoch: the
//! session key comes from both X25519(ephemeral, challenge) and X25519(viewing, challenge). So
//! only the camera opens it, and only a holder of the epoch's viewing key — the roster's devices
//! and the members the camera is shared with, never a device revoked before the epoch began,
//! never the server — can make one the camera opens.
//!
//! Sound travels as frames like a live session's (`index ‖ length ‖ ciphertext ‖ tag`, one STREAM
//! chunk each), so a relay cannot reorder, replay, alter or inject them. Each frame also names a
//! moment of the camera's own clock the talker saw (a live checkpoint's) and how long ago the
//! talker saw it: the camera measures how late the sound is against its own clock, with no clocks
//! agreeing, and refuses sound more than [`LAG_LIMIT_MS`] late — a talk stream the server held
//! back or plays again later.

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::envelope::chunk::ChunkCipher;
use crate::envelope::{Suite, TAG_LEN};
use crate::ids::{CameraId, Timestamp};
use crate::keys::{HpkePublicKey, HpkeSecretKey};
use crate::live::{FRAME_HEADER_LEN, parse_frame};
use crate::live_request::{CHALLENGE_LEN, LiveChallenge};

const MAGIC: &[u8; 4] = b"KHTK";
const FORMAT: u8 = 1;
const CONTEXT: &str = "keyhole talk v1";

/// Bytes of an encoded talk header.
pub const HEADER_LEN: usize = 4 + 1 + 1 + 16 + 4 + CHALLENGE_LEN + 32 + SESSION_LEN;
/// Bytes of a session id.
pub const SESSION_LEN: usize = 16;
/// The largest Opus packet (RFC 6716 §3.2.1): a frame carries at most one.
pub const MAX_PACKET: usize = 1275;
/// Bytes of a frame's plaintext before its sound: the camera time seen and the time since.
const SPOKEN_PREFIX: usize = 8 + 4;
/// The largest frame body: prefix, a packet, the tag.
pub const MAX_BODY: usize = SPOKEN_PREFIX + MAX_PACKET + TAG_LEN;
/// The largest frame on the wire.
pub const MAX_FRAME: usize = FRAME_HEADER_LEN + MAX_BODY;
/// How late, by the camera's clock, sound may arrive and still be played.
pub const LAG_LIMIT_MS: u64 = 5_000;

/// A talk session's id: random, so the camera can refuse one played again.
pub type SessionId = [u8; SESSION_LEN];

/// Why a talk session or frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum TalkError {
    /// The bytes are not a well-formed header, frame or frame content.
    #[error("malformed talk stream: {0}")]
    Malformed(DecodeError),
    /// The header names another camera.
    #[error("the talk stream is for another camera")]
    OtherCamera,
    /// The header names an epoch other than the camera's current one (a device revoked since
    /// holds only older epochs' keys).
    #[error("the talk stream is sealed for epoch {got}, not the camera's current epoch {current}")]
    OtherEpoch {
        /// The header's epoch.
        got: u32,
        /// The camera's.
        current: u32,
    },
    /// The header names a challenge the camera does not hold (an old head's, or not its own).
    #[error("the talk stream is sealed to a challenge this camera does not hold")]
    UnknownChallenge,
    /// A key is a low-order point: no secret would be shared.
    #[error("the talk stream's keys share no secret (a low-order key)")]
    NoSharedSecret,
    /// The session was heard before: a talk stream played again.
    #[error("the talk session was heard before (played again)")]
    Replayed,
    /// The frame's index is not after the previous frame's: replayed or reordered.
    #[error("talk frame {index} arrived after frame {previous} (replayed or reordered)")]
    OutOfOrder {
        /// This frame's index.
        index: u64,
        /// The index already seen.
        previous: u64,
    },
    /// The frame failed authentication: altered, or sealed without the epoch's viewing key.
    #[error(
        "talk frame {index} failed authentication (altered, or not from a holder of the viewing key)"
    )]
    Tampered {
        /// The frame's index.
        index: u64,
    },
    /// A frame came after the session's final frame.
    #[error("talk frame arrived after the session ended")]
    AfterEnd,
    /// A sound packet longer than any Opus packet.
    #[error("a talk packet of {len} bytes is longer than the largest Opus packet ({MAX_PACKET})")]
    TooLarge {
        /// The packet's length.
        len: usize,
    },
    /// The frame names a camera time the camera has not reached: not its clock.
    #[error("the talk frame names a camera time not yet reached (not this camera's clock)")]
    NotYetSeen,
    /// The sound arrived too late: held back, or played again.
    #[error(
        "talk sound arrived {lag_ms} ms late (held back or replayed); the limit is {LAG_LIMIT_MS} ms"
    )]
    Delayed {
        /// How late, in milliseconds.
        lag_ms: u64,
    },
}

crate::codec::malformed_from!(TalkError);

/// A talk session's header, sent in clear before its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TalkHeader {
    /// The AEAD of the frames.
    pub suite: Suite,
    /// The camera spoken to.
    pub camera_id: CameraId,
    /// The epoch whose viewing key authenticates the talker.
    pub epoch: u32,
    /// The camera's challenge the session is sealed to.
    pub challenge: [u8; CHALLENGE_LEN],
    /// The talker's ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// The session's random id.
    pub session: SessionId,
}

impl TalkHeader {
    /// Its encoding ([`HEADER_LEN`] bytes).
    #[must_use]
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut w = Writer::with_capacity(HEADER_LEN);
        w.bytes(MAGIC).u8(FORMAT).u8(self.suite.id());
        w.bytes(&self.camera_id.0).u32(self.epoch);
        w.bytes(&self.challenge)
            .bytes(&self.ephemeral)
            .bytes(&self.session);
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(w.as_slice());
        out
    }

    /// Decodes exactly [`HEADER_LEN`] bytes.
    ///
    /// # Errors
    /// [`DecodeError`] for another magic or version, an unknown suite, or another length.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, MAGIC, FORMAT, "talk header")?;
        let suite = Suite::from_id(r.u8("suite")?)?;
        let header = Self {
            suite,
            camera_id: CameraId(r.array("camera id")?),
            epoch: r.u32("epoch")?,
            challenge: r.array("challenge")?,
            ephemeral: r.array("ephemeral key")?,
            session: r.array("session id")?,
        };
        r.finish()?;
        Ok(header)
    }
}

/// What one frame carries: a moment of the camera's clock the talker saw, how long before
/// sending this frame it saw it, and one Opus packet (empty in a final frame with nothing more
/// to say).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spoken {
    /// The camera's clock in a checkpoint the talker received (§8.2.1).
    pub seen: Timestamp,
    /// Milliseconds between receiving that checkpoint and sending this frame, by the talker's
    /// own clock.
    pub since_ms: u32,
    /// One Opus packet, at most [`MAX_PACKET`] bytes.
    pub audio: Vec<u8>,
}

impl Spoken {
    fn encode(&self) -> Result<Vec<u8>, TalkError> {
        if self.audio.len() > MAX_PACKET {
            return Err(TalkError::TooLarge {
                len: self.audio.len(),
            });
        }
        let mut w = Writer::with_capacity(SPOKEN_PREFIX + self.audio.len() + TAG_LEN);
        w.u64(self.seen.0).u32(self.since_ms).bytes(&self.audio);
        Ok(w.into_vec())
    }

    fn decode(bytes: &[u8]) -> Result<Self, TalkError> {
        let mut r = Reader::new(bytes);
        let seen = Timestamp(r.u64("camera time seen")?);
        let since_ms = r.u32("time since")?;
        let audio = r.take(r.remaining(), "sound")?.to_vec();
        if audio.len() > MAX_PACKET {
            return Err(TalkError::TooLarge { len: audio.len() });
        }
        Ok(Self {
            seen,
            since_ms,
            audio,
        })
    }

    /// How late this sound is at the camera's clock `now`: the camera's time since the moment
    /// the talker saw, less the talker's time since seeing it — the time the checkpoint took to
    /// reach the talker plus the time this frame took to come back, at least.
    ///
    /// # Errors
    /// [`TalkError::NotYetSeen`] for a moment after `now`; [`TalkError::Delayed`] beyond
    /// [`LAG_LIMIT_MS`].
    pub fn lag_ms(&self, now: Timestamp) -> Result<u64, TalkError> {
        let since_seen = now
            .0
            .checked_sub(self.seen.0)
            .ok_or(TalkError::NotYetSeen)?;
        let lag_ms = since_seen.saturating_sub(u64::from(self.since_ms));
        if lag_ms > LAG_LIMIT_MS {
            return Err(TalkError::Delayed { lag_ms });
        }
        Ok(lag_ms)
    }
}

/// One opened talk frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    /// The frame's index.
    pub index: u64,
    /// Frames missing before it (dropped by the relay).
    pub skipped: u64,
    /// Whether it ends the session.
    pub last: bool,
    /// What it carries.
    pub spoken: Spoken,
}

/// The session's frame cipher: the session key is BLAKE3 `derive_key("keyhole talk v1",
/// X25519(ephemeral, challenge) ‖ X25519(viewing, challenge) ‖ header)`, then treated as a
/// clip key (payload key by HKDF, §7.4), with SHA-256(header) as associated data.
fn cipher(
    suite: Suite,
    from_ephemeral: &[u8; 32],
    from_viewing: &[u8; 32],
    header: &[u8; HEADER_LEN],
) -> ChunkCipher {
    let mut input = Zeroizing::new(Vec::with_capacity(64 + HEADER_LEN));
    input.extend_from_slice(from_ephemeral);
    input.extend_from_slice(from_viewing);
    input.extend_from_slice(header);
    let key = Zeroizing::new(blake3::derive_key(CONTEXT, &input));
    ChunkCipher::new(suite, &key, Sha256::digest(header).into())
}

/// Seals a talk session on the talker's device.
pub struct TalkSealer {
    header: [u8; HEADER_LEN],
    cipher: ChunkCipher,
    next_index: u64,
    ended: bool,
}

impl std::fmt::Debug for TalkSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TalkSealer")
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl TalkSealer {
    /// A new session to `camera_id`, whose newest head names `challenge`, from a holder of
    /// `viewing`, the viewing key of the camera's epoch `epoch`.
    ///
    /// # Errors
    /// [`TalkError::NoSharedSecret`] for a challenge that is not a usable key.
    pub fn start(
        camera_id: CameraId,
        epoch: u32,
        challenge: &[u8; CHALLENGE_LEN],
        viewing: &HpkeSecretKey,
        suite: Suite,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, TalkError> {
        let mut ephemeral = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(ephemeral.as_mut());
        let mut session = [0u8; SESSION_LEN];
        rng.fill_bytes(&mut session);
        Self::with_ephemeral(
            camera_id, epoch, challenge, viewing, suite, &ephemeral, session,
        )
    }

    /// [`TalkSealer::start`] with a given ephemeral secret key and session id (test vectors).
    ///
    /// # Errors
    /// As [`TalkSealer::start`].
    pub fn with_ephemeral(
        camera_id: CameraId,
        epoch: u32,
        challenge: &[u8; CHALLENGE_LEN],
        viewing: &HpkeSecretKey,
        suite: Suite,
        ephemeral: &[u8; 32],
        session: SessionId,
    ) -> Result<Self, TalkError> {
        let ephemeral = x25519_dalek::StaticSecret::from(*ephemeral);
        let viewing = x25519_dalek::StaticSecret::from(*viewing.to_bytes());
        let camera = x25519_dalek::PublicKey::from(*challenge);
        let from_ephemeral = ephemeral.diffie_hellman(&camera);
        let from_viewing = viewing.diffie_hellman(&camera);
        if !from_ephemeral.was_contributory() || !from_viewing.was_contributory() {
            return Err(TalkError::NoSharedSecret);
        }
        let header = TalkHeader {
            suite,
            camera_id,
            epoch,
            challenge: *challenge,
            ephemeral: x25519_dalek::PublicKey::from(&ephemeral).to_bytes(),
            session,
        }
        .encode();
        Ok(Self {
            cipher: cipher(
                suite,
                from_ephemeral.as_bytes(),
                from_viewing.as_bytes(),
                &header,
            ),
            header,
            next_index: 0,
            ended: false,
        })
    }

    /// The header to send before any frame.
    #[must_use]
    pub fn header(&self) -> &[u8; HEADER_LEN] {
        &self.header
    }

    /// Seals `spoken` as the next frame; `last` ends the session.
    ///
    /// # Errors
    /// [`TalkError::TooLarge`] or [`TalkError::AfterEnd`].
    pub fn seal(&mut self, spoken: &Spoken, last: bool) -> Result<Vec<u8>, TalkError> {
        if self.ended {
            return Err(TalkError::AfterEnd);
        }
        let mut body = spoken.encode()?;
        let tag = self.cipher.seal(self.next_index, last, &mut body);
        body.extend_from_slice(&tag);
        let len = u32::try_from(body.len()).map_err(|_| TalkError::TooLarge {
            len: spoken.audio.len(),
        })?;
        let mut frame = Vec::with_capacity(FRAME_HEADER_LEN + body.len());
        frame.extend_from_slice(&self.next_index.to_be_bytes());
        frame.extend_from_slice(&len.to_be_bytes());
        frame.extend_from_slice(&body);
        self.next_index += 1;
        self.ended = last;
        Ok(frame)
    }
}

/// Opens a talk session on the camera.
pub struct TalkOpener {
    header: TalkHeader,
    cipher: ChunkCipher,
    next_index: u64,
    ended: bool,
}

impl std::fmt::Debug for TalkOpener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TalkOpener")
            .field("header", &self.header)
            .field("next_index", &self.next_index)
            .finish_non_exhaustive()
    }
}

impl TalkOpener {
    /// Takes a session header on camera `camera_id`, whose current epoch is `epoch` with
    /// viewing key `viewing`, holding `challenges` (its current and previous).
    ///
    /// # Errors
    /// [`TalkError::Malformed`], [`TalkError::OtherCamera`], [`TalkError::OtherEpoch`],
    /// [`TalkError::UnknownChallenge`] or [`TalkError::NoSharedSecret`].
    pub fn new(
        header: &[u8],
        camera_id: &CameraId,
        epoch: u32,
        viewing: &HpkePublicKey,
        challenges: &[&LiveChallenge],
    ) -> Result<Self, TalkError> {
        let decoded = TalkHeader::decode(header)?;
        if decoded.camera_id != *camera_id {
            return Err(TalkError::OtherCamera);
        }
        if decoded.epoch != epoch {
            return Err(TalkError::OtherEpoch {
                got: decoded.epoch,
                current: epoch,
            });
        }
        let challenge = challenges
            .iter()
            .find(|c| c.public() == decoded.challenge)
            .ok_or(TalkError::UnknownChallenge)?;
        let from_ephemeral = challenge
            .shared_with(&decoded.ephemeral)
            .ok_or(TalkError::NoSharedSecret)?;
        let from_viewing = challenge
            .shared_with(&viewing.0)
            .ok_or(TalkError::NoSharedSecret)?;
        Ok(Self {
            cipher: cipher(
                decoded.suite,
                &from_ephemeral,
                &from_viewing,
                &decoded.encode(),
            ),
            header: decoded,
            next_index: 0,
            ended: false,
        })
    }

    /// The session header.
    #[must_use]
    pub fn header(&self) -> &TalkHeader {
        &self.header
    }

    /// Opens the next frame received. The state is unchanged on error, so later good frames
    /// still open.
    ///
    /// # Errors
    /// [`TalkError`] naming what was wrong.
    pub fn open_frame(&mut self, frame: &[u8]) -> Result<Heard, TalkError> {
        if self.ended {
            return Err(TalkError::AfterEnd);
        }
        let (index, body) = parse_frame(frame, MAX_BODY)?;
        if index < self.next_index {
            return Err(TalkError::OutOfOrder {
                index,
                previous: self.next_index.saturating_sub(1),
            });
        }
        for last in [false, true] {
            let mut data = body.to_vec();
            if let Ok(len) = self.cipher.open(index, last, &mut data) {
                data.truncate(len);
                let spoken = Spoken::decode(&data)?;
                let skipped = index - self.next_index;
                self.next_index = index.saturating_add(1);
                self.ended = last;
                return Ok(Heard {
                    index,
                    skipped,
                    last,
                    spoken,
                });
            }
        }
        Err(TalkError::Tampered { index })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAMERA: CameraId = CameraId([0x11; 16]);

    fn spoken(seen: u64, since_ms: u32, audio: &[u8]) -> Spoken {
        Spoken {
            seen: Timestamp(seen),
            since_ms,
            audio: audio.to_vec(),
        }
    }

    fn session(viewing: &HpkeSecretKey, challenge: &LiveChallenge) -> TalkSealer {
        TalkSealer::start(
            CAMERA,
            3,
            &challenge.public(),
            viewing,
            Suite::ChaCha20Poly1305,
            &mut rand_core::OsRng,
        )
        .unwrap()
    }

    #[test]
    fn the_camera_opens_what_a_holder_of_the_viewing_key_says() {
        let challenge = LiveChallenge::generate(&mut rand_core::OsRng);
        let viewing = HpkeSecretKey::from_bytes(&[7; 32]);
        let mut talk = session(&viewing, &challenge);
        let first = talk.seal(&spoken(1000, 20, b"hello"), false).unwrap();
        let last = talk.seal(&spoken(1000, 40, b""), true).unwrap();
        let mut camera =
            TalkOpener::new(talk.header(), &CAMERA, 3, &viewing.public(), &[&challenge]).unwrap();
        let heard = camera.open_frame(&first).unwrap();
        assert_eq!((heard.index, heard.last), (0, false));
        assert_eq!(heard.spoken, spoken(1000, 20, b"hello"));
        assert_eq!(
            camera.open_frame(&first),
            Err(TalkError::OutOfOrder {
                index: 0,
                previous: 0
            })
        );
        assert!(camera.open_frame(&last).unwrap().last);
        assert_eq!(camera.open_frame(&last), Err(TalkError::AfterEnd));
    }

    #[test]
    fn another_key_another_epoch_or_challenge_is_refused() {
        let challenge = LiveChallenge::generate(&mut rand_core::OsRng);
        let other = LiveChallenge::generate(&mut rand_core::OsRng);
        let viewing = HpkeSecretKey::from_bytes(&[7; 32]);
        let revoked = HpkeSecretKey::from_bytes(&[8; 32]);
        let mut talk = session(&revoked, &challenge);
        let frame = talk.seal(&spoken(1, 0, b"x"), false).unwrap();
        let mut camera =
            TalkOpener::new(talk.header(), &CAMERA, 3, &viewing.public(), &[&challenge]).unwrap();
        assert_eq!(
            camera.open_frame(&frame),
            Err(TalkError::Tampered { index: 0 })
        );
        assert_eq!(
            TalkOpener::new(talk.header(), &CAMERA, 4, &viewing.public(), &[&challenge])
                .unwrap_err(),
            TalkError::OtherEpoch { got: 3, current: 4 }
        );
        assert_eq!(
            TalkOpener::new(talk.header(), &CAMERA, 3, &viewing.public(), &[&other]).unwrap_err(),
            TalkError::UnknownChallenge
        );
        assert_eq!(
            TalkOpener::new(
                talk.header(),
                &CameraId([0x12; 16]),
                3,
                &viewing.public(),
                &[&challenge]
            )
            .unwrap_err(),
            TalkError::OtherCamera
        );
        assert!(matches!(
            TalkOpener::new(
                &talk.header()[..HEADER_LEN - 1],
                &CAMERA,
                3,
                &viewing.public(),
                &[&challenge]
            ),
            Err(TalkError::Malformed(_))
        ));
    }

    #[test]
    fn every_flipped_bit_of_a_frame_is_refused() {
        let challenge = LiveChallenge::generate(&mut rand_core::OsRng);
        let viewing = HpkeSecretKey::from_bytes(&[7; 32]);
        let mut talk = session(&viewing, &challenge);
        let frame = talk.seal(&spoken(5, 1, b"abc"), false).unwrap();
        let mut camera =
            TalkOpener::new(talk.header(), &CAMERA, 3, &viewing.public(), &[&challenge]).unwrap();
        for bit in 0..frame.len() * 8 {
            let mut bad = frame.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(camera.open_frame(&bad).is_err(), "bit {bit}");
        }
        assert!(camera.open_frame(&frame).is_ok());
    }

    #[test]
    fn lateness_is_the_cameras_time_less_the_talkers() {
        let heard = spoken(10_000, 300, b"");
        assert_eq!(heard.lag_ms(Timestamp(10_500)), Ok(200));
        assert_eq!(heard.lag_ms(Timestamp(10_100)), Ok(0));
        assert_eq!(heard.lag_ms(Timestamp(15_300)), Ok(LAG_LIMIT_MS));
        assert_eq!(
            heard.lag_ms(Timestamp(15_301)),
            Err(TalkError::Delayed { lag_ms: 5_001 })
        );
        assert_eq!(heard.lag_ms(Timestamp(9_999)), Err(TalkError::NotYetSeen));
    }

    #[test]
    fn a_packet_longer_than_opus_allows_is_not_sealed() {
        let challenge = LiveChallenge::generate(&mut rand_core::OsRng);
        let viewing = HpkeSecretKey::from_bytes(&[7; 32]);
        let mut talk = session(&viewing, &challenge);
        assert_eq!(
            talk.seal(&spoken(0, 0, &[0; MAX_PACKET + 1]), false),
            Err(TalkError::TooLarge {
                len: MAX_PACKET + 1
            })
        );
        let frame = talk.seal(&spoken(0, 0, &[0; MAX_PACKET]), false).unwrap();
        assert_eq!(frame.len(), MAX_FRAME);
    }
}
