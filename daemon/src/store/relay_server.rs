//! The relay server's records: registered accounts and the per-recipient message queues.
//!
//! ## Trees
//!
//! ```text
//! relay_users   key: ID (UTF-8)                     value: JSON AccountRecord {name, secret_hash, created_ms}
//! relay_queue   key: ID 0x00 SEQ (u64 big-endian)   value: JSON QueuedMessage {from, fromName, message, ts}
//! relay_sent    key: FROM 0x00 KEY                   value: SEQ (u64 BE) ++ arrival ms (u64 BE)
//! ```
//!
//! `relay_sent` remembers the idempotency keys senders attach to `/send` (an extension), so a
//! send retried after a lost answer is recognised and not queued twice. A key is written in
//! the same transaction as its message and kept for [`SEND_KEY_TTL_MS`]; at about 40 bytes
//! plus the key per keyed send, a day of keys is small next to the messages themselves.
//!
//! Ids never contain `0x00` (the relay validates them to `[A-Za-z0-9_.-]`), so `ID 0x00` is an
//! unambiguous prefix and one range scan yields a recipient's queue in key order. `SEQ` comes
//! from sled's `generate_id`, which only ever grows, across restarts and crashes included: a
//! message id is never reused, so clients may deduplicate by it. The caller serialises the
//! enqueues of one recipient (see [`RelayStore::enqueue`]) so key order is arrival order.
//!
//! Storage caps (total, per recipient, per sender's share) are checked here, in
//! [`RelayStore::enqueue`], by [`quota::Quota`], which another backend can reuse as it is.
//!
//! Ids are lowercase. A store from before that rule can hold upper-case ids: they are renamed
//! at open when their lowercase form is free ([`case`]).
//!
//! Secrets are never stored: only their argon2 PHC hash. A queued message is deleted when it is
//! delivered (or acknowledged); deletions need no fsync of their own, since losing one to a
//! crash only means one more delivery.

mod case;
pub mod quota;

use super::{decode, encode, Db, Result};
use quota::{QueueCaps, Quota, Refusal};
use serde::{Deserialize, Serialize};
use sled::transaction::{ConflictableTransactionError, TransactionError, Transactional};
use std::sync::Arc;

const USERS: &str = "relay_users";
const QUEUE: &str = "relay_queue";
const SENT: &str = "relay_sent";

/// How long an idempotency key is remembered: longer than any sender keeps retrying one send
/// without the relay having answered it once.
pub const SEND_KEY_TTL_MS: u64 = 24 * 3600 * 1000;

/// What [`RelayStore::enqueue`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    /// Queued under this sequence number.
    New(u64),
    /// The sender's key was seen before: nothing queued.
    Duplicate {
        /// The first send's sequence number.
        seq: u64,
        /// The first send's arrival, ms since the epoch.
        ts: u64,
    },
    /// A storage cap refused it: nothing queued.
    Refused(Refusal),
}

/// One registered relay account as stored.
#[derive(Clone, Serialize, Deserialize)]
pub struct AccountRecord {
    /// Display name.
    pub name: String,
    /// argon2 PHC string of the secret.
    pub secret_hash: String,
    /// Registration time, ms since the epoch.
    pub created_ms: u64,
}

impl std::fmt::Debug for AccountRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountRecord")
            .field("name", &self.name)
            .field("created_ms", &self.created_ms)
            .finish_non_exhaustive()
    }
}

/// One queued message.
#[derive(Clone, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// Its sequence number (the key suffix; not stored in the value).
    #[serde(skip)]
    pub seq: u64,
    /// Sender id.
    pub from: String,
    /// Sender's name at send time.
    #[serde(rename = "fromName")]
    pub from_name: String,
    /// The text.
    pub message: String,
    /// Arrival time, ms since the epoch.
    pub ts: u64,
}

/// Handle on the relay's trees. Cheap to clone.
#[derive(Clone)]
pub struct RelayStore {
    db: Db,
    users: sled::Tree,
    queue: sled::Tree,
    sent: sled::Tree,
    quota: Arc<Quota>,
}

fn sent_key(from: &str, key: &str) -> Vec<u8> {
    let mut k = queue_prefix(from);
    k.extend_from_slice(key.as_bytes());
    k
}

fn sent_value(seq: u64, ts: u64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&seq.to_be_bytes());
    v[8..].copy_from_slice(&ts.to_be_bytes());
    v
}

fn split_sent_value(v: &[u8]) -> Option<(u64, u64)> {
    Some((
        super::decode_u64(v.get(..8)?)?,
        super::decode_u64(v.get(8..16)?)?,
    ))
}

fn queue_prefix(id: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(id.len() + 9);
    k.extend_from_slice(id.as_bytes());
    k.push(0);
    k
}

