//! Opening an authenticated gateway connection: `connect.challenge` → `connect` → `hello-ok`.
//!
//! ```text
//! <- {"type":"event","event":"connect.challenge","payload":{"nonce":"<uuid>","ts":<ms>}}
//! -> {"type":"req","id":"connect","method":"connect","params":{"minProtocol":3,"maxProtocol":4,
//!      "client":{"id":"gateway-client","displayName":"clawlinkd","version":"0.1.0","platform":"linux","mode":"backend"},
//!      "role":"operator","scopes":["operator.admin"],"auth":{"token":"..."},
//!      "device":{"id","publicKey","signature","signedAt","nonce"}}}
//! <- {"type":"res","id":"connect","ok":true,"payload":{"type":"hello-ok","protocol":4,"server":{"version",...},
//!      "auth":{"role","scopes":[...],"deviceToken?"},"policy":{"tickIntervalMs":30000,"maxPayload":...},
//!      "snapshot":{"sessionDefaults":{"mainSessionKey":"agent:main:main"}}}}
//! ```
//!
//! [`Connector`] holds what every connection needs (device key, issued device tokens, scopes,
//! deadlines) and is shared by the pooled connection actors and the one-shot sessions. The
//! whole handshake runs under one deadline. Credentials: the configured token when there is
//! one, else the device token this gateway issued earlier, else none; the device signature
//! covers whichever is sent. A device token in `hello-ok` is stored for next time.

use super::device::{DeviceIdentity, SignedFields};
use super::error::{display_url, GatewayError};
use super::frame::{self, ClientInfo, ConnectAuth, ConnectParams, Inbound};
use super::socket::{self, next_frame, ws_error, Ws};
use super::tokens::{DeviceTokens, StoredToken};
use clawlink::Secret;
use futures_util::SinkExt;
use serde_json::Value;
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// `client.id` we present (a member of the gateway's closed enum).
pub const CLIENT_ID: &str = "gateway-client";
/// `client.mode` we present.
pub const CLIENT_MODE: &str = "backend";
/// The role we connect as.
pub const ROLE: &str = "operator";
/// Protocol versions we speak.
pub const PROTOCOLS: std::ops::RangeInclusive<u32> = 3..=4;

/// What `hello-ok` told us.
#[derive(Debug, Clone)]
pub struct Hello {
    /// Protocol version in use.
    pub protocol: u32,
    /// Gateway version.
    pub server_version: String,
    /// Scopes the gateway will enforce (`auth.scopes`).
    pub scopes: Vec<String>,
    /// How we were authenticated (`token`, `device-token`, ...).
    pub auth_method: Option<String>,
    /// Interval of `tick` events; silence for twice this means a dead link.
    pub tick_interval: Duration,
    /// Largest frame the gateway accepts.
    pub max_payload: usize,
    /// The default agent's main session (`snapshot.sessionDefaults.mainSessionKey`).
    pub main_session_key: Option<String>,
}

/// Makes authenticated connections; shared by the pool's actors and one-shot sessions.
#[derive(Debug)]
pub(crate) struct Connector {
    pub device: DeviceIdentity,
    pub tokens: DeviceTokens,
    pub scopes: Vec<String>,
    pub handshake_timeout: Duration,
    pub max_frame: usize,
}

impl Connector {
    /// Opens `url` and completes the handshake within the handshake deadline.
    pub async fn connect(&self, url: &str, token: &Secret) -> Result<(Ws, Hello), GatewayError> {
        let shown = display_url(url);
        match tokio::time::timeout(self.handshake_timeout, self.handshake(url, &shown, token)).await
        {
            Ok(r) => r,
            Err(_) => Err(GatewayError::Timeout {
                url: shown,
                what: "connect".into(),
                after: self.handshake_timeout,
            }),
        }
    }

    async fn handshake(
        &self,
        url: &str,
        shown: &str,
        token: &Secret,
    ) -> Result<(Ws, Hello), GatewayError> {
        let mut ws = socket::open(url, shown, self.max_frame).await?;

        let nonce = match next_frame(&mut ws, shown).await? {
            Some(Inbound::Event(ev)) if ev.event == "connect.challenge" => ev
                .payload
                .as_ref()
                .and_then(|p| p.get("nonce"))
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| not_a_gateway(shown, "connect.challenge without a nonce"))?,
            Some(_) => {
                return Err(not_a_gateway(
                    shown,
                    "the first frame was not connect.challenge",
                ))
            }
            None => return Err(not_a_gateway(shown, "the first frame was not JSON")),
        };

