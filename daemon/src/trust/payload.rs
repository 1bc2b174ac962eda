//! What the ciphertext holds: one JSON object per kind (UTF-8, no other content).
//!
//! - message: `{"text": STRING}` (at most 32 KiB of text);
//! - receipt: `{"for": HEX32, "ids"?: [HEX32], "status": "stored"|"delivered"|"rejected",
//!   "reason"?: STRING}` where `for` is the message id of the envelope it answers, `ids` (a
//!   batched receipt) more message ids of the same friend answered with the same status and
//!   reason, and `reason` (at most 256 bytes) is a refusal code, never content. `ids` is absent
//!   from a receipt for one message (the form older builds send and read), never empty when
//!   present, and `for` plus `ids` are at most [`MAX_RECEIPT_IDS`] distinct ids: one signed
//!   receipt per burst instead of one per message;
//! - key update: `{"sign": B64, "seal": B64, "epoch": N, "endorsement"?: B64}`: the new public
//!   keys; the envelope itself is signed by the *new* key (proof of possession), and
//!   `endorsement` is the *old* key's Ed25519 signature over
//!   `"clawlink-key-update-v1\0" || sender id || new sign || new seal || epoch (u32 BE)`;
//! - invite accept: `{"invite": HEX32, "sign": B64, "seal": B64, "epoch": N, "proof": B64,
//!   "name": STRING, "addresses": [STRING]}`: the accepter's keys, the proof of the invite
//!   secret (see [`super::invite`]), the name it suggests for itself and where it can be reached;
//! - hello: `{"features": [STRING]}`: what the sender's build reads beyond version 1 as first
//!   written (see [`HelloBody`]); at most [`MAX_FEATURES`] names of 1 to [`MAX_FEATURE`] bytes
//!   of `a-z`, `0-9` and `-`, none twice. A name this build does not know is kept and ignored.
//!
//! Unknown fields are refused, so that two implementations never silently disagree; what a
//! build may add without breaking an older friend is announced in a hello instead.

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
/// Most message ids one receipt answers (`for` plus `ids`). 256 ids are about 9 KiB of JSON,
/// well under the envelope's 48 KiB ciphertext cap.
pub const MAX_RECEIPT_IDS: usize = 256;

/// Most feature names in a hello.
pub const MAX_FEATURES: usize = 16;
/// Longest feature name.
pub const MAX_FEATURE: usize = 64;
/// The feature of a build that reads batched receipts (`ids`).
pub const FEATURE_RECEIPT_IDS: &str = "receipt-ids";
/// The features this build announces.
pub const FEATURES: &[&str] = &[FEATURE_RECEIPT_IDS];

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// A present `ids` must be a list (`null` is refused like any other non-list).
fn some_list<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    Vec::<String>::deserialize(d).map(Some)
}

