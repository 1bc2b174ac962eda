//! The JSON-RPC 2.0 request parser of the inbound endpoint: bytes in, typed calls or the exact
//! JSON-RPC error out. Pure (no I/O, no state), so it is fuzzed directly
//! (`fuzz/fuzz_targets/a2a_request.rs`).
//!
//! ```text
//! body     := request | [request, ...]           (1..=MAX_BATCH entries)
//! request  := {"jsonrpc":"2.0", "id"?: string|number|null, "method": string, "params"?: object}
//! methods  := SendMessage | message/send          → Call::Send
//!             GetTask     | tasks/get             → Call::Get
//!             CancelTask  | tasks/cancel          → Call::Cancel
//!             other A2A 1.0/0.3 methods           → -32004 unsupported operation
//!             anything else                       → -32601 method not found
//! ```
//!
//! Errors: -32700 parse error (not JSON), -32600 invalid request (not an object, wrong
//! `jsonrpc`, empty or oversized batch), -32602 invalid params (no message, no usable text,
//! text over [`MAX_TEXT`], bad `contextId`, bad push URL), -32005 file parts (clawlink keeps
//! text). A request without `id` is a notification: it is carried out and gets no answer.

use super::wire::{parts_text, Message, PushConfig};
use serde::Deserialize;
use serde_json::Value;

/// Largest request body (the same as OpenClaw's).
pub const MAX_BODY: usize = 1024 * 1024;
/// Most entries in one batch (the same as OpenClaw's).
pub const MAX_BATCH: usize = 30;
/// Largest message text, bytes; longer text is refused, not cut.
pub const MAX_TEXT: usize = 64 * 1024;
/// Longest `contextId`, `taskId` or `messageId`.
pub const MAX_ID: usize = 128;

/// JSON-RPC error codes used here.
pub mod code {
    /// Not JSON.
    pub const PARSE: i64 = -32700;
    /// Not a JSON-RPC request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Bad params.
    pub const INVALID_PARAMS: i64 = -32602;
    /// Server error (store, rate limit, auth).
    pub const SERVER: i64 = -32000;
    /// A2A: no such task (or not this peer's).
    pub const TASK_NOT_FOUND: i64 = -32001;
    /// A2A: the task cannot be canceled.
    pub const NOT_CANCELABLE: i64 = -32002;
    /// A2A: the method exists in A2A but is not offered here.
    pub const UNSUPPORTED: i64 = -32004;
    /// A2A: a part type is not taken.
    pub const CONTENT_TYPE: i64 = -32005;
}

/// A JSON-RPC error.
#[derive(Debug, Clone, PartialEq)]
pub struct RpcError {
    /// The code.
    pub code: i64,
    /// A sentence.
    pub message: String,
}

impl RpcError {
    /// An error with `code`.
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
        }
    }
}

/// Which names the caller used: the answer comes in the same dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// A2A 1.0 (`SendMessage`, `TASK_STATE_*`).
    V1,
    /// A2A 0.3 (`message/send`, `kind`, lowercase states).
    V03,
}

/// A validated `SendMessage`.
#[derive(Debug, Clone)]
pub struct Send {
    /// The message as sent.
    pub message: Message,
    /// Its text (text parts, and data parts as JSON), at most [`MAX_TEXT`] bytes.
    pub text: String,
    /// Answer at once rather than wait for a final state.
    pub return_immediately: bool,
    /// Where to deliver the final state.
    pub push: Option<PushConfig>,
    /// History entries to return.
    pub history_length: Option<u32>,
}

/// One call.
#[derive(Debug, Clone)]
pub enum Call {
    /// `SendMessage`.
    Send(Box<Send>),
    /// `GetTask`.
    Get {
        /// Task id.
        id: String,
        /// History entries to return.
        history_length: Option<u32>,
    },
    /// `CancelTask`.
    Cancel {
        /// Task id.
        id: String,
    },
}

/// One entry of a body: its id (`None` for a notification) and the call or what is wrong.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The request id, echoed in the answer (`Some(Value::Null)` when unreadable).
    pub id: Option<Value>,
    /// The dialect of the method name.
    pub dialect: Dialect,
    /// The call, or its error.
    pub call: Result<Call, RpcError>,
}

/// A parsed body.
#[derive(Debug, Clone)]
pub enum Body {
    /// One request.
    Single(Entry),
    /// A batch (answered as an array).
    Batch(Vec<Entry>),
}

/// Parses a request body. An `Err` is answered as one error with `id: null`.
pub fn parse(body: &[u8]) -> Result<Body, RpcError> {
    if body.len() > MAX_BODY {
        return Err(RpcError::new(
            code::INVALID_REQUEST,
            format!("request body exceeds {MAX_BODY} bytes"),
        ));
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| RpcError::new(code::PARSE, format!("parse error: {e}")))?;
    match v {
        Value::Array(items) => {
            if items.is_empty() {
                return Err(RpcError::new(code::INVALID_REQUEST, "empty batch"));
            }
            if items.len() > MAX_BATCH {
                return Err(RpcError::new(
                    code::INVALID_REQUEST,
                    format!(
                        "batch of {} requests exceeds the limit of {MAX_BATCH}",
                        items.len()
                    ),
                ));
            }
            Ok(Body::Batch(items.into_iter().map(entry).collect()))
        }
        v => Ok(Body::Single(entry(v))),
    }
}

