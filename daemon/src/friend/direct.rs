//! `POST /envelope`: friends reach this daemon directly, without a relay and without a shared
//! bearer token, because the envelope's signature authenticates its sender.
//!
//! It shares the webhook's listener (give friends `http(s)://PUBLIC_HOST/envelope` with
//! `clawlink friend invite --via`, or set `listen.public_url`), but not its Host/Origin guard:
//! a friend's request names the public host. Plaintext writes (`POST /message`) keep their
//! token and guard.
//!
//! ```text
//! POST /envelope   body: the `cle1:` text (Content-Type ignored; at most the envelope cap)
//!   → 200 {"ok":true,"outcome":"message"|"duplicate"|"receipt"|"key_update"|"held"|"friend_added",
//!          "reply":"cle1:..."}      reply: the signed receipt, when there is one
//!   → 400 {"ok":false,"error":"..."}  not an envelope
//!   → 403 {"ok":false,"error":CODE,"reply":"cle1:..."}  refused (bad signature, replay, ...);
//!          the reply is a signed `rejected` receipt when the sender is a friend
//!   → 413 body over the cap; 503 the store cannot write (nothing was taken: retry)
//! ```
//!
//! A message is durable in the inbox before the answer is written; the receipt travels back
//! in the answer, not through the outbox.

use super::Friends;
use crate::trust::engine::TrustError;
use crate::trust::envelope::{MAX_TEXT, PREFIX};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

/// The `/envelope` route.
pub fn router(friends: Arc<Friends>) -> Router {
    Router::new()
        .route("/envelope", post(envelope))
        .layer(DefaultBodyLimit::max(MAX_TEXT + 64))
        .with_state(friends)
}

async fn envelope(State(friends): State<Arc<Friends>>, body: String) -> Response {
    let text = body.trim();
    if !text.starts_with(PREFIX) {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({"ok": false, "error": "not a clawlink envelope (expected cle1:...)"}),
        );
    }
    match super::open::open(&friends, text, "http").await {
        Ok(mut h) => {
            h.seal_ack(&friends);
            for r in h.later {
                friends.send(r);
            }
            let reply = h.reply.map(|o| o.text);
            if h.outcome == "rejected" {
                answer(
                    StatusCode::FORBIDDEN,
                    json!({"ok": false, "error": h.status, "reply": reply}),
                )
            } else {
                answer(
                    StatusCode::OK,
                    json!({"ok": true, "outcome": h.outcome, "reply": reply}),
                )
            }
        }
        Err(TrustError::Store(e)) => {
            tracing::warn!(error = %e, "an envelope could not be stored");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"ok": false, "error": "the store cannot write now; try again"}),
            )
        }
        Err(e) => answer(
            StatusCode::BAD_REQUEST,
            json!({"ok": false, "error": e.to_string()}),
        ),
    }
}

fn answer(status: StatusCode, body: serde_json::Value) -> Response {
    (status, Json(body)).into_response()
}
