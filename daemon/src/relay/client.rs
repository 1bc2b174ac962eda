//! The typed relay HTTP client: register, send, poll, ack, users.
//!
//! Wire (the bodies are the shared types of [`super::wire`]; see [`crate::relay_server`] for
//! the server side):
//!
//! | call | request | success |
//! |---|---|---|
//! | register | `POST /register {id, name, secret}` | 200/201 `{name}`; 409 id taken |
//! | send | `POST /send {from, to, message, secret, key}` | 200 `{ok:true}` |
//! | poll | `GET /poll?id&ack=1` | 200 `{messages, more}` (kept until acked) |
//! | ack | `POST /ack {id, secret, ids}` | 200; 404 on a seed relay (it drained on poll) |
//! | users | `GET /users` | 200 `{count, users}` |
//!
//! The secret travels as `Authorization: Bearer` (and in bodies where the seed protocol puts it),
//! never in a URL unless the relay refuses the header (see [`RelayHttp::poll`]). Every call has a 30 s deadline and
//! answers `(status, JSON body)`; a non-JSON body reads as `null`. Transport errors are
//! [`ApiError`]s with code `unreachable` and never include the URL (it may carry a secret).

use super::error::unreachable;
use super::wire::{AckRequest, MessageId, RegisterRequest, SendRequest};
use crate::store::relay_client::Identity;
use crate::util::http_client;
use clawlink::proto::ApiError;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::time::Duration;

/// Deadline of one relay call.
const DEADLINE: Duration = Duration::from_secs(30);

/// A relay answer: status, JSON body, and the `Retry-After` it asked for.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// JSON body (`null` when it was not JSON).
    pub body: Value,
    /// `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Answer {
    /// The body as the answer type `T` of [`super::wire`], whose fields read leniently; a
    /// body that is not even a JSON object reads as `T::default()`.
    pub fn read<T: DeserializeOwned + Default>(&self) -> T {
        T::deserialize(&self.body).unwrap_or_default()
    }
}

/// The relay client (the daemon's shared HTTP client underneath). Cheap to clone.
#[derive(Clone)]
pub struct RelayHttp {
    http: reqwest::Client,
}

impl RelayHttp {
    /// A relay client over `http` (the daemon's shared client).
    pub fn new(http: reqwest::Client) -> RelayHttp {
        RelayHttp { http }
    }
}

async fn answer(
    relay: &str,
    r: Result<reqwest::Response, reqwest::Error>,
) -> Result<Answer, ApiError> {
    let r = r.map_err(|e| unreachable(relay, e))?;
    let status = r.status().as_u16();
    let retry_after = http_client::retry_after(r.headers());
    let body = r.json().await.unwrap_or(Value::Null);
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

impl RelayHttp {
    /// `POST /register`.
    pub async fn register(&self, ident: &Identity) -> Result<Answer, ApiError> {
        let r = self
            .http
            .post(format!("{}/register", ident.relay))
            .timeout(DEADLINE)
            .json(&RegisterRequest {
                id: Some(ident.id.clone()),
                name: Some(ident.name.clone()),
                secret: Some(ident.secret.expose().to_string()),
            })
            .send()
            .await;
        answer(&ident.relay, r).await
    }

    /// `POST /send` as `me`, with idempotency `key`.
    pub async fn send(
        &self,
        me: &Identity,
        to: &str,
        message: &str,
        key: &str,
    ) -> Result<Answer, ApiError> {
        let body = SendRequest {
            from: Some(me.id.clone()),
            to: Some(to.to_string()),
            message: Some(message.to_string()),
            secret: Some(me.secret.expose().to_string()),
            key: Some(key.to_string()),
        };
        let r = self
            .http
            .post(format!("{}/send", me.relay))
            .timeout(DEADLINE)
            .bearer_auth(me.secret.expose())
            .json(&body)
            .send()
            .await;
        answer(&me.relay, r).await
    }

    /// `GET /poll?id=ID&ack=1` with the secret in `Authorization: Bearer` only, so it stays out
    /// of proxy access logs: the messages stay on the relay until acknowledged. A relay that
    /// answers 401 to that (the seed's server reads only the query) is asked once more with
    /// `&secret=` in the query, as the seed's client does.
    pub async fn poll(&self, me: &Identity) -> Result<Answer, ApiError> {
        let first = self.poll_once(me, false).await?;
        if first.status != 401 {
            return Ok(first);
        }
        tracing::warn!(relay = %me.relay, "the relay refused the secret as a bearer header; retrying with the secret in the URL, where its access log may record it");
        self.poll_once(me, true).await
    }

    async fn poll_once(&self, me: &Identity, secret_in_query: bool) -> Result<Answer, ApiError> {
        let mut query = vec![("id", me.id.as_str()), ("ack", "1")];
        if secret_in_query {
            query.push(("secret", me.secret.expose()));
        }
        let r = self
            .http
            .get(format!("{}/poll", me.relay))
            .timeout(DEADLINE)
            .query(&query)
            .bearer_auth(me.secret.expose())
            .send()
            .await;
        answer(&me.relay, r).await
    }

    /// `POST /ack` for `ids`.
    pub async fn ack(&self, me: &Identity, ids: &[String]) -> Result<Answer, ApiError> {
        let r = self
            .http
            .post(format!("{}/ack", me.relay))
            .timeout(DEADLINE)
            .bearer_auth(me.secret.expose())
            .json(&AckRequest {
                id: Some(me.id.clone()),
                secret: Some(me.secret.expose().to_string()),
                ids: ids.iter().cloned().map(MessageId::Text).collect(),
            })
            .send()
            .await;
        answer(&me.relay, r).await
    }

    /// `GET /users`.
    pub async fn users(&self, relay: &str) -> Result<Answer, ApiError> {
        let r = self
            .http
            .get(format!("{relay}/users"))
            .timeout(DEADLINE)
            .send()
            .await;
        answer(relay, r).await
    }
}
