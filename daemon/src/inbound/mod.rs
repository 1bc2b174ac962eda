//! The shared way in: every inbound path turns the outside world into inbox entries through
//! [`Ingest`]. The paths themselves live with their protocol: the webhook here
//! ([`webhook`]), the relay subscriber in [`crate::relay::conn`], the Nexus poller in
//! [`crate::nexus::poller`].
//!
//! Every path follows the same rule: store durably first ([`Ingest::store`] returns only
//! after the group-commit fsync), acknowledge the sender second, publish to listeners and the
//! local agent third. A source that redelivers (same `source_id`) is acknowledged again but
//! stored once. A full inbox refuses new messages, so their source keeps them (the webhook
//! answers 507, a relay keeps them queued, a Nexus cursor stays put) until
//! [`Inbox::room`] says messages were deleted.
//!
//! A text that is a sealed envelope (`cle1:` prefix, see `docs/envelope.md`), from any path,
//! is handed to the [`Opener`] (the trust layer) instead: it checks and decrypts it and stores
//! the plaintext as `verified: true` from the friend, or takes it in without an entry (a
//! receipt, a key update, a refusal). A plaintext peer's messages never take that path.

pub mod webhook;

use crate::delivery::Hub;
use crate::store::inbox::{Inbox, NewMessage, Stored};
use crate::trust::payload::ReceiptStatus;
use clawlink::proto::InboxMessage;
use futures_util::future::join_all;
use std::sync::{Arc, OnceLock, Weak};

/// The prefix of a sealed envelope's text form.
pub const ENVELOPE_PREFIX: &str = "cle1:";

/// What takes sealed envelopes in (the trust layer, `crate::friend`).
pub trait Opener: Send + Sync {
    /// Checks and opens the envelope in `msg.message`, arrived over `msg.source`; stores a
    /// message through [`Ingest::store_plain`] and returns what was stored.
    fn open(&self, msg: NewMessage) -> crate::util::BoxFuture<'_, crate::store::Result<Stored>>;

    /// Tells the sender of `msg` (when it came sealed from a friend) what became of it, with
    /// a signed receipt: `delivered` (our agent has it) or `rejected` (our policy refused it).
    fn answer(&self, msg: &InboxMessage, status: ReceiptStatus, reason: Option<&str>);
}

/// The one way into the inbox. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    inbox: Inbox,
    hub: Hub,
    /// Set once the trust layer has started; weak, since the trust layer holds an `Ingest`.
    opener: Arc<OnceLock<Weak<dyn Opener>>>,
}

impl Ingest {
    /// Builds the ingest path over the inbox and the fan-out hub.
    pub fn new(inbox: Inbox, hub: Hub) -> Ingest {
        Ingest {
            inbox,
            hub,
            opener: Arc::new(OnceLock::new()),
        }
    }

    /// Routes sealed envelopes to `opener` from now on (every clone sees it).
    pub fn set_opener(&self, opener: Weak<dyn Opener>) {
        let _ = self.opener.set(opener);
    }

    /// The inbox behind it.
    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// The fan-out hub behind it.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Sends the friend who sealed `msg` a signed receipt with `status` (nothing for other
    /// messages).
    pub fn answer(&self, msg: &InboxMessage, status: ReceiptStatus, reason: Option<&str>) {
        if msg.source != "friend" {
            return;
        }
        if let Some(opener) = self.opener.get().and_then(Weak::upgrade) {
            opener.answer(msg, status, reason);
        }
    }

    /// Stores `msg` durably, then publishes it if it is new. Returns only once it is on disk.
    /// A sealed envelope goes to the [`Opener`] instead. A full inbox refuses it
    /// ([`crate::store::StoreError::InboxFull`]): the source keeps it.
    pub async fn store(&self, msg: NewMessage) -> crate::store::Result<Stored> {
        self.store_with(msg, true).await
    }

    /// [`Ingest::store`]; with `capped` false, a plaintext message is stored even over the
    /// inbox caps (for a source that has already forgotten it, see [`Inbox::insert_with`]).
    pub async fn store_with(&self, msg: NewMessage, capped: bool) -> crate::store::Result<Stored> {
        if msg.message.starts_with(ENVELOPE_PREFIX) {
            if let Some(opener) = self.opener.get().and_then(Weak::upgrade) {
                return opener.open(msg).await;
            }
        }
        self.store_plain_with(msg, capped).await
    }

    /// Stores `msg` as it is (the opener's way in for decrypted messages).
    pub async fn store_plain(&self, msg: NewMessage) -> crate::store::Result<Stored> {
        self.store_plain_with(msg, true).await
    }

    async fn store_plain_with(
        &self,
        msg: NewMessage,
        capped: bool,
    ) -> crate::store::Result<Stored> {
        let stored = self.inbox.insert_durable_with(msg, capped).await?;
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
        self.store_all_with(msgs, true).await
    }

    /// [`Ingest::store_all`], `capped` as in [`Ingest::store_with`].
    pub async fn store_all_with(
        &self,
        msgs: impl IntoIterator<Item = NewMessage>,
        capped: bool,
    ) -> crate::store::Result<Vec<Stored>> {
        join_all(msgs.into_iter().map(|m| self.store_with(m, capped)))
            .await
            .into_iter()
            .collect()
    }
}
