//! Delivery of every inbound message into the local OpenClaw agent, through its gateway.
//!
//! Why a queue rather than a subscriber: the local gateway may be down (restarting, not yet
//! started at boot) and the daemon may restart too, yet every message must reach the agent at
//! least once. So when `[local_gateway]` is configured the inbox also records each new message
//! in its durable `agent_pending` queue ([`crate::store::inbox::Inbox::set_track_agent`]), in the
//! same write as the message itself. This worker takes the queue oldest first, injects each
//! message, and only then removes it (`agent_delivered`). A crash between the two re-delivers
//! one message; the gateway drops the repeat by its idempotency key.
//!
//! Every message goes through the inbound policy ([`super::route`]): it decides the
//! level of the sender and then holds, blocks, sends a short notice to the main session
//! (by `[local_gateway] method`) or delivers the framed content into the sender's own
//! `hook:clawlink:…` session (`/hooks/agent`), where OpenClaw wraps it as untrusted external
//! content. Nothing a sender wrote reaches the main session. Deliveries carry the key
//!
//! ```text
//! clawlink-inbox-{first 16 hex digits of our device id}-{inbox id}
//! ```
//!
//! Inbox ids restart in a new data directory, the device id (whose key lives in the same
//! directory) does not collide across them, so the key is stable per message and unique.
//!
//! The worker is the policy's (routing is what it does) and uses the gateway's pool: it is
//! started right after the gateway transport (`crate::agent::transports`), before any other
//! transport receives, and its `status` rows are shown with the gateway's
//! ([`crate::gateway::GatewayTransport::attach_local`]). It holds the inbox, the hub's wake-up,
//! the pool and the policy engine, and nothing of the daemon's shared state.
//!
//! The worker wakes on every publish ([`crate::delivery::Hub::agent_wake`]) and also polls
//! every [`POLL`]. While the gateway is unreachable it backs off exponentially up to
//! [`MAX_BACKOFF`] (the shared [`Backoff`]); a refusal that needs a person (bad token, missing scope, unapproved
//! device) waits [`MAX_BACKOFF`] between tries, so a corrected config (SIGHUP) is picked up.
//! A message the gateway rejects as malformed is skipped with a warning, so it cannot block
//! the queue forever.

use super::Engine;
use crate::gateway::error::display_url;
use crate::gateway::{GatewayError, Pool};
use crate::live_config::LiveConfig;
use crate::status::StatusSource;
use crate::store::inbox::Inbox;
use crate::transport::Context;
use crate::util::Backoff;
use clawlink::proto::ConnectionRow;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Messages taken from the queue at once.
const BATCH: usize = 32;
/// Poll interval when nothing wakes the worker.
pub const POLL: Duration = Duration::from_secs(5);
/// First retry delay after a failure.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// Longest retry delay.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What `status` shows for the worker.
#[derive(Default, Clone)]
struct Shown {
    state: &'static str,
    target: String,
    last_error: Option<String>,
    delivered: u64,
    skipped: u64,
    rtt_ms: Option<f64>,
}

/// The worker's shared half: what it needs and what `status` shows (kind `local-agent`).
pub struct LocalAgent {
    shown: Mutex<Shown>,
    inbox: Inbox,
    ingest: crate::inbound::Ingest,
    db: crate::store::Db,
    policy: Engine,
    pool: Pool,
    config: LiveConfig,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
}

impl StatusSource for LocalAgent {
    fn rows(&self) -> Vec<ConnectionRow> {
        let s = self.shown.lock().map(|s| s.clone()).unwrap_or_default();
        let mut info = BTreeMap::new();
        info.insert("delivered".to_string(), s.delivered.to_string());
        if s.skipped > 0 {
            info.insert("skipped".to_string(), s.skipped.to_string());
        }
        if let Ok(p) = self.inbox.agent_pending(1000) {
            info.insert("pending".to_string(), p.len().to_string());
        }
        vec![ConnectionRow {
            kind: "local-agent".into(),
            target: s.target,
            state: s.state.into(),
            last_error: s.last_error,
            rtt_ms: s.rtt_ms,
            info,
        }]
    }
}

impl LocalAgent {
    fn set(&self, f: impl FnOnce(&mut Shown)) {
        if let Ok(mut s) = self.shown.lock() {
            f(&mut s);
        }
    }
}

