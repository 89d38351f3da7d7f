//! The JSON shapes of the REST API.

use livecast_core::{Error, StreamRecord, StreamStatus};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use utoipa::ToSchema;

use crate::config::PublicUrls;

/// A stream as viewers and admins see it (never its key).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VideoView {
    /// Stream id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Thumbnail image URL.
    pub thumbnail_url: Option<String>,
    /// Lifecycle state: PENDING, CREATED, STREAM_ACTIVE, STREAM_COMPLETE, ARCHIVED or INACTIVE.
    pub status: String,
    /// Region that ingests the stream.
    pub home_region: String,
    /// Planned start (RFC 3339).
    pub scheduled_start: Option<String>,
    /// When it went live (RFC 3339).
    pub started_at: Option<String>,
    /// When it completed (RFC 3339).
    pub ended_at: Option<String>,
    /// How long it has been (or was) live, in seconds.
    pub duration_seconds: Option<u64>,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
    /// Where to play it (HLS master playlist).
    pub playback_url: String,
}

impl VideoView {
    /// The view of `record`, with URLs from `urls`; `now` sizes the duration of a live stream.
    pub fn of(record: &StreamRecord, urls: &PublicUrls, now: i64) -> Self {
        let duration_seconds = record.started_at.map(|start| {
            let end = record.ended_at.unwrap_or(now);
            u64::try_from((end - start).max(0) / 1000).unwrap_or(0)
        });
        VideoView {
            id: record.id.to_string(),
            name: record.name.clone(),
            description: record.description.clone(),
            thumbnail_url: record.thumbnail_url.clone(),
            status: record.status.as_str().to_string(),
            home_region: record.home_region.to_string(),
            scheduled_start: record.scheduled_start.map(format_time),
            started_at: record.started_at.map(format_time),
            ended_at: record.ended_at.map(format_time),
            duration_seconds,
            created_at: format_time(record.created_at),
            updated_at: format_time(record.updated_at),
            playback_url: urls.playback_url(&record.id),
        }
    }
}

/// A created stream (or one whose key was rotated): the view plus the secret key and the URLs
/// a broadcaster pushes to. The key is shown only here.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedVideoView {
    /// The stream.
    #[serde(flatten)]
    pub video: VideoView,
    /// The secret stream key.
    pub stream_key: String,
    /// `rtmp://HOST/live/{stream_key}` for OBS or ffmpeg.
    pub rtmp_url: String,
    /// The HLS push URL (`ffmpeg -f hls -method PUT ... URL`).
    pub hls_push_url: String,
}

/// A page of streams.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct VideoList {
    /// The streams on this page.
    pub items: Vec<VideoView>,
    /// Pass as `page_token` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}

/// Body of `POST /v1/videos`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateVideo {
    /// Display name (1 to 200 characters).
    pub name: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Thumbnail image URL (http or https).
    pub thumbnail_url: Option<String>,
    /// Planned start (RFC 3339).
    pub scheduled_start: Option<String>,
    /// Region that will ingest it; defaults to the catalogue's region.
    pub region: Option<String>,
}

/// Body of `PUT /v1/videos/{id}`: fields to change.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateVideo {
    /// New display name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New thumbnail URL; `null` clears it.
    #[serde(default, deserialize_with = "present")]
    pub thumbnail_url: Option<Option<String>>,
    /// New planned start (RFC 3339); `null` clears it.
    #[serde(default, deserialize_with = "present")]
    pub scheduled_start: Option<Option<String>>,
}

/// Body of `PUT /v1/videos/{id}/status`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The lifecycle state to move to.
    pub status: String,
}

/// Distinguishes a field that is present with `null` from one that is absent.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Formats milliseconds since the epoch as RFC 3339 (UTC).
pub fn format_time(millis: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(millis) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Reads an RFC 3339 time (or milliseconds since the epoch) given as `field`.
pub fn parse_time(field: &str, text: &str) -> Result<i64, Error> {
    if let Ok(millis) = text.parse::<i64>() {
        return Ok(millis);
    }
    OffsetDateTime::parse(text, &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            Error::invalid(format!(
                "{field} {text:?} is not an RFC 3339 time such as 2026-11-25T18:00:00Z"
            ))
        })
}

/// Reads a `status` filter: proto names or the friendly `live`, `completed`, `upcoming`.
pub fn parse_status_filter(text: &str) -> Result<Vec<StreamStatus>, Error> {
    text.split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| match part.to_ascii_lowercase().as_str() {
            "live" | "active" => Ok(StreamStatus::StreamActive),
            "completed" | "complete" | "ended" => Ok(StreamStatus::StreamComplete),
            "upcoming" | "scheduled" => Ok(StreamStatus::Created),
            _ => part.parse(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_through_rfc3339() {
        let millis = 1_795_000_000_123;
        let text = format_time(millis);
        assert!(text.ends_with('Z'), "{text}");
        assert_eq!(parse_time("from", &text).unwrap(), millis);
        assert_eq!(parse_time("from", "42").unwrap(), 42);
        let error = parse_time("from", "yesterday").unwrap_err();
        assert!(
            error.message.contains("from \"yesterday\""),
            "{}",
            error.message
        );
    }

    #[test]
    fn status_filters_accept_friendly_and_proto_names() {
        assert_eq!(
            parse_status_filter("live, completed,ARCHIVED").unwrap(),
            vec![
                StreamStatus::StreamActive,
                StreamStatus::StreamComplete,
                StreamStatus::Archived
            ]
        );
        assert!(parse_status_filter("sideways").is_err());
    }
}
