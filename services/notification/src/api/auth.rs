//! The admin bearer token: webhook administration needs it.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use livecast_core::{Error, ErrorKind};
use livecast_service::{ApiError, Secret};
use sha2::{Digest, Sha256};

use super::ApiState;

/// The admin token, kept as a hash so comparisons take the same time whatever the input.
/// `None` when no token is configured: webhook administration is then refused.
#[derive(Debug, Clone)]
pub struct AdminToken {
    hash: Option<[u8; 32]>,
}

impl AdminToken {
    /// Wraps the configured token, if any.
    pub fn new(token: Option<&Secret>) -> Self {
        AdminToken {
            hash: token.map(|token| hash(token.expose())),
        }
    }

    /// Whether `presented` is the admin token.
    fn matches(&self, presented: &str) -> bool {
        self.hash
            .is_some_and(|expected| constant_time_eq(&hash(presented), &expected))
    }
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two byte strings in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Proof that the request carries the admin token; rejects with 401 otherwise (403 when this
/// instance has no admin token at all).
pub struct Admin;

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
        if state.admin.hash.is_none() {
            return Err(ApiError(Error::new(
                ErrorKind::PermissionDenied,
                "webhook administration is disabled: this instance has no admin token \
                 (set LIVECAST_ADMIN_TOKEN or LIVECAST_ADMIN_TOKEN_FILE)",
            )));
        }
        match bearer(parts) {
            Some(token) if state.admin.matches(token) => Ok(Admin),
            Some(_) => Err(ApiError(Error::new(
                ErrorKind::Unauthenticated,
                "the admin bearer token is not valid",
            ))),
            None => Err(ApiError(Error::new(
                ErrorKind::Unauthenticated,
                "webhook administration needs 'Authorization: Bearer <admin token>'",
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_configured_token_matches() {
        let admin = AdminToken::new(Some(&Secret::new("token")));
        assert!(admin.matches("token"));
        assert!(!admin.matches("tokem"));
        assert!(!admin.matches(""));
        let none = AdminToken::new(None);
        assert!(!none.matches("token"));
        assert!(!none.matches(""));
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"a", b"ab"));
    }
}
