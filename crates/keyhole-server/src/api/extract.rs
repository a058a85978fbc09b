//! Request extractors whose refusals are API errors (`{"error", "message"}` JSON, as every other
//! failure), not axum's plain-text rejections.

use axum::body::Bytes;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::ApiError;

/// The most a buffered request body may hold (`max_record_bytes`): JSON bodies and records
/// alike. Bodies past it are refused as they arrive (or at once, by their `Content-Length`),
/// never held whole; footage is streamed, with its own limit.
pub(super) fn body_limit(state: &AppState) -> usize {
    state.config.max_record_bytes
}

/// A record's bytes (a roster, a log entry, an enrollment step), at most [`body_limit`].
pub(super) struct RecordBody(pub Bytes);

impl FromRequest<AppState> for RecordBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        Bytes::from_request(req, state)
            .await
            .map(Self)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::TooLarge(body_limit(state) as u64)
                } else {
                    ApiError::bad(e.body_text())
                }
            })
    }
}

/// A JSON request body: always an object (serde would also take a struct's fields from an
/// array, in order, which no client means to send).
pub(super) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, ApiError> {
        let value = match axum::Json::<serde_json::Value>::from_request(req, state).await {
            Ok(axum::Json(value)) => value,
            Err(JsonRejection::MissingJsonContentType(_)) => {
                return Err(ApiError::UnsupportedMediaType);
            }
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(ApiError::TooLarge(body_limit(state) as u64));
            }
            Err(e) => return Err(ApiError::bad(e.body_text())),
        };
        if !value.is_object() {
            return Err(ApiError::bad("the body must be a JSON object"));
        }
        serde_json::from_value(value)
            .map(Self)
            .map_err(|e| ApiError::bad(format!("the JSON body does not fit: {e}")))
    }
}

/// Query parameters.
pub(super) struct QueryParams<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Self(value))
            .map_err(|e: QueryRejection| ApiError::bad(e.body_text()))
    }
}
