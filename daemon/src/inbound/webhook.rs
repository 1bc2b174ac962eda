//! The inbound webhook: the seed's `listen --port 19900`, done durably, and closed to web
//! pages and to other local users.
//!
//! ```text
//! POST /message   {"from":"tames","message":"hi", "id"?: "sender-unique-id", ...}
//!                 → 200 {"ok":true,"id":42}            after the message is on disk
//!                 → 400 {"ok":false,"error":"..."}     bad JSON, missing/empty message
//!                 → 401 {"ok":false,"error":"..."}     token configured and missing/wrong
//!                 → 413 {"ok":false,"error":"..."}     body over listen.max_body (64 KiB)
//!                 → 415 {"ok":false,"error":"..."}     Content-Type is not application/json
//!                 → 503 {"ok":false,"error":"..."}     the store cannot write (disk full, ...):
//!                                                      NOT acknowledged, the sender must retry
//!                 → 507 {"ok":false,"error":"..."}     the inbox is full ([inbox] caps): NOT
//!                                                      stored, retry once messages are deleted
//! GET  /messages  ?unread=true&limit=N&before=ID → [ {id, source, from, message, ...}, ... ]
//!                 (oldest first, the newest N below ID; the seed's shape: a JSON array)
//!                 → 403 when no listen.token is configured (read with `clawlink inbox`)
//! GET  /health    → {"ok":true,"status":"live","version":"...","messages":N}
//! 421 / 403       a foreign Host or Origin (see [`guard`])
//! ```
//!
//! **Reading** the inbox over HTTP always needs `Authorization: Bearer TOKEN`: the inbox holds
//! Nexus session ids and whatever friends wrote, and any local user can reach a loopback port.
//! Without `listen.token` the answer is 403 pointing to `clawlink inbox` (the control socket
//! checks the caller's uid). A page has at most [`MAX_PAGE`] messages and about
//! [`MAX_PAGE_BYTES`]; when more are older, the `X-Clawlink-Before` header gives the `before=`
//! of the next page. At most [`MAX_READERS`] replies are built at once (503 beyond).
//!
//! **Writing** needs the token when one is configured. Without one, any local user can post;
//! such messages are stored with `meta.authenticated: false` (source `webhook`), so that the
//! inbound policy can treat them as unverified. A missing `from` is stored as `"unknown"`, as
//! the seed did. An optional `id` field makes retries idempotent: the same `id` from the same
//! sender is stored once and acknowledged with the original inbox id. Binding a non-loopback
//! address without a token is refused at start (see [`crate::config`]).

pub mod guard;

use super::Ingest;
use crate::config::ListenConfig;
use crate::store::inbox::{Inbox, NewMessage};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clawlink::proto::InboxQuery;
use clawlink::Secret;
use serde::Deserialize;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// Longest accepted `from`.
const MAX_FROM: usize = 256;
/// Most messages in one `GET /messages` page (and the default `limit`).
pub const MAX_PAGE: u32 = 100;
/// A page stops growing at about this many bytes of message text.
pub const MAX_PAGE_BYTES: usize = 4 << 20;
/// `GET /messages` replies built at once.
pub const MAX_READERS: usize = 4;

struct Hook {
    ingest: Ingest,
    inbox: Inbox,
    token: Option<Secret>,
    guard: guard::Guard,
    readers: Semaphore,
}

/// The webhook router for a listener bound to `bound`.
pub fn router(ingest: Ingest, inbox: Inbox, cfg: &ListenConfig, bound: SocketAddr) -> Router {
    let hook = Arc::new(Hook {
        ingest,
        inbox,
        token: cfg.token.clone().filter(|t| !t.is_empty()),
        guard: guard::Guard::new(bound, &cfg.allowed_hosts, &cfg.allowed_origins),
        readers: Semaphore::new(MAX_READERS),
    });
    Router::new()
        .route("/message", post(post_message))
        .route("/messages", get(get_messages))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(cfg.max_body))
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&hook),
            check_guard,
        ))
        .with_state(hook)
}

/// Serves the webhook, and the `extra` routes of other endpoints that share its listener (they
/// do their own authentication), on `listener` until `shutdown`, with its connection cap.
pub async fn serve(
    listener: tokio::net::TcpListener,
    ingest: Ingest,
    inbox: Inbox,
    cfg: &ListenConfig,
    extra: Option<Router>,
    shutdown: tokio_util::sync::CancellationToken,
) -> anyhow::Result<()> {
    let bound = listener.local_addr()?;
    let limits = crate::http::ServeLimits {
        max_connections: cfg.max_connections.max(1),
        ..Default::default()
    };
    let mut router = router(ingest, inbox, cfg, bound);
    if let Some(extra) = extra {
        router = router.merge(extra);
    }
    crate::http::serve_limited(listener, router, shutdown, limits).await
}

