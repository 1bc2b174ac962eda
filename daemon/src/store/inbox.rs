//! The inbox: every inbound message, whatever its source, in arrival order.
//!
//! Trees:
//! - `inbox`: `id` (u64 big-endian, from sled's monotonic id generator) → JSON [`InboxMessage`];
//! - `inbox_dedup`: `source \0 source_id` → `id`, so a message redelivered by its source
//!   (a relay that did not see our ack, a Nexus poll repeated after a crash) is stored once;
//! - `agent_pending`: `id` → empty, messages not yet delivered into the local OpenClaw agent
//!   (only written when local delivery is configured).
//!
//! All three are written in one transaction. The caller acknowledges the source only after
//! [`Db::durable`] (see [`Inbox::insert_durable`]).

use super::{decode, encode, Db, Result, StoreError};
use clawlink::proto::{InboxCounts, InboxMessage, InboxQuery};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// A message about to be stored.
#[derive(Debug, Clone, Default)]
pub struct NewMessage {
    /// `webhook`, `relay`, `nexus`.
    pub source: String,
    /// The source's own id, for de-duplication.
    pub source_id: Option<String>,
    /// Sender.
    pub from: String,
    /// Text.
    pub message: String,
    /// Source-specific fields.
    pub meta: serde_json::Map<String, serde_json::Value>,
}

/// Outcome of an insert.
#[derive(Debug, Clone)]
pub enum Stored {
    /// Stored now.
    New(InboxMessage),
    /// Already stored earlier under this id.
    Duplicate(u64),
    /// Taken in without an inbox entry: a sealed envelope that was a receipt, a key update or
    /// an invite accept, or that was refused (counted by the trust layer). The source is
    /// acknowledged all the same: delivering it again would change nothing.
    Consumed,
}

impl Stored {
    /// The local id (0 for [`Stored::Consumed`]).
    pub fn id(&self) -> u64 {
        match self {
            Stored::New(m) => m.id,
            Stored::Duplicate(id) => *id,
            Stored::Consumed => 0,
        }
    }
}

/// Handle to the inbox trees. Cheap to clone.
#[derive(Clone)]
pub struct Inbox {
    db: Db,
    msgs: sled::Tree,
    dedup: sled::Tree,
    pending: sled::Tree,
    total: Arc<AtomicU64>,
    unread: Arc<AtomicU64>,
    track_agent: Arc<AtomicBool>,
}

const TREE: &str = "inbox";

impl Inbox {
    /// Opens the trees and counts what is there.
    pub fn open(db: &Db) -> Result<Inbox> {
        let msgs = db.tree("inbox")?;
        let (mut total, mut unread) = (0, 0);
        for item in msgs.iter() {
            let (_, v) = item?;
            let m: InboxMessage = decode(TREE, &v)?;
            total += 1;
            if !m.read {
                unread += 1;
            }
        }
        Ok(Inbox {
            db: db.clone(),
            msgs,
            dedup: db.tree("inbox_dedup")?,
            pending: db.tree("agent_pending")?,
            total: Arc::new(AtomicU64::new(total)),
            unread: Arc::new(AtomicU64::new(unread)),
            track_agent: Arc::new(AtomicBool::new(false)),
        })
    }

    /// From now on, new messages are also queued for the local agent.
    pub fn set_track_agent(&self, on: bool) {
        self.track_agent.store(on, Ordering::Relaxed);
    }

    /// Whether new messages are queued for the local agent.
    pub fn tracks_agent(&self) -> bool {
        self.track_agent.load(Ordering::Relaxed)
    }

    /// Whether message `id` still waits to be delivered into the local agent.
    pub fn is_agent_pending(&self, id: u64) -> Result<bool> {
        Ok(self.pending.contains_key(id.to_be_bytes())?)
    }

