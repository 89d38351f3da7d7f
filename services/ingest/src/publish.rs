//! The seam between the protocols (RTMP, HLS push) and what ingest does with media: whatever a
//! broadcaster sends becomes a sequence of self-contained source chunks handed to a
//! [`Publisher`], which makes each durable and announces it.

use bytes::Bytes;
use livecast_core::Error;
use livecast_core::blob_keys::SourceExt;

/// One self-contained piece of a broadcast: it starts on a keyframe and decodes alone.
#[derive(Debug, Clone)]
pub struct MediaChunk {
    /// The container bytes (FLV for RTMP, the pushed TS or fMP4 for HLS).
    pub bytes: Bytes,
    /// What container `bytes` is.
    pub container: SourceExt,
    /// Presentation time of the first frame, milliseconds on the broadcaster's timeline.
    pub pts_ms: i64,
    /// Duration in milliseconds.
    pub duration_ms: u32,
}

/// The chunk being cut, so far: a prefix of the [`MediaChunk`] it becomes.
#[derive(Debug, Clone, Copy)]
pub struct ChunkSoFar<'a> {
    /// Its bytes so far.
    pub bytes: &'a [u8],
    /// Presentation time of its first frame, as [`MediaChunk::pts_ms`].
    pub pts_ms: i64,
    /// When its first frame arrived, milliseconds since the Unix epoch.
    pub arrived_ms: i64,
    /// A fingerprint of the source's decoder configurations, where the protocol knows them
    /// (RTMP's sequence headers): a session that starts with its predecessor's continues the
    /// same renditions.
    pub format: Option<u64>,
}

/// How a broadcaster left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Departure {
    /// It said so: RTMP unpublish, an HLS push playlist with `#EXT-X-ENDLIST`.
    Finished,
    /// It vanished: connection lost or silent past the timeout.
    Dropped,
}

/// Admits broadcasters: checks the stream key and opens a publishing session.
#[async_trait::async_trait]
pub trait PublishGate: Send + Sync + 'static {
    /// A session for `stream_key`, or an error the protocol reports to the broadcaster
    /// (PermissionDenied for a wrong or revoked key, Conflict when the key is already live).
    async fn begin(&self, stream_key: &str) -> Result<Box<dyn Publisher>, Error>;
}

/// One broadcaster's publishing session.
#[async_trait::async_trait]
pub trait Publisher: Send {
    /// Makes `chunk` durable and announces it; chunks are numbered in call order.
    async fn chunk(&mut self, chunk: MediaChunk) -> Result<(), Error>;
    /// The next chunk as it grows, for those who follow it before it is cut (protocols that
    /// receive media frame by frame call this after each one).
    fn growing(&mut self, _so_far: ChunkSoFar<'_>) {}
    /// The broadcaster is gone. The stream stays live for the reconnect window, then
    /// completes; after a drop, slate fills the time until the broadcaster is back.
    async fn end(self: Box<Self>, departure: Departure);
}
