//! The HTTP endpoints: `/register`, `/send`, `/poll`, `/ack`, `/users`, `/health`.
//! Shapes are specified in the module doc of [`super`]; the bodies are the protocol's types
//! in [`crate::relay::wire`], shared with the client.

use super::body::JsonBody;
use super::error::ApiError;
use super::query::{
    query_candidates, secret_candidates, valid_id, valid_name, valid_secret, RawQuery,
};
use super::state::{Account, Relay};
use crate::relay::wire::{
    AckAnswer, AckRequest, Message, MessageId, PollAnswer, RegisterAnswer, RegisterRequest,
    SendAnswer, SendRequest, User, UsersAnswer,
};
use crate::store::relay_server::{Enqueued, QueuedMessage};
use axum::extract::{ConnectInfo, RawQuery as Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::Arc;

/// Most messages returned by one `/poll`.
const POLL_MAX_MESSAGES: usize = 1000;
/// Response size at which `/poll` stops adding messages (the rest wait for the next poll).
const POLL_MAX_BYTES: usize = 8 << 20;

type Peer = ConnectInfo<SocketAddr>;

/// The wire form of a queued message (a poll entry, the `data` of a push).
pub(crate) fn wire_message(m: &QueuedMessage) -> Message<'_> {
    Message {
        id: Some(MessageId::of(m.seq)),
        from: Some(Cow::Borrowed(&m.from)),
        from_name: Some(Cow::Borrowed(&m.from_name)),
        message: Cow::Borrowed(&m.message),
        timestamp: Some(Cow::Owned(crate::time::rfc3339(m.ts))),
    }
}

pub(crate) async fn register(
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    JsonBody(req): JsonBody<RegisterRequest>,
) -> Result<Response, ApiError> {
    let id = req.id.unwrap_or_default();
    if !valid_id(&id) {
        return Err(ApiError::bad_request(
            "id must be 1-64 characters of A-Z a-z 0-9 _ . -",
        ));
    }
    let id = relay.resolve_id(&id);
    if relay.account(&id).await?.is_none() && relay.case_twin_exists(&id) {
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
    let answer = RegisterAnswer {
        id: account.id.clone(),
        name: account.name(),
        ok: true,
    };
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// An idempotency key: 1-128 visible ASCII characters.
pub fn valid_key(k: &str) -> bool {
    (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic())
}

pub(crate) async fn send(
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    JsonBody(req): JsonBody<SendRequest>,
) -> Result<Json<SendAnswer>, ApiError> {
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
        .account(&to)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "unknown recipient id"))?;
    let ts = crate::time::now_ms();
    let msg = QueuedMessage {
        seq: 0,
        from,
        from_name: crate::text::display_name(&sender.name()),
        message,
        ts,
    };
    let (seq, ts, duplicate) = match relay.enqueue(&recipient, &msg, req.key.as_deref()).await? {
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
    let online = relay.is_online(&recipient).await;
    Ok(Json(SendAnswer {
        duplicate,
        id: seq.to_string(),
        ok: true,
        online,
        timestamp: crate::time::rfc3339(ts),
        to: recipient.id.clone(),
    }))
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
) -> Result<Response, ApiError> {
    let query = RawQuery::parse(q.as_deref());
    let account = query_auth(&relay, &query, &headers, peer).await?;
    let keep = query.flag("ack");
    let _drain = if keep {
        None
    } else {
        Some(account.drain.lock().await)
    };
    let mark = relay.visible(&account);
    let mut batch = relay
        .pending(&account, None, POLL_MAX_MESSAGES, None)
        .await?;
    batch.retain(|m| m.seq <= mark);
    let (mut messages, mut bytes) = (Vec::with_capacity(batch.len()), 0);
    for m in &batch {
        bytes += m.message.len() + m.from_name.len() + 128;
        if bytes > POLL_MAX_BYTES && !messages.is_empty() {
            break;
        }
        messages.push(wire_message(m));
    }
    if !keep {
        // The messages handed out are the head of the queue: removed in one call.
        if let Some(last) = batch[..messages.len()].last() {
            relay
                .remove_below(&account, last.seq.saturating_add(1))
                .await?;
        }
    }
    let more = messages.len() < batch.len() || batch.len() == POLL_MAX_MESSAGES;
    tracing::debug!(id = %account.id, count = messages.len(), keep, "poll");
    let answer = PollAnswer {
        count: messages.len(),
        messages,
        more,
    };
    Ok(Json(answer).into_response())
}

pub(crate) async fn ack(
    State(relay): State<Arc<Relay>>,
    ConnectInfo(peer): Peer,
    headers: HeaderMap,
    JsonBody(req): JsonBody<AckRequest>,
) -> Result<Json<AckAnswer>, ApiError> {
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
    for seq in req.ids.iter().filter_map(MessageId::number) {
        removed += usize::from(relay.remove(&account, seq).await?);
    }
    Ok(Json(AckAnswer { ok: true, removed }))
}

pub(crate) async fn users(State(relay): State<Arc<Relay>>) -> Result<Json<UsersAnswer>, ApiError> {
    let elsewhere = relay.store.online_elsewhere().await.unwrap_or_default();
    let users: Vec<_> = relay
        .all()
        .await?
        .iter()
        .map(|a| User {
            id: a.id.clone(),
            name: crate::text::display_name(&a.name()),
            online: a.is_online() || elsewhere.contains(&a.id),
        })
        .collect();
    Ok(Json(UsersAnswer {
        count: users.len(),
        users,
    }))
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
