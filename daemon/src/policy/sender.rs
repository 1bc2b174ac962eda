//! Who sent a message, as the policy names it: `KIND:ID`.
//!
//! | kind | id | verified when |
//! |---|---|---|
//! | `friend` | the friend's name | its sealed envelope verified (the trust layer says so) |
//! | `relay` | the relay user id | never by itself (a relay vouches for nothing) |
//! | `nexus` | `SESSION/member` | never by itself (Nexus members are unsigned) |
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
