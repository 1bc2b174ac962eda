//! The inbox: every inbound message, whatever its source, in arrival order.
//!
//! Trees:
//! - `inbox`: `id` (u64 big-endian, from sled's monotonic id generator) → JSON [`InboxMessage`];
//! - `inbox_dedup`: `source \0 source_id` → `id`, so a message redelivered by its source
//!   (a relay that did not see our ack, a Nexus poll repeated after a crash) is stored once;
//! - `agent_pending`: `id` → empty, messages not yet delivered into the local OpenClaw agent
//!   (only written when local delivery is configured);
//! - `inbox_meta`: the totals and the highest id ([`super::inbox_counts`]), so that opening
//!   the inbox reads one key instead of every message.
//!
//! All four are written in one transaction, under a lock that serialises the inbox's writers
//! (so the totals in memory are the ones on disk). The caller acknowledges the source only
//! after [`Db::durable`] (see [`Inbox::insert_durable`]).
//!
//! ## When the inbox is full
//!
//! An insert that would go over a cap ([`Caps`]) fails with [`StoreError::InboxFull`] and
//! stores nothing, so its source is not acknowledged: the webhook answers 507, a relay keeps
//! the message queued, a Nexus cursor does not advance. Deleting messages (or raising the caps
//! on SIGHUP) wakes [`Inbox::room`], on which a refused source waits to retry at once.

use super::inbox_counts::{self, Caps, Counts};
use super::{decode, encode, Db, Result, StoreError};
use clawlink::proto::{InboxCounts, InboxMessage, InboxQuery};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

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
    meta: sled::Tree,
    /// The totals as on disk. Every write of `msgs` happens with this lock held, in one
    /// transaction with the record, so memory and disk never disagree.
    counts: Arc<Mutex<Counts>>,
    caps: Arc<Mutex<Caps>>,
    /// An insert was refused since the last change that made room.
    refused: Arc<AtomicBool>,
    /// Woken when a full inbox gets room again.
    room: Arc<Notify>,
    track_agent: Arc<AtomicBool>,
}

pub(super) const TREE: &str = "inbox";

type TxError = ConflictableTransactionError<StoreError>;

fn abort(e: StoreError) -> TxError {
    ConflictableTransactionError::Abort(e)
}

fn unwrap_tx<T>(r: std::result::Result<T, TransactionError<StoreError>>) -> Result<T> {
    r.map_err(|e| match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => e.into(),
    })
}

