//! [`State`]: what every control handler shares, built once by the agent role.
//!
//! It holds the store handles, the outbox, the transport [`Registry`] and the configuration;
//! nothing in it belongs to one transport (a protocol's handler asks the registry for its
//! transport's handle). The only lock in it (the configuration, swapped on SIGHUP) is never
//! held across an `.await`.

use crate::config::Config;
use crate::delivery::Hub;
use crate::live_config::LiveConfig;
use crate::status::StatusSource;
use crate::store::{contacts::Contacts, inbox::Inbox, kv::Kv, Db};
use crate::transport::{Outbound, Registry, Transport};
use clawlink::proto::{ApiError, ConnectionRow};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything the control handlers share.
pub struct State {
    /// The database.
    pub db: Db,
    /// The inbox.
    pub inbox: Inbox,
    /// Contacts.
    pub contacts: Contacts,
    /// Settings.
    pub kv: Kv,
    /// The outbox and its lanes.
    pub outbound: Outbound,
    /// Every transport.
    pub transports: Registry,
    /// Fan-out to listeners.
    pub hub: Hub,
    /// Start time.
    pub started: Instant,
    /// Control socket path.
    pub socket: PathBuf,
    /// Bound webhook address.
    pub listen: Option<SocketAddr>,
    /// The process-wide shutdown token.
    pub shutdown: CancellationToken,
    /// Background tasks (joined at shutdown).
    pub tracker: TaskTracker,
    /// The configuration.
    pub config: LiveConfig,
    /// Inbound policy: rules, review queue, limits, audit log (the local-agent worker shares it).
    pub policy: crate::policy::Engine,
}

impl State {
    /// The current configuration.
    pub fn config(&self) -> Arc<Config> {
        self.config.get()
    }

    /// The transport of type `T`, or an error saying this daemon runs without it.
    pub fn transport<T: Transport>(&self) -> Result<Arc<T>, ApiError> {
        self.transports.get::<T>().ok_or_else(|| {
            ApiError::new(
                "unavailable",
                "this transport is not available in this daemon",
            )
        })
    }

    /// Rows from every transport, for `status`.
    pub fn connection_rows(&self) -> Vec<ConnectionRow> {
        self.transports.rows()
    }
}
