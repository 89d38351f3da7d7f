//! One broadcaster's publishing session: its chunks made durable and announced on the stream
//! timeline, followed live while they are cut.
//!
//! A session that continues the stream in the same source format (the broadcaster back with
//! the same settings, or the stream's first session) announces its first chunk as soon as it
//! opens, so that workers follow it live as they follow every later one: viewers at the live
//! edge, holding about a second and a half, get the broadcaster's picture right after the
//! slate instead of waiting for a whole chunk to be cut and made from the store.

use std::sync::Arc;

use livecast_core::time::now_millis;
use livecast_core::{Error, EventId, blob_keys};
use livecast_proto::v1;
use tokio::task::JoinHandle;

use super::timeline::{Rebase, TimelineEnd, TimelineRecord};
use super::{Claim, Inner};
use crate::directory::AuthorizedStream;
use crate::feed::LiveChunk;
use crate::metrics;
use crate::publish::{ChunkSoFar, Departure, MediaChunk, Publisher};

/// One broadcaster's session.
pub(super) struct StreamPublisher {
    inner: Arc<Inner>,
    stream: AuthorizedStream,
    epoch: u32,
    /// A discontinuity precedes the first chunk (a new session whose format may differ).
    discontinuity: bool,
    /// This session's timestamps onto the stream timeline.
    rebase: Rebase,
    uplink: Uplink,
    /// The chunk being cut, as followers see it.
    live: Option<LiveChunk>,
    /// The previous session's source format, if known.
    previous_format: Option<u64>,
    /// This session's source format, once known.
    format: Option<u64>,
    /// The announcement that the first chunk can be followed, while it is being published:
    /// the chunk's own announcement waits for it.
    opening: Option<JoinHandle<()>>,
}

impl StreamPublisher {
    pub(super) fn new(inner: Arc<Inner>, stream: AuthorizedStream, claim: &Claim) -> Self {
        let live = inner.feeds.open(&stream.id, claim.epoch, claim.next_seq);
        StreamPublisher {
            inner,
            stream,
            epoch: claim.epoch,
            discontinuity: claim.discontinuity,
            rebase: Rebase::starting_at(claim.timeline_start.map(|start| start.ms)),
            uplink: Uplink::new(),
            live: Some(live),
            previous_format: claim.previous_format,
            format: None,
            opening: None,
        }
    }

    /// The session's source format is known (at its first frame): when it continues the
    /// stream's, no discontinuity precedes the first chunk, and workers are told to follow it.
    fn format_known(&mut self, format: u64, pts_ms: i64) {
        self.format = Some(format);
        if self.discontinuity && self.previous_format != Some(format) {
            tracing::info!(stream_id = %self.stream.id, epoch = self.epoch,
                "the broadcaster is back in another format: a discontinuity precedes it");
            return;
        }
        self.discontinuity = false;
        let Some(live) = &self.live else { return };
        if self.inner.feed_url.is_empty() {
            return;
        }
        let opening = v1::SourceChunk {
            event_id: EventId::generate().to_string(),
            stream_id: self.stream.id.to_string(),
            epoch: self.epoch,
            seq: live.seq(),
            pts_ms,
            wall_clock_ms: now_millis(),
            feed_url: self.inner.feed_url.clone(),
            opening: true,
            ..Default::default()
        };
        let inner = self.inner.clone();
        self.opening = Some(tokio::spawn(async move {
            if let Err(error) = inner.publish_chunk(opening).await {
                tracing::warn!(%error, "the session's opening was not announced");
            }
        }));
    }
}

/// What the broadcaster's uplink delivers: media time against wall time.
struct Uplink {
    began: std::time::Instant,
    media_ms: u64,
}

impl Uplink {
    fn new() -> Self {
        Uplink {
            began: std::time::Instant::now(),
            media_ms: 0,
        }
    }

