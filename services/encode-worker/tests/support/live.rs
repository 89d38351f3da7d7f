//! A live source as ingest offers it to workers: each chunk's bytes over ingest's own
//! `ChunkFeed` (served by the test) in real time, then the chunk stored and announced; and a
//! reader of what the workers announce.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use livecast_blob::BlobStore;
use livecast_bus::{EventBus, SubscribeOptions};
use livecast_core::{EventId, StreamId};
use livecast_ingest::ChunkFeedService;
use livecast_ingest::feed::{ChunkFeeds, LiveChunk};
use livecast_proto::{topics, v1};
use prost::Message;

use super::{CHUNK_MS, RENDITIONS, Seen, store_chunk};

/// Steps a chunk's bytes arrive in, 100 ms apart: real time for 2 s chunks.
pub const STEPS: usize = 20;

/// What the workers announced: parts and segments of the stream, in arrival order, with when
/// each arrived.
#[derive(Default)]
pub struct Announced {
    pub parts: Vec<(v1::PartReady, std::time::Instant)>,
    pub segments: Vec<v1::SegmentReady>,
}

impl Announced {
    /// The segment events by rendition, then seq.
    pub fn by_rendition(&self) -> Seen {
        let mut seen = Seen::new();
        for segment in &self.segments {
            let rendition = segment.rendition.as_ref().unwrap().name.clone();
            seen.entry(rendition)
                .or_default()
                .entry(segment.seq)
                .or_default()
                .push(segment.clone());
        }
        seen
    }
}

/// Waits until `count` segments of every rendition and all of their parts were announced.
pub async fn everything_announced(announced: &Mutex<Announced>, count: u64) {
    until("every segment of every rendition", 90, || {
        let announced = announced.lock().unwrap();
        RENDITIONS.iter().all(|r| {
            let seqs: BTreeSet<u64> = announced
                .segments
                .iter()
                .filter(|s| s.rendition.as_ref().unwrap().name == *r)
                .map(|s| s.seq)
                .collect();
            seqs.len() as u64 == count
        })
    })
    .await;
    // Parts and segments come on two topics: the last parts may be read after their segment.
    until("every announced part", 30, || {
        let announced = announced.lock().unwrap();
        announced.segments.iter().all(|segment| {
            let rendition = &segment.rendition.as_ref().unwrap().name;
            let parts = announced.parts.iter().filter(|(p, _)| {
                p.seq == segment.seq && &p.rendition.as_ref().unwrap().name == rendition
            });
            parts.count() as u32 >= segment.part_count
        })
    })
    .await;
}

/// Collects the stream's part and segment events from now on.
pub async fn watch(bus: &Arc<dyn EventBus>, stream: &StreamId) -> Arc<Mutex<Announced>> {
    let announced = Arc::new(Mutex::new(Announced::default()));
    for topic in [topics::PARTS, topics::SEGMENTS] {
        let options = SubscribeOptions::latest(EventId::generate().to_string());
        let mut subscription = bus.subscribe(topic, options).await.unwrap();
        let (announced, stream) = (announced.clone(), stream.to_string());
        tokio::spawn(async move {
            while let Ok(message) = subscription.next().await {
                let mut announced = announced.lock().unwrap();
                if topic == topics::PARTS {
                    let part = v1::PartReady::decode(message.payload.as_ref()).unwrap();
                    if part.stream_id == stream {
                        announced.parts.push((part, std::time::Instant::now()));
                    }
                } else {
                    let segment = v1::SegmentReady::decode(message.payload.as_ref()).unwrap();
                    if segment.stream_id == stream {
                        announced.segments.push(segment);
                    }
                }
            }
        });
    }
    announced
}

/// Polls `done` every 50 ms; fails the test after `seconds`.
pub async fn until(what: &str, seconds: u64, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen in {seconds} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Ingest, as far as workers see it: chunk after chunk, each fed in [`STEPS`] over 2 s, then
/// cut, stored, its feed told so, and announced on `livecast.chunks`.
pub struct Broadcaster {
    feeds: Arc<ChunkFeeds>,
    feed_url: String,
    stream: StreamId,
    chunks: Vec<(Bytes, i64)>,
    blob: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    live: Option<LiveChunk>,
    seq: usize,
    step: usize,
    arrived_ms: i64,
}

impl Broadcaster {
    /// Serves a chunk feed and opens its first chunk.
    pub async fn start(
        stream: &StreamId,
        chunks: Vec<(Bytes, i64)>,
        blob: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
    ) -> Self {
        let feeds = Arc::new(ChunkFeeds::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let feed_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(ChunkFeedService::new(feeds.clone()).into_server())
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        let live = Some(feeds.open(stream, 0, 0));
        Broadcaster {
            feeds,
            feed_url,
            stream: stream.clone(),
            chunks,
            blob,
            bus,
            live,
            seq: 0,
            step: 0,
            arrived_ms: 0,
        }
    }

    /// The chunk and step the next call to [`Broadcaster::step`] feeds.
    pub fn position(&self) -> (u64, usize) {
        (self.seq as u64, self.step)
    }

    /// Feeds the next step of the current chunk (and when it is the last, cuts, stores and
    /// announces the chunk); `None` once every chunk went out.
    pub async fn step(&mut self) -> Option<(u64, usize)> {
        let Some((media, pts_ms)) = self.chunks.get(self.seq).cloned() else {
            self.live = None;
            return None;
        };
        if self.step == 0 {
            self.arrived_ms = livecast_core::time::now_millis();
        }
        self.step += 1;
        let live = self.live.as_ref().expect("a chunk is open");
        live.extend(
            &media[..media.len() * self.step / STEPS],
            pts_ms,
            self.arrived_ms,
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        let fed = (self.seq as u64, self.step);
        if self.step == STEPS {
            let live = self.live.take().expect("a chunk is open");
            live.cut(&media, pts_ms, CHUNK_MS);
            let seq = self.seq as u64;
            let mut event =
                store_chunk(self.blob.as_ref(), &self.stream, seq, (media, pts_ms)).await;
            event.feed_url = self.feed_url.clone();
            live.stored(event.clone());
            self.live = Some(self.feeds.open(&self.stream, 0, seq + 1));
            let payload = Bytes::from(event.encode_to_vec());
            self.bus
                .publish(topics::CHUNKS, self.stream.as_str(), payload)
                .await
                .unwrap();
            (self.seq, self.step) = (self.seq + 1, 0);
        }
        Some(fed)
    }
}
