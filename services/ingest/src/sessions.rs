//! Publishing sessions: stream keys become streams, media becomes durable source chunks, and
//! broadcasters that drop and come back continue the same stream.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use livecast_blob::{BlobError, BlobStore};
use livecast_bus::EventBus;
use livecast_core::blob_keys;
use livecast_core::time::now_millis;
use livecast_core::{Error, ErrorKind, EventId, RegionName, StreamId, StreamStatus};
use livecast_proto::{topics, v1};
use prost::Message;
use tokio_util::sync::CancellationToken;

mod away;
mod publisher;
mod timeline;

use publisher::StreamPublisher;
use timeline::{TimelineEnd, TimelineRecord};

use crate::config::IngestSettings;
use crate::directory::{AuthorizedStream, StreamDirectory};
use crate::feed::ChunkFeeds;
use crate::metrics;
use crate::publish::{PublishGate, Publisher};

/// Where each live stream is: which epoch, which next sequence number, who publishes.
#[derive(Debug)]
struct StreamState {
    epoch: u32,
    next_seq: u64,
    publishing: bool,
    /// Where the last chunk ended on the stream timeline: slate, and the next session,
    /// continue from there.
    timeline_end: Option<TimelineEnd>,
    /// The sequence number after the last chunk of media (not slate): where a recording that
    /// really ends, ends.
    media_end_seq: u64,
    /// Fires to cancel the completion timer when the broadcaster comes back in time.
    completion: Option<CancellationToken>,
    /// The latest session's source format, once known.
    format: Option<u64>,
}

/// How long storing one chunk may wait for the blob store to come back.
const STORE_PATIENCE: Duration = Duration::from_secs(30);

/// A stream's chunks and epoch claims as listed in the blob store, which every ingest instance
/// shares.
#[derive(Debug, Default)]
struct StoredProgress {
    last_chunk: Option<(u32, u64)>,
    claimed_epoch: Option<u32>,
    /// Where the timeline stands, slate included, as the last instance recorded it.
    timeline: Option<TimelineRecord>,
}

/// What a publisher got from [`Inner::claim`].
struct Claim {
    epoch: u32,
    /// The sequence number of the publisher's first chunk.
    next_seq: u64,
    /// The stream had an earlier epoch (here or on another instance): a new session.
    discontinuity: bool,
    /// Where the session starts on the stream timeline (none for the stream's first), and
    /// since when the timeline stands there.
    timeline_start: Option<TimelineEnd>,
    /// This process did not know the stream: announce it live.
    announce: bool,
    /// The previous session's source format, if known.
    previous_format: Option<u64>,
    /// A backup input takes the stream over from a publisher still on it.
    takeover: bool,
}

/// The ingest side of publishing: admits broadcasters and turns their chunks into blobs and
/// `SourceChunk` events.
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Inner>,
}

struct Inner {
    directory: Arc<dyn StreamDirectory>,
    blob: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    region: RegionName,
    reconnect_window: Duration,
    /// How much slate one slate chunk carries while the broadcaster is away.
    slate_every: Duration,
    /// A second publisher on a live key takes over (a backup input) instead of being refused.
    takeover: bool,
    streams: Mutex<HashMap<StreamId, StreamState>>,
    /// The chunks being cut, for workers that follow them as they arrive.
    feeds: Arc<ChunkFeeds>,
    /// Where workers reach [`Inner::feeds`] (`SourceChunk.feed_url`); empty: nowhere.
    feed_url: String,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest")
            .field("region", &self.inner.region)
            .finish_non_exhaustive()
    }
}

impl Ingest {
    /// Ingest over these backends.
    pub fn new(
        directory: Arc<dyn StreamDirectory>,
        blob: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        region: RegionName,
        settings: &IngestSettings,
    ) -> Self {
        Ingest {
            inner: Arc::new(Inner {
                directory,
                blob,
                bus,
                region,
                reconnect_window: settings.reconnect_window(),
                slate_every: Duration::from_millis(u64::from(settings.slate_ms.max(1))),
                takeover: settings.backup_inputs,
                streams: Mutex::new(HashMap::new()),
                feeds: Arc::new(ChunkFeeds::default()),
                feed_url: settings.feed_url.clone(),
            }),
        }
    }

    /// The chunks this instance is cutting, for the `ChunkFeed` gRPC service.
    pub fn feeds(&self) -> Arc<ChunkFeeds> {
        self.inner.feeds.clone()
    }
}

