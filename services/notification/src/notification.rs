//! What a client is told: a lifecycle event turned into a notification with a cursor.

use livecast_core::{Error, EventId, StreamId, StreamStatus};
use livecast_proto::v1;
use serde::Serialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The kinds of notification, named as clients see them in `type` and the SSE `event:` field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NotificationKind {
    /// The stream went live (`STREAM_ACTIVE`).
    #[serde(rename = "stream.live")]
    Live,
    /// The broadcast ended; the stream is watchable as VOD (`STREAM_COMPLETE`).
    #[serde(rename = "stream.completed")]
    Completed,
    /// The stream was archived (`ARCHIVED`).
    #[serde(rename = "stream.archived")]
    Archived,
}

impl NotificationKind {
    /// The notification a lifecycle state produces, if any.
    pub fn for_status(status: StreamStatus) -> Option<Self> {
        match status {
            StreamStatus::StreamActive => Some(NotificationKind::Live),
            StreamStatus::StreamComplete => Some(NotificationKind::Completed),
            StreamStatus::Archived => Some(NotificationKind::Archived),
            StreamStatus::Pending | StreamStatus::Created | StreamStatus::Inactive => None,
        }
    }

    /// The name clients see.
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Live => "stream.live",
            NotificationKind::Completed => "stream.completed",
            NotificationKind::Archived => "stream.archived",
        }
    }

    /// The kind named `name` (as stored).
    pub fn parse(name: &str) -> Option<Self> {
        [
            NotificationKind::Live,
            NotificationKind::Completed,
            NotificationKind::Archived,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == name)
    }
}

/// A lifecycle event worth telling clients about, before it has a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChange {
    /// What happened.
    pub kind: NotificationKind,
    /// The originating event; duplicates carry the same id.
    pub event_id: EventId,
    /// The stream it happened to.
    pub stream_id: StreamId,
    /// The stream's display name.
    pub name: String,
    /// When it happened, milliseconds since the Unix epoch.
    pub at_ms: i64,
}

impl StreamChange {
    /// The change `event` describes; `Ok(None)` for lifecycle states nobody is notified of. A
    /// malformed event is `InvalidArgument` (retrying it cannot help).
    pub fn from_event(event: &v1::StreamEvent) -> Result<Option<Self>, Error> {
        let status = livecast_proto::convert::status_from_wire(event.kind)?;
        let Some(kind) = NotificationKind::for_status(status) else {
            return Ok(None);
        };
        Ok(Some(StreamChange {
            kind,
            event_id: EventId::parse(event.event_id.clone())?,
            stream_id: StreamId::parse(event.stream_id.clone())?,
            name: event.name.clone(),
            at_ms: if event.at > 0 {
                event.at
            } else {
                livecast_core::time::now_millis()
            },
        }))
    }
}

/// One notification as SSE, polling and webhooks carry it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// The cursor: increases with every notification this instance records.
    pub id: u64,
    /// What happened.
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    /// The originating event id, for subscribers to deduplicate by.
    pub event_id: String,
    /// The stream.
    pub stream_id: String,
    /// The stream's display name.
    pub name: String,
    /// Where viewers play the stream.
    pub playback_url: String,
    /// When it happened (RFC 3339, UTC).
    pub at: String,
}

impl Notification {
    /// The JSON body of this notification.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|error| {
            // Every field is a string or a number: serialising cannot fail.
            tracing::error!(%error, "notification serialisation failed");
            String::from("{}")
        })
    }
}

/// Milliseconds since the epoch as RFC 3339 (UTC, millisecond precision).
pub fn rfc3339(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|at| at.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: v1::StreamStatus) -> v1::StreamEvent {
        v1::StreamEvent {
            event_id: "e1".into(),
            stream_id: "s1".into(),
            kind: kind as i32,
            at: 1_700_000_000_123,
            region: "local".into(),
            name: "Launch".into(),
            epoch: 0,
            segments: 0,
        }
    }

    #[test]
    fn only_live_completed_and_archived_notify() {
        let live = StreamChange::from_event(&event(v1::StreamStatus::StreamActive))
            .unwrap()
            .unwrap();
        assert_eq!(live.kind, NotificationKind::Live);
        assert_eq!(live.name, "Launch");
        for (status, kind) in [
            (
                v1::StreamStatus::StreamComplete,
                NotificationKind::Completed,
            ),
            (v1::StreamStatus::Archived, NotificationKind::Archived),
        ] {
            let change = StreamChange::from_event(&event(status)).unwrap().unwrap();
            assert_eq!(change.kind, kind);
            assert_eq!(NotificationKind::parse(kind.as_str()), Some(kind));
        }
        for status in [
            v1::StreamStatus::Pending,
            v1::StreamStatus::Created,
            v1::StreamStatus::Inactive,
        ] {
            assert_eq!(StreamChange::from_event(&event(status)).unwrap(), None);
        }
    }

    #[test]
    fn malformed_events_are_invalid() {
        let mut bad_id = event(v1::StreamStatus::StreamActive);
        bad_id.stream_id = "../x".into();
        let error = StreamChange::from_event(&bad_id).unwrap_err();
        assert_eq!(error.kind, livecast_core::ErrorKind::InvalidArgument);
        let mut bad_kind = event(v1::StreamStatus::StreamActive);
        bad_kind.kind = 99;
        assert!(StreamChange::from_event(&bad_kind).is_err());
        let mut no_event_id = event(v1::StreamStatus::StreamActive);
        no_event_id.event_id.clear();
        assert!(StreamChange::from_event(&no_event_id).is_err());
    }

    #[test]
    fn json_uses_the_public_field_names() {
        let notification = Notification {
            id: 7,
            kind: NotificationKind::Live,
            event_id: "e1".into(),
            stream_id: "s1".into(),
            name: "Launch".into(),
            playback_url: "http://edge/stream/s1/master.m3u8".into(),
            at: rfc3339(1_700_000_000_123),
        };
        let value: serde_json::Value = serde_json::from_str(&notification.to_json()).unwrap();
        assert_eq!(value["id"], 7);
        assert_eq!(value["type"], "stream.live");
        assert_eq!(value["event_id"], "e1");
        assert_eq!(value["at"], "2023-11-14T22:13:20.123Z");
    }
}
