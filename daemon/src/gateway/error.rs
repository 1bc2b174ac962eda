//! [`GatewayError`]: every way talking to a gateway can fail, sorted by what the caller should
//! do about it.
//!
//! The outbox needs one bit (retry later or give up: [`GatewayError::is_retryable`]); the user
//! needs a sentence and a next step ([`GatewayError::hint`], and the conversion to
//! [`clawlink::proto::ApiError`]). The gateway reports failures as a top-level `error.code`
//! (`INVALID_REQUEST`, `NOT_PAIRED`, `FORBIDDEN`, `UNAVAILABLE`, ...) refined by
//! `error.details.code` (`AUTH_TOKEN_MISMATCH`, `MISSING_SCOPE`, `PROTOCOL_MISMATCH`, ...);
//! [`GatewayError::from_gateway`] reads both. No variant ever holds a token or a key.

use super::frame::ErrorShape;
use clawlink::proto::ApiError;
use std::time::Duration;

/// Why a gateway request did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GatewayError {
    /// No WebSocket could be opened, or it broke before the answer. Retryable.
    #[error("cannot reach the gateway at {url}: {detail}")]
    Unreachable {
        /// The gateway URL (without credentials or query).
        url: String,
        /// What the network said.
        detail: String,
    },
    /// The token (or stored device token) was refused. Not retryable.
    #[error("the gateway at {url} refused the credentials ({code}): {detail}")]
    Auth {
        /// The gateway URL.
        url: String,
        /// The gateway's detail code, e.g. `AUTH_TOKEN_MISMATCH`.
        code: String,
        /// The gateway's message.
        detail: String,
    },
    /// The connection lacks a scope the method needs. Not retryable.
    #[error("the gateway at {url} did not grant the scope {scope}: {detail}")]
    MissingScope {
        /// The gateway URL.
        url: String,
        /// The scope that is missing, e.g. `operator.admin`.
        scope: String,
        /// The gateway's message.
        detail: String,
    },
    /// The gateway wants this device approved by its owner first. Not retryable until then.
    #[error("this device ({device_id}) is not yet approved by the gateway at {url}")]
    NotPaired {
        /// The gateway URL.
        url: String,
        /// Our device id (hex sha256 of the public key).
        device_id: String,
        /// The pending pairing request the owner approves, when the gateway named it.
        request_id: Option<String>,
    },
    /// The gateway speaks no protocol version we do (close code 1002). Not retryable.
    #[error("the gateway at {url} speaks an incompatible protocol: {detail}")]
    ProtocolMismatch {
        /// The gateway URL.
        url: String,
        /// The gateway's message.
        detail: String,
    },
    /// The gateway is starting, restarting or overloaded. Retryable, after `retry_after` if given.
    #[error("the gateway at {url} is temporarily unavailable: {detail}")]
    Unavailable {
        /// The gateway URL.
        url: String,
        /// The gateway's message.
        detail: String,
        /// How long the gateway asked us to wait.
        retry_after: Option<Duration>,
    },
    /// No answer in time. Retryable (requests carry idempotency keys, so a retry is safe).
    #[error("{what} at {url} got no answer within {}", humantime::format_duration(*after))]
    Timeout {
        /// The gateway URL.
        url: String,
        /// What was waited for: `connect`, or the method name.
        what: String,
        /// How long we waited.
        after: Duration,
    },
    /// The gateway refused this request for good (`INVALID_REQUEST`, unknown method, ...).
    #[error("the gateway at {url} rejected {method} ({code}): {detail}")]
    Rejected {
        /// The gateway URL.
        url: String,
        /// The method that was refused.
        method: String,
        /// The gateway's error code.
        code: String,
        /// The gateway's message.
        detail: String,
    },
    /// A local problem: a malformed URL, an unreadable device key, a stopped pool.
    #[error("{detail}")]
    Local {
        /// What went wrong.
        detail: String,
    },
}

