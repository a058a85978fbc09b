//! Camera heads (PROTOCOL.md §8.3): the camera's signed word on where its chain stands.
//!
//! A server can withhold anything, and a listing that simply ends early looks like a camera
//! that recorded nothing more. So the camera is a witness: with every upload, and at an
//! interval while online, it signs its newest sealed object (sequence and digest), how far the
//! server has taken delivery, its clock, the camera record and roster versions it holds, and
//! how long devices should wait for its next head before calling it silent. Devices check a
//! listing against the newest head they hold, and a camera whose newest head is too old is
//! shown as silent — the server may be withholding its heads.

use std::fmt;

use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::envelope::ObjectDigest;
use crate::ids::{CameraId, Timestamp};
use crate::keys::{BadSignature, CameraKey, CameraPublicKey, Signature};

/// Magic bytes of a camera head.
const MAGIC: &[u8; 4] = b"KHCH";
/// Format version.
const FORMAT: u8 = 1;
/// Signing context.
const CONTEXT: &str = "keyhole camera head v1";
/// Length of an encoded head, signature included.
pub const CAMERA_HEAD_LEN: usize = 4 + 1 + 16 + 8 + 32 + 8 + 8 + 4 + 8 + 8 + 32 + 64;

/// Why a camera head was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CameraHeadError {
    /// Not a well-formed head.
    #[error("malformed camera head: {0}")]
    Malformed(DecodeError),
    /// Signed for another camera than the one asked about.
    #[error("the camera head is for camera {found}, not {expected}")]
    WrongCamera {
        /// The camera asked about.
        expected: CameraId,
        /// The camera the head names.
        found: CameraId,
    },
    /// The signature does not verify under the camera's key.
    #[error("the camera head's signature does not verify under the camera's key")]
    BadSignature,
}

crate::codec::malformed_from!(CameraHeadError);

impl From<BadSignature> for CameraHeadError {
    fn from(_: BadSignature) -> Self {
        Self::BadSignature
    }
}

/// What a camera signs about its chain.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CameraHead {
    /// The camera.
    pub camera_id: CameraId,
    /// Its newest sealed object's sequence number (0: none yet).
    pub sequence: u64,
    /// That object's digest (PROTOCOL.md §7.8); all zero when `sequence` is 0.
    pub digest: ObjectDigest,
    /// Every object up to this sequence has reached the server (the server acknowledged it, or
    /// the request this head rides on carries it). At most `sequence`; the rest are still on
    /// the camera.
    pub delivered: u64,
    /// The camera's clock when it signed.
    pub clock: Timestamp,
    /// How long after `clock` devices may wait for the next head before calling the camera
    /// silent, in seconds: the profile's interval with room for a late upload.
    pub silent_after_s: u32,
    /// The newest camera record version the camera holds (0: none yet).
    pub record_version: u64,
    /// The newest account roster version the camera holds.
    pub roster_version: u64,
    /// The camera's current live challenge (PROTOCOL.md §8.2.2): devices prove with it that
    /// they hold the viewing key when they ask for live view.
    pub live_challenge: [u8; 32],
}

impl fmt::Debug for CameraHead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CameraHead")
            .field("camera_id", &self.camera_id)
            .field("sequence", &self.sequence)
            .field("digest", &self.digest)
            .field("delivered", &self.delivered)
            .field("clock", &self.clock)
            .field("silent_after_s", &self.silent_after_s)
            .field("record_version", &self.record_version)
            .field("roster_version", &self.roster_version)
            .field("live_challenge", &hex::encode(self.live_challenge))
            .finish()
    }
}

impl CameraHead {
    fn encode_body(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(CAMERA_HEAD_LEN);
        w.bytes(MAGIC).u8(FORMAT).bytes(&self.camera_id.0);
        w.u64(self.sequence)
            .bytes(&self.digest.0)
            .u64(self.delivered);
        w.u64(self.clock.0).u32(self.silent_after_s);
        w.u64(self.record_version).u64(self.roster_version);
        w.bytes(&self.live_challenge);
        w.into_vec()
    }

    /// The rules no encoding shows.
    fn check(&self) -> Result<(), DecodeError> {
        if self.delivered > self.sequence {
            return Err(DecodeError::Invalid(
                "a camera head delivers more than it sealed",
            ));
        }
        if self.sequence == 0 && self.digest != ObjectDigest::default() {
            return Err(DecodeError::Invalid(
                "a camera head with no object names a digest",
            ));
        }
        if self.silent_after_s == 0 {
            return Err(DecodeError::Invalid(
                "a camera head must allow some time until the next",
            ));
        }
        Ok(())
    }

