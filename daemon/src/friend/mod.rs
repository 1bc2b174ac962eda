//! The `friend` transport: this daemon's trust layer ([`crate::trust`]) in the registry.
//!
//! It owns the [`Trust`] engine (identity, pinned friends, the envelope checks) so that the
//! control handlers (`clawlink id`, `clawlink friend ...`) reach it like any protocol's
//! handle, through [`crate::state::State::transport`], and its `status` row (our id, epoch,
//! and every refusal count) shows beside the transports'.
//!
//! Envelopes travel as text inside the other transports (a relay `message`, a Nexus `text`,
//! an HTTP body):
//!
//! - **out** ([`transport`]): `clawlink send --to FRIEND`, invite accepts, key updates and
//!   receipts are outbox records of kind `friend`, delivered over the friend's addresses in
//!   preference order, falling back to the next when one is down or refuses;
//! - **in** ([`open`]): any inbound path hands a `cle1:` text to the [`Opener`] hook of the
//!   ingest, which opens it and queues the signed receipt back, batched with the other
//!   receipts for that friend ([`acks`]) when its hello said it reads them; [`direct`] serves
//!   `POST /envelope` for friends that reach this daemon directly; `friend open` takes one
//!   received by any other means.

pub mod acks;
pub mod direct;
pub mod open;
pub mod transport;

use crate::inbound::Opener;
use crate::status::StatusSource;
use crate::store::inbox::{NewMessage, Stored};
use crate::transport::{BoxFuture, Context, WeakRegistry};
use crate::trust::engine::{Outgoing, TrustError};
use crate::trust::Trust;
use clawlink::proto::ConnectionRow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;
use tokio::sync::{broadcast, mpsc};

pub use acks::Reply;

/// The trust layer as a transport.
pub struct Friends {
    /// Identity, friends and the envelope checks.
    pub trust: Arc<Trust>,
    /// The way into the inbox, for opened messages.
    pub ingest: crate::inbound::Ingest,
    /// The daemon's HTTP client (direct deliveries).
    http: reqwest::Client,
    /// The other transports, which carry envelopes (set once they are all started).
    registry: OnceLock<WeakRegistry>,
    /// Receipts as they arrive: `(message id, status)`.
    receipts: broadcast::Sender<(String, String)>,
    /// Answers to queue in the outbox (receipts of envelopes that came in), for [`acks::run`].
    replies: mpsc::UnboundedSender<Reply>,
    replies_rx: Mutex<Option<mpsc::UnboundedReceiver<Reply>>>,
    /// Addresses that failed recently, tried last until then.
    down: Mutex<HashMap<String, Instant>>,
    /// Messages a server took whose receipt has not come yet, with when they were last sent
    /// (see [`transport::RESEND_AFTER`]).
    awaiting: Mutex<HashMap<String, transport::Watch>>,
    /// Receipt envelopes queued in the outbox for friends (`status`: `receipts_queued`).
    receipts_queued: AtomicU64,
    /// Message ids the batched receipts among them answer (`status`: `receipt_ids_queued`).
    receipt_ids: AtomicU64,
}

