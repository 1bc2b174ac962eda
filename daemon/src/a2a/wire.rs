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
//!
//! The task shapes (task, message, part, artifact, push config) are defined in
//! [`crate::store::a2a::task`], since the store keeps them as its records; they are re-exported
//! here. The Agent Card is defined here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use crate::store::a2a::task::{
    parts_text, Artifact, Message, Part, PushAuth, PushConfig, Task, TaskState, TaskStatus,
};

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
