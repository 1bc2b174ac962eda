//! Fan-out from the inbox: every message, once durable, is published here.
//!
//! - Live subscribers (`clawlink listen`) get it through a bounded broadcast channel
//!   ([`Hub::subscribe`]); one that falls behind is told how many it missed (they are all in
//!   the inbox) instead of growing the daemon's memory.
//! - The local OpenClaw agent gets it through the local-agent worker, which works from the store's
//!   `agent_pending` queue, so delivery survives restarts and a gateway that is down
//!   (see [`crate::policy::local_agent`]; it waits on [`Hub::agent_wake`]).

use clawlink::proto::InboxMessage;
use tokio::sync::broadcast;

/// Messages a subscriber may fall behind by before it is told it lagged.
pub const SUBSCRIBER_BUFFER: usize = 1024;

/// The publish side. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<InboxMessage>,
    agent_wake: std::sync::Arc<tokio::sync::Notify>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with no subscribers.
    pub fn new() -> Hub {
        let (tx, _) = broadcast::channel(SUBSCRIBER_BUFFER);
        Hub {
            tx,
            agent_wake: Default::default(),
        }
    }

    /// Announces a newly stored message.
    pub fn publish(&self, msg: InboxMessage) {
        let _ = self.tx.send(msg);
        self.agent_wake.notify_one();
    }

    /// A new live subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<InboxMessage> {
        self.tx.subscribe()
    }

    /// Woken on every publish (the local-agent worker waits on it).
    pub fn agent_wake(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.agent_wake.clone()
    }

    /// Number of live subscribers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}
