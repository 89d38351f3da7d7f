//! The owner of a stream's durable chunks: for each `SourceChunk` of its partitions, commit it
//! once a live encoder (here or on another worker) announced it, or transcode it from the blob
//! store off the reactor, write the CMAF segments and announce them; then keep the stream
//! encoded live from the next chunk on.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_blob::{BlobError, BlobStore};
use livecast_bus::EventBus;
use livecast_core::{Error, EventId, RegionName, Retry, StreamId, blob_keys};
use livecast_media::{
    ChunkMedia, EncodedRendition, Ladder, MediaError, SourceChunkInput, StreamTranscoder,
    TranscodeOptions,
};
use livecast_proto::v1;
use tokio_util::sync::CancellationToken;

use crate::live::{LiveSettings, LiveStreams, MadeLive, NextChunk};
use crate::members::Members;
use crate::metrics;
use crate::output::Output;
use crate::transcoders::Transcoders;

/// Attempts at a chunk whose source is missing from the blob store (a replica behind, a store
/// hiccup) before it is set aside and slated: about 25 s with the consume loop's backoff.
const SOURCE_ATTEMPTS: u32 = 8;
/// Attempts at a chunk the transcoder fails on for reasons of its own.
const TRANSCODE_ATTEMPTS: u32 = 5;

/// What became of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkOutcome {
    /// Every rendition was written and announced.
    Encoded,
    /// The chunk cannot be decoded: it was reported, and slate stands in for its time range
    /// (once the stream has shown a picture or sound to match).
    BadInput,
    /// A slate chunk (the broadcaster is away): slate was written and announced.
    Slated,
    /// The stream ended; its encoder state was released.
    EndOfStream,
    /// A broadcaster session opened: its first chunk is followed live (Low-Latency HLS), or
    /// made from the store once it is announced.
    SessionOpened,
}

/// Transcodes chunks; shared by every consumer task of the process.
pub struct EncodeWorker {
    output: Arc<Output>,
    transcoders: Arc<Transcoders>,
    live: Arc<LiveStreams>,
    members: Arc<Members>,
    options: TranscodeOptions,
    /// This worker process, as claims and heartbeats name it.
    id: String,
    stopping: CancellationToken,
}

impl EncodeWorker {
    /// A worker writing to `blob` and announcing on `bus`, without a standby for its live
    /// streams.
    pub fn new(
        blob: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        region: RegionName,
        ladder: Ladder,
        options: TranscodeOptions,
    ) -> Result<Self, Error> {
        ladder
            .validate()
            .map_err(|e| Error::invalid(format!("invalid ladder: {e}")).with_source(e))?;
        let id = EventId::generate().to_string();
        let output = Arc::new(Output {
            blob,
            bus,
            region,
            backup: None,
        });
        let transcoders = Arc::new(Transcoders::new(ladder, options.clone()));
        let settings = LiveSettings {
            standby: false,
            lease: std::time::Duration::from_millis(400),
            group: crate::GROUP.to_string(),
        };
        let members = Arc::new(Members::new(id.clone(), settings.group.clone()));
        let stopping = CancellationToken::new();
        let live = Arc::new(LiveStreams::new(
            id.clone(),
            output.clone(),
            transcoders.clone(),
            members.clone(),
            settings,
            stopping.clone(),
        ));
        Ok(EncodeWorker {
            output,
            transcoders,
            live,
            members,
            options,
            id,
            stopping,
        })
    }

    /// Copies every segment to `backup` (another region's blob store) once it is announced.
    pub fn with_backup(mut self, backup: Arc<dyn BlobStore>) -> Self {
        let mut output = Output::clone(&self.output);
        output.backup = Some(backup);
        self.output = Arc::new(output);
        let settings = self.live.settings().clone();
        self.with_live(settings)
    }

    /// Encodes live streams as `settings` say (with a standby from its group, for how long a
    /// lease).
    pub(crate) fn with_live(mut self, settings: LiveSettings) -> Self {
        self.members = Arc::new(Members::new(self.id.clone(), settings.group.clone()));
        self.live = Arc::new(LiveStreams::new(
            self.id.clone(),
            self.output.clone(),
            self.transcoders.clone(),
            self.members.clone(),
            settings,
            self.stopping.clone(),
        ));
        self
    }

    /// This worker's id.
    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    /// The workers it hears from.
    pub(crate) fn members(&self) -> &Arc<Members> {
        &self.members
    }

    /// Its live streams.
    pub(crate) fn live(&self) -> &Arc<LiveStreams> {
        &self.live
    }

    /// Stops its live encoders (a standby of each takes over).
    pub fn stop(&self) {
        self.stopping.cancel();
    }

