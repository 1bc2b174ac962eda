//! A2A 1.0 (Agent2Agent, JSON-RPC binding), both ways, on top of clawlink's durable store.
//!
//! A2A itself has no offline mailbox: a task lives as long as the server process that holds
//! it, and a caller whose peer is down has nowhere to leave a message. clawlink adds both:
//!
//! - **inbound** ([`server`], [`tasks`]): the Agent Card and `/a2a/v1` on the daemon's listen
//!   address. Each peer has its own bearer token (stored hashed). An accepted `SendMessage`
//!   is in the durable inbox and its task on disk before the caller hears back; tasks survive
//!   kill -9 and say truthfully where they stand (submitted → working → completed/rejected).
//!   A push-notification config gets the final state delivered through the outbox ([`push`]).
//! - **outbound** ([`transport`], [`client`], [`follower`]): a send to an `a2a:URL` contact goes
//!   through the durable outbox as `SendMessage` (`messageId` = outbox id, so a retry is the same
//!   message), the returned task is followed with `GetTask` until final, and the answer lands
//!   in the inbox from that contact, linked to the message it answers.
//!
//! [`wire`] has the JSON types, [`rpc`] the request parser (fuzzed), [`card`] the Agent Card.
//! What is not supported: streaming (SSE), task listing, push-config CRUD methods, file parts,
//! the gRPC and HTTP+JSON bindings; each is refused with the JSON-RPC error that says so.

pub mod card;
pub mod client;
pub mod follower;
pub mod push;
pub mod push_guard;
pub mod rpc;
pub mod server;
pub mod tasks;
pub mod transport;
pub mod wire;

use crate::status::StatusSource;
use crate::store::a2a::A2aStore;
use crate::transport::Context;
use clawlink::proto::ConnectionRow;
use std::collections::BTreeMap;
use std::sync::Arc;

pub use crate::util::hex::new_id;

/// The A2A transport: inbound tasks, the outbound follower, and the [`crate::transport::Transport`]
/// that sends `a2a+http(s)://` addresses and push notifications.
pub struct A2a {
    /// Inbound tasks.
    pub tasks: tasks::Tasks,
    /// Outbound task follower (it owns the A2A store handle too).
    pub follower: follower::Follower,
    /// The daemon's HTTP client.
    pub http: reqwest::Client,
    /// The configuration (push destinations are checked against it at each attempt).
    config: crate::live_config::LiveConfig,
    // Endpoints known to speak only the 0.3 method names. Never held across an await.
    legacy: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// Opens the A2A store and resumes following the tasks left open before a restart.
pub fn start(ctx: &Context) -> anyhow::Result<Arc<A2a>> {
    let store = A2aStore::open(&ctx.db)?;
    let http = ctx.http.clone();
    let follower = follower::Follower::new(
        store.clone(),
        ctx.ingest.clone(),
        http.clone(),
        ctx.shutdown.clone(),
        ctx.tracker.clone(),
    );
    let followed = follower.resume()?;
    tracing::info!(tasks = followed, "A2A tasks followed");
    Ok(Arc::new(A2a {
        tasks: tasks::Tasks::new(store, ctx.ingest.clone()),
        follower,
        http,
        config: ctx.config.clone(),
        legacy: Default::default(),
    }))
}

impl A2a {
    /// The inbound endpoint (card and `/a2a/v1`), for the daemon's listener.
    pub fn router(&self, config: crate::config::a2a::A2aConfig) -> axum::Router {
        server::router(self.tasks.clone(), config)
    }
}

impl StatusSource for A2a {
    fn rows(&self) -> Vec<ConnectionRow> {
        let store = self.tasks.store();
        let mut info = BTreeMap::new();
        let open = store.open_tasks().map(|t| t.len()).unwrap_or(0);
        info.insert("inbound_open".to_string(), open.to_string());
        let followed = store.open_follows().map(|f| f.len()).unwrap_or(0);
        info.insert("outbound_followed".to_string(), followed.to_string());
        let peers = store.peers().map(|p| p.len()).unwrap_or(0);
        info.insert("peers".to_string(), peers.to_string());
        vec![ConnectionRow {
            kind: transport::KIND.into(),
            target: "/a2a/v1".into(),
            state: "ready".into(),
            info,
            ..Default::default()
        }]
    }
}
