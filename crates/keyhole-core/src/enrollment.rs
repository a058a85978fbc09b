//! Adding a device by approval from an enrolled one, with a short code compared on both screens.
//!
//! Four messages, all carried by the untrusted server:
//!
//! 1. **request** (joining → approving): the account key the joining device was shown, its id,
//!    name and public keys, and a commitment to a random nonce `n_j`;
//! 2. **answer** (approving → joining): a random nonce `n_a`;
//! 3. **reveal** (joining → approving): `n_j`, which must open the commitment;
//! 4. **grant** (approving → joining): the roster version that lists the joining device,
//!    HPKE-sealed to it and bound to the transcript.
//!
//! Both devices derive a six-digit [`ShortCode`] from the transcript (request, `n_j`, `n_a`) and
//! the user confirms on both that they match. Each side fixes its nonce before it sees the
//! other's, so a server in the middle — showing each device keys of its own — gets matching codes
//! with probability 10⁻⁶ per attempt, and every attempt needs the user to compare. No secret
//! travels: the joining device follows the roster chain from the account key in the compared
//! request up to the version the grant names, and is enrolled once that chain lists it with its
//! keys. It never receives the account key, which no device keeps (PROTOCOL.md §4.3).

use std::fmt;

use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer, expect_magic};
use crate::ids::{DeviceId, Timestamp};
use crate::keys::{
    AccountPublicKey, DeviceKeys, DeviceSigningPublicKey, HpkePublicKey, HpkeSecretKey,
};
use crate::roster::{DeviceEntry, MAX_NAME};
use crate::wrap;

const REQUEST_MAGIC: &[u8; 4] = b"KHER";
const GRANT_MAGIC: &[u8; 4] = b"KHDG";
const FORMAT: u8 = 1;
const GRANT_FORMAT: u8 = 2;
const COMMITMENT_LABEL: &[u8] = b"keyhole enrollment commitment v1";
const TRANSCRIPT_LABEL: &[u8] = b"keyhole enrollment transcript v1";
const CODE_LABEL: &[u8] = b"keyhole enrollment code v1";
const GRANT_INFO: &[u8] = b"keyhole device grant v2";
/// Bytes of each nonce (the answer and the reveal are exactly one nonce each).
pub const NONCE_LEN: usize = 32;
/// Encoded size of the largest request.
pub const MAX_REQUEST_LEN: usize = 5 + 32 + 16 + 1 + MAX_NAME + 32 + 32 + 32;
/// Encoded size of a grant.
pub const GRANT_LEN: usize = 5 + wrap::ENC_LEN + 8 + wrap::TAG_LEN;

/// Why an enrollment step failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnrollmentError {
    /// The bytes are not a well-formed request or grant.
    #[error("malformed enrollment message: {0}")]
    Malformed(DecodeError),
    /// The revealed nonce does not open the request's commitment.
    #[error("the joining device's nonce does not match its commitment (message altered)")]
    Commitment,
    /// The grant does not open with this device's key for this transcript, or was altered.
    #[error("the grant does not open with this device's key (altered, or for another request)")]
    CannotOpen,
    /// HPKE refused the joining device's key.
    #[error("the joining device's key is not usable")]
    BadRecipientKey,
}

crate::codec::malformed_from!(EnrollmentError);

/// The joining device's request: who it is and which account it believes it is joining.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrollmentRequest {
    /// The account key the joining device was shown (from the roster the server served it).
    pub account: AccountPublicKey,
    /// The joining device's id.
    pub device_id: DeviceId,
    /// A name people recognise, at most [`MAX_NAME`] bytes.
    pub name: String,
    /// Its signing key.
    pub signing_key: DeviceSigningPublicKey,
    /// Its HPKE key: key packages and the grant are sealed to it.
    pub hpke_key: HpkePublicKey,
    /// SHA-256 over a label and the joining device's nonce.
    pub commitment: [u8; 32],
}

