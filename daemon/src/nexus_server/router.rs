//! The route table, `/health`, `/v1/stats`, and JSON answers for unknown routes.
//!
//! ```text
//! GET /health    200 {status:"ok", version, uptime, capabilities:{messageFormat:["text","json"],
//!                     longPoll:true, longPollMaxWait:25, durable:true}}
//! GET /v1/stats  200 {activeSessions, totalAgents, totalMessages, uptime}
//! ```
//!
//! `uptime` is in whole seconds. `/health` is the shared [`Health`] (the client reads the
//! long-poll capabilities from it); `/v1/stats` is the server's own. Unknown paths are 404 `not_found`, wrong methods 405
//! `method_not_allowed`, both in the protocol's error shape.

use super::error::ApiError;
use super::limits::{self, RateLimitState};
use super::state::AppState;
use super::{instructions, messages, pairing, sessions, LONG_POLL_MAX_SECS};
use crate::nexus::wire::{Capabilities, Health};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde_json::json;

/// Builds the router; `max_body` caps every request body.
pub fn build(app: AppState, rl: RateLimitState, max_body: usize) -> Router {
    let limited = Router::new()
        .route("/v1/sessions", put(sessions::create).post(sessions::create))
        .route("/v1/sessions/{id}", get(sessions::status))
        .route("/v1/sessions/{id}/join", post(sessions::join))
        .route("/v1/sessions/{id}/agents/{agent}", delete(sessions::leave))
        .route("/v1/sessions/{id}/renew", post(sessions::renew))
        .route(
            "/v1/sessions/{id}/messages",
            post(messages::send).get(messages::poll),
        )
        .route("/v1/pair", put(pairing::create).post(pairing::create))
        .route("/v1/pair/{code}/claim", post(pairing::claim))
        .route("/v1/pair/{code}/status", get(pairing::status))
        .route("/v1/pair/{code}/skill", get(instructions::show))
        .route("/p/{code}", get(instructions::show))
        .route("/v1/stats", get(stats))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(rl, limits::limit));
    Router::new()
        .route("/health", get(health))
        .merge(limited)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(app)
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such endpoint")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "Method not allowed on this endpoint",
    )
}

async fn health(State(app): State<AppState>) -> impl IntoResponse {
    Json(Health {
        capabilities: Capabilities {
            durable: true,
            long_poll: true,
            long_poll_max_wait: Some(LONG_POLL_MAX_SECS.min(app.limits.max_wait)),
            message_format: vec!["text".into(), "json".into()],
        },
        status: "ok".into(),
        uptime: app.started.elapsed().as_secs(),
        version: env!("CARGO_PKG_VERSION").into(),
    })
}

async fn stats(State(app): State<AppState>) -> impl IntoResponse {
    let now = crate::time::now_ms();
    let (mut sessions, mut agents, mut messages) = (0u64, 0u64, 0u64);
    for s in app.sessions.all() {
        let st = s.lock();
        if st.check_live(now).is_ok() {
            sessions += 1;
            agents += st.rec.agents.len() as u64;
            messages += st.count;
        }
    }
    Json(
        json!({ "activeSessions": sessions, "totalAgents": agents, "totalMessages": messages, "uptime": app.started.elapsed().as_secs() }),
    )
}
