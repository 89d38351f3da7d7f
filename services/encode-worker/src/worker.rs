//! Turning one source chunk into every rendition of the ladder: read it from the blob store,
//! transcode it off the reactor, write the CMAF segments, announce them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use livecast_blob::BlobStore;
use livecast_bus::EventBus;
use livecast_core::{Error, ErrorKind, EventId, RegionName, RenditionName, StreamId, blob_keys};
use livecast_media::{
    ChunkMedia, Content, EncodedRendition, Ladder, MediaError, SourceChunkInput, StreamTranscoder,
    TranscodeOptions,
};
use livecast_proto::{topics, v1};
use prost::Message;

use crate::metrics;

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
    blob: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    region: RegionName,
    ladder: Ladder,
    options: TranscodeOptions,
    /// The backup region's blob store, which gets a copy of every segment.
    backup: Option<Arc<dyn BlobStore>>,
    /// One transcoder per live stream: audio encoders and timelines carry across chunks.
    transcoders: Mutex<HashMap<StreamId, Arc<Mutex<StreamTranscoder>>>>,
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
        Ok(EncodeWorker {
            blob,
            bus,
            region,
            ladder,
            options,
            backup: None,
            transcoders: Mutex::new(HashMap::new()),
        })
    }

    /// Copies every segment to `backup` (another region's blob store) once it is announced.
    pub fn with_backup(mut self, backup: Arc<dyn BlobStore>) -> Self {
        self.backup = Some(backup);
        self
    }

    /// Handles one `SourceChunk`. Errors are transient (the chunk is retried, not committed);
    /// a chunk that can never decode is reported as [`ChunkOutcome::BadInput`].
    pub async fn handle(&self, chunk: &v1::SourceChunk) -> Result<ChunkOutcome, Error> {
        let stream = StreamId::parse(chunk.stream_id.clone())?;
        if chunk.end_of_stream {
            self.transcoders
                .lock()
                .expect("transcoders lock")
                .remove(&stream);
            metrics::chunk("end_of_stream");
            return Ok(ChunkOutcome::EndOfStream);
        }
        let transcoder = self.transcoder(&stream, chunk.discontinuity)?;
        let (pts_ms, duration_ms) = (chunk.pts_ms, chunk.duration_ms);
        let (renditions, outcome, reason) = if chunk.slate {
            let slate = off_reactor(transcoder, move |t| t.slate(pts_ms, duration_ms)).await?;
            let reason = "the broadcaster sent nothing".to_string();
            (slate, ChunkOutcome::Slated, reason)
        } else {
            let media = self.blob.get(&chunk.blob_key).await?;
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
        let mut renditions = renditions;
        // Lowest first: a player that is behind gets something to play soonest.
        renditions.sort_by_key(|r| (!r.audio_only, r.bandwidth));
        let ladder_size = renditions.len() as u32;
        for rendition in &renditions {
            self.store_and_announce(&stream, chunk, rendition, ladder_size, &reason)
                .await?;
            metrics::segment(rendition.content);
        }
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

    async fn store_and_announce(
        &self,
        stream: &StreamId,
        chunk: &v1::SourceChunk,
        rendition: &EncodedRendition,
        ladder_size: u32,
        reason: &str,
    ) -> Result<(), Error> {
        let name = RenditionName::parse(rendition.name.clone())?;
        let init_key = blob_keys::init_segment(stream, &name);
        let segment_key = blob_keys::media_segment(stream, &name, chunk.seq);
        self.blob
            .put(&init_key, rendition.init_segment.clone())
            .await?;
        self.blob
            .put(&segment_key, rendition.media_segment.clone())
            .await?;
        let ready = v1::SegmentReady {
            event_id: EventId::generate().to_string(),
            stream_id: stream.to_string(),
            rendition: Some(v1::RenditionInfo {
                name: rendition.name.clone(),
                width: rendition.width,
                height: rendition.height,
                bandwidth: rendition.bandwidth,
                average_bandwidth: rendition.bandwidth,
                codecs: rendition.codecs.clone(),
                frame_rate_milli: rendition.frame_rate_milli,
                audio_only: rendition.audio_only,
            }),
            seq: chunk.seq,
            duration_ms: rendition.duration_ms,
            discontinuity: chunk.discontinuity,
            blob_key: segment_key,
            init_blob_key: init_key,
            program_date_time_ms: chunk.wall_clock_ms,
            size_bytes: rendition.media_segment.len() as u64,
            region: self.region.to_string(),
            ladder_size,
            content: segment_content(rendition.content) as i32,
            content_reason: match rendition.content {
                Content::Source => String::new(),
                Content::StillPicture => "the source's video stalled; its audio goes on".into(),
                Content::Slate => reason.to_string(),
            },
            // Segments are made from whole source chunks, in one piece.
            part_count: 0,
        };
        self.bus
            .publish(
                topics::SEGMENTS,
                stream.as_str(),
                Bytes::from(ready.encode_to_vec()),
            )
            .await?;
        if let Some(backup) = &self.backup {
            replicate(
                backup.clone(),
                [
                    (ready.init_blob_key, rendition.init_segment.clone()),
                    (ready.blob_key, rendition.media_segment.clone()),
                ],
            );
        }
        Ok(())
    }
}

/// Copies objects to the backup region in the background: viewers there must not wait for
/// it, and a failure is counted and logged, not retried (the home region still has them).
fn replicate(backup: Arc<dyn BlobStore>, objects: [(String, Bytes); 2]) {
    tokio::spawn(async move {
        for (key, body) in objects {
            match backup.put(&key, body).await {
                Ok(()) => metrics::replicated("ok"),
                Err(error) => {
                    metrics::replicated("failed");
                    tracing::warn!(%key, %error, "segment not copied to the backup region");
                }
            }
        }
    });
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

fn segment_content(content: Content) -> v1::SegmentContent {
    match content {
        Content::Source => v1::SegmentContent::Source,
        Content::StillPicture => v1::SegmentContent::StillPicture,
        Content::Slate => v1::SegmentContent::Slate,
    }
}