impl GatewayError {
    /// Classifies an `ok:false` answer to `method`. `device_id` names us in a pairing error.
    pub fn from_gateway(url: &str, method: &str, e: &ErrorShape, device_id: &str) -> Self {
        let url = url.to_string();
        let detail_code = e.detail_str("code").unwrap_or_default();
        let detail = e.message.clone();
        if e.code == "NOT_PAIRED" || detail_code == "PAIRING_REQUIRED" {
            let device_id = e
                .detail_str("deviceId")
                .unwrap_or_else(|| device_id.to_string());
            return Self::NotPaired {
                url,
                device_id,
                request_id: e.detail_str("requestId"),
            };
        }
        if detail_code == "MISSING_SCOPE" || e.code == "FORBIDDEN" {
            let scope = e
                .detail_str("missingScope")
                .or_else(|| {
                    e.message
                        .split("missing scope:")
                        .nth(1)
                        .map(|s| s.trim().to_string())
                })
                .unwrap_or_else(|| "(unnamed)".into());
            return Self::MissingScope { url, scope, detail };
        }
        if detail_code == "PROTOCOL_MISMATCH" {
            return Self::ProtocolMismatch { url, detail };
        }
        if detail_code == "AUTH_RATE_LIMITED" {
            let retry_after = e.retry_after_ms.map(Duration::from_millis);
            return Self::Unavailable {
                url,
                detail,
                retry_after,
            };
        }
        if detail_code.starts_with("AUTH_")
            || detail_code.starts_with("DEVICE_AUTH")
            || e.code.starts_with("AUTH_")
        {
            let code = if detail_code.is_empty() {
                e.code.clone()
            } else {
                detail_code
            };
            return Self::Auth { url, code, detail };
        }
        if e.code == "UNAVAILABLE" || e.retryable == Some(true) {
            let retry_after = e.retry_after_ms.map(Duration::from_millis);
            return Self::Unavailable {
                url,
                detail,
                retry_after,
            };
        }
        Self::Rejected {
            url,
            method: method.to_string(),
            code: e.code.clone(),
            detail,
        }
    }

    /// Whether trying again later can succeed without anyone changing anything.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::Unreachable { .. } | Self::Unavailable { .. } | Self::Timeout { .. }
        )
    }

    /// The wait the gateway asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A stable machine-readable code for the control protocol.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "gateway_unreachable",
            Self::Auth { .. } => "gateway_auth_failed",
            Self::MissingScope { .. } => "gateway_missing_scope",
            Self::NotPaired { .. } => "gateway_not_paired",
            Self::ProtocolMismatch { .. } => "gateway_protocol_mismatch",
            Self::Unavailable { .. } => "gateway_unavailable",
            Self::Timeout { .. } => "gateway_timeout",
            Self::Rejected { .. } => "gateway_rejected",
            Self::Local { .. } => "gateway_local_error",
        }
    }

    /// What the user can do about it.
    pub fn hint(&self) -> Option<String> {
        Some(match self {
            Self::Unreachable { .. } => {
                "check the URL and that the gateway runs (`openclaw gateway status` on its host); \
                 queued messages are retried automatically"
                    .into()
            }
            Self::Auth { code, .. } if code == "AUTH_DEVICE_TOKEN_MISMATCH" => {
                "the stored device token was revoked; configure the gateway token for this contact".into()
            }
            Self::Auth { code, .. } if code.starts_with("DEVICE_AUTH") => {
                "the device signature was refused; check that this machine's clock is correct".into()
            }
            Self::Auth { .. } => "check the token: it must equal the gateway's gateway.auth.token".into(),
            Self::MissingScope { scope, .. } => format!(
                "the connection needs the scope {scope}; use the gateway's own token, or have the \
                 gateway's owner grant {scope} to this device"
            ),
            Self::NotPaired { device_id, request_id, .. } => match request_id {
                Some(rid) => format!(
                    "ask the gateway's owner to approve device {device_id}: `openclaw devices approve {rid}` \
                     (see `openclaw devices list`), then send again"
                ),
                None => format!(
                    "ask the gateway's owner to approve device {device_id}: `openclaw devices list`, then \
                     `openclaw devices approve <request id>`, then send again"
                ),
            },
            Self::ProtocolMismatch { .. } => {
                "this clawlinkd speaks gateway protocol 3-4; update the gateway or clawlinkd".into()
            }
            Self::Unavailable { .. } => "the gateway is starting or busy; it is retried automatically".into(),
            Self::Timeout { .. } => "the gateway or the network is slow; it is retried automatically".into(),
            Self::Rejected { .. } => return None,
            Self::Local { .. } => return None,
        })
    }

    pub(crate) fn local(detail: impl Into<String>) -> Self {
        Self::Local {
            detail: detail.into(),
        }
    }

    pub(crate) fn unreachable(url: &str, detail: impl Into<String>) -> Self {
        Self::Unreachable {
            url: url.to_string(),
            detail: detail.into(),
        }
    }
}

