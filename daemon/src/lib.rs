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
//! Inbound: [`inbound`] (webhook, relay subscriber, Nexus poller) → [`store`] (durable,
//! group-committed) → acknowledge the sender → [`delivery`] (live `listen` subscribers and the
//! local OpenClaw agent).
//!
//! Outbound: [`control`] (`send`) → [`store`] (outbox) → [`outbound`] (one transport per kind:
//! gateway, relay, Nexus) → marked delivered in the store.
//!
//! Nothing but [`store`] knows the data lives in sled.
#![forbid(unsafe_code)]

pub mod agent;
pub mod config;
pub mod control;
pub mod delivery;
pub mod gateway;
pub mod http;
pub mod inbound;
pub mod logging;
pub mod nexus_server;
pub mod outbound;
pub mod relay_server;
pub mod shutdown;
pub mod store;
pub mod time;
