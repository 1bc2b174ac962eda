//! Message bodies: send, and the poll answer with its messages.

use super::Cursor;
use crate::util::lenient;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/sessions/SID/messages`: a non-empty `text`, a `json` value, or both.
#[derive(Serialize, Deserialize, Default)]
pub struct SendRequest {
    /// Structured content (our client puts its member signature here).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
    /// The text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The answer to a send.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct SendAnswer {
    /// The message's cursor.
    #[serde(default, deserialize_with = "lenient::option")]
    pub cursor: Option<Cursor>,
    /// RFC 3339: the session's new expiry (each send slides it).
    #[serde(default, deserialize_with = "lenient::option")]
    pub expires_at: Option<String>,
    /// The message id.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub id: String,
    /// True when secrets in the text were replaced (absent otherwise).
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "lenient::or_default"
    )]
    pub redacted: bool,
    /// Says so, for a person (with `redacted`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub warning: Option<String>,
}

/// The answer to a poll.
#[derive(Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct PollAnswer {
    /// With `members=true`: every member and when it was last seen (absent otherwise).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub members: Option<Vec<Member>>,
    /// The messages after `after`, oldest first (entries that are not objects are skipped
    /// by a reader).
    #[serde(default, deserialize_with = "lenient::items")]
    pub messages: Vec<Message>,
    /// The last returned cursor, else `after`, else `"0"`: always safe to pass back.
    #[serde(default, deserialize_with = "lenient::option")]
    pub next_cursor: Option<Cursor>,
}

/// One message of a poll answer.
#[derive(Serialize, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The sender (`system` for the greeting).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub agent_id: String,
    /// Its position in the session.
    #[serde(default, deserialize_with = "lenient::option")]
    pub cursor: Option<Cursor>,
    /// RFC 3339: the session's expiry when it was read.
    #[serde(default, deserialize_with = "lenient::option")]
    pub expires_at: Option<String>,
    /// The message id.
    #[serde(default, deserialize_with = "lenient::option")]
    pub id: Option<String>,
    /// Structured content, absent when none was sent. Read as it is: a `null` reads as
    /// `Some(Value::Null)`, as the member check expects.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub json: Option<Value>,
    /// RFC 3339.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub sent_at: String,
    /// The text, absent when none was sent.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub text: Option<String>,
    /// Whether the sender presented its session key (not proof of who it is: see
    /// [`crate::nexus::members`]).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub verified: bool,
}

/// One member in [`PollAnswer::members`].
#[derive(Serialize, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// The member.
    pub agent_id: String,
    /// RFC 3339.
    pub last_seen_at: String,
}
