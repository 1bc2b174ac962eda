//! The Nexus protocol's messages, defined once: the client ([`super`]) writes the requests
//! and reads the answers; the server role ([`crate::nexus_server`]) reads the requests and
//! writes the answers, with these same types.
//!
//! | call | request | answer |
//! |---|---|---|
//! | create | `PUT /v1/sessions` [`CreateRequest`] | 201 [`CreateAnswer`] |
//! | status | `GET /v1/sessions/SID` | 200 [`SessionStatus`] |
//! | join | `POST /v1/sessions/SID/join` | 200 [`JoinAnswer`] |
//! | leave | `DELETE /v1/sessions/SID/agents/AID` | 200 [`LeaveAnswer`] |
//! | renew | `POST /v1/sessions/SID/renew` [`RenewRequest`] | 200 [`RenewAnswer`] |
//! | send | `POST /v1/sessions/SID/messages` [`SendRequest`] | 201 [`SendAnswer`] |
//! | poll | `GET /v1/sessions/SID/messages?after&wait&members&limit` | 200 [`PollAnswer`] of [`Message`]s |
//! | pair | `PUT /v1/pair` [`PairRequest`] | 201 [`PairAnswer`] |
//! | claim | `POST /v1/pair/CODE/claim` | 200 [`ClaimAnswer`] |
//! | pair status | `GET /v1/pair/CODE/status` | 200 [`PairStatusAnswer`] |
//! | health | `GET /health` | 200 [`Health`] |
//! | any error | | [`ErrorBody`] `{error, message, details}` with the status |
//!
//! The identity travels in headers (`X-Agent-Id`, `X-Session-Key`), never in these bodies,
//! except for the `sessionKey` a create, join or claim hands out. The endpoints' rules are
//! specified in the server's modules ([`crate::nexus_server::sessions`],
//! [`crate::nexus_server::messages`], [`crate::nexus_server::pairing`]).
//!
//! One type, two readers, read differently on purpose:
//! - **Requests** are read by our server, strictly: every field may be missing (the handler
//!   says which one it needs or applies its default), but a field of another JSON type makes
//!   the body a 400 `invalid_body`.
//! - **Answers** are read by our client, which also talks to the hosted server. The client
//!   hands every answer to the CLI exactly as the server sent it (`nexus.sh` prints the
//!   server's JSON) and reads only a few fields for itself (keys, cursors, expiry, the
//!   messages it stores); those fields are lenient ([`crate::util::lenient`]): missing or
//!   mistyped, they read as their default instead of spoiling the answer.
//!
//! Fields are declared in the order they have always had on the wire: alphabetical, as the
//! server's JSON maps wrote them. Optional fields marked "absent when" are left out, not
//! written as `null`.

mod messages;
mod pairing;
mod sessions;

pub use messages::{Member, Message, PollAnswer, SendAnswer, SendRequest};
pub use pairing::{ClaimAnswer, PairAnswer, PairRequest, PairState, PairStatusAnswer};
pub use sessions::{
    CreateAnswer, CreateRequest, JoinAnswer, LeaveAnswer, RenewAnswer, RenewRequest, SessionStatus,
};

use crate::util::lenient;
use serde::{Deserialize, Serialize};

/// A message cursor: the decimal string of its position in the session (`"0"` is the
/// greeting); read as a string or a bare number.
pub type Cursor = lenient::Decimal;

/// Every error answer: `{"error":"code","message":"...","details":[{field, message}]}`.
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct ErrorBody {
    /// Per-field problems (empty when there are none).
    #[serde(default, deserialize_with = "lenient::items")]
    pub details: Vec<Detail>,
    /// The protocol's error code, e.g. `session_not_found`.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub error: String,
    /// A sentence for a person.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub message: String,
}

/// One entry of [`ErrorBody::details`].
#[derive(Serialize, Deserialize, Default, Debug)]
pub struct Detail {
    /// The field (or header) at fault.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub field: String,
    /// What is wrong with it.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub message: String,
}

/// The answer to `GET /health`.
#[derive(Serialize, Deserialize, Default)]
pub struct Health {
    /// What the server can do; the client reads the long-poll extension here.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub capabilities: Capabilities,
    /// `"ok"`.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub status: String,
    /// Whole seconds since the server started.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub uptime: u64,
    /// The server's version.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub version: String,
}

/// [`Health::capabilities`].
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// Extension: messages survive a restart.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub durable: bool,
    /// Extension: `wait=SECONDS` holds a poll until a message comes.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub long_poll: bool,
    /// Extension: the longest `wait` honoured, seconds (absent: the client assumes 25).
    #[serde(default, deserialize_with = "lenient::option")]
    pub long_poll_max_wait: Option<u64>,
    /// `["text", "json"]`.
    #[serde(default, deserialize_with = "lenient::items")]
    pub message_format: Vec<String>,
}

#[cfg(test)]
mod tests;
