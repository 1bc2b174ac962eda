//! The `a2a` transport: delivers outbox records to a peer's JSON-RPC endpoint as `SendMessage`.
//!
//! Payload (written by `send` for an `a2a:URL` contact or address): `{endpoint, token, message}`.
//! The A2A `messageId` is the outbox id, so a retry is the same message to the peer; the
//! `contextId` is the contact's stable one ([`crate::store::a2a::A2aStore::context_for`]);
//! `returnImmediately` is set, so the peer answers with a task at once. A peer that answers
//! -32601 is asked again with `message/send`, and remembered as a 0.3 peer.
//!
//! Delivered = the peer accepted it and answered with a task (now followed, see
//! [`super::follower`]) or directly with a message (put in the inbox at once). Connection
//! errors, timeouts, 429 and 5xx are retried by the outbox; a refused token or a JSON-RPC
//! error fails the record with the peer's reason.

use super::client::{self, CallError, Sent};
use super::follower::Follower;
use super::wire::TaskState;
use crate::outbound::{BoxFuture, Outcome, Transport};
use crate::store::a2a::Follow;
use crate::store::outbox::OutboxRecord;
use clawlink::proto::ApiError;
use clawlink::Secret;
use std::collections::HashSet;
use std::sync::Mutex;

/// Transport kind.
pub const KIND: &str = "a2a";

/// The A2A transport.
pub struct A2aTransport {
    follower: Follower,
    http: reqwest::Client,
    // Endpoints known to speak only the 0.3 names. Never held across an await.
    legacy: Mutex<HashSet<String>>,
}

impl A2aTransport {
    /// Over the follower (which owns the store) and the shared HTTP client.
    pub fn new(follower: Follower, http: reqwest::Client) -> A2aTransport {
        A2aTransport {
            follower,
            http,
            legacy: Mutex::new(HashSet::new()),
        }
    }

    fn is_legacy(&self, endpoint: &str) -> bool {
        self.legacy
            .lock()
            .map(|l| l.contains(endpoint))
            .unwrap_or(false)
    }

    async fn attempt(&self, r: &OutboxRecord) -> Outcome {
        let p = &r.payload;
        let (Some(endpoint), Some(message)) = (p["endpoint"].as_str(), p["message"].as_str())
        else {
            return Outcome::Failed(ApiError::new(
                "bad_request",
                "a2a record without endpoint or message",
            ));
        };
        let token = Secret::new(p["token"].as_str().unwrap_or(""));
        let store = self.follower.store();
        let context_id = match store.context_for(&r.to) {
            Ok(c) => c,
            Err(e) => return retry(ApiError::new("store", format!("the store failed: {e}"))),
        };
        let mut legacy = self.is_legacy(endpoint);
        let mut sent = client::send_message(
            &self.http,
            endpoint,
            token.expose(),
            legacy,
            &r.id,
            &context_id,
            message,
        )
        .await;
        if matches!(sent, Err(CallError::NoMethod)) && !legacy {
            legacy = true;
            if let Ok(mut l) = self.legacy.lock() {
                l.insert(endpoint.to_string());
            }
            sent = client::send_message(
                &self.http,
                endpoint,
                token.expose(),
                true,
                &r.id,
                &context_id,
                message,
            )
            .await;
        }
        let mut follow = Follow {
            outbox_id: r.id.clone(),
            contact: r.to.clone(),
            endpoint: endpoint.to_string(),
            token,
            legacy,
            task_id: String::new(),
            context_id,
            state: TaskState::Submitted,
            text: None,
            inbox_id: None,
        };
        match sent {
            Ok(Sent::Task(task)) => {
                follow.task_id = task.id.clone();
                follow.state = task.status.state;
                if let Err(e) = self.record(&follow).await {
                    return retry(e);
                }
                let s = task.status.state;
                if s.is_terminal() || s.is_interrupted() {
                    self.follower.finish(&mut follow, &task).await;
                } else {
                    self.follower.start(follow);
                }
                Outcome::Delivered
            }
            Ok(Sent::Message(m)) => {
                follow.task_id = format!("message-{}", m.message_id);
                if let Err(e) = self.record(&follow).await {
                    return retry(e);
                }
                self.follower
                    .end(&mut follow, TaskState::Completed, m.text())
                    .await;
                Outcome::Delivered
            }
            Err(CallError::Transient(e)) => retry(ApiError::new("unreachable", e)),
            Err(CallError::Auth(e)) => Outcome::Failed(ApiError::new("auth", e).with_hint(
                "check the contact's token (`clawlink contacts add --a2a URL --token-file F`)",
            )),
            Err(CallError::NoMethod) => Outcome::Failed(ApiError::new(
                "refused",
                format!("{endpoint} knows neither SendMessage nor message/send"),
            )),
            Err(CallError::Refused(e)) => Outcome::Failed(ApiError::new("refused", e)),
        }
    }

    async fn record(&self, f: &Follow) -> Result<(), ApiError> {
        let s = self.follower.store();
        let err =
            |e: crate::store::StoreError| ApiError::new("store", format!("the store failed: {e}"));
        s.put_follow(f).map_err(err)?;
        s.durable().await.map_err(err)
    }
}

fn retry(error: ApiError) -> Outcome {
    Outcome::Retry { error, after: None }
}

impl Transport for A2aTransport {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn deliver<'a>(&'a self, record: &'a OutboxRecord) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(record))
    }
}
