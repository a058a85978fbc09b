//! Pairing codes and the camera's registration proof.
//!
//! The owner's device makes a [`PairingCode`] and shows it to the camera out of band (QR code,
//! typed, a file): the server's address (and its certificate fingerprint when self-signed), a
//! one-time token id the server knows, a pairing secret the server never sees, and the account
//! identity key the camera pins. The camera answers through the server with a
//! [`RegistrationProof`]: its id and signing key, authenticated with HMAC under a key derived from
//! the pairing secret, so the owner's device knows the key is the camera's and not one the server put in.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use hkdf::Hkdf;
use hmac::{Hmac, Mac};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::CameraId;
use crate::keys::{AccountPublicKey, CameraKey, CameraPublicKey, Signature};

const TEXT_PREFIX: &str = "KH1";
const CODE_FORMAT: u8 = 1;
const CHECKSUM_CONTEXT: &[u8] = b"keyhole pairing code v1\0";
const MAC_INFO: &[u8] = b"keyhole camera registration v1";
const PROOF_SIGNING_CONTEXT: &str = "keyhole camera registration signature v1";
const PROOF_MAGIC: &[u8; 4] = b"KHRG";
/// Longest server URL in a pairing code, in bytes.
pub const MAX_URL: usize = 200;
/// Characters per group in the text form.
const GROUP: usize = 6;

/// Identifies a pairing token to the server; one use, short-lived.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenId(pub [u8; 16]);

impl fmt::Debug for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenId({})", hex::encode(self.0))
    }
}

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The secret shared by the owner's device and the camera, never by the server.
#[derive(Clone)]
pub struct PairingSecret(Zeroizing<[u8; 32]>);

impl PairingSecret {
    /// The secret with these bytes.
    #[must_use]
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    /// The raw bytes, for keeping on the owner's device until the camera answers.
    #[must_use]
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        self.0.clone()
    }

    fn mac(&self, token: &TokenId) -> Hmac<Sha256> {
        let mut key = Zeroizing::new([0u8; 32]);
        Hkdf::<Sha256>::new(Some(&token.0), self.0.as_ref())
            .expand(MAC_INFO, key.as_mut())
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        <Hmac<Sha256> as Mac>::new_from_slice(key.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }
}

impl fmt::Debug for PairingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PairingSecret(..)")
    }
}

/// Why a pairing code or registration proof was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PairingError {
    /// The text does not start with `KH1`.
    #[error("not a Keyhole pairing code (it should start with {TEXT_PREFIX})")]
    Prefix,
    /// A character outside the code's alphabet (A–Z, 2–7).
    #[error("pairing code contains a character that cannot appear in it")]
    Alphabet,
    /// The checksum does not match: a typo or a damaged code.
    #[error("pairing code checksum does not match: check for a typo")]
    Checksum,
    /// The content is malformed.
    #[error("malformed pairing code: {0}")]
    Malformed(DecodeError),
    /// The server URL is not an `https://` or `http://` URL of printable ASCII.
    #[error("pairing code server address is not a valid http(s) URL")]
    BadUrl,
    /// The camera's proof does not verify with this pairing's secret: the key was not sent by
    /// the camera holding the code (for example, a server substituting its own key).
    #[error("camera registration does not verify with the pairing secret (key substituted?)")]
    BadProof,
}

crate::codec::malformed_from!(PairingError);

/// Everything a camera needs to pair.
#[derive(Clone, PartialEq, Eq)]
pub struct PairingCode {
    /// Base URL of the server, `https://host:port` (or `http://` when configured).
    pub server_url: String,
    /// SHA-256 of the server's DER certificate when it is self-signed, for pinning.
    pub tls_fingerprint: Option<[u8; 32]>,
    /// The one-time token the server expects.
    pub token: TokenId,
    /// The secret the server never sees.
    pub secret: PairingSecret,
    /// The account identity key the camera pins.
    pub account: AccountPublicKey,
}

impl PartialEq for PairingSecret {
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0.as_slice().ct_eq(other.0.as_slice()).into()
    }
}
impl Eq for PairingSecret {}

