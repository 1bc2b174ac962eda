//! The relay's shared state: accounts in memory (mirroring the store) and their queues.
//! Secret checks and registration are in [`super::auth`].
//!
//! Queue lengths and bytes are counted by the store ([`crate::store::relay_server::quota`]),
//! which also enforces the storage caps. Each account holds its number of open WebSockets
//! (`online`), a lock that orders enqueues (so sequence order is queue order), an async lock
//! that lets one drainer at a time hand out messages under the seed's delete-on-delivery
//! contract, and a `watch` channel holding the highest sequence number known to be on disk.
//!
//! Nothing leaves the relay before it is durable: pushes and polls hand out only messages up to
//! [`Relay::visible`]. Otherwise a message pushed and then lost to a crash before its fsync
//! would come back, when its sender retries, under a new id the recipient cannot match.
//! Sequence order is queue order and a group commit covers every earlier write, so "seq N is
//! durable" implies every queued message below N is too.

use super::error::ApiError;
use super::limits::Limits;
use super::storage::RelayBackend;
use crate::store::relay_server::quota::Refusal;
use crate::store::relay_server::{AccountRecord, Enqueued, QueuedMessage};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Limits fixed at start.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    /// Largest message text in bytes.
    pub max_message_bytes: usize,
    /// Most WebSockets per id.
    pub max_ws_per_id: usize,
}

/// One account in memory.
pub(crate) struct Account {
    /// The id.
    pub id: String,
    pub(super) name: Mutex<String>,
    pub(super) created_ms: u64,
    pub(super) hash: String,
    pub(super) verified: Mutex<Option<[u8; 32]>>,
    /// Open WebSockets.
    pub online: AtomicUsize,
    enqueue_lock: tokio::sync::Mutex<()>,
    /// Held while handing out messages that are deleted on delivery (poll, seed pushes).
    pub drain: tokio::sync::Mutex<()>,
    /// The highest sequence number of this account known durable; bumped (waking its
    /// WebSockets) after each acknowledged enqueue.
    pub wake: watch::Sender<u64>,
    /// Every message of this account below it is gone: this node removed them all at once
    /// ([`Relay::remove_below`]). Reads start there, so a replica that has not applied the
    /// removal yet cannot hand them out again.
    removed_below: AtomicU64,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A poisoned lock only means another request panicked; the data (a name, a digest) is intact.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Account {
    pub(super) fn new(id: String, rec: AccountRecord) -> Account {
        Account {
            id,
            name: Mutex::new(rec.name),
            created_ms: rec.created_ms,
            hash: rec.secret_hash,
            verified: Mutex::new(None),
            online: AtomicUsize::new(0),
            enqueue_lock: tokio::sync::Mutex::new(()),
            drain: tokio::sync::Mutex::new(()),
            wake: watch::channel(0).0,
            removed_below: AtomicU64::new(0),
        }
    }

    /// The display name.
    pub fn name(&self) -> String {
        lock(&self.name).clone()
    }

    /// Whether a WebSocket is open.
    pub fn is_online(&self) -> bool {
        self.online.load(Ordering::Relaxed) > 0
    }
}

/// The whole relay.
pub(crate) struct Relay {
    /// The store (sled, or JetStream shared with other relay nodes).
    pub store: Arc<dyn RelayBackend>,
    /// Limits.
    pub cfg: Config,
    /// Rate limiters.
    pub limits: Arc<Limits>,
    /// Open WebSocket sessions, awaited at shutdown.
    pub sessions: TaskTracker,
    /// Cancelled at shutdown.
    pub shutdown: CancellationToken,
    pub(super) accounts: Mutex<HashMap<String, Arc<Account>>>,
    pub(super) salt: [u8; 32],
    pub(super) hasher: super::hasher::Hasher,
    /// Above every sequence number stored before this start: those were read from disk.
    floor: u64,
}

impl Relay {
    /// Loads every account and queue length from the store.
    pub async fn load(
        store: Arc<dyn RelayBackend>,
        cfg: Config,
        limits: Arc<Limits>,
        shutdown: CancellationToken,
    ) -> super::storage::Result<Relay> {
        let mut accounts = HashMap::new();
        // A shared store is read on demand: other nodes register ids too, and there may be
        // millions of them.
        if !store.shared() {
            for (id, rec) in store.accounts().await? {
                accounts.insert(id.clone(), Arc::new(Account::new(id, rec)));
            }
        }
        let salt: [u8; 32] = rand::random();
        let floor = store.high_water().await?;
        Ok(Relay {
            store,
            cfg,
            limits,
            sessions: TaskTracker::new(),
            shutdown,
            accounts: Mutex::new(accounts),
            salt,
            hasher: super::hasher::Hasher::start().map_err(|e| {
                super::storage::Error::Backend(format!("starting the secret checker: {e}"))
            })?,
            floor,
        })
    }

