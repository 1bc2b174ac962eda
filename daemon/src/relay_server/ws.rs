//! `/ws`: one task per WebSocket, pushing the account's queue as it fills.
//!
//! The task owns the socket and selects on: shutdown, the account's wake channel (bumped when
//! an enqueue is durable; only durable messages are pushed), frames from the client, and a 30 s ping tick (a peer silent for 90 s is
//! dropped, so `online` stays true). Two delivery contracts:
//!
//! - **seed** (no `ack=1`): under the account's drain lock, send a batch of the oldest queued
//!   messages, flush, then delete them. Push = delivered, as the seed client expects.
//! - **ack** (`ack=1`): send messages after a per-connection cursor, keep them queued, and
//!   delete one only when the client acks its id. At most [`WINDOW`] may be unacked; then the
//!   task waits for acks. A new connection starts from the oldest queued message, so whatever
//!   was pushed but not acked is pushed again (same id).
//!
//! Buffers are kept small (4 KiB read, 8 KiB write) so ten thousand idle sockets stay cheap.

use super::api::{query_auth, WireMessage};
use super::error::ApiError;
use super::query::RawQuery;
use super::state::{Account, Relay};
use crate::store::relay_server::QueuedMessage;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, RawQuery as Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
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

/// A message id as a client may send it back: the decimal string we sent, or a number.
#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum MessageId {
    /// `"123"`.
    Text(String),
    /// `123`.
    Number(u64),
}

impl MessageId {
    /// The sequence number it names.
    pub(crate) fn seq(&self) -> Option<u64> {
        match self {
            MessageId::Text(s) => s.parse().ok(),
            MessageId::Number(n) => Some(*n),
        }
    }
}

#[derive(Deserialize)]
struct ClientFrame {
    #[serde(rename = "type")]
    kind: String,
    id: Option<MessageId>,
    #[serde(default)]
    ids: Vec<MessageId>,
}

#[derive(Serialize)]
struct Push<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    id: &'a str,
    data: &'a WireMessage<'a>,
}

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
            let remote = follow_other_nodes(&relay, &account);
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
fn follow_other_nodes(
    relay: &Arc<Relay>,
    account: &Arc<Account>,
) -> Option<tokio::task::JoinHandle<()>> {
    use futures_util::StreamExt;
    let mut wakes = relay.store.wakes(&account.id)?;
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
    let hello = serde_json::json!({ "type": "connected", "id": account.id, "name": account.name(), "ack": ack });
    if !matches!(
        timeout(
            WRITE_DEADLINE,
            socket.send(Message::Text(hello.to_string().into()))
        )
        .await,
        Ok(Ok(()))
    ) {
        return "write error";
    }
    let mut wake = account.wake.subscribe();
    let mut cursor = None;
    let mut inflight = BTreeSet::new();
    let mut want = true;
    let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
    let mut last_seen = Instant::now();
    loop {
        if want {
            wake.borrow_and_update();
            want = false;
            let done = match ack {
                true => {
                    deliver_acked(&mut socket, relay, account, &mut cursor, &mut inflight).await
                }
                false => deliver_seed(&mut socket, relay, account).await,
            };
            if let Err(reason) = done {
                return reason;
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
                        want |= on_ack(relay, account, &mut inflight, text.as_str());
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
            let wire = WireMessage::of(m);
            let frame = serde_json::to_string(&Push {
                kind: "message",
                id: &wire.id,
                data: &wire,
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

/// Seed contract: push the oldest messages, then delete them.
async fn deliver_seed(
    socket: &mut WebSocket,
    relay: &Relay,
    account: &Account,
) -> Result<(), &'static str> {
    let _drain = account.drain.lock().await;
    loop {
        let mark = relay.visible(account);
        let mut batch = relay
            .store
            .pending(&account.id, None, BATCH)
            .map_err(|e| store_failed(&e))?;
        let fetched = batch.len();
        batch.retain(|m| m.seq <= mark);
        if batch.is_empty() {
            return Ok(());
        }
        write_batch(socket, &batch).await?;
        for m in &batch {
            relay.remove(account, m.seq).map_err(|_| "store error")?;
        }
        if fetched < BATCH || batch.len() < fetched {
            return Ok(());
        }
    }
}

/// Ack contract: push what follows `cursor` while the window has room; delete nothing.
async fn deliver_acked(
    socket: &mut WebSocket,
    relay: &Relay,
    account: &Account,
    cursor: &mut Option<u64>,
    inflight: &mut BTreeSet<u64>,
) -> Result<(), &'static str> {
    loop {
        let room = WINDOW.saturating_sub(inflight.len()).min(BATCH);
        if room == 0 {
            return Ok(());
        }
        let mark = relay.visible(account);
        let mut batch = relay
            .store
            .pending(&account.id, *cursor, room)
            .map_err(|e| store_failed(&e))?;
        batch.retain(|m| m.seq <= mark);
        let Some(last) = batch.last() else {
            return Ok(());
        };
        write_batch(socket, &batch).await?;
        *cursor = Some(last.seq);
        inflight.extend(batch.iter().map(|m| m.seq));
        if batch.len() < room {
            return Ok(());
        }
    }
}

/// Handles `{"type":"ack","id":ID}` / `{"type":"ack","ids":[ID,...]}`; true when the window
/// had been full and now has room again.
///
/// With a shared store a delete is a round trip to its leader, so the deletes run beside the
/// socket's loop rather than in it: the next pushes do not wait for them. If the relay dies
/// before they are done, the messages are pushed again (at least once, as always).
fn on_ack(
    relay: &Arc<Relay>,
    account: &Arc<Account>,
    inflight: &mut BTreeSet<u64>,
    text: &str,
) -> bool {
    let Ok(frame) = serde_json::from_str::<ClientFrame>(text) else {
        return false;
    };
    if frame.kind != "ack" {
        return false;
    }
    let was_full = inflight.len() >= WINDOW;
    let seqs: Vec<u64> = frame
        .id
        .iter()
        .chain(frame.ids.iter())
        .filter_map(MessageId::seq)
        .collect();
    for seq in &seqs {
        inflight.remove(seq);
    }
    if relay.store.shared() {
        let (relay, account) = (Arc::clone(relay), Arc::clone(account));
        tokio::spawn(async move {
            for seq in seqs {
                let _ = relay.remove(&account, seq);
            }
        });
    } else {
        for seq in seqs {
            let _ = relay.remove(account, seq);
        }
    }
    was_full && inflight.len() < WINDOW
}

fn store_failed(e: &super::storage::Error) -> &'static str {
    tracing::error!(error = %e, "relay store read failed");
    "store error"
}
