//! Retention floors (PROTOCOL.md §11.5): the owner's signed word that a camera's objects before a
//! sequence number may be deleted, and by which policy.
//!
//! The server deletes nothing by its own decision: it deletes a camera's objects below the newest
//! floor a device of the owner's roster signed, and devices start their verification reports at
//! that floor. So a deletion the owner asked for is never reported as missing, and a deletion the
//! owner did not sign always is. Each floor carries the policy it applies (how many days of
//! footage to keep), so every device of the account advances the floor by the same rule as time
//! passes. A floor changes by versions, like a share statement (§16.1), and never goes down.

use thiserror::Error;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::ids::{CameraId, Timestamp};
use crate::keys::AccountPublicKey;
use crate::roster::Roster;
use crate::signer::{Refusal, SignerKey};
use crate::statement::{self, Signable, Signed, Statement, StatementError, Verified};

const MAGIC: &[u8; 4] = b"KHRF";
const FORMAT: u8 = 1;
const SIGNING_CONTEXT: &str = "keyhole retention floor v1";
/// Milliseconds in a day, for [`RetentionFloorBody::max_age_days`].
pub const DAY_MS: u64 = 86_400_000;

/// A retention floor's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionFloorBody {
    /// The camera's owner: its devices sign.
    pub owner: AccountPublicKey,
    /// The camera.
    pub camera_id: CameraId,
    /// Starts at 1 and increases with every change.
    pub version: u64,
    /// When the device signed it.
    pub issued_at: Timestamp,
    /// The first sequence number kept: the server may delete every object before it, and
    /// reports start here. At least 1 (1: nothing deleted).
    pub keep_from: u64,
    /// The policy: keep what was captured in the last this many days; 0 keeps everything.
    pub max_age_days: u32,
}

/// A retention floor as received: parsed, signature not yet checked.
pub type SignedRetentionFloor = Signed<RetentionFloorBody>;

/// A retention floor verified under the owner's roster in force.
pub type RetentionFloor = Verified<RetentionFloorBody>;

/// Why a retention floor was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RetentionError {
    /// Refused as a statement: malformed, another account's or camera's, an unlisted signer, a
    /// bad signature, a rollback or a fork.
    #[error(transparent)]
    Statement(#[from] StatementError),
    /// A newer version that keeps from an earlier sequence than the one it replaces: objects
    /// already deleted cannot come back.
    #[error("retention floor version {version} lowers the floor from sequence {held} to {offered}")]
    Lowered {
        /// The offered version.
        version: u64,
        /// The floor held.
        held: u64,
        /// The floor offered.
        offered: u64,
    },
}

impl Signable for RetentionFloorBody {
    type Error = StatementError;
    const NAME: &'static str = "retention floor";
    const CONTEXT: &'static str = SIGNING_CONTEXT;

    fn account(&self) -> &AccountPublicKey {
        &self.owner
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(96);
        w.bytes(MAGIC).u8(FORMAT);
        w.bytes(&self.owner.to_bytes())
            .bytes(&self.camera_id.0)
            .u64(self.version)
            .u64(self.issued_at.0);
        w.u64(self.keep_from).u32(self.max_age_days);
        w.into_vec()
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_magic(r, MAGIC, FORMAT, "retention floor")?;
        Ok(Self {
            owner: AccountPublicKey::from_bytes(&r.array("owner key")?)?,
            camera_id: CameraId(r.array("camera id")?),
            version: r.u64("version")?,
            issued_at: Timestamp(r.u64("issued at")?),
            keep_from: r.u64("keep from")?,
            max_age_days: r.u32("max age days")?,
        })
    }

    fn check(&self) -> Result<(), DecodeError> {
        // As for every versioned statement: 0 is never a version, and u64::MAX has no successor.
        if self.version == 0 || self.version == u64::MAX {
            return Err(DecodeError::Invalid("retention floor version"));
        }
        if self.keep_from == 0 {
            return Err(DecodeError::Invalid(
                "a retention floor keeps from sequence 1 at the lowest",
            ));
        }
        Ok(())
    }

    fn wrong_account() -> StatementError {
        StatementError::WrongAccount { what: Self::NAME }
    }

    fn refused(&self, refusal: Refusal) -> StatementError {
        StatementError::refused(Self::NAME, refusal)
    }
}

impl Statement for RetentionFloorBody {
    type Subject = CameraId;

    fn subject(&self) -> CameraId {
        self.camera_id
    }

    fn version(&self) -> u64 {
        self.version
    }

    fn successor(&self, issued_at: Timestamp) -> Self {
        Self {
            version: self.version.saturating_add(1),
            issued_at,
            ..self.clone()
        }
    }
}

impl RetentionFloorBody {
    /// The first floor of a camera: version 1, nothing deleted yet.
    #[must_use]
    pub fn first(
        owner: AccountPublicKey,
        camera_id: CameraId,
        max_age_days: u32,
        issued_at: Timestamp,
    ) -> Self {
        Self {
            owner,
            camera_id,
            version: 1,
            issued_at,
            keep_from: 1,
            max_age_days,
        }
    }

    /// Signs this body with a device of the owner's.
    ///
    /// # Errors
    /// [`StatementError::WrongAccount`] for another account's key;
    /// [`StatementError::Malformed`] for version 0 or `u64::MAX`, or a floor of 0.
    pub fn sign(self, key: SignerKey<'_>) -> Result<SignedRetentionFloor, StatementError> {
        statement::sign(self, key)
    }

    /// Captured before this time, an object is past the policy as of `now`; `None` when the
    /// policy keeps everything.
    #[must_use]
    pub fn cutoff(&self, now: Timestamp) -> Option<Timestamp> {
        (self.max_age_days > 0).then(|| {
            Timestamp(
                now.0
                    .saturating_sub(u64::from(self.max_age_days).saturating_mul(DAY_MS)),
            )
        })
    }
}

/// Verifies `next` as `camera`'s retention floor under `roster` (the owner's roster in force):
/// the first one, or the successor of `held` that does not lower the floor.
///
/// # Errors
/// [`RetentionError::Statement`] as [`Signed::verify_after`]; [`RetentionError::Lowered`].
pub fn accept(
    held: Option<&RetentionFloor>,
    next: SignedRetentionFloor,
    roster: &Roster,
    camera: &CameraId,
) -> Result<RetentionFloor, RetentionError> {
    let floor = next.verify_after(held, roster, camera)?;
    if let Some(held) = held
        && floor.body().keep_from < held.body().keep_from
    {
        return Err(RetentionError::Lowered {
            version: floor.body().version,
            held: held.body().keep_from,
            offered: floor.body().keep_from,
        });
    }
    Ok(floor)
}