impl EnrollmentRequest {
    /// The canonical encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(MAX_REQUEST_LEN);
        w.bytes(REQUEST_MAGIC).u8(FORMAT);
        w.bytes(&self.account.to_bytes()).bytes(&self.device_id.0);
        w.var8(self.name.as_bytes())
            .bytes(&self.signing_key.to_bytes())
            .bytes(&self.hpke_key.0)
            .bytes(&self.commitment);
        w.into_vec()
    }

    /// Parses a request.
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not exactly one well-formed request.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, REQUEST_MAGIC, FORMAT, "enrollment request")?;
        let request = Self {
            account: AccountPublicKey::from_bytes(&r.array("account key")?)?,
            device_id: DeviceId(r.array("device id")?),
            name: r.string8("device name", MAX_NAME)?,
            signing_key: DeviceSigningPublicKey::from_bytes(&r.array("device signing key")?)?,
            hpke_key: HpkePublicKey(r.array("device hpke key")?),
            commitment: r.array("commitment")?,
        };
        r.finish()?;
        Ok(request)
    }

    /// The roster entry for the joining device, enrolled at `added_at`.
    #[must_use]
    pub fn entry(&self, added_at: Timestamp) -> DeviceEntry {
        DeviceEntry {
            id: self.device_id,
            name: self.name.clone(),
            added_at,
            signing_key: self.signing_key,
            hpke_key: self.hpke_key,
        }
    }

    /// The approving device's check of the joining device's reveal: the nonce must open the
    /// commitment. Returns the transcript both devices derive the code from.
    ///
    /// # Errors
    /// [`EnrollmentError::Commitment`].
    pub fn check_reveal(
        &self,
        answer: &[u8; NONCE_LEN],
        reveal: &[u8; NONCE_LEN],
    ) -> Result<Transcript, EnrollmentError> {
        use subtle::ConstantTimeEq;
        if !bool::from(commitment(reveal).ct_eq(&self.commitment)) {
            return Err(EnrollmentError::Commitment);
        }
        Ok(Transcript::new(self, reveal, answer))
    }
}

fn commitment(nonce: &[u8; NONCE_LEN]) -> [u8; 32] {
    Sha256::new()
        .chain_update(COMMITMENT_LABEL)
        .chain_update(nonce)
        .finalize()
        .into()
}

/// The joining device's side: its request and the nonce it committed to.
pub struct Joining {
    request: EnrollmentRequest,
    nonce: Zeroizing<[u8; NONCE_LEN]>,
}

impl fmt::Debug for Joining {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Joining")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl Joining {
    /// Starts joining `account` as a device with these keys: draws the nonce and commits to it.
    ///
    /// # Errors
    /// [`EnrollmentError::Malformed`] if `name` is longer than [`MAX_NAME`] bytes.
    pub fn new(
        account: AccountPublicKey,
        device_id: DeviceId,
        name: &str,
        keys: &DeviceKeys,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, EnrollmentError> {
        if name.len() > MAX_NAME {
            return Err(DecodeError::TooLong {
                field: "device name",
                len: name.len(),
                max: MAX_NAME,
            }
            .into());
        }
        let mut nonce = Zeroizing::new([0u8; NONCE_LEN]);
        rng.fill_bytes(nonce.as_mut());
        Ok(Self {
            request: EnrollmentRequest {
                account,
                device_id,
                name: name.to_owned(),
                signing_key: keys.signing.public(),
                hpke_key: keys.hpke.public(),
                commitment: commitment(&nonce),
            },
            nonce,
        })
    }

    /// The request to send.
    #[must_use]
    pub fn request(&self) -> &EnrollmentRequest {
        &self.request
    }

    /// After the approving device's answer: the nonce to reveal, and the transcript.
    #[must_use]
    pub fn reveal(&self, answer: &[u8; NONCE_LEN]) -> ([u8; NONCE_LEN], Transcript) {
        (
            *self.nonce,
            Transcript::new(&self.request, &self.nonce, answer),
        )
    }
}

/// The approving device's nonce.
#[must_use]
pub fn answer(rng: &mut impl CryptoRngCore) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    nonce
}

/// SHA-256 over everything both devices exchanged; the code and the grant derive from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transcript(pub [u8; 32]);

impl Transcript {
    fn new(
        request: &EnrollmentRequest,
        reveal: &[u8; NONCE_LEN],
        answer: &[u8; NONCE_LEN],
    ) -> Self {
        Self(
            Sha256::new()
                .chain_update(TRANSCRIPT_LABEL)
                .chain_update(request.encode())
                .chain_update(reveal)
                .chain_update(answer)
                .finalize()
                .into(),
        )
    }

    /// The code the user compares on both screens.
    #[must_use]
    pub fn code(&self) -> ShortCode {
        let digest = Sha256::new()
            .chain_update(CODE_LABEL)
            .chain_update(self.0)
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        // The bias of reducing 64 bits modulo 10⁶ is below 2⁻⁴⁴.
        ShortCode(u32::try_from(u64::from_be_bytes(first) % 1_000_000).unwrap_or(0))
    }
}

/// Six decimal digits, shown as `123 456`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShortCode(pub u32);

impl fmt::Display for ShortCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:03} {:03}", self.0 / 1000, self.0 % 1000)
    }
}

/// The roster version that lists the joining device, sealed to it for the compared transcript.
/// It proves nothing alone — the joining device checks the roster chain itself — but tells it
/// which version to wait for, and only a device that saw the same code can make one it opens.
#[derive(Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    enc: [u8; wrap::ENC_LEN],
    ciphertext: Vec<u8>,
}