    /// Records a chunk; returns its bitrate and the session's real-time ratio (x1000): media
    /// received over wall time since the publish began, about 1000 for a healthy live uplink.
    fn record(&mut self, bytes: u64, duration_ms: u32) -> (u32, u32) {
        self.media_ms += u64::from(duration_ms);
        let bitrate = (bytes * 8 * 1000)
            .checked_div(u64::from(duration_ms))
            .unwrap_or(0);
        let wall_ms = (self.began.elapsed().as_millis() as u64).max(1);
        let ratio = self.media_ms * 1000 / wall_ms;
        (
            u32::try_from(bitrate).unwrap_or(u32::MAX),
            u32::try_from(ratio).unwrap_or(u32::MAX),
        )
    }
}

#[async_trait::async_trait]
impl Publisher for StreamPublisher {
    async fn chunk(&mut self, mut chunk: MediaChunk) -> Result<(), Error> {
        chunk.pts_ms = self.rebase.map(chunk.pts_ms);
        let end_ms = chunk.pts_ms + i64::from(chunk.duration_ms);
        let seq = self
            .inner
            .next_seq(&self.stream.id, self.epoch, end_ms, self.format)?;
        let live = self.live.take().filter(|live| live.seq() == seq);
        if let Some(live) = &live {
            live.cut(&chunk.bytes, chunk.pts_ms, chunk.duration_ms);
        }
        let key = blob_keys::source_chunk(&self.stream.id, self.epoch, seq, chunk.container);
        let size = chunk.bytes.len() as u64;
        let (input_bitrate, realtime_ratio_milli) = self.uplink.record(size, chunk.duration_ms);
        self.inner.store(&key, chunk.bytes).await?;
        let wall_clock_ms = live.as_ref().and_then(LiveChunk::wall_clock_ms);
        let event = v1::SourceChunk {
            event_id: EventId::generate().to_string(),
            stream_id: self.stream.id.to_string(),
            epoch: self.epoch,
            seq,
            blob_key: key,
            pts_ms: chunk.pts_ms,
            duration_ms: chunk.duration_ms,
            discontinuity: std::mem::take(&mut self.discontinuity),
            container: chunk.container.as_str().to_string(),
            wall_clock_ms: wall_clock_ms
                .unwrap_or_else(|| now_millis() - i64::from(chunk.duration_ms)),
            size_bytes: size,
            end_of_stream: false,
            input_bitrate,
            realtime_ratio_milli,
            slate: false,
            feed_url: self.inner.feed_url.clone(),
            opening: false,
        };
        if let Some(live) = live {
            live.stored(event.clone());
        }
        // Workers learn that the session opened before they learn of its first chunk.
        if let Some(opening) = self.opening.take() {
            let _ = opening.await;
        }
        // The next chunk's feed opens before this one is announced: a worker follows it as
        // soon as it has this one.
        self.live = Some(self.inner.feeds.open(&self.stream.id, self.epoch, seq + 1));
        // Where the timeline stands is recorded alongside the announcement, not ahead of it
        // (nor of telling the chunk's followers it is stored): it is for a later session.
        let record = TimelineRecord {
            next_seq: seq + 1,
            end: TimelineEnd {
                ms: end_ms,
                at_ms: now_millis(),
            },
            format: self.format,
        };
        let (published, ()) = tokio::join!(
            self.inner.publish_chunk(event),
            self.inner.record_timeline(&self.stream.id, record)
        );
        published?;
        metrics::chunk_stored(size);
        metrics::uplink(&self.stream.id, input_bitrate, realtime_ratio_milli);
        Ok(())
    }

    fn growing(&mut self, so_far: ChunkSoFar) {
        let pts_ms = self.rebase.map(so_far.pts_ms);
        if let (None, Some(format)) = (self.format, so_far.format) {
            self.format_known(format, pts_ms);
        }
        if let Some(live) = &self.live {
            live.extend(so_far.bytes, pts_ms, so_far.arrived_ms);
        }
    }

    async fn end(mut self: Box<Self>, departure: Departure) {
        // Followers of the chunk that will not be cut learn it now.
        self.live = None;
        tracing::info!(stream_id = %self.stream.id, epoch = self.epoch, ?departure, "broadcaster left");
        // Slate bridges the absence either way: a broadcaster that stopped may start again
        // inside the window (OBS "stop", then "start"); a recording that really ends does not
        // end with it.
        self.inner.release(self.stream.clone(), self.epoch, true);
    }
}
