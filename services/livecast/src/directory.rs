//! Ingest and the edge ask the catalogue in the same process, without gRPC.

use livecast_catalogue::Catalogue;
use livecast_core::{Error, RenditionName, RenditionRecord, SegmentRecord, StreamId};
use livecast_ingest::{AuthorizedStream, StreamDirectory};
use livecast_streaming_edge::directory::{PlaybackDirectory, PlaybackStream};

/// The catalogue as ingest's stream directory.
pub struct InProcessDirectory(pub Catalogue);

#[async_trait::async_trait]
impl StreamDirectory for InProcessDirectory {
    async fn authorize(&self, key: &str) -> Result<AuthorizedStream, Error> {
        let record = self.0.check_stream_key(key).await?;
        Ok(AuthorizedStream {
            id: record.id,
            name: record.name,
            status: record.status,
        })
    }
}

/// The catalogue as the edge's playback directory.
pub struct InProcessPlayback(pub Catalogue);

#[async_trait::async_trait]
impl PlaybackDirectory for InProcessPlayback {
    async fn stream(&self, id: &StreamId) -> Result<PlaybackStream, Error> {
        let record = self.0.get(id).await?;
        Ok(PlaybackStream {
            id: record.id,
            status: record.status,
            home_region: record.home_region.to_string(),
        })
    }

    async fn renditions(&self, id: &StreamId) -> Result<Vec<RenditionRecord>, Error> {
        self.0.list_renditions(id).await
    }

    async fn segments(
        &self,
        id: &StreamId,
        rendition: &RenditionName,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>, Error> {
        self.0.list_segments(id, rendition, from_seq, limit).await
    }
}
