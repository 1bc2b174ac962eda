//! `send`, `ping`, `outbox.list`: the outbound side of the control API.
//!
//! `send` resolves its target (a contact, or `--url`/`--token`), writes the message durably to
//! the outbox, and then waits for the outcome of the first delivery attempt (or, with
//! `wait`, for a final state). The reply says exactly what happened: `delivered` only when the
//! peer said ok; `queued` when the peer is unreachable and the outbox keeps retrying;
//! `failed` with the peer's reason and what to do otherwise.
//!
//! Addresses: `ws://` and `wss://` are OpenClaw gateways (transport `gateway`);
//! `relay://HOST:PORT/ID` (plain HTTP) and `relay+https://HOST/ID` are relay ids (transport `relay`).

use super::{json, store_err, Reply};
use crate::agent::State;
use crate::store::outbox::OutboxRecord;
use clawlink::proto::{ApiError, DeliveryState, PingParams, SendParams, SendReply};
use clawlink::Secret;
use serde_json::json;
use std::time::Duration;

/// Longest a plain `send` waits for its first attempt before answering `queued`.
const FIRST_ATTEMPT_WAIT: Duration = Duration::from_secs(30);
/// Largest message accepted for sending.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Where a send goes.
struct Route {
    transport: &'static str,
    target: String,
    payload: serde_json::Value,
}

/// Splits `relay://HOST:PORT/ID` into (`http://HOST:PORT`, `ID`).
pub fn parse_relay_address(url: &str) -> Option<(String, String)> {
    let (base, rest) = if let Some(r) = url.strip_prefix("relay://") {
        ("http://", r)
    } else if let Some(r) = url.strip_prefix("relay+https://") {
        ("https://", r)
    } else if let Some(r) = url.strip_prefix("relay+http://") {
        ("http://", r)
    } else {
        return None;
    };
    let (host, id) = rest.rsplit_once('/')?;
    if host.is_empty() || id.is_empty() {
        return None;
    }
    Some((format!("{base}{host}"), id.to_string()))
}

fn route(url: &str, token: Secret, p: &SendParams) -> Result<Route, ApiError> {
    if url.starts_with("ws://") || url.starts_with("wss://") {
        let payload = json!({
            "url": url, "token": token, "message": p.message, "from": p.from,
            "method": p.method.clone().unwrap_or_else(|| "system-event".into()), "session": p.session,
        });
        return Ok(Route {
            transport: "gateway",
            target: url.to_string(),
            payload,
        });
    }
    if let Some((relay, id)) = parse_relay_address(url) {
        let payload = json!({ "relay": relay, "to": id, "message": p.message, "from": p.from });
        return Ok(Route {
            transport: "relay",
            target: relay,
            payload,
        });
    }
    Err(ApiError::new(
        "bad_request",
        format!("cannot send to {url:?}: expected ws://, wss:// or relay://HOST:PORT/ID"),
    ))
}

pub(super) async fn send(state: &State, p: SendParams) -> Reply {
    if p.message.is_empty() || p.message.len() > MAX_MESSAGE {
        return Err(ApiError::new(
            "bad_request",
            format!("message must be 1..={MAX_MESSAGE} bytes"),
        ));
    }
    if let Some(m) = &p.method {
        if !["system-event", "wake", "chat.send", "agent"].contains(&m.as_str()) {
            return Err(ApiError::new(
                "bad_request",
                format!("unknown method {m:?}; use system-event, wake, chat.send or agent"),
            ));
        }
    }
    let (to, url, token) = match (&p.to, &p.url) {
        (Some(name), None) => {
            let c = state.contacts.get(name).map_err(store_err)?.ok_or_else(|| {
                ApiError::new("not_found", format!("no contact named {name:?}")).with_hint("add it with `clawlink contacts add --name NAME --url URL --token TOKEN`, or use --url/--token")
            })?;
            (c.name, c.url, p.token.clone().unwrap_or(c.token))
        }
        (None, Some(url)) => (
            url.clone(),
            url.clone(),
            p.token.clone().unwrap_or_default(),
        ),
        _ => {
            return Err(ApiError::new(
                "bad_request",
                "give either --to NAME or --url URL",
            ))
        }
    };
    let route = route(&url, token, &p)?;
    enqueue(state, to, route, p.ttl_secs, p.wait).await
}

