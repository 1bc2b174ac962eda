//! `review list|approve|reject`: messages held by the `review` level.
//!
//! Approving moves a message to the ready queue (`store::policy`) at its sender's configured
//! level when that lets it reach the agent, else at `deliver`, and wakes the local-agent
//! worker, which routes it exactly once. `--always` also sets the sender's rule to `deliver`.
//! Rejecting releases it for good: it stays in the inbox and never reaches the agent.

use super::{json, store_err, Reply};
use crate::policy::{sender::parse_key, Level};
use crate::state::State;
use crate::store::audit::{sha256_hex, Entry};
use crate::store::policy::Held;
use clawlink::proto::{ApiError, Count, HeldMessage, ReviewRequest};

fn not_held(id: u64) -> ApiError {
    ApiError::new("not_found", format!("message {id} is not held for review"))
        .with_hint("list held messages with `clawlink review`")
}

pub(super) async fn handle(state: &State, r: ReviewRequest) -> Reply {
    match r {
        ReviewRequest::List => list(state),
        ReviewRequest::Approve { id, sender, always } => approve(state, id, sender, always).await,
        ReviewRequest::Reject { id } => reject(state, id).await,
    }
}

fn list(state: &State) -> Reply {
    let mut out = Vec::new();
    for h in state.policy.store.held().map_err(store_err)? {
        let m = state.inbox.get(h.id).map_err(store_err)?;
        out.push(HeldMessage {
            id: h.id,
            sender: h.sender,
            source: h.source,
            verified: h.verified,
            held_at: crate::time::rfc3339(h.held_ms),
            from: m.as_ref().map(|m| m.from.clone()).unwrap_or_default(),
            message: m.map(|m| m.message).unwrap_or_default(),
        });
    }
    json(&out)
}

/// The level an approved message of `key` is routed at.
fn approved_level(state: &State, key: &str) -> Level {
    let rules = state.policy.store.rules().unwrap_or_default();
    let kind = key.split(':').next().unwrap_or_default();
    let configured = rules
        .get(key)
        .or_else(|| rules.get(&format!("{kind}:*")))
        .copied();
    match configured {
        Some(l) if l >= Level::Notify => l,
        _ => Level::Deliver,
    }
}

async fn approve(state: &State, id: Option<u64>, sender: Option<String>, always: bool) -> Reply {
    let p = &state.policy.store;
    let held: Vec<Held> = match (id, sender) {
        (Some(id), None) => vec![p
            .held_one(id)
            .map_err(store_err)?
            .ok_or_else(|| not_held(id))?],
        (None, Some(s)) => {
            let key = parse_key(&s).map_err(|e| ApiError::new("bad_request", e))?;
            if always {
                p.set_rule(&key, Level::Deliver).map_err(store_err)?;
            }
            p.held()
                .map_err(store_err)?
                .into_iter()
                .filter(|h| h.sender == key)
                .collect()
        }
        _ => {
            return Err(ApiError::new(
                "bad_request",
                "give either a message id or --sender KIND:ID",
            ))
        }
    };
    if always {
        for h in &held {
            p.set_rule(&h.sender, Level::Deliver).map_err(store_err)?;
        }
    }
    let mut n = 0;
    for h in held {
        let level = approved_level(state, &h.sender);
        if p.release_to(h.id, level).map_err(store_err)?.is_some() {
            n += 1;
        }
    }
    state.db.durable().await.map_err(store_err)?;
    state.hub.agent_wake().notify_one();
    json(&Count { count: n })
}

async fn reject(state: &State, id: u64) -> Reply {
    let h = state
        .policy
        .store
        .release(id)
        .map_err(store_err)?
        .ok_or_else(|| not_held(id))?;
    let content = state
        .inbox
        .get(id)
        .map_err(store_err)?
        .map(|m| m.message)
        .unwrap_or_default();
    state
        .policy
        .audit
        .append(Entry {
            source: h.source,
            sender: h.sender,
            verified: h.verified,
            level: Level::Review.to_string(),
            action: "rejected".into(),
            session: None,
            message: id,
            content_sha256: sha256_hex(&content),
        })
        .map_err(store_err)?;
    state.policy.audit.sync().map_err(store_err)?;
    state.db.durable().await.map_err(store_err)?;
    json(&Count { count: 1 })
}
