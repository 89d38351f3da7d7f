//! Turning one source chunk into every rendition of the ladder: read it from the blob store,
//! transcode it off the reactor, write the CMAF segments, announce them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use livecast_blob::BlobStore;
use livecast_bus::EventBus;
use livecast_core::{Error, ErrorKind, EventId, RegionName, StreamId};
use livecast_media::{
    ChunkMedia, EncodedRendition, Ladder, MediaError, SourceChunkInput, StreamTranscoder,
    TranscodeOptions,
};
use livecast_proto::v1;

use crate::live::{FollowRequest, LiveChunks};
use crate::metrics;
use crate::output::Output;

/// How long the durable chunk's event waits for the same chunk followed live to be announced
/// (normally done already: the feed said it was durable before the event went out).
const FOLLOW_PATIENCE: Duration = Duration::from_secs(15);

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
}

/// Transcodes chunks; shared by every consumer task of the process.
pub struct EncodeWorker {
    output: Arc<Output>,
    ladder: Ladder,
    options: TranscodeOptions,
    /// One transcoder per live stream: audio encoders and timelines carry across chunks.
    transcoders: Mutex<HashMap<StreamId, Arc<Mutex<StreamTranscoder>>>>,
    /// Chunks followed while ingest cuts them (when `options.low_delay`).
    live: LiveChunks,
    /// This worker process, as its parts claims name it.
    id: String,
}

impl EncodeWorker {
    /// A worker writing to `blob` and announcing on `bus`.
    pub fn new(
        blob: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        region: RegionName,
        ladder: Ladder,
        options: TranscodeOptions,
    ) -> Result<Self, Error> {
        ladder
            .validate()
            .map_err(|e| Error::invalid(format!("invalid ladder: {e}")))?;
        let output = Output {
            blob,
            bus,
            region,
            backup: None,
        };
        Ok(EncodeWorker {
            output: Arc::new(output),
            ladder,
            options,
            transcoders: Mutex::new(HashMap::new()),
            live: LiveChunks::default(),
            id: EventId::generate().to_string(),
        })
    }

    /// Copies every segment to `backup` (another region's blob store) once it is announced.
    pub fn with_backup(mut self, backup: Arc<dyn BlobStore>) -> Self {
        Arc::make_mut(&mut self.output).backup = Some(backup);
        self
    }

    /// Handles one `SourceChunk`. Errors are transient (the chunk is retried, not committed);
    /// a chunk that can never decode is reported as [`ChunkOutcome::BadInput`].
    pub async fn handle(&self, chunk: &v1::SourceChunk) -> Result<ChunkOutcome, Error> {
        let stream = StreamId::parse(chunk.stream_id.clone())?;
        if let Some(following) = self.live.take(&stream) {
            // The end of the stream and slate take the place of a chunk that was not cut.
            let media = !chunk.end_of_stream && !chunk.slate;
            if media && following.is(chunk.epoch, chunk.seq) {
                match following.finish(FOLLOW_PATIENCE).await {
                    Ok(()) => {
                        metrics::followed("announced");
                        metrics::chunk("encoded");
                        self.follow_next(&stream, chunk);
                        return Ok(ChunkOutcome::Encoded);
                    }
                    Err(failed) => {
                        metrics::followed("fell_back");
                        // The attempt may have fed part of the chunk's audio to the stream's
                        // encoder: then the chunk is made again from a fresh start.
                        if failed.touched_transcoder {
                            self.transcoders
                                .lock()
                                .expect("transcoders lock")
                                .remove(&stream);
                        }
                        tracing::info!(stream_id = %stream, seq = chunk.seq, error = %failed.error, "chunk not made from its feed; transcoding it from the store");
                    }
                }
            } else {
                following.cancel().await;
            }
        }
        let outcome = self.handle_stored(&stream, chunk).await?;
        if outcome != ChunkOutcome::EndOfStream {
            self.follow_next(&stream, chunk);
        }
        Ok(outcome)
    }

    /// Follows the chunk after `chunk` while ingest cuts it, when ingest offers a feed.
    fn follow_next(&self, stream: &StreamId, chunk: &v1::SourceChunk) {
        if !self.options.low_delay || chunk.feed_url.is_empty() {
            return;
        }
        let Some(transcoder) = self
            .transcoders
            .lock()
            .expect("transcoders lock")
            .get(stream)
            .cloned()
        else {
            return;
        };
        let request = FollowRequest {
            worker: self.id.clone(),
            stream: stream.clone(),
            epoch: chunk.epoch,
            seq: chunk.seq + 1,
            feed_url: chunk.feed_url.clone(),
            transcoder,
            output: self.output.clone(),
        };
        if let Err(error) = self.live.start(request) {
            tracing::warn!(stream_id = %stream, %error, "cannot follow the next chunk");
        }
    }

