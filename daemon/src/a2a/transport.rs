//! The `a2a` transport: delivers outbox records to a peer's JSON-RPC endpoint as `SendMessage`,
//! and push notifications to callers' webhooks.
//!
//! Addresses: `a2a+http://HOST[:PORT]/PATH` and `a2a+https://…`, the peer's JSON-RPC endpoint
//! (`clawlink contacts add --a2a ORIGIN` finds it through the Agent Card and stores it so);
//! one lane per endpoint. Payload: [`A2aSend::Message`] `{endpoint, token, message}`.
//! The A2A `messageId` is the outbox id, so a retry is the same message to the peer; the
//! `contextId` is the contact's stable one ([`crate::store::a2a::A2aStore::context_for`]);
//! `returnImmediately` is set, so the peer answers with a task at once. A peer that answers
//! -32601 is asked again with `message/send`, and remembered as a 0.3 peer.
//!
//! Delivered = the peer accepted it and answered with a task (now followed, see
//! [`super::follower`]) or directly with a message (put in the inbox at once). Connection
//! errors, timeouts, 429 and 5xx are retried by the outbox; a refused token or a JSON-RPC
//! error fails the record with the peer's reason. [`A2aSend::Push`] records are push
//! notifications ([`super::push`]).

use super::client::{self, CallError, Sent};
use super::wire::TaskState;
use super::A2a;
use crate::store::a2a::Follow;
pub use crate::transport::A2aSend;
use crate::transport::{BoxFuture, Outcome, Payload, Record, Route, SendRequest, Transport};
use clawlink::proto::ApiError;

/// Transport kind.
pub const KIND: &str = "a2a";
/// Address kinds: the endpoint's scheme with `a2a+` in front.
pub const SCHEMES: &[&str] = &["a2a+http", "a2a+https"];

/// The endpoint of an `a2a+http(s)://` address.
pub fn endpoint(address: &str) -> Option<&str> {
    let e = address.trim().strip_prefix("a2a+")?;
    (e.starts_with("http://") || e.starts_with("https://")).then_some(e)
}

impl A2a {
    fn is_legacy(&self, endpoint: &str) -> bool {
        self.legacy
            .lock()
            .map(|l| l.contains(endpoint))
            .unwrap_or(false)
    }

    async fn attempt(&self, r: &Record) -> Outcome {
        let Payload::A2a(send) = &r.payload else {
            return Outcome::Failed(ApiError::new("bad_record", "not an a2a outbox record"));
        };
        let (endpoint, token, message) = match send {
            A2aSend::Message {
                endpoint,
                token,
                message,
            } => (endpoint.as_str(), token.clone(), message.as_str()),
            A2aSend::Push {
                url,
                token,
                authorization,
                body,
            } => {
                let allowed = self.config.get().a2a.push_private_hosts.clone();
                if let Err(e) = super::push_guard::check(url, &allowed).await {
                    return Outcome::Failed(ApiError::new("push_refused", e));
                }
                let (t, a) = (token.as_ref(), authorization.as_ref());
                return super::push::deliver(&self.http, url, t, a, body).await;
            }
        };
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

impl Transport for A2a {
    fn kind(&self) -> &'static str {
        KIND
    }

    fn accepts(&self) -> &'static [&'static str] {
        SCHEMES
    }

    fn route(&self, req: &SendRequest<'_>) -> Result<Route, ApiError> {
        let endpoint = endpoint(req.url).ok_or_else(|| {
            ApiError::new(
                "bad_request",
                format!(
                    "cannot send to {:?}: expected a2a+http(s)://HOST/PATH",
                    req.url
                ),
            )
        })?;
        Ok(Route {
            target: endpoint.to_string(),
            payload: Payload::A2a(A2aSend::Message {
                endpoint: endpoint.to_string(),
                token: req.token.clone(),
                message: req.params.message.clone(),
            }),
        })
    }

    fn deliver<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(record))
    }
}