fn entry(v: Value) -> Entry {
    let Value::Object(mut m) = v else {
        return Entry {
            id: Some(Value::Null),
            dialect: Dialect::V1,
            call: Err(RpcError::new(
                code::INVALID_REQUEST,
                "a request must be a JSON object",
            )),
        };
    };
    let id = match m.remove("id") {
        None => None,
        Some(id @ (Value::String(_) | Value::Number(_) | Value::Null)) => Some(id),
        Some(_) => {
            return invalid(
                Some(Value::Null),
                "\"id\" must be a string, a number or null",
            );
        }
    };
    if m.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return invalid(id.or(Some(Value::Null)), "\"jsonrpc\" must be \"2.0\"");
    }
    let Some(Value::String(method)) = m.remove("method") else {
        return invalid(id.or(Some(Value::Null)), "\"method\" must be a string");
    };
    let params = m.remove("params").unwrap_or(Value::Null);
    let (dialect, call) = match method.as_str() {
        "SendMessage" => (Dialect::V1, send(params, Dialect::V1)),
        "message/send" => (Dialect::V03, send(params, Dialect::V03)),
        "GetTask" => (Dialect::V1, get(params)),
        "tasks/get" => (Dialect::V03, get(params)),
        "CancelTask" => (Dialect::V1, cancel(params)),
        "tasks/cancel" => (Dialect::V03, cancel(params)),
        m if UNSUPPORTED.contains(&m) => (
            Dialect::V1,
            Err(RpcError::new(
                code::UNSUPPORTED,
                format!("{m} is not supported here; use SendMessage (with a push notification config for the final state) and GetTask"),
            )),
        ),
        m => (
            Dialect::V1,
            Err(RpcError::new(
                code::METHOD_NOT_FOUND,
                format!("method not found: {}", crate::text::truncate_bytes(m, 64)),
            )),
        ),
    };
    Entry { id, dialect, call }
}

/// A2A methods (1.0 and 0.3 names) this endpoint knows of but does not offer.
const UNSUPPORTED: &[&str] = &[
    "SendStreamingMessage",
    "SubscribeToTask",
    "ListTasks",
    "CreateTaskPushNotificationConfig",
    "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs",
    "DeleteTaskPushNotificationConfig",
    "GetExtendedAgentCard",
    "message/stream",
    "tasks/resubscribe",
    "tasks/pushNotificationConfig/set",
    "tasks/pushNotificationConfig/get",
    "tasks/pushNotificationConfig/list",
    "tasks/pushNotificationConfig/delete",
    "agent/getAuthenticatedExtendedCard",
];

fn invalid(id: Option<Value>, msg: &str) -> Entry {
    Entry {
        id,
        dialect: Dialect::V1,
        call: Err(RpcError::new(code::INVALID_REQUEST, msg)),
    }
}

