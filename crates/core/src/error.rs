//! One error type for the whole platform. Each kind maps to an HTTP status and a gRPC code, so a
//! service answers the same failure the same way on both transports.

use std::fmt;

/// What went wrong, in terms a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request is malformed or names something that cannot exist (bad id, bad field).
    InvalidArgument,
    /// No credentials, or credentials that do not match.
    Unauthenticated,
    /// Credentials are valid but do not allow this action.
    PermissionDenied,
    /// The thing asked for does not exist.
    NotFound,
    /// The thing to create exists already.
    AlreadyExists,
    /// The request is valid but not in the current state (an illegal lifecycle transition).
    Conflict,
    /// The request body or an uploaded object is larger than allowed.
    PayloadTooLarge,
    /// A backend this request needs does not answer; retrying later may work.
    Unavailable,
    /// A bug or an unexpected backend answer.
    Internal,
}

/// gRPC status codes (numbering from the gRPC specification), kept here so the core does not
/// depend on a gRPC library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
pub enum GrpcCode {
    /// `INVALID_ARGUMENT`
    InvalidArgument = 3,
    /// `NOT_FOUND`
    NotFound = 5,
    /// `ALREADY_EXISTS`
    AlreadyExists = 6,
    /// `PERMISSION_DENIED`
    PermissionDenied = 7,
    /// `RESOURCE_EXHAUSTED`
    ResourceExhausted = 8,
    /// `FAILED_PRECONDITION`
    FailedPrecondition = 9,
    /// `INTERNAL`
    Internal = 13,
    /// `UNAVAILABLE`
    Unavailable = 14,
    /// `UNAUTHENTICATED`
    Unauthenticated = 16,
}

impl ErrorKind {
    /// The HTTP status that answers this kind of failure.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::InvalidArgument => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::PermissionDenied => 403,
            ErrorKind::NotFound => 404,
            ErrorKind::AlreadyExists | ErrorKind::Conflict => 409,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The gRPC code that answers this kind of failure.
    pub fn grpc_code(self) -> GrpcCode {
        match self {
            ErrorKind::InvalidArgument => GrpcCode::InvalidArgument,
            ErrorKind::Unauthenticated => GrpcCode::Unauthenticated,
            ErrorKind::PermissionDenied => GrpcCode::PermissionDenied,
            ErrorKind::NotFound => GrpcCode::NotFound,
            ErrorKind::AlreadyExists => GrpcCode::AlreadyExists,
            ErrorKind::Conflict => GrpcCode::FailedPrecondition,
            ErrorKind::PayloadTooLarge => GrpcCode::ResourceExhausted,
            ErrorKind::Unavailable => GrpcCode::Unavailable,
            ErrorKind::Internal => GrpcCode::Internal,
        }
    }

    /// A stable snake_case code for JSON error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::PayloadTooLarge => "payload_too_large",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// Maps a gRPC code back to a kind, so a client of another service keeps the meaning.
    pub fn from_grpc_code(code: i32) -> ErrorKind {
        match code {
            3 | 11 => ErrorKind::InvalidArgument,
            5 => ErrorKind::NotFound,
            6 => ErrorKind::AlreadyExists,
            7 => ErrorKind::PermissionDenied,
            8 => ErrorKind::PayloadTooLarge,
            9 | 10 => ErrorKind::Conflict,
            14 | 4 => ErrorKind::Unavailable,
            16 => ErrorKind::Unauthenticated,
            _ => ErrorKind::Internal,
        }
    }
}

/// A failure with a kind and a message a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Error {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// What happened, for the client.
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl Error {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
        }
    }

    /// A malformed request.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    /// Something that does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::NotFound, message)
    }

    /// A valid request that the current state forbids.
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Conflict, message)
    }

    /// A backend that does not answer.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Unavailable, message)
    }

    /// An unexpected failure.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Internal, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_a_status_and_code_that_round_trips() {
        let kinds = [
            ErrorKind::InvalidArgument,
            ErrorKind::Unauthenticated,
            ErrorKind::PermissionDenied,
            ErrorKind::NotFound,
            ErrorKind::AlreadyExists,
            ErrorKind::Conflict,
            ErrorKind::PayloadTooLarge,
            ErrorKind::Unavailable,
            ErrorKind::Internal,
        ];
        for kind in kinds {
            assert_eq!(ErrorKind::from_grpc_code(kind.grpc_code() as i32), kind);
            let status = kind.http_status();
            assert!((400..600).contains(&status));
        }
        assert_eq!(ErrorKind::Conflict.http_status(), 409);
        assert_eq!(
            ErrorKind::InvalidArgument.grpc_code(),
            GrpcCode::InvalidArgument
        );
    }
}
