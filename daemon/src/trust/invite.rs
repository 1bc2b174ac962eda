//! Invites: compact, single-use, expiring and tamper-evident.
//!
//! Text form: `cli1:` + base64url (no padding) of (integers big-endian):
//!
//! ```text
//! off  len  field
//!   0    1  version         1
//!   1   16  invite id       random
//!  17   16  inviter id
//!  33   32  inviter Ed25519 public key
//!  65   32  inviter X25519 public key
//!  97    4  inviter epoch
//! 101    8  expires         ms since the Unix epoch
//! 109   16  secret          random, one time
//! 125    1  address count   0..=8
//!  ...      per address: length (u16, 1..=512) then that many UTF-8 bytes
//!  end  64  signature       Ed25519 by the inviter key over "clawlink-invite-v1\0" || all above
//! ```
//!
//! The signature makes any change to the invite evident (a changed invite would need the
//! inviter's key; a wholly new invite carries other keys, which the safety number exposes).
//! The accepter proves it holds the secret with
//! `proof = HMAC-SHA256(secret, "clawlink-invite-accept-v1\0" || invite id || accepter id || accepter sign || accepter seal)`,
//! sent sealed to the inviter in an invite-accept envelope. The inviter keeps the secret until
//! the invite is used or expires, and refuses a second use.

use super::keys::{PeerId, PublicKeys};
use super::Refusal;
use base64::Engine;
use ed25519_dalek::Signer;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Text prefix.
pub const PREFIX: &str = "cli1:";
/// Largest invite text accepted.
pub const MAX_TEXT: usize = 8 * 1024;
const SIG_CONTEXT: &[u8] = b"clawlink-invite-v1\0";
const PROOF_CONTEXT: &[u8] = b"clawlink-invite-accept-v1\0";

/// A parsed invite whose signature verified.
pub struct Invite {
    /// Invite id.
    pub id: [u8; 16],
    /// Inviter's peer id.
    pub inviter: PeerId,
    /// Inviter's public keys.
    pub keys: PublicKeys,
    /// Inviter's epoch.
    pub epoch: u32,
    /// Expiry, ms since the epoch.
    pub expires_ms: u64,
    /// The one-time secret.
    pub secret: Zeroizing<[u8; 16]>,
    /// Where the inviter can be reached.
    pub addresses: Vec<String>,
}

impl std::fmt::Debug for Invite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Invite")
            .field("id", &super::hex(&self.id))
            .field("inviter", &self.inviter)
            .field("expires_ms", &self.expires_ms)
            .field("addresses", &self.addresses)
            .finish_non_exhaustive()
    }
}

fn body(inv: &Invite) -> Result<Vec<u8>, Refusal> {
    let mut b = Vec::with_capacity(256);
    b.push(1);
    b.extend_from_slice(&inv.id);
    b.extend_from_slice(&inv.inviter.0);
    b.extend_from_slice(&inv.keys.sign);
    b.extend_from_slice(&inv.keys.seal);
    b.extend_from_slice(&inv.epoch.to_be_bytes());
    b.extend_from_slice(&inv.expires_ms.to_be_bytes());
    b.extend_from_slice(inv.secret.as_slice());
    if inv.addresses.len() > super::payload::MAX_ADDRESSES {
        return Err(Refusal::BadPayload);
    }
    b.push(inv.addresses.len() as u8);
    for a in &inv.addresses {
        if a.is_empty() || a.len() > super::payload::MAX_ADDRESS {
            return Err(Refusal::BadPayload);
        }
        b.extend_from_slice(&(a.len() as u16).to_be_bytes());
        b.extend_from_slice(a.as_bytes());
    }
    Ok(b)
}

impl Invite {
    /// Signs and encodes the invite with the inviter's signing key.
    pub fn to_text(&self, key: &ed25519_dalek::SigningKey) -> Result<String, Refusal> {
        let mut b = body(self)?;
        let mut msg = SIG_CONTEXT.to_vec();
        msg.extend_from_slice(&b);
        b.extend_from_slice(&key.sign(&msg).to_bytes());
        let mut s = String::from(PREFIX);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(&b, &mut s);
        Ok(s)
    }

    /// Parses and verifies an invite; `now_ms` decides expiry.
    pub fn from_text(text: &str, now_ms: u64) -> Result<Invite, Refusal> {
        let text = text.trim();
        if text.len() > MAX_TEXT {
            return Err(Refusal::Oversized);
        }
        let raw = text.strip_prefix(PREFIX).ok_or(Refusal::Malformed)?;
        let b = Zeroizing::new(
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(raw.as_bytes())
                .map_err(|_| Refusal::Malformed)?,
        );
        let inv = Self::parse(&b)?;
        if inv.expires_ms <= now_ms {
            return Err(Refusal::InviteExpired);
        }
        Ok(inv)
    }

