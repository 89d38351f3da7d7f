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

/// Whether doing the same again may succeed, as the code that failed knows it. A consumer of
/// the event bus acts on it: it skips, retries, or retries a few times and then sets aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Retry {
    /// The same request fails the same way: report it and move on.
    Never,
    /// Something it depends on is away: try again, for as long as it takes.
    Later,
    /// Something may be missing for a while (a replica behind, an object not visible yet): try
    /// again up to this many attempts in all, then give up on it.
    Budget(u32),
}

impl ErrorKind {
    /// What a failure of this kind usually means for a retry, when whoever reports it says no
    /// more: a request at fault fails again, a backend that is away may come back.
    pub fn usual_retry(self) -> Retry {
        match self {
            ErrorKind::Unavailable | ErrorKind::Internal => Retry::Later,
            ErrorKind::InvalidArgument
            | ErrorKind::Unauthenticated
            | ErrorKind::PermissionDenied
            | ErrorKind::NotFound
            | ErrorKind::AlreadyExists
            | ErrorKind::Conflict
            | ErrorKind::PayloadTooLarge => Retry::Never,
        }
    }
}

type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// A failure with a kind and a message a person can act on, whether retrying may help, and the
/// error that caused it.
#[derive(Debug, Clone)]
pub struct Error {
    /// What kind of failure this is.
    pub kind: ErrorKind,
    /// What happened, for the client.
    pub message: String,
    /// Whether trying again may succeed.
    pub retry: Retry,
    source: Option<Cause>,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|cause| cause as &(dyn std::error::Error + 'static))
    }
}

/// Two errors are the same failure when kind, message and retry agree; the cause is context.
impl PartialEq for Error {
    fn eq(&self, other: &Self) -> bool {
        (self.kind, &self.message, self.retry) == (other.kind, &other.message, other.retry)
    }
}

impl Eq for Error {}

impl Error {
    /// An error of `kind` with `message`, retried as such failures usually are.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retry: kind.usual_retry(),
            source: None,
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

    /// The same error, caused by `cause`.
    pub fn with_source(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(std::sync::Arc::new(cause));
        self
    }

    /// The same error, retried as `retry` says.
    pub fn with_retry(mut self, retry: Retry) -> Self {
        self.retry = retry;
        self
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

    #[test]
    fn an_error_keeps_its_cause_and_says_whether_to_retry() {
        let io = std::io::Error::other("disk on fire");
        let error = Error::internal("cannot write").with_source(io);
        let cause = std::error::Error::source(&error).expect("a cause");
        assert_eq!(cause.to_string(), "disk on fire");
        assert_eq!(error.retry, Retry::Later);
        assert_eq!(Error::invalid("bad id").retry, Retry::Never);
        let missing = Error::not_found("chunk").with_retry(Retry::Budget(5));
        assert_eq!(missing.retry, Retry::Budget(5));
        assert_ne!(
            missing,
            Error::not_found("chunk"),
            "retry is part of the failure"
        );
    }
}
