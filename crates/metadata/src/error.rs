//! The typed error of the metadata store and its mapping to the platform's one error type.

use livecast_core::{Error, ErrorKind};

/// What a metadata store call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    /// The thing named does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The thing to create exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// A conditional update found another version than the caller expected.
    #[error("stream {id} was changed concurrently: expected version {expected}, found {actual}")]
    VersionConflict {
        /// The stream updated.
        id: String,
        /// The version the caller expected.
        expected: u64,
        /// The version stored.
        actual: u64,
    },
    /// A page token that this store did not produce (or produced for another sort).
    #[error("invalid page token: {0}")]
    InvalidPageToken(String),
    /// An argument the store cannot accept (out-of-range number, bad query).
    #[error("invalid argument: {0}")]
    Invalid(String),
    /// The backend does not answer or refuses work for now; retrying later may work.
    #[error("{backend} metadata store unavailable: {message}")]
    Unavailable {
        /// The backend (`sqlite`, `scylla`).
        backend: &'static str,
        /// What failed.
        message: String,
    },
    /// A stored row that does not map to a record (bad status text, bad id, negative size).
    #[error("corrupt {what} in the metadata store: {message}")]
    Corrupt {
        /// What kind of row (`stream`, `segment`).
        what: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// Anything else: a bug or an unexpected backend answer.
    #[error("metadata store error: {0}")]
    Other(String),
}

impl MetadataError {
    /// The platform error kind this error answers with.
    pub fn kind(&self) -> ErrorKind {
        match self {
            MetadataError::NotFound(_) => ErrorKind::NotFound,
            MetadataError::AlreadyExists(_) => ErrorKind::AlreadyExists,
            MetadataError::VersionConflict { .. } => ErrorKind::Conflict,
            MetadataError::InvalidPageToken(_) | MetadataError::Invalid(_) => {
                ErrorKind::InvalidArgument
            }
            MetadataError::Unavailable { .. } => ErrorKind::Unavailable,
            MetadataError::Corrupt { .. } | MetadataError::Other(_) => ErrorKind::Internal,
        }
    }

    /// An unavailable backend.
    pub(crate) fn unavailable(backend: &'static str, message: impl Into<String>) -> Self {
        MetadataError::Unavailable {
            backend,
            message: message.into(),
        }
    }

    /// A corrupt stored row.
    pub(crate) fn corrupt(what: &'static str, message: impl Into<String>) -> Self {
        MetadataError::Corrupt {
            what,
            message: message.into(),
        }
    }
}

impl From<MetadataError> for Error {
    fn from(error: MetadataError) -> Self {
        Error::new(error.kind(), error.to_string()).with_source(error)
    }
}

/// Converts a record's unsigned number to the signed 64-bit integer both backends store.
pub(crate) fn to_stored(field: &str, value: u64) -> Result<i64, MetadataError> {
    i64::try_from(value)
        .map_err(|_| MetadataError::Invalid(format!("{field} {value} is larger than {}", i64::MAX)))
}

/// Converts a stored signed integer back to the record's unsigned type, rejecting what cannot be.
pub(crate) fn from_stored<T: TryFrom<i64>>(
    what: &'static str,
    field: &str,
    value: i64,
) -> Result<T, MetadataError> {
    T::try_from(value)
        .map_err(|_| MetadataError::corrupt(what, format!("{field} {value} is out of range")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_maps_to_the_platform_kind() {
        let cases = [
            (
                MetadataError::NotFound("stream a".into()),
                ErrorKind::NotFound,
            ),
            (
                MetadataError::AlreadyExists("stream a".into()),
                ErrorKind::AlreadyExists,
            ),
            (
                MetadataError::VersionConflict {
                    id: "a".into(),
                    expected: 1,
                    actual: 2,
                },
                ErrorKind::Conflict,
            ),
            (
                MetadataError::InvalidPageToken("x".into()),
                ErrorKind::InvalidArgument,
            ),
            (
                MetadataError::Invalid("x".into()),
                ErrorKind::InvalidArgument,
            ),
            (
                MetadataError::unavailable("scylla", "down"),
                ErrorKind::Unavailable,
            ),
            (
                MetadataError::corrupt("stream", "bad status"),
                ErrorKind::Internal,
            ),
            (MetadataError::Other("x".into()), ErrorKind::Internal),
        ];
        for (error, kind) in cases {
            let message = error.to_string();
            let platform = Error::from(error);
            assert_eq!(platform.kind, kind);
            assert_eq!(platform.message, message);
        }
    }

    #[test]
    fn unavailable_names_the_backend() {
        let message = MetadataError::unavailable("scylla", "connection refused").to_string();
        assert!(message.starts_with("scylla"), "{message}");
    }

    #[test]
    fn numbers_out_of_range_are_typed_errors() {
        assert_eq!(to_stored("seq", 7).unwrap(), 7);
        assert!(matches!(
            to_stored("seq", u64::MAX),
            Err(MetadataError::Invalid(_))
        ));
        assert_eq!(from_stored::<u32>("segment", "duration_ms", 5).unwrap(), 5);
        assert!(matches!(
            from_stored::<u64>("segment", "size_bytes", -1),
            Err(MetadataError::Corrupt {
                what: "segment",
                ..
            })
        ));
    }
}
