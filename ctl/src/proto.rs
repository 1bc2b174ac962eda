//! The control protocol's messages: one [`Request`] enum, the result types, and [`Event`]s.
//!
//! On the wire a request is `{"method":"<name>","params":{...}}` (params omitted for
//! requests without any); see the crate docs for handshake and framing. Each request
//! documents the result type its `"result"` carries.

use crate::secret::Secret;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Version of this protocol. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// The client's first frame.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hello {
    /// Protocol version the client speaks.
    pub clawlink: u32,
    /// Free-form client name and version, for the daemon's logs.
    #[serde(default)]
    pub client: String,
}

/// The daemon's answer to a matching [`Hello`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HelloOk {
    /// Protocol version the daemon speaks.
    pub clawlink: u32,
    /// Daemon name and version.
    pub daemon: String,
}

/// Every request the daemon understands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "method", content = "params", deny_unknown_fields)]
pub enum Request {
    /// Daemon health and every connection it holds. Result: [`StatusReply`].
    #[serde(rename = "status")]
    Status,
    /// List inbox messages, oldest first. Result: `Vec<`[`InboxMessage`]`>`.
    #[serde(rename = "inbox.list")]
    InboxList(InboxQuery),
    /// One message; marks it read. Result: [`InboxMessage`].
    #[serde(rename = "inbox.read")]
    InboxRead(IdParam),
    /// Mark one message (or all) read. Result: [`Count`].
    #[serde(rename = "inbox.ack")]
    InboxAck(AckParams),
    /// Delete one message. Result: [`Count`].
    #[serde(rename = "inbox.rm")]
    InboxRemove(IdParam),
    /// Delete every message already read (makes room in a full inbox). Result: [`Count`].
    #[serde(rename = "inbox.rm_read")]
    InboxRemoveRead,
    /// Subscribe to inbound messages; the connection then carries [`Event`]s.
    #[serde(rename = "listen")]
    Listen(ListenParams),
    /// Add or replace a contact. Result: [`ContactView`].
    #[serde(rename = "contacts.add")]
    ContactsAdd(NewContact),
    /// List contacts (tokens redacted). Result: `Vec<`[`ContactView`]`>`.
    #[serde(rename = "contacts.list")]
    ContactsList,
    /// Remove a contact by name. Result: [`Count`].
    #[serde(rename = "contacts.remove")]
    ContactsRemove(NameParam),
    /// Import contacts (and a relay identity) read by the CLI from a seed skill dir. Result: [`ImportReply`].
    #[serde(rename = "import")]
    Import(ImportParams),
    /// Send a message to a contact or a gateway URL through the outbox. Result: [`SendReply`].
    #[serde(rename = "send")]
    Send(SendParams),
    /// Handshake plus a `health` round trip against a gateway. Result: [`PingReply`].
    #[serde(rename = "ping")]
    Ping(PingParams),
    /// Pending and recent outbound messages. Result: `Vec<`[`OutboxEntry`]`>`.
    #[serde(rename = "outbox.list")]
    OutboxList,
    /// Cancel pending outbound messages. Result: `Vec<`[`Cancelled`]`>`.
    #[serde(rename = "outbox.cancel")]
    OutboxCancel(OutboxCancelParams),
    /// Relay commands (the seed's `relay-client.js`). Result: see [`RelayRequest`].
    #[serde(rename = "relay")]
    Relay(RelayRequest),
    /// Nexus commands (the protocol CLI's `nexus.sh`). Result: [`NexusReply`].
    #[serde(rename = "nexus")]
    Nexus(NexusRequest),
    /// Stop the daemon gracefully (same path as SIGTERM). Result: `{}`.
    #[serde(rename = "shutdown")]
    Shutdown,
    /// A2A commands: peers, tasks, contacts, `ask`. Result: see [`A2aRequest`].
    #[serde(rename = "a2a")]
    A2a(A2aRequest),
    /// Inbound policy rules. Result: see [`PolicyRequest`].
    #[serde(rename = "policy")]
    Policy(PolicyRequest),
    /// The review queue. Result: see [`ReviewRequest`].
    #[serde(rename = "review")]
    Review(ReviewRequest),
    /// The audit log of inbound decisions. Result: see [`AuditRequest`].
    #[serde(rename = "audit")]
    Audit(AuditRequest),
    /// This daemon's identity. Result: see [`IdRequest`].
    #[serde(rename = "id")]
    Id(IdRequest),
    /// Friends: invites, pinned keys, sealed envelopes. Result: see [`FriendRequest`].
    #[serde(rename = "friend")]
    Friend(FriendRequest),
}

