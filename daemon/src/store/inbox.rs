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
//! after [`Db::durable`] (see [`Inbox::insert_durable`]). Concurrent durable inserts are
//! gathered by one writer task into one transaction and one flush per batch
//! ([`super::inbox_writer`]).
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
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
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
    /// The writer task's queue, started on the first durable insert.
    writer: Arc<OnceLock<super::inbox_writer::Queue>>,
}

/// A message ready for the inbox transaction: its record, encoded once.
struct Row {
    msg: InboxMessage,
    value: Vec<u8>,
    len: u64,
    dedup_key: Option<Vec<u8>>,
    capped: bool,
    track: bool,
}

impl Row {
    fn new(id: u64, m: NewMessage, capped: bool, track: bool) -> Result<Row> {
        let dedup_key = m
            .source_id
            .as_ref()
            .map(|sid| format!("{}\0{}", m.source, sid).into_bytes());
        // What this daemon wrote itself (a transport sets `meta.own`, e.g. our own Nexus
        // messages coming back in a page) and protocol traffic (`meta.announce`, a Nexus
        // member's key announce) are kept for the record, but are never unread and never go to
        // the local agent.
        let flag = |k: &str| m.meta.get(k).and_then(serde_json::Value::as_bool) == Some(true);
        let own = flag("own") || flag("announce");
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
        Ok(Row {
            len: value.len() as u64,
            value,
            msg,
            dedup_key,
            capped,
            track: track && !own,
        })
    }
}