    /// Stores a message (not yet durable: await [`Db::durable`] before acknowledging).
    pub fn insert(&self, m: NewMessage) -> Result<Stored> {
        let dedup_key = m
            .source_id
            .as_ref()
            .map(|sid| format!("{}\0{}", m.source, sid).into_bytes());
        // Ids start at 1: friendlier in `clawlink inbox read ID`.
        let id = self.db.sled().generate_id()? + 1;
        // What this daemon wrote itself (a transport sets `meta.own`, e.g. our own Nexus messages
        // coming back in a page) is kept for the record, but is never unread and never goes to
        // the local agent.
        let own = m.meta.get("own").and_then(serde_json::Value::as_bool) == Some(true);
        let msg = InboxMessage {
            id,
            source: m.source,
            source_id: m.source_id,
            from: m.from,
            message: m.message,
            received_at: crate::time::now_rfc3339(),
            read: own,
            meta: m.meta,
        };
        let value = encode(&msg)?;
        let track = self.track_agent.load(Ordering::Relaxed) && !own;
        let res = (&self.msgs, &self.dedup, &self.pending).transaction(|(msgs, dedup, pending)| {
            if let Some(k) = &dedup_key {
                if let Some(existing) = dedup.get(k)? {
                    let prev = super::decode_u64(&existing).unwrap_or(0);
                    return Ok(Some(prev));
                }
                dedup.insert(k.as_slice(), &id.to_be_bytes())?;
            }
            msgs.insert(&id.to_be_bytes(), value.as_slice())?;
            if track {
                pending.insert(&id.to_be_bytes(), &[])?;
            }
            Ok::<_, ConflictableTransactionError<StoreError>>(None)
        });
        match res {
            Ok(Some(prev)) => Ok(Stored::Duplicate(prev)),
            Ok(None) => {
                self.total.fetch_add(1, Ordering::Relaxed);
                if !own {
                    self.unread.fetch_add(1, Ordering::Relaxed);
                }
                Ok(Stored::New(msg))
            }
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// Stores a message and waits until it is on disk.
    pub async fn insert_durable(&self, m: NewMessage) -> Result<Stored> {
        let stored = self.insert(m)?;
        self.db.durable().await?;
        Ok(stored)
    }

    /// Lists messages oldest first, filtered; `limit` keeps the newest ones (below `before`).
    pub fn list(&self, q: &InboxQuery) -> Result<Vec<InboxMessage>> {
        let mut out = Vec::new();
        let limit = q.limit.map(|l| l as usize).unwrap_or(usize::MAX);
        let end = q.before.unwrap_or(u64::MAX).to_be_bytes();
        for item in self.msgs.range(..end).rev() {
            if out.len() >= limit {
                break;
            }
            let (_, v) = item?;
            let m: InboxMessage = decode(TREE, &v)?;
            if q.unread && m.read {
                continue;
            }
            if q.from.as_ref().is_some_and(|f| f != &m.from)
                || q.source.as_ref().is_some_and(|s| s != &m.source)
            {
                continue;
            }
            out.push(m);
        }
        out.reverse();
        Ok(out)
    }

    /// One message.
    pub fn get(&self, id: u64) -> Result<Option<InboxMessage>> {
        self.msgs
            .get(id.to_be_bytes())?
            .map(|v| decode(TREE, &v))
            .transpose()
    }

    /// Marks one message read; returns it, or `None` if absent.
    pub fn mark_read(&self, id: u64) -> Result<Option<InboxMessage>> {
        let Some(mut m) = self.get(id)? else {
            return Ok(None);
        };
        if !m.read {
            m.read = true;
            self.msgs.insert(id.to_be_bytes(), encode(&m)?)?;
            self.unread.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(Some(m))
    }

    /// Marks every message read; returns how many changed.
    pub fn mark_all_read(&self) -> Result<u64> {
        let mut n = 0;
        for item in self.msgs.iter() {
            let (k, v) = item?;
            let mut m: InboxMessage = decode(TREE, &v)?;
            if !m.read {
                m.read = true;
                self.msgs.insert(k, encode(&m)?)?;
                n += 1;
            }
        }
        self.unread.fetch_sub(
            n.min(self.unread.load(Ordering::Relaxed)),
            Ordering::Relaxed,
        );
        Ok(n)
    }

    /// Deletes one message (its dedup entry stays, so a redelivery is not stored again).
    pub fn remove(&self, id: u64) -> Result<bool> {
        let Some(v) = self.msgs.remove(id.to_be_bytes())? else {
            return Ok(false);
        };
        self.pending.remove(id.to_be_bytes())?;
        let m: InboxMessage = decode(TREE, &v)?;
        self.total.fetch_sub(1, Ordering::Relaxed);
        if !m.read {
            self.unread.fetch_sub(1, Ordering::Relaxed);
        }
        Ok(true)
    }

    /// Totals.
    pub fn counts(&self) -> InboxCounts {
        InboxCounts {
            total: self.total.load(Ordering::Relaxed),
            unread: self.unread.load(Ordering::Relaxed),
        }
    }

    /// Messages still to be delivered into the local agent, oldest first.
    pub fn agent_pending(&self, max: usize) -> Result<Vec<InboxMessage>> {
        let mut out = Vec::new();
        for item in self.pending.iter().take(max) {
            let (k, _) = item?;
            match self.msgs.get(&k)? {
                Some(v) => out.push(decode(TREE, &v)?),
                None => {
                    self.pending.remove(&k)?;
                }
            }
        }
        Ok(out)
    }

    /// Records that `id` reached the local agent.
    pub fn agent_delivered(&self, id: u64) -> Result<()> {
        self.pending.remove(id.to_be_bytes())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn duplicates_are_stored_once_and_counts_follow() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        // A fresh subdirectory: the temp dir itself may be 0755, which Db::open rightly refuses.
        let dir = tmp.path().join("data");
        let db = Db::open(&dir)?;
        let inbox = Inbox::open(&db)?;
        let m = NewMessage {
            source: "relay".into(),
            source_id: Some("r1".into()),
            from: "a".into(),
            message: "hi".into(),
            ..Default::default()
        };
        let first = inbox.insert_durable(m.clone()).await?;
        assert!(matches!(first, Stored::New(_)));
        assert!(
            matches!(inbox.insert_durable(m).await?, Stored::Duplicate(id) if id == first.id())
        );
        assert_eq!(inbox.counts().total, 1);
        inbox.mark_read(first.id())?;
        assert_eq!(inbox.counts().unread, 0);
        assert!(inbox.remove(first.id())?);
        assert_eq!(inbox.counts().total, 0);
        Ok(())
    }
}
