//! Relay messages into the inbox.
//!
//! Each pushed or polled [`Message`] becomes an inbox entry with source `relay`, `source_id`
//! `RELAY/N` (N its relay id), so a redelivery of the same relay id is stored once, and
//! `meta: {relay, to (our id), fromName, timestamp}` (`null` where the relay sent none).
//! A message without an id (a seed relay) is stored without a `source_id`.

use super::wire::{Message, MessageId};
use crate::store::inbox::NewMessage;
use serde_json::json;

/// A pushed or polled message as an inbox entry, with its relay id: `id` is the push frame's
/// id, else the message's own.
pub fn to_new_message(
    relay: &str,
    our_id: &str,
    id: Option<&MessageId>,
    data: Message<'_>,
) -> (Option<String>, NewMessage) {
    let rid = id.or(data.id.as_ref()).map(MessageId::text);
    let mut meta = serde_json::Map::new();
    meta.insert("relay".into(), json!(relay));
    meta.insert("to".into(), json!(our_id));
    meta.insert("fromName".into(), json!(data.from_name));
    meta.insert("timestamp".into(), json!(data.timestamp));
    let msg = NewMessage {
        source: "relay".into(),
        source_id: rid.as_ref().map(|id| format!("{relay}/{id}")),
        from: data
            .from
            .map_or_else(|| "unknown".to_string(), |f| f.into_owned()),
        message: data.message.into_owned(),
        meta,
    };
    (rid, msg)
}
