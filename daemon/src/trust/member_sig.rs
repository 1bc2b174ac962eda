//! Nexus member signatures: a detached Ed25519 signature by this daemon's identity key over
//! one message of a Nexus session, and the signed key announcement that lets the other
//! members pin that key for the session.
//!
//! Why: a Nexus server's `verified` flag only says "the sender knew a session key", and any
//! member may post under another member's agent id without a key. A signature by a key the
//! session saw announced first for that member says the text was written by the same party
//! that announced it, and was not changed, moved to another session or re-attributed on the
//! way. It gives authenticity, not secrecy: the server still reads everything (see
//! `docs/envelope.md`, "Nexus member signatures").
//!
//! ## Wire format (version 1)
//!
//! The message keeps its plain `text` (so `nexus.sh` and every other client still read it);
//! the signature rides in the protocol's `json` field beside it:
//!
//! ```text
//! {"text": TEXT, "json": {"clawlink": {"v":1, "type":"sig", "ts":MS, "nonce":B64(16),
//!                                      "key":HEX(key id), "sig":B64(64)}}}
//! {"text": TEXT, "json": {"clawlink": {"v":1, "type":"announce", "ts":MS, "nonce":B64(16),
//!                                      "id":HEX(peer id), "sign":B64(32), "seal":B64(32),
//!                                      "key":HEX(key id), "sig":B64(64)}}}
//! ```
//!
//! ## Canonical bytes
//!
//! The signature covers, with `lp(x)` = 4-byte big-endian length then the bytes of `x`:
//!
//! ```text
//! "clawlink-nexus-member-v1" 0x00
//! type            1 byte: 0x01 message, 0x02 announce
//! lp(session id)  binds the session: a copy posted in another session does not verify
//! lp(member)      the agent id it was written as: a copy under another member does not verify
//! nonce           16 random bytes: a copy in the same session is recognised as a replay
//! ts_ms           8 bytes big-endian, milliseconds since the epoch
//! lp(text)        the exact text (UTF-8) the server shows
//! announce only:  peer id (16) || Ed25519 key (32) || X25519 key (32)
//! ```
//!
//! An announce is signed by the key it announces (proof of possession); a message is checked
//! against the key pinned for its member in its session. Verification is strict
//! (`verify_strict`: no malleable signatures, no small-order keys).

use super::keys::{KeyPair, PeerId, PublicKeys};
use super::{b64, hex, unb64, unhex};
use ed25519_dalek::{Signature, Signer};
use serde_json::{json, Value};

/// The version this build writes and reads.
pub const VERSION: u64 = 1;

/// The key of the object inside a message's `json`.
pub const JSON_KEY: &str = "clawlink";

const CONTEXT: &[u8] = b"clawlink-nexus-member-v1\0";

/// Longest session id, member id and text that are signed or checked, bytes.
pub const MAX_SID: usize = 256;
/// Longest member (agent) id, bytes.
pub const MAX_MEMBER: usize = 128;
/// Longest text, bytes (a Nexus message is far smaller in practice).
pub const MAX_TEXT: usize = 1 << 20;

/// What a signature is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigType {
    /// A message's text.
    Message,
    /// A key announcement (the text and the announced keys).
    Announce,
}

impl SigType {
    fn byte(self) -> u8 {
        match self {
            SigType::Message => 1,
            SigType::Announce => 2,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SigType::Message => "sig",
            SigType::Announce => "announce",
        }
    }
}

/// The signed facts of one message (everything but the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed<'a> {
    /// Message or announce.
    pub kind: SigType,
    /// The session id.
    pub sid: &'a str,
    /// The member (agent id) it is written as.
    pub member: &'a str,
    /// 16 random bytes.
    pub nonce: [u8; 16],
    /// Milliseconds since the epoch.
    pub ts_ms: u64,
    /// The text as the server shows it.
    pub text: &'a str,
    /// For an announce: the announced identity and keys.
    pub announce: Option<(PeerId, PublicKeys)>,
}

/// Why a message's signature part was not accepted. Never carries content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigError {
    /// A field is missing, of the wrong type or length, or over a size cap.
    Malformed,
    /// A version this build does not read.
    UnknownVersion,
    /// The signature does not verify.
    BadSignature,
}

impl SigError {
    /// A stable snake_case name (meta and log values).
    pub fn code(self) -> &'static str {
        match self {
            SigError::Malformed => "malformed",
            SigError::UnknownVersion => "unknown_version",
            SigError::BadSignature => "bad_signature",
        }
    }
}

