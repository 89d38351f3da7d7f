//! The admin bearer token: every request that changes state needs it.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use livecast_core::{Error, ErrorKind};
use livecast_service::{ApiError, Secret};

use super::ApiState;
use crate::keys::{constant_time_eq, hash_secret};

/// The admin token, kept as a hash so comparisons take the same time whatever the input.
#[derive(Debug, Clone)]
pub struct AdminToken {
    hash: String,
}

impl AdminToken {
    /// Wraps the configured token.
    pub fn new(token: &Secret) -> Self {
        AdminToken {
            hash: hash_secret(token.expose()),
        }
    }

    /// Whether `presented` is the admin token.
    pub fn matches(&self, presented: &str) -> bool {
        constant_time_eq(hash_secret(presented).as_bytes(), self.hash.as_bytes())
    }
}

/// Proof that the request carries the admin token; rejects with 401 otherwise.
pub struct Admin;

/// Whether the request carries the admin token; never rejects (public reads see less).
pub struct MaybeAdmin(pub bool);

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

impl FromRequestParts<Arc<ApiState>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        match bearer(parts) {
            Some(token) if state.admin.matches(token) => Ok(Admin),
            Some(_) => Err(ApiError(Error::new(
                ErrorKind::Unauthenticated,
                "the admin bearer token is not valid",
            ))),
            None => Err(ApiError(Error::new(
                ErrorKind::Unauthenticated,
                "this request changes state and needs 'Authorization: Bearer <admin token>'",
            ))),
        }
    }
}

impl FromRequestParts<Arc<ApiState>> for MaybeAdmin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<ApiState>,
    ) -> Result<Self, Self::Rejection> {
        Ok(MaybeAdmin(
            bearer(parts).is_some_and(|token| state.admin.matches(token)),
        ))
    }
}