    /// Transcodes a chunk read from the blob store (or makes slate for it) and announces it.
    async fn handle_stored(
        &self,
        stream: &StreamId,
        chunk: &v1::SourceChunk,
    ) -> Result<ChunkOutcome, Error> {
        if chunk.end_of_stream {
            self.transcoders
                .lock()
                .expect("transcoders lock")
                .remove(stream);
            metrics::chunk("end_of_stream");
            return Ok(ChunkOutcome::EndOfStream);
        }
        let transcoder = self.transcoder(stream, chunk.discontinuity)?;
        let (pts_ms, duration_ms) = (chunk.pts_ms, chunk.duration_ms);
        let (renditions, outcome, reason) = if chunk.slate {
            let slate = off_reactor(transcoder, move |t| t.slate(pts_ms, duration_ms)).await?;
            let reason = "the broadcaster sent nothing".to_string();
            (slate, ChunkOutcome::Slated, reason)
        } else {
            let media = self.output.blob.get(&chunk.blob_key).await?;
            let seq = chunk.seq;
            let started = Instant::now();
            let result = off_reactor(transcoder.clone(), move |t| {
                t.transcode(&SourceChunkInput {
                    media: ChunkMedia::Bytes(&media),
                    seq,
                    pts_ms,
                    duration_ms,
                })
            })
            .await;
            metrics::transcode_seconds(started.elapsed().as_secs_f64());
            match result {
                Ok(renditions) => (renditions, ChunkOutcome::Encoded, String::new()),
                Err(error) if is_bad_input(&error) => {
                    tracing::warn!(stream_id = %stream, seq, %error, "source chunk cannot be decoded; slate stands in for it");
                    let slate =
                        off_reactor(transcoder, move |t| t.slate(pts_ms, duration_ms)).await?;
                    let reason = format!("source chunk {seq} cannot be decoded: {error}");
                    (slate, ChunkOutcome::BadInput, reason)
                }
                Err(error) => return Err(error),
            }
        };
        metrics::chunk(match outcome {
            ChunkOutcome::Encoded => "encoded",
            ChunkOutcome::BadInput => "bad_input",
            _ => "slate",
        });
        // Parts are announced only for chunks followed while they were cut.
        self.output
            .segments(stream, chunk, renditions, &reason, false)
            .await?;
        Ok(outcome)
    }

    fn transcoder(
        &self,
        stream: &StreamId,
        fresh: bool,
    ) -> Result<Arc<Mutex<StreamTranscoder>>, Error> {
        let mut transcoders = self.transcoders.lock().expect("transcoders lock");
        if fresh {
            // A reconnect may change the source's codecs or size: start from scratch.
            transcoders.remove(stream);
        }
        if let Some(existing) = transcoders.get(stream) {
            return Ok(existing.clone());
        }
        let transcoder = StreamTranscoder::new(self.ladder.clone(), self.options.clone())
            .map_err(|e| Error::invalid(format!("cannot build the transcoder: {e}")))?;
        let transcoder = Arc::new(Mutex::new(transcoder));
        transcoders.insert(stream.clone(), transcoder.clone());
        Ok(transcoder)
    }
}

/// Runs transcoder work on the blocking pool; media errors come back as they are, anything
/// else as a transient [`Error`].
async fn off_reactor(
    transcoder: Arc<Mutex<StreamTranscoder>>,
    work: impl FnOnce(&mut StreamTranscoder) -> Result<Vec<EncodedRendition>, MediaError>
    + Send
    + 'static,
) -> Result<Vec<EncodedRendition>, Error> {
    tokio::task::spawn_blocking(move || work(&mut transcoder.lock().expect("transcoder lock")))
        .await
        .map_err(|e| Error::internal(format!("transcode task failed: {e}")))?
        .map_err(|error| match error {
            MediaError::Config(message) => Error::invalid(message),
            error if error.is_bad_input() => {
                Error::new(ErrorKind::InvalidArgument, error.to_string())
            }
            error => Error::unavailable(error.to_string()),
        })
}

/// A media error the broadcaster caused: retrying the same bytes cannot help.
fn is_bad_input(error: &Error) -> bool {
    error.kind == ErrorKind::InvalidArgument
}
