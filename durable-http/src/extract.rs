//! Extractors whose rejections are JSON errors (axum's own answer in plain text).

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The query string, deserialized; a 400 JSON error if it does not fit.
pub struct Q<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Q<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Query::<T>::try_from_uri(&parts.uri)
            .map(|Query(t)| Q(t))
            .map_err(|r| ApiError::bad_request("BadQuery", r.body_text()))
    }
}

/// Path parameters; a 400 JSON error if they do not decode.
pub struct P<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for P<T> {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(t)| P(t))
            .map_err(|r| ApiError::bad_request("BadPath", r.body_text()))
    }
}

/// A JSON request body: an empty body is `null`; bad JSON is a 400, a body over the limit a 413.
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;
    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PayloadTooLarge",
                    "the request body is over the limit of this API (`HttpConfig::with_max_body_bytes`); send a reference (a key or URL) instead of the data",
                )
            } else {
                ApiError::bad_request("BadBody", format!("the request body could not be read: {}", r.body_text()))
            }
        })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Parse a request body: empty (or only whitespace) is `null`.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("BadJson", format!("the request body is not valid JSON: {e}")))
}
