//! API errors: every failure a client can see, each with a stable code and an HTTP status,
//! mapped in one place. Internal details are logged, never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed; the message says how.
    #[error("{0}")]
    BadRequest(String),
    /// No credential, or one that is unknown or revoked.
    #[error("missing, unknown or revoked credential")]
    Unauthorized,
    /// The credential is valid but may not do this.
    #[error("this credential may not do that")]
    Forbidden,
    /// A device credential whose device the account's roster does not list (not approved yet,
    /// revoked, or a password login for a new device): it may only join or recover.
    #[error(
        "this credential is not an enrolled device's: the device is not in the account's device \
         list (not approved yet, or revoked: approve it from an enrolled device, or recover the \
         account with the recovery phrase), or the credential came from the password (a listed \
         device logs in with its own key, POST /v1/login/device)"
    )]
    NotEnrolled,
    /// A request that must carry an enrolled device's proof (PROTOCOL.md §17) carries none, or
    /// one that does not hold; the message says which.
    #[error("{0}")]
    Proof(String),
    /// Nothing by that name (or nothing this account may see).
    #[error("not found")]
    NotFound,
    /// No such route for this method.
    #[error("this method is not allowed here")]
    MethodNotAllowed,
    /// A JSON body without `Content-Type: application/json`.
    #[error("send the body as JSON with Content-Type: application/json")]
    UnsupportedMediaType,
    /// The request conflicts with what is stored; the message says how.
    #[error("{0}")]
    Conflict(String),
    /// The body is larger than the configured limit.
    #[error("body exceeds the limit of {0} bytes")]
    TooLarge(u64),
    /// The requested byte range is outside the object.
    #[error("range not satisfiable")]
    RangeNotSatisfiable(u64),
    /// Too many attempts; try again later.
    #[error("too many attempts; try again in a minute")]
    RateLimited,
    /// Something failed on the server; details are in its log.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: String,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            Self::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
            Self::NotEnrolled => (StatusCode::FORBIDDEN, "not_enrolled"),
            Self::Proof(_) => (StatusCode::FORBIDDEN, "device_proof"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            Self::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            Self::RangeNotSatisfiable(_) => {
                (StatusCode::RANGE_NOT_SATISFIABLE, "range_not_satisfiable")
            }
            Self::RateLimited => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    /// A bad request with this message.
    pub fn bad(msg: impl std::fmt::Display) -> Self {
        Self::BadRequest(msg.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let mut resp = (
            status,
            Json(Body {
                error: code,
                message: self.to_string(),
            }),
        )
            .into_response();
        if let Self::RangeNotSatisfiable(len) = self
            && let Ok(v) = format!("bytes */{len}").parse()
        {
            resp.headers_mut()
                .insert(axum::http::header::CONTENT_RANGE, v);
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => Self::Conflict(m),
            StoreError::NotFound => Self::NotFound,
            StoreError::Backend(e) => Self::Internal(e),
        }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(e.into())
    }
}
