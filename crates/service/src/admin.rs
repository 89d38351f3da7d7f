//! The admin bearer token: kept as a SHA-256 hash and compared in constant time.

use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use livecast_core::{Error, ErrorKind, Secret};
use sha2::{Digest, Sha256};

use crate::ApiError;

/// The admin token of a service; `None` when none is configured (admin actions are refused).
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
    pub fn matches(&self, presented: &str) -> bool {
        self.hash
            .is_some_and(|expected| constant_time_eq(&hash(presented), &expected))
    }

    /// Whether the request carries the admin token.
    pub fn presented_by(&self, parts: &Parts) -> bool {
        bearer(parts).is_some_and(|token| self.matches(token))
    }

    /// Ok when the request carries the admin token; otherwise 401 with a message saying what
    /// `action` needs (403 when this service has no admin token at all).
    pub fn authorize(&self, parts: &Parts, action: &str) -> Result<(), ApiError> {
        if self.hash.is_none() {
            return Err(ApiError(Error::new(
                ErrorKind::PermissionDenied,
                format!(
                    "{action} is disabled: this service has no admin token \
                     (set LIVECAST_ADMIN_TOKEN or LIVECAST_ADMIN_TOKEN_FILE)"
                ),
            )));
        }
        match bearer(parts) {
            Some(token) if self.matches(token) => Ok(()),
            Some(_) => Err(ApiError(Error::new(
                ErrorKind::Unauthenticated,
                "the admin bearer token is not valid",
            ))),
            None => Err(ApiError(Error::new(
                ErrorKind::Unauthenticated,
                format!("{action} needs 'Authorization: Bearer <admin token>'"),
            ))),
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Compares two byte strings in time that depends only on their lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(header: Option<&str>) -> Parts {
        let mut request = Request::get("/");
        if let Some(value) = header {
            request = request.header(AUTHORIZATION, value);
        }
        request.body(()).unwrap().into_parts().0
    }

    #[test]
    fn only_the_configured_token_is_admitted() {
        let admin = AdminToken::new(Some(&Secret::new("token")));
        assert!(admin.authorize(&parts(Some("Bearer token")), "x").is_ok());
        assert!(admin.presented_by(&parts(Some("Bearer token"))));
        let wrong = admin
            .authorize(&parts(Some("Bearer tokem")), "x")
            .unwrap_err();
        assert_eq!(wrong.0.kind, ErrorKind::Unauthenticated);
        let missing = admin
            .authorize(&parts(None), "creating a stream")
            .unwrap_err();
        assert!(missing.0.message.contains("creating a stream"));
        let none = AdminToken::new(None);
        assert!(!none.matches(""));
        let refused = none
            .authorize(&parts(Some("Bearer token")), "x")
            .unwrap_err();
        assert_eq!(refused.0.kind, ErrorKind::PermissionDenied);
        assert!(constant_time_eq(b"", b"") && !constant_time_eq(b"a", b"ab"));
    }
}