/// What the transaction decided for one [`Row`].
enum Outcome {
    New,
    Duplicate(u64),
    Full(StoreError),
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
            writer: Arc::new(OnceLock::new()),
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
        self.insert_batch(vec![(m, capped)])?
            .pop()
            .unwrap_or(Err(StoreError::Closed))
    }

    /// Stores a batch in one transaction (one write of the totals), not yet durable. The
    /// outer error is a storage failure (nothing of the batch was stored); otherwise one
    /// result per message, in order: stored, a duplicate (also of an earlier message of the
    /// same batch), or refused by the caps (`capped` false: stored even over them).
    pub fn insert_batch(&self, batch: Vec<(NewMessage, bool)>) -> Result<Vec<Result<Stored>>> {
        let track = self.track_agent.load(Ordering::Relaxed);
        let mut rows = Vec::with_capacity(batch.len());
        for (m, capped) in batch {
            rows.push(Row::new(
                self.db.sled().generate_id()? + 1,
                m,
                capped,
                track,
            )?);
        }
        let caps = self.caps();
        let mut counts = self.lock();
        let now = *counts;
        let trees = (&self.msgs, &self.dedup, &self.pending, &self.meta);
        let res = trees.transaction(|(msgs, dedup, pending, meta)| {
            let mut cur = now;
            let mut outcomes = Vec::with_capacity(rows.len());
            for row in &rows {
                if let Some(k) = &row.dedup_key {
                    if let Some(existing) = dedup.get(k)? {
                        let prev = super::decode_u64(&existing).unwrap_or(0);
                        outcomes.push(Outcome::Duplicate(prev));
                        continue;
                    }
                }
                // After the duplicate check: a redelivery is recognised even when full.
                if let Some(full) = caps.refusal(&cur, row.len).filter(|_| row.capped) {
                    outcomes.push(Outcome::Full(full));
                    continue;
                }
                let id = row.msg.id.to_be_bytes();
                if let Some(k) = &row.dedup_key {
                    dedup.insert(k.as_slice(), &id)?;
                }
                msgs.insert(&id, row.value.as_slice())?;
                if row.track {
                    pending.insert(&id, &[])?;
                }
                cur = cur.added(row.msg.id, row.len, row.msg.read);
                outcomes.push(Outcome::New);
            }
            if cur != now {
                meta.insert(inbox_counts::KEY, encode(&cur).map_err(abort)?)?;
            }
            Ok::<_, TxError>((outcomes, cur))
        });
        let (outcomes, cur) = unwrap_tx(res)?;
        *counts = cur;
        drop(counts);
        let mut out = Vec::with_capacity(rows.len());
        for (row, outcome) in rows.into_iter().zip(outcomes) {
            out.push(match outcome {
                Outcome::New => Ok(Stored::New(row.msg)),
                Outcome::Duplicate(prev) => Ok(Stored::Duplicate(prev)),
                Outcome::Full(e) => {
                    if !self.refused.swap(true, Ordering::Relaxed) {
                        tracing::warn!(error = %e, "inbox full: new messages are refused (the webhook answers 507; relay and Nexus messages stay on their server) until messages are deleted");
                    }
                    Err(e)
                }
            });
        }
        Ok(out)
    }

    /// Stores a message and waits until it is on disk (`capped`: see [`Inbox::insert_with`]).
    /// Concurrent callers share one transaction and one flush: see [`super::inbox_writer`].
    pub async fn insert_durable_with(&self, m: NewMessage, capped: bool) -> Result<Stored> {
        let writer = self
            .writer
            .get_or_init(|| super::inbox_writer::start(self.clone()));
        super::inbox_writer::submit(writer, m, capped).await
    }

    /// Stores a message and waits until it is on disk.
    pub async fn insert_durable(&self, m: NewMessage) -> Result<Stored> {
        self.insert_durable_with(m, true).await
    }

    /// The store behind the inbox.
    pub(super) fn db(&self) -> &Db {
        &self.db
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
    async fn one_batch_sees_its_own_duplicates_and_refuses_past_the_caps() -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let db = Db::open(&tmp.path().join("data"))?;
        let inbox = Inbox::open(&db)?;
        inbox.set_caps(Caps {
            max_messages: 2,
            max_bytes: 1 << 20,
        });
        // 1, 1 again, 2, 3 (over the cap), 3 uncapped (a source that cannot keep it).
        let out = inbox.insert_batch(vec![
            (msg(1), true),
            (msg(1), true),
            (msg(2), true),
            (msg(3), true),
            (msg(3), false),
        ])?;
        let first = match &out[0] {
            Ok(Stored::New(m)) => m.id,
            other => anyhow::bail!("first: {other:?}"),
        };
        assert!(
            matches!(out[1], Ok(Stored::Duplicate(id)) if id == first),
            "{:?}",
            out[1]
        );
        assert!(matches!(out[2], Ok(Stored::New(_))), "{:?}", out[2]);
        assert!(
            matches!(out[3], Err(StoreError::InboxFull { total: 2, .. })),
            "{:?}",
            out[3]
        );
        assert!(matches!(out[4], Ok(Stored::New(_))), "{:?}", out[4]);
        assert_eq!(inbox.counts().total, 3);
        assert!(inbox.is_full());
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_durable_inserts_each_get_one_answer_and_are_all_stored(
    ) -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data");
        let db = Db::open(&dir)?;
        let inbox = Inbox::open(&db)?;
        // 2,000 callers at once, each message sent twice: the writer batches them, and every
        // caller learns the one inbox id of its message.
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..2000 {
            for _ in 0..2 {
                let inbox = inbox.clone();
                calls.spawn(async move { (i, inbox.insert_durable(msg(i)).await) });
            }
        }
        let mut ids = std::collections::HashMap::new();
        while let Some(r) = calls.join_next().await {
            let (i, stored) = r?;
            let id = stored?.id();
            assert_eq!(*ids.entry(i).or_insert(id), id, "message {i} got two ids");
        }
        assert_eq!(ids.len(), 2000);
        assert_eq!(inbox.counts().total, 2000);
        // Closed: the writer has ended with the store, and later inserts are refused clearly.
        db.close().await;
        assert!(matches!(
            inbox.insert_durable(msg(5000)).await,
            Err(StoreError::Closed)
        ));
        drop(inbox);
        drop(db);
        // Everything acknowledged is there after a reopen.
        let db = crate::store::tests::reopen(&dir).await?;
        let inbox = Inbox::open(&db)?;
        assert_eq!(inbox.counts().total, 2000);
        let listed: std::collections::HashSet<u64> = inbox
            .list(&InboxQuery::default())?
            .iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(listed, ids.values().copied().collect());
        db.close().await;
        Ok(())
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closing_while_inserts_are_in_flight_loses_no_acknowledged_message(
    ) -> anyhow::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("data");
        let db = Db::open(&dir)?;
        let inbox = Inbox::open(&db)?;
        // The writer is running, and the close lands while 100 callers are each still
        // storing their 30 messages one after another.
        inbox.insert_durable(msg(0)).await?;
        let mut calls = tokio::task::JoinSet::new();
        for c in 0..100 {
            let inbox = inbox.clone();
            calls.spawn(async move {
                let mut acked = Vec::new();
                for i in 1 + c * 30..1 + (c + 1) * 30 {
                    match inbox.insert_durable(msg(i)).await {
                        Ok(_) => acked.push(i),
                        Err(StoreError::Closed) => return Ok(acked),
                        Err(e) => return Err(anyhow::anyhow!("message {i}: unexpected {e}")),
                    }
                }
                Ok(acked)
            });
        }
        tokio::task::yield_now().await;
        db.close().await;
        let mut acked = std::collections::HashSet::from([0usize]);
        while let Some(r) = calls.join_next().await {
            acked.extend(r??);
        }
        drop(inbox);
        drop(db);
        // Exactly the acknowledged messages are there after a reopen.
        let db = crate::store::tests::reopen(&dir).await?;
        let inbox = Inbox::open(&db)?;
        let stored: std::collections::HashSet<usize> = inbox
            .list(&InboxQuery::default())?
            .iter()
            .map(|m| m.message.trim_start_matches("message ").parse::<usize>())
            .collect::<Result<_, _>>()?;
        assert_eq!(stored, acked);
        assert_eq!(inbox.counts().total as usize, acked.len());
        db.close().await;
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
