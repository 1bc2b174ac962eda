//! A2A wire types: the JSON shapes of the A2A 1.0 JSON-RPC binding that clawlink reads and
//! writes, and the conversion to the 0.3 shapes the legacy method names (`message/send`,
//! `tasks/get`) answer with.
//!
//! ```text
//! Message  {messageId, contextId?, taskId?, role: "ROLE_USER"|"ROLE_AGENT", parts: [Part], metadata?}
//! Part     {text} | {data} | {url|raw, mediaType?, filename?}        (0.3 adds "kind")
//! Task     {id, contextId, status: {state, message?, timestamp}, artifacts: [Artifact], history: [Message]}
//! Artifact {artifactId, name?, parts: [Part]}
//! state    TASK_STATE_SUBMITTED | _WORKING | _COMPLETED | _FAILED | _CANCELED | _REJECTED
//!          | _INPUT_REQUIRED | _AUTH_REQUIRED            (0.3: "submitted", "input-required", ...)
//! ```
//!
//! Unknown fields are ignored on input (peers add metadata freely); everything clawlink writes
//! uses the 1.0 names, and [`to_v03`] rewrites a value for a 0.3 client.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TaskState {
    /// Stored, not yet handed on.
    #[serde(rename = "TASK_STATE_SUBMITTED", alias = "submitted")]
    Submitted,
    /// Being worked on.
    #[serde(rename = "TASK_STATE_WORKING", alias = "working")]
    Working,
    /// Done, with the answer in the artifacts.
    #[serde(rename = "TASK_STATE_COMPLETED", alias = "completed")]
    Completed,
    /// The agent could not do it.
    #[serde(rename = "TASK_STATE_FAILED", alias = "failed")]
    Failed,
    /// Stopped on request.
    #[serde(
        rename = "TASK_STATE_CANCELED",
        alias = "canceled",
        alias = "cancelled"
    )]
    Canceled,
    /// Refused (by policy), with a reason.
    #[serde(rename = "TASK_STATE_REJECTED", alias = "rejected")]
    Rejected,
    /// Waiting for more input from the caller.
    #[serde(rename = "TASK_STATE_INPUT_REQUIRED", alias = "input-required")]
    InputRequired,
    /// Waiting for the caller to authenticate.
    #[serde(rename = "TASK_STATE_AUTH_REQUIRED", alias = "auth-required")]
    AuthRequired,
    /// A state this build does not know (a newer peer).
    #[serde(rename = "TASK_STATE_UNSPECIFIED", alias = "unknown", other)]
    Unknown,
}

impl TaskState {
    /// Whether the task can change no more.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Completed | TaskState::Failed | TaskState::Canceled | TaskState::Rejected
        )
    }

    /// Whether the task waits for the caller (the spec's "interrupted" states).
    pub fn is_interrupted(self) -> bool {
        matches!(self, TaskState::InputRequired | TaskState::AuthRequired)
    }

    /// The short lowercase name (the 0.3 wire name; also what the CLI prints).
    pub fn short(self) -> &'static str {
        match self {
            TaskState::Submitted => "submitted",
            TaskState::Working => "working",
            TaskState::Completed => "completed",
            TaskState::Failed => "failed",
            TaskState::Canceled => "canceled",
            TaskState::Rejected => "rejected",
            TaskState::InputRequired => "input-required",
            TaskState::AuthRequired => "auth-required",
            TaskState::Unknown => "unknown",
        }
    }
}

/// One piece of a message or artifact.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Text content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Structured content.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
    /// A file by reference (1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A file inline, base64 (1.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// A file (0.3: `{kind:"file", file:{...}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Value>,
}

impl Part {
    /// A text part.
    pub fn text(t: impl Into<String>) -> Part {
        Part {
            text: Some(t.into()),
            ..Default::default()
        }
    }

    /// Whether the part carries a file (which clawlink does not take).
    pub fn is_file(&self) -> bool {
        self.url.is_some() || self.raw.is_some() || self.file.is_some()
    }
}

/// A message between caller and agent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// The sender's id for it (the idempotency key).
    #[serde(default)]
    pub message_id: String,
    /// The conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// The task it continues.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    /// `ROLE_USER` or `ROLE_AGENT` (0.3: `user`, `agent`).
    #[serde(default)]
    pub role: String,
    /// The content.
    #[serde(default)]
    pub parts: Vec<Part>,
    /// Free-form extras.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Map<String, Value>>,
}

