//! Acceptance statements: an account's signed list of the other accounts whose shares its
//! devices open.
//!
//! A user accepts an owner by comparing the owner's account code out of band, on one device; the
//! device then records the owner's account key in a new version of this statement, in the
//! account's log (kind 4). Every device of the account reads it from there, so each opens what the
//! owner shares without comparing the code again, and the server learns from it which owners may
//! name the account in a share. Removing an owner is a version without it.

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::ids::Timestamp;
use crate::keys::AccountPublicKey;
use crate::roster::Roster;
use crate::signer::{Refusal, SignerKey};
use crate::statement::{self, Signable, Signed, Statement, StatementError, Verified};

const MAGIC: &[u8; 4] = b"KHAC";
const FORMAT: u8 = 2;
const SIGNING_CONTEXT: &str = "keyhole acceptance v2";
/// The most accounts one account accepts shares from.
pub const MAX_OWNERS: usize = 32;
/// The longest user name, in UTF-8 bytes.
pub const MAX_NAME: usize = 64;

/// An account whose shares are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptedOwner {
    /// Its account key, pinned by comparing its account code.
    pub account: AccountPublicKey,
    /// Its user name on the server, at most [`MAX_NAME`] bytes.
    pub name: String,
}

/// An acceptance statement's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcceptanceBody {
    /// The accepting account, whose key signs.
    pub account: AccountPublicKey,
    /// Starts at 1 and increases with every change.
    pub version: u64,
    /// When the device signed it.
    pub issued_at: Timestamp,
    /// At most [`MAX_OWNERS`], each account and each name once, never the account itself.
    pub owners: Vec<AcceptedOwner>,
}

/// An acceptance statement as received: parsed, signature not yet checked.
pub type SignedAcceptance = Signed<AcceptanceBody>;

/// An acceptance statement verified under its account's key.
pub type Acceptance = Verified<AcceptanceBody>;

/// Why an acceptance statement was refused.
pub type AcceptanceError = StatementError;

impl Signable for AcceptanceBody {
    type Error = StatementError;
    const NAME: &'static str = "acceptance statement";
    const CONTEXT: &'static str = SIGNING_CONTEXT;

    fn account(&self) -> &AccountPublicKey {
        &self.account
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(64 + self.owners.len() * 100);
        w.bytes(MAGIC).u8(FORMAT);
        w.bytes(&self.account.to_bytes())
            .u64(self.version)
            .u64(self.issued_at.0);
        // `check` keeps the count within u8.
        w.u8(u8::try_from(self.owners.len()).unwrap_or(u8::MAX));
        for o in &self.owners {
            w.bytes(&o.account.to_bytes()).var8(o.name.as_bytes());
        }
        w.into_vec()
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_magic(r, MAGIC, FORMAT, "acceptance statement")?;
        let account = AccountPublicKey::from_bytes(&r.array("account key")?)?;
        let version = r.u64("version")?;
        let issued_at = Timestamp(r.u64("issued at")?);
        let count = usize::from(r.u8("owner count")?);
        if count > MAX_OWNERS {
            return Err(DecodeError::TooLong {
                field: "owners",
                len: count,
                max: MAX_OWNERS,
            });
        }
        let mut owners = Vec::with_capacity(count);
        for _ in 0..count {
            owners.push(AcceptedOwner {
                account: AccountPublicKey::from_bytes(&r.array("owner key")?)?,
                name: r.string8("owner name", MAX_NAME)?,
            });
        }
        Ok(Self {
            account,
            version,
            issued_at,
            owners,
        })
    }

