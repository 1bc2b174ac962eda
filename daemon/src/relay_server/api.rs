//! The HTTP endpoints: `/register`, `/send`, `/poll`, `/ack`, `/users`, `/health`.
//! Shapes are specified in the module doc of [`super`].

use super::body::JsonBody;
use super::error::ApiError;
use super::query::{
    query_candidates, secret_candidates, valid_id, valid_name, valid_secret, RawQuery,
};
use super::state::{Account, Relay};
use crate::store::relay_server::{Enqueued, QueuedMessage};
use axum::extract::{ConnectInfo, RawQuery as Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

/// Most messages returned by one `/poll`.
const POLL_MAX_MESSAGES: usize = 1000;
/// Response size at which `/poll` stops adding messages (the rest wait for the next poll).
const POLL_MAX_BYTES: usize = 8 << 20;

type Peer = ConnectInfo<SocketAddr>;

/// A message as clients see it (poll entries and the `data` of pushed frames).
#[derive(Serialize)]
pub(crate) struct WireMessage<'a> {
    /// Extension: the message id, a decimal string, unique for the life of the relay.
    pub id: String,
    from: &'a str,
    #[serde(rename = "fromName")]
    from_name: &'a str,
    message: &'a str,
    timestamp: String,
}

impl<'a> WireMessage<'a> {
    /// The wire form of a queued message.
    pub(crate) fn of(m: &'a QueuedMessage) -> Self {
        WireMessage {
            id: m.seq.to_string(),
            from: &m.from,
            from_name: &m.from_name,
            message: &m.message,
            timestamp: crate::time::rfc3339(m.ts),
        }
    }
}

/// The body of `POST /register`: `{id, name, secret}`, every field optional on the wire.
#[derive(Deserialize)]
pub struct RegisterReq {
    /// The id to register.
    pub id: Option<String>,
    /// The display name (default: the id).
    pub name: Option<String>,
    /// The secret (a bearer header takes precedence).
    pub secret: Option<String>,
}

pub(crate) async fn register(
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    JsonBody(req): JsonBody<RegisterReq>,
) -> Result<Response, ApiError> {
    let id = req.id.unwrap_or_default();
    if !valid_id(&id) {
        return Err(ApiError::bad_request(
            "id must be 1-64 characters of A-Z a-z 0-9 _ . -",
        ));
    }
    let id = relay.resolve_id(&id);
    if relay.account(&id)?.is_none() && relay.case_twin_exists(&id) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this id is already registered (ids are case-insensitive)",
        ));
    }
    let name = req.name.map(|n| crate::text::display_name(&n));
    let name = match name.filter(|n| !n.is_empty()) {
        Some(n) if valid_name(&n) => n,
        Some(_) => {
            return Err(ApiError::bad_request(
                "name must be 1-128 printable characters",
            ))
        }
        None => id.clone(),
    };
    let secret = secret_candidates(&headers, req.secret.into_iter().collect())
        .into_iter()
        .next();
    let secret = secret
        .filter(|s| valid_secret(s))
        .ok_or_else(|| ApiError::bad_request("secret must be 1-1024 bytes"))?;
    let account = relay.register(&id, &name, &secret, peer.ip()).await?;
    tracing::info!(id = %account.id, "registered");
    Ok((
        StatusCode::CREATED,
        Json(json!({ "ok": true, "id": account.id, "name": account.name() })),
    )
        .into_response())
}

/// The body of `POST /send`: `{from, to, message, secret, key?}`, every field optional on the wire.
#[derive(Deserialize)]
pub struct SendReq {
    /// The sender's id.
    pub from: Option<String>,
    /// The recipient's id.
    pub to: Option<String>,
    /// The message text.
    pub message: Option<String>,
    /// The sender's secret (a bearer header takes precedence).
    pub secret: Option<String>,
    /// Extension: the sender's idempotency key for this message (see [`valid_key`]).
    pub key: Option<String>,
}

