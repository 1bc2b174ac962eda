//! `relay ...` (the seed's relay client commands). Wired when the relay transport lands.

use super::Reply;
use crate::agent::State;
use clawlink::proto::{ApiError, RelayIdentity, RelayRequest};

fn unavailable() -> ApiError {
    ApiError::new(
        "unavailable",
        "relay mode is not available in this build yet",
    )
}

pub(super) async fn handle(_state: &State, _r: RelayRequest) -> Reply {
    Err(unavailable())
}

pub(super) async fn import_identity(
    _state: &State,
    _identity: RelayIdentity,
) -> Result<(), ApiError> {
    Err(unavailable())
}