impl Message {
    /// An agent message with one text part.
    pub fn agent(context_id: &str, text: impl Into<String>) -> Message {
        Message {
            message_id: super::new_id(),
            context_id: Some(context_id.to_string()),
            task_id: None,
            role: "ROLE_AGENT".into(),
            parts: vec![Part::text(text)],
            metadata: None,
        }
    }

    /// The text of every text and data part, joined by newlines (data as compact JSON).
    pub fn text(&self) -> String {
        parts_text(&self.parts)
    }
}

/// The text of `parts`: text parts as they are, data parts as compact JSON, one per line.
pub fn parts_text(parts: &[Part]) -> String {
    let mut out: Vec<String> = Vec::new();
    for p in parts {
        if let Some(t) = &p.text {
            out.push(t.clone());
        } else if let Some(d) = &p.data {
            out.push(d.to_string());
        }
    }
    out.join("\n")
}

/// A task's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStatus {
    /// The state.
    pub state: TaskState,
    /// Why (for failed, rejected, ...), as an agent message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Message>,
    /// RFC 3339 time of the last change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// An output of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    /// Its id.
    #[serde(default)]
    pub artifact_id: String,
    /// Optional name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The content.
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// A task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// Server-assigned id.
    pub id: String,
    /// The conversation.
    #[serde(default)]
    pub context_id: String,
    /// Where it stands.
    pub status: TaskStatus,
    /// Outputs.
    #[serde(default)]
    pub artifacts: Vec<Artifact>,
    /// The messages of the task.
    #[serde(default)]
    pub history: Vec<Message>,
}

impl Task {
    /// The text of every artifact, joined by newlines.
    pub fn answer(&self) -> String {
        let texts: Vec<String> = self
            .artifacts
            .iter()
            .map(|a| parts_text(&a.parts))
            .filter(|t| !t.is_empty())
            .collect();
        texts.join("\n")
    }

    /// The text of the status message (a reason), if any.
    pub fn reason(&self) -> Option<String> {
        self.status
            .message
            .as_ref()
            .map(Message::text)
            .filter(|t| !t.is_empty())
    }

    /// This task with at most the last `n` history entries (`None`: all of them).
    pub fn with_history(mut self, n: Option<u32>) -> Task {
        if let Some(n) = n {
            let keep = (n as usize).min(self.history.len());
            self.history.drain(..self.history.len() - keep);
        }
        self
    }
}

/// Where to deliver a task's final state (the caller's webhook).
#[derive(Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PushConfig {
    /// The webhook URL (http or https).
    pub url: String,
    /// Echoed in `X-A2A-Notification-Token`, so the caller can tell our calls from others.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Credentials for the webhook (1.0: `{scheme, credentials}`; 0.3: `{schemes:[..], credentials}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authentication: Option<PushAuth>,
}

impl std::fmt::Debug for PushConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PushConfig")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Webhook credentials.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct PushAuth {
    /// `Bearer`, `Basic`, ... (1.0).
    #[serde(default)]
    pub scheme: String,
    /// The 0.3 form: a list of schemes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schemes: Vec<String>,
    /// The credentials for that scheme.
    #[serde(default)]
    pub credentials: String,
}

impl PushAuth {
    /// The `Authorization` header value, if complete.
    pub fn header(&self) -> Option<String> {
        let scheme = if self.scheme.is_empty() {
            self.schemes.first()?.clone()
        } else {
            self.scheme.clone()
        };
        (!self.credentials.is_empty()).then(|| format!("{scheme} {}", self.credentials))
    }
}

/// The Agent Card clawlinkd serves and reads.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentCard {
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// What it is.
    #[serde(default)]
    pub description: String,
    /// Where to reach it (1.0).
    #[serde(default)]
    pub supported_interfaces: Vec<AgentInterface>,
    /// The JSON-RPC endpoint (0.3 cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The protocol version (0.3 cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
    /// The binding at `url` (0.3 cards).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_transport: Option<String>,
    /// The agent's version.
    #[serde(default)]
    pub version: String,
    /// Optional capabilities.
    #[serde(default)]
    pub capabilities: Capabilities,
    /// Accepted input media types.
    #[serde(default)]
    pub default_input_modes: Vec<String>,
    /// Produced output media types.
    #[serde(default)]
    pub default_output_modes: Vec<String>,
    /// What it can do.
    #[serde(default)]
    pub skills: Vec<Skill>,
}

