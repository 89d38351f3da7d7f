//! Following one chunk while ingest cuts it: its bytes come over the ingest instance's
//! `ChunkFeed` as the broadcaster sends them, the stream's transcoder turns them into parts of
//! every rendition, each part goes to the chunk's [`ChunkSink`] as soon as the encoders put it
//! out, and once ingest says the chunk is durable its whole segments go there too.

use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use livecast_core::{Error, ErrorKind, StreamId};
use livecast_media::{EncodedPart, EncodedRendition, LiveChunkInput, MediaError, StreamTranscoder};
use livecast_proto::v1;
use livecast_proto::v1::chunk_feed_client::ChunkFeedClient;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// Longest a message may be: ingest sends at most 1 MiB.
const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// How long ingest may take to make a cut chunk durable (it waits out a blob store that is
/// away for up to 30 s).
const STORE_PATIENCE: Duration = Duration::from_secs(35);

/// Where a chunk starts on the stream timeline and when its first frame reached ingest, both
/// in milliseconds.
pub(crate) type ChunkStart = (i64, i64);

/// Where a followed chunk's output goes: published (a primary) or held (a standby).
#[async_trait::async_trait]
pub(crate) trait ChunkSink: Send + Sync {
    /// Chunk `seq` began at `start`. An error stops following it (another worker makes it).
    async fn begin(&self, seq: u64, start: ChunkStart) -> Result<(), Error>;
    /// One part of one rendition of chunk `seq`, as the encoders made it.
    async fn part(&self, seq: u64, part: EncodedPart) -> Result<(), Error>;
    /// The chunk is durable as `stored`; `renditions` are its whole segments, and `shed` names
    /// the top rungs left out of it (the worker was short of CPU).
    async fn whole(
        &self,
        stored: v1::SourceChunk,
        renditions: Vec<EncodedRendition>,
        shed: Vec<String>,
    ) -> Result<(), Error>;
}

/// One chunk to follow.
pub(crate) struct ChunkToFollow {
    pub stream: StreamId,
    pub epoch: u32,
    pub seq: u64,
    pub feed: Channel,
}

/// A chunk followed to its whole segments.
#[derive(Debug)]
pub(crate) struct Followed {
    /// The chunk as ingest stored it.
    pub stored: v1::SourceChunk,
    /// From ingest cutting the chunk to its whole segments being made: how far behind real
    /// time the encoding runs.
    pub lag: Duration,
}

/// How following a chunk ended, when it did not end with the chunk stored and handed on.
#[derive(Debug)]
pub(crate) struct FollowFailed {
    pub error: Error,
    /// The stream's transcoder was given some of the chunk (its audio state moved on).
    pub touched_transcoder: bool,
}

/// Follows `chunk` to its whole segments.
pub(crate) async fn follow_chunk(
    chunk: ChunkToFollow,
    transcoder: Arc<Mutex<StreamTranscoder>>,
    sink: &dyn ChunkSink,
    cancel: &CancellationToken,
) -> Result<Followed, FollowFailed> {
    let touched = AtomicBool::new(false);
    let outcome = tokio::select! {
        outcome = follow(chunk, transcoder, sink, &touched) => outcome,
        () = cancel.cancelled() => Err(cancelled()),
    };
    outcome.map_err(|error| FollowFailed {
        error,
        touched_transcoder: touched.load(Ordering::Acquire),
    })
}

async fn follow(
    chunk: ChunkToFollow,
    transcoder: Arc<Mutex<StreamTranscoder>>,
    sink: &dyn ChunkSink,
    touched: &AtomicBool,
) -> Result<Followed, Error> {
    let mut client = ChunkFeedClient::new(chunk.feed).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let request = v1::FollowChunkRequest {
        stream_id: chunk.stream.to_string(),
        epoch: chunk.epoch,
        seq: chunk.seq,
    };
    let mut messages = client
        .follow(request)
        .await
        .map_err(feed_error)?
        .into_inner();
    // The first bytes say where the chunk starts.
    let first = messages
        .message()
        .await
        .map_err(feed_error)?
        .ok_or_else(|| Error::unavailable("the chunk feed ended before any byte"))?;
    let start = (first.pts_ms, first.wall_clock_ms);
    sink.begin(chunk.seq, start).await?;

    let (pieces, reader) = FeedReader::new();
    let cut = Arc::new(Cut::default());
    // Stopped with this function, however it returns: the transcoder's reader breaks off.
    let mut pump = AbortOnDrop(tokio::spawn(pump(first, messages, pieces, cut.clone())));
    let (parts_out, mut parts) = tokio::sync::mpsc::unbounded_channel::<EncodedPart>();
    let input = LiveChunkInput {
        reader: Box::new(reader),
        seq: chunk.seq,
        pts_ms: start.0,
        duration_ms: cut.duration_ms.clone(),
    };
    touched.store(true, Ordering::Release);
    let transcode = tokio::task::spawn_blocking(move || {
        let mut transcoder = transcoder.lock().unwrap_or_else(|p| p.into_inner());
        let made = transcoder.transcode_live(input, &mut |part| {
            parts_out
                .send(part)
                .map_err(|_| MediaError::Io(std::io::Error::other("parts are no longer taken")))
        })?;
        // When the encoders were done: publishing that waits for a backend is no lack of CPU.
        let done_at = Instant::now();
        let shed = transcoder.left_out(&made);
        Ok::<_, MediaError>((made, shed, done_at))
    });

    let mut handed_on = Ok(());
    while let Some(part) = parts.recv().await {
        handed_on = sink.part(chunk.seq, part).await;
        if handed_on.is_err() {
            // The transcoder stops at its next part or byte and frees the stream's transcoder.
            drop(parts);
            pump.0.abort();
            break;
        }
    }
    let made = transcode
        .await
        .map_err(|e| Error::internal(format!("live transcode task: {e}")))?;
    handed_on?;
    let (renditions, shed, done_at) =
        made.map_err(|e| Error::unavailable(format!("live transcode failed: {e}")).with_source(e))?;
    let lag = cut
        .at
        .get()
        .map_or(Duration::ZERO, |at| done_at.saturating_duration_since(*at));
    let (stored, received) = tokio::time::timeout(STORE_PATIENCE, &mut pump.0)
        .await
        .map_err(|_| Error::unavailable("the chunk was not made durable in time"))?
        .map_err(|e| Error::internal(format!("feed task: {e}")))??;
    if (stored.epoch, stored.seq, stored.size_bytes) != (chunk.epoch, chunk.seq, received) {
        return Err(Error::unavailable(format!(
            "ingest stored chunk {} of epoch {} ({} bytes) where {received} bytes of chunk {} \
             of epoch {} were followed",
            stored.seq, stored.epoch, stored.size_bytes, chunk.seq, chunk.epoch
        )));
    }
    sink.whole(stored.clone(), renditions, shed).await?;
    Ok(Followed { stored, lag })
}

