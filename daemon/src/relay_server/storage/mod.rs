//! The relay's storage behind one trait, with two implementations: sled on one machine (the
//! embedded default, [`crate::store::relay_server::RelayStore`]) and NATS JetStream shared by
//! any number of relay nodes ([`jetstream::NatsStore`]).
//!
//! Why a trait: the relay's HTTP and WebSocket code must not care where a queue lives, and
//! its whole test suite runs against both backends. The trait is the API the relay used on
//! sled, plus four hooks that only a shared store needs:
//!
//! - [`RelayBackend::shared`]: several relay processes use the store at once, so the relay's
//!   in-memory account map is only a cache (a miss asks the store), and per-recipient caps
//!   are enforced by the store itself rather than by counts held in one process;
//! - [`RelayBackend::announce`] / [`RelayBackend::wakes`]: tell the node that holds a
//!   recipient's WebSocket that a message is queued;
//! - [`RelayBackend::set_online`] / [`RelayBackend::online_elsewhere`]: presence across nodes.
//!
//! The calls are synchronous, as sled's are; the JetStream backend runs each request on the
//! async runtime with a deadline (see [`jetstream`]). A store that cannot answer within it
//! is [`Error::Unavailable`]: the relay answers 503 with `Retry-After`, and nothing is
//! acknowledged.

pub mod jetstream;
mod sled;

use crate::store::relay_server::{AccountRecord, Enqueued, QueuedMessage};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use std::collections::{HashMap, HashSet};

/// A storage failure, as the relay tells it apart.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The local store failed (I/O, corruption).
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The recipient's queue holds the most messages allowed.
    #[error("the recipient's queue is full")]
    QueueFull,
    /// The whole store holds the most bytes allowed.
    #[error("the relay's storage is full")]
    StorageFull,
    /// The shared store cannot take writes now (quorum lost, unreachable, timed out).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The shared store answered something unexpected.
    #[error("storage: {0}")]
    Backend(String),
}

/// Result of a storage call.
pub type Result<T> = std::result::Result<T, Error>;

/// Where the relay keeps accounts and queues. Sequence numbers grow for the life of the store
/// and are never reused; a recipient's queue is in sequence order.
pub trait RelayBackend: Send + Sync + 'static {
    /// Short name for logs (`sled`, `jetstream`).
    fn kind(&self) -> &'static str;
    /// Whether other relay processes share this store (see the module doc).
    fn shared(&self) -> bool {
        false
    }
    /// Every registered account.
    fn accounts(&self) -> Result<Vec<(String, AccountRecord)>>;
    /// One account, if registered.
    fn account(&self, id: &str) -> Result<Option<AccountRecord>>;
    /// Creates `id` unless it exists (atomically); returns the existing record when it does.
    fn create_account(&self, id: &str, record: &AccountRecord) -> Result<Option<AccountRecord>>;
    /// Replaces the record of `id` (rename).
    fn put_account(&self, id: &str, record: &AccountRecord) -> Result<()>;
    /// Queued messages per recipient (read at start by an unshared store's only process).
    fn queued_counts(&self) -> Result<HashMap<String, usize>>;
    /// Appends `msg` to `to`'s queue; a sender's idempotency `key` seen before queues nothing.
    /// A shared store refuses beyond its per-recipient cap with [`Error::QueueFull`].
    fn enqueue(&self, to: &str, msg: &QueuedMessage, key: Option<&str>) -> Result<Enqueued>;
    /// The first send under `from`'s idempotency `key`, if remembered: (seq, arrival ms).
    fn sent(&self, from: &str, key: &str) -> Result<Option<(u64, u64)>>;
    /// Forgets idempotency keys older than `before_ms`; how many.
    fn prune_sent(&self, before_ms: u64) -> Result<usize>;
    /// A sequence number at or above every message stored before this call.
    fn high_water(&self) -> Result<u64>;
    /// Up to `limit` messages of `to`, oldest first, with seq > `after`.
    fn pending(&self, to: &str, after: Option<u64>, limit: usize) -> Result<Vec<QueuedMessage>>;
    /// Deletes message `seq` of `to`; true when it was there (and was `to`'s).
    fn remove(&self, to: &str, seq: u64) -> Result<bool>;
    /// Resolves once every write made so far is durable.
    fn durable(&self) -> BoxFuture<'_, Result<()>>;
    /// Flushes synchronously (shutdown).
    fn flush_now(&self) -> Result<()>;
    /// Tells other nodes that `to` has message `seq` queued (durable already).
    fn announce(&self, _to: &str, _seq: u64) {}
    /// Sequence numbers announced for `id` by any node, while the stream is held.
    fn wakes(&self, _id: &str) -> Option<BoxStream<'static, u64>> {
        None
    }
    /// Records that this node holds (or no longer holds) a WebSocket of `id`.
    fn set_online(&self, _id: &str, _online: bool) {}
    /// Whether some node holds a WebSocket of `id` (only this process knows, for sled).
    fn online_somewhere(&self, _id: &str) -> bool {
        false
    }
    /// Ids with a WebSocket open on some node (None: only this process knows, ask it).
    fn online_elsewhere(&self) -> Option<HashSet<String>> {
        None
    }
}
