//! Who signed a statement (PROTOCOL.md §2.4): the account key — the cold root, kept only behind
//! the recovery phrase and used at set-up and recovery — or one enrolled device, named by id.
//!
//! Every roster, camera record, log entry, share and acceptance ends with the same tail: the
//! signer (17 bytes), then an Ed25519 signature over everything before it; all of them are read,
//! signed and checked by [`crate::statement::Signed`]. A device's signature counts only if the
//! roster in force lists that device ([`crate::roster::Roster::verify_signed`]), so nothing a
//! revoked device signs after its revocation is accepted, whatever it still holds.

use std::fmt;

use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::DeviceId;
use crate::keys::{AccountKey, DeviceSigningKey, Signature};

/// Bytes of an encoded signer: a tag and a device id (all zero for the account key).
pub const SIGNER_LEN: usize = 17;
/// Bytes of the signed tail: the signer and the signature.
pub const TAIL_LEN: usize = SIGNER_LEN + 64;

/// Who signed a statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signer {
    /// The account identity key.
    Account,
    /// The enrolled device with this id, under the signing key the roster in force lists.
    Device(DeviceId),
}

impl Signer {
    pub(crate) fn write(self, w: &mut Writer) {
        match self {
            Self::Account => w.u8(1).bytes(&[0; 16]),
            Self::Device(id) => w.u8(2).bytes(&id.0),
        };
    }

    pub(crate) fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let tag = r.u8("signer")?;
        let id: [u8; 16] = r.array("signer id")?;
        match tag {
            1 if id == [0; 16] => Ok(Self::Account),
            1 => Err(DecodeError::Invalid(
                "the account key as signer names no device",
            )),
            2 => Ok(Self::Device(DeviceId(id))),
            _ => Err(DecodeError::Invalid("signer")),
        }
    }
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account => f.write_str("the account key"),
            Self::Device(id) => write!(f, "device {id}"),
        }
    }
}

/// A key that signs statements, with the name it signs under.
#[derive(Debug, Clone, Copy)]
pub enum SignerKey<'a> {
    /// The account identity key (set-up and recovery only).
    Account(&'a AccountKey),
    /// An enrolled device's signing key.
    Device {
        /// The device's id, as the roster lists it.
        id: DeviceId,
        /// Its signing key.
        key: &'a DeviceSigningKey,
    },
}

impl SignerKey<'_> {
    /// The signer this key signs as.
    #[must_use]
    pub fn signer(&self) -> Signer {
        match self {
            Self::Account(_) => Signer::Account,
            Self::Device { id, .. } => Signer::Device(*id),
        }
    }

    /// Appends the signed tail to `body` (a statement's canonical encoding): the signer, then the
    /// signature over the body and the signer under `context`.
    pub(crate) fn seal(&self, context: &str, mut body: Vec<u8>) -> (Signature, Vec<u8>) {
        let mut w = Writer::with_capacity(SIGNER_LEN);
        self.signer().write(&mut w);
        body.extend_from_slice(&w.into_vec());
        let signature = match self {
            Self::Account(key) => key.sign(context, &[&body]),
            Self::Device { key, .. } => key.sign(context, &[&body]),
        };
        body.extend_from_slice(&signature.0);
        (signature, body)
    }
}

/// Reads the signed tail after a statement's body.
pub(crate) fn read_tail(r: &mut Reader<'_>) -> Result<(Signer, Signature), DecodeError> {
    let signer = Signer::read(r)?;
    let signature = Signature(r.array("signature")?);
    Ok((signer, signature))
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The signer is a device the roster in force does not list: revoked, or never enrolled.
    Unlisted(DeviceId),
    /// The signature does not verify under the signer's key.
    BadSignature,
}
