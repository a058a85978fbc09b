//! The roster: the account's signed list of enrolled devices and its recovery key.
//!
//! Each roster names its version and the hash of the previous roster. Version 1 is signed by
//! the account identity key; each later version by the account key or by a device the roster
//! before it lists ([`crate::signer`]). A [`SignedRoster`] is only parsed; a [`Roster`] has been
//! verified. Devices and cameras accept a new roster only as a successor of the one they
//! already trust: signed by the pinned account key or a device listed in the trusted roster,
//! the next version, and a hash chain back to what they hold, so a server can neither insert a
//! device, roll the roster back nor show two holders different histories without the signature
//! or the chain failing — and a revoked device, listed in no roster after its revocation, can
//! sign no roster that is accepted. Only the account key changes the recovery key: the key that
//! opens everything after a loss is never a device's to replace.

use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::chain::{self, Break, Step};
use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::ids::{DeviceId, Timestamp};
use crate::keys::{AccountPublicKey, DeviceSigningPublicKey, HpkePublicKey, Signature};
use crate::signer::{Refusal, Signer, SignerKey};
use crate::statement::{self, Signable, Signed};

const MAGIC: &[u8; 4] = b"KHRS";
const FORMAT: u8 = 2;
const SIGNING_CONTEXT: &str = "keyhole roster v2";
/// The most devices a roster may list.
pub const MAX_DEVICES: usize = 64;
/// The longest device name, in UTF-8 bytes.
pub const MAX_NAME: usize = 64;

/// SHA-256 of a signed roster's full encoding; each roster names its predecessor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RosterHash(pub [u8; 32]);

/// One enrolled device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceEntry {
    /// The device's id.
    pub id: DeviceId,
    /// A name people recognise ("Ana's phone"), at most [`MAX_NAME`] bytes.
    pub name: String,
    /// When the device was enrolled.
    pub added_at: Timestamp,
    /// Its signing key.
    pub signing_key: DeviceSigningPublicKey,
    /// Its HPKE key; key packages for it are sealed to this.
    pub hpke_key: HpkePublicKey,
}

/// The roster's content, before or after signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RosterBody {
    /// The account whose key signs this roster.
    pub account: AccountPublicKey,
    /// Starts at 1 and increases by exactly 1 with each change.
    pub version: u64,
    /// Hash of the roster this one replaces; all zero for version 1.
    pub previous: RosterHash,
    /// When the signing device made this version.
    pub issued_at: Timestamp,
    /// The recovery key: key packages are always sealed to it too.
    pub recovery_key: HpkePublicKey,
    /// Enrolled devices, ids unique.
    pub devices: Vec<DeviceEntry>,
}

/// A roster as received: parsed, signature not yet checked.
pub type SignedRoster = Signed<RosterBody>;

/// A roster whose signature and place in the chain have been verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roster {
    signed: SignedRoster,
}

/// Why a roster was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RosterError {
    /// The bytes are not a well-formed roster.
    #[error("malformed roster: {0}")]
    Malformed(DecodeError),
    /// The roster claims a different account than the one pinned.
    #[error("roster belongs to another account")]
    WrongAccount,
    /// The signature does not verify under the signer's key.
    #[error("roster signature does not verify under its signer's key")]
    BadSignature,
    /// Signed by a device the trusted roster does not list: revoked, or never enrolled.
    #[error(
        "roster version {version} is signed by device {device}, which the roster before it does \
         not list (revoked or never enrolled)"
    )]
    UnlistedSigner {
        /// The version offered.
        version: u64,
        /// The device named as signer.
        device: DeviceId,
    },
    /// A roster that only the account key may sign (the first, or one that changes the recovery
    /// key) is signed by a device.
    #[error("roster version {version} must be signed by the account key: {why}")]
    NeedsAccountKey {
        /// The version offered.
        version: u64,
        /// What made the account key necessary.
        why: &'static str,
    },
    /// The version is not newer than the one already trusted: a rollback.
    #[error("roster version {offered} is older than the trusted version {trusted} (rollback)")]
    Rollback {
        /// Version offered.
        offered: u64,
        /// Version already trusted.
        trusted: u64,
    },
    /// Same version as the trusted roster but different content: two histories exist.
    #[error("roster version {version} differs from the one already trusted (forked history)")]
    Fork {
        /// The version that exists twice.
        version: u64,
    },
    /// The version is newer but skips versions, so the chain cannot be checked.
    #[error("roster jumps from version {trusted} to {offered}; the versions between are needed")]
    Gap {
        /// Version already trusted.
        trusted: u64,
        /// Version offered.
        offered: u64,
    },
    /// The previous-hash field does not match the trusted roster.
    #[error("roster version {version} does not chain to the trusted roster (broken chain)")]
    BrokenChain {
        /// The version whose link is wrong.
        version: u64,
    },
    /// A version-1 roster must have an all-zero previous hash.
    #[error("a version-1 roster must not name a predecessor")]
    BadGenesis,
}

