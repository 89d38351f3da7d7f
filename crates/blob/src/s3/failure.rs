//! Sorting S3 SDK errors into what the blob store port can say about them.

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};

/// What an S3 call's failure means to us, before the store puts it in its own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum S3Failure {
    /// 404 / `NoSuchKey` / `NotFound`: no such object.
    NotFound,
    /// `NoSuchBucket`: the configured bucket does not exist.
    NoSuchBucket,
    /// 416 / `InvalidRange`.
    InvalidRange,
    /// 412 / `PreconditionFailed`: a conditional write found the object.
    PreconditionFailed,
    /// 409 / `ConditionalRequestConflict`: a concurrent conditional write is in flight.
    ConditionalConflict,
    /// Unreachable, timed out, throttled, failing (5xx), or our credentials are refused.
    Unavailable(String),
    /// Anything else.
    Other(String),
}

/// Codes that mean the credentials or the signature are not accepted.
const AUTH_CODES: &[&str] = &[
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "AuthorizationHeaderMalformed",
    "RequestTimeTooSkewed",
];

/// Codes that mean the service is overloaded or failing; retrying later may work.
const TRANSIENT_CODES: &[&str] = &[
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "RequestTimeout",
];

/// Classifies one SDK error.
pub(crate) fn classify<E>(error: &SdkError<E>) -> S3Failure
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let detail = || error_chain(error);
    match error {
        SdkError::TimeoutError(_) => S3Failure::Unavailable("the request timed out".to_owned()),
        SdkError::DispatchFailure(_) => {
            S3Failure::Unavailable(format!("cannot reach the server: {}", detail()))
        }
        SdkError::ResponseError(_) => {
            S3Failure::Unavailable(format!("the response was cut or unreadable: {}", detail()))
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            // The code and message say it all; the full context would dump the raw response.
            let service_detail = || match (error.code(), error.message()) {
                (Some(code), Some(message)) => format!("HTTP {status} {code}: {message}"),
                (Some(code), None) => format!("HTTP {status} {code}"),
                _ => format!("HTTP {status}"),
            };
            classify_service(error.code(), status, service_detail)
        }
        _ => S3Failure::Other(detail()),
    }
}

/// The error and its causes, each once, `: `-separated ("dispatch failure: io error: ...").
fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(current) = cause {
        let line = current.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        cause = current.source();
    }
    text
}

fn classify_service(code: Option<&str>, status: u16, detail: impl Fn() -> String) -> S3Failure {
    match (code, status) {
        (Some("NoSuchBucket"), _) => S3Failure::NoSuchBucket,
        (Some("NoSuchKey" | "NotFound"), _) | (None, 404) => S3Failure::NotFound,
        (Some("InvalidRange"), _) | (_, 416) => S3Failure::InvalidRange,
        (Some("PreconditionFailed"), _) | (_, 412) => S3Failure::PreconditionFailed,
        (Some("ConditionalRequestConflict"), _) => S3Failure::ConditionalConflict,
        (Some(code), _) if AUTH_CODES.contains(&code) => {
            S3Failure::Unavailable(format!("the credentials were refused: {}", detail()))
        }
        (_, 401 | 403) => {
            S3Failure::Unavailable(format!("the credentials were refused: {}", detail()))
        }
        (Some(code), _) if TRANSIENT_CODES.contains(&code) => {
            S3Failure::Unavailable(format!("the server is failing: {}", detail()))
        }
        (_, 500..=599) => S3Failure::Unavailable(format!("the server is failing: {}", detail())),
        (_, 404) => S3Failure::NotFound,
        _ => S3Failure::Other(detail()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_detail() -> String {
        "detail".to_owned()
    }

    #[test]
    fn service_answers_are_sorted_by_code_then_status() {
        assert_eq!(
            classify_service(Some("NoSuchKey"), 404, no_detail),
            S3Failure::NotFound
        );
        assert_eq!(classify_service(None, 404, no_detail), S3Failure::NotFound);
        assert_eq!(
            classify_service(Some("NoSuchBucket"), 404, no_detail),
            S3Failure::NoSuchBucket
        );
        assert_eq!(
            classify_service(None, 416, no_detail),
            S3Failure::InvalidRange
        );
        assert_eq!(
            classify_service(Some("PreconditionFailed"), 412, no_detail),
            S3Failure::PreconditionFailed
        );
        for (code, status) in [
            (Some("SignatureDoesNotMatch"), 403),
            (Some("InvalidAccessKeyId"), 403),
            (None, 403),
            (Some("SlowDown"), 503),
            (None, 502),
        ] {
            assert!(
                matches!(
                    classify_service(code, status, no_detail),
                    S3Failure::Unavailable(_)
                ),
                "{code:?} {status}"
            );
        }
        assert!(matches!(
            classify_service(Some("MalformedXML"), 400, no_detail),
            S3Failure::Other(_)
        ));
    }
}
