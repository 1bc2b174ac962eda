//! The inbound endpoint: an `axum::Router` the daemon's listener mounts next to the webhook.
//!
//! ```text
//! GET  /.well-known/agent-card.json   the Agent Card (also /.well-known/agent.json)
//! POST /a2a/v1                        JSON-RPC 2.0, one request or a batch (see super::rpc)
//!      Authorization: Bearer TOKEN    a peer's token (`clawlink a2a peer add NAME`)
//!   → 200 {"jsonrpc":"2.0","id":..,"result":..}   SendMessage: {"task": Task}; GetTask: Task
//!   → 200 {"jsonrpc":"2.0","id":..,"error":{code,message}}
//!   → 401 error -32000   no or unknown token (checked before the body is read)
//!   → 413 error -32600   body over 1 MiB
//!   → 429 error -32000   over the peer's rate (each batch entry counts), with Retry-After
//!   → 503 error -32000   the store cannot write: nothing was accepted, retry
//! ```
//!
//! A `SendMessage` is answered only once its message and task are on disk. Without
//! `returnImmediately` it waits up to `reply_wait_secs` for a final state, then answers with
//! the task as it stands (the caller polls `GetTask`). The 0.3 names answer in the 0.3 shape.
//! `CancelTask` is refused with -32002: once stored, the message is in the inbox and may be with
//! the agent already, and there is no way to take it back, so "canceled" would not be true.

use super::rpc::{self, code, Body, Call, Dialect, Entry, RpcError};
use super::tasks::Tasks;
use super::wire::{to_v03, Task};
use crate::config::a2a::A2aConfig;
use axum::body::Body as HttpBody;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::DefaultKeyedRateLimiter;
use serde_json::{json, Value};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Largest response (the same as OpenClaw's).
const MAX_RESPONSE: usize = 1024 * 1024;

struct Endpoint {
    tasks: Tasks,
    config: A2aConfig,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
}

/// The router: the card and `/a2a/v1`.
pub fn router(tasks: Tasks, config: A2aConfig) -> Router {
    let limiter = NonZeroU32::new(config.rate_limit_per_minute)
        .map(|n| governor::RateLimiter::keyed(governor::Quota::per_minute(n).allow_burst(n)));
    let ep = Arc::new(Endpoint {
        tasks,
        config,
        limiter,
    });
    Router::new()
        .route("/.well-known/agent-card.json", get(card))
        .route("/.well-known/agent.json", get(card))
        .route("/a2a/v1", post(rpc_endpoint))
        .with_state(ep)
}

async fn card(State(ep): State<Arc<Endpoint>>, headers: HeaderMap) -> Response {
    Json(super::card::card(&ep.config, &headers)).into_response()
}

fn error_body(id: Option<Value>, e: &RpcError) -> Value {
    json!({"jsonrpc": "2.0", "id": id.unwrap_or(Value::Null), "error": {"code": e.code, "message": e.message}})
}

fn http_error(status: StatusCode, e: RpcError) -> Response {
    let mut r = (status, Json(error_body(None, &e))).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        r.headers_mut()
            .insert("retry-after", axum::http::HeaderValue::from_static("2"));
    }
    r
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl Endpoint {
    /// Takes `n` requests from `peer`'s allowance.
    fn allow(&self, peer: &str, n: usize) -> bool {
        let Some(l) = &self.limiter else { return true };
        let Some(n) = NonZeroU32::new(n as u32) else {
            return true;
        };
        matches!(l.check_key_n(&peer.to_string(), n), Ok(Ok(())))
    }
}

async fn rpc_endpoint(State(ep): State<Arc<Endpoint>>, req: Request) -> Response {
    let peer = match bearer(req.headers()).map(|t| ep.tasks.store().peer_for_token(t)) {
        Some(Ok(Some(peer))) => peer,
        Some(Err(e)) => {
            tracing::error!(error = %e, "A2A peers unreadable");
            return http_error(
                StatusCode::SERVICE_UNAVAILABLE,
                RpcError::new(code::SERVER, "the store failed; retry later"),
            );
        }
        _ => {
            return http_error(
                StatusCode::UNAUTHORIZED,
                RpcError::new(
                    code::SERVER,
                    "unauthorized: send Authorization: Bearer TOKEN with the token from `clawlink a2a peer add NAME`",
                ),
            )
        }
    };
    if !ep.allow(&peer, 1) {
        return http_error(
            StatusCode::TOO_MANY_REQUESTS,
            RpcError::new(
                code::SERVER,
                "rate limited: too many requests from this peer",
            ),
        );
    }
    let body = match axum::body::to_bytes(HttpBody::new(req.into_body()), rpc::MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return http_error(
                StatusCode::PAYLOAD_TOO_LARGE,
                RpcError::new(
                    code::INVALID_REQUEST,
                    format!("request body exceeds {} bytes", rpc::MAX_BODY),
                ),
            )
        }
    };
    let parsed = match rpc::parse(&body) {
        Ok(b) => b,
        Err(e) => return Json(error_body(None, &e)).into_response(),
    };
    match parsed {
        Body::Single(entry) => match ep.run(&peer, entry).await {
            Ok(Some(v)) => respond(v),
            Ok(None) => StatusCode::OK.into_response(),
            Err(r) => r,
        },
        Body::Batch(entries) => {
            if !ep.allow(&peer, entries.len().saturating_sub(1)) {
                return http_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    RpcError::new(
                        code::SERVER,
                        "rate limited: the batch is over this peer's allowance",
                    ),
                );
            }
            let mut out = Vec::new();
            for entry in entries {
                match ep.run(&peer, entry).await {
                    Ok(Some(v)) => out.push(v),
                    Ok(None) => {}
                    Err(r) => return r,
                }
            }
            if out.is_empty() {
                StatusCode::OK.into_response()
            } else {
                respond(Value::Array(out))
            }
        }
    }
}

