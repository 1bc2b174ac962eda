//! `send`, `ping`, `outbox.list`, `outbox.cancel`: the outbound side of the control API.
//!
//! `send` resolves its target (a contact, or `--url`/`--token`), asks the transport
//! [`Registry`](crate::transport::Registry) which transport accepts the address and how it
//! routes, writes the message durably to the outbox, and then waits for the outcome of the
//! first delivery attempt (or, with `wait`, for a final state). The reply says exactly what
//! happened: `delivered` only when the peer said ok; `queued` when the peer is unreachable and
//! the outbox keeps retrying; `failed` with the peer's reason and what to do otherwise.
//! No scheme is named here: each transport declares the addresses it accepts.

use super::{json, store_err, Reply};
use crate::state::State;
use crate::transport::{Record, Route, SendRequest};
use clawlink::proto::{
    ApiError, Cancelled, DeliveryState, OutboxCancelParams, PingParams, SendParams, SendReply,
};
use clawlink::Secret;
use std::time::Duration;

/// Longest a plain `send` waits for its first attempt before answering `queued`.
const FIRST_ATTEMPT_WAIT: Duration = Duration::from_secs(30);
/// Largest message accepted for sending.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// `(shown name, url, token)` of `--to NAME` or `--url URL [--token T]`.
fn address(
    state: &State,
    to: &Option<String>,
    url: &Option<String>,
    token: &Option<Secret>,
) -> Result<(String, String, Secret), ApiError> {
    match (to, url) {
        (Some(name), None) => {
            let c = state.contacts.get(name).map_err(store_err)?.ok_or_else(|| {
                ApiError::new("not_found", format!("no contact named {name:?}")).with_hint("add it with `clawlink contacts add --name NAME --url URL --token TOKEN`, or use --url/--token")
            })?;
            Ok((c.name, c.url, token.clone().unwrap_or(c.token)))
        }
        (None, Some(url)) => Ok((url.clone(), url.clone(), token.clone().unwrap_or_default())),
        _ => Err(ApiError::new(
            "bad_request",
            "give either --to NAME or --url URL",
        )),
    }
}

pub(super) async fn send(state: &State, p: SendParams) -> Reply {
    if p.message.is_empty() || p.message.len() > MAX_MESSAGE {
        return Err(ApiError::new(
            "bad_request",
            format!("message must be 1..={MAX_MESSAGE} bytes"),
        ));
    }
    let (to, url, token) = address(state, &p.to, &p.url, &p.token)?;
    let transport = state.transports.for_address(&url)?;
    let route = transport.route(&SendRequest {
        url: &url,
        token,
        params: &p,
    })?;
    enqueue(state, to, transport.kind(), route, p.ttl_secs, p.wait).await
}

/// Queues `route` and reports the first attempt (or the final state with `wait`).
async fn enqueue(
    state: &State,
    to: String,
    transport: &'static str,
    route: Route,
    ttl_secs: Option<u64>,
    wait: bool,
) -> Reply {
    let now = crate::time::now_ms();
    let ttl = ttl_secs.unwrap_or(state.config().outbox.ttl_secs).max(1);
    let record = Record {
        seq: state.outbound.store().next_seq().map_err(store_err)?,
        id: new_id(),
        to,
        transport: transport.to_string(),
        target: route.target,
        payload: route.payload,
        state: DeliveryState::Queued,
        attempts: 0,
        created_ms: now,
        deadline_ms: now.saturating_add(ttl.saturating_mul(1000)),
        done_ms: None,
        last_error: None,
    };
    let (id, target) = (record.id.clone(), record.target.clone());
    let mut rx = state.outbound.enqueue(record).await.map_err(store_err)?;
    let mut reply = SendReply {
        id: id.clone(),
        state: DeliveryState::Queued,
        transport: transport.to_string(),
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
    crate::util::hex(&rand::random::<[u8; 16]>())
}

pub(super) async fn ping(state: &State, p: PingParams) -> Reply {
    let (_, url, token) = address(state, &p.to, &p.url, &p.token)?;
    let not_pingable = || {
        ApiError::new(
            "bad_request",
            format!("ping checks OpenClaw gateways (ws:// or wss://), not {url:?}"),
        )
    };
    let transport = state
        .transports
        .for_address(&url)
        .map_err(|_| not_pingable())?;
    let reply = match transport.ping(&url, &token) {
        Some(reply) => reply.await,
        None => return Err(not_pingable()),
    };
    Ok(reply)
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

/// How long `outbox cancel` waits for the lanes to end what it cancelled.
const CANCEL_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn cancel(state: &State, p: OutboxCancelParams) -> Reply {
    let which = match (&p.id, &p.to, p.all) {
        (Some(_), None, false) | (None, Some(_), false) | (None, None, true) => (p.id, p.to),
        _ => {
            return Err(ApiError::new(
                "bad_request",
                "give exactly one of an outbox id, --to NAME or --all",
            ))
        }
    };
    let ended = state
        .outbound
        .cancel(
            |r| match &which {
                (Some(id), _) => &r.id == id,
                (_, Some(to)) => &r.to == to,
                _ => true,
            },
            CANCEL_WAIT,
        )
        .await
        .map_err(store_err)?;
    if let (Some(id), true) = (&which.0, ended.is_empty()) {
        return Err(ApiError::new(
            "not_found",
            format!("no pending outbound message {id}; see `clawlink outbox` (only queued messages can be cancelled)"),
        ));
    }
    let list: Vec<Cancelled> = ended
        .into_iter()
        .map(|(id, state)| Cancelled { id, state })
        .collect();
    json(&list)
}
