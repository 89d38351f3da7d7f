//! The JSON error every HTTP API answers: `{ "error": { "code", "message" } }` with the status
//! that the error kind maps to.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use livecast_core::{Error, ErrorKind};
use serde_json::json;

/// A domain error on its way to an HTTP client.
#[derive(Debug)]
pub struct ApiError(pub Error);

impl<E: Into<Error>> From<E> for ApiError {
    fn from(error: E) -> Self {
        ApiError(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.0.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.0.kind == ErrorKind::Internal || self.0.kind == ErrorKind::Unavailable {
            tracing::error!(error = %self.0, "request failed");
        }
        let body = json!({ "error": { "code": self.0.kind.as_str(), "message": self.0.message } });
        (status, Json(body)).into_response()
    }
}
