//! Relay subscriber: one always-on WebSocket per registered relay identity.
//!
//! Why: the seed's relay client only received while `relay-client.js listen` ran in a
//! terminal, and lost whatever was pushed while it crashed. Here every identity in the store
//! ([`crate::store::relay_client`]) keeps a connection open for the life of the daemon,
//! reconnecting with jittered exponential backoff (reset after a stable minute).
//!
//! Wire format (see [`crate::relay_server`]): `GET /ws?id=ID&secret=SECRET&ack=1` (the secret
//! also as `Authorization: Bearer`). The first frame is `{"type":"connected","id","name",
//! "ack":true|false}`; then `{"type":"message","id":"N","data":{id, from, fromName, message,
//! timestamp}}` per message. Each message is stored durably in the inbox (source `relay`,
//! `source_id` = `RELAY/N`, so a redelivery is stored once) and only THEN acknowledged with
//! `{"type":"ack","ids":["N",...]}`. Frames that arrive together are stored as one group
//! commit and acknowledged together. A server without acks (`"ack"` absent or false) drains
//! on push, as the seed did: the message is stored as soon as it arrives, nothing is sent back.
//!
//! `relay poll` ([`RelayClients::poll`]): `GET /poll?...&ack=1` (kept on the relay), store,
//! then `POST /ack {id, secret, ids}`; a seed relay has already drained and answers 404 there.

use super::Ingest;
use crate::agent::StatusSource;
use crate::store::inbox::{NewMessage, Stored};
use crate::store::relay_client::{Identity, RelayClientStore};
use clawlink::proto::{ApiError, ConnectionRow, InboxMessage};
use futures_util::{FutureExt, SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, protocol::WebSocketConfig};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const STABLE: Duration = Duration::from_secs(60);
const HANDSHAKE: Duration = Duration::from_secs(15);
/// Most frames stored as one group commit.
const BATCH: usize = 512;
/// Largest frame accepted from a relay.
const MAX_FRAME: usize = 16 << 20;

/// Connection state shown by `status`.
#[derive(Default)]
struct ConnStatus {
    state: &'static str,
    last_error: Option<String>,
    acks: Option<bool>,
}

struct Conn {
    identity: Identity,
    cancel: CancellationToken,
    status: Mutex<ConnStatus>,
}

impl Conn {
    fn set(&self, state: &'static str, error: Option<String>, acks: Option<bool>) {
        if let Ok(mut s) = self.status.lock() {
            s.state = state;
            if error.is_some() {
                s.last_error = error;
            }
            if acks.is_some() {
                s.acks = acks;
            }
        }
    }
}

/// Every relay connection of the daemon, and the HTTP client shared by relay calls.
pub struct RelayClients {
    /// The identities.
    pub store: RelayClientStore,
    /// HTTP client for relay calls.
    pub http: reqwest::Client,
    ingest: Ingest,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    conns: Mutex<HashMap<String, Arc<Conn>>>,
    /// WebSocket ping interval; a link silent for three intervals is declared dead.
    ping_every: Duration,
}

/// `reqwest` error text without the URL (which may carry a secret in its query).
pub fn http_error(e: reqwest::Error) -> String {
    e.without_url().to_string()
}

