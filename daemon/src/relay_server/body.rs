//! [`JsonBody`]: a request body read with the size cap, every failure (too large, not JSON,
//! wrong shape) turned into a JSON error. It does not insist on a `Content-Type` header, since
//! nothing is gained by refusing a well-formed body over it.
//!
//! A body over the cap is still read (and discarded) up to [`DRAIN_CAP`] before the 413 is
//! sent: a server that answers and closes while request bytes are unread makes the kernel
//! reset the connection, and the client would see a broken socket instead of the error.
//! Bodies declared larger than that are refused at once. The request deadline bounds the time.
//!
//! The parsing step, [`parse_json`], is public so that the fuzz targets can feed it directly.

use super::error::ApiError;
use super::state::Relay;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use std::sync::Arc;

/// Most bytes read from an oversized body so that its 413 reaches the client (or the body
/// limit, if larger).
pub(crate) const DRAIN_CAP: usize = 4 << 20;

/// A JSON request body.
pub(crate) struct JsonBody<T>(pub T);

fn too_large() -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
}

impl<T: DeserializeOwned> FromRequest<Arc<Relay>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, relay: &Arc<Relay>) -> Result<Self, ApiError> {
        let limit = relay.body_limit();
        let drain = limit.max(DRAIN_CAP);
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
        if declared.is_some_and(|n| n > drain) {
            return Err(too_large());
        }
        let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(limit));
        let mut total = 0usize;
        let mut stream = req.into_body().into_data_stream();
        while let Some(chunk) = stream.next().await {
            let chunk =
                chunk.map_err(|_| ApiError::bad_request("could not read the request body"))?;
            total = total.saturating_add(chunk.len());
            if total > drain {
                return Err(too_large());
            }
            if total <= limit {
                buf.extend_from_slice(&chunk);
            }
        }
        if total > limit {
            return Err(too_large());
        }
        parse_json(&buf)
            .map(JsonBody)
            .map_err(ApiError::bad_request)
    }
}

/// Parses a body read in full as the JSON of `T`; on failure, the message of the 400.
///
/// The whole body must be UTF-8, as JSON requires: serde alone would let invalid bytes
/// through inside fields it skips. The message names only the kind of fault and its position,
/// never the content: a body carries a secret, and the error text reaches logs and clients.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    let malformed = |what: &str, line: usize, column: usize| {
        format!("malformed request body: expected {what} (line {line}, column {column})")
    };
    let text = std::str::from_utf8(body).map_err(|e| {
        let valid = &body[..e.valid_up_to()];
        let line = 1 + valid.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + valid.iter().rev().take_while(|&&b| b != b'\n').count();
        malformed("valid JSON", line, column)
    })?;
    serde_json::from_str(text).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Data => "a JSON object with the expected fields",
            _ => "valid JSON",
        };
        malformed(what, e.line(), e.column())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn bodies_must_be_utf8_json_and_errors_do_not_echo_them() {
        let ok: Value = parse_json(br#"{"secret":"s3cret"}"#).expect("valid body");
        assert_eq!(ok["secret"], "s3cret");
        let e = parse_json::<Value>(b"{\"x\":\n\"ab\xff\"}").expect_err("not UTF-8");
        assert_eq!(
            e,
            "malformed request body: expected valid JSON (line 2, column 4)"
        );
        let e = parse_json::<Vec<u8>>(br#"{"secret":"s3cret"}"#).expect_err("wrong shape");
        assert!(
            e.contains("expected fields") && !e.contains("s3cret"),
            "{e}"
        );
    }
}
