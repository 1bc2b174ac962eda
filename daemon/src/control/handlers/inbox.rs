//! `inbox.list`, `inbox.read`, `inbox.ack`, `inbox.rm`, `inbox.rm_read`.

use super::{json, store_err, Reply};
use crate::state::State;
use clawlink::proto::{AckParams, ApiError, Count, InboxQuery};

fn not_found(id: u64) -> ApiError {
    ApiError::new("not_found", format!("no message with id {id}"))
        .with_hint("list ids with `clawlink inbox`")
}

pub(super) fn list(state: &State, q: InboxQuery) -> Reply {
    json(&state.inbox.list(&q).map_err(store_err)?)
}

pub(super) async fn read(state: &State, id: u64) -> Reply {
    let m = state
        .inbox
        .mark_read(id)
        .map_err(store_err)?
        .ok_or_else(|| not_found(id))?;
    state.db.durable().await.map_err(store_err)?;
    json(&m)
}

pub(super) async fn ack(state: &State, p: AckParams) -> Reply {
    let count = match (p.id, p.all) {
        (Some(_), true) | (None, false) => {
            return Err(ApiError::new(
                "bad_request",
                "give either a message id or --all",
            ))
        }
        (None, true) => state.inbox.mark_all_read().map_err(store_err)?,
        (Some(id), false) => {
            state
                .inbox
                .mark_read(id)
                .map_err(store_err)?
                .ok_or_else(|| not_found(id))?;
            1
        }
    };
    state.db.durable().await.map_err(store_err)?;
    json(&Count { count })
}

pub(super) async fn remove(state: &State, id: u64) -> Reply {
    if !state.inbox.remove(id).map_err(store_err)? {
        return Err(not_found(id));
    }
    state.db.durable().await.map_err(store_err)?;
    json(&Count { count: 1 })
}

pub(super) async fn remove_read(state: &State) -> Reply {
    let count = state.inbox.remove_read().map_err(store_err)?;
    state.db.durable().await.map_err(store_err)?;
    json(&Count { count })
}