    fn parse(b: &[u8]) -> Result<Invite, Refusal> {
        let mut r = Reader { b, off: 0 };
        if r.bytes::<1>()? != [1] {
            return Err(Refusal::UnknownVersion);
        }
        let id = r.bytes::<16>()?;
        let inviter = PeerId(r.bytes::<16>()?);
        let keys = PublicKeys {
            sign: r.bytes::<32>()?,
            seal: r.bytes::<32>()?,
        };
        let epoch = u32::from_be_bytes(r.bytes::<4>()?);
        let expires_ms = u64::from_be_bytes(r.bytes::<8>()?);
        let secret = Zeroizing::new(r.bytes::<16>()?);
        let [n] = r.bytes::<1>()?;
        if n as usize > super::payload::MAX_ADDRESSES {
            return Err(Refusal::Malformed);
        }
        let mut addresses = Vec::with_capacity(n as usize);
        for _ in 0..n {
            let len = u16::from_be_bytes(r.bytes::<2>()?) as usize;
            if len == 0 || len > super::payload::MAX_ADDRESS {
                return Err(Refusal::Malformed);
            }
            let s = r.slice(len)?;
            addresses.push(
                std::str::from_utf8(s)
                    .map_err(|_| Refusal::Malformed)?
                    .to_string(),
            );
        }
        let signed_len = r.off;
        let sig = r.bytes::<64>()?;
        if r.off != b.len() {
            return Err(Refusal::Malformed);
        }
        let key = keys.verifying_key().ok_or(Refusal::InviteTampered)?;
        let mut msg = SIG_CONTEXT.to_vec();
        msg.extend_from_slice(&b[..signed_len]);
        key.verify_strict(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
            .map_err(|_| Refusal::InviteTampered)?;
        if PeerId::derive(&keys.sign) != inviter && epoch == 0 {
            return Err(Refusal::InviteTampered);
        }
        Ok(Invite {
            id,
            inviter,
            keys,
            epoch,
            expires_ms,
            secret,
            addresses,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
    off: usize,
}

impl Reader<'_> {
    fn slice(&mut self, n: usize) -> Result<&[u8], Refusal> {
        let s = self
            .b
            .get(self.off..self.off.saturating_add(n))
            .ok_or(Refusal::Malformed)?;
        self.off += n;
        Ok(s)
    }

    fn bytes<const N: usize>(&mut self) -> Result<[u8; N], Refusal> {
        self.slice(N)?.try_into().map_err(|_| Refusal::Malformed)
    }
}

/// The accepter's proof of the invite secret.
pub fn proof(
    secret: &[u8; 16],
    invite_id: &[u8; 16],
    accepter: &PeerId,
    keys: &PublicKeys,
) -> [u8; 32] {
    // HMAC pads a short key with zeros to the block size, so this is HMAC with the 16-byte
    // secret as its key; the fixed-size form cannot fail.
    let mut block = Zeroizing::new([0u8; 64]);
    block[..16].copy_from_slice(secret);
    let mut mac = <Hmac<Sha256> as hmac::digest::KeyInit>::new(
        hmac::digest::generic_array::GenericArray::from_slice(block.as_slice()),
    );
    mac.update(PROOF_CONTEXT);
    mac.update(invite_id);
    mac.update(&accepter.0);
    mac.update(&keys.sign);
    mac.update(&keys.seal);
    mac.finalize().into_bytes().into()
}

/// Checks a proof in constant time.
pub fn proof_ok(
    secret: &[u8; 16],
    invite_id: &[u8; 16],
    accepter: &PeerId,
    keys: &PublicKeys,
    given: &[u8; 32],
) -> bool {
    use subtle::ConstantTimeEq;
    proof(secret, invite_id, accepter, keys).ct_eq(given).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::keys::KeyPair;

    fn sample(expires_ms: u64) -> (Invite, KeyPair) {
        let k = KeyPair::generate(0);
        let inv = Invite {
            id: [1; 16],
            inviter: PeerId::derive(&k.public().sign),
            keys: k.public(),
            epoch: 0,
            expires_ms,
            secret: Zeroizing::new([2; 16]),
            addresses: vec!["relay+http://127.0.0.1:1/abc".into()],
        };
        (inv, k)
    }

    #[test]
    fn round_trip_expiry_and_tampering() -> Result<(), Refusal> {
        let (inv, k) = sample(10_000);
        let text = inv.to_text(&k.sign)?;
        let back = Invite::from_text(&text, 9_999)?;
        assert_eq!(back.addresses, inv.addresses);
        assert_eq!(*back.secret, [2; 16]);
        assert_eq!(
            Invite::from_text(&text, 10_000).err(),
            Some(Refusal::InviteExpired)
        );
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(&text.as_bytes()[PREFIX.len()..])
            .map_err(|_| Refusal::Malformed)?;
        for i in 0..raw.len() {
            let mut t = raw.clone();
            t[i] ^= 0x01;
            let s = format!(
                "{PREFIX}{}",
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&t)
            );
            assert!(
                Invite::from_text(&s, 0).is_err(),
                "flip at byte {i} accepted"
            );
        }
        Ok(())
    }

    #[test]
    fn proof_binds_secret_and_keys() {
        let a = KeyPair::generate(0).public();
        let b = KeyPair::generate(0).public();
        let id = PeerId([3; 16]);
        let p = proof(&[7; 16], &[1; 16], &id, &a);
        assert!(proof_ok(&[7; 16], &[1; 16], &id, &a, &p));
        assert!(!proof_ok(&[8; 16], &[1; 16], &id, &a, &p));
        assert!(!proof_ok(&[7; 16], &[1; 16], &id, &b, &p));
    }
}
