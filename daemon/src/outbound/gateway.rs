//! The `gateway` transport: outbox records delivered into a peer's OpenClaw agent session over
//! the warm connections of [`crate::gateway::Pool`].
//!
//! Why a thin adapter: the pool already owns connecting, the signed handshake, reconnection and
//! error classification; the outbox owns ordering, retries and deadlines. This file only reads
//! the record, builds the text and maps a [`GatewayError`] onto an [`Outcome`].
//!
//! Record payload (written by `control/handlers/send.rs`):
//!
//! ```json
//! {"url": "ws://host:18789", "token": "...", "message": "hi", "from": "alice"|null,
//!  "method": "system-event"|"wake"|"chat.send"|"agent", "session": "agent:main:main"|null}
//! ```
//!
//! The peer sees `[clawlink] message from {from}: {message}`; `from` defaults to this machine's
//! host name (or `clawlink`). The idempotency key is the outbox record id, so a retry after a
//! lost answer is applied once by the gateway.

use super::{BoxFuture, Outcome, Transport};
use crate::gateway::{Delivery, GatewayError, Pool};
use crate::store::outbox::OutboxRecord;
use clawlink::proto::ApiError;
use clawlink::Secret;
use serde::Deserialize;

/// The record payload (see the module docs). `Debug` is not derived: it holds the token.
#[derive(Deserialize)]
struct Payload {
    url: String,
    #[serde(default)]
    token: Secret,
    message: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    session: Option<String>,
}

/// Delivers `gateway` records through a [`Pool`].
pub struct GatewayTransport {
    pool: Pool,
}

impl GatewayTransport {
    /// A transport over `pool`.
    pub fn new(pool: Pool) -> Self {
        Self { pool }
    }

    async fn attempt(&self, record: &OutboxRecord) -> Outcome {
        let p: Payload = match serde_json::from_value(record.payload.clone()) {
            Ok(p) => p,
            Err(e) => {
                return Outcome::Failed(ApiError::new(
                    "bad_record",
                    format!("unreadable gateway outbox record: {e}"),
                ))
            }
        };
        let method = match p.method.as_deref().unwrap_or("system-event").parse() {
            Ok(m) => m,
            Err(e) => return outcome(e),
        };
        let from = p
            .from
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(local_name);
        let delivery = Delivery {
            method,
            session: p.session.filter(|s| !s.is_empty()),
            text: format!("[clawlink] message from {from}: {}", p.message),
            idempotency_key: record.id.clone(),
        };
        match self.pool.send_message(&p.url, &p.token, &delivery).await {
            Ok(_) => Outcome::Delivered,
            Err(e) => outcome(e),
        }
    }
}

impl Transport for GatewayTransport {
    fn kind(&self) -> &'static str {
        "gateway"
    }

    fn deliver<'a>(&'a self, record: &'a OutboxRecord) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(record))
    }
}

/// Maps a gateway failure onto the outbox's retry-or-give-up decision.
pub fn outcome(e: GatewayError) -> Outcome {
    if e.is_retryable() {
        Outcome::Retry {
            after: e.retry_after(),
            error: ApiError::from(&e),
        }
    } else {
        Outcome::Failed(ApiError::from(&e))
    }
}

/// This machine's host name, or `clawlink`.
pub fn local_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().chars().take(64).collect::<String>())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "clawlink".to_string())
}