    /// The account `id`, if registered. With a shared store, an id not seen yet by this node
    /// is looked up there (and kept).
    pub async fn account(&self, id: &str) -> Result<Option<Arc<Account>>, ApiError> {
        if let Some(a) = lock(&self.accounts).get(id) {
            return Ok(Some(Arc::clone(a)));
        }
        if !self.store.shared() {
            return Ok(None);
        }
        let Some(rec) = self.store.account(id).await? else {
            return Ok(None);
        };
        Ok(Some(Arc::clone(
            lock(&self.accounts)
                .entry(id.to_string())
                .or_insert_with(|| Arc::new(Account::new(id.to_string(), rec))),
        )))
    }

    /// Whether `account` holds an open `/ws`, on this node or (shared store) another.
    pub async fn is_online(&self, account: &Account) -> bool {
        account.is_online() || self.store.online_somewhere(&account.id).await
    }

    /// The account id `raw` names. Ids are case-insensitive and registered lowercase; an
    /// account registered with upper-case letters before that rule keeps its exact spelling
    /// (and is reached by it) as long as no lowercase twin exists.
    pub fn resolve_id(&self, raw: &str) -> String {
        let lower = raw.to_ascii_lowercase();
        let map = lock(&self.accounts);
        if map.contains_key(&lower) || !map.contains_key(raw) {
            lower
        } else {
            raw.to_string()
        }
    }

    /// Whether an id differing from `id` only in case is registered (a lookalike).
    pub fn case_twin_exists(&self, id: &str) -> bool {
        lock(&self.accounts)
            .keys()
            .any(|k| k != id && k.eq_ignore_ascii_case(id))
    }

    /// Largest request body: the message JSON-escaped (up to 6 bytes per byte) plus the
    /// other fields.
    pub fn body_limit(&self) -> usize {
        self.cfg
            .max_message_bytes
            .saturating_mul(6)
            .saturating_add(16 * 1024)
    }

    /// Number of accounts.
    pub fn account_count(&self) -> usize {
        lock(&self.accounts).len()
    }

    /// Every account, sorted by id (a shared store is listed, and its ids kept).
    pub async fn all(&self) -> Result<Vec<Arc<Account>>, ApiError> {
        if self.store.shared() {
            let listed = self.store.accounts().await?;
            let mut map = lock(&self.accounts);
            for (id, rec) in listed {
                map.entry(id.clone())
                    .or_insert_with(|| Arc::new(Account::new(id, rec)));
            }
        }
        let mut all: Vec<_> = lock(&self.accounts).values().cloned().collect();
        all.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(all)
    }

    /// Appends `msg` to `to`'s queue (refusing beyond the cap); a send whose idempotency `key`
    /// was seen before queues nothing and is answered as the first one. Not yet durable nor
    /// visible: the caller awaits [`RelayBackend::durable`], then calls [`Relay::published`].
    pub async fn enqueue(
        &self,
        to: &Account,
        msg: &QueuedMessage,
        key: Option<&str>,
    ) -> Result<Enqueued, ApiError> {
        // JetStream orders one subject's publishes itself: no lock across its round trips.
        let _order = match self.store.shared() {
            true => None,
            false => Some(to.enqueue_lock.lock().await),
        };
        if let Some(k) = key {
            if let Some((seq, ts)) = self.store.sent(&msg.from, k).await? {
                return Ok(Enqueued::Duplicate { seq, ts });
            }
        }
        match self.store.enqueue(&to.id, msg, key).await? {
            Enqueued::Refused(r @ Refusal::RelayFull) => Err(ApiError::new(
                axum::http::StatusCode::INSUFFICIENT_STORAGE,
                r.to_string(),
            )),
            Enqueued::Refused(r) => Err(ApiError::too_many(r.to_string(), 5)),
            done => Ok(done),
        }
    }

    /// Marks `to`'s messages up to `seq` durable, letting pushes and polls hand them out.
    pub fn published(&self, to: &Account, seq: u64) {
        to.wake.send_if_modified(|mark| {
            let newer = seq > *mark;
            if newer {
                *mark = seq;
            }
            newer
        });
    }

    /// The highest sequence number of `account` that may be handed out (it is on disk).
    pub fn visible(&self, account: &Account) -> u64 {
        self.floor.max(*account.wake.borrow())
    }

    /// Deletes message `seq` of `account` (delivered or acknowledged); true if it was queued.
    pub async fn remove(&self, account: &Account, seq: u64) -> Result<bool, ApiError> {
        Ok(self.store.remove(&account.id, seq).await?)
    }

    /// Deletes every message of `account` below `below`, each of them delivered or
    /// acknowledged; how many.
    pub async fn remove_below(&self, account: &Account, below: u64) -> super::storage::Result<u64> {
        let n = self.store.remove_below(&account.id, below).await?;
        account.removed_below.fetch_max(below, Ordering::AcqRel);
        Ok(n)
    }

    /// Up to `limit` queued messages of `account` after `after` (see
    /// [`RelayBackend::pending`] for `known`), never below what this node removed in bulk.
    pub async fn pending(
        &self,
        account: &Account,
        after: Option<u64>,
        limit: usize,
        known: Option<u64>,
    ) -> super::storage::Result<Vec<QueuedMessage>> {
        let after = match account.removed_below.load(Ordering::Acquire) {
            0 | 1 => after,
            gone => Some(after.map_or(gone - 1, |a| a.max(gone - 1))),
        };
        self.store.pending(&account.id, after, limit, known).await
    }
}
