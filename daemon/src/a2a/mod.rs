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
pub mod config;
pub mod follower;
pub mod push;
pub mod rpc;
pub mod server;
pub mod tasks;
pub mod transport;
pub mod wire;

pub use server::router;

/// A random 128-bit id, hex (task ids, artifact ids, message ids, context ids).
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The shared HTTP client of the A2A client side (no redirects: a peer cannot bounce a
/// request, and its token, to another host).
pub fn http_client() -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(std::time::Duration::from_secs(10))
        .build()?)
}

/// The A2A handles the daemon shares with its control handlers. Cheap to clone.
#[derive(Clone)]
pub struct A2a {
    /// Inbound tasks.
    pub tasks: tasks::Tasks,
    /// Outbound task follower (owns the A2A store handle too).
    pub follower: follower::Follower,
    /// The HTTP client (card discovery).
    pub http: reqwest::Client,
}
