//! Webhook administration needs the admin bearer token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use livecast_service::ApiError;

use super::ApiState;

/// Proof that the request carries the admin token; rejects with 401 otherwise (403 when this
/// instance has no admin token at all).
pub struct Admin;

impl FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        state.admin.authorize(parts, "webhook administration")?;
        Ok(Admin)
    }
}
