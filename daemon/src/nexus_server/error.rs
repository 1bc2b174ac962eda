//! Errors as the Nexus protocol shapes them: [`ErrorBody`]
//! `{"error":"code","message":"...","details":[]}` with the reference implementation's status
//! codes.
//!
//! A 500 (`internal_error`) carries an `X-Request-Id` header; the same id is logged with the
//! cause, so an operator can find it without the log ever holding a path, key or message.

use crate::nexus::wire::{Detail, ErrorBody};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::fmt::Display;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    details: Vec<Detail>,
    request_id: Option<String>,
    retry_after: Option<u64>,
}

/// Handler result.
pub type ApiResult<T = Response> = Result<T, ApiError>;

impl ApiError {
    /// An error with `status`, protocol `code` and a human sentence.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
            request_id: None,
            retry_after: None,
        }
    }

    /// Adds one `details` entry.
    pub fn detail(mut self, field: &str, issue: impl Into<String>) -> Self {
        self.details.push(Detail {
            field: field.to_string(),
            message: issue.into(),
        });
        self
    }

    /// 400 `invalid_body`: the body is not the JSON expected.
    pub fn invalid_body(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_body", message)
    }

    /// 400 `invalid_request`: a value is out of range or malformed.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", message)
    }

    /// 404 `session_not_found` (unknown or expired).
    pub fn session_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "session_not_found",
            "Session not found or expired",
        )
    }

    /// 403 `forbidden`.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 413 `payload_too_large`.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 429 `rate_limit_exceeded`, retry after `secs`.
    pub fn rate_limited(secs: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limit_exceeded",
            "Too many requests, slow down",
        );
        e.retry_after = Some(secs.max(1));
        e
    }

    /// 500 `internal_error`: logs `cause` with a fresh request id and returns that id.
    pub fn internal(cause: impl Display) -> Self {
        let id = super::ids::new_request_id();
        tracing::error!(request_id = %id, error = %cause, "internal error");
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "Internal server error",
        );
        e.request_id = Some(id);
        e
    }

    /// The protocol code.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            details: self.details,
            error: self.code.to_string(),
            message: self.message,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(id) = self
            .request_id
            .and_then(|id| HeaderValue::from_str(&id).ok())
        {
            resp.headers_mut().insert("x-request-id", id);
        }
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_carry_a_request_id_and_the_protocol_shape() {
        let resp = ApiError::internal("disk on fire").into_response();
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let id = resp
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        assert_eq!(id.len(), 16);
        let limited = ApiError::rate_limited(0).into_response();
        assert_eq!(
            limited
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }
}