#[async_trait::async_trait]
impl PublishGate for Ingest {
    async fn begin(&self, stream_key: &str) -> Result<Box<dyn Publisher>, Error> {
        let stream = match self.inner.directory.authorize(stream_key).await {
            Ok(stream) => stream,
            Err(error) => {
                metrics::rejected(error.kind.as_str());
                return Err(error);
            }
        };
        // The stream may have chunks from earlier connections to other ingest instances (the
        // blob store is shared): continue after them, whatever this process remembers.
        let stored = self.inner.stored_progress(&stream.id).await?;
        let mut claim = self.inner.claim(&stream, &stored)?;
        let Claim {
            epoch, announce, ..
        } = claim;
        let marker = blob_keys::source_epoch_claim(&stream.id, epoch);
        if let Err(error) = self.inner.blob.put(&marker, Bytes::new()).await {
            self.inner.release(stream.clone(), epoch, false);
            return Err(error.into());
        }
        self.inner.catch_up(&stream.id, &mut claim).await;
        if announce {
            self.inner
                .publish_lifecycle(&stream, StreamStatus::StreamActive, epoch, 0)
                .await?;
        }
        metrics::publish_started();
        tracing::info!(stream_id = %stream.id, epoch, "broadcaster publishing");
        Ok(Box::new(StreamPublisher::new(
            self.inner.clone(),
            stream,
            &claim,
        )))
    }
}

impl Inner {
    /// What the blob store says about `id`: the highest (epoch, seq) of its chunks, and the
    /// highest epoch any instance has claimed.
    async fn stored_progress(&self, id: &StreamId) -> Result<StoredProgress, Error> {
        let prefix = blob_keys::source_prefix(id);
        let mut progress = StoredProgress::default();
        for object in self.blob.list(&prefix).await? {
            let Some((epoch, file)) = object.key[prefix.len()..].split_once('/') else {
                continue;
            };
            let Ok(epoch) = epoch.parse::<u32>() else {
                continue;
            };
            progress.claimed_epoch = progress.claimed_epoch.max(Some(epoch));
            if let Some(Ok(seq)) = file.split('.').next().map(str::parse::<u64>) {
                progress.last_chunk = progress.last_chunk.max(Some((epoch, seq)));
            }
        }
        progress.timeline = self.timeline(id).await?;
        Ok(progress)
    }

