//! One always-on WebSocket per registered relay identity, reconnecting with the shared
//! [`Backoff`] (500 ms doubling to 30 s, reset after a stable minute).
//!
//! Wire format (see [`crate::relay_server`]): `GET /ws?id=ID&ack=1` with the secret in
//! `Authorization: Bearer` only, so that it stays out of proxy access logs. A relay that refuses
//! that with 401 (the seed's server reads only the query) gets `&secret=SECRET` in the URL from
//! the next attempt on, with a warning. The first frame is [`Connected`] `{"type":"connected",
//! "id","name","ack":true|false}`; then a [`Push`] `{"type":"message","id":"N","data":{id,
//! from, fromName, message, timestamp}}` per message (frames of other types are ignored). Each
//! message is stored durably in the inbox (see [`super::ingest`]) and only THEN acknowledged
//! with an [`AckFrame`] `{"type":"ack","ids":["N",...]}`. Frames that arrive
//! together are stored as one group commit and acknowledged together. A server without acks
//! (`"ack"` absent or false) drains on push, as the seed did: the message is stored as soon
//! as it arrives, nothing is sent back.

use super::ingest::to_new_message;
use super::wire::{AckFrame, Connected, FrameKind, Push};
use super::Relay;
use crate::store::inbox::NewMessage;
use crate::store::relay_client::Identity;
use crate::util::Backoff;
use futures_util::{FutureExt, SinkExt, StreamExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::{client::IntoClientRequest, protocol::WebSocketConfig};
use tokio_util::sync::CancellationToken;

const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const STABLE: Duration = Duration::from_secs(60);
const HANDSHAKE: Duration = Duration::from_secs(15);
/// Most frames stored as one group commit.
const BATCH: usize = 512;
/// Largest frame accepted from a relay.
const MAX_FRAME: usize = 16 << 20;

/// Connection state shown by `status`.
#[derive(Default, Clone)]
pub(super) struct ConnStatus {
    pub state: &'static str,
    pub last_error: Option<String>,
    pub acks: Option<bool>,
}

/// One identity's connection.
pub(super) struct Conn {
    pub identity: Identity,
    pub cancel: CancellationToken,
    status: Mutex<ConnStatus>,
    /// Set once the relay refused the bearer header: it then gets the seed's query form.
    secret_in_query: AtomicBool,
    /// Cuts a backoff wait short (a new `register` of the same identity connects at once).
    pub wake: tokio::sync::Notify,
}

impl Conn {
    pub fn new(identity: Identity, cancel: CancellationToken) -> Conn {
        Conn {
            identity,
            cancel,
            status: Mutex::new(ConnStatus {
                state: "connecting",
                ..Default::default()
            }),
            secret_in_query: AtomicBool::new(false),
            wake: tokio::sync::Notify::new(),
        }
    }

    pub fn status(&self) -> ConnStatus {
        self.status
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, state: &'static str, error: Option<String>, acks: Option<bool>) {
        let mut s = self.status.lock().unwrap_or_else(|p| p.into_inner());
        s.state = state;
        if error.is_some() {
            s.last_error = error;
        }
        if acks.is_some() {
            s.acks = acks;
        }
    }
}

impl Relay {
    pub(super) async fn run(self: Arc<Self>, conn: Arc<Conn>) {
        let mut backoff = Backoff::new(MIN_BACKOFF, MAX_BACKOFF);
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
                backoff.reset();
            }
            let delay = backoff.next_wait(None);
            conn.set("backoff", Some(err), None);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = conn.wake.notified() => backoff.reset(),
                // Refused by a full inbox: retry as soon as messages are deleted.
                _ = self.ingest.inbox().room() => backoff.reset(),
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
        let secret_in_query = conn.secret_in_query.load(Ordering::Relaxed);
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("id", &ident.id);
            if secret_in_query {
                q.append_pair("secret", ident.secret.expose());
            }
            q.append_pair("ack", "1");
        }
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
            tokio_tungstenite::tungstenite::Error::Http(r)
                if r.status().as_u16() == 401 && !secret_in_query =>
            {
                tracing::warn!(relay = %ident.relay, "the relay refused the secret as a bearer header; the next attempt puts it in the URL, where its access log may record it");
                conn.secret_in_query.store(true, Ordering::Relaxed);
                "the relay refused the bearer header (401); retrying with the secret in the URL"
                    .to_string()
            }
            tokio_tungstenite::tungstenite::Error::Http(r) if r.status().as_u16() == 401 => {
                "the relay refused the id or secret (401); run `clawlink relay register` again"
                    .to_string()
            }
            e => e.to_string(),
        })?;
        let first = match timeout(HANDSHAKE, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => serde_json::from_str::<Connected>(&t).ok(),
            _ => None,
        }
        .filter(|c| c.kind == FrameKind::Connected)
        .ok_or_else(|| "no connected frame from the relay".to_string())?;
        let acks = first.ack;
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
                .filter_map(|t| serde_json::from_str::<Push>(t).ok())
                .filter(|p| p.kind == FrameKind::Message)
                .map(|p| to_new_message(&ident.relay, &ident.id, p.id.as_ref(), p.data))
                .collect();
            // Without acks the relay has already forgotten these: store them even over the
            // inbox caps rather than lose them.
            let (ids, _) = self
                .store_page(&parsed, acks)
                .await
                .map_err(|e| format!("store failed: {e}"))?;
            if acks && !ids.is_empty() {
                let frame = serde_json::to_string(&AckFrame::of(&ids))
                    .map_err(|e| format!("cannot write the ack frame: {e}"))?;
                ws.send(Message::Text(frame.into()))
                    .await
                    .map_err(|e| e.to_string())?;
            }
            if let Some(end) = end {
                return end;
            }
        }
    }

    /// Stores messages as one group commit; returns the relay ids now safe to acknowledge
    /// and what each store did.
    /// `capped`: whether a full inbox may refuse them (see [`crate::inbound::Ingest::store_with`]).
    pub(super) async fn store_page(
        &self,
        msgs: &[(Option<String>, NewMessage)],
        capped: bool,
    ) -> crate::store::Result<(Vec<String>, Vec<crate::store::inbox::Stored>)> {
        let stored = self
            .ingest
            .store_all_with(msgs.iter().map(|(_, m)| m.clone()), capped)
            .await
            .inspect_err(|e| {
                tracing::error!(error = %e, "relay messages not stored; they stay on the relay");
            })?;
        let ids = msgs.iter().filter_map(|(id, _)| id.clone()).collect();
        Ok((ids, stored))
    }
}
