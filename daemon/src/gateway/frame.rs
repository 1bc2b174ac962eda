//! The gateway's three frame kinds, and the typed params of every request we send.
//!
//! ```text
//! -> {"type":"req","id":"7","method":"system-event","params":{"text":"hi","idempotencyKey":"k"}}
//! <- {"type":"res","id":"7","ok":true,"payload":{"ok":true}}
//! <- {"type":"res","id":"7","ok":false,"error":{"code":"FORBIDDEN","message":"...","details":{...},
//!                                             "retryable":false,"retryAfterMs":500}}
//! <- {"type":"event","event":"tick","payload":{...},"seq":12}
//! ```
//!
//! The gateway's schemas are closed: a request with an unknown field is refused. So every
//! params type here is a struct with exactly the documented fields, optional ones skipped when
//! absent, and nothing is built from free-form maps. Inbound frames are read leniently (the
//! gateway adds fields between versions) but size-capped before parsing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest inbound frame we accept (the gateway's own `policy.maxPayload` is 25 MiB; our
/// answers are small, so a far smaller cap keeps a broken peer from eating memory).
pub const MAX_INBOUND_FRAME: usize = 8 << 20;

/// A frame from the gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Inbound {
    /// The answer to a request.
    Res(Res),
    /// A server push.
    Event(Event),
}

/// `{"type":"res",...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Res {
    /// The request id it answers.
    pub id: String,
    /// Success flag.
    pub ok: bool,
    /// The result, when `ok`.
    #[serde(default)]
    pub payload: Option<Value>,
    /// The failure, when not `ok`.
    #[serde(default)]
    pub error: Option<ErrorShape>,
}

/// `error` of a failed response.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorShape {
    /// `INVALID_REQUEST`, `NOT_PAIRED`, `FORBIDDEN`, `UNAVAILABLE`, ...
    #[serde(default)]
    pub code: String,
    /// Human text.
    #[serde(default)]
    pub message: String,
    /// Structured details; `details.code` refines `code`.
    #[serde(default)]
    pub details: Option<Value>,
    /// Whether the gateway says a retry can succeed.
    #[serde(default)]
    pub retryable: Option<bool>,
    /// How long to wait before retrying.
    #[serde(default)]
    pub retry_after_ms: Option<u64>,
}

impl ErrorShape {
    /// A string field of `details`.
    pub fn detail_str(&self, key: &str) -> Option<String> {
        self.details
            .as_ref()?
            .get(key)?
            .as_str()
            .map(str::to_string)
    }
}

/// `{"type":"event",...}`.
#[derive(Debug, Clone, Deserialize)]
pub struct Event {
    /// `connect.challenge`, `tick`, `shutdown`, `presence`, `health`, ...
    pub event: String,
    /// Event data.
    #[serde(default)]
    pub payload: Option<Value>,
    /// Sequence number, when the event is sequenced.
    #[serde(default)]
    pub seq: Option<u64>,
}

/// Why an inbound frame was not usable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FrameError {
    /// Larger than [`MAX_INBOUND_FRAME`].
    #[error("frame of {0} bytes exceeds the {MAX_INBOUND_FRAME} byte limit")]
    TooLarge(usize),
    /// Not a JSON frame of a known type.
    #[error("malformed frame: {0}")]
    Malformed(String),
}

/// Parses one inbound text frame.
pub fn parse(text: &str) -> Result<Inbound, FrameError> {
    if text.len() > MAX_INBOUND_FRAME {
        return Err(FrameError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| FrameError::Malformed(e.to_string()))
}

/// Serializes a request frame.
pub fn request(
    id: &str,
    method: &str,
    params: &impl Serialize,
) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct Req<'a, P> {
        #[serde(rename = "type")]
        kind: &'static str,
        id: &'a str,
        method: &'a str,
        params: &'a P,
    }
    serde_json::to_string(&Req {
        kind: "req",
        id,
        method,
        params,
    })
}

