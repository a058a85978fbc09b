//! Live requests (PROTOCOL.md §8.2.2): a camera wakes for live view only when a holder of its
//! current viewing key asks — any device of the owner's roster, or of a member's — never on the
//! server's word alone, which would let a server keep a battery camera streaming to no one.
//!
//! The camera names a fresh X25519 **challenge** key in its signed head (§8.3). A viewer proves
//! it holds the viewing key of the camera's current epoch with a keyed BLAKE3 hash under the
//! Diffie-Hellman secret of that key and the challenge, over the camera, the epoch, the
//! challenge and the viewer's nonce; the camera computes the same secret from the challenge's
//! private half and the epoch's public viewing key. Holders revoked since the epoch began do not
//! have its key; the server never has one. Each nonce starts at most one session.

use rand_core::CryptoRngCore;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::codec::{DecodeError, Reader, Writer};
use crate::ids::CameraId;
use crate::keys::{HpkePublicKey, HpkeSecretKey};
use crate::live_check::{NONCE_LEN, Nonce};

/// Bytes of a challenge (an X25519 public key).
pub const CHALLENGE_LEN: usize = 32;
/// Bytes of an encoded request: nonce and proof.
pub const REQUEST_LEN: usize = NONCE_LEN + 32;

const CONTEXT: &str = "keyhole live request v1";

/// A camera's challenge: an X25519 key pair whose public half its heads carry.
pub struct LiveChallenge {
    secret: x25519_dalek::StaticSecret,
    public: [u8; CHALLENGE_LEN],
}

impl std::fmt::Debug for LiveChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveChallenge")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

/// A viewer's request for live view: its nonce and the proof that it holds the viewing key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveRequest {
    /// The viewer's nonce, which the camera's checkpoints then name (§8.2.1).
    pub nonce: Nonce,
    /// Keyed BLAKE3 under the viewing key's and the challenge's shared secret.
    pub proof: [u8; 32],
}

/// The proof for `nonce` under the Diffie-Hellman secret `shared`.
fn proof(
    shared: &[u8; 32],
    camera: &CameraId,
    epoch: u32,
    challenge: &[u8; CHALLENGE_LEN],
    nonce: &Nonce,
) -> [u8; 32] {
    let key = Zeroizing::new(blake3::derive_key(CONTEXT, shared));
    let mut w = Writer::with_capacity(16 + 4 + CHALLENGE_LEN + NONCE_LEN);
    w.bytes(&camera.0).u32(epoch).bytes(challenge).bytes(nonce);
    *blake3::keyed_hash(&key, &w.into_vec()).as_bytes()
}

impl LiveChallenge {
    /// A fresh challenge.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        let secret = x25519_dalek::StaticSecret::random_from_rng(rng);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        Self { secret, public }
    }

    /// The challenge whose private half is `secret` (kept by the camera across restarts).
    #[must_use]
    pub fn from_secret(secret: &[u8; 32]) -> Self {
        let secret = x25519_dalek::StaticSecret::from(*secret);
        let public = x25519_dalek::PublicKey::from(&secret).to_bytes();
        Self { secret, public }
    }

    /// The private half, to keep (it never leaves the camera).
    #[must_use]
    pub fn secret(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.secret.to_bytes())
    }

    /// The Diffie-Hellman secret with `public`; `None` for a low-order key (nothing shared).
    #[must_use]
    pub fn shared_with(&self, public: &[u8; 32]) -> Option<Zeroizing<[u8; 32]>> {
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(*public));
        shared
            .was_contributory()
            .then(|| Zeroizing::new(*shared.as_bytes()))
    }

    /// The public half, for the camera's heads.
    #[must_use]
    pub fn public(&self) -> [u8; CHALLENGE_LEN] {
        self.public
    }

    /// Whether `request` proves its sender holds the private half of `viewing`, the viewing key
    /// of `camera`'s epoch `epoch`, for this challenge. Compared in constant time.
    #[must_use]
    pub fn verify(
        &self,
        camera: &CameraId,
        epoch: u32,
        viewing: &HpkePublicKey,
        request: &LiveRequest,
    ) -> bool {
        let shared = self
            .secret
            .diffie_hellman(&x25519_dalek::PublicKey::from(viewing.0));
        if !shared.was_contributory() {
            return false;
        }
        let expected = proof(
            shared.as_bytes(),
            camera,
            epoch,
            &self.public,
            &request.nonce,
        );
        bool::from(expected.ct_eq(&request.proof))
    }
}

impl LiveRequest {
    /// A request with `nonce` to `camera`, whose head named `challenge`, from a holder of
    /// `viewing`, the viewing key of the camera's epoch `epoch`; `None` for a challenge that
    /// is not a usable key (a low-order point: no secret would be shared).
    #[must_use]
    pub fn make(
        camera: &CameraId,
        epoch: u32,
        challenge: &[u8; CHALLENGE_LEN],
        viewing: &HpkeSecretKey,
        nonce: Nonce,
    ) -> Option<Self> {
        let secret = x25519_dalek::StaticSecret::from(*viewing.to_bytes());
        let shared = secret.diffie_hellman(&x25519_dalek::PublicKey::from(*challenge));
        shared.was_contributory().then(|| Self {
            nonce,
            proof: proof(shared.as_bytes(), camera, epoch, challenge, &nonce),
        })
    }

    /// Its encoding: nonce ‖ proof ([`REQUEST_LEN`] bytes).
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(REQUEST_LEN);
        w.bytes(&self.nonce).bytes(&self.proof);
        w.into_vec()
    }

    /// Reads [`LiveRequest::encode`]'s output.
    ///
    /// # Errors
    /// Anything but exactly [`REQUEST_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes);
        let request = Self {
            nonce: r.array("nonce")?,
            proof: r.array("proof")?,
        };
        r.finish()?;
        Ok(request)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::SeedableRng;

    #[test]
    fn only_a_holder_of_the_epochs_viewing_key_makes_a_request_the_camera_takes() {
        let rng = &mut rand_chacha::ChaCha20Rng::seed_from_u64(1);
        let challenge = LiveChallenge::generate(rng);
        let camera = CameraId([7; 16]);
        let viewing = HpkeSecretKey::from_bytes(&[0x61; 32]);
        let request =
            LiveRequest::make(&camera, 3, &challenge.public(), &viewing, [9; 16]).unwrap();
        assert!(challenge.verify(&camera, 3, &viewing.public(), &request));
        assert_eq!(LiveRequest::decode(&request.encode()), Ok(request));
        // Another epoch's key, another epoch, camera, nonce or challenge: refused.
        let old = HpkeSecretKey::from_bytes(&[0x62; 32]);
        let stale = LiveRequest::make(&camera, 3, &challenge.public(), &old, [9; 16]).unwrap();
        assert!(!challenge.verify(&camera, 3, &viewing.public(), &stale));
        assert!(!challenge.verify(&camera, 4, &viewing.public(), &request));
        assert!(!challenge.verify(&CameraId([8; 16]), 3, &viewing.public(), &request));
        let moved = LiveRequest {
            nonce: [10; 16],
            ..request
        };
        assert!(!challenge.verify(&camera, 3, &viewing.public(), &moved));
        let other = LiveChallenge::generate(rng);
        assert!(!other.verify(&camera, 3, &viewing.public(), &request));
        // A low-order challenge shares no secret.
        assert!(LiveRequest::make(&camera, 3, &[0; 32], &viewing, [9; 16]).is_none());
        assert!(LiveRequest::decode(&request.encode()[1..]).is_err());
    }
}
