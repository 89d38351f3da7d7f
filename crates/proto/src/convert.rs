//! Conversions between the wire types and the domain core.

use livecast_core::{Error, ErrorKind, StreamStatus};

use crate::v1;

impl From<StreamStatus> for v1::StreamStatus {
    fn from(status: StreamStatus) -> Self {
        match status {
            StreamStatus::Pending => v1::StreamStatus::Pending,
            StreamStatus::Created => v1::StreamStatus::Created,
            StreamStatus::StreamActive => v1::StreamStatus::StreamActive,
            StreamStatus::StreamComplete => v1::StreamStatus::StreamComplete,
            StreamStatus::Archived => v1::StreamStatus::Archived,
            StreamStatus::Inactive => v1::StreamStatus::Inactive,
        }
    }
}

impl TryFrom<v1::StreamStatus> for StreamStatus {
    type Error = Error;

    fn try_from(status: v1::StreamStatus) -> Result<Self, Error> {
        Ok(match status {
            v1::StreamStatus::Unspecified => {
                return Err(Error::invalid("stream status is not set"));
            }
            v1::StreamStatus::Pending => StreamStatus::Pending,
            v1::StreamStatus::Created => StreamStatus::Created,
            v1::StreamStatus::StreamActive => StreamStatus::StreamActive,
            v1::StreamStatus::StreamComplete => StreamStatus::StreamComplete,
            v1::StreamStatus::Archived => StreamStatus::Archived,
            v1::StreamStatus::Inactive => StreamStatus::Inactive,
        })
    }
}

/// Reads a status from its wire number (unknown numbers are invalid, not a panic).
pub fn status_from_wire(value: i32) -> Result<StreamStatus, Error> {
    let status = v1::StreamStatus::try_from(value)
        .map_err(|_| Error::invalid(format!("unknown stream status number {value}")))?;
    StreamStatus::try_from(status)
}

/// The gRPC status that carries a domain error.
pub fn to_status(error: Error) -> tonic::Status {
    tonic::Status::new(
        tonic::Code::from(error.kind.grpc_code() as i32),
        error.message,
    )
}

/// The domain error that a gRPC status carries.
pub fn from_status(status: &tonic::Status) -> Error {
    Error::new(
        ErrorKind::from_grpc_code(status.code() as i32),
        status.message().to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_errors_survive_the_wire() {
        for status in StreamStatus::ALL {
            let wire = v1::StreamStatus::from(status) as i32;
            assert_eq!(status_from_wire(wire).unwrap(), status);
        }
        assert!(status_from_wire(0).is_err());
        assert!(status_from_wire(99).is_err());
        let error = Error::conflict("a stream cannot go from ARCHIVED to CREATED");
        let status = to_status(error.clone());
        assert_eq!(status.code(), tonic::Code::FailedPrecondition);
        assert_eq!(from_status(&status), error);
    }
}
