//! The Nexus entry in the transport registry: kind `nexus`, no outbox addresses (sends go
//! straight to the server, see the module docs of [`super`]); it is registered for its start,
//! its status rows and so the control handler can fetch the [`Nexus`] handle.

use super::Nexus;
use crate::transport::Transport;

impl Transport for Nexus {
    fn kind(&self) -> &'static str {
        "nexus"
    }
}
