//! The chunk feed: the bytes of the chunk being cut, as the broadcaster sends them, for
//! workers that make partial segments (Low-Latency HLS) before the chunk is durable.
//!
//! Each publishing session keeps one [`LiveChunk`]: the chunk it is cutting now, registered
//! under its stream, epoch and sequence number. A follower gets its bytes from the first,
//! then each new piece as it arrives, then word that the chunk was cut, then the `SourceChunk`
//! once it is durable. Any number of followers share the pieces; each waits on one `watch`
//! channel. The durable chunk stays the record: a follower that misses anything falls back to
//! it.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::Stream;
use livecast_core::StreamId;
use livecast_core::time::now_millis;
use livecast_proto::v1;
use tokio::sync::watch;
use tonic::{Request, Response, Status};

use crate::metrics;

/// The chunks being cut now, one per live stream.
#[derive(Debug, Default)]
pub struct ChunkFeeds {
    current: Mutex<HashMap<StreamId, Arc<GrowingChunk>>>,
}

impl ChunkFeeds {
    /// Starts the feed of chunk `seq` of `epoch`, replacing the stream's previous one.
    pub fn open(self: &Arc<Self>, stream: &StreamId, epoch: u32, seq: u64) -> LiveChunk {
        let chunk = Arc::new(GrowingChunk {
            epoch,
            seq,
            growth: Mutex::new(Growth::default()),
            changed: watch::channel(0).0,
        });
        self.current
            .lock()
            .expect("feeds lock")
            .insert(stream.clone(), chunk.clone());
        LiveChunk {
            feeds: self.clone(),
            stream: stream.clone(),
            chunk,
        }
    }

    /// The chunk `seq` of `epoch` of `stream`, if it is the one being cut.
    fn find(&self, stream: &StreamId, epoch: u32, seq: u64) -> Option<Arc<GrowingChunk>> {
        let current = self.current.lock().expect("feeds lock");
        current
            .get(stream)
            .filter(|chunk| chunk.epoch == epoch && chunk.seq == seq)
            .cloned()
    }

    fn close(&self, stream: &StreamId, chunk: &Arc<GrowingChunk>) {
        let mut current = self.current.lock().expect("feeds lock");
        if current.get(stream).is_some_and(|c| Arc::ptr_eq(c, chunk)) {
            current.remove(stream);
        }
    }
}

/// A publishing session's handle on the chunk it is cutting; dropping it before the chunk
/// was stored tells followers the chunk will not come this way.
#[derive(Debug)]
pub struct LiveChunk {
    feeds: Arc<ChunkFeeds>,
    stream: StreamId,
    chunk: Arc<GrowingChunk>,
}

impl LiveChunk {
    /// The sequence number the chunk gets when it is cut.
    pub fn seq(&self) -> u64 {
        self.chunk.seq
    }

    /// The chunk so far is `so_far` (starting at `pts_ms` on the stream timeline, its first
    /// frame arrived at `arrived_ms`): whatever is new of it goes to the followers.
    pub fn extend(&self, so_far: &[u8], pts_ms: i64, arrived_ms: i64) {
        self.chunk.update(|growth| {
            growth.opened.get_or_insert((pts_ms, arrived_ms));
            if so_far.len() > growth.len {
                growth
                    .pieces
                    .push(Bytes::copy_from_slice(&so_far[growth.len..]));
                growth.len = so_far.len();
            }
        });
    }

    /// The chunk was cut as `bytes`: its last bytes go out, and no more follow. A chunk that
    /// came whole (HLS push) is taken to have begun `duration_ms` ago.
    pub fn cut(&self, bytes: &Bytes, pts_ms: i64, duration_ms: u32) {
        self.chunk.update(|growth| {
            let began = now_millis() - i64::from(duration_ms);
            growth.opened.get_or_insert((pts_ms, began));
            if bytes.len() > growth.len {
                growth.pieces.push(bytes.slice(growth.len..));
                growth.len = bytes.len();
            }
            growth.cut = Some(duration_ms);
        });
    }

    /// When the chunk's first frame arrived (milliseconds since the Unix epoch), if it did.
    pub fn wall_clock_ms(&self) -> Option<i64> {
        let growth = self.chunk.growth.lock().expect("chunk lock");
        growth.opened.map(|(_, wall)| wall)
    }

    /// The chunk is durable as `stored`: the feed ends with it.
    pub fn stored(self, stored: v1::SourceChunk) {
        self.chunk
            .update(|growth| growth.end = Some(Ending::Stored(Box::new(stored))));
    }
}