crate::codec::malformed_from!(RosterError);

impl Signable for RosterBody {
    type Error = RosterError;
    const NAME: &'static str = "roster";
    const CONTEXT: &'static str = SIGNING_CONTEXT;

    fn account(&self) -> &AccountPublicKey {
        &self.account
    }

    fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(128 + self.devices.len() * 128);
        w.bytes(MAGIC).u8(FORMAT);
        w.bytes(&self.account.to_bytes())
            .u64(self.version)
            .bytes(&self.previous.0);
        w.u64(self.issued_at.0).bytes(&self.recovery_key.0);
        w.u8(u8::try_from(self.devices.len()).unwrap_or(u8::MAX));
        for d in &self.devices {
            w.bytes(&d.id.0).var8(d.name.as_bytes()).u64(d.added_at.0);
            w.bytes(&d.signing_key.to_bytes()).bytes(&d.hpke_key.0);
        }
        w.into_vec()
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        expect_magic(r, MAGIC, FORMAT, "roster")?;
        let account = AccountPublicKey::from_bytes(&r.array("account key")?)?;
        let version = r.u64("version")?;
        let previous = RosterHash(r.array("previous hash")?);
        let issued_at = Timestamp(r.u64("issued at")?);
        let recovery_key = HpkePublicKey(r.array("recovery key")?);
        let count = usize::from(r.u8("device count")?);
        if count > MAX_DEVICES {
            return Err(DecodeError::TooLong {
                field: "devices",
                len: count,
                max: MAX_DEVICES,
            });
        }
        let mut devices: Vec<DeviceEntry> = Vec::with_capacity(count);
        for _ in 0..count {
            let id = DeviceId(r.array("device id")?);
            if devices.iter().any(|d| d.id == id) {
                return Err(DecodeError::Invalid("duplicate device id"));
            }
            devices.push(DeviceEntry {
                id,
                name: r.string8("device name", MAX_NAME)?,
                added_at: Timestamp(r.u64("device added at")?),
                signing_key: DeviceSigningPublicKey::from_bytes(&r.array("device signing key")?)?,
                hpke_key: HpkePublicKey(r.array("device hpke key")?),
            });
        }
        Ok(Self {
            account,
            version,
            previous,
            issued_at,
            recovery_key,
            devices,
        })
    }

    fn check(&self) -> Result<(), DecodeError> {
        if self.devices.len() > MAX_DEVICES {
            return Err(DecodeError::TooLong {
                field: "devices",
                len: self.devices.len(),
                max: MAX_DEVICES,
            });
        }
        for (i, d) in self.devices.iter().enumerate() {
            if d.name.len() > MAX_NAME {
                return Err(DecodeError::TooLong {
                    field: "device name",
                    len: d.name.len(),
                    max: MAX_NAME,
                });
            }
            if self.devices[..i].iter().any(|e| e.id == d.id) {
                return Err(DecodeError::Invalid("duplicate device id"));
            }
        }
        // 0 is never a version, and u64::MAX is refused so that `successor` cannot overflow;
        // the last version, u64::MAX - 1, therefore has no successor (it cannot be reached).
        if self.version == 0 || self.version == u64::MAX {
            return Err(DecodeError::Invalid("roster version"));
        }
        Ok(())
    }

    fn wrong_account() -> RosterError {
        RosterError::WrongAccount
    }

    fn refused(&self, refusal: Refusal) -> RosterError {
        match refusal {
            Refusal::Unlisted(device) => RosterError::UnlistedSigner {
                version: self.version,
                device,
            },
            Refusal::BadSignature => RosterError::BadSignature,
        }
    }
}