    /// Handles one `SourceChunk`. Errors say whether the chunk is retried; a chunk that can
    /// never decode is reported as [`ChunkOutcome::BadInput`].
    pub async fn handle(&self, chunk: &v1::SourceChunk) -> Result<ChunkOutcome, Error> {
        let stream = StreamId::parse(chunk.stream_id.clone())?;
        tracing::debug!(stream_id = %stream, seq = chunk.seq, epoch = chunk.epoch,
            slate = chunk.slate, end_of_stream = chunk.end_of_stream, "source chunk");
        if chunk.opening {
            if self.options.low_delay && !chunk.feed_url.is_empty() {
                let first = NextChunk {
                    epoch: chunk.epoch,
                    seq: chunk.seq,
                    feed_url: chunk.feed_url.clone(),
                };
                self.live.start_primary(&stream, first);
            }
            metrics::chunk("session_opened");
            return Ok(ChunkOutcome::SessionOpened);
        }
        if !chunk.end_of_stream && !chunk.slate {
            match self.live.made_live(&stream, chunk).await? {
                MadeLive::Announced => {
                    metrics::chunk("encoded");
                    return Ok(ChunkOutcome::Encoded);
                }
                // A live encoder began it and is gone: it is made here, and the claim taken
                // so that a late one cannot announce it as well.
                MadeLive::NotMade { claimed: true } => {
                    self.output.take_claim(&stream, chunk.seq, &self.id).await?;
                }
                MadeLive::NotMade { claimed: false } => {}
            }
        }
        let outcome = self.handle_stored(&stream, chunk, None).await?;
        if outcome != ChunkOutcome::EndOfStream
            && self.options.low_delay
            && !chunk.feed_url.is_empty()
        {
            let next = NextChunk {
                epoch: chunk.epoch,
                seq: chunk.seq + 1,
                feed_url: chunk.feed_url.clone(),
            };
            self.live.start_primary(&stream, next);
        }
        Ok(outcome)
    }

    /// A chunk that kept failing within its retry budget (`error`): slate takes its place, so
    /// the stream's timeline goes on.
    pub async fn give_up(&self, chunk: &v1::SourceChunk, error: &Error) {
        metrics::chunk("set_aside");
        let Ok(stream) = StreamId::parse(chunk.stream_id.clone()) else {
            return;
        };
        let reason = format!("source chunk {} was set aside: {error}", chunk.seq);
        if let Err(slate_error) = self.handle_stored(&stream, chunk, Some(reason)).await {
            tracing::warn!(stream_id = %stream, seq = chunk.seq, error = %slate_error,
                "no slate for a chunk set aside");
        }
    }

    /// Transcodes a chunk read from the blob store (or makes slate for it, or for a chunk set
    /// aside for `set_aside`) and announces it.
    async fn handle_stored(
        &self,
        stream: &StreamId,
        chunk: &v1::SourceChunk,
        set_aside: Option<String>,
    ) -> Result<ChunkOutcome, Error> {
        if chunk.end_of_stream {
            self.transcoders.remove(stream);
            metrics::chunk("end_of_stream");
            return Ok(ChunkOutcome::EndOfStream);
        }
        if chunk.discontinuity {
            // A reconnect may change the source's codecs or size: start from scratch.
            self.transcoders.remove(stream);
        }
        let transcoder = self.transcoders.for_next_chunk(stream, true)?;
        let (pts_ms, duration_ms, seq) = (chunk.pts_ms, chunk.duration_ms, chunk.seq);
        let slate = |reason: String, outcome| {
            let transcoder = transcoder.clone();
            async move {
                let slate = off_reactor(transcoder, move |t| t.slate(pts_ms, duration_ms))
                    .await?
                    .map_err(media_error)?;
                Ok::<_, Error>((slate, outcome, reason))
            }
        };
        // Made from the store, a chunk is behind real time by how much longer than itself its
        // transcoding took (not its reading or publishing: a backend away is not a lack of CPU).
        let mut transcoding = Duration::ZERO;
        let (renditions, outcome, reason) = if let Some(reason) = set_aside {
            slate(reason, ChunkOutcome::Slated).await?
        } else if chunk.slate {
            self.known_epoch(stream, chunk).await?;
            slate("the broadcaster sent nothing".into(), ChunkOutcome::Slated).await?
        } else {
            let media = self.source(stream, chunk).await?;
            let started = Instant::now();
            let transcoded = off_reactor(transcoder.clone(), move |t| {
                t.transcode(&SourceChunkInput {
                    media: ChunkMedia::Bytes(&media),
                    seq,
                    pts_ms,
                    duration_ms,
                })
            })
            .await?;
            transcoding = started.elapsed();
            metrics::transcode_seconds(transcoding.as_secs_f64());
            match transcoded {
                Ok(renditions) => (renditions, ChunkOutcome::Encoded, String::new()),
                Err(error) if error.is_bad_input() => {
                    tracing::warn!(stream_id = %stream, seq, %error, "source chunk cannot be decoded; slate stands in for it");
                    let reason = format!("source chunk {seq} cannot be decoded: {error}");
                    slate(reason, ChunkOutcome::BadInput).await?
                }
                Err(error) => return Err(media_error(error)),
            }
        };
        metrics::chunk(match outcome {
            ChunkOutcome::Encoded => "encoded",
            ChunkOutcome::BadInput => "bad_input",
            _ => "slate",
        });
        // A new broadcaster session continues the stream's timeline (ingest rebased it): a
        // discontinuity only where the format changed; renditions the new source does not
        // reach are left out (as gaps) from now on, so their players take another.
        let mut chunk = chunk.clone();
        if chunk.discontinuity {
            let not_made: Vec<String> = self
                .transcoders
                .ladder_rungs()
                .into_iter()
                .filter(|rung| !renditions.iter().any(|r| &r.name == rung))
                .collect();
            let change = self
                .output
                .format_change(stream, &renditions, &not_made)
                .await?;
            chunk.discontinuity = change.changed;
            transcoder
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .also_left_out(change.absent);
        }
        // The renditions left out of it: top rungs shed as the worker falls behind real time,
        // and those the source does not reach any more.
        let shed = transcoder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .left_out(&renditions);
        // Made whole at once: no part of it was announced.
        let renditions = renditions.into_iter().map(|r| (r, 0)).collect();
        self.output
            .segments(stream, &chunk, renditions, &reason)
            .await?;
        self.output.gaps(stream, &chunk, &shed).await?;
        let lag = transcoding.saturating_sub(Duration::from_millis(u64::from(duration_ms)));
        self.transcoders.chunk_made(stream, seq, lag);
        Ok(outcome)
    }
}