/// One endpoint of an agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInterface {
    /// Its URL.
    pub url: String,
    /// `JSONRPC`, `GRPC`, `HTTP+JSON`.
    #[serde(default, alias = "transport")]
    pub protocol_binding: String,
    /// `1.0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<String>,
}

/// Optional capabilities of an agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Capabilities {
    /// SSE streaming.
    #[serde(default)]
    pub streaming: bool,
    /// Push notifications.
    #[serde(default)]
    pub push_notifications: bool,
}

/// One skill on a card.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Skill {
    /// Id.
    #[serde(default)]
    pub id: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Tags.
    #[serde(default)]
    pub tags: Vec<String>,
}

impl AgentCard {
    /// The JSON-RPC endpoint it advertises (1.0 interfaces first, then the 0.3 `url`).
    pub fn jsonrpc_url(&self) -> Option<&str> {
        self.supported_interfaces
            .iter()
            .find(|i| i.protocol_binding.eq_ignore_ascii_case("JSONRPC"))
            .map(|i| i.url.as_str())
            .or_else(|| {
                let binding = self.preferred_transport.as_deref().unwrap_or("JSONRPC");
                self.url
                    .as_deref()
                    .filter(|_| binding.eq_ignore_ascii_case("JSONRPC"))
            })
    }
}

/// Rewrites a 1.0 task, message or part value into its 0.3 form, in place: states and roles in
/// lowercase, a `kind` on every task, message and part.
pub fn to_v03(v: &mut Value) {
    let Value::Object(map) = v else { return };
    if map.contains_key("status") && map.contains_key("id") {
        map.insert("kind".into(), "task".into());
    }
    if map.contains_key("messageId") && map.contains_key("parts") {
        map.insert("kind".into(), "message".into());
        if let Some(Value::String(role)) = map.get_mut("role") {
            *role = role.trim_start_matches("ROLE_").to_ascii_lowercase();
        }
    }
    if let Some(Value::Object(status)) = map.get_mut("status") {
        if let Some(Value::String(state)) = status.get_mut("state") {
            if let Ok(s) = serde_json::from_value::<TaskState>(Value::String(state.clone())) {
                *state = s.short().to_string();
            }
        }
        if let Some(m) = status.get_mut("message") {
            to_v03(m);
        }
    }
    for key in ["artifacts", "history", "parts"] {
        if let Some(Value::Array(items)) = map.get_mut(key) {
            for item in items {
                if key == "parts" {
                    part_kind(item);
                } else {
                    to_v03(item);
                }
            }
        }
    }
}

fn part_kind(p: &mut Value) {
    let Value::Object(m) = p else { return };
    let kind = if m.contains_key("text") {
        "text"
    } else if m.contains_key("data") {
        "data"
    } else {
        "file"
    };
    m.insert("kind".into(), kind.into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn states_read_both_dialects_and_unknown_is_kept_apart() {
        let s: TaskState = serde_json::from_value(json!("TASK_STATE_COMPLETED")).expect("parses");
        assert_eq!(s, TaskState::Completed);
        let s: TaskState = serde_json::from_value(json!("input-required")).expect("parses");
        assert_eq!(s, TaskState::InputRequired);
        let s: TaskState =
            serde_json::from_value(json!("TASK_STATE_FROM_THE_FUTURE")).expect("parses");
        assert_eq!(s, TaskState::Unknown);
    }

    #[test]
    fn v03_rewrite_adds_kinds_and_lowercases() {
        let task = Task {
            id: "t".into(),
            context_id: "c".into(),
            status: TaskStatus {
                state: TaskState::Completed,
                message: None,
                timestamp: None,
            },
            artifacts: vec![Artifact {
                artifact_id: "a".into(),
                name: None,
                parts: vec![Part::text("hi")],
            }],
            history: vec![Message::agent("c", "x")],
        };
        let mut v = serde_json::to_value(&task).expect("parses");
        to_v03(&mut v);
        assert_eq!(v["kind"], "task");
        assert_eq!(v["status"]["state"], "completed");
        assert_eq!(v["artifacts"][0]["parts"][0]["kind"], "text");
        assert_eq!(v["history"][0]["role"], "agent");
        assert_eq!(v["history"][0]["kind"], "message");
    }
}
