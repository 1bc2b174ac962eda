//! # clawlinkd
//!
//! The always-on side of clawlink. One binary, three roles:
//!
//! - the **agent daemon** (default, [`agent`]): holds connections to OpenClaw gateways, relays
//!   and Nexus sessions, keeps every inbound message in a durable inbox, and is driven by the
//!   `clawlink` CLI over a local socket;
//! - **`relay-server`** ([`relay_server`]): a self-hostable relay the seed's relay client works
//!   against unchanged;
//! - **`nexus-server`** ([`nexus_server`]): a NexusMessaging-compatible server that keeps
//!   messages durably.
//!
//! ## The path of one message
//!
//! Inbound: a transport's subscriber ([`relay::conn`], [`nexus::poller`]) or the webhook
//! ([`inbound::webhook`]) → [`inbound::Ingest`] → [`store`] (durable, group-committed) →
//! acknowledge the sender → [`delivery`] (live `listen` subscribers) and
//! [`policy::local_agent`] (the local OpenClaw agent).
//!
//! Outbound: [`control`] (`send`) → [`transport::Registry`] (which transport accepts the
//! address) → [`store`] (outbox) → [`transport::lanes`] → the protocol's module
//! ([`gateway`], [`relay`]) → marked delivered in the store.
//!
//! Nothing but [`store`] knows the data lives in sled. Modules import downwards only
//! (`python3 scripts/module-cycles.py` checks there is no cycle).
#![forbid(unsafe_code)]

pub mod a2a;
pub mod agent;
pub mod config;
pub mod control;
pub mod delivery;
pub mod friend;
pub mod gateway;
pub mod http;
pub mod inbound;
pub mod level;
pub mod live_config;
pub mod logging;
pub mod nexus;
pub mod nexus_server;
pub mod policy;
pub mod relay;
pub mod relay_server;
pub mod shutdown;
pub mod state;
pub mod status;
pub mod store;
pub mod text;
pub mod time;
pub mod transport;
pub mod trust;
pub mod util;
