//! Every request that changes state needs the admin bearer token.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use livecast_service::ApiError;

use super::ApiState;

/// Proof that the request carries the admin token; rejects with 401 otherwise.
pub struct Admin;

/// Whether the request carries the admin token; never rejects (public reads see less).
pub struct MaybeAdmin(pub bool);

impl FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        state.admin.authorize(parts, "changing streams")?;
        Ok(Admin)
    }
}

impl FromRequestParts<Arc<ApiState>> for MaybeAdmin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(MaybeAdmin(state.admin.presented_by(parts)))
    }
}
