//! Following a chunk while ingest cuts it (Low-Latency HLS): its bytes come over the ingest
//! instance's `ChunkFeed` as the broadcaster sends them, the stream's transcoder turns them
//! into parts of every rendition, each part is written and announced as soon as the encoders
//! put it out, and once ingest says the chunk is durable the whole segments are announced.
//!
//! The worker follows chunk N+1 when it handles chunk N: only while it owns the stream (its
//! partition), so two workers never make parts of one chunk. The durable chunk stays the
//! record: when its event comes, a chunk that was followed to the end is done, and one whose
//! feed failed (ingest gone, the broadcaster left, the worker fell behind) is transcoded from
//! the blob store, made whole without parts.

use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use livecast_core::{Error, ErrorKind, StreamId};
use livecast_media::{EncodedPart, LiveChunkInput, MediaError, StreamTranscoder};
use livecast_proto::v1;
use livecast_proto::v1::chunk_feed_client::ChunkFeedClient;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};

use crate::output::Output;

/// Longest a message may be: ingest sends at most 1 MiB.
const MAX_MESSAGE_BYTES: usize = 4 << 20;
/// How long ingest may take to make a cut chunk durable (it waits out a blob store that is
/// away for up to 30 s).
const STORE_PATIENCE: Duration = Duration::from_secs(35);
/// Finished followings older than this, whose durable chunk never came here (the stream moved
/// to another worker), are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(60);
/// Connections to ingest instances kept; past this (instances come and go), they are dropped
/// and made again as needed.
const MAX_FEED_CHANNELS: usize = 256;

/// The chunks being followed, at most one per stream.
#[derive(Default)]
pub(crate) struct LiveChunks {
    following: Mutex<HashMap<StreamId, Following>>,
    channels: Mutex<HashMap<String, Channel>>,
}

/// What to follow, and what with.
pub(crate) struct FollowRequest {
    /// This worker, as its parts claims name it.
    pub worker: String,
    pub stream: StreamId,
    pub epoch: u32,
    pub seq: u64,
    pub feed_url: String,
    pub transcoder: Arc<Mutex<StreamTranscoder>>,
    pub output: Arc<Output>,
}

/// A following that did not end with the chunk's segments announced.
pub(crate) struct FollowFailed {
    pub error: Error,
    /// The stream's transcoder was given some of the chunk (its audio state moved on).
    pub touched_transcoder: bool,
}

/// One chunk being followed.
pub(crate) struct Following {
    epoch: u32,
    seq: u64,
    started: Instant,
    cancel: CancellationToken,
    /// Set once the stream's transcoder was given any of the chunk.
    transcoding: Arc<AtomicBool>,
    task: JoinHandle<Result<(), Error>>,
}

impl LiveChunks {
    /// Starts following a chunk (replacing whatever this stream followed before).
    pub fn start(&self, request: FollowRequest) -> Result<(), Error> {
        let channel = self.channel(&request.feed_url)?;
        let cancel = CancellationToken::new();
        let stream = request.stream.clone();
        let transcoding = Arc::new(AtomicBool::new(false));
        let following = Following {
            epoch: request.epoch,
            seq: request.seq,
            started: Instant::now(),
            cancel: cancel.clone(),
            transcoding: transcoding.clone(),
            task: tokio::spawn(follow(channel, request, cancel, transcoding)),
        };
        let mut all = self.following.lock().expect("following lock");
        all.retain(|_, f| !(f.task.is_finished() && f.started.elapsed() > FORGET_AFTER));
        if let Some(replaced) = all.insert(stream, following) {
            replaced.cancel.cancel();
        }
        Ok(())
    }

    /// The stream's following, if any, taken out.
    pub fn take(&self, stream: &StreamId) -> Option<Following> {
        self.following
            .lock()
            .expect("following lock")
            .remove(stream)
    }

    fn channel(&self, url: &str) -> Result<Channel, Error> {
        let mut channels = self.channels.lock().expect("channels lock");
        if let Some(channel) = channels.get(url) {
            return Ok(channel.clone());
        }
        if channels.len() >= MAX_FEED_CHANNELS {
            channels.clear();
        }
        let channel = Endpoint::from_shared(url.to_string())
            .map_err(|e| Error::invalid(format!("bad chunk feed url {url:?}: {e}")))?
            .connect_timeout(Duration::from_secs(2))
            // A feed whose ingest vanished without closing the connection is noticed.
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .connect_lazy();
        channels.insert(url.to_string(), channel.clone());
        Ok(channel)
    }
}

impl Following {
    /// Whether this is chunk `seq` of `epoch`.
    pub fn is(&self, epoch: u32, seq: u64) -> bool {
        (self.epoch, self.seq) == (epoch, seq)
    }

