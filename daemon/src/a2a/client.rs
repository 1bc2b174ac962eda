//! The outbound JSON-RPC client: `SendMessage` and `GetTask` against a peer's endpoint, and
//! their 0.3 names (`message/send`, `tasks/get`) for peers that answer -32601 to the 1.0 ones.
//!
//! ```text
//! POST ENDPOINT   Authorization: Bearer TOKEN (when set)   A2A-Version: 1.0
//! {"jsonrpc":"2.0","id":"...","method":"SendMessage","params":{"message":{messageId,contextId,
//!   role:"ROLE_USER",parts:[{text}]},"configuration":{"returnImmediately":true}}}
//! 0.3: "message/send", parts [{kind:"text",text}], role "user", configuration {blocking:false}
//! ```
//!
//! Answers are read up to 1 MiB with a deadline. Errors are sorted by what the caller should do:
//! [`CallError::Transient`] (connection refused, timeout, 429, 5xx, rate limited) is retried;
//! [`CallError::Auth`] (401/403) and [`CallError::Refused`] (a JSON-RPC error) are final.

use super::wire::{Message, Part, Task};
use serde_json::{json, Value};
use std::time::Duration;

/// Largest answer read.
const MAX_ANSWER: usize = 1024 * 1024;
/// Deadline of one call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong with a call.
#[derive(Debug, Clone)]
pub enum CallError {
    /// Try again later.
    Transient(String),
    /// The peer refused our token.
    Auth(String),
    /// The peer does not know the method (-32601).
    NoMethod,
    /// The peer refused the call (a JSON-RPC error or an unreadable answer).
    Refused(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Transient(s) | CallError::Auth(s) | CallError::Refused(s) => f.write_str(s),
            CallError::NoMethod => f.write_str("the peer does not know the method"),
        }
    }
}

/// A connection error in words (no URL with secrets, no chain of causes to wade through).
pub fn why(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        let mut s = e.to_string();
        if let Some(src) = std::error::Error::source(e) {
            s = format!("{s}: {src}");
        }
        s
    }
}

/// Reads an answer body, at most [`MAX_ANSWER`] bytes.
pub async fn read_capped(resp: reqwest::Response) -> Result<Vec<u8>, String> {
    crate::util::http_client::read_capped(resp, MAX_ANSWER).await
}

/// One JSON-RPC call; the `result` on success.
pub async fn call(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    method: &str,
    params: Value,
) -> Result<Value, CallError> {
    let body = json!({"jsonrpc": "2.0", "id": super::new_id(), "method": method, "params": params});
    let mut req = http
        .post(endpoint)
        .timeout(CALL_TIMEOUT)
        .header("a2a-version", "1.0")
        .json(&body);
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    let resp = req
        .send()
        .await
        .map_err(|e| CallError::Transient(format!("{endpoint}: {}", why(&e))))?;
    let status = resp.status().as_u16();
    let bytes = read_capped(resp)
        .await
        .map_err(|e| CallError::Transient(format!("{endpoint}: {e}")))?;
    let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let peer_says = v["error"]["message"].as_str().unwrap_or("").to_string();
    match status {
        401 | 403 => {
            return Err(CallError::Auth(format!(
                "{endpoint} refused the token (HTTP {status}){}",
                if peer_says.is_empty() {
                    String::new()
                } else {
                    format!(": {peer_says}")
                }
            )))
        }
        408 | 429 | 500..=599 => {
            return Err(CallError::Transient(format!(
                "{endpoint} answered HTTP {status}"
            )))
        }
        200..=299 => {}
        _ => {
            return Err(CallError::Refused(format!(
                "{endpoint} answered HTTP {status} {peer_says}"
            )))
        }
    }
    if let Some(code) = v["error"]["code"].as_i64() {
        return Err(match code {
            -32601 => CallError::NoMethod,
            -32000 if peer_says.contains("rate") => {
                CallError::Transient(format!("{endpoint}: {peer_says}"))
            }
            _ => CallError::Refused(format!("{endpoint} refused it ({code}): {peer_says}")),
        });
    }
    match v.get("result") {
        Some(r) => Ok(r.clone()),
        None => Err(CallError::Refused(format!(
            "{endpoint} gave no JSON-RPC result"
        ))),
    }
}

/// What a `SendMessage` produced.
#[derive(Debug, Clone)]
pub enum Sent {
    /// A task to follow.
    Task(Task),
    /// A direct answer.
    Message(Message),
}

/// Sends `text` as message `message_id` in `context_id`; `legacy` uses the 0.3 names.
pub async fn send_message(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    legacy: bool,
    message_id: &str,
    context_id: &str,
    text: &str,
) -> Result<Sent, CallError> {
    let result = if legacy {
        let params = json!({
            "message": {"kind": "message", "messageId": message_id, "contextId": context_id,
                        "role": "user", "parts": [{"kind": "text", "text": text}]},
            "configuration": {"blocking": false}
        });
        call(http, endpoint, token, "message/send", params).await?
    } else {
        let msg = Message {
            message_id: message_id.into(),
            context_id: Some(context_id.into()),
            task_id: None,
            role: "ROLE_USER".into(),
            parts: vec![Part::text(text)],
            metadata: None,
        };
        let params = json!({"message": msg, "configuration": {"returnImmediately": true}});
        call(http, endpoint, token, "SendMessage", params).await?
    };
    sent(result)
}

fn sent(mut v: Value) -> Result<Sent, CallError> {
    let bad = |e: serde_json::Error| CallError::Refused(format!("unreadable answer: {e}"));
    if let Some(t) = v.get_mut("task") {
        return serde_json::from_value(t.take())
            .map(Sent::Task)
            .map_err(bad);
    }
    if let Some(m) = v.get_mut("message") {
        return serde_json::from_value(m.take())
            .map(Sent::Message)
            .map_err(bad);
    }
    if v.get("status").is_some() {
        return serde_json::from_value(v).map(Sent::Task).map_err(bad);
    }
    serde_json::from_value(v).map(Sent::Message).map_err(bad)
}

/// Reads task `id`; `legacy` uses `tasks/get`.
pub async fn get_task(
    http: &reqwest::Client,
    endpoint: &str,
    token: &str,
    legacy: bool,
    id: &str,
) -> Result<Task, CallError> {
    let method = if legacy { "tasks/get" } else { "GetTask" };
    let v = call(http, endpoint, token, method, json!({"id": id})).await?;
    let v = match v.get("task") {
        Some(t) => t.clone(),
        None => v,
    };
    serde_json::from_value(v).map_err(|e| CallError::Refused(format!("unreadable task: {e}")))
}
