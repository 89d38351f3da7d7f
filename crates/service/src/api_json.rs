//! A JSON body extractor whose rejections use the API's error shape.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::json;

/// Like `axum::Json`, but a bad body answers `{ "error": { "code", "message" } }` with the
/// status axum chose (400 syntax, 415 content type, 422 wrong fields, 413 too large).
pub struct ApiJson<T>(pub T);

/// A rejected body.
pub struct BodyRejection(JsonRejection);

impl IntoResponse for BodyRejection {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let code = match status.as_u16() {
            413 => "payload_too_large",
            415 => "unsupported_media_type",
            422 => "invalid_body",
            _ => "invalid_argument",
        };
        let body = json!({ "error": { "code": code, "message": self.0.body_text() } });
        (status, Json(body)).into_response()
    }
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = BodyRejection;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Json::<T>::from_request(request, state)
            .await
            .map(|Json(value)| ApiJson(value))
            .map_err(BodyRejection)
    }
}
