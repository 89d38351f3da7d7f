//! Where the edge learns about a stream it has not seen: the catalogue, in process or over gRPC.

use livecast_core::{Error, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamStatus};

/// What the edge needs to know about a stream before it can serve it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlaybackStream {
    /// The stream.
    pub id: StreamId,
    /// Its lifecycle state (STREAM_COMPLETE means the playlists get `EXT-X-ENDLIST`).
    pub status: StreamStatus,
    /// The region that ingests it (where its segments are first written).
    pub home_region: String,
}

/// The catalogue as seen by the edge.
#[async_trait::async_trait]
pub trait PlaybackDirectory: Send + Sync + 'static {
    /// One stream; NotFound if unknown.
    async fn stream(&self, id: &StreamId) -> Result<PlaybackStream, Error>;
    /// What each rendition of the stream is, as encoded.
    async fn renditions(&self, id: &StreamId) -> Result<Vec<RenditionRecord>, Error>;
    /// Segments of a rendition from `from_seq`, ascending, at most `limit`.
    async fn segments(
        &self,
        id: &StreamId,
        rendition: &RenditionName,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>, Error>;
}