impl Request {
    /// The wire name of the request, for logs (never its params, which may hold secrets).
    pub fn method(&self) -> &'static str {
        match self {
            Request::Status => "status",
            Request::InboxList(_) => "inbox.list",
            Request::InboxRead(_) => "inbox.read",
            Request::InboxAck(_) => "inbox.ack",
            Request::InboxRemove(_) => "inbox.rm",
            Request::InboxRemoveRead => "inbox.rm_read",
            Request::Listen(_) => "listen",
            Request::ContactsAdd(_) => "contacts.add",
            Request::ContactsList => "contacts.list",
            Request::ContactsRemove(_) => "contacts.remove",
            Request::Import(_) => "import",
            Request::Send(_) => "send",
            Request::Ping(_) => "ping",
            Request::OutboxList => "outbox.list",
            Request::OutboxCancel(_) => "outbox.cancel",
            Request::Relay(_) => "relay",
            Request::Nexus(_) => "nexus",
            Request::Shutdown => "shutdown",
            Request::A2a(_) => "a2a",
            Request::Policy(_) => "policy",
            Request::Review(_) => "review",
            Request::Audit(_) => "audit",
            Request::Id(_) => "id",
            Request::Friend(_) => "friend",
        }
    }
}

/// `{"id": N}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdParam {
    /// Inbox message id.
    pub id: u64,
}

/// `{"name": "..."}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NameParam {
    /// Contact name.
    pub name: String,
}

/// Filters for [`Request::InboxList`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InboxQuery {
    /// Only unread messages.
    pub unread: bool,
    /// Only messages whose sender equals this name.
    pub from: Option<String>,
    /// Only messages from this source (`webhook`, `relay`, `nexus`).
    pub source: Option<String>,
    /// At most this many, the newest ones (still printed oldest first).
    pub limit: Option<u32>,
    /// Only messages with an id below this one: with `limit`, pages back through a large
    /// inbox in replies of bounded size (the CLI does this by itself).
    pub before: Option<u64>,
}

/// Params of [`Request::InboxAck`]: exactly one of `id` or `all`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AckParams {
    /// The message to mark read.
    pub id: Option<u64>,
    /// Mark every message read.
    pub all: bool,
}

/// Params of [`Request::Listen`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ListenParams {
    /// Only messages from this source (`webhook`, `relay`, `nexus`).
    pub source: Option<String>,
}

/// A count of things changed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Count {
    /// How many.
    pub count: u64,
}

/// One message in the durable inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboxMessage {
    /// Local id, increasing in arrival order.
    pub id: u64,
    /// Where it came from: `webhook`, `relay`, `nexus`.
    pub source: String,
    /// The id the source gave it, used to store duplicates once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// Sender as the source names it.
    pub from: String,
    /// The text.
    pub message: String,
    /// RFC 3339 UTC time the daemon stored it.
    pub received_at: String,
    /// Whether the user has read or acknowledged it.
    pub read: bool,
    /// Source-specific fields (relay URL, Nexus session id, cursor, verified, ...).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub meta: serde_json::Map<String, serde_json::Value>,
}

/// Events on a subscription.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A message was stored in the inbox.
    Message {
        /// The stored message.
        message: InboxMessage,
    },
    /// The subscriber fell behind and this many messages were not sent (they are in the inbox).
    Lagged {
        /// Number of skipped messages.
        missed: u64,
    },
    /// The daemon is shutting down.
    Shutdown,
}

/// Result of [`Request::Status`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StatusReply {
    /// Daemon version.
    pub version: String,
    /// Control protocol version.
    pub protocol: u32,
    /// Process id.
    pub pid: u32,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// The data directory.
    pub data_dir: String,
    /// The control socket.
    pub socket: String,
    /// Webhook listener address, if enabled.
    pub listen: Option<String>,
    /// Inbox counts.
    pub inbox: InboxCounts,
    /// Outbound messages not yet delivered.
    pub outbox_pending: u64,
    /// One row per connection the daemon holds.
    pub connections: Vec<ConnectionRow>,
}