impl RelayClients {
    /// Builds the manager; call [`RelayClients::start_all`] once the daemon runs.
    pub fn new(
        store: RelayClientStore,
        ingest: Ingest,
        shutdown: CancellationToken,
        tracker: TaskTracker,
        config: &crate::config::RelayConfig,
    ) -> anyhow::Result<Arc<RelayClients>> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .build()?;
        Ok(Arc::new(RelayClients {
            store,
            http,
            ingest,
            shutdown,
            tracker,
            conns: Mutex::new(HashMap::new()),
            ping_every: Duration::from_secs(config.ping_interval_secs.max(1)),
        }))
    }

    /// Connects every stored identity; returns how many.
    pub fn start_all(self: &Arc<Self>) -> crate::store::Result<usize> {
        let all = self.store.all()?;
        let n = all.len();
        for i in all {
            self.connect(i);
        }
        Ok(n)
    }

    /// Keeps `identity` connected (replacing a connection with other credentials).
    pub fn connect(self: &Arc<Self>, identity: Identity) {
        let key = format!("{}/{}", identity.relay, identity.id);
        let conn = Arc::new(Conn {
            identity,
            cancel: self.shutdown.child_token(),
            status: Mutex::new(ConnStatus {
                state: "connecting",
                ..Default::default()
            }),
        });
        let Ok(mut conns) = self.conns.lock() else {
            return;
        };
        if let Some(old) = conns.get(&key) {
            if old.identity.secret == conn.identity.secret && !old.cancel.is_cancelled() {
                return;
            }
            old.cancel.cancel();
        }
        conns.insert(key, conn.clone());
        drop(conns);
        let me = self.clone();
        self.tracker.spawn(async move { me.run(conn).await });
    }

    async fn run(self: Arc<Self>, conn: Arc<Conn>) {
        let mut backoff = MIN_BACKOFF;
        loop {
            conn.set("connecting", None, None);
            let started = Instant::now();
            let res = tokio::select! {
                r = self.session(&conn) => r,
                _ = conn.cancel.cancelled() => return,
            };
            let err = res.err().unwrap_or_else(|| "connection closed".to_string());
            tracing::info!(relay = %conn.identity.relay, id = %conn.identity.id, error = %err, "relay connection lost");
            if started.elapsed() > STABLE {
                backoff = MIN_BACKOFF;
            }
            let delay = backoff.mul_f64(rand::random::<f64>() * 0.5 + 0.75);
            backoff = (backoff * 2).min(MAX_BACKOFF);
            conn.set("backoff", Some(err), None);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = conn.cancel.cancelled() => return,
            }
        }
    }

    /// One connection, until it fails.
    async fn session(&self, conn: &Conn) -> Result<(), String> {
        let ident = &conn.identity;
        let mut url = reqwest::Url::parse(&format!("{}/ws", ident.relay))
            .map_err(|e| format!("bad relay URL: {e}"))?;
        let scheme = if url.scheme() == "https" { "wss" } else { "ws" };
        url.set_scheme(scheme)
            .map_err(|_| "bad relay URL scheme".to_string())?;
        url.query_pairs_mut()
            .append_pair("id", &ident.id)
            .append_pair("secret", ident.secret.expose())
            .append_pair("ack", "1");
        let mut req = url
            .as_str()
            .into_client_request()
            .map_err(|e| format!("bad relay URL: {e}"))?;
        let bearer = format!("Bearer {}", ident.secret.expose())
            .parse()
            .map_err(|_| "the secret is not a valid header value".to_string())?;
        req.headers_mut().insert("authorization", bearer);
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_FRAME))
            .max_frame_size(Some(MAX_FRAME));
        let (mut ws, _) = timeout(
            HANDSHAKE,
            tokio_tungstenite::connect_async_with_config(req, Some(config), true),
        )
        .await
        .map_err(|_| "handshake timed out".to_string())?
        .map_err(|e| match e {
            tokio_tungstenite::tungstenite::Error::Http(r) if r.status().as_u16() == 401 => {
                "the relay refused the id or secret (401); run `clawlink relay register` again"
                    .to_string()
            }
            e => e.to_string(),
        })?;
        let first = match timeout(HANDSHAKE, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Value>(&t).ok(),
            _ => None,
        }
        .filter(|v| v["type"] == "connected")
        .ok_or_else(|| "no connected frame from the relay".to_string())?;
        let acks = first["ack"].as_bool() == Some(true);
        conn.set("connected", None, Some(acks));
        tracing::info!(relay = %ident.relay, id = %ident.id, acks, "relay connected");
        let mut ping = tokio::time::interval(self.ping_every);
        let mut last_seen = Instant::now();
        loop {
            let first = tokio::select! {
                _ = ping.tick() => {
                    if last_seen.elapsed() > self.ping_every * 3 {
                        return Err("the relay went silent".into());
                    }
                    ws.send(Message::Ping(Vec::new().into())).await.map_err(|e| e.to_string())?;
                    continue;
                }
                m = ws.next() => m,
            };
            last_seen = Instant::now();
            let mut texts = Vec::new();
            let mut end: Option<Result<(), String>> = None;
            let mut frame = Some(first);
            while let Some(f) = frame.take() {
                match f {
                    Some(Ok(Message::Text(t))) => texts.push(t),
                    Some(Ok(Message::Close(_))) | None => end = Some(Ok(())),
                    Some(Err(e)) => end = Some(Err(e.to_string())),
                    Some(Ok(_)) => {}
                }
                if end.is_none() && texts.len() < BATCH {
                    frame = ws.next().now_or_never();
                }
            }
            let parsed: Vec<(Option<String>, NewMessage)> = texts
                .iter()
                .filter_map(|t| serde_json::from_str::<Value>(t).ok())
                .filter(|v| v["type"] == "message")
                .filter_map(|v| to_new_message(&ident.relay, &ident.id, &v))
                .collect();
            let ids = self.store_all(&parsed).await?;
            if acks && !ids.is_empty() {
                let frame = json!({ "type": "ack", "ids": ids }).to_string();
                ws.send(Message::Text(frame.into()))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if let Some(end) = end {
                return end;
            }
        }
    }

    /// Stores messages as one group commit; returns the relay ids now safe to acknowledge.
    async fn store_all(
        &self,
        msgs: &[(Option<String>, NewMessage)],
    ) -> Result<Vec<String>, String> {
        let results =
            futures_util::future::join_all(msgs.iter().map(|(_, m)| self.ingest.store(m.clone())))
                .await;
        let mut ids = Vec::with_capacity(msgs.len());
        for ((id, _), r) in msgs.iter().zip(results) {
            match r {
                Ok(_) => ids.extend(id.clone()),
                Err(e) => {
                    tracing::error!(error = %e, "relay message not stored; it stays on the relay");
                    return Err(format!("store failed: {e}"));
                }
            }
        }
        Ok(ids)
    }

    /// `relay poll`: fetches what the relay holds for `ident`, stores it, acknowledges it.
    pub async fn poll(&self, ident: &Identity) -> Result<Vec<InboxMessage>, ApiError> {
        let unreachable = |e: reqwest::Error| {
            ApiError::new(
                "unreachable",
                format!("relay {}: {}", ident.relay, http_error(e)),
            )
        };
        let mut out = Vec::new();
        for _ in 0..100 {
            let r = self
                .http
                .get(format!("{}/poll", ident.relay))
                .query(&[
                    ("id", ident.id.as_str()),
                    ("secret", ident.secret.expose()),
                    ("ack", "1"),
                ])
                .bearer_auth(ident.secret.expose())
                .send()
                .await
                .map_err(unreachable)?;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if status != 200 {
                return Err(relay_error(status, &body, &ident.relay));
            }
            let msgs: Vec<(Option<String>, NewMessage)> = body["messages"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| {
                            to_new_message(&ident.relay, &ident.id, &json!({ "data": m }))
                        })
                        .collect()
                })
                .unwrap_or_default();
            if msgs.is_empty() {
                break;
            }
            let results = futures_util::future::join_all(
                msgs.iter().map(|(_, m)| self.ingest.store(m.clone())),
            )
            .await;
            let mut ids = Vec::new();
            for ((id, _), r) in msgs.iter().zip(results) {
                match r.map_err(crate::control::handlers::store_err)? {
                    Stored::New(m) => out.push(m),
                    Stored::Duplicate(_) => {}
                }
                ids.extend(id.clone());
            }
            let ack = self
                .http
                .post(format!("{}/ack", ident.relay))
                .bearer_auth(ident.secret.expose())
                .json(&json!({ "id": ident.id, "secret": ident.secret, "ids": ids }))
                .send()
                .await
                .map_err(unreachable)?;
            if ack.status().as_u16() == 404 || body["more"].as_bool() != Some(true) {
                break;
            }
        }
        Ok(out)
    }
}

