//! Key packages: one camera's viewing private key for one epoch, HPKE-sealed to one recipient
//! (an enrolled device, a shared member's device, or the account's recovery key).
//!
//! The server stores key packages and hands each device its own. It cannot open them, and a
//! package it forges is refused: the opened key must match the viewing key named in a camera
//! record the account signed.

use rand_core::CryptoRngCore;
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::ids::{CameraId, DeviceId};
use crate::keys::{AccountPublicKey, HpkePublicKey, HpkeSecretKey};
use crate::wrap;

const MAGIC: &[u8; 4] = b"KHKP";
const FORMAT: u8 = 1;
const HPKE_INFO: &[u8] = b"keyhole key package v1";
/// Encoded size of a key package for a device (the largest kind).
pub const MAX_LEN: usize = 5 + 32 + 16 + 4 + 32 + 32 + 1 + 16 + wrap::ENC_LEN + 32 + wrap::TAG_LEN;

/// Who a key package is sealed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Recipient {
    /// The account the recipient belongs to (the owner's, or a shared member's).
    pub account: AccountPublicKey,
    /// Which of that account's keys.
    pub key: RecipientKey,
}

/// Which key of an account a package is sealed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecipientKey {
    /// An enrolled device's HPKE key.
    Device(DeviceId),
    /// The account's recovery key.
    Recovery,
}

/// A viewing key opened from a key package and checked against the camera record.
#[derive(Debug)]
pub struct ViewingKey {
    /// The camera it belongs to.
    pub camera_id: CameraId,
    /// The epoch it belongs to.
    pub epoch: u32,
    /// The private key that unwraps clip keys of this camera and epoch.
    pub secret: HpkeSecretKey,
}

/// A viewing key sealed to one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPackage {
    /// The account that owns the camera.
    pub owner: AccountPublicKey,
    /// The camera.
    pub camera_id: CameraId,
    /// The epoch.
    pub epoch: u32,
    /// Public half of the sealed key, so the recipient can match it to the camera record.
    pub viewing_key: HpkePublicKey,
    /// Who can open it.
    pub recipient: Recipient,
    enc: [u8; wrap::ENC_LEN],
    ciphertext: Vec<u8>,
}

/// Why a key package could not be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum KeyPackageError {
    /// The bytes are not a well-formed key package.
    #[error("malformed key package: {0}")]
    Malformed(DecodeError),
    /// The package does not open with this key, or was altered.
    #[error("key package does not open with this device's key (wrong recipient or altered)")]
    CannotOpen,
    /// The key inside is not the viewing key the signed camera record names.
    #[error("key package holds a viewing key the account never signed")]
    UnsignedViewingKey,
    /// The HPKE recipient key was rejected.
    #[error("recipient key is not usable")]
    BadRecipientKey,
}

crate::codec::malformed_from!(KeyPackageError);

impl KeyPackage {
    fn context(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MAX_LEN);
        w.bytes(MAGIC)
            .u8(FORMAT)
            .bytes(&self.owner.to_bytes())
            .bytes(&self.camera_id.0);
        w.u32(self.epoch)
            .bytes(&self.viewing_key.0)
            .bytes(&self.recipient.account.to_bytes());
        match self.recipient.key {
            RecipientKey::Device(id) => w.u8(1).bytes(&id.0),
            RecipientKey::Recovery => w.u8(2),
        };
        w.into_vec()
    }

    /// Seals `viewing` (the key for `camera_id` at `epoch`) to `recipient_key`.
    ///
    /// # Errors
    /// [`KeyPackageError::BadRecipientKey`] if HPKE rejects the recipient key.
    pub fn seal(
        owner: AccountPublicKey,
        camera_id: CameraId,
        epoch: u32,
        viewing: &HpkeSecretKey,
        recipient: Recipient,
        recipient_key: &HpkePublicKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, KeyPackageError> {
        let mut pkg = Self {
            owner,
            camera_id,
            epoch,
            viewing_key: viewing.public(),
            recipient,
            enc: [0; wrap::ENC_LEN],
            ciphertext: Vec::new(),
        };
        let aad = pkg.context();
        let (enc, ct) = wrap::seal(recipient_key, HPKE_INFO, &aad, viewing.bytes(), rng)
            .map_err(|_| KeyPackageError::BadRecipientKey)?;
        pkg.enc = enc;
        pkg.ciphertext = ct;
        Ok(pkg)
    }

    /// Opens the package with the recipient's private key and checks the key inside is
    /// `signed_viewing_key`, taken from a verified camera record for this camera and epoch.
    ///
    /// # Errors
    /// [`KeyPackageError::CannotOpen`] or [`KeyPackageError::UnsignedViewingKey`].
    pub fn open(
        &self,
        recipient_secret: &HpkeSecretKey,
        signed_viewing_key: &HpkePublicKey,
    ) -> Result<ViewingKey, KeyPackageError> {
        let pt = wrap::open(
            recipient_secret.bytes(),
            &self.enc,
            HPKE_INFO,
            &self.context(),
            &self.ciphertext,
        )
        .map_err(|_| KeyPackageError::CannotOpen)?;
        let bytes: Zeroizing<[u8; 32]> = Zeroizing::new(
            pt.as_slice()
                .try_into()
                .map_err(|_| KeyPackageError::CannotOpen)?,
        );
        let secret = HpkeSecretKey::from_bytes(&bytes);
        if secret.public() != self.viewing_key || self.viewing_key != *signed_viewing_key {
            return Err(KeyPackageError::UnsignedViewingKey);
        }
        Ok(ViewingKey {
            camera_id: self.camera_id,
            epoch: self.epoch,
            secret,
        })
    }

    /// The canonical encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.context();
        out.extend_from_slice(&self.enc);
        out.extend_from_slice(&self.ciphertext);
        out
    }

    /// Parses a key package.
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not exactly one well-formed key package.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, MAGIC, FORMAT, "key package")?;
        let owner = AccountPublicKey::from_bytes(&r.array("owner key")?)?;
        let camera_id = CameraId(r.array("camera id")?);
        let epoch = r.u32("epoch")?;
        let viewing_key = HpkePublicKey(r.array("viewing key")?);
        let account = AccountPublicKey::from_bytes(&r.array("recipient account")?)?;
        let key = match r.u8("recipient kind")? {
            1 => RecipientKey::Device(DeviceId(r.array("recipient device")?)),
            2 => RecipientKey::Recovery,
            _ => return Err(DecodeError::Invalid("recipient kind")),
        };
        let enc = r.array("encapsulated key")?;
        let ciphertext = r.take(32 + wrap::TAG_LEN, "sealed viewing key")?.to_vec();
        r.finish()?;
        Ok(Self {
            owner,
            camera_id,
            epoch,
            viewing_key,
            recipient: Recipient { account, key },
            enc,
            ciphertext,
        })
    }
}