/// Inbox totals.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct InboxCounts {
    /// All stored messages.
    pub total: u64,
    /// Messages not yet read.
    pub unread: u64,
    /// Bytes the stored messages take (as encoded in the store).
    #[serde(default)]
    pub bytes: u64,
    /// The inbox's message cap (0: unknown, from an older daemon).
    #[serde(default)]
    pub max_messages: u64,
    /// The inbox's byte cap (0: unknown, from an older daemon).
    #[serde(default)]
    pub max_bytes: u64,
    /// The inbox is full: new messages are refused (webhook 507) or left on their relay or
    /// Nexus server until messages are deleted.
    #[serde(default)]
    pub full: bool,
}

/// One connection in `status`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConnectionRow {
    /// `gateway`, `relay` or `nexus`.
    pub kind: String,
    /// URL, relay identity or session id.
    pub target: String,
    /// `connecting`, `connected`, `backoff`, `idle`, `failed`, ...
    pub state: String,
    /// The last error seen, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Last measured round trip, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<f64>,
    /// Transport-specific facts (protocol, server version, expiry, ...).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub info: BTreeMap<String, String>,
}

/// A contact as given by `contacts add` (the seed's fields).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewContact {
    /// Unique name, used with `send --to`.
    pub name: String,
    /// Where to reach it: a gateway `ws://`/`wss://` URL, or `relay://HOST:PORT/ID`.
    pub url: String,
    /// Gateway token (secret).
    #[serde(default)]
    pub token: Secret,
    /// Free-text description.
    #[serde(default)]
    pub desc: String,
    /// When it was first added (RFC 3339), for contacts imported from the seed's
    /// `contacts.json` (`addedAt`); absent means now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<String>,
}

/// A contact as listed: the token is never included, only whether one is set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContactView {
    /// Name.
    pub name: String,
    /// URL.
    pub url: String,
    /// Always `***` (set) or `(none)`.
    pub token: String,
    /// Description.
    pub desc: String,
    /// RFC 3339 time it was added.
    pub added_at: String,
}

/// A relay identity as the seed's `relay-config.json` has it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayIdentity {
    /// Relay base URL, e.g. `http://localhost:3900`.
    pub relay: String,
    /// Our id on the relay.
    pub id: String,
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Relay secret.
    pub secret: Secret,
}

/// Params of [`Request::Import`]: file contents the CLI read from a seed skill directory.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportParams {
    /// Contacts from `contacts.json`.
    pub contacts: Vec<NewContact>,
    /// Identity from `relay-config.json`.
    pub relay: Option<RelayIdentity>,
    /// Absolute path of a protocol CLI sessions directory (`<SID>/` subdirectories) whose
    /// sessions the daemon takes over; the daemon reads it itself so keys never cross the socket.
    pub nexus_dir: Option<String>,
}

/// Result of [`Request::Import`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ImportReply {
    /// Contacts imported.
    pub contacts: u64,
    /// Whether a relay identity was imported.
    pub relay: bool,
    /// Nexus sessions taken over.
    #[serde(default)]
    pub nexus_sessions: u64,
    /// Contacts not imported, each with why (`NAME: reason`); the others were imported.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<String>,
}

/// Params of [`Request::Send`]: the seed's `send` flags plus delivery options.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SendParams {
    /// Contact name.
    pub to: Option<String>,
    /// Gateway URL, instead of a contact.
    pub url: Option<String>,
    /// Gateway token, with `url`.
    pub token: Option<Secret>,
    /// The text.
    pub message: String,
    /// Sender name shown to the peer.
    pub from: Option<String>,
    /// Gateway method: `system-event` (default), `wake`, `chat.send`, `agent`.
    pub method: Option<String>,
    /// Target session key (default: the peer's main session).
    pub session: Option<String>,
    /// Block until delivered or expired instead of returning once queued.
    pub wait: bool,
    /// To a friend: what to wait for, `sent` (a server took it, as `wait`), `stored` or
    /// `delivered` (the friend's signed receipt).
    pub wait_for: Option<String>,
    /// Give up after this many seconds (default from config).
    pub ttl_secs: Option<u64>,
}