/// A receipt: for one message (`ids` absent), or batched for many of one friend's messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiptBody {
    /// Hex message id of the (first) envelope this answers.
    #[serde(rename = "for")]
    pub for_id: String,
    /// Further hex message ids answered with the same status (a batched receipt).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "some_list"
    )]
    pub ids: Option<Vec<String>>,
    /// The status.
    pub status: ReceiptStatus,
    /// A refusal code, for `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ReceiptBody {
    /// A receipt answering `ids` (the first goes in `for`, the rest in `ids`); `None` when
    /// `ids` is empty. The caller keeps `ids` distinct and at most [`MAX_RECEIPT_IDS`].
    pub fn for_ids(
        ids: &[String],
        status: ReceiptStatus,
        reason: Option<String>,
    ) -> Option<ReceiptBody> {
        let (first, rest) = ids.split_first()?;
        Some(ReceiptBody {
            for_id: first.clone(),
            ids: (!rest.is_empty()).then(|| rest.to_vec()),
            status,
            reason,
        })
    }

    /// Parses and checks a receipt: every id 32 hex digits, `ids` non-empty when present,
    /// at most [`MAX_RECEIPT_IDS`] ids in all, none twice (in any letter case), the reason
    /// at most [`MAX_REASON`] bytes.
    pub fn parse(bytes: &[u8]) -> Result<ReceiptBody, Refusal> {
        let r: ReceiptBody = parse(bytes)?;
        if r.reason.as_ref().is_some_and(|s| s.len() > MAX_REASON) {
            return Err(Refusal::BadPayload);
        }
        let more = r.ids.as_deref().unwrap_or_default();
        if r.ids.as_ref().is_some_and(Vec::is_empty) || more.len() >= MAX_RECEIPT_IDS {
            return Err(Refusal::BadPayload);
        }
        let mut seen = std::collections::HashSet::with_capacity(more.len() + 1);
        for id in r.all_ids() {
            let bytes = unhex::<16>(id).ok_or(Refusal::BadPayload)?;
            if !seen.insert(bytes) {
                return Err(Refusal::BadPayload);
            }
        }
        Ok(r)
    }

    /// Every message id it answers: `for`, then `ids`.
    pub fn all_ids(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.for_id.as_str()).chain(self.ids.iter().flatten().map(String::as_str))
    }

    /// The JSON bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        to_json(self)
    }
}

/// A hello: the features the sender's build reads.
///
/// Version 1 refuses unknown fields, kinds and flags, so a build cannot add to the format
/// without an older friend refusing it. A hello tells a friend what may be sent to its sender:
/// until a friend's hello names a feature, nothing that needs it is sent to that friend. An
/// older build refuses the hello itself (`unknown_kind`) and so never learns of, or receives,
/// anything newer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HelloBody {
    /// Feature names.
    pub features: Vec<String>,
}

impl HelloBody {
    /// This build's hello.
    pub fn ours() -> HelloBody {
        HelloBody {
            features: FEATURES.iter().map(|f| f.to_string()).collect(),
        }
    }