/// An idempotency key: 1-128 visible ASCII characters.
pub fn valid_key(k: &str) -> bool {
    (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
}

pub(crate) async fn send(
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    JsonBody(req): JsonBody<SendReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let (Some(from), Some(to), Some(message)) = (req.from, req.to, req.message) else {
        return Err(ApiError::bad_request(
            "send needs from, to, message and secret",
        ));
    };
    if !valid_id(&from) || !valid_id(&to) {
        return Err(ApiError::bad_request("from and to must be valid ids"));
    }
    let (from, to) = (relay.resolve_id(&from), relay.resolve_id(&to));
    if req.key.as_deref().is_some_and(|k| !valid_key(k)) {
        return Err(ApiError::bad_request(
            "key must be 1-128 visible ASCII characters",
        ));
    }
    if message.len() > relay.cfg.max_message_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "message too large: at most {} bytes",
                relay.cfg.max_message_bytes
            ),
        ));
    }
    let sender = relay
        .authenticate(
            &from,
            &secret_candidates(&headers, req.secret.into_iter().collect()),
            peer.ip(),
        )
        .await?;
    relay.limits.send(&from)?;
    let recipient = relay
        .account(&to)?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown recipient id"))?;
    let ts = crate::time::now_ms();
    let msg = QueuedMessage {
        seq: 0,
        from,
        from_name: crate::text::display_name(&sender.name()),
        message,
        ts,
    };
    let (seq, ts, duplicate) = match relay.enqueue(&recipient, &msg, req.key.as_deref())? {
        Enqueued::New(seq) => (seq, ts, false),
        Enqueued::Duplicate { seq, ts } => (seq, ts, true),
        // Relay::enqueue turns refusals into errors already.
        Enqueued::Refused(r) => return Err(ApiError::too_many(r.to_string(), 5)),
    };
    // A duplicate is answered only once its first copy is durable too.
    relay.store.durable().await?;
    if !duplicate {
        relay.published(&recipient, seq);
        relay.store.announce(&recipient.id, seq);
    }
    tracing::debug!(from = %msg.from, to = %recipient.id, seq, duplicate, bytes = msg.message.len(), "queued");
    let mut answer = json!({
        "ok": true,
        "id": seq.to_string(),
        "to": recipient.id,
        "online": relay.is_online(&recipient),
        "timestamp": crate::time::rfc3339(ts),
    });
    if duplicate {
        answer["duplicate"] = json!(true);
    }
    Ok(Json(answer))
}

/// Authenticates the `id` + secret of a query string (or bearer header).
pub(crate) async fn query_auth(
    relay: &Relay,
    query: &RawQuery<'_>,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Arc<Account>, ApiError> {
    let id = query
        .get("id")
        .filter(|id| valid_id(id))
        .map(|id| relay.resolve_id(&id))
        .ok_or_else(|| ApiError::bad_request("missing or invalid id"))?;
    let secrets = secret_candidates(
        headers,
        query
            .raw("secret")
            .map(query_candidates)
            .unwrap_or_default(),
    );
    relay.authenticate(&id, &secrets, peer.ip()).await
}

pub(crate) async fn poll(
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    Query(q): Query,
) -> Result<Json<serde_json::Value>, ApiError> {
    let query = RawQuery::parse(q.as_deref());
    let account = query_auth(&relay, &query, &headers, peer).await?;
    let keep = query.flag("ack");
    let _drain = if keep {
        None
    } else {
        Some(account.drain.lock().await)
    };
    let mark = relay.visible(&account);
    let mut batch = relay.store.pending(&account.id, None, POLL_MAX_MESSAGES)?;
    batch.retain(|m| m.seq <= mark);
    let (mut messages, mut bytes) = (Vec::with_capacity(batch.len()), 0);
    for m in &batch {
        bytes += m.message.len() + m.from_name.len() + 128;
        if bytes > POLL_MAX_BYTES && !messages.is_empty() {
            break;
        }
        messages.push(WireMessage::of(m));
    }
    if !keep {
        for m in &batch[..messages.len()] {
            relay.remove(&account, m.seq)?;
        }
    }
    let more = messages.len() < batch.len() || batch.len() == POLL_MAX_MESSAGES;
    tracing::debug!(id = %account.id, count = messages.len(), keep, "poll");
    Ok(Json(
        json!({ "count": messages.len(), "messages": messages, "more": more }),
    ))
}

#[derive(Deserialize)]
pub(crate) struct AckReq {
    id: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    ids: Vec<super::ws::MessageId>,
}

pub(crate) async fn ack(
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    JsonBody(req): JsonBody<AckReq>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = req
        .id
        .filter(|id| valid_id(id))
        .map(|id| relay.resolve_id(&id))
        .ok_or_else(|| ApiError::bad_request("missing or invalid id"))?;
    let account = relay
        .authenticate(
            &id,
            &secret_candidates(&headers, req.secret.into_iter().collect()),
            peer.ip(),
        )
        .await?;
    let mut removed = 0;
    for seq in req.ids.iter().filter_map(super::ws::MessageId::seq) {
        removed += usize::from(relay.remove(&account, seq)?);
    }
    Ok(Json(json!({ "ok": true, "removed": removed })))
}

pub(crate) async fn users(
    State(relay): State<Arc<Relay>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let elsewhere = relay.store.online_elsewhere().unwrap_or_default();
    let users: Vec<_> = relay
        .all()?
        .iter()
        .map(|a| {
            let online = a.is_online() || elsewhere.contains(&a.id);
            json!({ "id": a.id, "name": crate::text::display_name(&a.name()), "online": online })
        })
        .collect();
    Ok(Json(json!({ "count": users.len(), "users": users })))
}

pub(crate) async fn health(State(relay): State<Arc<Relay>>) -> Json<serde_json::Value> {
    Json(json!({ "ok": true, "status": "ok", "users": relay.account_count() }))
}

/// Finds the client's address (see [`super::limits`]) and applies its per-request limit.
pub(crate) async fn limit_ip(
    State(relay): State<Arc<Relay>>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if let Some(ip) = super::limits::client_ip(&relay.limits, &mut req) {
        if let Err(e) = relay.limits.request(ip) {
            return e.into_response();
        }
    }
    next.run(req).await
}
