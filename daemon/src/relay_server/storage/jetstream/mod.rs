//! [`RelayBackend`] on NATS JetStream, shared by any number of relay nodes. The layout (one
//! stream with a subject per recipient, KV buckets for registrations, idempotency keys and
//! presence, a core-NATS notification subject per recipient) is in [`layout`]; the reasons
//! are in `docs/relay-scale.md`.
//!
//! Durability: a send is acknowledged to its sender only after JetStream acknowledged the
//! publish, which for an R3 stream means a quorum of servers has it. "No responders" (the
//! stream's leader is being elected; nothing was stored) is sent again within the
//! operation's deadline, for every request, reads and KV writes too ([`retry`]). Any other
//! publish failure, or no ack by the deadline (no quorum, timeout), is [`Error::Unavailable`]: the relay answers 503 with `Retry-After` and the sender
//! retries, with its key deduplicated by `Nats-Msg-Id`.
//!
//! Reads: one batch direct get (ADR-31) per call, not a round trip per message. The request
//! goes to `$JS.API.DIRECT.GET.{P}_queue` with a private reply inbox:
//!
//! ```text
//! request  {"seq": FROM, "next_by_subj": "{P}.q.{ID'}", "batch": N}
//! replies  one per message: headers Nats-Subject, Nats-Sequence, Nats-Num-Pending; payload
//!          the queued JSON; then "NATS/1.0 204 EOB" (or "404" when nothing matches)
//! ```
//!
//! Any replica may answer, and one may be a few writes behind the leader. Replicas apply the
//! log in order, so a lagging one holds a prefix of the stream: its answer can stop early,
//! never skip a message in the middle. When an answer is short and the caller needs more
//! (see `known` in [`RelayBackend::pending`]: a poll, a socket's first read, or a socket
//! woken for a message the answer does not reach), one `STREAM.MSG.GET {seq, next_by_subj}`
//! to the leader settles it, and the read goes on from what the leader returned. A lagging
//! replica may also still hold a message already removed; the relay starts reads above what
//! it removed in bulk, and an `ack=1` client deduplicates by id anyway.
//!
//! Removals: messages delivered (seed contract, poll) or acknowledged in order are the head
//! of the recipient's queue, removed in one `purge {filter: "{P}.q.{ID'}", seq: N}`, which
//! deletes the subject's messages below `N` and keeps the rest ([`RelayBackend::remove_below`],
//! one R3 proposal for any number of messages). An ack out of order deletes its message alone,
//! after checking that it is on the caller's own subject. No consumer is created per
//! recipient, so a million ids cost a million subjects, not a million consumers.
//!
//! Each request is awaited with a deadline ([`OP_DEADLINE`]), so a stalled link ends as 503,
//! not a hung request; nothing blocks a runtime worker (only the shutdown flush does).

pub mod layout;
pub mod migrate;
mod retry;
pub mod setup;

use super::{Error, RelayBackend, Result};
use crate::store::relay_server::{AccountRecord, Enqueued, QueuedMessage};
use async_nats::jetstream::{self, kv};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use futures_util::{FutureExt, StreamExt};
use layout::{untoken, Layout};
use retry::settle;
pub use setup::NatsConfig;
use std::collections::{HashMap, HashSet};
use std::future::{Future, IntoFuture};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Longest wait for one JetStream request before the relay answers 503.
const OP_DEADLINE: Duration = Duration::from_secs(5);
/// Most messages one batch direct get asks for (the server's own cap is 1,000).
const MAX_BATCH: usize = 256;

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

