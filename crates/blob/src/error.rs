//! The one error type of the blob store port, and how it maps onto the platform's error kinds.

use std::ops::Range;

use livecast_core::{Error, ErrorKind};

/// What can go wrong when talking to a blob store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlobError {
    /// No object is stored under `key`.
    #[error("blob {key:?} not found")]
    NotFound {
        /// The key that was asked for.
        key: String,
    },
    /// The key (or list prefix) is not acceptable; nothing was read or written.
    #[error("invalid blob key {key:?}: {reason}")]
    InvalidKey {
        /// The key as given, for the message.
        key: String,
        /// Why it was rejected.
        reason: String,
    },
    /// The byte range cannot be served from the object.
    #[error("invalid range {}..{} for blob {key:?}{}", range.start, range.end, size_suffix(*size))]
    InvalidRange {
        /// The key that was read.
        key: String,
        /// The range that was asked for.
        range: Range<u64>,
        /// The object's size, when the backend told it.
        size: Option<u64>,
    },
    /// The backend does not answer or refuses us (network, timeout, credentials, missing bucket,
    /// full disk). The message names the backend so an operator knows where to look.
    #[error("blob store unavailable: {message}")]
    Unavailable {
        /// What failed, naming the backend.
        message: String,
    },
    /// The configuration cannot describe a working store; found when the store is opened.
    #[error("invalid blob store configuration: {message}")]
    InvalidConfig {
        /// What is wrong and which field to fix.
        message: String,
    },
    /// Anything else: an unexpected answer from the backend or the filesystem.
    #[error("blob store error: {message}")]
    Other {
        /// What happened.
        message: String,
    },
}

fn size_suffix(size: Option<u64>) -> String {
    match size {
        Some(size) => format!(" of {size} bytes"),
        None => String::new(),
    }
}

impl BlobError {
    /// A missing object.
    pub fn not_found(key: &str) -> Self {
        BlobError::NotFound {
            key: key.to_owned(),
        }
    }

    /// A rejected key.
    pub fn invalid_key(key: &str, reason: impl Into<String>) -> Self {
        BlobError::InvalidKey {
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    /// A backend that cannot be used right now.
    pub fn unavailable(message: impl Into<String>) -> Self {
        BlobError::Unavailable {
            message: message.into(),
        }
    }

    /// A configuration that cannot work.
    pub fn invalid_config(message: impl Into<String>) -> Self {
        BlobError::InvalidConfig {
            message: message.into(),
        }
    }

    /// An unexpected failure.
    pub fn other(message: impl Into<String>) -> Self {
        BlobError::Other {
            message: message.into(),
        }
    }

    /// The platform error kind this failure answers with.
    pub fn kind(&self) -> ErrorKind {
        match self {
            BlobError::NotFound { .. } => ErrorKind::NotFound,
            BlobError::InvalidKey { .. } | BlobError::InvalidRange { .. } => {
                ErrorKind::InvalidArgument
            }
            BlobError::Unavailable { .. } => ErrorKind::Unavailable,
            BlobError::InvalidConfig { .. } | BlobError::Other { .. } => ErrorKind::Internal,
        }
    }
}

impl From<BlobError> for Error {
    fn from(error: BlobError) -> Self {
        Error::new(error.kind(), error.to_string()).with_source(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_variant_maps_to_the_documented_kind() {
        let cases = [
            (BlobError::not_found("a"), ErrorKind::NotFound),
            (
                BlobError::invalid_key("../a", "no"),
                ErrorKind::InvalidArgument,
            ),
            (
                BlobError::InvalidRange {
                    key: "a".into(),
                    range: 9..10,
                    size: Some(3),
                },
                ErrorKind::InvalidArgument,
            ),
            (BlobError::unavailable("down"), ErrorKind::Unavailable),
            (BlobError::invalid_config("bad"), ErrorKind::Internal),
            (BlobError::other("odd"), ErrorKind::Internal),
        ];
        for (blob_error, kind) in cases {
            let core: Error = blob_error.clone().into();
            assert_eq!(core.kind, kind, "{blob_error}");
            assert_eq!(core.message, blob_error.to_string());
        }
    }

    #[test]
    fn messages_name_the_key_and_size() {
        let error = BlobError::InvalidRange {
            key: "hls/s1/1.m4s".into(),
            range: 10..20,
            size: Some(4),
        };
        assert_eq!(
            error.to_string(),
            "invalid range 10..20 for blob \"hls/s1/1.m4s\" of 4 bytes"
        );
    }
}
