//! The relay protocol's messages, defined once: the client ([`super`]) writes the requests
//! and reads the answers and server frames; the server role ([`crate::relay_server`]) reads
//! the requests and writes the answers and frames, with these same types.
//!
//! | call | request | answer |
//! |---|---|---|
//! | register | `POST /register` [`RegisterRequest`] `{id, name, secret}` | 201 [`RegisterAnswer`] `{ok:true, id, name}` |
//! | send | `POST /send` [`SendRequest`] `{from, to, message, secret, key?}` | 200 [`SendAnswer`] `{ok:true, id, to, online, timestamp, duplicate?}` |
//! | poll | `GET /poll?id=ID&secret=SECRET[&ack=1]` | 200 [`PollAnswer`] `{count, messages:[Message], more}` |
//! | ack | `POST /ack` [`AckRequest`] `{id, secret, ids}` | 200 [`AckAnswer`] `{ok:true, removed}` |
//! | users | `GET /users` | 200 [`UsersAnswer`] `{count, users:[{id, name, online}]}` |
//! | listen | WebSocket `GET /ws?id=ID&secret=SECRET[&ack=1]` | [`Connected`], then one [`Push`] per message; the client answers with [`AckFrame`]s |
//! | any error | | [`ErrorBody`] `{error}` with the status |
//!
//! A [`Message`] `{id, from, fromName, message, timestamp}` is a poll entry and the `data` of
//! a push. Ids are decimal strings on the wire ([`MessageId`]). The statuses, the secret's
//! places and the extensions (`ack=1`, `key`) are specified in [`crate::relay_server`].
//!
//! One type, two readers, read differently on purpose:
//! - **Requests** are read by our server, strictly: every field may be missing (the handler
//!   says which one it needs), but a field of another JSON type makes the body a 400.
//! - **Answers and server frames** are read by our client, which also talks to the seed's
//!   relay (no `id`, no `ack`, `fromName` optional, answers with fewer fields). Every field it
//!   reads is lenient ([`crate::util::lenient`]): missing or mistyped, it reads as its default.
//!
//! Fields are declared in the order they have always had on the wire (answers and frames
//! alphabetically, as the server's JSON maps wrote them); request fields keep the order in
//! which the server also accepts a body as a JSON array (serde reads a struct from a list by
//! position).

use crate::util::lenient;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

/// A message id: written as the decimal string of the relay's sequence number; read back as
/// that string or as a number.
pub type MessageId = lenient::Decimal;

/// `POST /register`.
#[derive(Serialize, Deserialize, Default)]
pub struct RegisterRequest {
    /// The id to register.
    pub id: Option<String>,
    /// The display name (default: the id).
    pub name: Option<String>,
    /// The secret (a bearer header takes precedence).
    pub secret: Option<String>,
}

/// The answer to a register (201; a seed relay may send no body at all).
#[derive(Serialize, Deserialize, Default)]
pub struct RegisterAnswer {
    /// The registered id, as the relay spells it (lowercase).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub id: String,
    /// The display name the relay keeps.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub name: String,
    /// Always true.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub ok: bool,
}

/// `POST /send`.
#[derive(Serialize, Deserialize, Default)]
pub struct SendRequest {
    /// The sender's id.
    pub from: Option<String>,
    /// The recipient's id.
    pub to: Option<String>,
    /// The message text.
    pub message: Option<String>,
    /// The sender's secret (a bearer header takes precedence).
    pub secret: Option<String>,
    /// Extension: the sender's idempotency key for this message (1-128 visible ASCII).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// The answer to a send. A seed relay may send `{ok:true}` alone.
#[derive(Serialize, Deserialize, Default)]
pub struct SendAnswer {
    /// Extension: true when the `key` was seen before and nothing new was queued.
    #[serde(
        default,
        skip_serializing_if = "std::ops::Not::not",
        deserialize_with = "lenient::or_default"
    )]
    pub duplicate: bool,
    /// The message id.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub id: String,
    /// True once the message is on the relay's disk.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub ok: bool,
    /// Whether the recipient holds an open `/ws`.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub online: bool,
    /// When it was queued (RFC 3339 UTC, milliseconds).
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub timestamp: String,
    /// The recipient's id.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub to: String,
}

