//! `/ws`: one task per WebSocket, pushing the account's queue as it fills.
//!
//! The task owns the socket and selects on: shutdown, the account's wake channel (bumped when
//! an enqueue is durable; only durable messages are pushed), frames from the client, and a
//! 30 s ping tick (a peer silent for 90 s is dropped, so `online` stays true). Each wake-up
//! reads up to [`BATCH`] queued messages in one store call (one batch direct get with
//! JetStream) and writes them with one flush. Two delivery contracts:
//!
//! - **seed** (no `ack=1`): under the account's drain lock, send a batch of the oldest queued
//!   messages, flush, then delete them, all in one call (they are the head of the queue).
//!   Push = delivered, as the seed client expects.
//! - **ack** (`ack=1`): send messages after a per-connection cursor, keep them queued, and
//!   delete them only when the client acks their ids: acks in push order remove the acked
//!   head of the queue in one call, an ack out of order removes just that message (see
//!   [`super::acks`]). At most [`WINDOW`] may be unacked; then the task waits for acks. A new
//!   connection starts from the oldest queued message, so whatever was pushed but not acked
//!   is pushed again (same id).
//!
//! With a shared store a read may be answered by a replica a few writes behind; see
//! [`super::storage::RelayBackend::pending`] for how a socket makes sure it misses nothing.
//!
//! Buffers are kept small (4 KiB read, 8 KiB write) so ten thousand idle sockets stay cheap.

use super::acks::{spawn_remover, Acks, Remover};
use super::api::{query_auth, wire_message};
use super::error::ApiError;
use super::query::RawQuery;
use super::state::{Account, Relay};
use crate::relay::wire::{AckFrame, Connected, FrameKind, MessageId, Push};
use crate::store::relay_server::QueuedMessage;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawQuery as Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::{timeout, Instant};

/// Most messages pushed but not yet acked, per ack-mode connection.
pub(crate) const WINDOW: usize = 1024;
const BATCH: usize = 64;
const PING_EVERY: Duration = Duration::from_secs(30);
const IDLE_LIMIT: Duration = Duration::from_secs(90);
const WRITE_DEADLINE: Duration = Duration::from_secs(30);

/// Counts one open socket of an account for as long as it lives.
struct Online(Arc<Account>);

impl Online {
    fn take(account: &Arc<Account>, max: usize) -> Result<Online, ApiError> {
        if account.online.fetch_add(1, Ordering::AcqRel) >= max {
            account.online.fetch_sub(1, Ordering::AcqRel);
            return Err(ApiError::too_many(
                "too many open WebSockets for this id",
                5,
            ));
        }
        Ok(Online(Arc::clone(account)))
    }
}

impl Drop for Online {
    fn drop(&mut self) {
        self.0.online.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(crate) async fn upgrade(
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let query = RawQuery::parse(q.as_deref());
    let account = query_auth(&relay, &query, &headers, peer).await?;
    let ack = query.flag("ack");
    let ws = ws.map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "this endpoint needs a WebSocket upgrade",
        )
    })?;
    let online = Online::take(&account, relay.cfg.max_ws_per_id)?;
    let token = relay.sessions.token();
    tracing::debug!(id = %account.id, ack, "websocket open");
    let ws = ws
        .read_buffer_size(4 << 10)
        .write_buffer_size(8 << 10)
        .max_message_size(64 << 10)
        .max_frame_size(64 << 10);
    Ok(ws
        .on_upgrade(move |socket| async move {
            let remote = follow_other_nodes(&relay, &account).await;
            relay.store.set_online(&account.id, true);
            let reason = session(socket, &relay, &account, ack).await;
            tracing::debug!(id = %account.id, reason, "websocket closed");
            relay.store.set_online(&account.id, false);
            if let Some(task) = remote {
                task.abort();
            }
            drop((online, token));
        })
        .into_response())
}

/// With a shared store, wakes this socket when another node queues a message for it.
async fn follow_other_nodes(
    relay: &Arc<Relay>,
    account: &Arc<Account>,
) -> Option<tokio::task::JoinHandle<()>> {
    use futures_util::StreamExt;
    let mut wakes = relay.store.wakes(&account.id).await?;
    let (relay, account) = (Arc::clone(relay), Arc::clone(account));
    Some(tokio::spawn(async move {
        while let Some(seq) = wakes.next().await {
            relay.published(&account, seq);
        }
    }))
}

