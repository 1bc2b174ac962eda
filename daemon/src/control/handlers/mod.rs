//! One handler per request group: plain async functions of the daemon state and the request,
//! returning the JSON result or an [`ApiError`]. No socket code here.

mod a2a;
mod audit;
mod contacts;
pub mod friend;
mod inbox;
mod nexus;
mod policy;
mod relay;
mod review;
mod send;
mod status;

use crate::state::State;
use clawlink::proto::{ApiError, Request};
use serde::Serialize;
use serde_json::Value;

/// Handler result.
pub type Reply = Result<Value, ApiError>;

/// Serializes a typed result.
pub(crate) fn json<T: Serialize>(v: &T) -> Reply {
    serde_json::to_value(v).map_err(|e| ApiError::new("internal", e.to_string()))
}

/// Maps a store error to an API error (the daemon stays up; the client learns why).
pub(crate) fn store_err(e: crate::store::StoreError) -> ApiError {
    ApiError::from(e)
}

/// Routes a request to its handler.
pub async fn dispatch(state: &State, request: Request) -> Reply {
    match request {
        Request::Status => status::status(state),
        Request::InboxList(q) => inbox::list(state, q),
        Request::InboxRead(p) => inbox::read(state, p.id).await,
        Request::InboxAck(p) => inbox::ack(state, p).await,
        Request::InboxRemove(p) => inbox::remove(state, p.id).await,
        Request::InboxRemoveRead => inbox::remove_read(state).await,
        Request::Listen(_) => Err(ApiError::new(
            "bad_request",
            "listen is handled by the connection",
        )),
        Request::ContactsAdd(c) => contacts::add(state, c).await,
        Request::ContactsList => contacts::list(state),
        Request::ContactsRemove(p) => contacts::remove(state, &p.name).await,
        Request::Import(p) => contacts::import(state, p).await,
        Request::Send(p) => send::send(state, p).await,
        Request::Ping(p) => send::ping(state, p).await,
        Request::OutboxList => send::outbox(state),
        Request::OutboxCancel(p) => send::cancel(state, p).await,
        Request::Relay(r) => relay::handle(state, r).await,
        Request::Nexus(r) => nexus::handle(state, r).await,
        Request::A2a(r) => a2a::handle(state, r).await,
        Request::Policy(r) => policy::handle(state, r).await,
        Request::Review(r) => review::handle(state, r).await,
        Request::Audit(r) => audit::handle(state, r),
        Request::Shutdown => {
            tracing::info!("shutdown requested over the control socket");
            state.shutdown.cancel();
            Ok(serde_json::json!({}))
        }
        Request::Id(r) => friend::id(state, r).await,
        Request::Friend(r) => friend::friend(state, r).await,
    }
}