impl From<&GatewayError> for ApiError {
    fn from(e: &GatewayError) -> Self {
        let api = ApiError::new(e.code(), e.to_string());
        match e.hint() {
            Some(h) => api.with_hint(h),
            None => api,
        }
    }
}

impl From<GatewayError> for ApiError {
    fn from(e: GatewayError) -> Self {
        ApiError::from(&e)
    }
}

/// `url` without user info, query or fragment, for messages and logs.
pub fn display_url(url: &str) -> String {
    let no_query = url.split(['?', '#']).next().unwrap_or_default();
    match no_query.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_once('/').map_or((rest, ""), |(a, p)| (a, p));
            let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
            if path.is_empty() {
                format!("{scheme}://{host}")
            } else {
                format!("{scheme}://{host}/{path}")
            }
        }
        None => no_query.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn shape(v: serde_json::Value) -> ErrorShape {
        serde_json::from_value(v).unwrap_or_else(|e| panic!("bad shape: {e}"))
    }

    #[test]
    fn classifies_what_the_real_gateway_sends() {
        let u = "ws://h:1";
        let auth = shape(
            json!({"code":"INVALID_REQUEST","message":"unauthorized: gateway token mismatch",
            "details":{"code":"AUTH_TOKEN_MISMATCH","canRetryWithDeviceToken":false}}),
        );
        let e = GatewayError::from_gateway(u, "connect", &auth, "dev");
        assert!(matches!(e, GatewayError::Auth { .. }) && !e.is_retryable());
        assert!(e.hint().unwrap_or_default().contains("check the token"));

        let scope = shape(
            json!({"code":"FORBIDDEN","message":"missing scope: operator.admin",
            "details":{"code":"MISSING_SCOPE","missingScope":"operator.admin","requiredScopes":["operator.admin"]}}),
        );
        let e = GatewayError::from_gateway(u, "system-event", &scope, "dev");
        assert_eq!(e.to_string(), "the gateway at ws://h:1 did not grant the scope operator.admin: missing scope: operator.admin");

        let pair = shape(json!({"code":"NOT_PAIRED","message":"pairing required",
            "details":{"code":"PAIRING_REQUIRED","requestId":"r-1","deviceId":"abc"}}));
        let e = GatewayError::from_gateway(u, "connect", &pair, "abc");
        let hint = e.hint().unwrap_or_default();
        assert!(
            e.to_string().contains("abc") && hint.contains("openclaw devices approve r-1"),
            "{hint}"
        );

        let proto = shape(
            json!({"code":"INVALID_REQUEST","message":"protocol mismatch","details":{"code":"PROTOCOL_MISMATCH"}}),
        );
        assert!(matches!(
            GatewayError::from_gateway(u, "connect", &proto, ""),
            GatewayError::ProtocolMismatch { .. }
        ));

        let unavail = shape(
            json!({"code":"UNAVAILABLE","message":"gateway starting; retry shortly","retryable":true,"retryAfterMs":500}),
        );
        let e = GatewayError::from_gateway(u, "connect", &unavail, "");
        assert!(e.is_retryable());
        assert_eq!(e.retry_after(), Some(Duration::from_millis(500)));

        let bad = shape(json!({"code":"INVALID_REQUEST","message":"unexpected property 'bogus'"}));
        let e = GatewayError::from_gateway(u, "system-event", &bad, "");
        assert!(matches!(e, GatewayError::Rejected { .. }) && !e.is_retryable());
        let api = ApiError::from(&e);
        assert_eq!(api.code, "gateway_rejected");
    }

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            display_url("wss://user:pw@host:1/x?token=abc"),
            "wss://host:1/x"
        );
        assert_eq!(display_url("ws://host:18789"), "ws://host:18789");
        assert_eq!(display_url("ws://host:18789/#frag"), "ws://host:18789");
    }
}