    fn check(&self) -> Result<(), DecodeError> {
        // As for camera records: 0 is never a version, and u64::MAX has no successor.
        if self.version == 0 || self.version == u64::MAX {
            return Err(DecodeError::Invalid("acceptance version"));
        }
        if self.owners.len() > MAX_OWNERS {
            return Err(DecodeError::TooLong {
                field: "owners",
                len: self.owners.len(),
                max: MAX_OWNERS,
            });
        }
        for (i, o) in self.owners.iter().enumerate() {
            if o.name.is_empty() || o.name.len() > MAX_NAME {
                return Err(DecodeError::Invalid("an owner name of 1 to 64 bytes"));
            }
            if o.account == self.account {
                return Err(DecodeError::Invalid("an account does not accept itself"));
            }
            let earlier = &self.owners[..i];
            if earlier
                .iter()
                .any(|e| e.account == o.account || e.name == o.name)
            {
                return Err(DecodeError::Invalid("an owner is listed twice"));
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

impl Statement for AcceptanceBody {
    type Subject = ();

    fn subject(&self) {}

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

impl AcceptanceBody {
    /// Signs this body with a device's key (or the account key).
    ///
    /// # Errors
    /// [`StatementError::WrongAccount`] for another account's key;
    /// [`StatementError::Malformed`] for version 0 or `u64::MAX`, too many owners, an empty or
    /// too long name, the account itself, or an owner (key or name) twice.
    pub fn sign(self, key: SignerKey<'_>) -> Result<SignedAcceptance, AcceptanceError> {
        statement::sign(self, key)
    }
}

impl SignedAcceptance {
    /// Verifies the statement as the account's of `roster`, the roster in force.
    ///
    /// # Errors
    /// [`StatementError::WrongAccount`], [`StatementError::UnlistedSigner`] or
    /// [`StatementError::BadSignature`].
    pub fn verify(self, roster: &Roster) -> Result<Acceptance, AcceptanceError> {
        self.verify_about(roster, &())
    }
}

#[cfg(test)]
mod tests {
    use rand_core::OsRng;

    use super::*;
    use crate::keys::AccountKey;
    use crate::roster::fixture::Account;

    fn owner(name: &str) -> AcceptedOwner {
        AcceptedOwner {
            account: AccountKey::generate(&mut OsRng).public(),
            name: name.into(),
        }
    }

    #[test]
    fn signs_verifies_and_moves_on() {
        let bo = Account::new();
        let ana = owner("ana");
        let first = AcceptanceBody {
            account: bo.key.public(),
            version: 1,
            issued_at: Timestamp(1_000),
            owners: vec![ana.clone()],
        }
        .sign(bo.signer())
        .unwrap();
        let decoded = SignedAcceptance::decode(first.encoded()).unwrap();
        assert_eq!(decoded, first);
        let accepted = decoded.verify(&bo.roster).unwrap();
        assert_eq!(accepted.body().owners, vec![ana.clone()]);

        let mut next = accepted.successor(Timestamp(2_000));
        next.owners.push(owner("cy"));
        let next = next.sign(bo.signer()).unwrap();
        // Once the device is revoked, nothing it signs is accepted.
        assert_eq!(
            accepted.accept(next.clone(), &bo.revoked()).unwrap_err(),
            AcceptanceError::UnlistedSigner {
                what: "acceptance statement",
                device: bo.device_id
            }
        );
        let next = accepted.accept(next, &bo.roster).unwrap();
        assert_eq!(next.body().version, 2);
        assert_eq!(next.body().owners.len(), 2);
        assert!(matches!(
            next.accept(first.clone(), &bo.roster),
            Err(AcceptanceError::Rollback { .. })
        ));
        let stranger = Account::new();
        assert_eq!(
            first.verify(&stranger.roster).unwrap_err(),
            AcceptanceError::WrongAccount {
                what: "acceptance statement"
            }
        );
    }

    #[test]
    fn refuses_what_no_account_may_sign() {
        let bo = Account::new();
        let ana = owner("ana");
        let base = AcceptanceBody {
            account: bo.key.public(),
            version: 1,
            issued_at: Timestamp(1_000),
            owners: vec![ana.clone()],
        };
        for body in [
            AcceptanceBody {
                version: 0,
                ..base.clone()
            },
            AcceptanceBody {
                owners: vec![ana.clone(), ana.clone()],
                ..base.clone()
            },
            AcceptanceBody {
                owners: vec![ana.clone(), owner("ana")],
                ..base.clone()
            },
            AcceptanceBody {
                owners: vec![AcceptedOwner {
                    account: bo.key.public(),
                    name: "bo".into(),
                }],
                ..base.clone()
            },
            AcceptanceBody {
                owners: vec![owner("")],
                ..base.clone()
            },
            AcceptanceBody {
                owners: (0..=MAX_OWNERS).map(|i| owner(&format!("o{i}"))).collect(),
                ..base.clone()
            },
        ] {
            assert!(matches!(
                body.sign(bo.signer()),
                Err(AcceptanceError::Malformed(_))
            ));
        }
        // A flipped byte breaks the signature.
        let mut bytes = base.sign(bo.signer()).unwrap().encoded().to_vec();
        bytes[45] ^= 1; // issued at
        let flipped = SignedAcceptance::decode(&bytes).unwrap();
        assert_eq!(
            flipped.verify(&bo.roster).unwrap_err(),
            AcceptanceError::BadSignature {
                what: "acceptance statement"
            }
        );
    }
}
