//! [`RelayBackend`] on NATS JetStream, shared by any number of relay nodes. The layout (one
//! stream with a subject per recipient, KV buckets for registrations, idempotency keys and
//! presence, a core-NATS notification subject per recipient) is in [`layout`]; the reasons
//! are in `docs/relay-scale.md`.
//!
//! Durability: a send is acknowledged to its sender only after JetStream acknowledged the
//! publish, which for an R3 stream means a quorum of servers has it. Any publish failure
//! (no quorum, no responders, timeout) is [`Error::Unavailable`]: the relay answers 503 with
//! `Retry-After` and the sender retries, with its key deduplicated by `Nats-Msg-Id`.
//!
//! Reads go to the stream leader (`STREAM.MSG.GET` with `next_by_subj`), not to direct get:
//! a replica may lag, and a node woken for message N must find N. No consumer is created per
//! recipient, so a million ids cost a million subjects, not a million consumers.
//!
//! The trait's calls are synchronous; each request runs on the runtime through
//! `block_in_place` with a [`OP_DEADLINE`], so a stalled link ends as 503, not a hung request.

pub mod layout;
pub mod migrate;
pub mod setup;

use super::{Error, RelayBackend, Result};
use crate::store::relay_server::{AccountRecord, Enqueued, QueuedMessage};
use async_nats::jetstream::{self, kv};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use layout::{untoken, Layout};
pub use setup::NatsConfig;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest wait for one JetStream request before the relay answers 503.
const OP_DEADLINE: Duration = Duration::from_secs(5);

/// The JetStream store of one relay node. Cheap to clone.
#[derive(Clone)]
pub struct NatsStore {
    client: async_nats::Client,
    js: jetstream::Context,
    stream: jetstream::stream::Stream,
    users: kv::Store,
    sent: kv::Store,
    presence: kv::Store,
    layout: Layout,
    /// This node's name in the presence bucket.
    node: String,
    /// Ids with WebSockets on this node, and how many.
    local_online: Arc<Mutex<HashMap<String, usize>>>,
    rt: tokio::runtime::Handle,
}

/// Whether a JetStream error text says a cap refused the write.
fn cap_error(text: &str) -> Option<Error> {
    if text.contains("maximum messages per subject exceeded") {
        Some(Error::QueueFull)
    } else if text.contains("maximum bytes exceeded")
        || text.contains("maximum messages exceeded")
        || text.contains("insufficient resources")
    {
        Some(Error::StorageFull)
    } else {
        None
    }
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    cap_error(&text).unwrap_or_else(|| Error::Unavailable(format!("{what}: {text}")))
}

fn sent_value(seq: u64, ts: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(16);
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(&ts.to_be_bytes());
    v
}

fn split_sent_value(v: &[u8]) -> Option<(u64, u64)> {
    let seq = u64::from_be_bytes(v.get(..8)?.try_into().ok()?);
    let ts = u64::from_be_bytes(v.get(8..16)?.try_into().ok()?);
    Some((seq, ts))
}

fn decode_account(v: &[u8]) -> Result<AccountRecord> {
    serde_json::from_slice(v).map_err(|e| Error::Backend(format!("unreadable account record: {e}")))
}

impl NatsStore {
    /// Connects and makes sure the stream and buckets exist (see [`setup`]).
    pub async fn open(cfg: &NatsConfig) -> anyhow::Result<NatsStore> {
        let client = setup::connect(cfg).await?;
        let js = jetstream::new(client.clone());
        let layout = Layout::new(&cfg.prefix);
        let h = setup::ensure(&js, &layout, cfg).await?;
        let store = NatsStore {
            client,
            js,
            stream: h.stream,
            users: h.users,
            sent: h.sent,
            presence: h.presence,
            layout,
            node: format!("{:016x}", rand::random::<u64>()),
            local_online: Arc::new(Mutex::new(HashMap::new())),
            rt: tokio::runtime::Handle::current(),
        };
        Ok(store)
    }