fn queue_key(id: &str, seq: u64) -> Vec<u8> {
    let mut k = queue_prefix(id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// Splits a queue key into (recipient, seq).
fn split_key(key: &[u8]) -> Option<(&str, u64)> {
    let cut = key.len().checked_sub(9)?;
    if key[cut] != 0 {
        return None;
    }
    let id = std::str::from_utf8(&key[..cut]).ok()?;
    Some((id, super::decode_u64(&key[cut + 1..])?))
}

impl RelayStore {
    /// Opens the relay's trees in `db`, with storage `caps`; renames ids registered with
    /// upper case before ids were case-insensitive ([`case`]); counts what is queued (one pass
    /// over the queue, keeping only per-recipient and per-sender totals in memory).
    pub fn open(db: &Db, caps: QueueCaps) -> Result<RelayStore> {
        let store = RelayStore {
            db: db.clone(),
            users: db.tree(USERS)?,
            queue: db.tree(QUEUE)?,
            sent: db.tree(SENT)?,
            quota: Arc::new(Quota::new(caps)),
        };
        store.lowercase_ids()?;
        for item in store.queue.iter() {
            let (k, v) = item?;
            let (to, _) = split_key(&k).ok_or(super::StoreError::Corrupt {
                tree: QUEUE,
                detail: "malformed key".into(),
            })?;
            let m: QueuedMessage = decode(QUEUE, &v)?;
            store
                .quota
                .restore(to, &m.from, quota::cost(&m.from, &m.from_name, &m.message));
        }
        Ok(store)
    }

    /// The storage accounting.
    pub fn quota(&self) -> &Quota {
        &self.quota
    }

    /// Every registered account.
    pub fn accounts(&self) -> Result<Vec<(String, AccountRecord)>> {
        let mut out = Vec::new();
        for item in self.users.iter() {
            let (k, v) = item?;
            let id = String::from_utf8(k.to_vec()).map_err(|e| super::StoreError::Corrupt {
                tree: USERS,
                detail: e.to_string(),
            })?;
            out.push((id, decode(USERS, &v)?));
        }
        Ok(out)
    }

    /// The account `id`, if registered.
    pub fn account(&self, id: &str) -> Result<Option<AccountRecord>> {
        match self.users.get(id.as_bytes())? {
            Some(v) => Ok(Some(decode(USERS, &v)?)),
            None => Ok(None),
        }
    }

    /// Creates `id` unless it exists (atomically). Returns the existing record when it does.
    pub fn create_account(
        &self,
        id: &str,
        record: &AccountRecord,
    ) -> Result<Option<AccountRecord>> {
        match self.users.compare_and_swap(
            id.as_bytes(),
            None as Option<&[u8]>,
            Some(encode(record)?),
        )? {
            Ok(()) => Ok(None),
            Err(cas) => match cas.current {
                Some(cur) => Ok(Some(decode(USERS, &cur)?)),
                None => Ok(None),
            },
        }
    }

    /// Replaces the stored record of `id` (used to rename).
    pub fn put_account(&self, id: &str, record: &AccountRecord) -> Result<()> {
        self.users.insert(id.as_bytes(), encode(record)?)?;
        Ok(())
    }

    /// Appends a message to `to`'s queue and returns its sequence number; with a sender's
    /// idempotency `key` seen before, queues nothing and returns the first send's. The write
    /// is in memory until [`RelayStore::durable`]. Callers must not run two enqueues for the
    /// same recipient at once, so that sequence order is queue order.
    pub fn enqueue(&self, to: &str, msg: &QueuedMessage, key: Option<&str>) -> Result<Enqueued> {
        let bytes = quota::cost(&msg.from, &msg.from_name, &msg.message);
        if let Err(refusal) = self.quota.reserve(to, &msg.from, bytes) {
            return Ok(Enqueued::Refused(refusal));
        }
        let done = self.enqueue_reserved(to, msg, key);
        if !matches!(done, Ok(Enqueued::New(_))) {
            self.quota.release(to, &msg.from, bytes);
        }
        done
    }

    fn enqueue_reserved(
        &self,
        to: &str,
        msg: &QueuedMessage,
        key: Option<&str>,
    ) -> Result<Enqueued> {
        let seq = self.db.sled().generate_id()?;
        let value = encode(msg)?;
        let Some(key) = key else {
            self.queue.insert(queue_key(to, seq), value)?;
            return Ok(Enqueued::New(seq));
        };
        let sk = sent_key(&msg.from, key);
        let res = (&self.queue, &self.sent).transaction(|(queue, sent)| {
            if let Some(prev) = sent.get(&sk)? {
                if let Some((seq, ts)) = split_sent_value(&prev) {
                    return Ok(Enqueued::Duplicate { seq, ts });
                }
            }
            queue.insert(queue_key(to, seq), value.as_slice())?;
            sent.insert(sk.as_slice(), &sent_value(seq, msg.ts))?;
            Ok::<_, ConflictableTransactionError<super::StoreError>>(Enqueued::New(seq))
        });
        match res {
            Ok(e) => Ok(e),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(e.into()),
        }
    }

    /// The first send under `from`'s idempotency `key`, if remembered: (seq, arrival ms).
    pub fn sent(&self, from: &str, key: &str) -> Result<Option<(u64, u64)>> {
        Ok(self
            .sent
            .get(sent_key(from, key))?
            .and_then(|v| split_sent_value(&v)))
    }

    /// Forgets idempotency keys that arrived before `before_ms`; returns how many.
    pub fn prune_sent(&self, before_ms: u64) -> Result<usize> {
        let mut n = 0;
        for item in self.sent.iter() {
            let (k, v) = item?;
            // An unreadable value is forgotten too: it could never match again anyway.
            if split_sent_value(&v).is_none_or(|(_, ts)| ts < before_ms) {
                self.sent.remove(k)?;
                n += 1;
            }
        }
        Ok(n)
    }

    /// A sequence number above every message stored so far.
    pub fn high_water(&self) -> Result<u64> {
        Ok(self.db.sled().generate_id()?)
    }

    /// Up to `limit` messages of `to`, oldest first, with seq > `after` (all when `None`).
    pub fn pending(
        &self,
        to: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>> {
        let start = match after {
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(s) => queue_key(to, s + 1),
            None => queue_prefix(to),
        };
        let mut end = queue_prefix(to);
        if let Some(last) = end.last_mut() {
            *last = 1;
        }
        let mut out = Vec::new();
        for item in self.queue.range(start..end).take(limit) {
            let (k, v) = item?;
            let seq = split_key(&k)
                .map(|(_, s)| s)
                .ok_or(super::StoreError::Corrupt {
                    tree: QUEUE,
                    detail: "malformed key".into(),
                })?;
            let mut msg: QueuedMessage = decode(QUEUE, &v)?;
            msg.seq = seq;
            out.push(msg);
        }
        Ok(out)
    }

    /// Deletes one message and gives its room back; true when it was there.
    pub fn remove(&self, to: &str, seq: u64) -> Result<bool> {
        let Some(old) = self.queue.remove(queue_key(to, seq))? else {
            return Ok(false);
        };
        // An undecodable record still leaves the queue; its bytes are then only estimated.
        match decode::<QueuedMessage>(QUEUE, &old) {
            Ok(m) => {
                self.quota
                    .release(to, &m.from, quota::cost(&m.from, &m.from_name, &m.message))
            }
            Err(_) => self.quota.release(to, "", old.len() as u64),
        }
        Ok(true)
    }

    /// Waits until every write made so far is on disk (group commit).
    pub async fn durable(&self) -> Result<()> {
        self.db.durable().await
    }

    /// Flushes synchronously (shutdown).
    pub fn flush_now(&self) -> Result<()> {
        self.db.flush_now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(text: &str) -> QueuedMessage {
        QueuedMessage {
            seq: 0,
            from: "a".into(),
            from_name: "A".into(),
            message: text.into(),
            ts: 1,
        }
    }

    #[tokio::test]
    async fn queues_are_per_recipient_fifo() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(&dir.path().join("data"))?;
        let s = RelayStore::open(&db, QueueCaps::default())?;
        let rec = AccountRecord {
            name: "B".into(),
            secret_hash: "h".into(),
            created_ms: 1,
        };
        assert!(s.create_account("b", &rec)?.is_none());
        assert!(s.create_account("b", &rec)?.is_some());
        let new = |e: Enqueued| match e {
            Enqueued::New(seq) => seq,
            other => panic!("not queued: {other:?}"),
        };
        let s1 = new(s.enqueue("b", &msg("1"), None)?);
        new(s.enqueue("bb", &msg("x"), None)?);
        let s2 = new(s.enqueue("b", &msg("2"), None)?);
        assert!(s2 > s1);
        let got = s.pending("b", None, 10)?;
        assert_eq!(
            got.iter().map(|m| m.message.as_str()).collect::<Vec<_>>(),
            ["1", "2"]
        );
        assert_eq!(s.pending("b", Some(s1), 10)?.len(), 1);
        assert!(s.remove("b", s1)?);
        assert!(!s.remove("b", s1)?);
        s.durable().await?;
        assert_eq!(s.accounts()?.len(), 1);
        assert_eq!(s.quota().queued("b"), 1);
        assert_eq!(s.quota().queued("bb"), 1);
        drop(s);
        let reopened = RelayStore::open(&db, QueueCaps::default())?;
        assert_eq!(reopened.quota().queued("b"), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_repeated_key_queues_once_and_expires() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = Db::open(&dir.path().join("data"))?;
        let s = RelayStore::open(&db, QueueCaps::default())?;
        let first = s.enqueue("b", &msg("1"), Some("k1"))?;
        let Enqueued::New(seq) = first else {
            panic!("first send must queue: {first:?}");
        };
        assert_eq!(
            s.enqueue("b", &msg("1"), Some("k1"))?,
            Enqueued::Duplicate { seq, ts: 1 }
        );
        // Keys are per sender: another sender's k1 is a new message.
        let mut other = msg("1");
        other.from = "c".into();
        assert!(matches!(
            s.enqueue("b", &other, Some("k1"))?,
            Enqueued::New(_)
        ));
        assert_eq!(s.pending("b", None, 10)?.len(), 2);
        assert_eq!(s.sent("a", "k1")?, Some((seq, 1)));
        assert_eq!(s.prune_sent(2)?, 2);
        assert_eq!(s.sent("a", "k1")?, None);
        Ok(())
    }
}
