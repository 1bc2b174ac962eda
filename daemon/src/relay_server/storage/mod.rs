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
//! The calls are async; sled answers at once, the JetStream backend awaits each request with
//! a deadline (see [`jetstream`]). A store that cannot answer within it is
//! [`Error::Unavailable`]: the relay answers 503 with `Retry-After`, and nothing is
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
///
/// The calls that reach the store are async (boxed futures, so the trait stays usable as
/// `dyn`): a shared store waits on the network without holding a runtime worker. Sled's
/// answers are ready at once (its work is local and short).
pub trait RelayBackend: Send + Sync + 'static {
    /// Short name for logs (`sled`, `jetstream`).
    fn kind(&self) -> &'static str;
    /// Whether other relay processes share this store (see the module doc).
    fn shared(&self) -> bool {
        false
    }
    /// Every registered account.
    fn accounts(&self) -> BoxFuture<'_, Result<Vec<(String, AccountRecord)>>>;
    /// One account, if registered.
    fn account<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<AccountRecord>>>;
    /// Creates `id` unless it exists (atomically); returns the existing record when it does.
    fn create_account<'a>(
        &'a self,
        id: &'a str,
        record: &'a AccountRecord,
    ) -> BoxFuture<'a, Result<Option<AccountRecord>>>;
    /// Replaces the record of `id` (rename).
    fn put_account<'a>(
        &'a self,
        id: &'a str,
        record: &'a AccountRecord,
    ) -> BoxFuture<'a, Result<()>>;
    /// Queued messages per recipient (read at start by an unshared store's only process).
    fn queued_counts(&self) -> Result<HashMap<String, usize>>;
    /// Appends `msg` to `to`'s queue; a sender's idempotency `key` seen before queues nothing.
    /// A shared store refuses beyond its per-recipient cap with [`Error::QueueFull`].
    fn enqueue<'a>(
        &'a self,
        to: &'a str,
        msg: &'a QueuedMessage,
        key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Enqueued>>;
    /// The first send under `from`'s idempotency `key`, if remembered: (seq, arrival ms).
    fn sent<'a>(&'a self, from: &'a str, key: &'a str)
        -> BoxFuture<'a, Result<Option<(u64, u64)>>>;
    /// Forgets idempotency keys older than `before_ms`; how many. Synchronous: a long local
    /// scan, run on a blocking thread.
    fn prune_sent(&self, before_ms: u64) -> Result<usize>;
    /// A sequence number at or above every message stored before this call.
    fn high_water(&self) -> BoxFuture<'_, Result<u64>>;
    /// Up to `limit` messages of `to`, oldest first, with seq > `after`.
    ///
    /// A shared store may answer from a replica a few writes behind its leader (see
    /// [`jetstream`]); `known` says how current the answer must be. `None`: whenever it has
    /// fewer than `limit` messages, the store makes sure with its leader that nothing follows
    /// (a poll, a socket's first read). `Some(seq)`: the caller was told message `seq` is
    /// queued, so only an answer that stops short of `seq` is checked (a socket woken up).
    fn pending<'a>(
        &'a self,
        to: &'a str,
        after: Option<u64>,
        limit: usize,
        known: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<QueuedMessage>>>;
    /// Deletes message `seq` of `to`; true when it was there (and was `to`'s).
    fn remove<'a>(&'a self, to: &'a str, seq: u64) -> BoxFuture<'a, Result<bool>>;
    /// Deletes every message of `to` with seq < `below`, in one request where the store can;
    /// how many. The caller knows each of them was delivered or acknowledged.
    fn remove_below<'a>(&'a self, to: &'a str, below: u64) -> BoxFuture<'a, Result<u64>>;
    /// Resolves once every write made so far is durable.
    fn durable(&self) -> BoxFuture<'_, Result<()>>;
    /// Flushes synchronously (shutdown).
    fn flush_now(&self) -> Result<()>;
    /// Tells other nodes that `to` has message `seq` queued (durable already).
    fn announce(&self, _to: &str, _seq: u64) {}
    /// Sequence numbers announced for `id` by any node, while the stream is held.
    fn wakes<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, Option<BoxStream<'static, u64>>> {
        ready(None)
    }
    /// Records that this node holds (or no longer holds) a WebSocket of `id`.
    fn set_online(&self, _id: &str, _online: bool) {}
    /// Whether some node holds a WebSocket of `id` (only this process knows, for sled).
    fn online_somewhere<'a>(&'a self, _id: &'a str) -> BoxFuture<'a, bool> {
        ready(false)
    }
    /// Ids with a WebSocket open on some node (None: only this process knows, ask it).
    fn online_elsewhere(&self) -> BoxFuture<'_, Option<HashSet<String>>> {
        ready(None)
    }
}

/// A future already resolved to `v` (a local store's answer).
pub(crate) fn ready<'a, T: Send + 'a>(v: T) -> BoxFuture<'a, T> {
    Box::pin(std::future::ready(v))
}