/// Loads the identity (creating it on first start) and prunes seen ids older than the window.
pub fn start(ctx: &Context) -> anyhow::Result<Arc<Friends>> {
    let trust = Trust::load(
        ctx.data_dir.join("identity.key"),
        crate::store::trust::TrustStore::open(&ctx.db)?,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let oldest = crate::time::now_ms().saturating_sub(crate::trust::replay::MAX_AGE_MS);
    let pruned = trust.store().prune_seen(oldest)?;
    tracing::info!(id = %trust.identity().id, pruned_seen = pruned, "clawlink identity loaded");
    let (replies, replies_rx) = mpsc::unbounded_channel();
    let friends = Arc::new(Friends {
        trust: Arc::new(trust),
        ingest: ctx.ingest.clone(),
        http: ctx.http.clone(),
        registry: OnceLock::new(),
        receipts: broadcast::channel(1024).0,
        replies,
        replies_rx: Mutex::new(Some(replies_rx)),
        down: Mutex::new(HashMap::new()),
        awaiting: Mutex::new(HashMap::new()),
        receipts_queued: AtomicU64::new(0),
        receipt_ids: AtomicU64::new(0),
    });
    let opener: Arc<dyn Opener> = friends.clone();
    ctx.ingest.set_opener(Arc::downgrade(&opener));
    let rewatched = friends.rewatch(&crate::transport::OutboxStore::open(&ctx.db)?)?;
    if rewatched > 0 {
        tracing::info!(
            messages = rewatched,
            "watching again for receipts of messages sent before the restart"
        );
    }
    // Friends pinned before this build (or whose hello was never queued) learn what it reads.
    // An accepted invite the inviter has not confirmed waits: it may not have pinned us yet.
    for f in friends.trust.store().friends()? {
        if f.confirmed && f.pending.is_none() {
            if let Some(r) = friends.hello(&f.name, false) {
                friends.send(r);
            }
        }
    }
    ctx.tracker.spawn(transport::resend_unconfirmed(
        friends.clone(),
        ctx.shutdown.clone(),
    ));
    Ok(friends)
}

impl Friends {
    /// Lets the friend transport deliver through the other transports.
    pub fn attach(&self, registry: WeakRegistry) {
        let _ = self.registry.set(registry);
    }

    /// Announces a receipt to whoever waits on that message (`send --wait=stored`).
    pub fn receipt_arrived(&self, id: &str, status: &str) {
        self.forget(id);
        let _ = self.receipts.send((id.to_string(), status.to_string()));
    }

    /// After a restart: watches again every message to a friend that a server took before it
    /// and whose receipt has not come (the outbox keeps them, state `delivered`, until a day
    /// after), so it is sent again [`transport::RESEND_AFTER`] from now unless the receipt
    /// arrives first. Returns how many.
    fn rewatch(&self, outbox: &crate::transport::OutboxStore) -> crate::store::Result<usize> {
        let now_ms = crate::time::now_ms();
        let due: Vec<crate::transport::Record> = outbox
            .all()?
            .into_iter()
            .filter(|r| {
                matches!(&r.payload, crate::transport::Payload::Friend(p) if p.kind == "message")
                    && r.state == clawlink::proto::DeliveryState::Delivered
                    && r.deadline_ms > now_ms
                    && self.receipt_status(&r.id).is_none()
            })
            .collect();
        let n = due.len();
        let mut awaiting = self.awaiting.lock().unwrap_or_else(|p| p.into_inner());
        for r in due {
            awaiting.insert(r.id.clone(), transport::Watch::new(r));
        }
        Ok(n)
    }

    /// Stops watching message `id` for a late receipt.
    fn forget(&self, id: &str) {
        self.awaiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Receipts as they arrive.
    pub fn subscribe_receipts(&self) -> broadcast::Receiver<(String, String)> {
        self.receipts.subscribe()
    }

    /// The latest receipt status of message `id` (hex), if one arrived.
    pub fn receipt_status(&self, id: &str) -> Option<String> {
        let id = crate::trust::unhex::<16>(id)?;
        Some(self.trust.store().receipt(&id).ok()??.status)
    }

    /// Our hello to friend `name` as a reply to queue, unless that friend was told this
    /// build's features before and not `again` (see [`crate::trust::payload::HelloBody`]).
    pub fn hello(&self, name: &str, again: bool) -> Option<Reply> {
        match self.trust.hello(name, again) {
            Ok(o) => o.map(|o| Reply::Sealed(o, "hello")),
            Err(e) => {
                tracing::debug!(error = %e, friend = %name, "no hello queued");
                None
            }
        }
    }

    /// Queues `reply` (already sealed) to be sent through the outbox.
    pub fn send_reply(&self, reply: Option<Outgoing>, kind: &'static str) {
        if let Some(o) = reply {
            let _ = self.replies.send(Reply::Sealed(o, kind));
        }
    }

    /// Queues `reply`: sealed, or an ack to batch.
    pub fn send(&self, reply: Reply) {
        let _ = self.replies.send(reply);
    }

    /// Queues `ack` to be answered by a receipt, batched with others for its friend.
    pub fn send_ack(&self, ack: acks::Ack) {
        let _ = self.replies.send(Reply::Ack(ack));
    }

    /// The queue of replies, for the one task that moves them into the outbox.
    pub fn take_replies(&self) -> Option<mpsc::UnboundedReceiver<Reply>> {
        self.replies_rx
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

/// Moves queued replies into the outbox until `shutdown`, receipts batched per friend (see
/// [`acks`]; a reply not yet queued then is sent again when its envelope is redelivered: the
/// sender retries until it has a receipt).
pub async fn send_replies(
    friends: Arc<Friends>,
    replies: mpsc::UnboundedReceiver<Reply>,
    outbound: crate::transport::Outbound,
    ttl_secs: u64,
    shutdown: tokio_util::sync::CancellationToken,
) {
    acks::run(friends, replies, outbound, ttl_secs, shutdown).await
}

impl Opener for Friends {
    fn answer(
        &self,
        msg: &clawlink::proto::InboxMessage,
        status: crate::trust::payload::ReceiptStatus,
        reason: Option<&str>,
    ) {
        let (Some(friend), Some(id)) = (
            msg.meta.get("friend").and_then(serde_json::Value::as_str),
            msg.meta
                .get("envelope_id")
                .and_then(serde_json::Value::as_str)
                .and_then(crate::trust::unhex::<16>),
        ) else {
            return;
        };
        self.send_ack(acks::Ack::new(friend, id, status, reason));
    }

    fn open(&self, msg: NewMessage) -> BoxFuture<'_, crate::store::Result<Stored>> {
        Box::pin(async move {
            // Our own envelope echoed by a Nexus session: nothing to open.
            if msg.meta.get("own") == Some(&serde_json::Value::Bool(true)) {
                return Ok(Stored::Consumed);
            }
            match open::open(self, msg.message.trim(), &msg.source).await {
                Ok(h) => {
                    if let Some(ack) = h.ack {
                        self.send_ack(ack);
                    }
                    self.send_reply(h.reply, "receipt");
                    for r in h.later {
                        self.send(r);
                    }
                    Ok(h.stored)
                }
                Err(TrustError::Store(e)) => Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, via = %msg.source, "sealed envelope not taken in");
                    Ok(Stored::Consumed)
                }
            }
        })
    }
}

impl StatusSource for Friends {
    fn rows(&self) -> Vec<ConnectionRow> {
        let me = self.trust.identity();
        let (refused, accepted) = self.trust.counts();
        let mut info: std::collections::BTreeMap<String, String> = refused
            .into_iter()
            .map(|(k, n)| (format!("refused_{k}"), n.to_string()))
            .collect();
        info.insert("accepted".into(), accepted.to_string());
        let queued = |n: &AtomicU64| n.load(Ordering::Relaxed).to_string();
        info.insert("receipts_queued".into(), queued(&self.receipts_queued));
        info.insert("receipt_ids_queued".into(), queued(&self.receipt_ids));
        info.insert("epoch".into(), me.current.epoch.to_string());
        vec![ConnectionRow {
            kind: "trust".into(),
            target: me.id.to_string(),
            state: "ready".into(),
            info,
            ..Default::default()
        }]
    }
}
