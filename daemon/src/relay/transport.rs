//! The `relay` transport: delivers outbox records through a relay server's `/send`.
//!
//! Addresses: `relay://HOST:PORT/ID` (plain HTTP), `relay+http://…`, `relay+https://HOST/ID`;
//! one lane per relay. Payload: [`RelaySend`] `{relay, to, message, from}`. The sender is a
//! registered identity on that relay ([`crate::store::relay_client`]): the one whose id is
//! `from` if there is one, else the most recently registered. Without any, the record fails
//! and says to run `clawlink relay register`.
//!
//! `key` in `/send` is the outbox record id: a relay that supports idempotent sends (ours
//! does; see [`crate::relay_server`]) recognises a retry whose first answer was lost, so a
//! crash of the relay or of this daemon between the relay's write and our record of it
//! doubles nothing. Relays that don't know the field ignore it.
//! `200 {ok:true}` ([`SendAnswer`]) → delivered (the relay has it on disk); 401/403/404/409/413 and other 4xx →
//! failed for good with the relay's reason; 429, 5xx and connection errors → retried by the
//! lane (honouring `Retry-After`), so sends to an unreachable relay wait in the outbox.

use super::address::{parse_address, SCHEMES};
use super::error::{no_identity, relay_error};
use super::wire::SendAnswer;
use super::Relay;
use crate::transport::{
    BoxFuture, Outcome, Payload, Record, RelaySend, Route, SendRequest, Transport,
};
use clawlink::proto::ApiError;

impl Relay {
    async fn attempt(&self, record: &Record) -> Outcome {
        let Payload::Relay(p) = &record.payload else {
            return Outcome::Failed(ApiError::new("bad_record", "not a relay outbox record"));
        };
        let relay = p.relay.trim_end_matches('/');
        let identities = match self.store.on_relay(relay) {
            Ok(v) => v,
            Err(e) => {
                return Outcome::Retry {
                    error: ApiError::new("store", format!("the store failed: {e}")),
                    after: None,
                }
            }
        };
        let Some(me) = identities
            .iter()
            .find(|i| Some(&i.id) == p.from.as_ref())
            .or(identities.first())
        else {
            return Outcome::Failed(no_identity(relay));
        };
        let a = match self.http.send(me, &p.to, &p.message, &record.id).await {
            Ok(a) => a,
            Err(error) => return Outcome::Retry { error, after: None },
        };
        let after = a.retry_after;
        match a.status {
            200..=299 if a.read::<SendAnswer>().ok => Outcome::Delivered,
            200..=299 => Outcome::Retry {
                error: ApiError::new("relay_error", format!("relay {relay} did not say ok")),
                after,
            },
            429 | 500..=599 => Outcome::Retry {
                error: relay_error(a.status, &a.body, relay),
                after,
            },
            s => Outcome::Failed(relay_error(s, &a.body, relay)),
        }
    }
}

impl Transport for Relay {
    fn kind(&self) -> &'static str {
        "relay"
    }

    fn accepts(&self) -> &'static [&'static str] {
        SCHEMES
    }

    fn route(&self, req: &SendRequest<'_>) -> Result<Route, ApiError> {
        let (relay, to) = parse_address(req.url).ok_or_else(|| {
            ApiError::new(
                "bad_request",
                format!(
                    "cannot send to {:?}: expected relay://HOST:PORT/ID",
                    req.url
                ),
            )
        })?;
        Ok(Route {
            target: relay.clone(),
            payload: Payload::Relay(RelaySend {
                relay,
                to,
                message: req.params.message.clone(),
                from: req.params.from.clone(),
            }),
        })
    }

    fn deliver<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Outcome> {
        Box::pin(self.attempt(record))
    }
}
