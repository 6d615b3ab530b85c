//! Errors as RFC 9457 problem bodies. Every refusal is a 4xx with a JSON body that says what to
//! fix; a 500 says nothing of its cause, which goes to the log under the request id.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::accounts::AccountError;
use crate::store::StoreError;

/// An API error: a status and a message for the person or program that sent the request.
#[derive(Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// What went wrong, in words (never a secret, a path or an internal detail).
    pub detail: String,
    /// Seconds to wait before trying again (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a status and a message.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError { status, detail: detail.into(), retry_after: None }
    }

    /// 401: sign in first (or again).
    pub fn unauthenticated() -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "sign in first (your session ended or was never started)")
    }

    /// 403: your role cannot do this.
    pub fn forbidden() -> Self {
        Self::new(StatusCode::FORBIDDEN, "your account cannot do this")
    }

    /// 404: no such thing, or not yours (the same answer for both).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }

    /// 429 or 503 with Retry-After.
    pub fn wait(status: StatusCode, detail: &str, ms: u64) -> Self {
        ApiError { status, detail: detail.into(), retry_after: Some(ms.div_ceil(1000).max(1)) }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let title = self.status.canonical_reason().unwrap_or("error");
        let body = serde_json::json!({
            "type": "about:blank",
            "status": self.status.as_u16(),
            "title": title,
            "detail": self.detail,
        });
        let mut res =
            (self.status, [(header::CONTENT_TYPE, "application/problem+json")], body.to_string()).into_response();
        if let Some(secs) = self.retry_after {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        match e {
            AccountError::Invalid(_) | AccountError::WeakPassword(_) | AccountError::BadCode => {
                Self::new(StatusCode::BAD_REQUEST, e.to_string())
            }
            AccountError::Taken(_) => Self::new(StatusCode::CONFLICT, e.to_string()),
            AccountError::NotFound => Self::not_found(),
            AccountError::NotAllowed(why) => Self::new(StatusCode::FORBIDDEN, why),
            AccountError::CheckFailed(report) => Self::new(StatusCode::CONFLICT, report),
            AccountError::Throttled(ms) => {
                Self::wait(StatusCode::TOO_MANY_REQUESTS, "too many wrong codes; wait before trying again", ms)
            }
            AccountError::Busy => {
                Self::wait(StatusCode::SERVICE_UNAVAILABLE, "the server is busy; try again in a moment", 2000)
            }
            AccountError::Internal(_) | AccountError::Storage(_) => {
                tracing::error!(error = %e, "accounts failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::new(
                StatusCode::CONFLICT,
                "the vault changed since this save was prepared: sync, then save again (nothing was stored)",
            ),
            StoreError::NotFound => Self::not_found(),
            StoreError::BadRequest(why) => Self::new(StatusCode::BAD_REQUEST, format!("{why} (nothing was stored)")),
            StoreError::Exists => Self::new(StatusCode::CONFLICT, "that vault exists already"),
            StoreError::Io(_) | StoreError::Corrupt(_) => {
                tracing::error!(error = %e, "store failure");
                Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
            }
        }
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        let status = match r {
            JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            JsonRejection::BytesRejection(_) if r.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            _ => StatusCode::BAD_REQUEST,
        };
        // serde's message names the field and the problem, never echoes values of secrets:
        // serde_json reports positions and expected types, not the input.
        Self::new(status, format!("the JSON body is not what this endpoint takes: {}", r.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(_: PathRejection) -> Self {
        Self::not_found()
    }
}

impl From<QueryRejection> for ApiError {
    fn from(_: QueryRejection) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "the query string is not what this endpoint takes")
    }
}
