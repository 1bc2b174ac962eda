//! Push notifications: a task's final state, delivered to the caller's webhook at least once.
//!
//! When an inbound task with a push-notification config becomes final, an outbox record of
//! transport `a2a` with an [`A2aSend::Push`] payload (lane: the webhook URL) is written before
//! the state change is acknowledged, and the outbox delivers it with its usual retries and
//! backoff, across restarts, for a day:
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

use super::transport::{A2aSend, KIND};
use super::wire::{PushConfig, Task};
use crate::transport::{Outbound, Outcome, Payload, Record};
use clawlink::proto::{ApiError, DeliveryState};
use clawlink::Secret;
use std::time::Duration;

/// How long a push notification is retried.
const TTL_MS: u64 = 24 * 3600 * 1000;

/// Queues the final state of `task` for `push`.
pub async fn enqueue(
    outbound: &Outbound,
    task: &Task,
    push: &PushConfig,
) -> crate::store::Result<()> {
    let now = crate::time::now_ms();
    let body = serde_json::json!({ "task": task }).to_string();
    let record = Record {
        seq: outbound.store().next_seq()?,
        id: super::new_id(),
        to: format!("push:{}", task.id),
        transport: KIND.into(),
        target: push.url.clone(),
        payload: Payload::A2a(A2aSend::Push {
            url: push.url.clone(),
            token: push.token.clone().map(Secret::new),
            authorization: push
                .authentication
                .as_ref()
                .and_then(|a| a.header())
                .map(Secret::new),
            body,
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

/// One delivery attempt of a push notification.
pub async fn deliver(
    http: &reqwest::Client,
    url: &str,
    token: Option<&Secret>,
    authorization: Option<&Secret>,
    body: &str,
) -> Outcome {
    let mut req = http
        .post(url)
        .header("content-type", "application/a2a+json")
        .timeout(Duration::from_secs(15))
        .body(body.to_string());
    if let Some(auth) = authorization {
        req = req.header("authorization", auth.expose());
    }
    if let Some(token) = token {
        req = req.header("x-a2a-notification-token", token.expose());
    }
    match req.send().await {
        Ok(resp) if resp.status().is_success() => Outcome::Delivered,
        Ok(resp) => {
            let s = resp.status().as_u16();
            let error = ApiError::new("push_refused", format!("webhook answered HTTP {s}"));
            if s == 408 || s == 429 || s >= 500 {
                let after = crate::util::http_client::retry_after(resp.headers());
                Outcome::Retry { error, after }
            } else {
                Outcome::Failed(error)
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
