//! The two OpenClaw gateway HTTP hooks the policy uses, on the local gateway's own port.
//!
//! - `POST {base}/hooks/agent` with
//!   `{"message", "name":"clawlink", "sessionKey":"hook:clawlink:…", "sessionMode":"persistent",
//!   "deliver":false}` and an `Idempotency-Key` header: an agent turn in the peer's own
//!   session. Because the key starts with `hook:`, OpenClaw runs it as external hook content:
//!   it wraps the message in `<<<EXTERNAL_UNTRUSTED_CONTENT id="…">>>` with its security
//!   notice (`src/security/external-content.ts`, applied in the isolated cron/hook runner), and
//!   the session is never the main one. `deliver:false` keeps the reply out of the main session.
//! - `POST {base}/hooks/wake` with `{"text","mode":"now"}`: a system event for the main
//!   session plus an immediate heartbeat turn. OpenClaw treats it as trusted, so only the short
//!   notice clawlink writes goes this way.
//!
//! The gateway needs `hooks.enabled`, a hook token (`[policy] hooks_token` here),
//! `hooks.allowRequestSessionKey: true` and `hooks.allowedSessionKeyPrefixes` admitting
//! `hook:clawlink:` (OpenClaw also requires `hook:` itself, or a `defaultSessionKey` under
//! `hook:clawlink:`). The README shows the block.
//!
//! Errors map to [`GatewayError`] so the local-agent worker's retry rules apply: connection
//! failures, 429, 502 and 503 are retryable; 401 is an auth error; other 4xx reject the message.

use crate::gateway::error::display_url;
use crate::gateway::GatewayError;
use clawlink::Secret;
use serde_json::{json, Value};
use std::time::Duration;

/// Request timeout (admission waits up to 15 s on the gateway side).
const TIMEOUT: Duration = Duration::from_secs(30);
/// Largest answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// A hooks client for one gateway.
#[derive(Clone)]
pub struct Hooks {
    http: reqwest::Client,
    base: String,
    token: Secret,
}

impl std::fmt::Debug for Hooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hooks")
            .field("base", &display_url(&self.base))
            .finish()
    }
}

impl Hooks {
    /// For the gateway at `ws_url` (`ws://` → `http://`, `wss://` → `https://`), hooks under
    /// `path` (`/hooks`).
    pub fn new(ws_url: &str, path: &str, token: Secret) -> Result<Hooks, GatewayError> {
        let local = |detail: String| GatewayError::Local { detail };
        let rest = ws_url
            .strip_prefix("ws://")
            .map(|r| format!("http://{r}"))
            .or_else(|| {
                ws_url
                    .strip_prefix("wss://")
                    .map(|r| format!("https://{r}"))
            })
            .ok_or_else(|| {
                local(format!(
                    "{} is not a ws:// or wss:// URL",
                    display_url(ws_url)
                ))
            })?;
        let base = format!(
            "{}/{}",
            rest.split(['?', '#'])
                .next()
                .unwrap_or_default()
                .trim_end_matches('/'),
            path.trim_matches('/')
        );
        if token.is_empty() {
            return Err(local(
                "[policy] hooks_token is not set: deliver and notify need the gateway's hooks.token".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| local(e.to_string()))?;
        Ok(Hooks { http, base, token })
    }

    /// Runs an agent turn in `session` with `message`; the run id.
    pub async fn agent(
        &self,
        session: &str,
        message: &str,
        idempotency_key: &str,
    ) -> Result<String, GatewayError> {
        let body = json!({"message": message, "name": "clawlink", "sessionKey": session,
            "sessionMode": "persistent", "deliver": false, "idempotencyKey": idempotency_key});
        let v = self.post("agent", &body, Some(idempotency_key)).await?;
        Ok(v["runId"].as_str().unwrap_or_default().to_string())
    }

    /// Queues `text` for the main session and wakes it now.
    pub async fn wake(&self, text: &str) -> Result<(), GatewayError> {
        self.post("wake", &json!({"text": text, "mode": "now"}), None)
            .await?;
        Ok(())
    }

    async fn post(
        &self,
        hook: &str,
        body: &Value,
        idem: Option<&str>,
    ) -> Result<Value, GatewayError> {
        let url = format!("{}/{hook}", self.base);
        let shown = display_url(&url);
        let mut req = self
            .http
            .post(&url)
            .bearer_auth(self.token.expose())
            .json(body);
        if let Some(k) = idem {
            req = req.header("Idempotency-Key", k);
        }
        let resp = req.send().await.map_err(|e| GatewayError::Unreachable {
            url: shown.clone(),
            detail: e.to_string(),
        })?;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .map(Duration::from_secs);
        let bytes = resp.bytes().await.map_err(|e| GatewayError::Unreachable {
            url: shown.clone(),
            detail: e.to_string(),
        })?;
        let text = String::from_utf8_lossy(&bytes[..bytes.len().min(MAX_ANSWER)]).into_owned();
        let said: String = text.chars().take(300).collect();
        match status.as_u16() {
            200..=299 => Ok(serde_json::from_str(&text).unwrap_or(Value::Null)),
            401 | 403 => Err(GatewayError::Auth {
                url: shown,
                code: status.as_u16().to_string(),
                detail: format!("the hook token was refused; check [policy] hooks_token against the gateway's hooks.token ({said})"),
            }),
            404 => Err(GatewayError::Rejected {
                url: shown,
                method: format!("hooks/{hook}"),
                code: "404".into(),
                detail: "hooks are not enabled on the gateway (hooks.enabled, hooks.path)".into(),
            }),
            408 | 429 | 500..=599 => Err(GatewayError::Unavailable {
                url: shown,
                detail: format!("{status}: {said}"),
                retry_after,
            }),
            _ => Err(GatewayError::Rejected {
                url: shown,
                method: format!("hooks/{hook}"),
                code: status.as_u16().to_string(),
                detail: said,
            }),
        }
    }
}
