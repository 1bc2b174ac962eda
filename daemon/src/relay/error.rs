//! Relay failures as [`ApiError`]s that say what to do.

use super::wire::ErrorBody;
use crate::util::http_client::error_text;
use clawlink::proto::ApiError;
use serde::Deserialize;
use serde_json::Value;

/// An error reply of the relay ([`ErrorBody`] `{"error": "..."}` with its status).
pub fn relay_error(status: u16, body: &Value, relay: &str) -> ApiError {
    let reason = ErrorBody::deserialize(body).unwrap_or_default().error;
    let said: &str = if reason.is_empty() {
        "no reason given"
    } else {
        &reason
    };
    let (code, hint) = match status {
        401 | 403 => (
            "unauthorized",
            "check the id and secret (`clawlink relay register`)",
        ),
        404 => (
            "not_found",
            "check the recipient id (`clawlink relay users`)",
        ),
        409 => (
            "conflict",
            "this id is taken on the relay with another secret; choose another id",
        ),
        413 => ("too_large", "send a shorter message"),
        429 => ("rate_limited", "try again later"),
        _ => (
            "relay_error",
            "check the relay URL and that the relay is healthy",
        ),
    };
    ApiError::new(code, format!("relay {relay} answered {status}: {said}")).with_hint(hint)
}

/// The relay could not be reached (the error text never carries the URL: it may hold a secret).
pub fn unreachable(relay: &str, e: reqwest::Error) -> ApiError {
    ApiError::new("unreachable", format!("relay {relay}: {}", error_text(e)))
}

/// No identity of ours on `relay`.
pub fn no_identity(relay: &str) -> ApiError {
    ApiError::new(
        "no_identity",
        format!("no relay identity registered on {relay}; run `clawlink relay register --relay {relay} --id ID --secret SECRET` first"),
    )
}
