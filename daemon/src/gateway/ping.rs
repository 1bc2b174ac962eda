//! Checking a gateway: [`Pool::ping`] and its answer for the control protocol.
//!
//! With credentials (a token, or a device token the gateway issued earlier) a ping is a fresh
//! connection: TCP, TLS, WebSocket, the signed handshake, then a `health` round trip, so it
//! proves the URL, the token and the device approval *now*, independent of any warm
//! connection. Without credentials it can only ask `GET /healthz` on the same host and port
//! (`http` for `ws`, `https` for `wss`), which the gateway answers unauthenticated.

use super::error::{display_url, GatewayError};
use super::pool::{check_url, Pool};
use super::session::Session;
use clawlink::proto::PingReply;
use clawlink::Secret;
use serde_json::Value;
use std::time::{Duration, Instant};

/// What a successful [`Pool::ping`] learned.
#[derive(Debug, Clone, PartialEq)]
pub struct PingInfo {
    /// Whether a handshake was made (false: only `/healthz` was asked, for lack of credentials).
    pub authenticated: bool,
    /// Protocol in use.
    pub protocol: Option<u32>,
    /// Gateway version.
    pub server_version: Option<String>,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Round trip of `health` on the fresh connection (or of `GET /healthz`).
    pub rtt: Duration,
    /// The gateway's main session key.
    pub main_session_key: Option<String>,
}

impl Pool {
    /// Checks a gateway: with credentials (a token, or a stored device token) a fresh
    /// handshake plus a `health` round trip; without, only `GET /healthz` on the same port.
    pub async fn ping(&self, url: &str, token: &Secret) -> Result<PingInfo, GatewayError> {
        let parsed = check_url(url)?;
        let c = &self.inner.connector;
        if token.is_empty() && c.tokens.get(url, c.device.id()).is_none() {
            return self.healthz(url, parsed).await;
        }
        let mut s = Session::open(c, url, token).await?;
        let start = Instant::now();
        let r = s
            .call(
                "health",
                &serde_json::json!({}),
                self.inner.opts.request_timeout,
            )
            .await;
        let rtt = start.elapsed();
        let hello = s.hello.clone();
        s.close().await;
        r?;
        Ok(PingInfo {
            authenticated: true,
            protocol: Some(hello.protocol),
            server_version: Some(hello.server_version),
            scopes: hello.scopes,
            rtt,
            main_session_key: hello.main_session_key,
        })
    }

    async fn healthz(&self, url: &str, mut u: reqwest::Url) -> Result<PingInfo, GatewayError> {
        let shown = display_url(url);
        let scheme = if u.scheme() == "wss" { "https" } else { "http" };
        let _ = u.set_scheme(scheme);
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u.set_path("/healthz");
        u.set_query(None);
        u.set_fragment(None);
        let start = Instant::now();
        let resp = self
            .inner
            .opts
            .http
            .get(u)
            .timeout(self.inner.opts.connect_timeout)
            .send()
            .await
            .map_err(|e| GatewayError::unreachable(&shown, e.without_url().to_string()))?;
        let rtt = start.elapsed();
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_default();
        if !status.is_success() || body["ok"] != Value::Bool(true) {
            return Err(GatewayError::unreachable(
                &shown,
                format!("GET /healthz answered {status}"),
            ));
        }
        Ok(PingInfo {
            authenticated: false,
            protocol: None,
            server_version: None,
            scopes: vec![],
            rtt,
            main_session_key: None,
        })
    }
}

/// Builds the control protocol's answer to `ping` from a ping outcome.
pub fn ping_reply(url: &str, result: &Result<PingInfo, GatewayError>) -> PingReply {
    let url = display_url(url);
    match result {
        Ok(p) => PingReply {
            url,
            reachable: true,
            auth_ok: p.authenticated.then_some(true),
            protocol: p.protocol,
            server_version: p.server_version.clone(),
            rtt_ms: Some(p.rtt.as_secs_f64() * 1000.0),
            scopes: p.scopes.clone(),
            error: None,
        },
        Err(e) => PingReply {
            url,
            reachable: !matches!(
                e,
                GatewayError::Unreachable { .. }
                    | GatewayError::Timeout { .. }
                    | GatewayError::Local { .. }
            ),
            auth_ok: matches!(
                e,
                GatewayError::Auth { .. } | GatewayError::NotPaired { .. }
            )
            .then_some(false),
            error: Some(e.into()),
            ..PingReply::default()
        },
    }
}
