//! A page of Nexus messages into the inbox, and the cursor and time parsing used on it.
//!
//! The page is the shared [`PollAnswer`] of [`super::wire`], read leniently: a server that
//! writes cursors as numbers or leaves fields out still gets its messages stored.
//! Each message becomes an inbox entry with source `nexus`, `source_id` `SID/CURSOR` (or
//! `SID/ID`), so a page fetched twice is stored once, and `meta: {session, server, agent_id
//! (ours), verified, cursor, own, system, id, json, signed, member_key?, announce?, forged?}`;
//! `own` is true for what we wrote ourselves. Before it is stored, each message is checked
//! against the member keys pinned in its session ([`super::members`], in page order, so an
//! announce pins before the messages after it are checked): a forged one gets `from:
//! "unverified:MEMBER"`. The whole page is one group commit.

use super::members::Outcome;
use super::wire::{Cursor, Message, PollAnswer};
use super::Nexus;
use crate::store::inbox::{NewMessage, Stored};
use crate::store::nexus_client::JoinedSession;
use serde_json::{json, Value};

/// A cursor as text (an empty one is none).
pub fn cursor_of(c: Option<&Cursor>) -> Option<String> {
    c.map(Cursor::text).filter(|c| !c.is_empty())
}

/// Milliseconds since the epoch of an RFC 3339 time.
pub fn parse_ms(s: &str) -> Option<u64> {
    let t = humantime::parse_rfc3339_weak(s.trim()).ok()?;
    Some(t.duration_since(std::time::UNIX_EPOCH).ok()?.as_millis() as u64)
}

/// Whether `m` is a member key announce (valid or not).
fn is_announce(m: &Message) -> bool {
    m.json
        .as_ref()
        .and_then(|j| j.get(crate::trust::member_sig::JSON_KEY))
        .and_then(|c| c.get("type"))
        .and_then(Value::as_str)
        == Some("announce")
}

fn to_new_message(s: &JoinedSession, m: &Message) -> NewMessage {
    let body = match (&m.text, &m.json) {
        (Some(t), _) => t.clone(),
        (None, Some(j)) if !j.is_null() => j.to_string(),
        _ => String::new(),
    };
    let from = m.agent_id.as_str();
    let cursor = cursor_of(m.cursor.as_ref());
    let id = m.id.as_deref();
    let key = cursor.clone().or(id.map(str::to_string));
    let mut meta = serde_json::Map::new();
    meta.insert("session".into(), json!(s.sid));
    meta.insert("server".into(), json!(s.server));
    meta.insert("agent_id".into(), json!(s.agent_id));
    meta.insert("verified".into(), json!(m.verified));
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
    if let Some(j) = m.json.as_ref().filter(|j| !j.is_null()) {
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
        messages: &[Message],
    ) -> crate::store::Result<usize> {
        let mut batch = Vec::with_capacity(messages.len());
        let mut notes = Vec::with_capacity(messages.len());
        for m in messages {
            let mut nm = to_new_message(s, m);
            let msg_key = nm.source_id.clone().unwrap_or_default();
            let outcome = self.check_member(s, m, &nm.from, &msg_key)?;
            let pinned = match outcome {
                Outcome::Signed | Outcome::Announce => self.pinned_key_id(&s.sid, &nm.from),
                _ => None,
            };
            if is_announce(m) {
                // Protocol traffic: kept for the record, stored read, never given to the agent.
                nm.meta.insert("announce".into(), json!(true));
            }
            let claimed = nm.from.clone();
            Nexus::mark(&mut nm.meta, &mut nm.from, &outcome, pinned);
            batch.push(nm);
            notes.push((claimed, outcome));
        }
        let stored = self.ingest.store_all(batch).await?;
        let mut new = 0;
        for (r, (claimed, outcome)) in stored.iter().zip(&notes) {
            if matches!(r, Stored::New(_)) {
                new += 1;
                self.count(&s.sid, claimed, outcome);
            }
        }
        Ok(new)
    }

    /// Stores a page and advances the poller's cursor; returns how many messages it held.
    pub(super) async fn on_page(
        &self,
        s: &JoinedSession,
        page: &PollAnswer,
    ) -> crate::store::Result<usize> {
        let msgs = &page.messages;
        self.ingest_page(s, msgs).await?;
        if let Some(c) = cursor_of(page.next_cursor.as_ref()) {
            self.store.advance(&s.sid, &c, false)?;
        }
        if let Some(exp) = msgs.last().and_then(|m| m.expires_at.as_deref()) {
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
        let read = |v: Value| -> Option<String> {
            let page: PollAnswer = serde_json::from_value(json!({ "nextCursor": v })).ok()?;
            cursor_of(page.next_cursor.as_ref())
        };
        assert_eq!(read(json!("12")), Some("12".into()));
        assert_eq!(read(json!(12)), Some("12".into()));
        assert_eq!(read(json!("")), None);
        assert_eq!(read(json!(null)), None);
        assert_eq!(read(json!(true)), None);
    }
}