/// Queues `route` and reports the first attempt (or the final state with `wait`).
async fn enqueue(
    state: &State,
    to: String,
    route: Route,
    ttl_secs: Option<u64>,
    wait: bool,
) -> Reply {
    if !state.outbound.has_transport(route.transport) {
        return Err(ApiError::new(
            "unavailable",
            format!(
                "the {} transport is not available in this daemon",
                route.transport
            ),
        ));
    }
    let now = crate::time::now_ms();
    let ttl = ttl_secs.unwrap_or(state.config().outbox.ttl_secs).max(1);
    let record = OutboxRecord {
        seq: state.outbound.store().next_seq().map_err(store_err)?,
        id: new_id(),
        to,
        transport: route.transport.to_string(),
        target: route.target,
        payload: route.payload,
        state: DeliveryState::Queued,
        attempts: 0,
        created_ms: now,
        deadline_ms: now.saturating_add(ttl.saturating_mul(1000)),
        done_ms: None,
        last_error: None,
    };
    let (id, transport, target) = (
        record.id.clone(),
        record.transport.clone(),
        record.target.clone(),
    );
    let mut rx = state.outbound.enqueue(record).await.map_err(store_err)?;
    let mut reply = SendReply {
        id: id.clone(),
        state: DeliveryState::Queued,
        transport,
        target,
        attempts: 0,
        error: None,
    };
    let first = tokio::time::sleep(if wait {
        Duration::from_secs(ttl + 5)
    } else {
        FIRST_ATTEMPT_WAIT
    });
    tokio::pin!(first);
    loop {
        tokio::select! {
            a = rx.recv() => match a {
                Ok(a) if a.id == id => {
                    reply.state = a.state;
                    reply.attempts = a.attempts;
                    reply.error = a.error;
                    if !wait || a.state != DeliveryState::Queued {
                        return json(&reply);
                    }
                }
                Ok(_) => {}
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(_) => return json(&reply),
            },
            _ = &mut first => return json(&reply),
            _ = state.shutdown.cancelled() => return json(&reply),
        }
    }
}

/// A random 128-bit id, hex: unique across daemons, used as the peer's idempotency key.
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub(super) async fn ping(state: &State, p: PingParams) -> Reply {
    let (url, token) = match (&p.to, &p.url) {
        (Some(name), None) => {
            let c = state
                .contacts
                .get(name)
                .map_err(store_err)?
                .ok_or_else(|| {
                    ApiError::new("not_found", format!("no contact named {name:?}"))
                        .with_hint("add it with `clawlink contacts add`, or use --url/--token")
                })?;
            (c.url, p.token.clone().unwrap_or(c.token))
        }
        (None, Some(url)) => (url.clone(), p.token.clone().unwrap_or_default()),
        _ => {
            return Err(ApiError::new(
                "bad_request",
                "give either --to NAME or --url URL",
            ))
        }
    };
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return Err(ApiError::new(
            "bad_request",
            format!("ping checks OpenClaw gateways (ws:// or wss://), not {url:?}"),
        ));
    }
    let result = state.gateway.ping(&url, &token).await;
    json(&crate::gateway::ping_reply(&url, &result))
}

pub(super) fn outbox(state: &State) -> Reply {
    let list: Vec<_> = state
        .outbound
        .store()
        .all()
        .map_err(store_err)?
        .iter()
        .map(|r| r.entry())
        .collect();
    json(&list)
}

#[cfg(test)]
mod tests {
    #[test]
    fn relay_addresses_parse() {
        assert_eq!(
            super::parse_relay_address("relay://127.0.0.1:3900/bob"),
            Some(("http://127.0.0.1:3900".into(), "bob".into()))
        );
        assert_eq!(
            super::parse_relay_address("relay+https://r.example/x"),
            Some(("https://r.example".into(), "x".into()))
        );
        assert_eq!(super::parse_relay_address("relay://host/"), None);
        assert_eq!(super::parse_relay_address("ws://x"), None);
    }
}