/// Sends `v`, or errors in its place when it is over [`MAX_RESPONSE`].
fn respond(v: Value) -> Response {
    let size = serde_json::to_vec(&v)
        .map(|b| b.len())
        .unwrap_or(usize::MAX);
    if size <= MAX_RESPONSE {
        return Json(v).into_response();
    }
    let e = RpcError::new(
        code::SERVER,
        "the response exceeds 1 MiB; ask with historyLength 0",
    );
    let cut = |one: &Value| error_body(Some(one["id"].clone()), &e);
    match &v {
        Value::Array(items) => Json(Value::Array(items.iter().map(cut).collect())).into_response(),
        one => Json(cut(one)).into_response(),
    }
}

fn task_value(task: Task, dialect: Dialect, history: Option<u32>, wrap: bool) -> Value {
    let mut v = serde_json::to_value(task.with_history(history)).unwrap_or(Value::Null);
    match dialect {
        Dialect::V03 => {
            to_v03(&mut v);
            v
        }
        Dialect::V1 if wrap => json!({ "task": v }),
        Dialect::V1 => v,
    }
}

impl Endpoint {
    /// Runs one entry. `Ok(None)` for a notification; `Err` when the store fails (the whole
    /// request is then answered 503, so the caller retries all of it).
    async fn run(&self, peer: &str, entry: Entry) -> Result<Option<Value>, Response> {
        let Entry { id, dialect, call } = entry;
        let result = match call {
            Err(e) => Err(e),
            Ok(call) => self.call(peer, call, dialect).await,
        };
        match result {
            Err(e) if e.code == code::SERVER => Err(http_error(StatusCode::SERVICE_UNAVAILABLE, e)),
            _ if id.is_none() => Ok(None),
            Ok(v) => Ok(Some(json!({"jsonrpc": "2.0", "id": id, "result": v}))),
            Err(e) => Ok(Some(error_body(id, &e))),
        }
    }

    async fn call(&self, peer: &str, call: Call, dialect: Dialect) -> Result<Value, RpcError> {
        let not_found = || RpcError::new(code::TASK_NOT_FOUND, "task not found");
        match call {
            Call::Send(send) => {
                if let Some(push) = &send.push {
                    super::push_guard::check(&push.url, &self.config.push_private_hosts)
                        .await
                        .map_err(|e| RpcError::new(code::INVALID_PARAMS, e))?;
                }
                let record = self.tasks.accept(peer, &send).await?;
                let mut task = record.task;
                if !send.return_immediately {
                    let wait = Duration::from_secs(self.config.reply_wait_secs);
                    if let Some(t) = self.tasks.wait(peer, &task.id, wait).await? {
                        task = t;
                    }
                }
                Ok(task_value(task, dialect, send.history_length, true))
            }
            Call::Get { id, history_length } => {
                let task = self.tasks.get(peer, &id)?.ok_or_else(not_found)?;
                Ok(task_value(task, dialect, history_length, false))
            }
            Call::Cancel { id } => {
                let task = self.tasks.get(peer, &id)?.ok_or_else(not_found)?;
                let why = if task.status.state.is_terminal() {
                    format!("task is already {}", task.status.state.short())
                } else {
                    "task cannot be canceled: its message is stored in the inbox and may already be with the agent, which has no way to take it back".into()
                };
                Err(RpcError::new(code::NOT_CANCELABLE, why))
            }
        }
    }
}