    /// Runs `f` to completion from synchronous code, within [`OP_DEADLINE`].
    fn block<F: Future>(&self, what: &str, f: F) -> Result<F::Output> {
        tokio::task::block_in_place(|| self.rt.block_on(tokio::time::timeout(OP_DEADLINE, f)))
            .map_err(|_| Error::Unavailable(format!("{what}: no answer from JetStream in time")))
    }

    /// Refreshes this node's presence entries until `shutdown` (they expire otherwise).
    pub async fn keep_presence(self, shutdown: tokio_util::sync::CancellationToken) {
        let every = setup::PRESENCE_TTL / 3;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
            let ids: Vec<String> = self.lock_online().keys().cloned().collect();
            for id in ids {
                let _ = self
                    .presence
                    .put(layout::token(&id), self.node.clone().into())
                    .await;
            }
        }
        let ids: Vec<String> = self.lock_online().drain().map(|(id, _)| id).collect();
        for id in ids {
            let _ = self.presence.delete(layout::token(&id)).await;
        }
    }

    fn lock_online(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.local_online.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The message `seq`, if it is still in the stream.
    async fn get(&self, seq: u64) -> Result<Option<jetstream::message::StreamMessage>> {
        use jetstream::stream::LastRawMessageErrorKind as K;
        match self.stream.get_raw_message(seq).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if matches!(e.kind(), K::NoMessageFound) => Ok(None),
            Err(e) => Err(unavailable("reading a message", e)),
        }
    }

    /// Arrival time of a duplicate's first copy: from the sent bucket, else the message.
    async fn first_arrival(&self, from: &str, key: &str, seq: u64) -> Result<u64> {
        if let Ok(Some(v)) = self.sent.get(self.layout.sent_key(from, key)).await {
            if let Some((_, ts)) = split_sent_value(&v) {
                return Ok(ts);
            }
        }
        Ok(match self.get(seq).await? {
            Some(m) => serde_json::from_slice::<QueuedMessage>(&m.payload)
                .map(|q| q.ts)
                .unwrap_or_else(|_| crate::time::now_ms()),
            None => crate::time::now_ms(),
        })
    }

    async fn enqueue_async(
        &self,
        to: &str,
        msg: &QueuedMessage,
        key: Option<&str>,
    ) -> Result<Enqueued> {
        let payload = serde_json::to_vec(msg).map_err(|e| Error::Backend(e.to_string()))?;
        let mut headers = async_nats::HeaderMap::new();
        if let Some(k) = key {
            headers.insert("Nats-Msg-Id", self.layout.msg_id(&msg.from, k).as_str());
        }
        let ack = self
            .js
            .publish_with_headers(self.layout.queue_subject(to), headers, payload.into())
            .await
            .map_err(|e| unavailable("publishing", e))?
            .await
            .map_err(|e| unavailable("publishing", e))?;
        let Some(k) = key else {
            return Ok(Enqueued::New(ack.sequence));
        };
        if ack.duplicate {
            let ts = self.first_arrival(&msg.from, k, ack.sequence).await?;
            return Ok(Enqueued::Duplicate {
                seq: ack.sequence,
                ts,
            });
        }
        // The message is stored; losing this write only shortens how long the key is
        // remembered to JetStream's dedup window.
        if let Err(e) = self
            .sent
            .put(
                self.layout.sent_key(&msg.from, k),
                sent_value(ack.sequence, msg.ts).into(),
            )
            .await
        {
            tracing::warn!(error = %e, "could not record an idempotency key");
        }
        Ok(Enqueued::New(ack.sequence))
    }

    async fn pending_async(
        &self,
        to: &str,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<QueuedMessage>> {
        use jetstream::stream::LastRawMessageErrorKind as K;
        let subject = self.layout.queue_subject(to);
        let mut next = match after {
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(s) => s + 1,
            None => 1,
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let got = self
                .stream
                .raw_message_builder()
                .sequence(next)
                .next_by_subject(subject.clone())
                .send()
                .await;
            let m = match got {
                Ok(m) => m,
                Err(e) if matches!(e.kind(), K::NoMessageFound) => break,
                Err(e) => return Err(unavailable("reading a queue", e)),
            };
            next = m.sequence + 1;
            match serde_json::from_slice::<QueuedMessage>(&m.payload) {
                Ok(mut q) => {
                    q.seq = m.sequence;
                    out.push(q);
                }
                Err(e) => {
                    tracing::warn!(seq = m.sequence, error = %e, "skipping an unreadable queued message")
                }
            }
        }
        Ok(out)
    }

    async fn remove_async(&self, to: &str, seq: u64) -> Result<bool> {
        // Only the recipient's own messages: an id from a client is checked against the subject.
        let Some(m) = self.get(seq).await? else {
            return Ok(false);
        };
        if m.subject.as_str() != self.layout.queue_subject(to) {
            return Ok(false);
        }
        match self.stream.delete_message(seq).await {
            Ok(done) => Ok(done),
            Err(e) if e.to_string().contains("no message found") => Ok(false),
            Err(e) => Err(unavailable("deleting a message", e)),
        }
    }

    async fn accounts_async(&self) -> Result<Vec<(String, AccountRecord)>> {
        let mut keys = match self.users.keys().await {
            Ok(k) => k.boxed(),
            Err(e) => return Err(unavailable("listing accounts", e)),
        };
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| unavailable("listing accounts", e))?;
            if let Some(v) = self
                .users
                .get(key.as_str())
                .await
                .map_err(|e| unavailable("reading an account", e))?
            {
                out.push((untoken(&key), decode_account(&v)?));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn create_async(&self, id: &str, rec: &AccountRecord) -> Result<Option<AccountRecord>> {
        let value = serde_json::to_vec(rec).map_err(|e| Error::Backend(e.to_string()))?;
        let key = layout::token(id);
        match self.users.create(key.as_str(), value.into()).await {
            Ok(_) => Ok(None),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                match self.users.get(key.as_str()).await {
                    Ok(Some(v)) => Ok(Some(decode_account(&v)?)),
                    Ok(None) => Err(Error::Unavailable(
                        "account vanished during registration".into(),
                    )),
                    Err(e) => Err(unavailable("reading an account", e)),
                }
            }
            Err(e) => Err(unavailable("registering", e)),
        }
    }
}