impl RosterBody {
    /// Signs this body with the account key or a device's key. Whether that signer may sign it
    /// is for the holders to check ([`SignedRoster::verify_first`], [`Roster::accept`]).
    ///
    /// # Errors
    /// [`RosterError::WrongAccount`] if `key` is an account key other than `self.account`;
    /// [`RosterError::Malformed`] if a limit is exceeded (too many devices, a name too long, a
    /// duplicate id, version 0).
    pub fn sign(self, key: SignerKey<'_>) -> Result<SignedRoster, RosterError> {
        statement::sign(self, key)
    }
}

impl SignedRoster {
    /// This roster's hash.
    #[must_use]
    pub fn hash(&self) -> RosterHash {
        RosterHash(Sha256::digest(self.encoded()).into())
    }

    /// Verifies a roster signed by the account key `account`, with no earlier roster to compare
    /// against: the first roster a camera or device follows the chain from (version 1, or a
    /// roster the account key signed at recovery). Later rosters must chain from it.
    ///
    /// # Errors
    /// [`RosterError::WrongAccount`], [`RosterError::NeedsAccountKey`] (signed by a device),
    /// [`RosterError::BadSignature`] or [`RosterError::BadGenesis`].
    pub fn verify_first(self, account: &AccountPublicKey) -> Result<Roster, RosterError> {
        self.check_account(account)?;
        let body = self.unverified_body();
        if self.signer() != Signer::Account {
            return Err(RosterError::NeedsAccountKey {
                version: body.version,
                why: "a chain starts at a roster the account key signed",
            });
        }
        self.verify_account_tail(account)?;
        if body.version == 1 && body.previous != RosterHash([0; 32]) {
            return Err(RosterError::BadGenesis);
        }
        Ok(Roster { signed: self })
    }
}

impl Roster {
    /// The verified content.
    #[must_use]
    pub fn body(&self) -> &RosterBody {
        self.signed.unverified_body()
    }

    /// The signed form, for storing or sending.
    #[must_use]
    pub fn signed(&self) -> &SignedRoster {
        &self.signed
    }

    /// This roster's hash.
    #[must_use]
    pub fn hash(&self) -> RosterHash {
        self.signed.hash()
    }

    /// The device with this id, if enrolled.
    #[must_use]
    pub fn device(&self, id: &DeviceId) -> Option<&DeviceEntry> {
        self.body().devices.iter().find(|d| d.id == *id)
    }

    /// The account key this roster's chain starts from.
    #[must_use]
    pub fn account(&self) -> &AccountPublicKey {
        &self.body().account
    }

    /// Verifies `signature` by `signer` over `signed` under `context`, as this roster — the one
    /// in force — allows: the account key, or a device it lists under that device's key.
    ///
    /// # Errors
    /// [`Refusal::Unlisted`] for a device this roster does not list, [`Refusal::BadSignature`]
    /// for a signature that does not verify.
    pub fn verify_signed(
        &self,
        signer: Signer,
        context: &str,
        signed: &[u8],
        signature: &Signature,
    ) -> Result<(), Refusal> {
        let verified = match signer {
            Signer::Account => self.account().verify(context, &[signed], signature),
            Signer::Device(id) => self
                .device(&id)
                .ok_or(Refusal::Unlisted(id))?
                .signing_key
                .verify(context, &[signed], signature),
        };
        verified.map_err(|_| Refusal::BadSignature)
    }