fn lp(out: &mut Vec<u8>, part: &[u8]) -> Result<(), SigError> {
    let n = u32::try_from(part.len()).map_err(|_| SigError::Malformed)?;
    out.extend_from_slice(&n.to_be_bytes());
    out.extend_from_slice(part);
    Ok(())
}

/// The canonical bytes a signature covers (see the module docs).
pub fn canonical(s: &Signed<'_>) -> Result<Vec<u8>, SigError> {
    if s.sid.len() > MAX_SID || s.member.len() > MAX_MEMBER || s.text.len() > MAX_TEXT {
        return Err(SigError::Malformed);
    }
    if (s.kind == SigType::Announce) != s.announce.is_some() {
        return Err(SigError::Malformed);
    }
    let mut out = Vec::with_capacity(CONTEXT.len() + 64 + s.text.len());
    out.extend_from_slice(CONTEXT);
    out.push(s.kind.byte());
    lp(&mut out, s.sid.as_bytes())?;
    lp(&mut out, s.member.as_bytes())?;
    out.extend_from_slice(&s.nonce);
    out.extend_from_slice(&s.ts_ms.to_be_bytes());
    lp(&mut out, s.text.as_bytes())?;
    if let Some((id, keys)) = &s.announce {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&keys.sign);
        out.extend_from_slice(&keys.seal);
    }
    Ok(out)
}

/// Signs `s` with `pair`.
pub fn sign(s: &Signed<'_>, pair: &KeyPair) -> Result<[u8; 64], SigError> {
    Ok(pair.sign.sign(&canonical(s)?).to_bytes())
}

/// Checks `sig` over `s` against `key` (strict).
pub fn verify(s: &Signed<'_>, sig: &[u8; 64], key: &PublicKeys) -> Result<(), SigError> {
    let vk = key.verifying_key().ok_or(SigError::BadSignature)?;
    vk.verify_strict(&canonical(s)?, &Signature::from_bytes(sig))
        .map_err(|_| SigError::BadSignature)
}

/// A fresh random nonce.
pub fn nonce() -> [u8; 16] {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

/// The `json` value of a signed message or announce: `{"clawlink": {...}}`.
pub fn to_json(s: &Signed<'_>, sig: &[u8; 64], key: &PublicKeys) -> Value {
    let mut o = json!({
        "v": VERSION,
        "type": s.kind.name(),
        "ts": s.ts_ms,
        "nonce": b64(&s.nonce),
        "key": key.key_id().to_string(),
        "sig": b64(sig),
    });
    if let Some((id, keys)) = &s.announce {
        o["id"] = json!(hex(&id.0));
        o["sign"] = json!(b64(&keys.sign));
        o["seal"] = json!(b64(&keys.seal));
    }
    json!({ JSON_KEY: o })
}

/// Signs `text` as `member` of session `sid` with `pair`; the `json` value to send beside it.
pub fn sign_message(
    sid: &str,
    member: &str,
    text: &str,
    pair: &KeyPair,
) -> Result<Value, SigError> {
    let s = Signed {
        kind: SigType::Message,
        sid,
        member,
        nonce: nonce(),
        ts_ms: crate::time::now_ms(),
        text,
        announce: None,
    };
    let sig = sign(&s, pair)?;
    Ok(to_json(&s, &sig, &pair.public()))
}

/// The text of an announce (what clients without clawlink show).
pub fn announce_text(member: &str, id: &PeerId, keys: &PublicKeys) -> String {
    format!(
        "[clawlink] member {member} signs its messages in this session with key {} (clawlink id {id}); clients that check signatures pin it",
        keys.key_id()
    )
}

/// An announce of `pair` for `member` of `sid`, as `(text, json)`.
pub fn sign_announce(
    sid: &str,
    member: &str,
    id: PeerId,
    pair: &KeyPair,
) -> Result<(String, Value), SigError> {
    let keys = pair.public();
    let text = announce_text(member, &id, &keys);
    let s = Signed {
        kind: SigType::Announce,
        sid,
        member,
        nonce: nonce(),
        ts_ms: crate::time::now_ms(),
        text: &text,
        announce: Some((id, keys)),
    };
    let sig = sign(&s, pair)?;
    let v = to_json(&s, &sig, &keys);
    Ok((text, v))
}

/// The signature part of a received message, parsed (not yet checked).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Message or announce.
    pub kind: SigType,
    /// The nonce.
    pub nonce: [u8; 16],
    /// The timestamp.
    pub ts_ms: u64,
    /// The signature.
    pub sig: [u8; 64],
    /// For an announce: the announced identity and keys.
    pub announce: Option<(PeerId, PublicKeys)>,
}