fn bad_params(msg: impl Into<String>) -> RpcError {
    RpcError::new(code::INVALID_PARAMS, msg)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SendParams {
    message: Message,
    #[serde(default)]
    configuration: Option<Configuration>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Configuration {
    #[serde(default)]
    return_immediately: Option<bool>,
    /// 0.3: `blocking: false` means return at once.
    #[serde(default)]
    blocking: Option<bool>,
    #[serde(default)]
    history_length: Option<u32>,
    #[serde(default, alias = "pushNotificationConfig")]
    task_push_notification_config: Option<PushConfig>,
}

/// Whether `id` is a usable context, task or message id.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

fn send(params: Value, dialect: Dialect) -> Result<Call, RpcError> {
    let p: SendParams = serde_json::from_value(params)
        .map_err(|e| bad_params(format!("invalid SendMessage params: {e}")))?;
    let m = p.message;
    if m.parts.iter().any(|p| p.is_file()) {
        return Err(RpcError::new(
            code::CONTENT_TYPE,
            "file parts are not accepted; send text or data parts",
        ));
    }
    let text = parts_text(&m.parts);
    if text.trim().is_empty() {
        return Err(bad_params("the message has no text or data part"));
    }
    if text.len() > MAX_TEXT {
        return Err(bad_params(format!(
            "message text is {} bytes, over the limit of {MAX_TEXT}",
            text.len()
        )));
    }
    for (what, id) in [("contextId", &m.context_id), ("taskId", &m.task_id)] {
        if id.as_deref().is_some_and(|id| !valid_id(id)) {
            return Err(bad_params(format!(
                "{what} must be 1-{MAX_ID} letters, digits, '.', '_', ':' or '-'"
            )));
        }
    }
    if !m.message_id.is_empty() && m.message_id.len() > MAX_ID * 2 {
        return Err(bad_params("messageId is too long"));
    }
    let c = p.configuration.unwrap_or_default();
    let push = c.task_push_notification_config;
    if let Some(push) = &push {
        let url = push.url.as_str();
        let ok = (url.starts_with("http://") || url.starts_with("https://"))
            && url.len() <= 2048
            && reqwest::Url::parse(url).is_ok();
        if !ok {
            return Err(bad_params(
                "the push notification url must be an http:// or https:// URL",
            ));
        }
    }
    let return_immediately = match dialect {
        Dialect::V1 => c.return_immediately.unwrap_or(false),
        Dialect::V03 => c.return_immediately.unwrap_or(c.blocking == Some(false)),
    };
    Ok(Call::Send(Box::new(Send {
        message: m,
        text,
        return_immediately,
        push,
        history_length: c.history_length,
    })))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TaskParams {
    id: String,
    #[serde(default)]
    history_length: Option<u32>,
}

fn task_params(params: Value) -> Result<TaskParams, RpcError> {
    let p: TaskParams = serde_json::from_value(params)
        .map_err(|e| bad_params(format!("invalid params (need {{\"id\": TASK}}): {e}")))?;
    if p.id.is_empty() || p.id.len() > MAX_ID {
        return Err(bad_params("task id must be 1-128 characters"));
    }
    Ok(p)
}

fn get(params: Value) -> Result<Call, RpcError> {
    let p = task_params(params)?;
    Ok(Call::Get {
        id: p.id,
        history_length: p.history_length,
    })
}

fn cancel(params: Value) -> Result<Call, RpcError> {
    Ok(Call::Cancel {
        id: task_params(params)?.id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(body: &str) -> Entry {
        match parse(body.as_bytes()) {
            Ok(Body::Single(e)) => e,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_kind_of_bad_input_gets_its_code() {
        assert_eq!(parse(b"{nope").expect_err("an error").code, code::PARSE);
        assert_eq!(
            parse(b"[]").expect_err("an error").code,
            code::INVALID_REQUEST
        );
        let flood = format!("[{}]", vec!["1"; MAX_BATCH + 1].join(","));
        assert_eq!(
            parse(flood.as_bytes()).expect_err("an error").code,
            code::INVALID_REQUEST
        );
        assert_eq!(
            one("7").call.expect_err("an error").code,
            code::INVALID_REQUEST
        );
        let e = one(r#"{"jsonrpc":"1.0","id":1,"method":"GetTask"}"#);
        assert_eq!(e.call.expect_err("an error").code, code::INVALID_REQUEST);
        let e = one(r#"{"jsonrpc":"2.0","id":"x","method":"Nope"}"#);
        assert_eq!(e.id, Some(Value::String("x".into())));
        assert_eq!(e.call.expect_err("an error").code, code::METHOD_NOT_FOUND);
        let e = one(r#"{"jsonrpc":"2.0","id":1,"method":"SendStreamingMessage"}"#);
        assert_eq!(e.call.expect_err("an error").code, code::UNSUPPORTED);
        let e = one(r#"{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{}}"#);
        assert_eq!(e.call.expect_err("an error").code, code::INVALID_PARAMS);
        let big = "x".repeat(MAX_TEXT + 1);
        let e = one(&format!(
            r#"{{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{{"message":{{"messageId":"m","role":"ROLE_USER","parts":[{{"text":"{big}"}}]}}}}}}"#
        ));
        assert_eq!(e.call.expect_err("an error").code, code::INVALID_PARAMS);
        let e = one(
            r#"{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m","role":"ROLE_USER","parts":[{"url":"http://x/f"}]}}}"#,
        );
        assert_eq!(e.call.expect_err("an error").code, code::CONTENT_TYPE);
    }

    #[test]
    fn both_dialects_parse_with_their_options() {
        let e = one(
            r#"{"jsonrpc":"2.0","id":1,"method":"SendMessage","params":{"message":{"messageId":"m1","contextId":"c-1","role":"ROLE_USER","parts":[{"text":"hi"},{"data":{"a":1}}]},"configuration":{"returnImmediately":true,"taskPushNotificationConfig":{"url":"http://127.0.0.1:9/hook","token":"t"}}}}"#,
        );
        let Ok(Call::Send(s)) = e.call else { panic!() };
        assert_eq!(s.text, "hi\n{\"a\":1}");
        assert!(s.return_immediately);
        assert!(s.push.is_some());
        let e = one(
            r#"{"jsonrpc":"2.0","id":2,"method":"message/send","params":{"message":{"kind":"message","messageId":"m2","role":"user","parts":[{"kind":"text","text":"yo"}]},"configuration":{"blocking":false}}}"#,
        );
        assert_eq!(e.dialect, Dialect::V03);
        let Ok(Call::Send(s)) = e.call else { panic!() };
        assert!(s.return_immediately);
        let e = one(r#"{"jsonrpc":"2.0","method":"tasks/get","params":{"id":"t"}}"#);
        assert!(e.id.is_none());
        assert!(matches!(e.call, Ok(Call::Get { .. })));
    }
}