/// Delivery state of an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Stored in the outbox, not yet accepted by the peer.
    Queued,
    /// The peer answered ok.
    Delivered,
    /// The peer refused it for good (bad token, missing scope, ...).
    Failed,
    /// The deadline passed before it could be delivered.
    Expired,
    /// The owner cancelled it (`clawlink outbox cancel`).
    Cancelled,
}

/// Which pending messages [`Request::OutboxCancel`] cancels: exactly one of the three.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboxCancelParams {
    /// One outbox id.
    pub id: Option<String>,
    /// Every pending message to this contact name or URL (as given to `send`).
    pub to: Option<String>,
    /// Every pending message.
    pub all: bool,
}

/// One message [`Request::OutboxCancel`] acted on, with the state its lane ended it in:
/// `cancelled`, or `delivered`/`failed` when an attempt under way finished first, or `queued`
/// when an attempt was still under way when the daemon answered (it is cancelled after it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cancelled {
    /// Outbox id.
    pub id: String,
    /// Its state now.
    pub state: DeliveryState,
}

/// Result of [`Request::Send`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SendReply {
    /// Outbox id (also the idempotency key sent to the peer).
    pub id: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// `gateway`, `relay` or `nexus`.
    pub transport: String,
    /// URL or relay id it goes to.
    pub target: String,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Why it is not delivered (yet), and what to do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
    /// To a friend: its latest signed receipt, `stored`, `delivered` or `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

/// Params of [`Request::Ping`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PingParams {
    /// Contact name.
    pub to: Option<String>,
    /// Gateway URL.
    pub url: Option<String>,
    /// Token for `url`.
    pub token: Option<Secret>,
}

/// Result of [`Request::Ping`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PingReply {
    /// The URL pinged.
    pub url: String,
    /// Whether the gateway answered at all.
    pub reachable: bool,
    /// Whether the token was accepted (absent without a token).
    pub auth_ok: Option<bool>,
    /// Protocol in use.
    pub protocol: Option<u32>,
    /// Gateway version.
    pub server_version: Option<String>,
    /// Round trip of `health` (or `/healthz`), in milliseconds.
    pub rtt_ms: Option<f64>,
    /// Scopes the gateway granted.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// What went wrong.
    pub error: Option<ApiError>,
}

/// One outbound message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Outbox id.
    pub id: String,
    /// Contact name or URL as given.
    pub to: String,
    /// `gateway`, `relay` or `nexus`.
    pub transport: String,
    /// Where it goes.
    pub target: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// Attempts so far.
    pub attempts: u32,
    /// RFC 3339 time it was queued.
    pub created_at: String,
    /// RFC 3339 time after which it expires.
    pub deadline: String,
    /// Last error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// To a friend: its latest signed receipt, `stored`, `delivered` or `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
}

/// Relay commands, named after the seed's `relay-client.js`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum RelayRequest {
    /// Save the default relay URL. Result: `{"relay": URL}`.
    Setup {
        /// Relay base URL.
        relay: String,
    },
    /// Register an identity and keep it connected. Result: `{"relay","id","name"}`.
    Register {
        /// Relay URL (default: the saved one).
        relay: Option<String>,
        /// Our id.
        id: String,
        /// Display name.
        name: String,
        /// Secret.
        secret: Secret,
    },
    /// Send through the relay (via the outbox). Result: [`SendReply`].
    Send {
        /// Relay URL (default: the saved one).
        relay: Option<String>,
        /// Recipient id.
        to: String,
        /// The text.
        message: String,
        /// Wait for the relay's acceptance.
        #[serde(default)]
        wait: bool,
    },
    /// Drain the relay's queue into the inbox. Result: `Vec<`[`InboxMessage`]`>` (the new ones).
    Poll {
        /// Relay URL (default: the saved one).
        relay: Option<String>,
    },
    /// Users on the relay. Result: the relay's `{count, users}`.
    Users {
        /// Relay URL (default: the saved one).
        relay: Option<String>,
    },
}

