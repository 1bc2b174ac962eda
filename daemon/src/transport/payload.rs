//! [`Payload`]: what the outbox stores for each transport, one typed enum.
//!
//! It is serialized once, as part of the outbox record (see [`crate::store::outbox`] for the
//! record format), externally tagged by transport kind: `{"gateway": {...}}`,
//! `{"relay": {...}}`. The variant names are the transports' `kind()`s, which is also what
//! lets records of the first, untyped format be read back. Payloads may hold secrets (a
//! gateway token), so no `Debug`.

use clawlink::Secret;
use serde::{Deserialize, Serialize};

/// The transport-owned part of an outbox record.
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Payload {
    /// An OpenClaw gateway message (see `crate::gateway::transport`).
    Gateway(GatewaySend),
    /// A relay message (see `crate::relay::transport`).
    Relay(RelaySend),
    /// An A2A message or push notification (see `crate::a2a::transport`).
    A2a(A2aSend),
    /// A sealed envelope to a friend, over any of its addresses (see `crate::friend::transport`).
    Friend(FriendSend),
}

impl Payload {
    /// The transport it belongs to.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Gateway(_) => "gateway",
            Payload::Relay(_) => "relay",
            Payload::A2a(_) => "a2a",
            Payload::Friend(_) => "friend",
        }
    }
}

/// A message into a peer's OpenClaw agent session.
#[derive(Clone, Serialize, Deserialize)]
pub struct GatewaySend {
    /// `ws://HOST:PORT` or `wss://HOST`.
    pub url: String,
    /// The gateway token (empty: the device token the gateway issued, if any).
    #[serde(default)]
    pub token: Secret,
    /// The text.
    pub message: String,
    /// Sender name shown to the peer (default: this machine's host name).
    #[serde(default)]
    pub from: Option<String>,
    /// `system-event` (default), `wake`, `chat.send` or `agent`.
    #[serde(default)]
    pub method: Option<String>,
    /// Session key (default: the peer's main session).
    #[serde(default)]
    pub session: Option<String>,
}

/// A message to an id on a relay.
#[derive(Clone, Serialize, Deserialize)]
pub struct RelaySend {
    /// The relay's base URL, `http(s)://HOST[:PORT]`.
    pub relay: String,
    /// The recipient's relay id.
    pub to: String,
    /// The text.
    pub message: String,
    /// Which of our identities on that relay sends it (default: the latest registered).
    #[serde(default)]
    pub from: Option<String>,
}

/// A sealed envelope to a friend. The record's id is the envelope's message id, so the
/// friend's receipt names the record.
#[derive(Clone, Serialize, Deserialize)]
pub struct FriendSend {
    /// The friend's name; its addresses are looked up at each attempt (they may change).
    pub friend: String,
    /// `message`, `receipt`, `key_update` or `invite_accept`.
    pub kind: String,
    /// The `cle1:` text.
    pub envelope: String,
}

/// What an `a2a` outbox record carries (see `crate::a2a::transport`; it may hold secrets: no
/// `Debug`).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum A2aSend {
    /// A message to a peer.
    Message {
        /// The peer's JSON-RPC endpoint (`http(s)://…`).
        endpoint: String,
        /// Its bearer token (may be empty).
        #[serde(default)]
        token: Secret,
        /// The text.
        message: String,
    },
    /// A task's final state for a caller's webhook.
    Push {
        /// The webhook.
        url: String,
        /// Echoed in `X-A2A-Notification-Token`.
        #[serde(default)]
        token: Option<Secret>,
        /// The `Authorization` header value.
        #[serde(default)]
        authorization: Option<Secret>,
        /// The JSON body, `{"task": ...}`.
        body: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::outbox::OutboxRecord;
    use serde_json::json;

    fn record(body: serde_json::Value) -> OutboxRecord<Payload> {
        let mut r = json!({"seq": 1, "id": "a", "to": "bob", "target": "t", "state": "queued",
            "attempts": 0, "created_ms": 1, "deadline_ms": 2});
        if let (Some(r), Some(b)) = (r.as_object_mut(), body.as_object()) {
            r.extend(b.clone());
        }
        serde_json::from_value(r).expect("record")
    }

    #[test]
    fn records_of_the_first_format_are_read() {
        let r = record(json!({"transport": "relay",
            "payload": {"relay": "http://r:1", "to": "bob", "message": "hi", "from": null}}));
        let Payload::Relay(p) = &r.payload else {
            panic!("not a relay payload")
        };
        assert_eq!((p.relay.as_str(), p.to.as_str()), ("http://r:1", "bob"));
        let g = record(json!({"transport": "gateway",
            "payload": {"url": "ws://h:1", "token": "T", "message": "hi", "method": "wake"}}));
        assert_eq!(g.payload.kind(), "gateway");
    }

    #[test]
    fn typed_records_round_trip_once() {
        let r = record(json!({"transport": "relay",
            "send": {"relay": {"relay": "http://r:1", "to": "bob", "message": "hi"}}}));
        let text = serde_json::to_string(&r).expect("encode");
        assert!(text.contains(r#""send":{"relay":{"#), "{text}");
        assert!(!text.contains(r#""payload""#), "{text}");
        let back: OutboxRecord<Payload> = serde_json::from_str(&text).expect("decode");
        assert_eq!(back.payload.kind(), "relay");
    }
}
