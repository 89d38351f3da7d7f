//! The one error type of the event bus and how it maps onto [`livecast_core::Error`].

use livecast_core::{Error, ErrorKind};

/// What went wrong on the event bus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusError {
    /// The brokers did not answer (or answered that they cannot serve the request now).
    #[error("event bus unavailable: brokers {brokers}: {reason}")]
    Unavailable {
        /// The bootstrap brokers that were tried, as configured.
        brokers: String,
        /// What the client reported.
        reason: String,
    },
    /// The topic has not been created (see [`crate::EventBus::ensure_topic`]).
    #[error("topic {topic} does not exist")]
    UnknownTopic {
        /// The topic that was named.
        topic: String,
    },
    /// The partition of a message being committed now belongs to another member of the group;
    /// the message will be delivered to that member.
    #[error("partition {partition} of topic {topic} is no longer assigned to this member")]
    Revoked {
        /// The topic of the message.
        topic: String,
        /// The partition that moved.
        partition: i32,
    },
    /// A topic name, group name or partition count that cannot be used.
    #[error("invalid event bus request: {0}")]
    InvalidArgument(String),
    /// The subscription has stopped and will deliver nothing more.
    #[error("subscription closed: {0}")]
    Closed(String),
    /// Anything else the backend reported.
    #[error("event bus error: {0}")]
    Other(String),
}

/// Bus failures are never the fault of whoever sent the request that led to them (services
/// choose topics and groups), so only two kinds come out: `Unavailable` when retrying later can
/// work, `Internal` when the deployment or the code is wrong.
impl From<BusError> for Error {
    fn from(error: BusError) -> Self {
        let kind = match &error {
            BusError::Unavailable { .. } | BusError::Revoked { .. } | BusError::Closed(_) => {
                ErrorKind::Unavailable
            }
            BusError::UnknownTopic { .. } | BusError::InvalidArgument(_) | BusError::Other(_) => {
                ErrorKind::Internal
            }
        };
        Error::new(kind, error.to_string()).with_source(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unavailable_names_the_brokers_and_maps_to_503() {
        let error = BusError::Unavailable {
            brokers: "kafka-1:9092,kafka-2:9092".into(),
            reason: "timed out".into(),
        };
        assert!(error.to_string().contains("kafka-1:9092,kafka-2:9092"));
        let core: Error = error.into();
        assert_eq!(core.kind, ErrorKind::Unavailable);
        assert_eq!(core.kind.http_status(), 503);
        assert!(core.message.contains("kafka-1:9092"));
    }

    #[test]
    fn deployment_mistakes_map_to_internal() {
        let core: Error = BusError::UnknownTopic {
            topic: "livecast.chunks".into(),
        }
        .into();
        assert_eq!(core.kind, ErrorKind::Internal);
        assert!(core.message.contains("livecast.chunks"));
        let core: Error = BusError::InvalidArgument("bad".into()).into();
        assert_eq!(core.kind, ErrorKind::Internal);
    }

    #[test]
    fn transient_states_map_to_unavailable() {
        for error in [
            BusError::Closed("shutting down".into()),
            BusError::Revoked {
                topic: "t".into(),
                partition: 1,
            },
        ] {
            assert_eq!(Error::from(error).kind, ErrorKind::Unavailable);
        }
    }
}
