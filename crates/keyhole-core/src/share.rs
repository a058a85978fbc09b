//! Share statements: the owner's signed list of the other accounts that may view one camera.
//!
//! A member is named by its account key (AIK), which the owner pinned by comparing the member's
//! account code out of band; the owner seals the camera's viewing keys to the devices the
//! member's own signed roster lists, never to devices the server names. Each change is a new
//! version, recorded in the owner's account log (kind 3); withdrawing a member is a version
//! without it, followed by a new epoch for the camera.

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::ids::{CameraId, Timestamp};
use crate::keys::AccountPublicKey;
use crate::roster::Roster;
use crate::signer::{Refusal, SignerKey};
use crate::statement::{self, Signable, Signed, Statement, StatementError, Verified};

const MAGIC: &[u8; 4] = b"KHSH";
const FORMAT: u8 = 2;
const SIGNING_CONTEXT: &str = "keyhole share v2";
/// The most accounts one camera is shared with.
pub const MAX_MEMBERS: usize = 16;
/// The longest member name, in UTF-8 bytes.
pub const MAX_NAME: usize = 64;

/// One account a camera is shared with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's account key, pinned by comparing its account code.
    pub account: AccountPublicKey,
    /// What the owner calls the member ("Bo"), at most [`MAX_NAME`] bytes.
    pub name: String,
    /// After this the member may no longer view; `None`: until withdrawn.
    pub expires_at: Option<Timestamp>,
}

/// A share statement's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShareBody {
    /// The camera's owner, whose key signs.
    pub owner: AccountPublicKey,
    /// The camera shared.
    pub camera_id: CameraId,
    /// Starts at 1 and increases with every change to this camera's members.
    pub version: u64,
    /// When the owner's device signed it.
    pub issued_at: Timestamp,
    /// Who may view, at most [`MAX_MEMBERS`], each account once, never the owner.
    pub members: Vec<Member>,
}

/// A share statement as received: parsed, signature not yet checked.
pub type SignedShare = Signed<ShareBody>;

/// A share statement verified under the owner's key.
pub type Share = Verified<ShareBody>;

/// Why a share statement was refused.
pub type ShareError = StatementError;

impl Signable for ShareBody {
    type Error = StatementError;
    const NAME: &'static str = "share statement";
    const CONTEXT: &'static str = SIGNING_CONTEXT;

    fn account(&self) -> &AccountPublicKey {
        &self.owner
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(128 + self.members.len() * 112);
        w.bytes(MAGIC).u8(FORMAT);
        w.bytes(&self.owner.to_bytes())
            .bytes(&self.camera_id.0)
            .u64(self.version)
            .u64(self.issued_at.0);
        // `check` keeps the count within u8.
        w.u8(u8::try_from(self.members.len()).unwrap_or(u8::MAX));
        for m in &self.members {
            w.bytes(&m.account.to_bytes())
                .u64(m.expires_at.map_or(0, |t| t.0))
                .var8(m.name.as_bytes());
        }
        w.into_vec()
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_magic(r, MAGIC, FORMAT, "share statement")?;
        let owner = AccountPublicKey::from_bytes(&r.array("owner key")?)?;
        let camera_id = CameraId(r.array("camera id")?);
        let version = r.u64("version")?;
        let issued_at = Timestamp(r.u64("issued at")?);
        let count = usize::from(r.u8("member count")?);
        if count > MAX_MEMBERS {
            return Err(DecodeError::TooLong {
                field: "members",
                len: count,
                max: MAX_MEMBERS,
            });
        }
        let mut members = Vec::with_capacity(count);
        for _ in 0..count {
            members.push(Member {
                account: AccountPublicKey::from_bytes(&r.array("member key")?)?,
                expires_at: match r.u64("expires at")? {
                    0 => None,
                    t => Some(Timestamp(t)),
                },
                name: r.string8("member name", MAX_NAME)?,
            });
        }
        Ok(Self {
            owner,
            camera_id,
            version,
            issued_at,
            members,
        })
    }

