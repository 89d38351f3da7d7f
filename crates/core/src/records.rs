//! The records the metadata store keeps.

use serde::{Deserialize, Serialize};

use crate::{RegionName, RenditionName, StreamId, StreamStatus};

/// A stream as the catalogue knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// Its id.
    pub id: StreamId,
    /// A display name.
    pub name: String,
    /// A longer description.
    pub description: String,
    /// Where a thumbnail image is, if anywhere.
    pub thumbnail_url: Option<String>,
    /// When the broadcast is planned to start (ms since epoch).
    pub scheduled_start: Option<i64>,
    /// The region that ingests it.
    pub home_region: RegionName,
    /// Where it is in its lifecycle.
    pub status: StreamStatus,
    /// A hash of the secret stream key (the key itself is never stored).
    pub stream_key_hash: String,
    /// When the record was created (ms since epoch).
    pub created_at: i64,
    /// When it last changed (ms since epoch).
    pub updated_at: i64,
    /// When it first went live.
    pub started_at: Option<i64>,
    /// When it completed.
    pub ended_at: Option<i64>,
    /// Bumped on every change; updates are conditional on it.
    pub version: u64,
}

/// One media segment of one rendition, durable in blob storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentRecord {
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// The rendition it belongs to.
    pub rendition: RenditionName,
    /// Its sequence number, continuous per rendition.
    pub seq: u64,
    /// Its duration in milliseconds.
    pub duration_ms: u32,
    /// Whether a discontinuity precedes it (reconnect, encoder change).
    pub discontinuity: bool,
    /// The wall-clock time of its first frame (ms since epoch), for `EXT-X-PROGRAM-DATE-TIME`.
    pub program_date_time: i64,
    /// Its size in bytes; 0 for a gap (see [`SegmentRecord::is_gap`]).
    pub size_bytes: u64,
}

impl SegmentRecord {
    /// Whether the segment is a gap: a top rung the worker, short of CPU, left out of this
    /// chunk to keep the lower rungs live. It has no bytes; playlists list it with `EXT-X-GAP`.
    pub fn is_gap(&self) -> bool {
        self.size_bytes == 0
    }
}

/// One rung of a stream's ladder, as actually encoded (the master playlist is built from it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenditionRecord {
    /// The stream it belongs to.
    pub stream_id: StreamId,
    /// Its name (`720p`, `audio`).
    pub name: RenditionName,
    /// Picture width in pixels (0 for audio-only).
    pub width: u32,
    /// Picture height in pixels (0 for audio-only).
    pub height: u32,
    /// Peak bits per second.
    pub bandwidth: u32,
    /// Average bits per second.
    pub average_bandwidth: u32,
    /// RFC 6381 codecs string (`avc1.64001f,mp4a.40.2`).
    pub codecs: String,
    /// Frames per second times 1000 (0 for audio-only).
    pub frame_rate_milli: u32,
    /// Whether it carries audio only.
    pub audio_only: bool,
}
