//! Reading requests: the identity headers and JSON bodies, with the protocol's error codes.
//!
//! - `X-Agent-Id` missing or empty → 400 `missing_agent_id`; not letters, digits, `-`, `_`
//!   or longer than 128 → 400 `invalid_request`.
//! - `X-Session-Key` is optional where the protocol allows it; its value is never logged.
//! - A body over `--max-body-bytes` → 413 `payload_too_large`; an empty body counts as `{}`;
//!   anything else that is not the expected JSON → 400 `invalid_body`.

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use serde::de::DeserializeOwned;

/// The caller's agent id.
pub fn agent_id(headers: &HeaderMap) -> Result<String, ApiError> {
    let value = headers.get("x-agent-id").map(|v| v.to_str().map(str::trim));
    match value {
        None | Some(Ok("")) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "missing_agent_id",
            "The X-Agent-Id header is required",
        )),
        Some(Ok(id)) if super::ids::valid_agent_id(id) => Ok(id.to_string()),
        Some(_) => Err(ApiError::invalid_request(
            "X-Agent-Id must be 1 to 128 letters, digits, '-' or '_'",
        )
        .detail("X-Agent-Id", "invalid")),
    }
}

/// The caller's session key, if sent (an empty header counts as absent).
pub fn session_key(headers: &HeaderMap) -> Option<clawlink::Secret> {
    let v = headers.get("x-session-key")?;
    // A key that is not even text cannot match; keep it so it is rejected, not ignored.
    let s = v.to_str().map(str::trim).unwrap_or("\u{0}");
    (!s.is_empty()).then(|| clawlink::Secret::new(s))
}

/// Parses a JSON body; empty means `T::default()`.
pub fn json_body<T: DeserializeOwned + Default>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let bytes = body.map_err(|rej| {
        if rej.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large("The request body is too large")
        } else {
            ApiError::invalid_body("The request body could not be read")
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid_body(format!("The body is not valid JSON: {e}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid_body("The body must be a JSON object"));
    }
    serde_json::from_value(value).map_err(|e| ApiError::invalid_body(format!("Invalid body: {e}")))
}