impl fmt::Debug for DeviceGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceGrant").finish_non_exhaustive()
    }
}

impl DeviceGrant {
    /// Seals `roster_version` (the roster that lists the device) to the device that made
    /// `request`. The approving device calls this only after the user confirmed the code, and
    /// only for a request naming its own account key.
    ///
    /// # Errors
    /// [`EnrollmentError::BadRecipientKey`].
    pub fn seal(
        roster_version: u64,
        request: &EnrollmentRequest,
        transcript: &Transcript,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, EnrollmentError> {
        let (enc, ciphertext) = wrap::seal(
            &request.hpke_key,
            GRANT_INFO,
            &transcript.0,
            &roster_version.to_be_bytes(),
            rng,
        )
        .map_err(|_| EnrollmentError::BadRecipientKey)?;
        Ok(Self { enc, ciphertext })
    }

    /// Opens the grant with the joining device's HPKE key: the roster version that lists it.
    ///
    /// # Errors
    /// [`EnrollmentError::CannotOpen`].
    pub fn open(
        &self,
        device: &HpkeSecretKey,
        transcript: &Transcript,
    ) -> Result<u64, EnrollmentError> {
        let plain = wrap::open(
            device.bytes(),
            &self.enc,
            GRANT_INFO,
            &transcript.0,
            &self.ciphertext,
        )
        .map_err(|_| EnrollmentError::CannotOpen)?;
        let version: [u8; 8] = plain
            .as_slice()
            .try_into()
            .map_err(|_| EnrollmentError::CannotOpen)?;
        Ok(u64::from_be_bytes(version))
    }

    /// The canonical encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(GRANT_LEN);
        w.bytes(GRANT_MAGIC)
            .u8(GRANT_FORMAT)
            .bytes(&self.enc)
            .bytes(&self.ciphertext);
        w.into_vec()
    }

    /// Parses a grant.
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not exactly one well-formed grant.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        expect_magic(&mut r, GRANT_MAGIC, GRANT_FORMAT, "device grant")?;
        let enc = r.array("encapsulated key")?;
        let ciphertext = r.take(8 + wrap::TAG_LEN, "sealed roster version")?.to_vec();
        r.finish()?;
        Ok(Self { enc, ciphertext })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    use crate::keys::AccountKey;

    fn setup(rng: &mut ChaCha20Rng) -> (DeviceKeys, Joining) {
        let account = AccountKey::generate(rng);
        let keys = DeviceKeys::generate(rng);
        let joining =
            Joining::new(account.public(), DeviceId([9; 16]), "laptop", &keys, rng).unwrap();
        (keys, joining)
    }

    #[test]
    fn both_sides_agree_and_the_grant_opens() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (keys, joining) = setup(&mut rng);
        let wire = EnrollmentRequest::decode(&joining.request().encode()).unwrap();
        assert_eq!(&wire, joining.request());
        let n_a = answer(&mut rng);
        let (n_j, joiner_view) = joining.reveal(&n_a);
        let approver_view = wire.check_reveal(&n_a, &n_j).unwrap();
        assert_eq!(joiner_view, approver_view);
        assert_eq!(joiner_view.code().to_string().len(), 7);
        let grant = DeviceGrant::seal(7, &wire, &approver_view, &mut rng).unwrap();
        assert_eq!(grant.encode().len(), GRANT_LEN);
        let grant = DeviceGrant::decode(&grant.encode()).unwrap();
        assert_eq!(grant.open(&keys.hpke, &joiner_view).unwrap(), 7);
    }

    #[test]
    fn a_server_in_the_middle_is_caught() {
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let (keys, joining) = setup(&mut rng);
        // The server replaces the joining device's keys with its own.
        let server_keys = DeviceKeys::generate(&mut rng);
        let mut forged = joining.request().clone();
        forged.hpke_key = server_keys.hpke.public();
        let n_a = answer(&mut rng);
        let (n_j, joiner_view) = joining.reveal(&n_a);
        let approver_view = forged.check_reveal(&n_a, &n_j).unwrap();
        assert_ne!(joiner_view, approver_view);
        // A wrong nonce does not open the commitment.
        assert_eq!(
            joining.request().check_reveal(&n_a, &[0; 32]),
            Err(EnrollmentError::Commitment)
        );
        // A real grant for another transcript does not open.
        let grant = DeviceGrant::seal(3, &forged, &approver_view, &mut rng).unwrap();
        assert_eq!(
            grant.open(&keys.hpke, &joiner_view).unwrap_err(),
            EnrollmentError::CannotOpen
        );
    }

    #[test]
    fn code_is_six_digits_with_leading_zeros() {
        assert_eq!(ShortCode(42).to_string(), "000 042");
        assert_eq!(ShortCode(987_654).to_string(), "987 654");
    }
}
