//! The inbound webhook: the seed's `listen --port 19900`, done durably.
//!
//! ```text
//! POST /message   {"from":"tames","message":"hi", "id"?: "sender-unique-id", ...}
//!                 → 200 {"ok":true,"id":42}            after the message is on disk
//!                 → 400 {"ok":false,"error":"..."}     bad JSON, missing/empty field
//!                 → 401 {"ok":false,"error":"..."}     token required and missing/wrong
//!                 → 413 {"ok":false,"error":"..."}     body over listen.max_body (64 KiB)
//!                 → 503 {"ok":false,"error":"..."}     the store cannot write (disk full, ...):
//!                                                      NOT acknowledged, the sender must retry
//! GET  /messages  ?unread=true&limit=N → {"count":N,"messages":[...]} (oldest first)
//! GET  /health    → {"ok":true,"status":"live","version":"..."}
//! ```
//!
//! With `listen.token` set, `POST /message` and `GET /messages` need
//! `Authorization: Bearer TOKEN`. Binding a non-loopback address without a token is refused at
//! start (see [`crate::config`]). An optional `id` field makes retries idempotent: the same
//! `id` from the same sender is stored once and acknowledged with the original inbox id.

use super::Ingest;
use crate::store::inbox::{Inbox, NewMessage};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clawlink::proto::InboxQuery;
use clawlink::Secret;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// Longest accepted `from`.
const MAX_FROM: usize = 256;

struct Hook {
    ingest: Ingest,
    inbox: Inbox,
    token: Option<Secret>,
}

/// The webhook router.
pub fn router(ingest: Ingest, inbox: Inbox, token: Option<Secret>, max_body: usize) -> Router {
    let hook = Arc::new(Hook {
        ingest,
        inbox,
        token: token.filter(|t| !t.is_empty()),
    });
    Router::new()
        .route("/message", post(post_message))
        .route("/messages", get(get_messages))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(hook)
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
        Some(_) => {
            return Err(format!(
                "\"from\" must be a non-empty string of at most {MAX_FROM} bytes"
            ))
        }
        None => return Err("missing field \"from\"".into()),
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
    let msg = match parse_post(&body) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match hook.ingest.store(msg).await {
        Ok(stored) => Json(json!({"ok": true, "id": stored.id()})).into_response(),
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
}

async fn get_messages(
    State(hook): State<Arc<Hook>>,
    headers: HeaderMap,
    q: Result<Query<MessagesQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    if !authorized(&hook, &headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong Authorization: Bearer token",
        );
    }
    let Ok(Query(q)) = q else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad query: use ?unread=true&limit=N",
        );
    };
    let query = InboxQuery {
        unread: q.unread,
        limit: Some(q.limit.unwrap_or(100).min(1000)),
        ..Default::default()
    };
    match hook.inbox.list(&query) {
        Ok(list) => Json(json!({"count": list.len(), "messages": list})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("store: {e}")),
    }
}

async fn health() -> Response {
    Json(json!({"ok": true, "status": "live", "version": env!("CARGO_PKG_VERSION")}))
        .into_response()
}
