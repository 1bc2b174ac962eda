//! `send`, `ping`, `outbox.list`, `outbox.cancel`: the outbound side of the control API.
//!
//! `send` resolves its target (a contact, or `--url`/`--token`), asks the transport
//! [`Registry`](crate::transport::Registry) which transport accepts the address and how it
//! routes, writes the message durably to the outbox, and then waits for the outcome of the
//! first delivery attempt (or, with `wait`, for a final state). The reply says exactly what
//! happened: `delivered` only when the peer said ok; `queued` when the peer is unreachable and
//! the outbox keeps retrying; `failed` with the peer's reason and what to do otherwise.
//! No scheme is named here: each transport declares the addresses it accepts.
//!
//! `--to NAME` naming a friend (`clawlink friend list`) takes the friend path instead: the
//! message is sealed to the friend's pinned key and queued for the `friend` transport, which
//! carries it over the friend's addresses. `delivered` then means *sent* (a server took it);
//! `wait_for: stored|delivered` also waits for the friend's signed receipt (`peer`).

use super::{json, store_err, Reply};
use crate::friend::Friends;
use crate::state::State;
use crate::transport::{Record, SendRequest};
use clawlink::proto::{
    ApiError, Cancelled, DeliveryState, OutboxCancelParams, PingParams, SendParams, SendReply,
};
use clawlink::Secret;
use std::sync::Arc;
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
    let wait_for = match p.wait_for.as_deref() {
        None => None,
        Some(w @ ("sent" | "stored" | "delivered")) => Some(w),
        Some(other) => {
            return Err(ApiError::new(
                "bad_request",
                format!("--wait={other}: expected sent, stored or delivered"),
            ))
        }
    };
    let ttl = p.ttl_secs.unwrap_or(state.config().outbox.ttl_secs).max(1);
    if let Some(friends) = friend_of(state, &p)? {
        // A friend: sealed to its pinned key, carried over its addresses.
        let name = p.to.clone().unwrap_or_default();
        let out = friends
            .trust
            .seal_message(&name, &p.message)
            .map_err(super::friend::trust_err)?;
        let record = crate::friend::transport::record(state.outbound.store(), &out, "message", ttl)
            .map_err(store_err)?;
        let receipt = match wait_for {
            Some(w @ ("stored" | "delivered")) => Some((friends, w)),
            _ => None,
        };
        return enqueue(state, record, ttl, p.wait || wait_for.is_some(), receipt).await;
    }
    if matches!(wait_for, Some("stored" | "delivered")) {
        return Err(ApiError::new(
            "bad_request",
            "--wait=stored and --wait=delivered need a friend's signed receipt; use --wait for other peers",
        )
        .with_hint("see `clawlink friend list`"));
    }
    let (to, url, token) = address(state, &p.to, &p.url, &p.token)?;
    let transport = state.transports.for_address(&url)?;
    let route = transport.route(&SendRequest {
        url: &url,
        token,
        params: &p,
    })?;
    let now = crate::time::now_ms();
    let record = Record {
        seq: state.outbound.store().next_seq().map_err(store_err)?,
        id: new_id(),
        to,
        transport: transport.kind().to_string(),
        target: route.target,
        payload: route.payload,
        state: DeliveryState::Queued,
        attempts: 0,
        created_ms: now,
        deadline_ms: now.saturating_add(ttl.saturating_mul(1000)),
        done_ms: None,
        last_error: None,
    };
    enqueue(state, record, ttl, p.wait || wait_for.is_some(), None).await
}

/// The friend `--to` names (friends come before contacts of the same name), if any.
fn friend_of(state: &State, p: &SendParams) -> Result<Option<Arc<Friends>>, ApiError> {
    let (Some(name), None) = (&p.to, &p.url) else {
        return Ok(None);
    };
    let Ok(friends) = state.transport::<Friends>() else {
        return Ok(None);
    };
    let known = friends.trust.store().friend(name).map_err(store_err)?;
    Ok(known.map(|_| friends))
}

/// Whether receipt `status` is as far as `want` (`rejected`, the furthest, ends any wait).
fn reached(status: &str, want: &str) -> bool {
    use crate::trust::payload::receipt_rank;
    receipt_rank(status) > 0 && receipt_rank(status) >= receipt_rank(want)
}

/// Queues `record` and reports the first attempt, or with `wait` its final state, and with
/// `receipt` (a friend's message) the signed receipt asked for.
async fn enqueue(
    state: &State,
    record: Record,
    ttl: u64,
    wait: bool,
    receipt: Option<(Arc<Friends>, &str)>,
) -> Reply {
    // Subscribed before anything is sent: a receipt cannot arrive unseen.
    let mut receipts = receipt.as_ref().map(|(f, _)| f.subscribe_receipts());
    let (id, target, transport) = (
        record.id.clone(),
        record.target.clone(),
        record.transport.clone(),
    );
    let mut rx = state.outbound.enqueue(record).await.map_err(store_err)?;
    let mut reply = SendReply {
        id: id.clone(),
        state: DeliveryState::Queued,
        transport,
        target,
        attempts: 0,
        error: None,
        peer: None,
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
                        break;
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
    let (Some((friends, want)), Some(receipts), DeliveryState::Delivered) =
        (receipt, receipts.as_mut(), reply.state)
    else {
        return json(&reply);
    };
    loop {
        reply.peer = friends.receipt_status(&id);
        if reply.peer.as_deref().is_some_and(|s| reached(s, want)) {
            return json(&reply);
        }
        tokio::select! {
            r = receipts.recv() => match r {
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
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
    let friends = state.transport::<Friends>().ok();
    let list: Vec<_> = state
        .outbound
        .store()
        .all()
        .map_err(store_err)?
        .iter()
        .map(|r| {
            let mut e = r.entry();
            if r.transport == "friend" {
                e.peer = friends.as_ref().and_then(|f| f.receipt_status(&r.id));
            }
            e
        })
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
