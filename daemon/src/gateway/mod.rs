//! The OpenClaw Gateway client: how clawlinkd delivers a message into a peer agent's session.
//!
//! # The protocol, as a peer must speak it (gateway protocol 3 and 4)
//!
//! JSON text frames over one WebSocket on the gateway's root path (`ws://HOST:18789`, or
//! `wss://` behind TLS). Three frame kinds ([`frame`]):
//! `{"type":"req","id","method","params"}`, `{"type":"res","id","ok","payload"|"error"}` and
//! `{"type":"event","event","payload","seq"}`. Request schemas are closed: an unknown field is
//! refused, so every params type we send is a struct of exactly the documented fields.
//!
//! Handshake ([`handshake`]): the server opens with a `connect.challenge` event carrying a
//! nonce; the first request must be `connect` with `minProtocol:3, maxProtocol:4`,
//! `client:{id:"gateway-client", mode:"backend", version, platform}`, `role:"operator"`, the
//! scopes wanted, `auth:{token}` (or `auth:{deviceToken}`) and a signed device identity
//! ([`device`]); the answer is `hello-ok` with the protocol chosen, the server version, the
//! scopes granted (`auth.scopes`), `policy.tickIntervalMs` and the main session key. The token
//! never goes into the URL.
//!
//! Trust: from loopback a token alone is admitted, from anywhere else the gateway also wants a
//! device identity that its owner approved once (`NOT_PAIRED` until `openclaw devices approve
//! <request id>`); after approval `hello-ok` carries a device token we keep ([`tokens`]) and can
//! use instead of the shared token.
//!
//! Liveness: a `tick` event every `tickIntervalMs` (30 s); WebSocket pings are answered by
//! tungstenite as long as we keep reading. A restart is announced by a `shutdown` event and
//! close code 1012; a starting gateway answers `UNAVAILABLE` with `retryAfterMs` and closes 1013.
//!
//! Delivery methods ([`Delivery`]), their params, and the scope each needs:
//!
//! | method | scope | params |
//! |---|---|---|
//! | `system-event` | admin | `{text, sessionKey?, idempotencyKey}`: queued for the session's next turn |
//! | `wake` | write | `{mode:"now", text, sessionKey?}`: starts a turn at once |
//! | `chat.send` | write | `{sessionKey, message, idempotencyKey}` |
//! | `agent` | write | `{message, idempotencyKey, sessionKey?}`: acked, then a second answer for the same id |
//!
//! # This module
//!
//! [`Pool`] is the whole API for the rest of the daemon: [`Pool::request`],
//! [`Pool::send_message`], [`Pool::ping`], [`Pool::rows`]; a cheap clonable `Send + Sync`
//! handle. Every failure is a [`GatewayError`] that says whether a retry can help
//! ([`GatewayError::is_retryable`]) and what the user should do ([`GatewayError::hint`]).
//!
//! Inside: [`conn`] (one actor task per gateway owning its WebSocket: correlation, liveness,
//! reconnection), [`handshake`] (challenge, signed `connect`, `hello-ok`), [`device`] (the
//! Ed25519 identity), [`tokens`] (device tokens gateways issued), [`frame`] (wire types),
//! [`ping`], [`error`], and the socket plumbing and one-shot sessions.
//!
//! Its place in the daemon: [`transport`] is the gateway's [`crate::transport::Transport`]
//! (addresses `ws://`, `wss://`; started by [`start`]), and the policy's local-agent worker
//! (`crate::policy::local_agent`) delivers every inbound message into the local OpenClaw agent
//! through the same pool.

pub mod conn;
pub mod device;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod ping;
pub mod pool;
pub(crate) mod session;
pub(crate) mod socket;
pub mod tokens;
pub mod transport;

#[cfg(test)]
mod tests;

pub use device::DeviceIdentity;
pub use error::GatewayError;
pub use handshake::Hello;
pub use ping::{ping_reply, PingInfo};
pub use pool::{Pool, PoolOptions};
pub use transport::{start, GatewayTransport};

use std::fmt;
use std::str::FromStr;

/// The default agent's main session, used when the gateway does not name one.
pub const DEFAULT_SESSION: &str = "agent:main:main";

/// How a message enters the peer's agent session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeliveryMethod {
    /// `system-event`: queued for the next agent turn (needs `operator.admin`).
    #[default]
    SystemEvent,
    /// `wake` with `mode:"now"`: starts an agent turn at once.
    Wake,
    /// `chat.send`: a chat message in the session.
    ChatSend,
    /// `agent`: runs the agent with the message.
    Agent,
}

impl DeliveryMethod {
    /// The gateway method name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SystemEvent => "system-event",
            Self::Wake => "wake",
            Self::ChatSend => "chat.send",
            Self::Agent => "agent",
        }
    }
}

impl FromStr for DeliveryMethod {
    type Err = GatewayError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "system-event" => Self::SystemEvent,
            "wake" => Self::Wake,
            "chat.send" => Self::ChatSend,
            "agent" => Self::Agent,
            other => {
                return Err(GatewayError::local(format!(
                    "unknown delivery method {other:?}; use system-event, wake, chat.send or agent"
                )))
            }
        })
    }
}

/// One message to deliver. Its `Debug` never shows the text.
#[derive(Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Which gateway method carries it.
    pub method: DeliveryMethod,
    /// Target session key; the gateway's main session when `None`.
    pub session: Option<String>,
    /// The message.
    pub text: String,
    /// Deduplication key (the outbox id), so a retried delivery is applied once.
    pub idempotency_key: String,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("method", &self.method.as_str())
            .field("session", &self.session)
            .field("text_len", &self.text.len())
            .field("idempotency_key", &self.idempotency_key)
            .finish()
    }
}

impl Delivery {
    /// The request frame, with `main_session` for methods that require a session key.
    pub fn frame(&self, id: &str, main_session: &str) -> Result<String, serde_json::Error> {
        use frame::{request, AgentParams, ChatSendParams, SystemEventParams, WakeParams};
        let session = self.session.as_deref();
        let (text, key) = (self.text.as_str(), self.idempotency_key.as_str());
        let m = self.method.as_str();
        match self.method {
            DeliveryMethod::SystemEvent => request(
                id,
                m,
                &SystemEventParams {
                    text,
                    session_key: session,
                    idempotency_key: key,
                },
            ),
            DeliveryMethod::Wake => request(
                id,
                m,
                &WakeParams {
                    mode: "now",
                    text,
                    session_key: session,
                },
            ),
            DeliveryMethod::ChatSend => request(
                id,
                m,
                &ChatSendParams {
                    session_key: session.unwrap_or(main_session),
                    message: text,
                    idempotency_key: key,
                },
            ),
            DeliveryMethod::Agent => request(
                id,
                m,
                &AgentParams {
                    message: text,
                    idempotency_key: key,
                    // Without a key the gateway opens a new `agent:main:explicit:<id>` session;
                    // the main session is what `--method agent` promises.
                    session_key: Some(session.unwrap_or(main_session)),
                },
            ),
        }
    }
}