/// Nexus commands, named after the protocol CLI's `nexus.sh`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum NexusRequest {
    /// `create`.
    Create {
        /// Server URL override.
        url: Option<String>,
        /// TTL in seconds.
        ttl: Option<u64>,
        /// Max agents.
        max_agents: Option<u32>,
        /// Greeting at cursor 0.
        greeting: Option<String>,
        /// Join as creator with this agent id.
        creator_agent_id: Option<String>,
    },
    /// `status SID`.
    Status {
        /// Server URL override.
        url: Option<String>,
        /// Session id.
        sid: String,
    },
    /// `join SID --agent-id ID`.
    Join {
        /// Server URL override.
        url: Option<String>,
        /// Session id.
        sid: String,
        /// Our agent id.
        agent_id: String,
    },
    /// `leave SID`.
    Leave {
        /// Session id.
        sid: String,
    },
    /// `pair SID`.
    Pair {
        /// Server URL override.
        url: Option<String>,
        /// Session id.
        sid: String,
    },
    /// `claim CODE --agent-id ID`.
    Claim {
        /// Server URL override.
        url: Option<String>,
        /// Pairing code.
        code: String,
        /// Our agent id.
        agent_id: String,
    },
    /// `pair-status CODE`.
    PairStatus {
        /// Server URL override.
        url: Option<String>,
        /// Pairing code.
        code: String,
    },
    /// `send SID TEXT`.
    Send {
        /// Session id.
        sid: String,
        /// The text.
        text: String,
    },
    /// `poll SID [--after C] [--members]`.
    Poll {
        /// Session id.
        sid: String,
        /// Exclusive cursor; when given the stored cursor is neither used nor advanced.
        after: Option<String>,
        /// Include members.
        #[serde(default)]
        members: bool,
    },
    /// `renew SID [--ttl N]`.
    Renew {
        /// Session id.
        sid: String,
        /// New TTL.
        ttl: Option<u64>,
    },
    /// `sessions`: the sessions the daemon keeps joined.
    Sessions,
}

/// Result of [`Request::Nexus`]: what the server said, so the CLI can print it verbatim.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NexusReply {
    /// HTTP status (0 for a local answer).
    pub status: u16,
    /// The server's JSON (or a local `{"error":...}`).
    pub body: serde_json::Value,
    /// Human tips for stderr.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tips: Vec<String>,
}

/// A2A commands (params of [`Request::A2a`]), tagged by `cmd`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum A2aRequest {
    /// Allow a peer to call this daemon's A2A endpoint; makes its token. Result: [`A2aPeerToken`].
    PeerAdd {
        /// Peer name (becomes the `from` of its messages).
        name: String,
    },
    /// The peers. Result: `Vec<`[`A2aPeerView`]`>`.
    PeerList,
    /// Revoke a peer. Result: [`Count`].
    PeerRemove {
        /// Peer name.
        name: String,
    },
    /// Inbound tasks. Result: `Vec<`[`A2aTaskView`]`>`.
    Tasks {
        /// Only tasks not final yet.
        #[serde(default)]
        open: bool,
    },
    /// Answer an inbound task (completes it). Result: [`A2aTaskView`].
    Reply {
        /// Task id, or the id of the inbox message it holds.
        task: String,
        /// The answer.
        message: String,
    },
    /// Reject an inbound task. Result: [`A2aTaskView`].
    Reject {
        /// Task id, or the id of the inbox message it holds.
        task: String,
        /// Why.
        reason: String,
    },
    /// Add an A2A contact: an origin (its Agent Card is read) or an endpoint. Result: [`A2aContactReply`].
    ContactAdd {
        /// Contact name.
        name: String,
        /// `https://host` (card discovery) or the JSON-RPC endpoint URL.
        url: String,
        /// Bearer token for the peer (secret).
        #[serde(default)]
        token: Secret,
        /// Description.
        #[serde(default)]
        desc: String,
    },
    /// Send to an A2A contact and wait for the answer. Result: [`AskReply`].
    Ask(AskParams),
}

/// A new peer's token, shown once.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct A2aPeerToken {
    /// Peer name.
    pub name: String,
    /// Its bearer token (not kept by the daemon: only its hash is).
    pub token: Secret,
}

/// A peer as listed (never its token).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct A2aPeerView {
    /// Peer name.
    pub name: String,
    /// RFC 3339 time it was added.
    pub added_at: String,
}