/// A message, in a poll answer and as the `data` of a push. Borrowed by the server, which
/// writes every field; a seed relay leaves out `id` and may leave out `fromName`.
#[derive(Serialize, Deserialize)]
pub struct Message<'a> {
    /// Extension: the message id, unique for the life of the relay.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub id: Option<MessageId>,
    /// The sender's id.
    #[serde(default, deserialize_with = "lenient::option")]
    pub from: Option<Cow<'a, str>>,
    /// The sender's display name.
    #[serde(rename = "fromName", default, deserialize_with = "lenient::option")]
    pub from_name: Option<Cow<'a, str>>,
    /// The text. Required: an entry without it is not a message.
    pub message: Cow<'a, str>,
    /// When it was queued (RFC 3339 UTC, milliseconds; shown as-is).
    #[serde(default, deserialize_with = "lenient::option")]
    pub timestamp: Option<Cow<'a, str>>,
}

/// The answer to a poll.
#[derive(Serialize, Deserialize, Default)]
pub struct PollAnswer<'a> {
    /// How many messages follow.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub count: usize,
    /// The oldest queued messages (entries that are not messages are skipped by a reader).
    #[serde(default, deserialize_with = "lenient::items")]
    pub messages: Vec<Message<'a>>,
    /// Whether more are queued: poll again.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub more: bool,
}

/// `POST /ack` (extension): releases polled messages.
#[derive(Serialize, Deserialize, Default)]
pub struct AckRequest {
    /// The recipient's id.
    pub id: Option<String>,
    /// Its secret (a bearer header takes precedence).
    pub secret: Option<String>,
    /// The ids of the messages now stored by the client.
    #[serde(default)]
    pub ids: Vec<MessageId>,
}

/// The answer to an ack.
#[derive(Serialize, Deserialize, Default)]
pub struct AckAnswer {
    /// Always true.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub ok: bool,
    /// How many of the ids were still queued.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub removed: usize,
}

/// One registered id in [`UsersAnswer`].
#[derive(Serialize, Deserialize, Default)]
pub struct User {
    /// The id.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub id: String,
    /// Its display name.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub name: String,
    /// Whether it holds an open `/ws`.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub online: bool,
}

/// The answer to `GET /users` (the client hands it to the CLI as the relay sent it).
#[derive(Serialize, Deserialize, Default)]
pub struct UsersAnswer {
    /// How many users follow.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub count: usize,
    /// Every registered id.
    #[serde(default, deserialize_with = "lenient::items")]
    pub users: Vec<User>,
}

/// Every error answer: `{"error": "..."}` (the seed client prints `body.error`).
#[derive(Serialize, Deserialize, Default)]
pub struct ErrorBody<'a> {
    /// What went wrong, for a person.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub error: Cow<'a, str>,
}

/// The `type` of a WebSocket frame.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FrameKind {
    /// The server's first frame, [`Connected`].
    Connected,
    /// A pushed message, [`Push`].
    Message,
    /// The client's acknowledgement, [`AckFrame`].
    Ack,
}

/// The server's first frame on `/ws`.
#[derive(Serialize, Deserialize)]
pub struct Connected {
    /// Extension: whether pushed messages wait for the client's acks (`ack=1` was asked
    /// for); absent (false) on a seed relay, which deletes what it pushes.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub ack: bool,
    /// The connected id.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub id: String,
    /// Its display name.
    #[serde(default, deserialize_with = "lenient::or_default")]
    pub name: String,
    /// [`FrameKind::Connected`].
    #[serde(rename = "type")]
    pub kind: FrameKind,
}

/// A pushed message: `{"type":"message","id":"N","data":{...}}`.
#[derive(Serialize, Deserialize)]
pub struct Push<'a> {
    /// [`FrameKind::Message`].
    #[serde(rename = "type")]
    pub kind: FrameKind,
    /// Extension: the message id (the same as `data.id`).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::option"
    )]
    pub id: Option<MessageId>,
    /// The message.
    pub data: Message<'a>,
}