/// Params of `connect` (closed schema; see the module docs of [`super`]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectParams<'a> {
    /// Lowest protocol we speak.
    pub min_protocol: u32,
    /// Highest protocol we speak.
    pub max_protocol: u32,
    /// Who we are.
    pub client: ClientInfo<'a>,
    /// `operator`.
    pub role: &'a str,
    /// Scopes asked for.
    pub scopes: &'a [String],
    /// Credentials; absent when we have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth: Option<ConnectAuth<'a>>,
    /// Signed device identity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<DeviceProof>,
}

/// `connect.params.client`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo<'a> {
    /// A member of the gateway's closed client id enum: `gateway-client`.
    pub id: &'a str,
    /// Shown to the gateway's owner in `openclaw devices list`.
    pub display_name: &'a str,
    /// Our version.
    pub version: &'a str,
    /// `linux`, `darwin`, ... (signed, lower-cased).
    pub platform: &'a str,
    /// `backend`.
    pub mode: &'a str,
}

/// `connect.params.auth`: exactly one of the two.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectAuth<'a> {
    /// The gateway's shared token.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<&'a str>,
    /// The token the gateway issued to this device.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_token: Option<&'a str>,
}

/// `connect.params.device`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeviceProof {
    /// Hex sha256 of the raw public key.
    pub id: String,
    /// base64url (no padding) of the raw 32-byte Ed25519 public key.
    pub public_key: String,
    /// base64url Ed25519 signature of the v3 payload.
    pub signature: String,
    /// Milliseconds since the epoch, signed.
    pub signed_at: u64,
    /// The challenge nonce, signed.
    pub nonce: String,
}

/// Params of `system-event`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SystemEventParams<'a> {
    /// The text queued for the session's next agent turn.
    pub text: &'a str,
    /// Target session; the gateway's main session when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_key: Option<&'a str>,
    /// Deduplication key.
    pub idempotency_key: &'a str,
}

/// Params of `wake`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WakeParams<'a> {
    /// Always `now`.
    pub mode: &'a str,
    /// The text.
    pub text: &'a str,
    /// Target session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_key: Option<&'a str>,
}

/// Params of `chat.send`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatSendParams<'a> {
    /// Target session (required by this method).
    pub session_key: &'a str,
    /// The text.
    pub message: &'a str,
    /// Deduplication key.
    pub idempotency_key: &'a str,
}

/// Params of `agent`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentParams<'a> {
    /// The text.
    pub message: &'a str,
    /// Deduplication key.
    pub idempotency_key: &'a str,
    /// Target session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_key: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds_and_refuses_the_rest() {
        let r = parse(r#"{"type":"res","id":"1","ok":true,"payload":{"ok":true},"extra":1}"#);
        assert!(matches!(r, Ok(Inbound::Res(Res { ok: true, .. }))));
        let e = parse(r#"{"type":"event","event":"tick","payload":{"ts":1},"seq":3}"#);
        assert!(matches!(e, Ok(Inbound::Event(Event { seq: Some(3), .. }))));
        assert!(matches!(parse("not json"), Err(FrameError::Malformed(_))));
        assert!(matches!(
            parse(r#"{"type":"req","id":"1","method":"x"}"#),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            parse(r#"{"type":"res","ok":true}"#),
            Err(FrameError::Malformed(_))
        ));
        let big = format!(
            r#"{{"type":"event","event":"x","payload":"{}"}}"#,
            "a".repeat(MAX_INBOUND_FRAME)
        );
        assert!(matches!(parse(&big), Err(FrameError::TooLarge(_))));
    }

    #[test]
    fn requests_carry_only_documented_fields() -> Result<(), serde_json::Error> {
        let p = SystemEventParams {
            text: "hi",
            session_key: None,
            idempotency_key: "k",
        };
        assert_eq!(
            request("7", "system-event", &p)?,
            r#"{"type":"req","id":"7","method":"system-event","params":{"text":"hi","idempotencyKey":"k"}}"#
        );
        let w = WakeParams {
            mode: "now",
            text: "t",
            session_key: Some("agent:main:main"),
        };
        assert_eq!(
            serde_json::to_string(&w)?,
            r#"{"mode":"now","text":"t","sessionKey":"agent:main:main"}"#
        );
        let a = ConnectAuth {
            token: None,
            device_token: Some("d"),
        };
        assert_eq!(serde_json::to_string(&a)?, r#"{"deviceToken":"d"}"#);
        Ok(())
    }
}