impl EncodeWorker {
    /// The chunk's bytes. Missing bytes of a stream this store holds source of are a gap that
    /// may close (a replica behind, a store hiccup): retried within a budget, then set aside
    /// and slated. A chunk of a stream this store never saw is another store's: skipped.
    /// Slate is made only for a broadcast this blob store holds (an ingest instance claimed
    /// the chunk's epoch in it): a chunk of another region's or a long-gone stream is set
    /// aside at once rather than encoded for nobody.
    async fn known_epoch(&self, stream: &StreamId, chunk: &v1::SourceChunk) -> Result<(), Error> {
        let claim = blob_keys::source_epoch_claim(stream, chunk.epoch);
        match self.output.blob.head(&claim).await? {
            Some(_) => Ok(()),
            None => Err(Error::not_found(format!(
                "slate chunk {} of stream {stream}: no broadcast epoch {} in the blob store",
                chunk.seq, chunk.epoch
            ))
            .with_retry(Retry::Never)),
        }
    }

    async fn source(&self, stream: &StreamId, chunk: &v1::SourceChunk) -> Result<Bytes, Error> {
        let blob = &self.output.blob;
        match blob.get(&chunk.blob_key).await {
            Ok(media) => Ok(media),
            Err(error @ BlobError::NotFound { .. }) => {
                let epoch = blob_keys::source_epoch_claim(stream, chunk.epoch);
                let retry = match blob.head(&epoch).await? {
                    Some(_) => Retry::Budget(SOURCE_ATTEMPTS),
                    None => Retry::Never,
                };
                Err(Error::from(error).with_retry(retry))
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// Runs transcoder work on the blocking pool. The outer error is the task failing; the inner
/// one is the transcoder's, kept as it is so that bad input can be told from our own failures.
async fn off_reactor(
    transcoder: Arc<std::sync::Mutex<StreamTranscoder>>,
    work: impl FnOnce(&mut StreamTranscoder) -> Result<Vec<EncodedRendition>, MediaError>
    + Send
    + 'static,
) -> Result<Result<Vec<EncodedRendition>, MediaError>, Error> {
    tokio::task::spawn_blocking(move || {
        let mut transcoder = transcoder.lock().unwrap_or_else(|p| p.into_inner());
        work(&mut transcoder)
    })
    .await
    .map_err(|e| Error::internal(format!("transcode task failed: {e}")).with_source(e))
}

/// A transcoder failure that is not the broadcaster's: ours (a configuration the transcoder
/// refuses, FFmpeg failing on well-formed input, a temporary file). Retried a few times, then
/// the chunk is set aside.
fn media_error(error: MediaError) -> Error {
    Error::internal(format!("transcoding failed: {error}"))
        .with_retry(Retry::Budget(TRANSCODE_ATTEMPTS))
        .with_source(error)
}