impl Drop for LiveChunk {
    fn drop(&mut self) {
        self.chunk
            .update(|growth| _ = growth.end.get_or_insert(Ending::Abandoned));
        self.feeds.close(&self.stream, &self.chunk);
    }
}

#[derive(Debug)]
struct GrowingChunk {
    epoch: u32,
    seq: u64,
    growth: Mutex<Growth>,
    /// Bumped after every change; followers wait on it.
    changed: watch::Sender<u64>,
}

#[derive(Debug, Default)]
struct Growth {
    pieces: Vec<Bytes>,
    len: usize,
    /// Stream-timeline start and arrival time of the first frame.
    opened: Option<(i64, i64)>,
    cut: Option<u32>,
    end: Option<Ending>,
}

#[derive(Debug)]
enum Ending {
    Stored(Box<v1::SourceChunk>),
    Abandoned,
}

impl GrowingChunk {
    fn update(&self, change: impl FnOnce(&mut Growth)) {
        change(&mut self.growth.lock().expect("chunk lock"));
        self.changed.send_modify(|version| *version += 1);
    }
}

/// Most bytes in one message: well under gRPC's 4 MiB default limit, whatever backlog a
/// follower has.
const MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Where one follower is in a chunk.
struct Follower {
    chunk: Arc<GrowingChunk>,
    changes: watch::Receiver<u64>,
    /// The next byte to send: a piece and an offset in it.
    next_piece: usize,
    offset: usize,
    told_start: bool,
    told_cut: bool,
    done: bool,
}

impl Follower {
    /// What to send next, decided under the chunk's lock; `None`: wait for a change.
    fn next(&mut self) -> Option<Result<v1::ChunkFeedMessage, Status>> {
        let growth = self.chunk.growth.lock().expect("chunk lock");
        let mut message = v1::ChunkFeedMessage::default();
        if let Some((pts_ms, wall_clock_ms)) = growth.opened.filter(|_| !self.told_start) {
            message.pts_ms = pts_ms;
            message.wall_clock_ms = wall_clock_ms;
        }
        if self.next_piece < growth.pieces.len() {
            let mut data = Vec::new();
            while let Some(piece) = growth.pieces.get(self.next_piece) {
                let take = (piece.len() - self.offset).min(MAX_MESSAGE_BYTES - data.len());
                data.extend_from_slice(&piece[self.offset..self.offset + take]);
                self.offset += take;
                if self.offset == piece.len() {
                    (self.next_piece, self.offset) = (self.next_piece + 1, 0);
                }
                if data.len() == MAX_MESSAGE_BYTES {
                    break;
                }
            }
            message.data = data;
            self.told_start = true;
            return Some(Ok(message));
        }
        if let Some(duration_ms) = growth.cut.filter(|_| !self.told_cut) {
            self.told_cut = true;
            message.cut = true;
            message.duration_ms = duration_ms;
            return Some(Ok(message));
        }
        match &growth.end {
            Some(Ending::Stored(stored)) if self.told_cut => {
                self.done = true;
                message.stored = Some(stored.as_ref().clone());
                Some(Ok(message))
            }
            Some(Ending::Abandoned) => {
                self.done = true;
                Some(Err(Status::aborted(
                    "the broadcaster left before the chunk was cut",
                )))
            }
            _ => None,
        }
    }
}

type FeedStream = Pin<Box<dyn Stream<Item = Result<v1::ChunkFeedMessage, Status>> + Send>>;

/// The gRPC `ChunkFeed` over this instance's feeds.
#[derive(Debug, Clone)]
pub struct ChunkFeedService {
    feeds: Arc<ChunkFeeds>,
}

impl ChunkFeedService {
    /// Serves `feeds`.
    pub fn new(feeds: Arc<ChunkFeeds>) -> Self {
        ChunkFeedService { feeds }
    }

    /// The tonic service, ready for a server.
    pub fn into_server(self) -> v1::chunk_feed_server::ChunkFeedServer<Self> {
        v1::chunk_feed_server::ChunkFeedServer::new(self)
    }
}

#[tonic::async_trait]
impl v1::chunk_feed_server::ChunkFeed for ChunkFeedService {
    type FollowStream = FeedStream;

