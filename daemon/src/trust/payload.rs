//! What the ciphertext holds: one JSON object per kind (UTF-8, no other content).
//!
//! - message: `{"text": STRING}` (at most 32 KiB of text);
//! - receipt: `{"for": HEX32, "status": "stored"|"delivered"|"rejected", "reason"?: STRING}`
//!   where `for` is the message id of the envelope it answers and `reason` (at most 256 bytes)
//!   is a refusal code, never content;
//! - key update: `{"sign": B64, "seal": B64, "epoch": N, "endorsement"?: B64}`: the new public
//!   keys; the envelope itself is signed by the *new* key (proof of possession), and
//!   `endorsement` is the *old* key's Ed25519 signature over
//!   `"clawlink-key-update-v1\0" || sender id || new sign || new seal || epoch (u32 BE)`;
//! - invite accept: `{"invite": HEX32, "sign": B64, "seal": B64, "epoch": N, "proof": B64,
//!   "name": STRING, "addresses": [STRING]}`: the accepter's keys, the proof of the invite
//!   secret (see [`super::invite`]), the name it suggests for itself and where it can be reached.
//!
//! Unknown fields are refused, so that two implementations never silently disagree.

use super::keys::{PeerId, PublicKeys};
use super::{b64, unb64, unhex, Refusal};
use serde::{Deserialize, Serialize};

/// Largest message text, in bytes.
pub const MAX_TEXT: usize = 32 * 1024;
/// Largest receipt reason.
pub const MAX_REASON: usize = 256;
/// Most addresses in an invite or an accept.
pub const MAX_ADDRESSES: usize = 8;
/// Longest address.
pub const MAX_ADDRESS: usize = 512;
/// Longest suggested name.
pub const MAX_NAME: usize = 64;

const ENDORSE_CONTEXT: &[u8] = b"clawlink-key-update-v1\0";

fn parse<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|_| Refusal::BadPayload)
}

fn to_json<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// A message.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    /// The text.
    pub text: String,
}

impl MessageBody {
    /// Parses and checks the size.
    pub fn parse(bytes: &[u8]) -> Result<MessageBody, Refusal> {
        let m: MessageBody = parse(bytes)?;
        if m.text.len() > MAX_TEXT {
            return Err(Refusal::BadPayload);
        }
        Ok(m)
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// A receipt's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReceiptStatus {
    /// Durable in the recipient's inbox.
    Stored,
    /// Handed to the recipient's agent.
    Delivered,
    /// Refused (the reason says why, without content).
    Rejected,
}

/// How far a receipt status goes: `stored` < `delivered` < `rejected` (final); 0 for anything
/// else. Receipts may cross, so the furthest one is kept and waited for.
pub fn receipt_rank(status: &str) -> u8 {
    match status {
        "stored" => 1,
        "delivered" => 2,
        "rejected" => 3,
        _ => 0,
    }
}

impl ReceiptStatus {
    /// Its wire name: `stored`, `delivered`, `rejected`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReceiptStatus::Stored => "stored",
            ReceiptStatus::Delivered => "delivered",
            ReceiptStatus::Rejected => "rejected",
        }
    }
}

/// A receipt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    /// Hex message id of the envelope this answers.
    #[serde(rename = "for")]
    pub for_id: String,
    /// The status.
    pub status: ReceiptStatus,
    /// A refusal code, for `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ReceiptBody {
    /// Parses and checks a receipt.
    pub fn parse(bytes: &[u8]) -> Result<ReceiptBody, Refusal> {
        let r: ReceiptBody = parse(bytes)?;
        if unhex::<16>(&r.for_id).is_none()
            || r.reason.as_ref().is_some_and(|s| s.len() > MAX_REASON)
        {
            return Err(Refusal::BadPayload);
        }
        Ok(r)
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// New keys.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyUpdateBody {
    /// New Ed25519 public key.
    pub sign: String,
    /// New X25519 public key.
    pub seal: String,
    /// New epoch.
    pub epoch: u32,
    /// The old key's signature over the new keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endorsement: Option<String>,
}

/// The bytes the old key signs to endorse `new`.
pub fn endorsement_message(id: &PeerId, new: &PublicKeys, epoch: u32) -> Vec<u8> {
    let mut m = ENDORSE_CONTEXT.to_vec();
    m.extend_from_slice(&id.0);
    m.extend_from_slice(&new.sign);
    m.extend_from_slice(&new.seal);
    m.extend_from_slice(&epoch.to_be_bytes());
    m
}

