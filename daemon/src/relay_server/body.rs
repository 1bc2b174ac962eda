//! [`JsonBody`]: a request body read with the size cap, every failure (too large, not JSON,
//! wrong shape) turned into a JSON error. It does not insist on a `Content-Type` header, since
//! nothing is gained by refusing a well-formed body over it.
//!
//! A body over the cap is still read (and discarded) up to [`DRAIN_CAP`] before the 413 is
//! sent: a server that answers and closes while request bytes are unread makes the kernel
//! reset the connection, and the client would see a broken socket instead of the error.
//! Bodies declared larger than that are refused at once. The request deadline bounds the time.

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
        serde_json::from_slice(&buf).map(JsonBody).map_err(|e| {
            let what = match e.classify() {
                serde_json::error::Category::Data => "a JSON object with the expected fields",
                _ => "valid JSON",
            };
            ApiError::bad_request(format!(
                "malformed request body: expected {what} (line {}, column {})",
                e.line(),
                e.column()
            ))
        })
    }
}