    /// Parses and checks a hello: at most [`MAX_FEATURES`] distinct names of 1 to
    /// [`MAX_FEATURE`] bytes of `a-z`, `0-9`, `-`.
    pub fn parse(bytes: &[u8]) -> Result<HelloBody, Refusal> {
        let h: HelloBody = parse(bytes)?;
        if h.features.len() > MAX_FEATURES {
            return Err(Refusal::BadPayload);
        }
        let mut seen = std::collections::HashSet::with_capacity(h.features.len());
        for f in &h.features {
            let ok = (1..=MAX_FEATURE).contains(&f.len())
                && f.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !ok || !seen.insert(f.as_str()) {
                return Err(Refusal::BadPayload);
            }
        }
        Ok(h)
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

    const A: &str = "000102030405060708090a0b0c0d0e0f";

    fn id(n: usize) -> String {
        format!("{n:032x}")
    }

    fn receipt_json(first: &str, ids: &[String]) -> Vec<u8> {
        serde_json::json!({"for": first, "ids": ids, "status": "stored"})
            .to_string()
            .into_bytes()
    }

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
    fn a_single_id_receipt_keeps_the_old_form() {
        let r = ReceiptBody::for_ids(&[A.to_string()], ReceiptStatus::Stored, None);
        let bytes = r.map(|r| r.to_bytes()).unwrap_or_default();
        assert_eq!(
            bytes,
            br#"{"for":"000102030405060708090a0b0c0d0e0f","status":"stored"}"#
        );
        assert!(ReceiptBody::for_ids(&[], ReceiptStatus::Stored, None).is_none());
    }

    #[test]
    fn batched_receipts_round_trip_every_id_in_order() {
        let ids: Vec<String> = (0..MAX_RECEIPT_IDS).map(id).collect();
        let r = ReceiptBody::for_ids(&ids, ReceiptStatus::Rejected, Some("policy".into()));
        let bytes = r.map(|r| r.to_bytes()).unwrap_or_default();
        let back = ReceiptBody::parse(&bytes);
        let back = back.as_ref().map(|r| r.all_ids().collect::<Vec<_>>());
        assert_eq!(back, Ok(ids.iter().map(String::as_str).collect()));
        // The largest batch stays well inside the envelope's ciphertext cap.
        assert!(bytes.len() < crate::trust::envelope::MAX_CIPHERTEXT / 4);
    }

    #[test]
    fn batched_receipts_refuse_empty_oversized_duplicate_or_malformed_ids() {
        let too_many: Vec<String> = (1..=MAX_RECEIPT_IDS).map(id).collect();
        let upper = A.to_ascii_uppercase();
        for bad in [
            // `ids` present but empty: a one-id receipt omits it.
            receipt_json(A, &[]),
            // 257 ids in all.
            receipt_json(&id(0), &too_many),
            // `for` again in `ids`, or twice in `ids`, or the same id in another case.
            receipt_json(A, &[A.to_string()]),
            receipt_json(&id(0), &[id(1), id(1)]),
            receipt_json(A, &[upper]),
            // An id that is not 32 hex digits.
            receipt_json(A, &["0001".to_string()]),
            receipt_json(A, &["zz".repeat(16)]),
            br#"{"for":"000102030405060708090a0b0c0d0e0f","ids":"00","status":"stored"}"#.to_vec(),
            br#"{"for":"000102030405060708090a0b0c0d0e0f","ids":[1],"status":"stored"}"#.to_vec(),
            br#"{"for":"000102030405060708090a0b0c0d0e0f","ids":null,"status":"stored"}"#.to_vec(),
        ] {
            assert_eq!(
                ReceiptBody::parse(&bad),
                Err(Refusal::BadPayload),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
        // Exactly at the cap is fine.
        let ok: Vec<String> = (1..MAX_RECEIPT_IDS).map(id).collect();
        assert!(ReceiptBody::parse(&receipt_json(&id(0), &ok)).is_ok());
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

    #[test]
    fn hellos_parse_strictly_and_keep_unknown_features() -> Result<(), Refusal> {
        let has = |h: &HelloBody, f: &str| h.features.iter().any(|x| x == f);
        let ours = HelloBody::ours();
        assert!(has(&ours, FEATURE_RECEIPT_IDS));
        assert_eq!(HelloBody::parse(&ours.to_bytes())?, ours);
        // A feature this build does not know is kept (and ignored by whoever reads it).
        let later = HelloBody::parse(br#"{"features":["receipt-ids","zstd-2"]}"#)?;
        assert!(has(&later, "zstd-2") && has(&later, FEATURE_RECEIPT_IDS));
        assert!(!has(
            &HelloBody::parse(br#"{"features":[]}"#)?,
            FEATURE_RECEIPT_IDS
        ));
        let too_many: Vec<String> = (0..=MAX_FEATURES).map(|n| format!("f{n}")).collect();
        let long = "a".repeat(MAX_FEATURE + 1);
        for bad in [
            br#"{}"#.to_vec(),
            br#"{"features":null}"#.to_vec(),
            br#"{"features":["a"],"more":1}"#.to_vec(),
            br#"{"features":[""]}"#.to_vec(),
            br#"{"features":["Receipt-Ids"]}"#.to_vec(),
            br#"{"features":["a b"]}"#.to_vec(),
            br#"{"features":["a","a"]}"#.to_vec(),
            br#"{"features":[1]}"#.to_vec(),
            serde_json::to_vec(&serde_json::json!({ "features": too_many })).unwrap_or_default(),
            serde_json::to_vec(&serde_json::json!({ "features": [long] })).unwrap_or_default(),
        ] {
            assert_eq!(
                HelloBody::parse(&bad),
                Err(Refusal::BadPayload),
                "{}",
                String::from_utf8_lossy(&bad)
            );
        }
        Ok(())
    }
}
