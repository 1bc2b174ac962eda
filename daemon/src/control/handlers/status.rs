//! `status`.

use super::{json, Reply};
use crate::state::State;
use clawlink::proto::StatusReply;

pub(super) fn status(state: &State) -> Reply {
    json(&StatusReply {
        version: env!("CARGO_PKG_VERSION").to_string(),
        protocol: clawlink::PROTOCOL_VERSION,
        pid: std::process::id(),
        uptime_secs: state.started.elapsed().as_secs(),
        data_dir: state.db.dir().display().to_string(),
        socket: state.socket.display().to_string(),
        listen: state.listen.map(|a| a.to_string()),
        inbox: state.inbox.counts(),
        outbox_pending: state.outbound.store().pending_count(),
        connections: state.connection_rows(),
    })
}