    /// Signs the head with the camera's key; returns its encoding ([`CAMERA_HEAD_LEN`] bytes).
    ///
    /// # Errors
    /// [`DecodeError::Invalid`] for a head that breaks the rules above (delivered beyond the
    /// newest sequence, a digest with no object, no time allowed until the next head).
    pub fn sign(&self, key: &CameraKey) -> Result<Vec<u8>, DecodeError> {
        self.check()?;
        let mut encoded = self.encode_body();
        let signature = key.sign(CONTEXT, &[&encoded]);
        encoded.extend_from_slice(&signature.0);
        Ok(encoded)
    }

    /// Parses a head and checks that `camera_key` signed it for `camera`.
    ///
    /// # Errors
    /// [`CameraHeadError`] naming what is wrong.
    pub fn verify(
        bytes: &[u8],
        camera: &CameraId,
        camera_key: &CameraPublicKey,
    ) -> Result<Self, CameraHeadError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, MAGIC, FORMAT, "camera head")?;
        let head = Self {
            camera_id: CameraId(r.array("camera id")?),
            sequence: r.u64("sequence")?,
            digest: ObjectDigest(r.array("digest")?),
            delivered: r.u64("delivered")?,
            clock: Timestamp(r.u64("clock")?),
            silent_after_s: r.u32("silent after")?,
            record_version: r.u64("record version")?,
            roster_version: r.u64("roster version")?,
            live_challenge: r.array("live challenge")?,
        };
        let signature = Signature(r.array("signature")?);
        r.finish()?;
        head.check()?;
        if head.camera_id != *camera {
            return Err(CameraHeadError::WrongCamera {
                expected: *camera,
                found: head.camera_id,
            });
        }
        camera_key.verify(CONTEXT, &[&bytes[..CAMERA_HEAD_LEN - 64]], &signature)?;
        Ok(head)
    }

    /// Whether this head is newer than `other`: later by the camera's clock, or as late and
    /// further along the chain. The newest head a device holds is the one it checks against.
    #[must_use]
    pub fn is_newer_than(&self, other: &Self) -> bool {
        (self.clock, self.sequence, self.delivered) > (other.clock, other.sequence, other.delivered)
    }

    /// When the camera is silent if no newer head arrives: `clock` plus `silent_after_s`.
    #[must_use]
    pub fn silent_from(&self) -> Timestamp {
        Timestamp(
            self.clock
                .0
                .saturating_add(u64::from(self.silent_after_s) * 1000),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> CameraHead {
        CameraHead {
            camera_id: CameraId([7; 16]),
            sequence: 12,
            digest: ObjectDigest([9; 32]),
            delivered: 10,
            clock: Timestamp(1_000_000),
            silent_after_s: 900,
            record_version: 3,
            roster_version: 2,
            live_challenge: [5; 32],
        }
    }

    #[test]
    fn a_signed_head_verifies_under_its_camera_key_only() {
        let key = CameraKey::from_seed(&[1; 32]);
        let bytes = head().sign(&key).unwrap();
        assert_eq!(bytes.len(), CAMERA_HEAD_LEN);
        let camera = CameraId([7; 16]);
        assert_eq!(
            CameraHead::verify(&bytes, &camera, &key.public()).unwrap(),
            head()
        );
        let other = CameraKey::from_seed(&[2; 32]).public();
        assert_eq!(
            CameraHead::verify(&bytes, &camera, &other),
            Err(CameraHeadError::BadSignature)
        );
        assert!(matches!(
            CameraHead::verify(&bytes, &CameraId([8; 16]), &key.public()),
            Err(CameraHeadError::WrongCamera { .. })
        ));
        let mut flipped = bytes.clone();
        flipped[30] ^= 1;
        assert_eq!(
            CameraHead::verify(&flipped, &camera, &key.public()),
            Err(CameraHeadError::BadSignature)
        );
        assert!(matches!(
            CameraHead::verify(&bytes[..bytes.len() - 1], &camera, &key.public()),
            Err(CameraHeadError::Malformed(_))
        ));
    }

    #[test]
    fn a_head_that_breaks_the_rules_is_never_signed() {
        let key = CameraKey::from_seed(&[1; 32]);
        let beyond = CameraHead {
            delivered: 13,
            ..head()
        };
        assert!(beyond.sign(&key).is_err());
        let digest_without_object = CameraHead {
            sequence: 0,
            delivered: 0,
            ..head()
        };
        assert!(digest_without_object.sign(&key).is_err());
        let no_time = CameraHead {
            silent_after_s: 0,
            ..head()
        };
        assert!(no_time.sign(&key).is_err());
    }

    #[test]
    fn newer_means_later_by_the_camera_clock() {
        let old = head();
        let later = CameraHead {
            clock: Timestamp(2_000_000),
            ..head()
        };
        assert!(later.is_newer_than(&old));
        assert!(!old.is_newer_than(&later));
        assert!(!old.is_newer_than(&old));
        assert_eq!(old.silent_from(), Timestamp(1_900_000));
    }
}
