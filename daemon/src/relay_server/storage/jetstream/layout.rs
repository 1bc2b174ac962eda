//! Names in NATS: the stream, the KV buckets, subjects and keys of one relay deployment.
//!
//! ```text
//! stream  {P}_queue      subjects {P}.q.*         one subject per recipient: {P}.q.{ID'}
//! kv      {P}_users      key {ID'}                value JSON AccountRecord {name, secret_hash, created_ms}
//! kv      {P}_sent       key {FROM'}.{KEY64}      value SEQ (u64 BE) ++ arrival ms (u64 BE), 24 h TTL
//! kv      {P}_presence   key {ID'}                value: the node holding a WebSocket of ID, 90 s TTL
//! core    {P}.n.{ID'}    payload: SEQ as decimal  "a message for ID is queued" (not stored)
//! header  Nats-Msg-Id: {FROM}/{KEY}                JetStream's dedup of retried keyed sends
//! ```
//!
//! `P` is the deployment prefix (`--nats-prefix`, default `clawlink`), so several relays (or
//! test runs) can share one NATS cluster. Ids are `[A-Za-z0-9_.-]`, but `.` separates subject
//! tokens, so `ID'` is the id with `.` written as `=`, a character ids never contain: the
//! mapping is one-to-one and every `ID'` is a single subject token and a valid KV key.
//! Idempotency keys are any visible ASCII, so they enter KV keys base64url-encoded.

use base64::Engine;

/// Names of one deployment.
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: String,
}

/// Whether `p` can prefix stream, bucket and subject names: 1-32 of `[A-Za-z0-9_-]`.
pub fn valid_prefix(p: &str) -> bool {
    (1..=32).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// An id as one subject token / KV key.
pub fn token(id: &str) -> String {
    id.replace('.', "=")
}

/// The id a [`token`] came from.
pub fn untoken(t: &str) -> String {
    t.replace('=', ".")
}

impl Layout {
    /// The layout under `prefix` (checked by [`valid_prefix`] at the command line).
    pub fn new(prefix: &str) -> Layout {
        Layout {
            prefix: prefix.to_string(),
        }
    }

    /// The queue stream's name.
    pub fn stream(&self) -> String {
        format!("{}_queue", self.prefix)
    }

    /// The queue stream's subject filter.
    pub fn queue_filter(&self) -> String {
        format!("{}.q.*", self.prefix)
    }

    /// The subject of `id`'s queue.
    pub fn queue_subject(&self, id: &str) -> String {
        format!("{}.q.{}", self.prefix, token(id))
    }

    /// The subject of the queue stream's direct get API (answered by any replica).
    pub fn direct_get(&self) -> String {
        format!("$JS.API.DIRECT.GET.{}", self.stream())
    }

    /// The core-NATS subject on which `id`'s new messages are announced.
    pub fn notify_subject(&self, id: &str) -> String {
        format!("{}.n.{}", self.prefix, token(id))
    }

    /// A KV bucket's name (`users`, `sent`, `presence`).
    pub fn bucket(&self, what: &str) -> String {
        format!("{}_{what}", self.prefix)
    }

    /// The `{P}_sent` key of `from`'s idempotency `key`.
    pub fn sent_key(&self, from: &str, key: &str) -> String {
        format!(
            "{}.{}",
            token(from),
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
        )
    }

    /// The `Nats-Msg-Id` of `from`'s keyed send (ids have no `/`, so it is unambiguous).
    pub fn msg_id(&self, from: &str, key: &str) -> String {
        format!("{from}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_map_to_single_tokens_and_back() {
        let l = Layout::new("t1");
        assert_eq!(l.queue_subject("a.b-c_9"), "t1.q.a=b-c_9");
        assert_eq!(untoken(&token("a..b.")), "a..b.");
        assert_ne!(token("a.b"), token("a_b"));
        assert_eq!(l.sent_key("x.y", "k/1 "), "x=y.ay8xIA");
        assert!(valid_prefix("clawlink") && valid_prefix("t-1_x"));
        assert!(!valid_prefix("") && !valid_prefix("a.b") && !valid_prefix("a*"));
    }
}
