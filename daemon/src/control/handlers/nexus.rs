//! `nexus ...` (the protocol CLI's commands). Wired when the Nexus transport lands.

use super::Reply;
use crate::agent::State;
use clawlink::proto::{ApiError, NexusRequest};

pub(super) async fn handle(_state: &State, _r: NexusRequest) -> Reply {
    Err(ApiError::new(
        "unavailable",
        "Nexus sessions are not available in this build yet",
    ))
}