    fn check(&self) -> Result<(), DecodeError> {
        // As for camera records: 0 is never a version, and u64::MAX has no successor.
        if self.version == 0 || self.version == u64::MAX {
            return Err(DecodeError::Invalid("share version"));
        }
        if self.members.len() > MAX_MEMBERS {
            return Err(DecodeError::TooLong {
                field: "members",
                len: self.members.len(),
                max: MAX_MEMBERS,
            });
        }
        for (i, m) in self.members.iter().enumerate() {
            if m.name.len() > MAX_NAME {
                return Err(DecodeError::TooLong {
                    field: "member name",
                    len: m.name.len(),
                    max: MAX_NAME,
                });
            }
            if m.expires_at == Some(Timestamp(0)) {
                return Err(DecodeError::Invalid("an expiry of 0 (0 means none)"));
            }
            if m.account == self.owner {
                return Err(DecodeError::Invalid(
                    "a camera is not shared with its owner",
                ));
            }
            if self.members[..i].iter().any(|o| o.account == m.account) {
                return Err(DecodeError::Invalid("a member is listed twice"));
            }
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

impl Statement for ShareBody {
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

impl ShareBody {
    /// Signs this body with a device of the owner's (or the owner's account key).
    ///
    /// # Errors
    /// [`StatementError::WrongAccount`] for another account's key;
    /// [`StatementError::Malformed`] for version 0 or `u64::MAX`, too many members, a name too
    /// long, the owner or a member twice.
    pub fn sign(self, key: SignerKey<'_>) -> Result<SignedShare, ShareError> {
        statement::sign(self, key)
    }
}

impl SignedShare {
    /// Verifies the statement as one about `camera` by the owner of `roster`, the owner's
    /// roster in force.
    ///
    /// # Errors
    /// [`StatementError::WrongAccount`], [`StatementError::WrongSubject`],
    /// [`StatementError::UnlistedSigner`] or [`StatementError::BadSignature`].
    pub fn verify(self, roster: &Roster, camera: &CameraId) -> Result<Share, ShareError> {
        self.verify_about(roster, camera)
    }
}

impl Share {
    /// The member with this account key, if it may view at `now` (listed and not expired).
    #[must_use]
    pub fn viewer(&self, account: &AccountPublicKey, now: Timestamp) -> Option<&Member> {
        self.body()
            .members
            .iter()
            .find(|m| m.account == *account && m.expires_at.is_none_or(|t| now < t))
    }
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;
    use crate::keys::AccountKey;
    use crate::roster::fixture::Account;

    fn member(name: &str, expires_at: Option<Timestamp>) -> Member {
        Member {
            account: AccountKey::generate(&mut OsRng).public(),
            name: name.into(),
            expires_at,
        }
    }

    #[test]
    fn signs_verifies_and_moves_on() {
        let owner = Account::new();
        let camera = CameraId([5; 16]);
        let bo = member("Bo", None);
        let cy = member("Cy", Some(Timestamp(2_000)));
        let first = ShareBody {
            owner: owner.key.public(),
            camera_id: camera,
            version: 1,
            issued_at: Timestamp(1_000),
            members: vec![bo.clone(), cy.clone()],
        }
        .sign(owner.signer())
        .unwrap();
        let decoded = SignedShare::decode(first.encoded()).unwrap();
        assert_eq!(decoded, first);
        let share = decoded.verify(&owner.roster, &camera).unwrap();
        assert_eq!(share.viewer(&bo.account, Timestamp(5_000)), Some(&bo));
        assert_eq!(share.viewer(&cy.account, Timestamp(1_999)), Some(&cy));
        assert_eq!(share.viewer(&cy.account, Timestamp(2_000)), None, "expired");
        assert_eq!(share.viewer(&owner.key.public(), Timestamp(0)), None);

        let mut next = share.successor(Timestamp(3_000));
        next.members.retain(|m| m.account != bo.account);
        let next = next.sign(owner.signer()).unwrap();
        // A share the device signs after its revocation is refused.
        assert_eq!(
            share.accept(next.clone(), &owner.revoked()).unwrap_err(),
            ShareError::UnlistedSigner {
                what: "share statement",
                device: owner.device_id
            }
        );
        let next = share.accept(next, &owner.roster).unwrap();
        assert_eq!(next.body().version, 2);
        assert_eq!(
            next.viewer(&bo.account, Timestamp(3_000)),
            None,
            "withdrawn"
        );
        assert!(matches!(
            next.accept(first.clone(), &owner.roster),
            Err(ShareError::Rollback { .. })
        ));
        assert!(matches!(
            first.clone().verify(&owner.roster, &CameraId([6; 16])),
            Err(ShareError::WrongSubject { .. })
        ));
        let stranger = Account::new();
        assert_eq!(
            first.verify(&stranger.roster, &camera).unwrap_err(),
            ShareError::WrongAccount {
                what: "share statement"
            }
        );
    }

    #[test]
    fn refuses_what_no_owner_may_sign() {
        let owner = Account::new();
        let bo = member("Bo", None);
        let base = ShareBody {
            owner: owner.key.public(),
            camera_id: CameraId([5; 16]),
            version: 1,
            issued_at: Timestamp(1_000),
            members: vec![bo.clone()],
        };
        for body in [
            ShareBody {
                version: 0,
                ..base.clone()
            },
            ShareBody {
                members: vec![bo.clone(), bo.clone()],
                ..base.clone()
            },
            ShareBody {
                members: vec![Member {
                    account: owner.key.public(),
                    ..bo.clone()
                }],
                ..base.clone()
            },
            ShareBody {
                members: (0..=MAX_MEMBERS).map(|_| member("m", None)).collect(),
                ..base.clone()
            },
        ] {
            assert!(matches!(
                body.sign(owner.signer()),
                Err(ShareError::Malformed(_))
            ));
        }
        // A flipped byte breaks the signature.
        let mut bytes = base.sign(owner.signer()).unwrap().encoded().to_vec();
        bytes[68] ^= 1; // issued at
        let flipped = SignedShare::decode(&bytes).unwrap();
        assert_eq!(
            flipped
                .verify(&owner.roster, &CameraId([5; 16]))
                .unwrap_err(),
            ShareError::BadSignature {
                what: "share statement"
            }
        );
    }
}