/// Awaits `f` within [`OP_DEADLINE`]; later is [`Error::Unavailable`].
async fn deadline<F: Future>(what: &str, f: F) -> Result<F::Output> {
    tokio::time::timeout(OP_DEADLINE, f)
        .await
        .map_err(|_| Error::Unavailable(format!("{what}: no answer from JetStream in time")))
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

    /// Runs `f` to completion from synchronous code, within [`OP_DEADLINE`] (shutdown only).
    fn block<F: Future>(&self, what: &str, f: F) -> Result<F::Output> {
        tokio::task::block_in_place(|| self.rt.block_on(deadline(what, f)))
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
        match settle("reading a message", || self.stream.get_raw_message(seq)).await {
            Ok(m) => Ok(Some(m)),
            Err(e) if matches!(e.kind(), K::NoMessageFound) => Ok(None),
            Err(e) => Err(unavailable("reading a message", e)),
        }
    }

    /// Arrival time of a duplicate's first copy: from the sent bucket, else the message.
    async fn first_arrival(&self, from: &str, key: &str, seq: u64) -> Result<u64> {
        let sent_key = self.layout.sent_key(from, key);
        if let Ok(Some(v)) = settle("reading a key", || self.sent.get(sent_key.as_str())).await {
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

    /// Publishes to the queue stream and waits for JetStream's ack. "No responders" means no
    /// server took the message for the stream (its leader is being elected: the cluster has
    /// just booted, or a node died), so nothing was stored and it is sent again ([`retry`]).
    /// Every other failure is final here.
    async fn publish(
        &self,
        subject: String,
        headers: async_nats::HeaderMap,
        payload: axum::body::Bytes,
    ) -> Result<jetstream::publish::PublishAck> {
        let js = &self.js;
        settle("publishing", || {
            let (s, h, p) = (subject.clone(), headers.clone(), payload.clone());
            async move { js.publish_with_headers(s, h, p).await?.await }
        })
        .await
        .map_err(|e| unavailable("publishing", e))
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
            .publish(self.layout.queue_subject(to), headers, payload.into())
            .await?;
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
        let (sent_key, value) = (
            self.layout.sent_key(&msg.from, k),
            axum::body::Bytes::from(sent_value(ack.sequence, msg.ts)),
        );
        if let Err(e) = settle("recording a key", || {
            self.sent.put(sent_key.as_str(), value.clone())
        })
        .await
        {
            tracing::warn!(error = %e, "could not record an idempotency key");
        }
        Ok(Enqueued::New(ack.sequence))
    }

    /// Up to `limit` messages of `subject` from sequence `from` on, in one batch direct get
    /// (ADR-31): one request, answered by one server (the leader or a replica) with a message
    /// per reply and an end-of-batch marker (status 204); status 404 when none matches.
    /// Unreadable payloads are skipped (and logged); the second value is the highest sequence
    /// returned, readable or not.
    async fn batch_get(
        &self,
        subject: &str,
        from: u64,
        limit: usize,
    ) -> Result<(Vec<QueuedMessage>, Option<u64>)> {
        let inbox = self.client.new_inbox();
        let mut replies = self
            .client
            .subscribe(inbox.clone())
            .await
            .map_err(|e| unavailable("reading a queue", e))?;
        let request = serde_json::json!({
            "seq": from,
            "next_by_subj": subject,
            "batch": limit.clamp(1, MAX_BATCH),
        });
        self.client
            .publish_with_reply(self.layout.direct_get(), inbox, request.to_string().into())
            .await
            .map_err(|e| unavailable("reading a queue", e))?;
        let mut out = Vec::new();
        let mut last = None;
        while let Some(m) = replies.next().await {
            match m.status.map(|s| s.as_u16()) {
                None | Some(200) => {}
                Some(204) => break,
                Some(404) => break,
                // Nobody serves direct gets of the stream yet (see [`retry`]).
                Some(503) => {
                    return Err(Error::Unavailable(
                        "reading a queue: direct get answered 503 no responders".into(),
                    ))
                }
                Some(code) => {
                    let what = m.description.unwrap_or_default();
                    return Err(Error::Unavailable(format!(
                        "reading a queue: direct get answered {code} {what}"
                    )));
                }
            }
            let header = |name: &str| {
                m.headers
                    .as_ref()
                    .and_then(|h| h.get(name))
                    .map(|v| v.as_str().to_string())
            };
            let Some(seq) = header("Nats-Sequence").and_then(|s| s.parse::<u64>().ok()) else {
                // The end-of-batch marker of servers that send it without a status.
                if m.payload.is_empty() {
                    break;
                }
                return Err(Error::Backend(
                    "a direct get reply without Nats-Sequence".into(),
                ));
            };
            if header("Nats-Subject").as_deref() != Some(subject) {
                return Err(Error::Backend(format!(
                    "direct get returned message {seq} of another subject"
                )));
            }
            last = Some(seq);
            match serde_json::from_slice::<QueuedMessage>(&m.payload) {
                Ok(mut q) => {
                    q.seq = seq;
                    out.push(q);
                }
                Err(e) => {
                    tracing::warn!(seq, error = %e, "skipping an unreadable queued message")
                }
            }
            // No Nats-Num-Pending: a server before 2.11 answered one message, not a batch.
            let pending = header("Nats-Num-Pending");
            if out.len() >= limit || pending.is_none_or(|p| p == "0") {
                break;
            }
        }
        Ok((out, last))
    }

    /// The first message of `subject` at or after `from`, asked of the stream leader.
    async fn leader_next(
        &self,
        subject: &str,
        from: u64,
    ) -> Result<Option<jetstream::message::StreamMessage>> {
        use jetstream::stream::LastRawMessageErrorKind as K;
        let got = settle("reading a queue", || {
            self.stream
                .raw_message_builder()
                .sequence(from)
                .next_by_subject(subject.to_string())
                .send()
        })
        .await;
        match got {
            Ok(m) => Ok(Some(m)),
            Err(e) if matches!(e.kind(), K::NoMessageFound) => Ok(None),
            Err(e) => Err(unavailable("reading a queue", e)),
        }
    }

    async fn pending_async(
        &self,
        to: &str,
        after: Option<u64>,
        limit: usize,
        known: Option<u64>,
    ) -> Result<Vec<QueuedMessage>> {
        let subject = self.layout.queue_subject(to);
        let mut next = match after {
            Some(u64::MAX) => return Ok(Vec::new()),
            Some(s) => s + 1,
            None => 1,
        };
        let mut out = Vec::new();
        while out.len() < limit {
            let want = limit - out.len();
            let (batch, last) =
                settle("reading a queue", || self.batch_get(&subject, next, want)).await?;
            out.extend(batch);
            if let Some(last) = last {
                next = last + 1;
            }
            if out.len() >= limit {
                break;
            }
            // Short: the end of the queue, or a replica that has not applied the newest
            // writes yet. It holds a prefix of the stream, so nothing in the middle is missing:
            // only what follows. Ask the leader when the caller needs more than we saw.
            let needed = match known {
                None => true,
                Some(k) => next <= k,
            };
            if !needed {
                break;
            }
            let Some(m) = self.leader_next(&subject, next).await? else {
                break;
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
        match settle("deleting a message", || self.stream.delete_message(seq)).await {
            Ok(done) => Ok(done),
            Err(e) if e.to_string().contains("no message found") => Ok(false),
            Err(e) => Err(unavailable("deleting a message", e)),
        }
    }

    async fn remove_below_async(&self, to: &str, below: u64) -> Result<u64> {
        if below <= 1 {
            return Ok(0);
        }
        let subject = self.layout.queue_subject(to);
        let purged = settle("purging acknowledged messages", || {
            self.stream
                .purge()
                .filter(subject.clone())
                .sequence(below)
                .into_future()
        })
        .await;
        match purged {
            Ok(r) => Ok(r.purged),
            Err(e) => Err(unavailable("purging acknowledged messages", e)),
        }
    }

    async fn accounts_async(&self) -> Result<Vec<(String, AccountRecord)>> {
        let mut keys = match settle("listing accounts", || self.users.keys()).await {
            Ok(k) => k.boxed(),
            Err(e) => return Err(unavailable("listing accounts", e)),
        };
        let mut out = Vec::new();
        while let Some(key) = keys.next().await {
            let key = key.map_err(|e| unavailable("listing accounts", e))?;
            if let Some(v) = settle("reading an account", || self.users.get(key.as_str()))
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
        let value = axum::body::Bytes::from(value);
        let created = settle("registering", || {
            self.users.create(key.as_str(), value.clone())
        })
        .await;
        match created {
            Ok(_) => Ok(None),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {
                match settle("reading an account", || self.users.get(key.as_str())).await {
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

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<(String, AccountRecord)>>> {
        async move { deadline("listing accounts", self.accounts_async()).await? }.boxed()
    }

    fn account<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<AccountRecord>>> {
        async move {
            let key = layout::token(id);
            let got = settle("reading an account", || self.users.get(key.as_str()));
            match deadline("reading an account", got).await? {
                Ok(Some(v)) => Ok(Some(decode_account(&v)?)),
                Ok(None) => Ok(None),
                Err(e) => Err(unavailable("reading an account", e)),
            }
        }
        .boxed()
    }

    fn create_account<'a>(
        &'a self,
        id: &'a str,
        record: &'a AccountRecord,
    ) -> BoxFuture<'a, Result<Option<AccountRecord>>> {
        async move { deadline("registering", self.create_async(id, record)).await? }.boxed()
    }

    fn put_account<'a>(
        &'a self,
        id: &'a str,
        record: &'a AccountRecord,
    ) -> BoxFuture<'a, Result<()>> {
        async move {
            let value = serde_json::to_vec(record).map_err(|e| Error::Backend(e.to_string()))?;
            let (key, value) = (layout::token(id), axum::body::Bytes::from(value));
            let put = settle("renaming", || self.users.put(key.as_str(), value.clone()));
            deadline("renaming", put)
                .await?
                .map_err(|e| unavailable("renaming", e))?;
            Ok(())
        }
        .boxed()
    }

    fn queued_counts(&self) -> Result<HashMap<String, usize>> {
        // Shared: the stream enforces the per-recipient cap, nothing is counted per node.
        Ok(HashMap::new())
    }

    fn enqueue<'a>(
        &'a self,
        to: &'a str,
        msg: &'a QueuedMessage,
        key: Option<&'a str>,
    ) -> BoxFuture<'a, Result<Enqueued>> {
        async move { deadline("publishing", self.enqueue_async(to, msg, key)).await? }.boxed()
    }

    fn sent<'a>(
        &'a self,
        from: &'a str,
        key: &'a str,
    ) -> BoxFuture<'a, Result<Option<(u64, u64)>>> {
        async move {
            let sent_key = self.layout.sent_key(from, key);
            let got = settle("reading a key", || self.sent.get(sent_key.as_str()));
            match deadline("reading a key", got).await? {
                Ok(v) => Ok(v.and_then(|v| split_sent_value(&v))),
                Err(e) => Err(unavailable("reading a key", e)),
            }
        }
        .boxed()
    }

    fn prune_sent(&self, _before_ms: u64) -> Result<usize> {
        // The sent bucket's max_age expires keys on the servers.
        Ok(0)
    }

    fn high_water(&self) -> BoxFuture<'_, Result<u64>> {
        // Everything readable in the stream has been acknowledged by a quorum: all visible.
        super::ready(Ok(u64::MAX))
    }

    fn pending<'a>(
        &'a self,
        to: &'a str,
        after: Option<u64>,
        limit: usize,
        known: Option<u64>,
    ) -> BoxFuture<'a, Result<Vec<QueuedMessage>>> {
        async move {
            deadline(
                "reading a queue",
                self.pending_async(to, after, limit, known),
            )
            .await?
        }
        .boxed()
    }

    fn remove<'a>(&'a self, to: &'a str, seq: u64) -> BoxFuture<'a, Result<bool>> {
        async move { deadline("deleting a message", self.remove_async(to, seq)).await? }.boxed()
    }

    fn remove_below<'a>(&'a self, to: &'a str, below: u64) -> BoxFuture<'a, Result<u64>> {
        async move { deadline("purging", self.remove_below_async(to, below)).await? }.boxed()
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

    fn wakes<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Option<BoxStream<'static, u64>>> {
        async move {
            let subject = self.layout.notify_subject(id);
            match deadline("subscribing", self.client.subscribe(subject)).await {
                Ok(Ok(sub)) => Some(
                    sub.filter_map(|m| async move {
                        std::str::from_utf8(&m.payload).ok()?.parse().ok()
                    })
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
        .boxed()
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

    fn online_somewhere<'a>(&'a self, id: &'a str) -> BoxFuture<'a, bool> {
        async move {
            matches!(
                deadline("reading presence", self.presence.get(layout::token(id))).await,
                Ok(Ok(Some(_)))
            )
        }
        .boxed()
    }

    fn online_elsewhere(&self) -> BoxFuture<'_, Option<HashSet<String>>> {
        async move {
            let keys = deadline("reading presence", async {
                match self.presence.keys().await {
                    Ok(k) => {
                        k.filter_map(|k| async move { k.ok() })
                            .collect::<Vec<_>>()
                            .await
                    }
                    Err(_) => Vec::new(),
                }
            })
            .await;
            Some(
                keys.unwrap_or_default()
                    .iter()
                    .map(|k| untoken(k))
                    .collect(),
            )
        }
        .boxed()
    }
}
