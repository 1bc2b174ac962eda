//! A page of Nexus messages into the inbox, and the cursor and time parsing used on it.
//!
//! Each message becomes an inbox entry with source `nexus`, `source_id` `SID/CURSOR` (or
//! `SID/ID`), so a page fetched twice is stored once, and `meta: {session, server, agent_id
//! (ours), verified, cursor, own, system, id, json}`; `own` is true for what we wrote ourselves. The whole page is one group commit.

use super::Nexus;
use crate::store::inbox::{NewMessage, Stored};
use crate::store::nexus_client::JoinedSession;
use serde_json::{json, Value};

/// A cursor as servers send it: a decimal string (or a bare number).
pub fn cursor_of(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `messages` array of a page (empty when absent).
pub fn messages(body: &Value) -> &[Value] {
    body.get("messages")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn parse_ms(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(s.trim()).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
}

fn to_new_message(s: &JoinedSession, m: &Value) -> NewMessage {
    let text = m.get("text").and_then(Value::as_str);
    let body = match (text, m.get("json")) {
        (Some(t), _) => t.to_string(),
        (None, Some(j)) if !j.is_null() => j.to_string(),
        _ => String::new(),
    };
    let from = m.get("agentId").and_then(Value::as_str).unwrap_or("");
    let cursor = cursor_of(m.get("cursor"));
    let id = m.get("id").and_then(Value::as_str);
    let key = cursor.clone().or(id.map(str::to_string));
    let mut meta = serde_json::Map::new();
    meta.insert("session".into(), json!(s.sid));
    meta.insert("server".into(), json!(s.server));
    meta.insert("agent_id".into(), json!(s.agent_id));
    meta.insert(
        "verified".into(),
        json!(m.get("verified") == Some(&json!(true))),
    );
    meta.insert("cursor".into(), json!(cursor));
    // Our own messages (and the greeting of a session we created) come back in every page:
    // `own` keeps them out of the unread count and away from the local agent (see
    // [`crate::store::inbox`]).
    let greeting = from == "system" && cursor.as_deref() == Some("0");
    meta.insert(
        "own".into(),
        json!(from == s.agent_id || (s.creator && greeting)),
    );
    meta.insert("system".into(), json!(from == "system"));
    if let Some(id) = id {
        meta.insert("id".into(), json!(id));
    }
    if let Some(j) = m.get("json").filter(|j| !j.is_null()) {
        meta.insert("json".into(), j.clone());
    }
    NewMessage {
        source: "nexus".into(),
        source_id: key.map(|k| format!("{}/{k}", s.sid)),
        from: from.to_string(),
        message: body,
        meta,
    }
}

impl Nexus {
    /// Stores one page of messages in the inbox (durably, deduplicated). Returns how many were new.
    pub async fn ingest_page(
        &self,
        s: &JoinedSession,
        messages: &[Value],
    ) -> crate::store::Result<usize> {
        let stored = self
            .ingest
            .store_all(messages.iter().map(|m| to_new_message(s, m)))
            .await?;
        Ok(stored
            .iter()
            .filter(|r| matches!(r, Stored::New(_)))
            .count())
    }

    /// Stores a page and advances the poller's cursor; returns how many messages it held.
    pub(super) async fn on_page(
        &self,
        s: &JoinedSession,
        body: &Value,
    ) -> crate::store::Result<usize> {
        let msgs = messages(body);
        self.ingest_page(s, msgs).await?;
        if let Some(c) = cursor_of(body.get("nextCursor")) {
            self.store.advance(&s.sid, &c, false)?;
        }
        if let Some(exp) = msgs
            .last()
            .and_then(|m| m.get("expiresAt"))
            .and_then(Value::as_str)
        {
            let newer = s
                .expires_at
                .as_deref()
                .and_then(parse_ms)
                .is_none_or(|old| parse_ms(exp).is_some_and(|n| n > old));
            if newer {
                let exp = exp.to_string();
                self.store
                    .update(&s.sid, |r| r.expires_at = Some(exp.clone()))?;
            }
        }
        Ok(msgs.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_strings_or_numbers() {
        assert_eq!(cursor_of(Some(&json!("12"))), Some("12".into()));
        assert_eq!(cursor_of(Some(&json!(12))), Some("12".into()));
        assert_eq!(cursor_of(Some(&json!(""))), None);
        assert_eq!(cursor_of(Some(&json!(null))), None);
        assert_eq!(cursor_of(None), None);
    }
}
