//! Camera records: the account's signed statement of which signing key a camera has and which
//! viewing key (and epoch) it must seal to.
//!
//! A record is signed by a device the roster in force lists (or the account key). A camera
//! seals only to the viewing key of a record whose signer the newest roster it holds lists — a
//! roster it followed from the account key it pinned at pairing — with a version at least as
//! new as any it has seen. Devices check the same against the roster in force where the account
//! log records the record, so a key the server adds, substitutes or rolls back, and a record a
//! revoked device signs, are refused on both sides.

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::ids::{CameraId, DeviceId, Timestamp};
use crate::keys::{AccountPublicKey, CameraPublicKey, HpkePublicKey};
use crate::roster::Roster;
use crate::signer::{Refusal, SignerKey};
use crate::statement::{self, Signable, Signed};

const MAGIC: &[u8; 4] = b"KHCR";
const FORMAT: u8 = 2;
const SIGNING_CONTEXT: &str = "keyhole camera record v2";
/// The longest camera name, in UTF-8 bytes.
pub const MAX_NAME: usize = 64;

/// Whether the camera may still record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CameraState {
    /// Paired and recording.
    Active,
    /// Removed by the owner: the camera must stop sealing and uploading.
    Removed,
}

/// A camera record's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraRecordBody {
    /// The account whose key signs this record.
    pub account: AccountPublicKey,
    /// The camera.
    pub camera_id: CameraId,
    /// Increases with every change to this camera's record.
    pub version: u64,
    /// When the record was signed; for a new epoch, when that epoch began.
    pub issued_at: Timestamp,
    /// A name people recognise ("Front door"), at most [`MAX_NAME`] bytes.
    pub name: String,
    /// Active or removed.
    pub state: CameraState,
    /// The camera's signing key, proven at pairing; fixed for the camera's life.
    pub camera_key: CameraPublicKey,
    /// The epoch of `viewing_key`; increases when a device is revoked or a share withdrawn.
    pub epoch: u32,
    /// The key the camera wraps clip keys to during this epoch.
    pub viewing_key: HpkePublicKey,
}

/// A camera record as received: parsed, signature not yet checked.
pub type SignedCameraRecord = Signed<CameraRecordBody>;

/// A camera record verified under the roster in force.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraRecord {
    signed: SignedCameraRecord,
}

/// Why a camera record was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes are not a well-formed camera record.
    #[error("malformed camera record: {0}")]
    Malformed(DecodeError),
    /// The record names another account.
    #[error("camera record belongs to another account")]
    WrongAccount,
    /// The signature does not verify under its signer's key.
    #[error("camera record signature does not verify under its signer's key")]
    BadSignature,
    /// Signed by a device the roster in force does not list: revoked, or never enrolled.
    #[error(
        "camera record version {version} is signed by device {device}, which the roster in force \
         does not list (revoked or never enrolled)"
    )]
    UnlistedSigner {
        /// The version offered.
        version: u64,
        /// The device named as signer.
        device: DeviceId,
    },
    /// The record is for another camera.
    #[error("camera record is for camera {found}, expected {expected}")]
    WrongCamera {
        /// The camera the caller asked about.
        expected: CameraId,
        /// The camera the record names.
        found: CameraId,
    },
    /// Older than a version already seen: a rollback.
    #[error(
        "camera record version {offered} is older than version {trusted} already seen (rollback)"
    )]
    Rollback {
        /// Version offered.
        offered: u64,
        /// Version already trusted.
        trusted: u64,
    },
    /// Same version as the trusted record, different content.
    #[error("camera record version {version} differs from the one already seen (forked history)")]
    Fork {
        /// The version that exists twice.
        version: u64,
    },
    /// The epoch went backwards.
    #[error("camera record goes back from epoch {trusted} to {offered}")]
    EpochRollback {
        /// Epoch offered.
        offered: u32,
        /// Epoch already trusted.
        trusted: u32,
    },
    /// The camera's signing key changed; a camera keeps one key for as long as it is paired.
    #[error("camera record changes the camera's signing key")]
    CameraKeyChanged,
    /// A removed camera's record made active again; a removed camera pairs anew, with a new id.
    #[error("camera record reactivates a removed camera")]
    Reactivated,
}

crate::codec::malformed_from!(RecordError);

impl Signable for CameraRecordBody {
    type Error = RecordError;
    const NAME: &'static str = "camera record";
    const CONTEXT: &'static str = SIGNING_CONTEXT;

    fn account(&self) -> &AccountPublicKey {
        &self.account
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        w.bytes(MAGIC).u8(FORMAT);
        w.bytes(&self.account.to_bytes())
            .bytes(&self.camera_id.0)
            .u64(self.version);
        w.u64(self.issued_at.0).var8(self.name.as_bytes());
        w.u8(match self.state {
            CameraState::Active => 1,
            CameraState::Removed => 2,
        });
        w.bytes(&self.camera_key.to_bytes())
            .u32(self.epoch)
            .bytes(&self.viewing_key.0);
        w.into_vec()
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_magic(r, MAGIC, FORMAT, "camera record")?;
        Ok(Self {
            account: AccountPublicKey::from_bytes(&r.array("account key")?)?,
            camera_id: CameraId(r.array("camera id")?),
            version: match r.u64("version")? {
                0 | u64::MAX => return Err(DecodeError::Invalid("camera record version")),
                v => v,
            },
            issued_at: Timestamp(r.u64("issued at")?),
            name: r.string8("camera name", MAX_NAME)?,
            state: match r.u8("camera state")? {
                1 => CameraState::Active,
                2 => CameraState::Removed,
                _ => return Err(DecodeError::Invalid("camera state")),
            },
            camera_key: CameraPublicKey::from_bytes(&r.array("camera key")?)?,
            epoch: r.u32("epoch")?,
            viewing_key: HpkePublicKey(r.array("viewing key")?),
        })
    }