/// An error reply of the relay as an [`ApiError`] with what to do.
pub fn relay_error(status: u16, body: &Value, relay: &str) -> ApiError {
    let said = body["error"].as_str().unwrap_or("no reason given");
    let (code, hint) = match status {
        401 | 403 => (
            "unauthorized",
            "check the id and secret (`clawlink relay register`)",
        ),
        404 => (
            "not_found",
            "check the recipient id (`clawlink relay users`)",
        ),
        409 => (
            "conflict",
            "this id is taken on the relay with another secret; choose another id",
        ),
        413 => ("too_large", "send a shorter message"),
        429 => ("rate_limited", "try again later"),
        _ => (
            "relay_error",
            "check the relay URL and that the relay is healthy",
        ),
    };
    ApiError::new(code, format!("relay {relay} answered {status}: {said}")).with_hint(hint)
}

/// A pushed or polled message (`{"id"?, "data": {...}}`) as an inbox entry.
fn to_new_message(relay: &str, our_id: &str, v: &Value) -> Option<(Option<String>, NewMessage)> {
    let data = &v["data"];
    let message = data["message"].as_str()?.to_string();
    let id_of = |x: &Value| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let rid = id_of(&v["id"]).or_else(|| id_of(&data["id"]));
    let from = data["from"].as_str().unwrap_or("unknown").to_string();
    let mut meta = serde_json::Map::new();
    meta.insert("relay".into(), json!(relay));
    meta.insert("to".into(), json!(our_id));
    meta.insert("fromName".into(), data["fromName"].clone());
    meta.insert("timestamp".into(), data["timestamp"].clone());
    let msg = NewMessage {
        source: "relay".into(),
        source_id: rid.as_ref().map(|id| format!("{relay}/{id}")),
        from,
        message,
        meta,
    };
    Some((rid, msg))
}

impl StatusSource for RelayClients {
    fn rows(&self) -> Vec<ConnectionRow> {
        let conns: Vec<Arc<Conn>> = match self.conns.lock() {
            Ok(c) => c.values().cloned().collect(),
            Err(_) => return Vec::new(),
        };
        let mut rows: Vec<ConnectionRow> = conns
            .iter()
            .filter(|c| !c.cancel.is_cancelled() || !self.shutdown.is_cancelled())
            .map(|c| {
                let (state, last_error, acks) = match c.status.lock() {
                    Ok(s) => (s.state, s.last_error.clone(), s.acks),
                    Err(_) => ("unknown", None, None),
                };
                let mut info = BTreeMap::new();
                info.insert("name".to_string(), c.identity.name.clone());
                if let Some(a) = acks {
                    info.insert("acks".to_string(), a.to_string());
                }
                ConnectionRow {
                    kind: "relay".into(),
                    target: format!("{}/{}", c.identity.relay, c.identity.id),
                    state: state.to_string(),
                    last_error,
                    rtt_ms: None,
                    info,
                }
            })
            .collect();
        rows.sort_by(|a, b| a.target.cmp(&b.target));
        rows
    }
}