/// An inbound task as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct A2aTaskView {
    /// Task id.
    pub id: String,
    /// The peer that sent it.
    pub peer: String,
    /// `submitted`, `working`, `completed`, `rejected`, ...
    pub state: String,
    /// Its conversation.
    pub context_id: String,
    /// The inbox message holding its text.
    pub inbox_id: u64,
    /// RFC 3339 time of the last change.
    #[serde(default)]
    pub updated_at: Option<String>,
}

/// Result of [`A2aRequest::ContactAdd`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct A2aContactReply {
    /// Contact name.
    pub name: String,
    /// The JSON-RPC endpoint messages go to.
    pub endpoint: String,
    /// The agent's name, from its card (when discovered).
    #[serde(default)]
    pub agent: Option<String>,
    /// Its skills, from its card.
    #[serde(default)]
    pub skills: Vec<String>,
}

/// Params of [`A2aRequest::Ask`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AskParams {
    /// Contact name.
    pub to: String,
    /// The question.
    pub message: String,
    /// Longest wait for the answer, seconds (default 120).
    pub timeout_secs: Option<u64>,
}

/// Result of [`A2aRequest::Ask`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AskReply {
    /// Outbox id (the A2A `messageId`).
    pub id: String,
    /// `completed`, `failed`, `rejected`, `auth-required`, `input-required`, `canceled`;
    /// `queued` (not delivered yet) or `working` when the timeout passed first.
    pub state: String,
    /// The answer, or the peer's reason.
    #[serde(default)]
    pub answer: Option<String>,
    /// The peer's task id.
    #[serde(default)]
    pub task_id: Option<String>,
    /// The inbox message holding the answer.
    #[serde(default)]
    pub inbox_id: Option<u64>,
    /// Why it was not delivered, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

/// Identity commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum IdRequest {
    /// The identity. Result: [`IdReply`].
    Show,
    /// New keys; key updates signed by the old key for every friend. Result: [`RotateReply`].
    Rotate,
}

/// Result of [`IdRequest::Show`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdReply {
    /// Peer id (32 hex digits), stable across rotations.
    pub id: String,
    /// Key epoch.
    pub epoch: u32,
    /// Key id of the current keys (32 hex digits).
    pub key_id: String,
    /// Ed25519 public key, base64url.
    pub sign_key: String,
    /// X25519 public key, base64url.
    pub seal_key: String,
    /// Where this daemon can be reached (relay ids, Nexus sessions).
    pub addresses: Vec<String>,
}

/// One envelope for a friend, to be carried by a transport.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedEnvelope {
    /// Friend name.
    pub friend: String,
    /// Message id (hex).
    pub id: String,
    /// The `cle1:` text.
    pub envelope: String,
    /// The friend's addresses, in preference order.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// Result of [`IdRequest::Rotate`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RotateReply {
    /// The new epoch.
    pub epoch: u32,
    /// The new key id.
    pub key_id: String,
    /// A key update for each friend.
    pub updates: Vec<SealedEnvelope>,
}

/// Friend commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum FriendRequest {
    /// A single-use invite. Result: [`InviteReply`].
    Invite {
        /// Addresses to put in the invite (default: this daemon's known addresses).
        #[serde(default)]
        via: Vec<String>,
        /// Validity in seconds (default 900).
        ttl_secs: Option<u64>,
        /// Name to give whoever accepts.
        name: Option<String>,
    },
    /// Accept an invite. Result: [`AcceptReply`].
    Accept {
        /// The `cli1:` invite.
        invite: String,
        /// Local name for the inviter.
        name: String,
    },
    /// Friends. Result: `Vec<`[`FriendView`]`>`.
    List,
    /// Record that the safety numbers were compared. Result: [`FriendView`].
    Verify {
        /// Friend name.
        name: String,
    },
    /// Remove a friend. Result: [`Count`].
    Remove {
        /// Friend name.
        name: String,
    },
    /// Accept a friend's changed key. Result: [`OpenReply`] per released envelope.
    AcceptKey {
        /// Friend name.
        name: String,
    },
    /// Seal a message to a friend without sending it. Result: [`SealedEnvelope`].
    Seal {
        /// Friend name.
        name: String,
        /// The text.
        message: String,
    },
    /// Open an envelope received by any means (stores messages in the inbox). Result: [`OpenReply`].
    Open {
        /// The `cle1:` text.
        envelope: String,
    },
    /// The latest receipt for a message sent to a friend. Result: [`ReceiptView`] or null.
    Receipt {
        /// Message id (hex).
        id: String,
    },
}