    async fn follow(
        &self,
        request: Request<v1::FollowChunkRequest>,
    ) -> Result<Response<FeedStream>, Status> {
        let request = request.into_inner();
        let stream =
            StreamId::parse(request.stream_id).map_err(|e| Status::invalid_argument(e.message))?;
        let Some(chunk) = self.feeds.find(&stream, request.epoch, request.seq) else {
            metrics::feed_follow("not_found");
            return Err(Status::not_found(format!(
                "chunk {} of epoch {} of stream {stream} is not being cut here",
                request.seq, request.epoch
            )));
        };
        metrics::feed_follow("followed");
        let follower = Follower {
            changes: chunk.changed.subscribe(),
            chunk,
            next_piece: 0,
            offset: 0,
            told_start: false,
            told_cut: false,
            done: false,
        };
        let messages = futures::stream::unfold(follower, |mut follower| async move {
            loop {
                if follower.done {
                    return None;
                }
                match follower.next() {
                    Some(next) => return Some((next, follower)),
                    // The sender lives as long as the chunk, which this follower holds.
                    None => _ = follower.changes.changed().await,
                }
            }
        });
        Ok(Response::new(Box::pin(messages)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use v1::chunk_feed_server::ChunkFeed;

    fn id() -> StreamId {
        StreamId::parse("feed-test".to_string()).expect("id")
    }

    async fn follow(
        service: &ChunkFeedService,
        epoch: u32,
        seq: u64,
    ) -> Result<FeedStream, Status> {
        let request = v1::FollowChunkRequest {
            stream_id: id().to_string(),
            epoch,
            seq,
        };
        service
            .follow(Request::new(request))
            .await
            .map(Response::into_inner)
    }

    #[tokio::test]
    async fn a_follower_gets_the_bytes_so_far_then_each_new_piece_then_the_stored_chunk() {
        let feeds = Arc::new(ChunkFeeds::default());
        let service = ChunkFeedService::new(feeds.clone());
        let live = feeds.open(&id(), 2, 7);
        live.extend(b"FLV head", 14_000, 1_000);
        let mut messages = follow(&service, 2, 7).await.expect("being cut");
        let first = messages.next().await.expect("message").expect("ok");
        assert_eq!((&first.data[..], first.pts_ms), (&b"FLV head"[..], 14_000));
        assert_eq!(first.wall_clock_ms, 1_000);

        live.extend(b"FLV head+frame", 14_000, 1_000);
        let second = messages.next().await.expect("message").expect("ok");
        assert_eq!((&second.data[..], second.pts_ms), (&b"+frame"[..], 0));

        live.cut(&Bytes::from_static(b"FLV head+frame+last"), 14_000, 2_000);
        let last_bytes = messages.next().await.expect("message").expect("ok");
        assert_eq!(&last_bytes.data[..], b"+last");
        let cut = messages.next().await.expect("message").expect("ok");
        assert!(cut.cut && cut.data.is_empty());
        assert_eq!(cut.duration_ms, 2_000);
        live.stored(v1::SourceChunk {
            seq: 7,
            ..Default::default()
        });
        let stored = messages.next().await.expect("message").expect("ok");
        assert_eq!(stored.stored.map(|s| s.seq), Some(7));
        assert!(
            messages.next().await.is_none(),
            "the feed ends with the stored chunk"
        );
        assert!(
            follow(&service, 2, 7).await.is_err(),
            "a stored chunk is not followed again"
        );
    }

    #[tokio::test]
    async fn a_long_backlog_comes_in_messages_of_at_most_a_mebibyte() {
        let feeds = Arc::new(ChunkFeeds::default());
        let service = ChunkFeedService::new(feeds.clone());
        let live = feeds.open(&id(), 0, 0);
        let whole = Bytes::from(vec![7u8; 2 * MAX_MESSAGE_BYTES + 10]);
        live.extend(&whole[..10], 0, 1_000);
        live.cut(&whole, 0, 2_000);
        let mut messages = follow(&service, 0, 0).await.expect("being cut");
        let mut sizes = Vec::new();
        loop {
            let message = messages.next().await.expect("message").expect("ok");
            if message.cut {
                break;
            }
            sizes.push(message.data.len());
        }
        assert_eq!(sizes, vec![MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES, 10]);
    }

    #[tokio::test]
    async fn chunks_not_being_cut_here_are_not_found_and_a_departure_aborts_followers() {
        let feeds = Arc::new(ChunkFeeds::default());
        let service = ChunkFeedService::new(feeds.clone());
        let live = feeds.open(&id(), 0, 3);
        for (epoch, seq) in [(0, 4), (1, 3)] {
            let status = follow(&service, epoch, seq).await.err().expect("not found");
            assert_eq!(status.code(), tonic::Code::NotFound);
        }
        let mut messages = follow(&service, 0, 3).await.expect("being cut");
        drop(live);
        let status = messages
            .next()
            .await
            .expect("message")
            .expect_err("aborted");
        assert_eq!(status.code(), tonic::Code::Aborted);
        assert!(messages.next().await.is_none());
    }
}
