//! The `relay` transport: delivers outbox records through a relay server's `/send`.
//!
//! Payload (written by `clawlink send` to a `relay://HOST:PORT/ID` contact and by
//! `clawlink relay send`): `{relay, to, message, from}`. The sender is a registered identity
//! on that relay ([`crate::store::relay_client`]): the one whose id is `from` if there is
//! one, else the most recently registered. Without any, the record fails and says to run
//! `clawlink relay register`.
//!
//! Wire: `POST RELAY/send {from, to, message, secret, key}` with `Authorization: Bearer SECRET`.
//! `key` is the outbox record id: a relay that supports idempotent sends (ours does; see
//! [`crate::relay_server`]) recognises a retry whose first answer was lost, so a crash of the
//! relay or of this daemon between the relay's write and our record of it doubles nothing.
//! Relays that don't know the field ignore it.
//! `200 {ok:true}` → delivered (the relay has it on disk); 401/403/404/409/413 and other 4xx →
//! failed for good with the relay's reason; 429, 5xx and connection errors → retried by the
//! lane (honouring `Retry-After`), so sends to an unreachable relay wait in the outbox.

use super::{BoxFuture, Outcome, Transport};
use crate::inbound::relay::{http_error, relay_error};
use crate::store::outbox::OutboxRecord;
use crate::store::relay_client::RelayClientStore;
use clawlink::proto::ApiError;
use serde_json::{json, Value};
use std::time::Duration;

/// The relay transport.
pub struct RelayTransport {
    store: RelayClientStore,
    http: reqwest::Client,
}

impl RelayTransport {
    /// Uses the identities in `store` and the shared HTTP client.
    pub fn new(store: RelayClientStore, http: reqwest::Client) -> RelayTransport {
        RelayTransport { store, http }
    }

    async fn attempt(&self, record: &OutboxRecord) -> Outcome {
        let p = &record.payload;
        let (Some(relay), Some(to), Some(message)) =
            (p["relay"].as_str(), p["to"].as_str(), p["message"].as_str())
        else {
            return Outcome::Failed(ApiError::new(
                "bad_request",
                "relay record without relay, to or message",
            ));
        };
        let relay = relay.trim_end_matches('/');
        let identities = match self.store.on_relay(relay) {
            Ok(v) => v,
            Err(e) => {
                return Outcome::Retry {
                    error: ApiError::new("store", format!("the store failed: {e}")),
                    after: None,
                }
            }
        };
        let from = p["from"].as_str();
        let Some(me) = identities
            .iter()
            .find(|i| Some(i.id.as_str()) == from)
            .or(identities.first())
        else {
            return Outcome::Failed(ApiError::new(
                "no_identity",
                format!("no relay identity registered on {relay}; run `clawlink relay register --relay {relay} --id ID --secret SECRET` first"),
            ));
        };
        let body = json!({ "from": me.id, "to": to, "message": message, "secret": me.secret, "key": record.id });
        let r = self
            .http
            .post(format!("{relay}/send"))
            .bearer_auth(me.secret.expose())
            .json(&body)
            .send()
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                return Outcome::Retry {
                    error: ApiError::new(
                        "unreachable",
                        format!("relay {relay}: {}", http_error(e)),
                    ),
                    after: None,
                }
            }
        };
        let status = r.status().as_u16();
        let after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let body: Value = r.json().await.unwrap_or(Value::Null);
        match status {
            200..=299 if body["ok"] == true => Outcome::Delivered,
            200..=299 => Outcome::Retry {
                error: ApiError::new("relay_error", format!("relay {relay} did not say ok")),
                after,
            },
            429 | 500..=599 => Outcome::Retry {
                error: relay_error(status, &body, relay),
                after,
            },
            _ => Outcome::Failed(relay_error(status, &body, relay)),
        }
    }
}

impl Transport for RelayTransport {
    fn kind(&self) -> &'static str {
        "relay"
    }

    fn deliver<'a>(&'a self, record: &'a OutboxRecord) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(record))
    }
}