/// Result of [`FriendRequest::Invite`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InviteReply {
    /// The `cli1:` invite.
    pub invite: String,
    /// RFC 3339 expiry.
    pub expires_at: String,
    /// The addresses it carries.
    pub addresses: Vec<String>,
}

/// Result of [`FriendRequest::Accept`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AcceptReply {
    /// The inviter, as now pinned.
    pub friend: FriendView,
    /// The invite-accept envelope to deliver to the inviter.
    pub accept: SealedEnvelope,
}

/// A friend as listed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FriendView {
    /// Local name.
    pub name: String,
    /// Peer id.
    pub id: String,
    /// Safety number with the pinned keys (eight groups of five digits).
    pub safety_number: String,
    /// Whether the owner recorded that the numbers were compared.
    pub verified: bool,
    /// Pinned key epoch.
    pub epoch: u32,
    /// Pinned key id.
    pub key_id: String,
    /// For an accepted invite: whether the inviter confirmed.
    pub confirmed: bool,
    /// Addresses, in preference order.
    pub addresses: Vec<String>,
    /// `none`, or `pending`: a new key without the old key's signature waits for `accept-key`.
    pub key_change: String,
    /// Safety number with the pending key, when `key_change` is `pending`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_safety_number: Option<String>,
    /// Envelopes held for this friend.
    pub held: u64,
    /// The features the friend's build announced in its hello (`receipt-ids`: it reads
    /// batched receipts); absent before its first hello, as from builds that send none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub features: Option<Vec<String>>,
}

/// Result of [`FriendRequest::Open`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct OpenReply {
    /// `message`, `duplicate`, `receipt`, `key_update`, `held`, `friend_added`, `hello`,
    /// `rejected`.
    pub outcome: String,
    /// The friend it is from, when verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friend: Option<String>,
    /// The inbox id of a stored message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inbox_id: Option<u64>,
    /// For a receipt: its status; for a rejection: the refusal code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The signed receipt to send back, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply: Option<SealedEnvelope>,
}

/// The latest receipt for a sent message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReceiptView {
    /// Friend name.
    pub friend: String,
    /// `stored`, `delivered` or `rejected`.
    pub status: String,
    /// Refusal code, for `rejected`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339 time received.
    pub at: String,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    /// Stable machine-readable code, e.g. `not_found`, `bad_request`, `auth_failed`.
    pub code: String,
    /// What happened, for a human.
    pub message: String,
    /// What to do about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// One response line.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Response {
    /// Success flag.
    pub ok: bool,
    /// The result, when `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    /// The error, when not `ok`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ApiError>,
}

impl Response {
    /// A success carrying `result`.
    pub fn ok(result: serde_json::Value) -> Self {
        Self {
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    /// A failure.
    pub fn err(error: ApiError) -> Self {
        Self {
            ok: false,
            result: None,
            error: Some(error),
        }
    }
}

/// `policy` commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicyRequest {
    /// Rules, defaults and exchange counts. Result: [`PolicyList`].
    List,
    /// Set the level of a sender key (`relay:alice`, `relay:*`); applies to messages already
    /// held from it. Result: [`PolicySetReply`].
    Set {
        /// `KIND:ID` or `KIND:*`.
        sender: String,
        /// `block`, `review`, `notify`, `deliver` or `converse`.
        level: String,
    },
    /// Remove a sender's rule (its default applies again). Result: [`Count`].
    Unset {
        /// `KIND:ID` or `KIND:*`.
        sender: String,
    },
    /// Reset a sender's count of consecutive agent-written exchanges. Result: [`Count`].
    Reset {
        /// `KIND:ID`.
        sender: String,
    },
}

/// One owner rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PolicyRule {
    /// `KIND:ID` or `KIND:*`.
    pub sender: String,
    /// The level.
    pub level: String,
}