/// Starts the worker when `[local_gateway]` is configured; returns its status source.
pub fn start(ctx: &Context, policy: Engine, pool: Pool) -> Option<Arc<LocalAgent>> {
    let lg = ctx.config.get().local_gateway.clone()?;
    let inbox = ctx.ingest.inbox().clone();
    inbox.set_track_agent(true);
    let worker = Arc::new(LocalAgent {
        shown: Mutex::new(Shown {
            state: "idle",
            target: display_url(&lg.url),
            ..Shown::default()
        }),
        inbox,
        ingest: ctx.ingest.clone(),
        db: ctx.db.clone(),
        policy,
        pool,
        config: ctx.config.clone(),
        wake: ctx.ingest.hub().agent_wake(),
        shutdown: ctx.shutdown.clone(),
    });
    ctx.tracker.spawn(run(worker.clone()));
    Some(worker)
}

/// The idempotency key of inbox message `id` for this data directory's device.
pub fn idempotency_key(device_id: &str, id: u64) -> String {
    let dev: String = device_id.chars().take(16).collect();
    format!("clawlink-inbox-{dev}-{id}")
}

async fn run(status: Arc<LocalAgent>) {
    let mut backoff = Backoff::new(MIN_BACKOFF, MAX_BACKOFF);
    loop {
        if status.shutdown.is_cancelled() {
            return;
        }
        let pause = match deliver_batch(&status).await {
            Ok(true) => {
                backoff.reset();
                continue;
            }
            Ok(false) => {
                backoff.reset();
                status.set(|s| s.state = "idle");
                tokio::select! {
                    _ = status.wake.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                    _ = status.shutdown.cancelled() => return,
                }
                continue;
            }
            Err(e) => {
                let ours = backoff.next_wait(None);
                let wait = match &e {
                    e if !e.is_retryable() => MAX_BACKOFF,
                    e => e.retry_after().unwrap_or(ours).min(MAX_BACKOFF),
                };
                let failed = if e.is_retryable() {
                    "backoff"
                } else {
                    "failed"
                };
                tracing::warn!(error = %e, retry_in = ?wait, "local agent delivery failed");
                status.set(|s| {
                    s.state = failed;
                    s.last_error = Some(e.to_string());
                });
                wait
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = status.shutdown.cancelled() => return,
        }
    }
}

/// Delivers one batch through the inbound policy. `Ok(true)`: something was handled (look
/// again at once); `Ok(false)`: nothing pending; `Err`: the gateway failed, back off.
async fn deliver_batch(status: &LocalAgent) -> Result<bool, GatewayError> {
    let cfg = status.config.get();
    let Some(lg) = cfg.local_gateway.clone() else {
        return Ok(false);
    };
    let batch = super::route::next_batch(&status.policy, &status.inbox, BATCH).map_err(|e| {
        GatewayError::Unavailable {
            url: display_url(&lg.url),
            detail: format!("cannot read the local agent queue: {e:#}"),
            retry_after: None,
        }
    })?;
    if batch.is_empty() {
        return Ok(false);
    }
    status.set(|s| {
        s.state = "delivering";
        s.target = display_url(&lg.url);
    });
    let hooks = match cfg.policy.hooks_token.clone().filter(|t| !t.is_empty()) {
        Some(t) => Some(super::hooks::Hooks::new(
            &lg.url,
            &cfg.policy.hooks_path,
            t,
        )?),
        None => None,
    };
    let local = super::route::Local {
        gateway: &lg,
        hooks,
        pool: &status.pool,
        inbox: &status.inbox,
        ingest: &status.ingest,
        db: &status.db,
        engine: &status.policy,
    };
    let settings = super::Settings::from_config(&cfg.policy);
    let started = std::time::Instant::now();
    let r = tokio::select! {
        r = super::route::route_batch(&local, batch, &settings) => r,
        _ = status.shutdown.cancelled() => return Ok(false),
    };
    let counts = r?;
    let rtt = started.elapsed().as_secs_f64() * 1000.0;
    status.set(|s| {
        s.delivered += counts.delivered + counts.notices;
        s.last_error = None;
        s.rtt_ms = Some(rtt);
    });
    tracing::debug!(
        handled = counts.handled,
        delivered = counts.delivered,
        notices = counts.notices,
        "local agent batch routed"
    );
    Ok(counts.handled > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_per_device_and_message() {
        let a = idempotency_key("0123456789abcdef0123", 7);
        assert_eq!(a, "clawlink-inbox-0123456789abcdef-7");
        assert_ne!(a, idempotency_key("fedcba9876543210", 7));
        assert_ne!(a, idempotency_key("0123456789abcdef", 8));
    }
}