        let stored = if token.is_empty() {
            self.tokens.get(url, self.device.id())
        } else {
            None
        };
        let (auth, signed_token) = match (&stored, token.is_empty()) {
            (_, false) => (
                Some(ConnectAuth {
                    token: Some(token.expose()),
                    device_token: None,
                }),
                token.expose(),
            ),
            (Some(s), true) => (
                Some(ConnectAuth {
                    token: None,
                    device_token: Some(s.token.expose()),
                }),
                s.token.expose(),
            ),
            (None, true) => (None, ""),
        };
        let platform = platform();
        let fields = SignedFields {
            client_id: CLIENT_ID,
            client_mode: CLIENT_MODE,
            role: ROLE,
            scopes: &self.scopes,
            token: signed_token,
            nonce: &nonce,
            platform,
            device_family: "",
        };
        let params = ConnectParams {
            min_protocol: *PROTOCOLS.start(),
            max_protocol: *PROTOCOLS.end(),
            client: ClientInfo {
                id: CLIENT_ID,
                display_name: "clawlinkd",
                version: env!("CARGO_PKG_VERSION"),
                platform,
                mode: CLIENT_MODE,
            },
            role: ROLE,
            scopes: &self.scopes,
            auth,
            device: Some(self.device.prove(&fields, crate::time::now_ms())),
        };
        let text = frame::request("connect", "connect", &params)
            .map_err(|e| GatewayError::local(e.to_string()))?;
        ws.send(Message::text(text))
            .await
            .map_err(|e| ws_error(shown, e))?;

        loop {
            match next_frame(&mut ws, shown).await? {
                Some(Inbound::Res(res)) if res.id == "connect" => {
                    if !res.ok {
                        let err = GatewayError::from_gateway(
                            shown,
                            "connect",
                            &res.error.unwrap_or_default(),
                            self.device.id(),
                        );
                        if stored.is_some()
                            && matches!(&err, GatewayError::Auth { code, .. } if code == "AUTH_DEVICE_TOKEN_MISMATCH")
                        {
                            self.tokens.remove(url);
                        }
                        return Err(err);
                    }
                    let payload = res.payload.unwrap_or_default();
                    let hello = parse_hello(shown, &payload)?;
                    self.remember_device_token(url, &payload);
                    return Ok((ws, hello));
                }
                // Events before the answer (presence, health) are not ours to handle.
                Some(_) => continue,
                None => {
                    return Err(not_a_gateway(
                        shown,
                        "a malformed frame instead of the connect answer",
                    ))
                }
            }
        }
    }

    fn remember_device_token(&self, url: &str, payload: &Value) {
        let auth = &payload["auth"];
        let Some(token) = auth["deviceToken"].as_str().filter(|t| !t.is_empty()) else {
            return;
        };
        let entry = StoredToken {
            device_id: self.device.id().to_string(),
            role: auth["role"].as_str().unwrap_or(ROLE).to_string(),
            scopes: strings(&auth["scopes"]),
            token: Secret::new(token),
            issued_at_ms: auth["issuedAtMs"].as_u64(),
        };
        self.tokens.put(url, entry);
    }
}

fn parse_hello(shown: &str, p: &Value) -> Result<Hello, GatewayError> {
    if p["type"].as_str() != Some("hello-ok") {
        return Err(not_a_gateway(shown, "the connect answer is not hello-ok"));
    }
    let protocol = p["protocol"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
        .unwrap_or(0);
    if !PROTOCOLS.contains(&protocol) {
        return Err(GatewayError::ProtocolMismatch {
            url: shown.into(),
            detail: format!("the gateway chose protocol {protocol}"),
        });
    }
    Ok(Hello {
        protocol,
        server_version: p["server"]["version"]
            .as_str()
            .unwrap_or("unknown")
            .to_string(),
        scopes: strings(&p["auth"]["scopes"]),
        auth_method: p["auth"]["method"].as_str().map(str::to_string),
        tick_interval: Duration::from_millis(
            p["policy"]["tickIntervalMs"]
                .as_u64()
                .unwrap_or(30_000)
                .clamp(10, 3_600_000),
        ),
        max_payload: p["policy"]["maxPayload"]
            .as_u64()
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(25 << 20),
        main_session_key: p["snapshot"]["sessionDefaults"]["mainSessionKey"]
            .as_str()
            .map(str::to_string),
    })
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn not_a_gateway(shown: &str, why: &str) -> GatewayError {
    GatewayError::ProtocolMismatch {
        url: shown.into(),
        detail: format!("not an OpenClaw gateway: {why}"),
    }
}

/// `client.platform`, in Node's spelling (the gateway displays it and it is signed).
pub fn platform() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        "windows" => "win32",
        other => other,
    }
}