impl fmt::Debug for PairingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PairingCode")
            .field("server_url", &self.server_url)
            .field("token", &self.token)
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

fn valid_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    rest.is_some_and(|host| !host.is_empty() && !host.starts_with('/'))
        && url.len() <= MAX_URL
        && url.bytes().all(|b| b.is_ascii_graphic())
}

fn checksum(body: &[u8]) -> [u8; 4] {
    let d = Sha256::new()
        .chain_update(CHECKSUM_CONTEXT)
        .chain_update(body)
        .finalize();
    [d[0], d[1], d[2], d[3]]
}

impl PairingCode {
    /// A new code with a fresh token id and secret.
    ///
    /// # Errors
    /// [`PairingError::BadUrl`] if `server_url` is not a valid http(s) URL of at most
    /// [`MAX_URL`] bytes.
    pub fn new(
        server_url: &str,
        tls_fingerprint: Option<[u8; 32]>,
        account: AccountPublicKey,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, PairingError> {
        if !valid_url(server_url) {
            return Err(PairingError::BadUrl);
        }
        let mut token = [0u8; 16];
        rng.fill_bytes(&mut token);
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(secret.as_mut());
        Ok(Self {
            server_url: server_url.to_owned(),
            tls_fingerprint,
            token: TokenId(token),
            secret: PairingSecret(secret),
            account,
        })
    }

    fn encode_body(&self) -> Zeroizing<Vec<u8>> {
        let mut w = Writer::with_capacity(160);
        w.u8(CODE_FORMAT)
            .bytes(&self.token.0)
            .bytes(self.secret.0.as_ref());
        w.bytes(&self.account.to_bytes());
        match &self.tls_fingerprint {
            Some(fp) => w.u8(1).bytes(fp),
            None => w.u8(0),
        };
        w.var8(self.server_url.as_bytes());
        Zeroizing::new(w.into_vec())
    }

    /// The text form: `KH1-` then base32 (RFC 4648, no padding) of the content and a 4-byte
    /// checksum, in dash-separated groups. Uppercase letters, digits and dashes only, so it
    /// fits a QR code's alphanumeric mode and survives retyping.
    #[must_use]
    pub fn to_text(&self) -> Zeroizing<String> {
        let mut bytes = self.encode_body();
        let sum = checksum(&bytes);
        bytes.extend_from_slice(&sum);
        let b32 = Zeroizing::new(BASE32_NOPAD.encode(&bytes));
        let mut out = Zeroizing::new(String::with_capacity(b32.len() + b32.len() / GROUP + 4));
        out.push_str(TEXT_PREFIX);
        for (i, c) in b32.chars().enumerate() {
            if i % GROUP == 0 {
                out.push('-');
            }
            out.push(c);
        }
        out
    }

    /// Parses the text form. Case, spaces, line breaks and dashes are ignored.
    ///
    /// # Errors
    /// [`PairingError`] naming what is wrong; a typo is caught by the checksum.
    pub fn parse(text: &str) -> Result<Self, PairingError> {
        let clean: Zeroizing<String> = Zeroizing::new(
            text.chars()
                .filter(|c| !c.is_whitespace() && *c != '-')
                .map(|c| c.to_ascii_uppercase())
                .collect(),
        );
        let b32 = clean
            .strip_prefix(TEXT_PREFIX)
            .ok_or(PairingError::Prefix)?;
        if !b32
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
        {
            return Err(PairingError::Alphabet);
        }
        let bytes = Zeroizing::new(
            BASE32_NOPAD
                .decode(b32.as_bytes())
                .map_err(|_| PairingError::Alphabet)?,
        );
        let split = bytes
            .len()
            .checked_sub(4)
            .ok_or(DecodeError::Truncated("pairing code"))?;
        let (body, sum) = bytes.split_at(split);
        if checksum(body) != sum {
            return Err(PairingError::Checksum);
        }
        let mut r = Reader::new(body);
        if r.u8("pairing code format")? != CODE_FORMAT {
            return Err(DecodeError::WrongFormat("pairing code").into());
        }
        let token = TokenId(r.array("token id")?);
        let secret = PairingSecret(Zeroizing::new(r.array("pairing secret")?));
        let account = AccountPublicKey::from_bytes(&r.array("account key")?)?;
        let tls_fingerprint = match r.u8("fingerprint flag")? {
            0 => None,
            1 => Some(r.array("certificate fingerprint")?),
            _ => return Err(DecodeError::Invalid("fingerprint flag").into()),
        };
        let server_url = r.string8("server url", MAX_URL)?;
        r.finish()?;
        if !valid_url(&server_url) {
            return Err(PairingError::BadUrl);
        }
        Ok(Self {
            server_url,
            tls_fingerprint,
            token,
            secret,
            account,
        })
    }
}

/// The camera's answer to a pairing code, relayed by the server to the owner's device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationProof {
    /// The token the camera is answering.
    pub token: TokenId,
    /// The id the camera chose.
    pub camera_id: CameraId,
    /// The camera's signing key.
    pub camera_key: CameraPublicKey,
    /// HMAC-SHA256 under a key derived from the pairing secret.
    mac: [u8; 32],
    /// The camera's signature over the same statement, proving it holds the private key.
    signature: Signature,
}

