//! Who sent a message, as the policy names it: `KIND:ID`.
//!
//! | kind | id | verified when |
//! |---|---|---|
//! | `friend` | the friend's name | its sealed envelope verified (the trust layer says so) |
//! | `relay` | the relay user id | never by itself (a relay vouches for nothing) |
//! | `nexus` | `SESSION/member` | its member signature verified against the key pinned for that member in that session (`meta.signed`, never with `meta.forged`); the server's `verified` flag proves nothing |
//! | `a2a` | the peer name | its bearer token was checked by the transport |
//! | `webhook` | `local` | never: anything on this machine can POST |
//!
//! The key is what `clawlink policy set` takes and what the audit log records. Ids are
//! sanitised ([`super::sanitize::name`]) before they become a key, so a key is one printable
//! line whatever the sender sent.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The sender of one inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// `friend`, `relay`, `nexus`, `a2a`, `webhook`.
    pub kind: String,
    /// The id within the kind.
    pub id: String,
    /// The name the sender gave itself (shown, never used as a key).
    pub name: String,
    /// Whether the transport proved who this is (a verified friend).
    pub verified: bool,
    /// A friend's peer id (hex of its identity key's id): its agent session is keyed by it as
    /// well as by its name, so a different friend given a removed friend's name never
    /// continues that friend's session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

/// The sender of a Nexus message: `SESSION/member`, verified only when its member signature
/// checked against the key pinned for that member in that session (see
/// `crate::nexus::members`). A forged message's `from` is already `unverified:MEMBER`, so it
/// never takes the member's key. Verified does not raise the default level: see
/// [`super::decide::configured`].
pub fn nexus(m: &clawlink::proto::InboxMessage) -> Sender {
    use serde_json::Value;
    let sid = m.meta.get("session").and_then(Value::as_str).unwrap_or("?");
    let signed = m.meta.get("signed") == Some(&Value::Bool(true))
        && m.meta.get("forged") != Some(&Value::Bool(true));
    Sender::new("nexus", &format!("{sid}/{}", m.from), signed).named(&m.from)
}

/// Longest sender key kept.
pub const MAX_KEY: usize = 200;

impl Sender {
    /// A sender from an inbox message's `source` and `from` (sanitised here).
    pub fn new(kind: &str, id: &str, verified: bool) -> Sender {
        let id = super::sanitize::name(id, MAX_KEY);
        Sender {
            kind: super::sanitize::name(kind, 32).to_ascii_lowercase(),
            name: id.clone(),
            id,
            verified,
            peer: None,
        }
    }

    /// The same sender showing `name` (sanitised).
    pub fn named(mut self, name: &str) -> Sender {
        self.name = super::sanitize::name(name, MAX_KEY);
        self
    }

    /// The policy key, `kind:id`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind, self.id)
    }
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.id)
    }
}

/// Checks a key typed by the owner (`clawlink policy set KEY LEVEL`): `kind:id`, or `kind:*`
/// for a whole kind. Returns the normalised key.
pub fn parse_key(key: &str) -> Result<String, String> {
    let Some((kind, id)) = key.split_once(':') else {
        return Err(format!(
            "sender {key:?} is not KIND:ID (e.g. relay:alice, nexus:SID/bob, friend:carol, webhook:local, relay:*)"
        ));
    };
    let kind = kind.trim().to_ascii_lowercase();
    if !["friend", "relay", "nexus", "a2a", "webhook", "gateway"].contains(&kind.as_str()) {
        return Err(format!(
            "unknown sender kind {kind:?}; use friend, relay, nexus, a2a, webhook or gateway"
        ));
    }
    let id = super::sanitize::name(id, MAX_KEY);
    if id.is_empty() {
        return Err(format!("sender {key:?} has an empty id"));
    }
    Ok(format!("{kind}:{id}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nexus_msg(from: &str, meta: serde_json::Value) -> clawlink::proto::InboxMessage {
        clawlink::proto::InboxMessage {
            id: 1,
            source: "nexus".into(),
            source_id: None,
            from: from.into(),
            message: "t".into(),
            received_at: String::new(),
            read: false,
            meta: meta.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn a_nexus_member_is_verified_only_by_its_member_signature() {
        use serde_json::json;
        let server_only = nexus(&nexus_msg("bob", json!({"session":"S","verified":true})));
        assert_eq!(
            (server_only.key(), server_only.verified),
            ("nexus:S/bob".into(), false)
        );
        let signed = nexus(&nexus_msg(
            "bob",
            json!({"session":"S","verified":true,"signed":true,"member_key":"k"}),
        ));
        assert_eq!(
            (signed.key(), signed.verified),
            ("nexus:S/bob".into(), true)
        );
        let forged = nexus(&nexus_msg(
            "unverified:bob",
            json!({"session":"S","signed":true,"forged":true}),
        ));
        assert_eq!(
            (forged.key(), forged.verified),
            ("nexus:S/unverified:bob".into(), false)
        );
    }

    #[test]
    fn keys_are_one_clean_line() {
        let s = Sender::new("Relay", "ali\nce\u{202e}", false);
        assert_eq!(s.key(), "relay:ali ce");
        assert_eq!(parse_key("RELAY:bob").as_deref(), Ok("relay:bob"));
        assert_eq!(parse_key("relay:*").as_deref(), Ok("relay:*"));
        assert!(parse_key("bob").is_err());
        assert!(parse_key("mail:bob").is_err());
        assert!(parse_key("relay:\n").is_err());
    }
}