/// The client's acknowledgement frame (extension, ack mode): `{"type":"ack","ids":[...]}`
/// or `{"type":"ack","id":"N"}`.
#[derive(Serialize, Deserialize)]
pub struct AckFrame {
    /// One id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<MessageId>,
    /// Several ids.
    #[serde(default)]
    pub ids: Vec<MessageId>,
    /// [`FrameKind::Ack`].
    #[serde(rename = "type")]
    pub kind: FrameKind,
}

impl AckFrame {
    /// The frame acknowledging `ids`.
    pub fn of(ids: &[String]) -> AckFrame {
        AckFrame {
            id: None,
            ids: ids.iter().cloned().map(MessageId::Text).collect(),
            kind: FrameKind::Ack,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn written<T: Serialize>(v: &T) -> String {
        serde_json::to_string(v).expect("serializable")
    }

    #[test]
    fn frames_and_answers_keep_their_wire_form() {
        let m = Message {
            id: Some(MessageId::of(7)),
            from: Some("alice".into()),
            from_name: Some("Alice".into()),
            message: "hi".into(),
            timestamp: Some("2026-01-02T03:04:05.678Z".into()),
        };
        assert_eq!(
            written(&Push {
                kind: FrameKind::Message,
                id: Some(MessageId::of(7)),
                data: m
            }),
            r#"{"type":"message","id":"7","data":{"id":"7","from":"alice","fromName":"Alice","message":"hi","timestamp":"2026-01-02T03:04:05.678Z"}}"#
        );
        let hello = Connected {
            ack: true,
            id: "bob".into(),
            name: "Bob".into(),
            kind: FrameKind::Connected,
        };
        assert_eq!(
            written(&hello),
            r#"{"ack":true,"id":"bob","name":"Bob","type":"connected"}"#
        );
        assert_eq!(
            written(&AckFrame::of(&["1".into(), "2".into()])),
            r#"{"ids":["1","2"],"type":"ack"}"#
        );
        let sent = SendAnswer {
            ok: true,
            id: "3".into(),
            to: "bob".into(),
            timestamp: "t".into(),
            ..Default::default()
        };
        assert_eq!(
            written(&sent),
            r#"{"id":"3","ok":true,"online":false,"timestamp":"t","to":"bob"}"#
        );
    }

    #[test]
    fn seed_frames_and_answers_read_leniently() {
        let hello: Connected =
            serde_json::from_str(r#"{"type":"connected","id":"bob","name":"Bob"}"#)
                .expect("seed hello");
        assert!(!hello.ack && hello.kind == FrameKind::Connected);
        let push: Push = serde_json::from_str(
            r#"{"type":"message","data":{"from":"a","message":"hi","timestamp":5}}"#,
        )
        .expect("seed push");
        assert!(push.id.is_none() && push.data.from_name.is_none());
        assert!(push.data.timestamp.is_none() && push.data.message == "hi");
        let page: PollAnswer = serde_json::from_value(
            json!({"count": 2, "messages": [{"message": "x"}, {"from": "a"}, 7]}),
        )
        .expect("page");
        assert_eq!((page.messages.len(), page.more), (1, false));
        let sent: SendAnswer = serde_json::from_value(json!({"ok": true, "id": 5})).expect("ok");
        assert!(sent.ok);
        let frame: AckFrame =
            serde_json::from_str(r#"{"type":"ack","id":3,"ids":["4"]}"#).expect("ack");
        let seqs: Vec<_> = frame
            .id
            .iter()
            .chain(&frame.ids)
            .filter_map(MessageId::number)
            .collect();
        assert_eq!(seqs, [3, 4]);
        assert!(serde_json::from_value::<AckFrame>(json!({"type": "pong"})).is_err());
        let e: ErrorBody = serde_json::from_value(json!({"error": 4})).expect("error");
        assert_eq!(e.error, "");
    }
}