    fn check(&self) -> Result<(), DecodeError> {
        // `decode` reads no name longer than this, and refuses these versions as it reads them.
        if self.name.len() > MAX_NAME {
            return Err(DecodeError::TooLong {
                field: "camera name",
                len: self.name.len(),
                max: MAX_NAME,
            });
        }
        // 0 is never a version, and u64::MAX is refused so that `successor` cannot overflow;
        // the last version, u64::MAX - 1, therefore has no successor (it cannot be reached).
        if self.version == 0 || self.version == u64::MAX {
            return Err(DecodeError::Invalid("camera record version"));
        }
        Ok(())
    }

    fn wrong_account() -> RecordError {
        RecordError::WrongAccount
    }

    fn refused(&self, refusal: Refusal) -> RecordError {
        match refusal {
            Refusal::Unlisted(device) => RecordError::UnlistedSigner {
                version: self.version,
                device,
            },
            Refusal::BadSignature => RecordError::BadSignature,
        }
    }
}

impl CameraRecordBody {
    /// Signs this body with a device's key (or the account key). Whether that signer may sign
    /// it is for the holders to check against the roster in force.
    ///
    /// # Errors
    /// [`RecordError::WrongAccount`] if `key` is an account key other than `self.account`;
    /// [`RecordError::Malformed`] if the name is too long, or for version 0 or `u64::MAX`.
    pub fn sign(self, key: SignerKey<'_>) -> Result<SignedCameraRecord, RecordError> {
        statement::sign(self, key)
    }
}

impl SignedCameraRecord {
    /// Verifies the record for camera `camera` under `roster`, the roster in force: the
    /// roster's account, and a signer it lists. Nothing earlier is compared (the first record a
    /// camera or device sees for this camera).
    ///
    /// # Errors
    /// [`RecordError::WrongAccount`], [`RecordError::WrongCamera`],
    /// [`RecordError::UnlistedSigner`] or [`RecordError::BadSignature`].
    pub fn verify_first(
        self,
        roster: &Roster,
        camera: &CameraId,
    ) -> Result<CameraRecord, RecordError> {
        self.check_account(roster.account())?;
        let found = self.unverified_body().camera_id;
        if found != *camera {
            return Err(RecordError::WrongCamera {
                expected: *camera,
                found,
            });
        }
        self.verify_tail(roster)?;
        Ok(CameraRecord { signed: self })
    }
}

impl CameraRecord {
    /// The verified content.
    #[must_use]
    pub fn body(&self) -> &CameraRecordBody {
        self.signed.unverified_body()
    }

    /// The signed form.
    #[must_use]
    pub fn signed(&self) -> &SignedCameraRecord {
        &self.signed
    }

    /// SHA-256 of the record's encoding.
    #[must_use]
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.signed.encoded()).into()
    }

    /// Accepts `next` in place of this record: identical, or newer — signed by a device
    /// `roster` (the roster in force) lists — with the same camera key and an epoch that does
    /// not go back.
    ///
    /// # Errors
    /// Each refusal names what was wrong.
    pub fn accept(
        &self,
        next: SignedCameraRecord,
        roster: &Roster,
    ) -> Result<CameraRecord, RecordError> {
        let body = self.body();
        if next.encoded() == self.signed.encoded() {
            // Its signer was checked when it was first accepted, and may have left since.
            return Ok(self.clone());
        }
        let (trusted, offered) = (body.version, next.unverified_body().version);
        if offered < trusted {
            return Err(RecordError::Rollback { offered, trusted });
        }
        let next = next.verify_first(roster, &body.camera_id)?;
        if offered == trusted {
            return Err(RecordError::Fork { version: offered });
        }
        if next.body().camera_key != body.camera_key {
            return Err(RecordError::CameraKeyChanged);
        }
        if body.state == CameraState::Removed && next.body().state != CameraState::Removed {
            return Err(RecordError::Reactivated);
        }
        if next.body().epoch < body.epoch {
            return Err(RecordError::EpochRollback {
                offered: next.body().epoch,
                trusted: body.epoch,
            });
        }
        Ok(next)
    }

    /// The body for the next version (version + 1); edit it, then [`CameraRecordBody::sign`].
    #[must_use]
    pub fn successor(&self, issued_at: Timestamp) -> CameraRecordBody {
        CameraRecordBody {
            // A verified record's version is below u64::MAX, so this cannot overflow; the
            // successor of the last version is u64::MAX, which `sign` refuses.
            version: self.body().version.saturating_add(1),
            issued_at,
            ..self.body().clone()
        }
    }
}
