//! The A2A task as JSON, which is also how the store keeps it: [`Task`], its [`Message`]s,
//! [`Part`]s and [`Artifact`]s, its [`TaskState`], and the caller's [`PushConfig`]. The
//! shapes and the 0.3 conversion are described in `crate::a2a::wire`, which re-exports them.

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
            message_id: crate::util::hex::new_id(),
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
