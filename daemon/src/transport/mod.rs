//! Transports: the [`Transport`] trait, the [`Registry`] that holds them, the typed outbox
//! [`Payload`], and the outbox [`lanes`].
//!
//! A transport is one folder (`gateway/`, `relay/`, `nexus/`) that owns one protocol. To the
//! rest of the daemon it is one [`Transport`]:
//!
//! - **what it accepts**: [`Transport::accepts`] lists the address kinds (URL schemes such as
//!   `ws`, `relay+https`) it delivers to; [`Registry::for_address`] picks the transport for an
//!   address, so `send` names no scheme itself;
//! - **how an address becomes a typed target**: [`Transport::route`] checks the address and
//!   builds the lane key and the [`Payload`] that goes durably into the outbox;
//! - **how it delivers**: [`Transport::deliver`] makes one attempt for one record;
//! - **how it starts**: each folder has a `start(&Context)` that builds its handle and its
//!   background tasks (owned by [`Context::tracker`], stopped by [`Context::shutdown`]);
//! - **what `status` shows**: every transport is a [`StatusSource`].
//!
//! Adding a transport: a new folder with those pieces, its variant in [`Payload`] (if it uses
//! the outbox), and one line in `agent.rs` that adds its `start` to the registry.
//!
//! Outbound path of one message: `control::handlers::send` → [`Registry::for_address`] →
//! [`Transport::route`] → [`Outbound::enqueue`] (the outbox, fsynced) → the record's lane →
//! [`Transport::deliver`] → `delivered`/`failed`/`expired` in the outbox.

pub mod lanes;
pub mod payload;
pub mod registry;

pub use lanes::{Attempt, Outbound};
pub use payload::{A2aSend, FriendSend, GatewaySend, Payload, RelaySend};
pub use registry::{Registry, WeakRegistry};

use crate::inbound::Ingest;
use crate::live_config::LiveConfig;
use crate::status::StatusSource;
use crate::store::Db;
use clawlink::proto::{ApiError, SendParams};
use clawlink::Secret;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// An outbox record of this daemon.
pub type Record = crate::store::outbox::OutboxRecord<Payload>;

/// The outbox of this daemon.
pub type OutboxStore = crate::store::outbox::Outbox<Payload>;

/// What one delivery attempt achieved.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The peer accepted it.
    Delivered,
    /// Not now; try again (after `after` if the peer said so).
    Retry {
        /// What went wrong, for the user.
        error: ApiError,
        /// The peer's requested delay.
        after: Option<Duration>,
    },
    /// Refused for good (bad token, missing scope, unknown recipient, ...).
    Failed(ApiError),
}

/// A boxed future, as transports return from [`Transport::deliver`].
pub use crate::util::BoxFuture;

/// A send as the user asked for it: the address, its credential, and the message.
pub struct SendRequest<'a> {
    /// The address (a contact's URL or `--url`).
    pub url: &'a str,
    /// Its token (the contact's, or `--token`); empty when none.
    pub token: Secret,
    /// The rest of the request (message, sender name, gateway method, ...).
    pub params: &'a SendParams,
}

/// Where a send goes: its lane within the transport and the payload to store.
pub struct Route {
    /// Delivery lane (URL, relay, ...): order is kept per lane.
    pub target: String,
    /// What the transport needs to deliver it, stored in the outbox.
    pub payload: Payload,
}

/// What every transport's `start` gets.
#[derive(Clone)]
pub struct Context {
    /// The store.
    pub db: Db,
    /// The data directory (keys and token files live there).
    pub data_dir: PathBuf,
    /// The configuration, reloaded on SIGHUP.
    pub config: LiveConfig,
    /// The way into the inbox for inbound messages.
    pub ingest: Ingest,
    /// The daemon's one HTTP client (see [`crate::util::http_client`]).
    pub http: reqwest::Client,
    /// The process-wide shutdown token.
    pub shutdown: CancellationToken,
    /// Owns every task a transport starts.
    pub tracker: TaskTracker,
}

/// The scheme of `url` (`relay+https` of `relay+https://host/id`), if it has one.
pub fn scheme(url: &str) -> Option<&str> {
    let (s, _) = url.trim().split_once("://")?;
    let ok = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    ok.then_some(s)
}

/// One protocol, as the registry and the outbox see it. See the module docs.
pub trait Transport: StatusSource + Send + Sync + 'static {
    /// The `transport` value of its outbox records and `status` rows (`gateway`, `relay`).
    fn kind(&self) -> &'static str;

    /// The address kinds (URL schemes, without `://`) it delivers to; none for a transport
    /// that only receives or sends outside the outbox.
    fn accepts(&self) -> &'static [&'static str] {
        &[]
    }

    /// Checks `req` (an address it accepts) and builds its lane and payload.
    fn route(&self, req: &SendRequest<'_>) -> Result<Route, ApiError> {
        Err(ApiError::new(
            "bad_request",
            format!(
                "the {} transport does not send to {:?}",
                self.kind(),
                req.url
            ),
        ))
    }

    /// Attempts to deliver one record (its payload says how).
    fn deliver<'a>(&'a self, record: &'a Record) -> BoxFuture<'a, Outcome> {
        let kind = self.kind();
        Box::pin(async move {
            Outcome::Failed(ApiError::new(
                "no_transport",
                format!(
                    "the {kind} transport does not deliver {:?}",
                    record.transport
                ),
            ))
        })
    }

    /// A handshake and health round trip to `url`, as `clawlink ping` shows it; `None` when
    /// the transport has no such check.
    fn ping<'a>(
        &'a self,
        _url: &'a str,
        _token: &'a Secret,
    ) -> Option<BoxFuture<'a, serde_json::Value>> {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn schemes() {
        assert_eq!(
            super::scheme("relay+https://r.example/x"),
            Some("relay+https")
        );
        assert_eq!(super::scheme(" ws://h:1"), Some("ws"));
        assert_eq!(super::scheme("bob"), None);
        assert_eq!(super::scheme("a b://x"), None);
    }
}
