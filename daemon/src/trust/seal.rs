//! Sealing and signing an envelope, and the matching checks.
//!
//! Seal (sender `S`, recipient `R` with X25519 public key `R.seal`):
//!
//! 1. a fresh ephemeral X25519 key `e`; `dh = X25519(e, R.seal)`, refused if all-zero;
//! 2. `okm = HKDF-SHA256(salt = e.pub || R.seal, ikm = dh, info = "clawlink-envelope-v1 key", 44)`;
//!    key = `okm[0..32]`, nonce = `okm[32..44]` (a fresh key per message, so the nonce is
//!    never reused under one key);
//! 3. `ct = ChaCha20-Poly1305(key, nonce, aad = the 128-byte header, plaintext)`;
//! 4. `sig = Ed25519(S.sign, "clawlink-envelope-v1\0" || header || ct)`.
//!
//! The receiver verifies the signature against the sender's pinned key *before* decrypting,
//! then decrypts with the header as associated data. Binding the header twice (AAD and
//! signature) means a relay cannot re-sign someone else's ciphertext as its own: the sender
//! ids in the AAD would no longer match.

use super::envelope::{Envelope, Header, SIG_CONTEXT};
use super::keys::{KeyPair, PublicKeys};
use super::Refusal;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::ChaCha20Poly1305;
use ed25519_dalek::Signer;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

const KDF_INFO: &[u8] = b"clawlink-envelope-v1 key";

fn cipher(
    dh: &x25519_dalek::SharedSecret,
    epk: &[u8; 32],
    recipient_seal: &[u8; 32],
) -> Result<(ChaCha20Poly1305, [u8; 12]), Refusal> {
    if !dh.was_contributory() {
        return Err(Refusal::Decrypt);
    }
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(epk);
    salt[32..].copy_from_slice(recipient_seal);
    let hk = Hkdf::<Sha256>::new(Some(&salt), dh.as_bytes());
    let mut okm = Zeroizing::new([0u8; 44]);
    hk.expand(KDF_INFO, okm.as_mut_slice())
        .map_err(|_| Refusal::Decrypt)?;
    let key = ChaCha20Poly1305::new_from_slice(&okm[..32]).map_err(|_| Refusal::Decrypt)?;
    let mut nonce = [0u8; 12];
    nonce.copy_from_slice(&okm[32..]);
    Ok((key, nonce))
}

/// What the sender fills in; [`seal`] adds the ephemeral key, ciphertext and signature.
pub struct Draft<'a> {
    /// Header fields (its `epk` is replaced).
    pub header: Header,
    /// The plaintext.
    pub plaintext: &'a [u8],
}

/// Seals `draft` to `recipient` and signs it with `sender`.
pub fn seal(
    draft: Draft<'_>,
    sender: &KeyPair,
    recipient: &PublicKeys,
) -> Result<Envelope, Refusal> {
    let eph = x25519_dalek::EphemeralSecret::random_from_rng(rand::rngs::OsRng);
    let epk = x25519_dalek::PublicKey::from(&eph).to_bytes();
    let dh = eph.diffie_hellman(&x25519_dalek::PublicKey::from(recipient.seal));
    let (aead, nonce) = cipher(&dh, &epk, &recipient.seal)?;
    let mut header = draft.header;
    header.epk = epk;
    let ct_len = draft.plaintext.len() + super::envelope::TAG_LEN;
    if ct_len > super::envelope::MAX_CIPHERTEXT {
        return Err(Refusal::Oversized);
    }
    let aad = header.encode(ct_len);
    let ciphertext = aead
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: draft.plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| Refusal::Decrypt)?;
    let mut env = Envelope {
        header,
        ciphertext,
        signature: [0; 64],
    };
    env.signature = sign(&env, sender);
    Ok(env)
}

fn sign(env: &Envelope, sender: &KeyPair) -> [u8; 64] {
    let mut msg = SIG_CONTEXT.to_vec();
    msg.extend_from_slice(&env.signed_bytes());
    sender.sign.sign(&msg).to_bytes()
}

/// Checks the signature against `sender`'s signing key (strict verification: no malleable
/// signatures, no small-order keys).
pub fn verify(env: &Envelope, sender: &PublicKeys) -> Result<(), Refusal> {
    let key = sender.verifying_key().ok_or(Refusal::BadSignature)?;
    let mut msg = SIG_CONTEXT.to_vec();
    msg.extend_from_slice(&env.signed_bytes());
    let sig = ed25519_dalek::Signature::from_bytes(&env.signature);
    key.verify_strict(&msg, &sig)
        .map_err(|_| Refusal::BadSignature)
}

/// Decrypts with the recipient's key pair (the one whose key id the header names).
pub fn open(env: &Envelope, recipient: &KeyPair) -> Result<Zeroizing<Vec<u8>>, Refusal> {
    let dh = recipient
        .seal
        .diffie_hellman(&x25519_dalek::PublicKey::from(env.header.epk));
    let (aead, nonce) = cipher(&dh, &env.header.epk, &recipient.public().seal)?;
    let aad = env.header.encode(env.ciphertext.len());
    aead.decrypt(
        (&nonce).into(),
        Payload {
            msg: &env.ciphertext,
            aad: &aad,
        },
    )
    .map(Zeroizing::new)
    .map_err(|_| Refusal::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::envelope::Kind;
    use crate::trust::keys::{KeyId, PeerId};

    pub(crate) fn header(kind: Kind) -> Header {
        Header {
            kind,
            hops: 0,
            sender: PeerId([1; 16]),
            sender_key: KeyId([2; 16]),
            recipient: PeerId([3; 16]),
            recipient_key: KeyId([4; 16]),
            id: [5; 16],
            ts_ms: 1,
            epk: [0; 32],
        }
    }

    #[test]
    fn seal_verify_open_and_every_failure() -> Result<(), Refusal> {
        let s = KeyPair::generate(0);
        let r = KeyPair::generate(0);
        let env = seal(
            Draft {
                header: header(Kind::Message),
                plaintext: b"hello",
            },
            &s,
            &r.public(),
        )?;
        verify(&env, &s.public())?;
        assert_eq!(open(&env, &r)?.as_slice(), b"hello");
        assert!(!env.ciphertext.windows(5).any(|w| w == b"hello"));
        // Another signer, another recipient, a changed header: all refused.
        assert_eq!(verify(&env, &r.public()), Err(Refusal::BadSignature));
        assert_eq!(open(&env, &s).map(|_| ()), Err(Refusal::Decrypt));
        let mut moved = env.clone();
        moved.header.recipient = PeerId([9; 16]);
        assert_eq!(verify(&moved, &s.public()), Err(Refusal::BadSignature));
        assert_eq!(open(&moved, &r).map(|_| ()), Err(Refusal::Decrypt));
        Ok(())
    }
}
