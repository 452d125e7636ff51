//! The JSON error every failed request gets: `{"error": "...", "code": "..."}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use durable_runtime::Error;
use serde_json::{Value, json};

/// An error answered as `{"error": message, "code": code, ...extra}` with an HTTP status.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code (`InstanceNotFound`, `BadJson`, …).
    pub code: &'static str,
    /// What was wrong, for people.
    pub message: String,
    /// More fields for the body (e.g. the known orchestrator names).
    pub extra: Option<(&'static str, Value)>,
}

impl ApiError {
    /// An error with this status, code and message.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), extra: None }
    }
    /// 400 Bad Request.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    /// 404 Not Found.
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
    /// Add a field to the body.
    pub fn with(mut self, key: &'static str, value: Value) -> Self {
        self.extra = Some((key, value));
        self
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let message = e.to_string();
        let (status, code) = match &e {
            Error::InvalidInstanceId { .. } => (StatusCode::BAD_REQUEST, "InvalidInstanceId"),
            Error::Payload(_) => (StatusCode::BAD_REQUEST, "BadPayload"),
            Error::PayloadTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLarge"),
            Error::InstanceAlreadyExists(_) => (StatusCode::CONFLICT, "InstanceAlreadyExists"),
            Error::InstanceNotFound(_) => (StatusCode::NOT_FOUND, "InstanceNotFound"),
            Error::InvalidSchedule { .. } => (StatusCode::BAD_REQUEST, "InvalidSchedule"),
            Error::ScheduleAlreadyExists(_) => (StatusCode::CONFLICT, "ScheduleAlreadyExists"),
            Error::ScheduleNotFound(_) => (StatusCode::NOT_FOUND, "ScheduleNotFound"),
            Error::UnknownOrchestrator { .. } => (StatusCode::NOT_FOUND, "UnknownOrchestrator"),
            Error::InvalidState { .. } => (StatusCode::CONFLICT, "InvalidState"),
            Error::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "BadQuery"),
            Error::NoOutput { .. } => (StatusCode::CONFLICT, "NoOutput"),
            Error::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "Timeout"),
            Error::Shutdown => (StatusCode::SERVICE_UNAVAILABLE, "Shutdown"),
            Error::Backend(_) | Error::LockLost(_) => (StatusCode::SERVICE_UNAVAILABLE, "BackendUnavailable"),
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Internal"),
        };
        Self::new(status, code, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message, "code": self.code });
        if let Some((k, v)) = self.extra {
            body[k] = v;
        }
        let mut resp = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}
