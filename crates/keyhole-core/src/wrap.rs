//! HPKE (RFC 9180) base mode with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and
//! ChaCha20-Poly1305: suite ids 0x0020 / 0x0001 / 0x0003. Used for everything that seals a
//! small secret to a public key: clip-key wraps and key packages.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::keys::HpkePublicKey;

type Kem = X25519HkdfSha256;
type PrivateKey = <Kem as hpke::Kem>::PrivateKey;
type PublicKey = <Kem as hpke::Kem>::PublicKey;
type EncappedKey = <Kem as hpke::Kem>::EncappedKey;

/// Bytes of the HPKE encapsulated key.
pub(crate) const ENC_LEN: usize = 32;
/// Bytes HPKE adds to a sealed plaintext (the AEAD tag).
pub(crate) const TAG_LEN: usize = 16;

/// HPKE failed: the recipient key is wrong, or the ciphertext, `enc`, info or aad was altered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WrapError;

pub(crate) fn public_key(secret: &[u8; 32]) -> HpkePublicKey {
    // X25519 accepts every 32-byte string as a private key (RFC 7748 clamps it).
    let sk = PrivateKey::from_bytes(secret).unwrap_or_else(|_| unreachable!("any 32 bytes"));
    let pk = Kem::sk_to_pk(&sk);
    let mut out = [0u8; 32];
    out.copy_from_slice(&pk.to_bytes());
    HpkePublicKey(out)
}

/// Seals `plaintext` to `recipient`; returns the encapsulated key and the ciphertext.
pub(crate) fn seal(
    recipient: &HpkePublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
    rng: &mut impl CryptoRngCore,
) -> Result<([u8; ENC_LEN], Vec<u8>), WrapError> {
    let pk = PublicKey::from_bytes(&recipient.0).map_err(|_| WrapError)?;
    let (enc, ct) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, Kem, _>(
        &OpModeS::Base,
        &pk,
        info,
        plaintext,
        aad,
        rng,
    )
    .map_err(|_| WrapError)?;
    let mut enc_bytes = [0u8; ENC_LEN];
    enc_bytes.copy_from_slice(&enc.to_bytes());
    Ok((enc_bytes, ct))
}

/// Opens what [`seal`] made.
pub(crate) fn open(
    secret: &[u8; 32],
    enc: &[u8; ENC_LEN],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, WrapError> {
    let sk = PrivateKey::from_bytes(secret).map_err(|_| WrapError)?;
    let enc = EncappedKey::from_bytes(enc).map_err(|_| WrapError)?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        &sk,
        &enc,
        info,
        ciphertext,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| WrapError)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn seal_open_and_binding() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let sk = [3u8; 32];
        let pk = public_key(&sk);
        let (enc, ct) = seal(&pk, b"info", b"aad", b"secret", &mut rng).unwrap();
        assert_eq!(ct.len(), 6 + TAG_LEN);
        assert_eq!(
            &open(&sk, &enc, b"info", b"aad", &ct).unwrap()[..],
            b"secret"
        );
        assert!(open(&sk, &enc, b"infx", b"aad", &ct).is_err());
        assert!(open(&sk, &enc, b"info", b"aaX", &ct).is_err());
        assert!(open(&[4u8; 32], &enc, b"info", b"aad", &ct).is_err());
    }

    /// RFC 9180 Appendix A.2.1 (DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, `ChaCha20Poly1305`,
    /// base mode): the receiver's key pair and the first sequence-0 ciphertext, opened with our
    /// wrapper. This pins the suite to the RFC, independent of our own vectors.
    #[test]
    fn rfc9180_a2_known_answer() {
        let sk_r: [u8; 32] =
            hex::decode("8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb")
                .unwrap()
                .try_into()
                .unwrap();
        let pk_r = hex::decode("4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a")
            .unwrap();
        assert_eq!(public_key(&sk_r).0.to_vec(), pk_r);
        let enc: [u8; 32] =
            hex::decode("1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a")
                .unwrap()
                .try_into()
                .unwrap();
        let info = hex::decode("4f6465206f6e2061204772656369616e2055726e").unwrap();
        let aad = hex::decode("436f756e742d30").unwrap();
        let ct = hex::decode(
            "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28",
        )
        .unwrap();
        let pt = open(&sk_r, &enc, &info, &aad, &ct).unwrap();
        assert_eq!(
            hex::encode(&pt[..]),
            "4265617574792069732074727574682c20747275746820626561757479"
        );
    }
}