async fn check_guard(
    axum::extract::State(hook): axum::extract::State<Arc<Hook>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match hook.guard.check(req.method(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err((status, msg)) => error(status, msg),
    }
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"ok": false, "error": msg.into()}))).into_response()
}

fn authorized(hook: &Hook, headers: &HeaderMap) -> bool {
    let Some(token) = &hook.token else {
        return true;
    };
    let given = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    crate::http::secret_eq(given.as_bytes(), token.expose().as_bytes())
}

#[derive(Deserialize)]
struct PostBody {
    from: Option<serde_json::Value>,
    message: Option<serde_json::Value>,
    id: Option<serde_json::Value>,
}

/// Parses a `POST /message` body into an inbox entry, or says what is wrong with it.
/// Pure (no I/O), so it is fuzzed directly.
pub fn parse_post(body: &[u8]) -> Result<NewMessage, String> {
    let parsed: PostBody =
        serde_json::from_slice(body).map_err(|e| format!("body is not a JSON object: {e}"))?;
    let from = match parsed.from {
        Some(serde_json::Value::String(s)) if !s.trim().is_empty() && s.len() <= MAX_FROM => s,
        // The seed's listener stored a message without a sender as from "unknown".
        None | Some(serde_json::Value::Null) => "unknown".to_string(),
        Some(_) => {
            return Err(format!(
                "\"from\" must be a non-empty string of at most {MAX_FROM} bytes"
            ))
        }
    };
    let message = match parsed.message {
        Some(serde_json::Value::String(s)) if !s.is_empty() => s,
        Some(_) => return Err("\"message\" must be a non-empty string".into()),
        None => return Err("missing field \"message\"".into()),
    };
    let source_id = match parsed.id {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.len() <= 256 => Some(format!("{from}\0{s}")),
        Some(serde_json::Value::Number(n)) => Some(format!("{from}\0{n}")),
        Some(_) => return Err("\"id\" must be a string (at most 256 bytes) or a number".into()),
    };
    Ok(NewMessage {
        source: "webhook".into(),
        source_id,
        from,
        message,
        meta: Default::default(),
    })
}

async fn post_message(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
) -> Response {
    if !authorized(&hook, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong Authorization: Bearer token",
        );
    }
    let body = match body {
        Ok(b) => b,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "body too large")
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("cannot read body: {e}")),
    };
    let mut msg = match parse_post(&body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    // Without a token anyone on this machine could have written it: say so on the message.
    msg.meta
        .insert("authenticated".into(), json!(hook.token.is_some()));
    match hook.ingest.store(msg).await {
        Ok(stored) => Json(json!({"ok": true, "id": stored.id()})).into_response(),
        Err(e @ crate::store::StoreError::InboxFull { .. }) => {
            error(StatusCode::INSUFFICIENT_STORAGE, format!("not stored: {e}"))
        }
        Err(e) => {
            tracing::error!(error = %e, "webhook message NOT stored");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the message could not be stored (not acknowledged); retry later",
            )
        }
    }
}

#[derive(Deserialize)]
struct MessagesQuery {
    #[serde(default)]
    unread: bool,
    limit: Option<u32>,
    before: Option<u64>,
}

async fn get_messages(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    q: Result<Query<MessagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if hook.token.is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "reading the inbox over HTTP needs [listen] token in the config (then Authorization: Bearer TOKEN); use `clawlink inbox` instead",
        );
    }
    if !authorized(&hook, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong Authorization: Bearer token",
        );
    }
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad query: use ?unread=true&limit=N&before=ID",
        );
    };
    let Ok(_reader) = hook.readers.try_acquire() else {
        let mut r = error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many inbox reads at once; retry",
        );
        r.headers_mut()
            .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(1));
        return r;
    };
    let limit = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let query = InboxQuery {
        unread: q.unread,
        limit: Some(limit),
        before: q.before,
        ..Default::default()
    };
    let mut list = match hook.inbox.list(&query) {
        Ok(list) => list,
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")),
    };
    // Keep the newest messages that fit; older ones are for the next page.
    let (mut bytes, mut keep) = (0, 0);
    for m in list.iter().rev() {
        bytes += m.message.len() + m.from.len() + 256;
        if bytes > MAX_PAGE_BYTES && keep > 0 {
            break;
        }
        keep += 1;
    }
    let full = keep < list.len() || list.len() == limit as usize;
    list.drain(..list.len() - keep);
    let next = list.first().map(|m| m.id).filter(|_| full);
    let mut resp = Json(list).into_response();
    if let Some(id) = next {
        resp.headers_mut()
            .insert("x-clawlink-before", HeaderValue::from(id));
    }
    resp
}

async fn health(State(hook): State<Arc<Hook>>) -> Response {
    Json(json!({
        "ok": true,
        "status": "live",
        "version": env!("CARGO_PKG_VERSION"),
        "messages": hook.inbox.counts().total,
    }))
    .into_response()
}