    /// Waits for the chunk's segments to be announced, for up to `patience`.
    pub async fn finish(mut self, patience: Duration) -> Result<(), FollowFailed> {
        let transcoding = self.transcoding.clone();
        let outcome = match tokio::time::timeout(patience, &mut self.task).await {
            Ok(outcome) => {
                outcome.unwrap_or_else(|e| Err(Error::internal(format!("follow task: {e}"))))
            }
            Err(_) => {
                self.cancel().await;
                Err(Error::unavailable(format!(
                    "following the chunk took longer than {patience:?}"
                )))
            }
        };
        outcome.map_err(|error| FollowFailed {
            error,
            touched_transcoder: transcoding.load(Ordering::Acquire),
        })
    }

    /// Stops following; returns once the stream's transcoder is free again.
    pub async fn cancel(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Follows one chunk to its whole segments.
async fn follow(
    channel: Channel,
    request: FollowRequest,
    cancel: CancellationToken,
    transcoding: Arc<AtomicBool>,
) -> Result<(), Error> {
    let mut client = ChunkFeedClient::new(channel).max_decoding_message_size(MAX_MESSAGE_BYTES);
    let feed = v1::FollowChunkRequest {
        stream_id: request.stream.to_string(),
        epoch: request.epoch,
        seq: request.seq,
    };
    let mut messages = tokio::select! {
        answer = client.follow(feed) => answer.map_err(feed_error)?.into_inner(),
        () = cancel.cancelled() => return Err(cancelled()),
    };
    // The first bytes say where the chunk starts.
    let first = tokio::select! {
        message = messages.message() => message.map_err(feed_error)?,
        () = cancel.cancelled() => return Err(cancelled()),
    }
    .ok_or_else(|| Error::unavailable("the chunk feed ended before any byte"))?;
    let chunk_start = (first.pts_ms, first.wall_clock_ms);
    // One worker makes a chunk's parts: one that lost the stream while following it may
    // still be at it when the new owner comes to the same chunk.
    if !request
        .output
        .claim_parts(&request.stream, request.seq, &request.worker)
        .await?
    {
        return Err(Error::new(
            ErrorKind::Conflict,
            format!("another worker makes the parts of chunk {}", request.seq),
        ));
    }

    let (pieces, reader) = FeedReader::new();
    let duration = Arc::new(OnceLock::new());
    // Stopped with this function, however it returns: the transcoder's reader breaks off.
    let mut pump = AbortOnDrop(tokio::spawn(pump(
        first,
        messages,
        pieces,
        duration.clone(),
    )));
    let (parts_out, mut parts) = tokio::sync::mpsc::unbounded_channel::<EncodedPart>();
    let input = LiveChunkInput {
        reader: Box::new(reader),
        seq: request.seq,
        pts_ms: chunk_start.0,
        duration_ms: duration,
    };
    let transcoder = request.transcoder.clone();
    transcoding.store(true, Ordering::Release);
    let transcode = tokio::task::spawn_blocking(move || {
        let mut transcoder = transcoder.lock().expect("transcoder lock");
        transcoder.transcode_live(input, &mut |part| {
            parts_out
                .send(part)
                .map_err(|_| MediaError::Io(std::io::Error::other("parts are no longer taken")))
        })
    });

    let (stream, seq) = (&request.stream, request.seq);
    let announced = async {
        while let Some(part) = parts.recv().await {
            request.output.part(stream, seq, &part, chunk_start).await?;
        }
        Ok::<_, Error>(())
    };
    let outcome = tokio::select! {
        outcome = announced => outcome,
        () = cancel.cancelled() => Err(cancelled()),
    };
    if outcome.is_err() {
        // The transcoder stops at its next part or byte and frees the stream's transcoder.
        drop(parts);
        pump.0.abort();
    }
    let renditions = transcode
        .await
        .map_err(|e| Error::internal(format!("live transcode task: {e}")))?;
    outcome?;
    let renditions =
        renditions.map_err(|e| Error::unavailable(format!("live transcode failed: {e}")))?;
    let (stored, received) = tokio::select! {
        stored = tokio::time::timeout(STORE_PATIENCE, &mut pump.0) => stored
            .map_err(|_| Error::unavailable("the chunk was not made durable in time"))?
            .map_err(|e| Error::internal(format!("feed task: {e}")))??,
        () = cancel.cancelled() => return Err(cancelled()),
    };
    if (stored.epoch, stored.seq, stored.size_bytes) != (request.epoch, seq, received) {
        return Err(Error::unavailable(format!(
            "ingest stored chunk {} of epoch {} ({} bytes) where {received} bytes of chunk {seq} \
             of epoch {} were followed",
            stored.seq, stored.epoch, stored.size_bytes, request.epoch
        )));
    }
    request
        .output
        .segments(stream, &stored, renditions, "", true)
        .await
}

/// Moves the feed's bytes to the transcoder's reader; returns the stored chunk and how many
/// bytes came. Returning early (an error, or aborted) breaks the reader off.
async fn pump(
    first: v1::ChunkFeedMessage,
    mut messages: tonic::Streaming<v1::ChunkFeedMessage>,
    pieces: mpsc::Sender<Piece>,
    duration: Arc<OnceLock<u32>>,
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
            let _ = duration.set(message.duration_ms);
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

fn feed_error(status: tonic::Status) -> Error {
    let kind = match status.code() {
        tonic::Code::NotFound => ErrorKind::NotFound,
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