/// `policy list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicyList {
    /// Owner rules.
    pub rules: Vec<PolicyRule>,
    /// Defaults: `verified`, `unverified`, `webhook` → level.
    pub defaults: BTreeMap<String, String>,
    /// Limits: `max_hops`, `rate_per_minute`, `max_exchanges`, `max_content_chars`.
    pub limits: BTreeMap<String, u64>,
    /// Consecutive agent-written exchanges per sender (nonzero only).
    pub exchanges: BTreeMap<String, u32>,
}

/// `policy set`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PolicySetReply {
    /// The normalised sender key.
    pub sender: String,
    /// The level set.
    pub level: String,
    /// Held messages released by the change (routed at the new level).
    pub released: u64,
}

/// `review` commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum ReviewRequest {
    /// Messages held for review, oldest first. Result: `Vec<`[`HeldMessage`]`>`.
    List,
    /// Approve one held message, or every one of a sender. Result: [`Count`].
    Approve {
        /// Inbox id.
        #[serde(default)]
        id: Option<u64>,
        /// `KIND:ID`.
        #[serde(default)]
        sender: Option<String>,
        /// Also set the sender's level to `deliver` for the future.
        #[serde(default)]
        always: bool,
    },
    /// Reject a held message: it stays in the inbox and never reaches the agent. Result: [`Count`].
    Reject {
        /// Inbox id.
        id: u64,
    },
}

/// One held message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HeldMessage {
    /// Inbox id.
    pub id: u64,
    /// `KIND:ID`.
    pub sender: String,
    /// Inbox source.
    pub source: String,
    /// Whether the sender was verified.
    pub verified: bool,
    /// When it was held (RFC 3339).
    pub held_at: String,
    /// The sender's name, as it gave it.
    pub from: String,
    /// The content (for the owner to judge).
    pub message: String,
}

/// `audit` commands.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuditRequest {
    /// The newest records, oldest first. Result: `Vec<`[`AuditRecord`]`>`.
    List {
        /// At most this many (default 100).
        #[serde(default)]
        limit: Option<usize>,
    },
    /// Check the hash chain. Result: [`AuditVerdict`].
    Verify,
}

/// One audit record (never the content: its sha256).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1, 2, 3, …
    pub seq: u64,
    /// RFC 3339.
    pub time: String,
    /// Inbox source.
    pub source: String,
    /// `KIND:ID`.
    pub sender: String,
    /// Whether the sender was verified.
    pub verified: bool,
    /// Level applied.
    pub level: String,
    /// What was done.
    pub action: String,
    /// Target session, if any.
    pub session: Option<String>,
    /// Inbox id.
    pub message: u64,
    /// sha256 of the content.
    pub content_sha256: String,
    /// Previous record's hash.
    pub prev: String,
    /// This record's hash.
    pub hash: String,
}

/// `audit --verify`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AuditVerdict {
    /// Whether the chain is intact.
    pub ok: bool,
    /// Records checked.
    pub records: u64,
    /// The first problem.
    pub problem: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_documented_shape() -> Result<(), serde_json::Error> {
        let r: Request = serde_json::from_str(r#"{"method":"status"}"#)?;
        assert!(matches!(r, Request::Status));
        let r: Request =
            serde_json::from_str(r#"{"method":"inbox.list","params":{"unread":true}}"#)?;
        assert!(matches!(
            r,
            Request::InboxList(InboxQuery { unread: true, .. })
        ));
        let r: Request =
            serde_json::from_str(r#"{"method":"relay","params":{"cmd":"users","relay":null}}"#)?;
        assert!(matches!(r, Request::Relay(RelayRequest::Users { .. })));
        assert!(serde_json::from_str::<Request>(r#"{"method":"nope"}"#).is_err());
        let s = serde_json::to_string(&Request::Status)?;
        assert_eq!(s, r#"{"method":"status"}"#);
        Ok(())
    }

    #[test]
    fn contact_debug_hides_token() {
        let c = NewContact {
            name: "a".into(),
            url: "ws://x".into(),
            token: Secret::new("tok-123"),
            desc: String::new(),
            added_at: None,
        };
        assert!(!format!("{c:?}").contains("tok-123"));
    }
}
