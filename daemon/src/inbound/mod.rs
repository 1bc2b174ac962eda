//! The shared way in: every inbound path turns the outside world into inbox entries through
//! [`Ingest`]. The paths themselves live with their protocol: the webhook here
//! ([`webhook`]), the relay subscriber in [`crate::relay::conn`], the Nexus poller in
//! [`crate::nexus::poller`].
//!
//! Every path follows the same rule: store durably first ([`Ingest::store`] returns only
//! after the group-commit fsync), acknowledge the sender second, publish to listeners and the
//! local agent third. A source that redelivers (same `source_id`) is acknowledged again but
//! stored once.

pub mod webhook;

use crate::delivery::Hub;
use crate::store::inbox::{Inbox, NewMessage, Stored};
use futures_util::future::join_all;

/// The one way into the inbox. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    inbox: Inbox,
    hub: Hub,
}

impl Ingest {
    /// Builds the ingest path over the inbox and the fan-out hub.
    pub fn new(inbox: Inbox, hub: Hub) -> Ingest {
        Ingest { inbox, hub }
    }

    /// The inbox behind it.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// The fan-out hub behind it.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Stores `msg` durably, then publishes it if it is new. Returns only once it is on disk.
    pub async fn store(&self, msg: NewMessage) -> crate::store::Result<Stored> {
        let stored = self.inbox.insert_durable(msg).await?;
        if let Stored::New(m) = &stored {
            tracing::debug!(id = m.id, source = %m.source, "message stored");
            self.hub.publish(m.clone());
        }
        Ok(stored)
    }

    /// Stores a batch as one group commit (every write waits for the same fsync); the results
    /// in order, or the first failure.
    pub async fn store_all(
        &self,
        msgs: impl IntoIterator<Item = NewMessage>,
    ) -> crate::store::Result<Vec<Stored>> {
        join_all(msgs.into_iter().map(|m| self.store(m)))
            .await
            .into_iter()
            .collect()
    }
}
