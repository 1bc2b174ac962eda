//! Acting on decisions: what the local-agent worker does with each inbound message.
//!
//! One batch is the messages released from review (`policy_ready`, routed at their release
//! level) followed by the new ones (`agent_pending`), oldest first. For each:
//!
//! | route | action | audit `action` |
//! |---|---|---|
//! | own | marked read, nothing else | `own` |
//! | block | nothing (a friend gets a signed `rejected` receipt) | `blocked` |
//! | hold | kept in the review queue | `held` |
//! | notice | one notice per sender for the whole batch, with the count, into the main session by `[local_gateway] method` (`system-event` by default) | `notified` |
//! | session | `/hooks/agent` into the sender's session (a friend gets a signed `delivered` receipt; under `converse` the reply is owed, see [`super::converse`]) | `delivered` |
//!
//! Without `[policy] hooks_token` there is no way to reach a peer session, so a message that
//! would be delivered gets the notice instead (the content stays in the inbox).
//!
//! A message the gateway refuses for good (a 4xx other than 401/403/408/429) is skipped with
//! `gateway-rejected`, so it cannot block the queue.
//!
//! A message leaves its queue right after its action succeeded, and its audit record is
//! appended then; the log is fsynced before the batch returns, also when a gateway call
//! failed. A failed call leaves the rest of the batch queued for the worker's retry, which
//! decides those messages again (a rate window or exchange count may then count one twice,
//! which only ever lowers a level).

use super::hooks::Hooks;
use super::{Engine, Level, Outcome, Route, Sender, Settings};
use crate::config::LocalGatewayConfig;
use crate::gateway::{Delivery, GatewayError, Pool};
use crate::store::converse::Owed;
use crate::store::inbox::Inbox;
use crate::store::Db;
use crate::trust::payload::ReceiptStatus;
use clawlink::proto::InboxMessage;
use std::collections::BTreeMap;

/// Where a message of the batch came from (so it leaves the right queue).
#[derive(Debug, Clone, Copy)]
pub enum Queue {
    /// `agent_pending` (new).
    Pending,
    /// `policy_ready` (released from review at this level).
    Ready(Level),
}

/// One message to route.
pub struct Item {
    /// The message.
    pub msg: InboxMessage,
    /// Its queue.
    pub queue: Queue,
}

/// What a batch did.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    /// Messages whose content reached a peer session.
    pub delivered: u64,
    /// Notices sent (one per sender per batch).
    pub notices: u64,
    /// Messages handled in any way.
    pub handled: u64,
}

fn store_failed(e: crate::store::StoreError) -> GatewayError {
    GatewayError::Local {
        detail: format!("the policy state cannot be written: {e}"),
    }
}

/// Takes the next batch: released messages first, then new ones; at most `limit`.
pub fn next_batch(engine: &Engine, inbox: &Inbox, limit: usize) -> crate::store::Result<Vec<Item>> {
    let mut out = Vec::new();
    for (id, level) in engine.store.ready(limit)? {
        match inbox.get(id)? {
            Some(msg) => out.push(Item {
                msg,
                queue: Queue::Ready(level),
            }),
            None => engine.store.ready_done(id)?,
        }
    }
    let room = limit.saturating_sub(out.len());
    if room > 0 {
        out.extend(inbox.agent_pending(room)?.into_iter().map(|msg| Item {
            msg,
            queue: Queue::Pending,
        }));
    }
    Ok(out)
}

fn done(local: &Local<'_>, it: &Item) -> crate::store::Result<()> {
    match it.queue {
        Queue::Pending => local.inbox.agent_delivered(it.msg.id),
        Queue::Ready(_) => local.engine.store.ready_done(it.msg.id),
    }
}

/// The messages of one sender that get a single notice: sender, source, and each message with
/// its outcome.
type NoticeGroup = (Sender, String, Vec<(Item, Outcome)>);

/// The local gateway as the router uses it.
pub struct Local<'a> {
    /// Its `[local_gateway]` section (notices use its URL, token, method and session).
    pub gateway: &'a LocalGatewayConfig,
    /// Its hooks (deliveries), when `[policy] hooks_token` is set.
    pub hooks: Option<Hooks>,
    /// The gateway client (notices; its device id keys the idempotency keys).
    pub pool: &'a Pool,
    /// The inbox.
    pub inbox: &'a Inbox,
    /// The way in (signed `delivered`/`rejected` receipts to friends go through it).
    pub ingest: &'a crate::inbound::Ingest,
    /// The store (durability of a batch).
    pub db: &'a Db,
    /// The policy engine.
    pub engine: &'a Engine,
}

