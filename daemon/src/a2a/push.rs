//! Push notifications: a task's final state, delivered to the caller's webhook at least once.
//!
//! When an inbound task with a push-notification config becomes final, an outbox record of
//! transport `a2a-push` (lane: the webhook URL) is written in the same fsync as the state, and
//! the outbox delivers it with its usual retries and backoff, across restarts, for a day:
//!
//! ```text
//! POST {url}
//! Content-Type: application/a2a+json
//! Authorization: {scheme} {credentials}        (when the config has authentication)
//! X-A2A-Notification-Token: {token}            (when the config has a token)
//!
//! {"task": Task}                               (A2A 1.0 StreamResponse)
//! ```
//!
//! 2xx → delivered; 408, 429, 5xx and connection errors → retried; other 4xx → failed for good.
//! The receiver must be idempotent (the spec says so): a retry after a lost 2xx repeats it.

use super::wire::{PushConfig, Task};
use crate::outbound::{BoxFuture, Outbound, Outcome, Transport};
use crate::store::outbox::OutboxRecord;
use clawlink::proto::{ApiError, DeliveryState};
use serde_json::json;
use std::time::Duration;

/// Transport kind of push records.
pub const KIND: &str = "a2a-push";
/// How long a push notification is retried.
const TTL_MS: u64 = 24 * 3600 * 1000;

/// Queues the final state of `task` for `push`.
pub async fn enqueue(
    outbound: &Outbound,
    task: &Task,
    push: &PushConfig,
) -> crate::store::Result<()> {
    let now = crate::time::now_ms();
    let record = OutboxRecord {
        seq: outbound.store().next_seq()?,
        id: super::new_id(),
        to: format!("push:{}", task.id),
        transport: KIND.into(),
        target: push.url.clone(),
        payload: json!({
            "url": push.url,
            "token": push.token,
            "authorization": push.authentication.as_ref().and_then(|a| a.header()),
            "body": {"task": task},
        }),
        state: DeliveryState::Queued,
        attempts: 0,
        created_ms: now,
        deadline_ms: now + TTL_MS,
        done_ms: None,
        last_error: None,
    };
    drop(outbound.enqueue(record).await?);
    Ok(())
}

/// Delivers `a2a-push` records.
pub struct PushTransport {
    http: reqwest::Client,
}

impl PushTransport {
    /// Over the shared HTTP client.
    pub fn new(http: reqwest::Client) -> PushTransport {
        PushTransport { http }
    }

    async fn attempt(&self, r: &OutboxRecord) -> Outcome {
        let p = &r.payload;
        let Some(url) = p["url"].as_str() else {
            return Outcome::Failed(ApiError::new("bad_request", "push record without url"));
        };
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/a2a+json")
            .timeout(Duration::from_secs(15))
            .body(p["body"].to_string());
        if let Some(auth) = p["authorization"].as_str() {
            req = req.header("authorization", auth);
        }
        if let Some(token) = p["token"].as_str() {
            req = req.header("x-a2a-notification-token", token);
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Outcome::Delivered,
            Ok(resp) => {
                let s = resp.status().as_u16();
                let err = ApiError::new("push_refused", format!("webhook answered HTTP {s}"));
                if s == 408 || s == 429 || s >= 500 {
                    Outcome::Retry {
                        error: err,
                        after: None,
                    }
                } else {
                    Outcome::Failed(err)
                }
            }
            Err(e) => Outcome::Retry {
                error: ApiError::new(
                    "unreachable",
                    format!("webhook: {}", super::client::why(&e)),
                ),
                after: None,
            },
        }
    }
}

impl Transport for PushTransport {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn deliver<'a>(&'a self, record: &'a OutboxRecord) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(record))
    }
}