impl RelayBackend for NatsStore {
    fn kind(&self) -> &'static str {
        "jetstream"
    }

    fn shared(&self) -> bool {
        true
    }

    fn accounts(&self) -> Result<Vec<(String, AccountRecord)>> {
        self.block("listing accounts", self.accounts_async())?
    }

    fn account(&self, id: &str) -> Result<Option<AccountRecord>> {
        match self.block("reading an account", self.users.get(layout::token(id)))? {
            Ok(Some(v)) => Ok(Some(decode_account(&v)?)),
            Ok(None) => Ok(None),
            Err(e) => Err(unavailable("reading an account", e)),
        }
    }

    fn create_account(&self, id: &str, record: &AccountRecord) -> Result<Option<AccountRecord>> {
        self.block("registering", self.create_async(id, record))?
    }

    fn put_account(&self, id: &str, record: &AccountRecord) -> Result<()> {
        let value = serde_json::to_vec(record).map_err(|e| Error::Backend(e.to_string()))?;
        self.block("renaming", self.users.put(layout::token(id), value.into()))?
            .map_err(|e| unavailable("renaming", e))?;
        Ok(())
    }

    fn queued_counts(&self) -> Result<HashMap<String, usize>> {
        // Shared: the stream enforces the per-recipient cap, nothing is counted per node.
        Ok(HashMap::new())
    }

    fn enqueue(&self, to: &str, msg: &QueuedMessage, key: Option<&str>) -> Result<Enqueued> {
        self.block("publishing", self.enqueue_async(to, msg, key))?
    }

    fn sent(&self, from: &str, key: &str) -> Result<Option<(u64, u64)>> {
        match self.block(
            "reading a key",
            self.sent.get(self.layout.sent_key(from, key)),
        )? {
            Ok(v) => Ok(v.and_then(|v| split_sent_value(&v))),
            Err(e) => Err(unavailable("reading a key", e)),
        }
    }

    fn prune_sent(&self, _before_ms: u64) -> Result<usize> {
        // The sent bucket's max_age expires keys on the servers.
        Ok(0)
    }

    fn high_water(&self) -> Result<u64> {
        // Everything readable in the stream has been acknowledged by a quorum: all visible.
        Ok(u64::MAX)
    }

    fn pending(&self, to: &str, after: Option<u64>, limit: usize) -> Result<Vec<QueuedMessage>> {
        self.block("reading a queue", self.pending_async(to, after, limit))?
    }

    fn remove(&self, to: &str, seq: u64) -> Result<bool> {
        self.block("deleting a message", self.remove_async(to, seq))?
    }

    fn durable(&self) -> BoxFuture<'_, Result<()>> {
        // Publishes and KV writes return only once a quorum stored them.
        async { Ok(()) }.boxed()
    }

    fn flush_now(&self) -> Result<()> {
        self.block("flushing", self.client.flush())?
            .map_err(|e| unavailable("flushing", e))
    }

    fn announce(&self, to: &str, seq: u64) {
        let client = self.client.clone();
        let subject = self.layout.notify_subject(to);
        self.rt.spawn(async move {
            let _ = client.publish(subject, seq.to_string().into()).await;
        });
    }

    fn wakes(&self, id: &str) -> Option<BoxStream<'static, u64>> {
        let sub = self.block(
            "subscribing",
            self.client.subscribe(self.layout.notify_subject(id)),
        );
        match sub {
            Ok(Ok(sub)) => Some(
                sub.filter_map(
                    |m| async move { std::str::from_utf8(&m.payload).ok()?.parse().ok() },
                )
                .boxed(),
            ),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot subscribe to a recipient's notifications");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot subscribe to a recipient's notifications");
                None
            }
        }
    }

    fn set_online(&self, id: &str, online: bool) {
        let changed = {
            let mut map = self.lock_online();
            let n = map.entry(id.to_string()).or_default();
            let was = *n;
            *n = if online {
                was + 1
            } else {
                was.saturating_sub(1)
            };
            let now = *n;
            if now == 0 {
                map.remove(id);
            }
            (was == 0) != (now == 0)
        };
        if !changed {
            return;
        }
        let presence = self.presence.clone();
        let key = layout::token(id);
        let node = self.node.clone();
        self.rt.spawn(async move {
            let failed = match online {
                true => presence
                    .put(key, node.into())
                    .await
                    .err()
                    .map(|e| e.to_string()),
                false => presence.delete(key).await.err().map(|e| e.to_string()),
            };
            if let Some(e) = failed {
                tracing::debug!(error = %e, "presence not updated");
            }
        });
    }

    fn online_somewhere(&self, id: &str) -> bool {
        matches!(
            self.block("reading presence", self.presence.get(layout::token(id))),
            Ok(Ok(Some(_)))
        )
    }

    fn online_elsewhere(&self) -> Option<HashSet<String>> {
        let keys = self.block("reading presence", async {
            match self.presence.keys().await {
                Ok(k) => {
                    k.filter_map(|k| async move { k.ok() })
                        .collect::<Vec<_>>()
                        .await
                }
                Err(_) => Vec::new(),
            }
        });
        Some(
            keys.unwrap_or_default()
                .iter()
                .map(|k| untoken(k))
                .collect(),
        )
    }
}