impl Inbox {
    /// Opens the trees and reads the totals (one key lookup; see [`super::inbox_counts`]).
    pub fn open(db: &Db) -> Result<Inbox> {
        let msgs = db.tree("inbox")?;
        let meta = db.tree("inbox_meta")?;
        let counts = inbox_counts::load_or_rebuild(&meta, &msgs)?;
        Ok(Inbox {
            db: db.clone(),
            msgs,
            dedup: db.tree("inbox_dedup")?,
            pending: db.tree("agent_pending")?,
            meta,
            counts: Arc::new(Mutex::new(counts)),
            caps: Arc::new(Mutex::new(Caps::default())),
            refused: Arc::new(AtomicBool::new(false)),
            room: Arc::new(Notify::new()),
            track_agent: Arc::new(AtomicBool::new(false)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn caps(&self) -> Caps {
        *self.caps.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the caps (at start and on reload); raising them wakes the sources that wait.
    pub fn set_caps(&self, caps: Caps) {
        *self.caps.lock().unwrap_or_else(|p| p.into_inner()) = caps;
        self.made_room();
    }

    /// After a change that may have made room: wake the waiting sources if it did.
    fn made_room(&self) {
        let c = *self.lock();
        if !self.caps().reached(&c) && self.refused.swap(false, Ordering::Relaxed) {
            tracing::info!(total = c.total, bytes = c.bytes, "the inbox has room again");
            self.room.notify_waiters();
        }
    }

    /// Resolves when an inbox that refused a message has room again (a message was deleted or
    /// the caps were raised). A source that was refused waits on it to retry at once; the
    /// future counts from its creation, so one made before the wait misses nothing.
    pub fn room(&self) -> tokio::sync::futures::Notified<'_> {
        self.room.notified()
    }

    /// Whether the inbox refuses new messages now.
    pub fn is_full(&self) -> bool {
        self.refused.load(Ordering::Relaxed) || self.caps().reached(&self.lock())
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

    /// Stores a message (not yet durable: await [`Db::durable`] before acknowledging), or
    /// refuses it with [`StoreError::InboxFull`] when it does not fit under the caps.
    pub fn insert(&self, m: NewMessage) -> Result<Stored> {
        self.insert_with(m, true)
    }

    /// [`Inbox::insert`], or with `capped` false, stored even over the caps: for a message
    /// whose source has already forgotten it (a relay without acknowledgements), where a
    /// refusal would lose it.
    pub fn insert_with(&self, m: NewMessage, capped: bool) -> Result<Stored> {
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
        let len = value.len() as u64;
        let track = self.track_agent.load(Ordering::Relaxed) && !own;
        let caps = self.caps();
        let mut counts = self.lock();
        let now = *counts;
        let trees = (&self.msgs, &self.dedup, &self.pending, &self.meta);
        let res = trees.transaction(|(msgs, dedup, pending, meta)| {
            if let Some(k) = &dedup_key {
                if let Some(existing) = dedup.get(k)? {
                    let prev = super::decode_u64(&existing).unwrap_or(0);
                    return Ok(Some(prev));
                }
            }
            // After the duplicate check: a redelivery is recognised even when full.
            if let Some(full) = caps.refusal(&now, len).filter(|_| capped) {
                return Err(abort(full));
            }
            if let Some(k) = &dedup_key {
                dedup.insert(k.as_slice(), &id.to_be_bytes())?;
            }
            msgs.insert(&id.to_be_bytes(), value.as_slice())?;
            if track {
                pending.insert(&id.to_be_bytes(), &[])?;
            }
            let next = now.added(id, len, own);
            meta.insert(inbox_counts::KEY, encode(&next).map_err(abort)?)?;
            Ok::<_, TxError>(None)
        });
        match unwrap_tx(res) {
            Ok(Some(prev)) => Ok(Stored::Duplicate(prev)),
            Ok(None) => {
                *counts = now.added(id, len, own);
                Ok(Stored::New(msg))
            }
            Err(e) => {
                if matches!(e, StoreError::InboxFull { .. })
                    && !self.refused.swap(true, Ordering::Relaxed)
                {
                    tracing::warn!(error = %e, "inbox full: new messages are refused (the webhook answers 507; relay and Nexus messages stay on their server) until messages are deleted");
                }
                Err(e)
            }
        }
    }

    /// Stores a message and waits until it is on disk (`capped`: see [`Inbox::insert_with`]).
    pub async fn insert_durable_with(&self, m: NewMessage, capped: bool) -> Result<Stored> {
        let stored = self.insert_with(m, capped)?;
        self.db.durable().await?;
        Ok(stored)
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
        let mut counts = self.lock();
        let key = id.to_be_bytes();
        let Some(old) = self.msgs.get(key)? else {
            return Ok(None);
        };
        let mut m: InboxMessage = decode(TREE, &old)?;
        if m.read {
            return Ok(Some(m));
        }
        m.read = true;
        let value = encode(&m)?;
        let next = counts.marked_read(old.len() as u64, value.len() as u64);
        let record = encode(&next)?;
        unwrap_tx((&self.msgs, &self.meta).transaction(|(msgs, meta)| {
            msgs.insert(&key, value.as_slice())?;
            meta.insert(inbox_counts::KEY, record.as_slice())?;
            Ok::<_, TxError>(())
        }))?;
        *counts = next;
        Ok(Some(m))
    }

    /// Marks every message read; returns how many changed.
    pub fn mark_all_read(&self) -> Result<u64> {
        let mut n = 0;
        for item in self.msgs.iter() {
            let (_, v) = item?;
            let m: InboxMessage = decode(TREE, &v)?;
            // Through `mark_read`, one message at a time, so the totals follow each change.
            if !m.read && self.mark_read(m.id)?.is_some() {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Deletes one message (its dedup entry stays, so a redelivery is not stored again).
    pub fn remove(&self, id: u64) -> Result<bool> {
        {
            let mut counts = self.lock();
            let key = id.to_be_bytes();
            let Some(old) = self.msgs.get(key)? else {
                return Ok(false);
            };
            let m: InboxMessage = decode(TREE, &old)?;
            let next = counts.removed(old.len() as u64, m.read);
            let record = encode(&next)?;
            unwrap_tx((&self.msgs, &self.pending, &self.meta).transaction(
                |(msgs, pending, meta)| {
                    msgs.remove(&key)?;
                    pending.remove(&key)?;
                    meta.insert(inbox_counts::KEY, record.as_slice())?;
                    Ok::<_, TxError>(())
                },
            ))?;
            *counts = next;
        }
        self.made_room();
        Ok(true)
    }

    /// Deletes every message already read; returns how many.
    pub fn remove_read(&self) -> Result<u64> {
        let mut n = 0;
        for item in self.msgs.iter() {
            let (_, v) = item?;
            let m: InboxMessage = decode(TREE, &v)?;
            if m.read && self.remove(m.id)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Totals.
    pub fn counts(&self) -> InboxCounts {
        let c = *self.lock();
        let caps = self.caps();
        InboxCounts {
            total: c.total,
            unread: c.unread,
            bytes: c.bytes,
            max_messages: caps.max_messages,
            max_bytes: caps.max_bytes,
            full: self.refused.load(Ordering::Relaxed) || caps.reached(&c),
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

    fn msg(i: usize) -> NewMessage {
        NewMessage {
            source: "relay".into(),
            source_id: Some(format!("r{i}")),
            from: "a".into(),
            message: format!("message {i}"),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn a_full_inbox_refuses_new_messages_but_knows_old_ones() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let db = Db::open(&tmp.path().join("data"))?;
        let inbox = Inbox::open(&db)?;
        inbox.set_caps(Caps {
            max_messages: 2,
            max_bytes: 1 << 20,
        });
        let first = inbox.insert_durable(msg(1)).await?;
        inbox.insert_durable(msg(2)).await?;
        let refused = inbox.insert_durable(msg(3)).await;
        assert!(
            matches!(refused, Err(StoreError::InboxFull { total: 2, .. })),
            "{refused:?}"
        );
        assert!(inbox.is_full() && inbox.counts().full);
        // A redelivery takes no room: still recognised.
        assert!(matches!(
            inbox.insert_durable(msg(1)).await?,
            Stored::Duplicate(id) if id == first.id()
        ));
        // Made before the delete, so the wake-up cannot be missed.
        let room = inbox.room();
        assert!(inbox.remove(first.id())?);
        tokio::time::timeout(std::time::Duration::from_secs(5), room).await?;
        assert!(!inbox.is_full());
        assert!(matches!(
            inbox.insert_durable(msg(3)).await?,
            Stored::New(_)
        ));
        Ok(())
    }

    #[tokio::test]
    async fn totals_survive_a_restart_and_are_rebuilt_when_absent() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data");
        let db = Db::open(&dir)?;
        let inbox = Inbox::open(&db)?;
        let mut ids = Vec::new();
        for i in 0..5 {
            ids.push(inbox.insert_durable(msg(i)).await?.id());
        }
        inbox.mark_read(ids[0])?;
        inbox.remove(ids[1])?;
        db.durable().await?;
        let before = inbox.counts();
        assert_eq!((before.total, before.unread), (4, 3));
        assert!(before.bytes > 0);
        let reopened = Inbox::open(&db)?.counts();
        assert_eq!(
            (reopened.total, reopened.unread, reopened.bytes),
            (4, 3, before.bytes)
        );
        // A store from before the record: counted once at open, to the same totals.
        db.tree("inbox_meta")?.remove(inbox_counts::KEY)?;
        let rebuilt = Inbox::open(&db)?.counts();
        assert_eq!(
            (rebuilt.total, rebuilt.unread, rebuilt.bytes),
            (4, 3, before.bytes)
        );
        // A message written without the record (an older clawlink): the record is stale.
        let extra = InboxMessage {
            id: ids[4] + 100,
            source: "webhook".into(),
            source_id: None,
            from: "old".into(),
            message: "from an older build".into(),
            received_at: crate::time::now_rfc3339(),
            read: false,
            meta: Default::default(),
        };
        db.tree("inbox")?
            .insert(extra.id.to_be_bytes(), encode(&extra)?)?;
        let recounted = Inbox::open(&db)?.counts();
        assert_eq!((recounted.total, recounted.unread), (5, 4));
        Ok(())
    }
}