impl Parsed {
    /// The signed facts, for the message `text` written as `member` in `sid`.
    pub fn signed<'a>(&self, sid: &'a str, member: &'a str, text: &'a str) -> Signed<'a> {
        Signed {
            kind: self.kind,
            sid,
            member,
            nonce: self.nonce,
            ts_ms: self.ts_ms,
            text,
            announce: self.announce,
        }
    }
}

fn field<'a>(o: &'a Value, k: &str, max: usize) -> Result<&'a str, SigError> {
    o.get(k)
        .and_then(Value::as_str)
        .filter(|s| s.len() <= max)
        .ok_or(SigError::Malformed)
}

/// The signature part of a message's `json`: `None` when it has none (a plain message),
/// else the parsed part or why it cannot be read. Every field is length-checked before it is
/// decoded.
pub fn parse(json: Option<&Value>) -> Option<Result<Parsed, SigError>> {
    let o = json?.get(JSON_KEY)?;
    Some(parse_obj(o))
}

fn parse_obj(o: &Value) -> Result<Parsed, SigError> {
    if !o.is_object() {
        return Err(SigError::Malformed);
    }
    match o.get("v").and_then(Value::as_u64) {
        Some(VERSION) => {}
        Some(_) => return Err(SigError::UnknownVersion),
        None => return Err(SigError::Malformed),
    }
    let kind = match field(o, "type", 16)? {
        "sig" => SigType::Message,
        "announce" => SigType::Announce,
        _ => return Err(SigError::Malformed),
    };
    let ts_ms = o
        .get("ts")
        .and_then(Value::as_u64)
        .ok_or(SigError::Malformed)?;
    let nonce = unb64::<16>(field(o, "nonce", 32)?).ok_or(SigError::Malformed)?;
    let sig = unb64::<64>(field(o, "sig", 128)?).ok_or(SigError::Malformed)?;
    let announce = match kind {
        SigType::Message => None,
        SigType::Announce => {
            let id = unhex::<16>(field(o, "id", 32)?).ok_or(SigError::Malformed)?;
            let sign = unb64::<32>(field(o, "sign", 64)?).ok_or(SigError::Malformed)?;
            let seal = unb64::<32>(field(o, "seal", 64)?).ok_or(SigError::Malformed)?;
            Some((PeerId(id), PublicKeys { sign, seal }))
        }
    };
    Ok(Parsed {
        kind,
        nonce,
        ts_ms,
        sig,
        announce,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trust::keys::Identity;

    fn parsed(v: &Value) -> Parsed {
        match parse(Some(v)) {
            Some(Ok(p)) => p,
            other => panic!("not parsed: {other:?}"),
        }
    }

    #[test]
    fn canonical_bytes_are_fixed_and_unambiguous() -> Result<(), SigError> {
        let s = Signed {
            kind: SigType::Message,
            sid: "S1",
            member: "alice",
            nonce: [7; 16],
            ts_ms: 0x0102_0304_0506_0708,
            text: "hi",
            announce: None,
        };
        let mut want = b"clawlink-nexus-member-v1\0".to_vec();
        want.push(1);
        want.extend_from_slice(&[0, 0, 0, 2]);
        want.extend_from_slice(b"S1");
        want.extend_from_slice(&[0, 0, 0, 5]);
        want.extend_from_slice(b"alice");
        want.extend_from_slice(&[7; 16]);
        want.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        want.extend_from_slice(&[0, 0, 0, 2]);
        want.extend_from_slice(b"hi");
        assert_eq!(canonical(&s)?, want);
        // Moving a byte between session and member changes the bytes (length prefixes).
        let shifted = Signed {
            sid: "S1a",
            member: "lice",
            ..s.clone()
        };
        assert_ne!(canonical(&shifted)?, canonical(&s)?);
        // Caps and the announce/keys pairing are enforced.
        let long = "x".repeat(MAX_MEMBER + 1);
        let too_long = Signed {
            member: &long,
            ..s.clone()
        };
        assert_eq!(canonical(&too_long), Err(SigError::Malformed));
        let no_keys = Signed {
            kind: SigType::Announce,
            ..s
        };
        assert_eq!(canonical(&no_keys), Err(SigError::Malformed));
        Ok(())
    }

    #[test]
    fn a_signed_message_verifies_and_every_change_breaks_it() -> Result<(), SigError> {
        let me = Identity::generate();
        let keys = me.current.public();
        let v = sign_message("S1", "alice", "hello", &me.current)?;
        let p = parsed(&v);
        assert_eq!(p.kind, SigType::Message);
        assert_eq!(v[JSON_KEY]["key"], keys.key_id().to_string());
        verify(&p.signed("S1", "alice", "hello"), &p.sig, &keys)?;
        // Tampered text.
        let bad = verify(&p.signed("S1", "alice", "hello!"), &p.sig, &keys);
        assert_eq!(bad, Err(SigError::BadSignature));
        // Replayed into another session.
        let bad = verify(&p.signed("S2", "alice", "hello"), &p.sig, &keys);
        assert_eq!(bad, Err(SigError::BadSignature));
        // Re-attributed to another member.
        let bad = verify(&p.signed("S1", "bob", "hello"), &p.sig, &keys);
        assert_eq!(bad, Err(SigError::BadSignature));
        // Another key.
        let other = Identity::generate().current.public();
        let bad = verify(&p.signed("S1", "alice", "hello"), &p.sig, &other);
        assert_eq!(bad, Err(SigError::BadSignature));
        // A changed nonce or time.
        let mut q = p.clone();
        q.nonce[0] ^= 1;
        let bad = verify(&q.signed("S1", "alice", "hello"), &q.sig, &keys);
        assert_eq!(bad, Err(SigError::BadSignature));
        let mut q = p.clone();
        q.ts_ms += 1;
        let bad = verify(&q.signed("S1", "alice", "hello"), &q.sig, &keys);
        assert_eq!(bad, Err(SigError::BadSignature));
        // A flipped signature bit.
        let mut q = p;
        q.sig[5] ^= 0x10;
        let bad = verify(&q.signed("S1", "alice", "hello"), &q.sig, &keys);
        assert_eq!(bad, Err(SigError::BadSignature));
        Ok(())
    }

    #[test]
    fn an_announce_is_signed_by_the_key_it_announces() -> Result<(), SigError> {
        let me = Identity::generate();
        let (text, v) = sign_announce("S1", "alice", me.id, &me.current)?;
        let p = parsed(&v);
        let (id, keys) = p.announce.ok_or(SigError::Malformed)?;
        assert_eq!((id, keys), (me.id, me.current.public()));
        verify(&p.signed("S1", "alice", &text), &p.sig, &keys)?;
        assert_eq!(
            verify(&p.signed("S2", "alice", &text), &p.sig, &keys),
            Err(SigError::BadSignature)
        );
        // Someone else's keys swapped into the announce: the signature no longer holds.
        let mallory = Identity::generate().current.public();
        let mut q = p.clone();
        q.announce = Some((id, mallory));
        assert_eq!(
            verify(&q.signed("S1", "alice", &text), &q.sig, &mallory),
            Err(SigError::BadSignature)
        );
        // A message signature is not an announce and the other way round.
        let mut q = p;
        q.kind = SigType::Message;
        q.announce = None;
        assert_eq!(
            verify(&q.signed("S1", "alice", &text), &q.sig, &keys),
            Err(SigError::BadSignature)
        );
        Ok(())
    }

    #[test]
    fn parsing_rejects_bad_fields_and_ignores_plain_messages() {
        assert_eq!(parse(None), None);
        assert_eq!(parse(Some(&json!({"other": 1}))), None);
        let me = Identity::generate();
        let good = match sign_message("S", "a", "t", &me.current) {
            Ok(v) => v,
            Err(e) => panic!("{e:?}"),
        };
        let with = |k: &str, val: Value| {
            let mut v = good.clone();
            v[JSON_KEY][k] = val;
            parse(Some(&v))
        };
        assert_eq!(with("v", json!(2)), Some(Err(SigError::UnknownVersion)));
        assert_eq!(with("v", json!("1")), Some(Err(SigError::Malformed)));
        assert_eq!(with("type", json!("x")), Some(Err(SigError::Malformed)));
        assert_eq!(with("nonce", json!("AA")), Some(Err(SigError::Malformed)));
        assert_eq!(
            with("sig", json!("A".repeat(10_000))),
            Some(Err(SigError::Malformed))
        );
        assert_eq!(with("ts", json!(-1)), Some(Err(SigError::Malformed)));
        assert_eq!(
            parse(Some(&json!({ JSON_KEY: "x" }))),
            Some(Err(SigError::Malformed))
        );
        let mut ann = good.clone();
        ann[JSON_KEY]["type"] = json!("announce");
        assert_eq!(parse(Some(&ann)), Some(Err(SigError::Malformed)));
    }
}