impl KeyUpdateBody {
    /// Parses a key update; returns it with the decoded keys.
    pub fn parse(bytes: &[u8]) -> Result<(KeyUpdateBody, PublicKeys), Refusal> {
        let k: KeyUpdateBody = parse(bytes)?;
        let keys = PublicKeys {
            sign: unb64(&k.sign).ok_or(Refusal::BadPayload)?,
            seal: unb64(&k.seal).ok_or(Refusal::BadPayload)?,
        };
        if k.endorsement
            .as_ref()
            .is_some_and(|e| unb64::<64>(e).is_none())
        {
            return Err(Refusal::BadPayload);
        }
        Ok((k, keys))
    }

    /// Builds one for `keys`, endorsed by `old` when given.
    pub fn new(
        id: &PeerId,
        keys: &PublicKeys,
        epoch: u32,
        old: Option<&ed25519_dalek::SigningKey>,
    ) -> KeyUpdateBody {
        use ed25519_dalek::Signer;
        KeyUpdateBody {
            sign: b64(&keys.sign),
            seal: b64(&keys.seal),
            epoch,
            endorsement: old
                .map(|k| b64(&k.sign(&endorsement_message(id, keys, epoch)).to_bytes())),
        }
    }

    /// Whether the endorsement verifies against `old`.
    pub fn endorsed_by(&self, id: &PeerId, new: &PublicKeys, old: &PublicKeys) -> bool {
        let (Some(sig), Some(key)) = (
            self.endorsement.as_deref().and_then(unb64::<64>),
            old.verifying_key(),
        ) else {
            return false;
        };
        key.verify_strict(
            &endorsement_message(id, new, self.epoch),
            &ed25519_dalek::Signature::from_bytes(&sig),
        )
        .is_ok()
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// The answer to an invite.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InviteAcceptBody {
    /// Hex invite id.
    pub invite: String,
    /// Accepter's Ed25519 public key.
    pub sign: String,
    /// Accepter's X25519 public key.
    pub seal: String,
    /// Accepter's epoch.
    pub epoch: u32,
    /// HMAC proof of the invite secret.
    pub proof: String,
    /// The name the accepter suggests for itself.
    pub name: String,
    /// Where the accepter can be reached.
    #[serde(default)]
    pub addresses: Vec<String>,
}

impl InviteAcceptBody {
    /// Parses and checks sizes; returns it with the decoded keys.
    pub fn parse(bytes: &[u8]) -> Result<(InviteAcceptBody, PublicKeys), Refusal> {
        let a: InviteAcceptBody = parse(bytes)?;
        let keys = PublicKeys {
            sign: unb64(&a.sign).ok_or(Refusal::BadPayload)?,
            seal: unb64(&a.seal).ok_or(Refusal::BadPayload)?,
        };
        if unhex::<16>(&a.invite).is_none()
            || unb64::<32>(&a.proof).is_none()
            || a.name.len() > MAX_NAME
            || a.addresses.len() > MAX_ADDRESSES
            || a.addresses.iter().any(|s| s.len() > MAX_ADDRESS)
        {
            return Err(Refusal::BadPayload);
        }
        Ok((a, keys))
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_parse_strictly() {
        let ok = br#"{"for":"000102030405060708090a0b0c0d0e0f","status":"stored"}"#;
        assert!(ReceiptBody::parse(ok).is_ok());
        for bad in [
            &br#"{"for":"0001","status":"stored"}"#[..],
            br#"{"for":"000102030405060708090a0b0c0d0e0f","status":"eaten"}"#,
            br#"{"for":"000102030405060708090a0b0c0d0e0f","status":"stored","x":1}"#,
            b"",
            b"\xff",
        ] {
            assert_eq!(ReceiptBody::parse(bad), Err(Refusal::BadPayload));
        }
    }

    #[test]
    fn endorsement_binds_the_new_keys() {
        let old = crate::trust::keys::KeyPair::generate(0);
        let new = crate::trust::keys::KeyPair::generate(1);
        let id = PeerId([1; 16]);
        let body = KeyUpdateBody::new(&id, &new.public(), 1, Some(&old.sign));
        assert!(body.endorsed_by(&id, &new.public(), &old.public()));
        assert!(!body.endorsed_by(&PeerId([2; 16]), &new.public(), &old.public()));
        assert!(!body.endorsed_by(&id, &old.public(), &old.public()));
        let unsigned = KeyUpdateBody::new(&id, &new.public(), 1, None);
        assert!(!unsigned.endorsed_by(&id, &new.public(), &old.public()));
    }
}