    /// Accepts `next` as the roster that replaces this one: the same identical roster (no
    /// change), or the direct successor (version + 1, chaining to this roster's hash) signed by
    /// the account key or a device this roster lists; a successor that changes the recovery key
    /// must be the account key's.
    ///
    /// # Errors
    /// Each refusal names what was wrong: signer, signature, rollback, fork, gap or broken chain.
    pub fn accept(&self, next: SignedRoster) -> Result<Roster, RosterError> {
        next.check_account(self.account())?;
        let (trusted, offered) = (self.body().version, next.unverified_body().version);
        let step = chain::step(
            trusted,
            offered,
            next.encoded() == self.signed.encoded(),
            next.unverified_body().previous == self.hash(),
        );
        match step {
            // The trusted roster itself: its signer was checked against the roster before it.
            Ok(Step::Same) => return Ok(self.clone()),
            Err(Break::Rollback) => return Err(RosterError::Rollback { offered, trusted }),
            Err(Break::Gap) => return Err(RosterError::Gap { trusted, offered }),
            Ok(Step::Next) | Err(Break::Fork | Break::BrokenChain) => {}
        }
        // A fork or a broken link is reported only for a roster that some listed signer made;
        // anything else is a forgery.
        next.verify_tail(self)?;
        match step {
            Err(Break::Fork) => Err(RosterError::Fork { version: offered }),
            Err(_) => Err(RosterError::BrokenChain { version: offered }),
            Ok(_)
                if next.unverified_body().recovery_key != self.body().recovery_key
                    && next.signer() != Signer::Account =>
            {
                Err(RosterError::NeedsAccountKey {
                    version: offered,
                    why: "it changes the recovery key",
                })
            }
            Ok(_) => Ok(Roster { signed: next }),
        }
    }

    /// Accepts each roster of `chain` in turn (oldest first) and returns the newest.
    ///
    /// # Errors
    /// The first refusal, as [`Roster::accept`].
    pub fn accept_chain(
        &self,
        chain: impl IntoIterator<Item = SignedRoster>,
    ) -> Result<Roster, RosterError> {
        chain
            .into_iter()
            .try_fold(self.clone(), |trusted, next| trusted.accept(next))
    }

    /// The body for the next version: same devices, version + 1, chained to this roster.
    /// Edit its devices, then [`RosterBody::sign`] with the account key or a listed device's.
    #[must_use]
    pub fn successor(&self, issued_at: Timestamp) -> RosterBody {
        RosterBody {
            // A verified roster's version is below u64::MAX, so this cannot overflow; the
            // successor of the last version is u64::MAX, which `sign` refuses.
            version: self.body().version.saturating_add(1),
            previous: self.hash(),
            issued_at,
            ..self.body().clone()
        }
    }
}

/// An account with one enrolled device, for unit tests.
#[cfg(test)]
pub(crate) mod fixture {
    use rand_core::OsRng;

    use super::{DeviceEntry, Roster, RosterBody, RosterHash};
    use crate::ids::{DeviceId, Timestamp};
    use crate::keys::{AccountKey, DeviceKeys, HpkeSecretKey};
    use crate::signer::SignerKey;

    /// The account key, its one device and roster version 1 listing it.
    pub(crate) struct Account {
        pub(crate) key: AccountKey,
        pub(crate) device_id: DeviceId,
        pub(crate) device: DeviceKeys,
        pub(crate) roster: Roster,
    }

    impl Account {
        pub(crate) fn new() -> Self {
            let key = AccountKey::generate(&mut OsRng);
            let device = DeviceKeys::generate(&mut OsRng);
            let device_id = DeviceId::random(&mut OsRng);
            let roster = RosterBody {
                account: key.public(),
                version: 1,
                previous: RosterHash([0; 32]),
                issued_at: Timestamp(1),
                recovery_key: HpkeSecretKey::generate(&mut OsRng).public(),
                devices: vec![DeviceEntry {
                    id: device_id,
                    name: "phone".into(),
                    added_at: Timestamp(1),
                    signing_key: device.signing.public(),
                    hpke_key: device.hpke.public(),
                }],
            }
            .sign(SignerKey::Account(&key))
            .and_then(|r| r.verify_first(&key.public()))
            .expect("a fresh roster verifies");
            Self {
                key,
                device_id,
                device,
                roster,
            }
        }

        /// The device's signing key.
        pub(crate) fn signer(&self) -> SignerKey<'_> {
            SignerKey::Device {
                id: self.device_id,
                key: &self.device.signing,
            }
        }

        /// The roster after the device was removed (its revocation), signed by the account key.
        pub(crate) fn revoked(&self) -> Roster {
            let mut next = self.roster.successor(Timestamp(2));
            next.devices.clear();
            self.roster
                .accept(next.sign(SignerKey::Account(&self.key)).expect("signs"))
                .expect("the account key may sign any successor")
        }
    }
}
