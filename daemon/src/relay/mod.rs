//! The relay transport: everything the agent daemon does with relays, in one place.
//!
//! Why one folder: the relay protocol is one protocol whichever way a message goes. This
//! module owns the protocol's messages ([`wire`], shared with the server role
//! [`crate::relay_server`]), the typed HTTP [`client`] (register, send, poll, ack, users),
//! relay [`address`]es, its [`error`]s, the always-on WebSocket per identity ([`conn`]),
//! messages into the inbox ([`ingest`]), `relay poll` ([`poll`]), the `status` rows
//! ([`status`]) and its [`Transport`](crate::transport::Transport) ([`transport`]). The
//! control handler (`clawlink relay ...`) is a thin adapter over [`Relay`].
//!
//! Receiving: the seed's relay client only received while `relay-client.js listen` ran in a
//! terminal, and lost whatever was pushed while it crashed. Here every identity in the store
//! ([`crate::store::relay_client`]) keeps a connection open for the life of the daemon (see
//! [`conn`] for the wire and the store-then-acknowledge rule).
//!
//! Sending: outbox records of transport `relay` (addresses `relay://HOST:PORT/ID`,
//! `relay+https://HOST/ID`) are delivered with `POST /send` (see [`transport`]).

pub mod address;
pub mod client;
pub mod conn;
pub mod error;
pub mod ingest;
pub mod poll;
pub mod status;
pub mod transport;
pub mod wire;

use crate::inbound::Ingest;
use crate::store::relay_client::{Identity, RelayClientStore};
use crate::transport::Context;
pub use client::RelayHttp;
use conn::Conn;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Every relay identity of the daemon and its connection.
pub struct Relay {
    /// The identities.
    pub store: RelayClientStore,
    /// The relay HTTP client.
    pub http: RelayHttp,
    ingest: Ingest,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    conns: Mutex<HashMap<String, Arc<Conn>>>,
    /// WebSocket ping interval; a link silent for three intervals is declared dead.
    ping_every: Duration,
}

/// Opens the identities and connects every one of them.
pub fn start(ctx: &Context) -> anyhow::Result<Arc<Relay>> {
    let relay = Arc::new(Relay {
        store: RelayClientStore::open(&ctx.db)?,
        http: RelayHttp::new(ctx.http.clone()),
        ingest: ctx.ingest.clone(),
        shutdown: ctx.shutdown.clone(),
        tracker: ctx.tracker.clone(),
        conns: Mutex::new(HashMap::new()),
        ping_every: Duration::from_secs(ctx.config.get().relay.ping_interval_secs.max(1)),
    });
    let all = relay.store.all()?;
    tracing::info!(identities = all.len(), "relay connections started");
    for i in all {
        relay.connect(i);
    }
    Ok(relay)
}

impl Relay {
    fn conns(&self) -> MutexGuard<'_, HashMap<String, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keeps `identity` connected (replacing a connection with other credentials).
    pub fn connect(self: &Arc<Self>, identity: Identity) {
        let key = format!("{}/{}", identity.relay, identity.id);
        let conn = Arc::new(Conn::new(identity, self.shutdown.child_token()));
        let mut conns = self.conns();
        if let Some(old) = conns.get(&key) {
            if old.identity.secret == conn.identity.secret && !old.cancel.is_cancelled() {
                // Registered again: try now rather than after the rest of a backoff.
                old.wake.notify_one();
                return;
            }
            old.cancel.cancel();
        }
        conns.insert(key, conn.clone());
        drop(conns);
        let me = self.clone();
        self.tracker.spawn(async move { me.run(conn).await });
    }

    /// Our first identity on `relay`, or an error that says to register one.
    pub fn me(&self, relay: &str) -> Result<Identity, clawlink::proto::ApiError> {
        let ids = self
            .store
            .on_relay(relay)
            .map_err(clawlink::proto::ApiError::from)?;
        ids.into_iter()
            .next()
            .ok_or_else(|| error::no_identity(relay))
    }
}