/// Routes a batch.
pub async fn route_batch(
    local: &Local<'_>,
    batch: Vec<Item>,
    set: &Settings,
) -> Result<Counts, GatewayError> {
    let idem = |id| super::local_agent::idempotency_key(local.pool.device_id(), id);
    let engine: &Engine = local.engine;
    let mut counts = Counts::default();
    let mut notices: BTreeMap<String, NoticeGroup> = BTreeMap::new();
    let mut failure = None;
    for it in batch {
        let forced = match it.queue {
            Queue::Ready(l) => Some(l),
            Queue::Pending => None,
        };
        let mut o = engine.decide(&it.msg, forced, set).map_err(store_failed)?;
        if local.hooks.is_none() && matches!(o.route, Route::Session { .. }) {
            o.route = Route::Notice;
            o.decision.applied = Level::Notify;
            o.decision
                .reason
                .push_str("; lowered to notify: [policy] hooks_token is not set");
        }
        let action = match &o.route {
            Route::Own => {
                local.inbox.mark_read(it.msg.id).map_err(store_failed)?;
                "own"
            }
            Route::Block => {
                local
                    .ingest
                    .answer(&it.msg, ReceiptStatus::Rejected, Some("blocked"));
                "blocked"
            }
            Route::Hold => "held",
            Route::Notice => {
                let e = notices
                    .entry(o.sender.key())
                    .or_insert_with(|| (o.sender.clone(), it.msg.source.clone(), Vec::new()));
                e.2.push((it, o));
                continue;
            }
            Route::Session {
                key,
                text,
                converse,
            } => {
                let Some(h) = &local.hooks else {
                    continue;
                };
                match h.agent(key, text, &idem(it.msg.id)).await {
                    Ok(run) if *converse && !run.is_empty() => {
                        // Owed before the message leaves its queue: see `store::converse`.
                        engine
                            .converse
                            .put(&Owed {
                                id: it.msg.id,
                                run_id: run,
                                session: key.clone(),
                                sender: o.sender.key(),
                                hops: super::hops(&it.msg),
                                started_ms: crate::time::now_ms(),
                                agent_run: None,
                                sealed: None,
                            })
                            .map_err(store_failed)?;
                        engine.converse_wake().notify_one();
                    }
                    Ok(_) if *converse => {
                        tracing::warn!(
                            id = it.msg.id,
                            "the gateway gave no run id: the agent's reply cannot be sent back"
                        );
                    }
                    Ok(_) => {}
                    Err(e @ GatewayError::Rejected { .. }) => {
                        tracing::warn!(id = it.msg.id, error = %e, "the local gateway rejected a message; skipped");
                        engine
                            .record(&it.msg, &o, "gateway-rejected")
                            .map_err(store_failed)?;
                        done(local, &it).map_err(store_failed)?;
                        continue;
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
                counts.delivered += 1;
                local.ingest.answer(&it.msg, ReceiptStatus::Delivered, None);
                "delivered"
            }
        };
        engine.record(&it.msg, &o, action).map_err(store_failed)?;
        done(local, &it).map_err(store_failed)?;
        counts.handled += 1;
    }
    for (_, (sender, source, items)) in notices {
        if failure.is_some() {
            break;
        }
        let first = items.first().map_or(0, |(it, _)| it.msg.id);
        let g = local.gateway;
        let delivery = Delivery {
            method: g.method.parse()?,
            session: g.session.clone().filter(|s| !s.is_empty()),
            text: super::frame::notice(&sender, &source, items.len()),
            idempotency_key: format!("{}-notice", idem(first)),
        };
        match local.pool.send_message(&g.url, &g.token, &delivery).await {
            Ok(_) => {}
            Err(e @ GatewayError::Rejected { .. }) => {
                tracing::warn!(error = %e, "the local gateway rejected a notice; skipped");
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
        counts.notices += 1;
        for (it, o) in items {
            engine
                .record(&it.msg, &o, "notified")
                .map_err(store_failed)?;
            done(local, &it).map_err(store_failed)?;
            counts.handled += 1;
        }
    }
    engine.audit.sync().map_err(store_failed)?;
    local.db.durable().await.map_err(store_failed)?;
    match failure {
        Some(e) => Err(e),
        None => Ok(counts),
    }
}
