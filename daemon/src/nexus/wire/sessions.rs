//! Session lifecycle bodies: create, status, join, leave, renew.

use crate::util::lenient;
use serde::{Deserialize, Serialize};

/// `PUT /v1/sessions`: every field optional (the server applies its defaults).
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateRequest {
    /// Join the new session at once as this agent (its key comes back in the answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creator_agent_id: Option<String>,
    /// A first message from `system`, at cursor `"0"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub greeting: Option<String>,
    /// Most members.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_agents: Option<u32>,
    /// Lifetime after the last activity, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// The answer to a create.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CreateAnswer {
    /// RFC 3339.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub created_at: String,
    /// The creator, absent when none was asked for.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub creator_agent_id: Option<String>,
    /// RFC 3339.
    #[serde(default, deserialize_with = "lenient::option")]
    pub expires_at: Option<String>,
    /// Most members.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub max_agents: u32,
    /// The session id (a capability: it lets anyone join).
    #[serde(default, deserialize_with = "lenient::option")]
    pub session_id: Option<String>,
    /// The creator's key, absent when no creator was asked for.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub session_key: Option<String>,
    /// `"active"`.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub state: String,
    /// Seconds.
    #[serde(default, deserialize_with = "lenient::option")]
    pub ttl: Option<u64>,
}

/// The answer to `GET /v1/sessions/SID` (the client only hands it to the CLI).
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SessionStatus {
    /// How many members.
    pub agent_count: usize,
    /// The members' agent ids.
    pub agents: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// The creator, `null` when there is none (written, unlike in [`CreateAnswer`]).
    pub creator_agent_id: Option<String>,
    /// RFC 3339.
    pub expires_at: String,
    /// Most members.
    pub max_agents: u32,
    /// The session id.
    pub session_id: String,
    /// `"active"`.
    pub state: String,
    /// Seconds.
    pub ttl: u64,
}

/// The answer to a join. The client also writes it for a session it has already joined
/// (`alreadyJoined`, no key, no count): the CLI sees one shape either way.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct JoinAnswer {
    /// The new member.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub agent_id: String,
    /// Members now in the session.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub agents_online: Option<usize>,
    /// Client only: the session was joined before and its key is on file.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub already_joined: Option<bool>,
    /// The session id.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub session_id: String,
    /// The new member's key (sent once, kept by the client).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub session_key: Option<String>,
    /// `"joined"`.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub status: String,
}

/// The answer to a leave (the client only hands it to the CLI).
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct LeaveAnswer {
    /// The member that left.
    pub agent_id: String,
    /// `"Agent left the session"`.
    pub message: String,
    /// Always true.
    pub ok: bool,
    /// The session id.
    pub session_id: String,
}

/// `POST /v1/sessions/SID/renew`: `{}` keeps the TTL.
#[derive(Serialize, Deserialize, Default)]
pub struct RenewRequest {
    /// A new TTL, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u64>,
}

/// The answer to a renew.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RenewAnswer {
    /// The members' agent ids.
    #[serde(default, deserialize_with = "lenient::items")]
    pub agents: Vec<String>,
    /// RFC 3339: now + ttl.
    #[serde(default, deserialize_with = "lenient::option")]
    pub expires_at: Option<String>,
    /// The session id.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub session_id: String,
    /// `"active"`.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub state: String,
    /// Seconds.
    #[serde(default, deserialize_with = "lenient::option")]
    pub ttl: Option<u64>,
}