impl RegistrationProof {
    fn statement(
        token: &TokenId,
        camera_id: &CameraId,
        camera_key: &CameraPublicKey,
        account: &AccountPublicKey,
    ) -> Vec<u8> {
        let mut w = Writer::with_capacity(4 + 16 + 16 + 64);
        w.bytes(PROOF_MAGIC).bytes(&token.0).bytes(&camera_id.0);
        w.bytes(&camera_key.to_bytes()).bytes(&account.to_bytes());
        w.into_vec()
    }

    /// Made by the camera after reading `code`.
    #[must_use]
    pub fn create(code: &PairingCode, camera_id: CameraId, camera_key: &CameraKey) -> Self {
        let public = camera_key.public();
        let statement = Self::statement(&code.token, &camera_id, &public, &code.account);
        let mut mac = code.secret.mac(&code.token);
        mac.update(&statement);
        let signature = camera_key.sign(PROOF_SIGNING_CONTEXT, &[&statement]);
        Self {
            token: code.token,
            camera_id,
            camera_key: public,
            mac: mac.finalize().into_bytes().into(),
            signature,
        }
    }

    /// Checked by the owner's device, which kept `code` (and so the secret) since making it.
    /// The MAC comparison is constant-time.
    ///
    /// # Errors
    /// [`PairingError::BadProof`] if the MAC or signature does not verify.
    pub fn verify(&self, code: &PairingCode) -> Result<(), PairingError> {
        if self.token != code.token {
            return Err(PairingError::BadProof);
        }
        let statement = Self::statement(
            &self.token,
            &self.camera_id,
            &self.camera_key,
            &code.account,
        );
        let mut mac = code.secret.mac(&code.token);
        mac.update(&statement);
        mac.verify_slice(&self.mac)
            .map_err(|_| PairingError::BadProof)?;
        self.camera_key
            .verify(PROOF_SIGNING_CONTEXT, &[&statement], &self.signature)
            .map_err(|_| PairingError::BadProof)
    }

    /// The canonical encoding.
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(4 + 1 + 16 + 16 + 32 + 32 + 64);
        w.bytes(PROOF_MAGIC)
            .u8(1)
            .bytes(&self.token.0)
            .bytes(&self.camera_id.0);
        w.bytes(&self.camera_key.to_bytes())
            .bytes(&self.mac)
            .bytes(&self.signature.0);
        w.into_vec()
    }

    /// Parses a registration proof.
    ///
    /// # Errors
    /// [`DecodeError`] if the bytes are not exactly one well-formed proof.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        crate::codec::expect_magic(&mut r, PROOF_MAGIC, 1, "registration proof")?;
        let proof = Self {
            token: TokenId(r.array("token id")?),
            camera_id: CameraId(r.array("camera id")?),
            camera_key: CameraPublicKey::from_bytes(&r.array("camera key")?)?,
            mac: r.array("mac")?,
            signature: Signature(r.array("signature")?),
        };
        r.finish()?;
        Ok(proof)
    }
}