async fn session(
    mut socket: WebSocket,
    relay: &Arc<Relay>,
    account: &Arc<Account>,
    ack: bool,
) -> &'static str {
    let hello = Connected {
        ack,
        id: account.id.clone(),
        name: account.name(),
        kind: FrameKind::Connected,
    };
    let Ok(hello) = serde_json::to_string(&hello) else {
        return "encode error";
    };
    if !matches!(
        timeout(WRITE_DEADLINE, socket.send(Message::Text(hello.into()))).await,
        Ok(Ok(()))
    ) {
        return "write error";
    }
    let mut wake = account.wake.subscribe();
    let mut acks = Acks::default();
    let remover = spawn_remover(relay, account);
    // Until a read has reached the end of the queue, reads make sure with the store's leader
    // that they saw all of it (messages queued before the socket opened were announced to
    // nobody); after that, a read only needs to reach the newest message it was woken for.
    let mut strict = true;
    let mut want = true;
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_seen = Instant::now();
    loop {
        if want {
            let woken = *wake.borrow_and_update();
            let known = (!strict).then_some(woken);
            want = false;
            let done = match ack {
                true => deliver_acked(&mut socket, relay, account, &mut acks, known).await,
                false => deliver_seed(&mut socket, relay, account, known).await,
            };
            match done {
                Ok(caught_up) => strict &= !caught_up,
                Err(reason) => return reason,
            }
        }
        tokio::select! {
            _ = relay.shutdown.cancelled() => {
                let bye = CloseFrame { code: 1001, reason: "relay shutting down".into() };
                let _ = timeout(Duration::from_secs(1), socket.send(Message::Close(Some(bye)))).await;
                return "shutdown";
            }
            changed = wake.changed() => match changed {
                Ok(()) => want = true,
                Err(_) => return "account gone",
            },
            frame = socket.recv() => match frame {
                None => return "peer gone",
                Some(Err(_)) => return "read error",
                Some(Ok(Message::Close(_))) => return "peer closed",
                Some(Ok(Message::Text(text))) => {
                    last_seen = Instant::now();
                    if ack {
                        want |= on_ack(relay, account, &mut acks, &remover, text.as_str()).await;
                    }
                }
                Some(Ok(_)) => last_seen = Instant::now(),
            },
            _ = ping.tick() => {
                if last_seen.elapsed() > IDLE_LIMIT {
                    return "idle";
                }
                if !matches!(timeout(WRITE_DEADLINE, socket.send(Message::Ping(Default::default()))).await, Ok(Ok(()))) {
                    return "write error";
                }
            }
        }
    }
}

/// Writes `batch` as message frames and flushes, within one deadline.
async fn write_batch(socket: &mut WebSocket, batch: &[QueuedMessage]) -> Result<(), &'static str> {
    let write = async {
        for m in batch {
            let frame = serde_json::to_string(&Push {
                kind: FrameKind::Message,
                id: Some(MessageId::of(m.seq)),
                data: wire_message(m),
            })
            .map_err(|_| "encode error")?;
            socket
                .feed(Message::Text(frame.into()))
                .await
                .map_err(|_| "write error")?;
        }
        socket.flush().await.map_err(|_| "write error")
    };
    timeout(WRITE_DEADLINE, write)
        .await
        .map_err(|_| "write timeout")?
}

/// Seed contract: push the oldest messages, then delete them (all at once: they are the head
/// of the queue).
async fn deliver_seed(
    socket: &mut WebSocket,
    relay: &Relay,
    account: &Account,
    known: Option<u64>,
) -> Result<bool, &'static str> {
    let _drain = account.drain.lock().await;
    loop {
        let mark = relay.visible(account);
        let mut batch = relay
            .pending(account, None, BATCH, known)
            .await
            .map_err(|e| store_failed(&e))?;
        let fetched = batch.len();
        batch.retain(|m| m.seq <= mark);
        let Some(last) = batch.last().map(|m| m.seq) else {
            return Ok(true);
        };
        write_batch(socket, &batch).await?;
        relay
            .remove_below(account, last.saturating_add(1))
            .await
            .map_err(|e| store_failed(&e))?;
        if fetched < BATCH || batch.len() < fetched {
            return Ok(true);
        }
    }
}

/// Ack contract: push what follows the socket's cursor while the window has room; delete
/// nothing.
async fn deliver_acked(
    socket: &mut WebSocket,
    relay: &Relay,
    account: &Account,
    acks: &mut Acks,
    known: Option<u64>,
) -> Result<bool, &'static str> {
    loop {
        let room = WINDOW.saturating_sub(acks.inflight()).min(BATCH);
        if room == 0 {
            return Ok(false);
        }
        let mark = relay.visible(account);
        let mut batch = relay
            .pending(account, acks.cursor(), room, known)
            .await
            .map_err(|e| store_failed(&e))?;
        batch.retain(|m| m.seq <= mark);
        if batch.is_empty() {
            return Ok(true);
        }
        write_batch(socket, &batch).await?;
        acks.pushed(batch.iter().map(|m| m.seq));
        if batch.len() < room {
            return Ok(true);
        }
    }
}

/// Handles `{"type":"ack","id":ID}` / `{"type":"ack","ids":[ID,...]}`; true when the window
/// had been full and now has room again. What the acks allow is removed by `remover` (in bulk
/// where it can, see [`super::acks`]).
async fn on_ack(
    relay: &Arc<Relay>,
    account: &Arc<Account>,
    acks: &mut Acks,
    remover: &Remover,
    text: &str,
) -> bool {
    let Ok(frame) = serde_json::from_str::<AckFrame>(text) else {
        return false;
    };
    if frame.kind != FrameKind::Ack {
        return false;
    }
    let was_full = acks.inflight() >= WINDOW;
    let seqs = frame
        .id
        .iter()
        .chain(frame.ids.iter())
        .filter_map(MessageId::number);
    let removal = acks.ack(seqs);
    remover.remove(relay, account, removal).await;
    was_full && acks.inflight() < WINDOW
}

fn store_failed(e: &super::storage::Error) -> &'static str {
    tracing::error!(error = %e, "relay store read failed");
    "store error"
}
