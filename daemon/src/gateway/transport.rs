//! The `gateway` transport: outbox records delivered into a peer's OpenClaw agent session over
//! the warm connections of [`crate::gateway::Pool`].
//!
//! Why a thin adapter: the pool already owns connecting, the signed handshake, reconnection and
//! error classification; the outbox owns ordering, retries and deadlines. This file only turns
//! an address into a [`GatewaySend`], builds the text and maps a [`GatewayError`] onto an
//! [`Outcome`].
//!
//! Addresses: `ws://HOST:PORT` and `wss://HOST` (one lane per URL). Payload: [`GatewaySend`]
//! `{url, token, message, from, method, session}`.
//!
//! The peer sees `[clawlink] message from {from}: {message}`; `from` defaults to this machine's
//! host name (or `clawlink`). The idempotency key is the outbox record id, so a retry after a
//! lost answer is applied once by the gateway.

use super::{Delivery, DeliveryMethod, GatewayError, Pool, PoolOptions};
use crate::status::StatusSource;
use crate::transport::{
    BoxFuture, Context, GatewaySend, Outcome, Payload, Record, Route, SendRequest, Transport,
};
use clawlink::proto::{ApiError, ConnectionRow};
use clawlink::Secret;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The gateway transport: the pool, and the status of the local-agent worker when one is
/// configured.
pub struct GatewayTransport {
    pool: Pool,
    local: OnceLock<Arc<dyn StatusSource>>,
}

/// Builds the pool (device key, token store). The local-agent worker, which uses the pool, is
/// the policy's (`crate::policy::local_agent`): it is started next and attached
/// ([`GatewayTransport::attach_local`]).
pub fn start(ctx: &Context) -> anyhow::Result<Arc<GatewayTransport>> {
    let config = ctx.config.get();
    let mut opts = PoolOptions::new(&ctx.data_dir);
    opts.idle_timeout = Duration::from_secs(config.gateway.idle_timeout_secs.max(1));
    opts.request_timeout = Duration::from_secs(config.gateway.request_timeout_secs.max(1));
    opts.shutdown = ctx.shutdown.clone();
    opts.tracker = ctx.tracker.clone();
    opts.http = ctx.http.clone();
    let pool =
        Pool::new(opts).map_err(|e| anyhow::anyhow!("cannot set up the gateway client: {e}"))?;
    Ok(Arc::new(GatewayTransport {
        pool,
        local: OnceLock::new(),
    }))
}

impl GatewayTransport {
    /// The pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Shows the local-agent worker's rows with the gateway's (once; a second is ignored).
    pub fn attach_local(&self, worker: Arc<dyn StatusSource>) {
        let _ = self.local.set(worker);
    }

    async fn attempt(&self, record: &Record) -> Outcome {
        let Payload::Gateway(p) = &record.payload else {
            return Outcome::Failed(ApiError::new("bad_record", "not a gateway outbox record"));
        };
        let method = match p.method.as_deref().unwrap_or("system-event").parse() {
            Ok(m) => m,
            Err(e) => return outcome(e),
        };
        let from = p
            .from
            .clone()
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(local_name);
        let delivery = Delivery {
            method,
            session: p.session.clone().filter(|s| !s.is_empty()),
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

    fn accepts(&self) -> &'static [&'static str] {
        &["ws", "wss"]
    }

    fn route(&self, req: &SendRequest<'_>) -> Result<Route, ApiError> {
        let p = req.params;
        // An address that can never be reached fails now, not after a day of retries.
        let host_ok = reqwest::Url::parse(req.url.trim()).is_ok_and(|u| {
            matches!(u.scheme(), "ws" | "wss") && u.host_str().is_some_and(|h| !h.is_empty())
        });
        if !host_ok {
            return Err(ApiError::new(
                "bad_request",
                format!("{:?} is not a gateway address", req.url),
            )
            .with_hint("a gateway address looks like ws://HOST:PORT or wss://HOST"));
        }
        let method = p.method.clone().unwrap_or_else(|| "system-event".into());
        if method.parse::<DeliveryMethod>().is_err() {
            return Err(ApiError::new(
                "bad_request",
                format!("unknown method {method:?}; use system-event, wake, chat.send or agent"),
            ));
        }
        Ok(Route {
            target: req.url.to_string(),
            payload: Payload::Gateway(GatewaySend {
                url: req.url.to_string(),
                token: req.token.clone(),
                message: p.message.clone(),
                from: p.from.clone(),
                method: Some(method),
                session: p.session.clone(),
            }),
        })
    }

    fn deliver<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(record))
    }

    fn ping<'a>(
        &'a self,
        url: &'a str,
        token: &'a Secret,
    ) -> Option<BoxFuture<'a, serde_json::Value>> {
        Some(Box::pin(async move {
            let result = self.pool.ping(url, token).await;
            serde_json::to_value(super::ping_reply(url, &result)).unwrap_or_default()
        }))
    }
}

impl StatusSource for GatewayTransport {
    fn rows(&self) -> Vec<ConnectionRow> {
        let mut rows = self.pool.rows();
        if let Some(l) = self.local.get() {
            rows.extend(l.rows());
        }
        rows
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
