//! Every relay error is JSON [`ErrorBody`] `{"error": "..."}` with a meaningful status,
//! because the seed client prints `body.error`.

use crate::relay::wire::ErrorBody;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use std::borrow::Cow;

/// An HTTP error answered as `{"error": message}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: Cow<'static, str>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with this status and message.
    pub(crate) fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        ApiError {
            status,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400.
    pub(crate) fn bad_request(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: the id is unknown or the secret does not match (deliberately not told apart).
    pub(crate) fn unauthorized() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unknown id or wrong secret")
    }

    /// 429 with a `Retry-After` header.
    pub(crate) fn too_many(message: impl Into<Cow<'static, str>>, retry_after_secs: u64) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(StatusCode::TOO_MANY_REQUESTS, message)
        }
    }

    /// 429: the recipient's queue holds `--queue-cap` messages (both backends).
    pub(crate) fn queue_full() -> Self {
        Self::too_many(
            "the recipient's queue is full; try again after it has read its messages",
            5,
        )
    }

    /// 503 with a `Retry-After` header: nothing was acknowledged, the client should retry.
    pub(crate) fn unavailable(
        message: impl Into<Cow<'static, str>>,
        retry_after_secs: u64,
    ) -> Self {
        ApiError {
            retry_after: Some(retry_after_secs.max(1)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
        }
    }

    /// 500 for a store failure; the detail goes to the log, not to the client.
    pub(crate) fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(error = %err, "relay store failure");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal storage error; try again later",
        )
    }

    /// The status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        ApiError::internal(e)
    }
}

impl From<super::storage::Error> for ApiError {
    fn from(e: super::storage::Error) -> Self {
        use super::storage::Error as E;
        match e {
            E::QueueFull => ApiError::queue_full(),
            E::StorageFull => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "the relay's storage is full; try again later",
            ),
            E::Unavailable(detail) => {
                tracing::warn!(%detail, "relay storage unavailable");
                ApiError::unavailable(
                    "the relay's storage did not confirm the message; it is not acknowledged, send it again with the same key",
                    2,
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
        };
        let mut resp = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

/// Fallback for unknown paths.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such endpoint")
}

/// Fallback for a known path with the wrong method.
pub(crate) async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method not allowed on this endpoint",
    )
}