    /// Takes the stream for one publisher; returns its epoch and whether a discontinuity
    /// precedes its first chunk.
    fn claim(&self, stream: &AuthorizedStream, stored: &StoredProgress) -> Result<Claim, Error> {
        let mut streams = self.streams.lock().expect("streams lock");
        let takeover = streams
            .get(&stream.id)
            .is_some_and(|state| state.publishing);
        let (epoch, next_seq, timeline_end, media_end_seq, format) = match streams.get(&stream.id) {
            Some(state) if state.publishing && self.takeover => {
                // The publisher holding the stream finds out at its next chunk.
                tracing::info!(stream_id = %stream.id, "a backup input takes the stream over");
                metrics::publish_replaced();
                (
                    state.epoch + 1,
                    state.next_seq,
                    state.timeline_end,
                    state.media_end_seq,
                    state.format,
                )
            }
            Some(state) if state.publishing => {
                metrics::rejected("already_live");
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!("stream {} already has a live publisher", stream.id),
                ));
            }
            Some(state) => (
                state.epoch + 1,
                state.next_seq,
                state.timeline_end,
                state.media_end_seq,
                state.format,
            ),
            None => (0, 0, None, 0, None),
        };
        let epoch = epoch.max(stored.claimed_epoch.map_or(0, |epoch| epoch + 1));
        let stored_seq = stored.last_chunk.map_or(0, |(_, seq)| seq + 1);
        let recorded = stored.timeline.filter(|record| record.next_seq >= next_seq);
        let next_seq = next_seq
            .max(stored_seq)
            .max(recorded.map_or(0, |record| record.next_seq));
        // A later session continues the timeline where it stands, here or as another instance
        // recorded it; the stream's first keeps its encoder's timestamps.
        let timeline_start = timeline_end
            .or(recorded.map(|record| record.end))
            .filter(|_| epoch > 0);
        let previous_format = format.or(recorded.and_then(|record| record.format));
        let state = StreamState {
            epoch,
            next_seq,
            publishing: true,
            timeline_end,
            media_end_seq: media_end_seq.max(stored_seq),
            completion: None,
            format: previous_format,
        };
        let previous = streams.insert(stream.id.clone(), state);
        let announce = previous.is_none();
        if let Some(timer) = previous.and_then(|state| state.completion) {
            timer.cancel();
        }
        Ok(Claim {
            epoch,
            next_seq,
            discontinuity: epoch > 0,
            timeline_start,
            announce,
            previous_format,
            takeover,
        })
    }

    /// Whether a publisher (on any ingest instance) claimed the epoch after `epoch`: the
    /// broadcaster came back and the stream goes on there. Then this instance forgets it. One
    /// look-up of the next epoch's claim, since epochs are claimed one after another.
    pub(super) async fn taken_over(&self, id: &StreamId, epoch: u32) -> bool {
        let claim = blob_keys::source_epoch_claim(id, epoch + 1);
        match self.blob.head(&claim).await {
            Ok(Some(_)) => {
                self.forget(id, epoch);
                true
            }
            Ok(None) => false,
            Err(error) => {
                tracing::warn!(stream_id = %id, %error, "cannot check for a later publisher");
                false
            }
        }
    }

    /// Drops the state of `id` if it is still `epoch`, with nobody publishing.
    fn forget(&self, id: &StreamId, epoch: u32) {
        let mut streams = self.streams.lock().expect("streams lock");
        if streams
            .get(id)
            .is_some_and(|state| state.epoch == epoch && !state.publishing)
        {
            streams.remove(id);
        }
    }

    /// Makes a chunk durable, riding out a blob store that is briefly away (a restart, a
    /// failover) for up to [`STORE_PATIENCE`]: meanwhile the broadcaster's connection is not
    /// read, so it waits (TCP backpressure) instead of losing media.
    async fn store(&self, key: &str, bytes: Bytes) -> Result<(), Error> {
        let give_up = tokio::time::Instant::now() + STORE_PATIENCE;
        let mut backoff = Duration::from_millis(200);
        loop {
            match self.blob.put(key, bytes.clone()).await {
                Ok(()) => return Ok(()),
                Err(error @ BlobError::Unavailable { .. })
                    if tokio::time::Instant::now() + backoff < give_up =>
                {
                    tracing::warn!(%key, %error, ?backoff, "blob store unavailable; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// The sequence number of a chunk of `epoch` that ends at `end_ms` on the stream
    /// timeline, in source `format`; Conflict when another publisher (a backup input) took the
    /// stream over.
    fn next_seq(
        &self,
        id: &StreamId,
        epoch: u32,
        end_ms: i64,
        format: Option<u64>,
    ) -> Result<u64, Error> {
        let mut streams = self.streams.lock().expect("streams lock");
        let state = streams
            .get_mut(id)
            .ok_or_else(|| Error::internal(format!("stream {id} has no publishing state")))?;
        if state.epoch != epoch {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!("stream {id} was taken over by another input"),
            ));
        }
        let seq = state.next_seq;
        state.next_seq += 1;
        state.media_end_seq = state.next_seq;
        state.timeline_end = Some(TimelineEnd {
            ms: end_ms,
            at_ms: now_millis(),
        });
        state.format = format.or(state.format);
        Ok(seq)
    }

    async fn publish_lifecycle(
        &self,
        stream: &AuthorizedStream,
        kind: StreamStatus,
        epoch: u32,
        segments: u64,
    ) -> Result<(), Error> {
        let event = v1::StreamEvent {
            event_id: EventId::generate().to_string(),
            stream_id: stream.id.to_string(),
            kind: v1::StreamStatus::from(kind) as i32,
            at: now_millis(),
            region: self.region.to_string(),
            name: stream.name.clone(),
            epoch,
            segments,
        };
        self.bus
            .publish(
                topics::STREAM_EVENTS,
                stream.id.as_str(),
                Bytes::from(event.encode_to_vec()),
            )
            .await
            .map_err(Error::from)
    }

    async fn publish_chunk(&self, chunk: v1::SourceChunk) -> Result<(), Error> {
        let key = chunk.stream_id.clone();
        self.bus
            .publish(topics::CHUNKS, &key, Bytes::from(chunk.encode_to_vec()))
            .await
            .map_err(Error::from)
    }

    pub(super) async fn complete(&self, stream: AuthorizedStream, epoch: u32) {
        if self.taken_over(&stream.id, epoch).await {
            tracing::info!(stream_id = %stream.id, "stream continues on another ingest instance");
            return;
        }
        let (seq, media_end_seq) = {
            let mut streams = self.streams.lock().expect("streams lock");
            match streams.get(&stream.id) {
                Some(state) if state.epoch == epoch && !state.publishing => {
                    let ends = (state.next_seq, state.media_end_seq);
                    streams.remove(&stream.id);
                    ends
                }
                _ => return,
            }
        };
        let end = v1::SourceChunk {
            event_id: EventId::generate().to_string(),
            stream_id: stream.id.to_string(),
            epoch,
            seq,
            end_of_stream: true,
            wall_clock_ms: now_millis(),
            ..Default::default()
        };
        // The recording ends with the broadcaster's last chunk, not with the slate that
        // waited for its return.
        let outcome = async {
            self.publish_chunk(end).await?;
            self.publish_lifecycle(&stream, StreamStatus::StreamComplete, epoch, media_end_seq)
                .await
        }
        .await;
        match outcome {
            Ok(()) => {
                metrics::stream_gone(&stream.id);
                tracing::info!(stream_id = %stream.id, "stream complete");
            }
            Err(error) => {
                tracing::error!(stream_id = %stream.id, %error, "stream completion not announced")
            }
        }
    }
}

#[cfg(test)]
mod tests;
