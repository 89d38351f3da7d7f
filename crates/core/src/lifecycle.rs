//! The lifecycle of a stream, with only the legal transitions.
//!
//! ```text
//! PENDING --> CREATED --> STREAM_ACTIVE --> STREAM_COMPLETE --> ARCHIVED
//!    |           |             |                  ^   |            |
//!    |           +-------------|------------------|---|------------+--> (back to STREAM_COMPLETE)
//!    +-----------+-------------+------------------+---+--> INACTIVE (taken down; terminal)
//! ```
//!
//! PENDING is a stream whose key is not issued yet; CREATED is ready to receive a push;
//! STREAM_ACTIVE is live; STREAM_COMPLETE is over and playable as VOD; ARCHIVED is hidden from
//! viewers (it can be restored to STREAM_COMPLETE); INACTIVE is taken down for good.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::Error;

/// Where a stream is in its life. The names are the proto's lifecycle names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StreamStatus {
    /// Known but not ready to receive a push.
    Pending,
    /// Ready to receive a push.
    Created,
    /// A broadcaster is live.
    StreamActive,
    /// The broadcast is over; it plays as VOD.
    StreamComplete,
    /// Hidden from viewers.
    Archived,
    /// Taken down; nothing can bring it back.
    Inactive,
}

impl StreamStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [StreamStatus; 6] = [
        StreamStatus::Pending,
        StreamStatus::Created,
        StreamStatus::StreamActive,
        StreamStatus::StreamComplete,
        StreamStatus::Archived,
        StreamStatus::Inactive,
    ];

    /// The proto name (`STREAM_ACTIVE`).
    pub fn as_str(self) -> &'static str {
        match self {
            StreamStatus::Pending => "PENDING",
            StreamStatus::Created => "CREATED",
            StreamStatus::StreamActive => "STREAM_ACTIVE",
            StreamStatus::StreamComplete => "STREAM_COMPLETE",
            StreamStatus::Archived => "ARCHIVED",
            StreamStatus::Inactive => "INACTIVE",
        }
    }

    /// Whether the lifecycle allows going from `self` to `to` (staying put is not a transition).
    pub fn can_transition_to(self, to: StreamStatus) -> bool {
        use StreamStatus::*;
        matches!(
            (self, to),
            (Pending, Created)
                | (
                    Pending | Created | StreamActive | StreamComplete | Archived,
                    Inactive
                )
                | (Created, StreamActive)
                | (Created, Archived)
                | (StreamActive, StreamComplete)
                | (StreamComplete, Archived)
                | (Archived, StreamComplete)
        )
    }

    /// The new status, or a conflict error naming both ends of the refused transition.
    pub fn transition(self, to: StreamStatus) -> Result<StreamStatus, Error> {
        if self.can_transition_to(to) {
            Ok(to)
        } else {
            Err(Error::conflict(format!(
                "a stream cannot go from {} to {}",
                self.as_str(),
                to.as_str()
            )))
        }
    }

    /// Whether viewers can see the stream in public lists and play it.
    pub fn is_public(self) -> bool {
        matches!(
            self,
            StreamStatus::Created | StreamStatus::StreamActive | StreamStatus::StreamComplete
        )
    }
}

impl fmt::Display for StreamStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for StreamStatus {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        StreamStatus::ALL
            .into_iter()
            .find(|status| status.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown status {s:?}; expected one of PENDING, CREATED, STREAM_ACTIVE, \
                     STREAM_COMPLETE, ARCHIVED, INACTIVE"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use StreamStatus::*;

    #[test]
    fn a_broadcast_goes_live_completes_and_is_archived() {
        let mut status = Pending;
        for next in [
            Created,
            StreamActive,
            StreamComplete,
            Archived,
            StreamComplete,
            Inactive,
        ] {
            status = status.transition(next).unwrap();
        }
        assert_eq!(status, Inactive);
    }

    #[test]
    fn illegal_transitions_are_conflicts_not_panics() {
        for from in StreamStatus::ALL {
            for to in StreamStatus::ALL {
                let result = from.transition(to);
                assert_eq!(result.is_ok(), from.can_transition_to(to));
                if let Err(e) = result {
                    assert_eq!(e.kind, crate::ErrorKind::Conflict);
                    assert!(e.message.contains(from.as_str()) && e.message.contains(to.as_str()));
                }
            }
        }
        assert!(StreamComplete.transition(StreamActive).is_err());
        assert!(Inactive.transition(Created).is_err());
        assert!(StreamActive.transition(StreamActive).is_err());
    }

    #[test]
    fn names_round_trip() {
        for status in StreamStatus::ALL {
            assert_eq!(status.as_str().parse::<StreamStatus>().unwrap(), status);
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert!("LIVE-ish".parse::<StreamStatus>().is_err());
    }
}