/// The chunk's cut, as the feed told it: its duration, and when it came.
#[derive(Default)]
struct Cut {
    duration_ms: Arc<OnceLock<u32>>,
    at: OnceLock<Instant>,
}

/// Moves the feed's bytes to the transcoder's reader; returns the stored chunk and how many
/// bytes came. Returning early (an error, or aborted) breaks the reader off.
async fn pump(
    first: v1::ChunkFeedMessage,
    mut messages: tonic::Streaming<v1::ChunkFeedMessage>,
    pieces: mpsc::Sender<Piece>,
    cut: Arc<Cut>,
) -> Result<(v1::SourceChunk, u64), Error> {
    let mut received = 0u64;
    let mut next = Some(first);
    loop {
        let message = match next.take() {
            Some(message) => message,
            None => messages
                .message()
                .await
                .map_err(feed_error)?
                .ok_or_else(|| {
                    Error::unavailable("the chunk feed ended before the chunk was stored")
                })?,
        };
        if !message.data.is_empty() {
            received += message.data.len() as u64;
            // The transcoder may have stopped already; the error comes from it.
            let _ = pieces.send(Piece::Bytes(Bytes::from(message.data)));
        }
        if message.cut {
            let _ = cut.at.set(Instant::now());
            let _ = cut.duration_ms.set(message.duration_ms);
            let _ = pieces.send(Piece::Cut);
        }
        if let Some(stored) = message.stored {
            return Ok((stored, received));
        }
    }
}

enum Piece {
    Bytes(Bytes),
    Cut,
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The transcoder's side of the feed: blocks for the next bytes, ends at the cut, and fails
/// when the feed breaks off before it.
struct FeedReader {
    pieces: mpsc::Receiver<Piece>,
    current: Bytes,
    cut: bool,
}

impl FeedReader {
    fn new() -> (mpsc::Sender<Piece>, FeedReader) {
        let (sender, pieces) = mpsc::channel();
        let reader = FeedReader {
            pieces,
            current: Bytes::new(),
            cut: false,
        };
        (sender, reader)
    }
}

impl Read for FeedReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            if self.cut {
                return Ok(0);
            }
            match self.pieces.recv() {
                Ok(Piece::Bytes(bytes)) => self.current = bytes,
                Ok(Piece::Cut) => self.cut = true,
                Err(_) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::BrokenPipe,
                        "the chunk feed broke off",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// A chunk the feed does not have, or that its broadcaster left before it was cut, will not
/// come this way: `NotFound`. Anything else is the feed failing.
fn feed_error(status: tonic::Status) -> Error {
    let kind = match status.code() {
        tonic::Code::NotFound | tonic::Code::Aborted => ErrorKind::NotFound,
        _ => ErrorKind::Unavailable,
    };
    Error::new(kind, format!("chunk feed: {}", status.message()))
}

fn cancelled() -> Error {
    Error::unavailable("following the chunk was cancelled")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_gives_the_bytes_then_the_end_at_the_cut() {
        let (pieces, mut reader) = FeedReader::new();
        pieces
            .send(Piece::Bytes(Bytes::from_static(b"FLV")))
            .unwrap();
        pieces
            .send(Piece::Bytes(Bytes::from_static(b"tags")))
            .unwrap();
        pieces.send(Piece::Cut).unwrap();
        let mut all = Vec::new();
        reader.read_to_end(&mut all).expect("read to the cut");
        assert_eq!(all, b"FLVtags");
    }

    #[test]
    fn a_feed_that_breaks_off_before_the_cut_is_an_error() {
        let (pieces, mut reader) = FeedReader::new();
        pieces
            .send(Piece::Bytes(Bytes::from_static(b"FLV")))
            .unwrap();
        drop(pieces);
        let mut all = Vec::new();
        let error = reader.read_to_end(&mut all).expect_err("broken off");
        assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe);
        assert_eq!(all, b"FLV");
    }
}
