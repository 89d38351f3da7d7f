//! Low-Latency HLS from a worker process on the real engines: chunks are fed over ingest's
//! `ChunkFeed` (gRPC, served by this test with ingest's own feed) while they are cut, one every
//! 2 s. The worker announces parts of every rendition before each chunk is durable, and the
//! parts of a segment laid end to end are the segment. It is SIGKILLed while following a
//! chunk and another worker takes over: that chunk is made whole from the store without parts
//! (so edges drop the dead worker's parts of it), no segment has parts from two workers, and
//! the new worker makes parts again from a later chunk on.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use livecast_bus::{EventBus, SubscribeOptions};
use livecast_core::{EventId, StreamId};
use livecast_ingest::ChunkFeedService;
use livecast_ingest::feed::ChunkFeeds;
use livecast_proto::{topics, v1};
use prost::Message;
use support::*;

const CHUNKS: u32 = 14;
/// The chunk whose parts are coming when the first worker is killed.
const KILLED_DURING: u64 = 4;

/// What the workers announced: parts and segments of the stream, in arrival order.
#[derive(Default)]
struct Announced {
    parts: Vec<v1::PartReady>,
    segments: Vec<v1::SegmentReady>,
}

/// Collects the stream's part and segment events from now on.
async fn watch(bus: &Arc<dyn EventBus>, stream: &StreamId) -> Arc<Mutex<Announced>> {
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
                        announced.parts.push(part);
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

/// Serves `feeds` as ingest does; returns the URL workers follow chunks at.
async fn serve_feed(feeds: Arc<ChunkFeeds>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(ChunkFeedService::new(feeds).into_server())
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );
    url
}

async fn until(what: &str, seconds: u64, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what} did not happen in {seconds} s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parts_come_before_their_chunk_is_durable_and_a_replacement_worker_publishes_none_that_conflict()
 {
    let Some(engines) = engines() else { return };
    let dir = tempfile::tempdir().unwrap();
    let chunks = source_chunks(dir.path(), CHUNKS * 2);
    let (bucket, blob) = engines.fresh_bucket().await;
    let bus = engines.bus().await;
    bus.ensure_topic(topics::PARTS, 4).await.unwrap();
    let stream = StreamId::generate();
    let announced = watch(&bus, &stream).await;
    let feeds = Arc::new(ChunkFeeds::default());
    let feed_url = serve_feed(feeds.clone()).await;
    let group = format!("encode-worker-{}", EventId::generate());
    let mut first = Some(engines.spawn_worker(&bucket, "first", &group));
    let mut second = None;

    // As ingest does: the next chunk's feed opens before a chunk is announced, and its bytes
    // arrive in real time; a chunk is durable, then its feed says so, then it is announced.
    let mut live = feeds.open(&stream, 0, 0);
    for (seq, (media, pts_ms)) in chunks.into_iter().enumerate() {
        let seq = seq as u64;
        let arrived_ms = livecast_core::time::now_millis();
        if seq == 1 {
            // The worker has joined and made chunk 0 from the store: it follows from here.
            until("segment 0", 60, || {
                !announced.lock().unwrap().segments.is_empty()
            })
            .await;
        }
        for end in (1..=20).map(|step| media.len() * step / 20) {
            live.extend(&media[..end], pts_ms, arrived_ms);
            tokio::time::sleep(Duration::from_millis(100)).await;
            let killed_now = second.is_none()
                && seq == KILLED_DURING
                && announced
                    .lock()
                    .unwrap()
                    .parts
                    .iter()
                    .any(|p| p.seq == seq && p.part >= 1);
            if let Some(mut worker) = first.take_if(|_| killed_now) {
                worker.kill().expect("SIGKILL");
                worker.wait().unwrap();
                second = Some(engines.spawn_worker(&bucket, "second", &group));
            }
        }
        live.cut(&media, pts_ms, CHUNK_MS);
        let mut event = store_chunk(blob.as_ref(), &stream, seq, (media, pts_ms)).await;
        event.feed_url = feed_url.clone();
        live.stored(event.clone());
        live = feeds.open(&stream, 0, seq + 1);
        bus.publish(
            topics::CHUNKS,
            stream.as_str(),
            Bytes::from(event.encode_to_vec()),
        )
        .await
        .unwrap();
    }
    drop(live);
    if let Some(mut worker) = first.take() {
        worker.kill().unwrap();
        worker.wait().unwrap();
        panic!("the first worker was never seen following chunk {KILLED_DURING}");
    }
    let mut second = second.expect("a second worker was started");
    let count = u64::from(CHUNKS);
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
            let parts = announced.parts.iter().filter(|p| {
                p.seq == segment.seq && &p.rendition.as_ref().unwrap().name == rendition
            });
            parts.count() as u32 >= segment.part_count
        })
    })
    .await;
    second.kill().unwrap();
    second.wait().unwrap();

    let announced = std::mem::take(&mut *announced.lock().unwrap());
    let mut seen: Seen = BTreeMap::new();
    for segment in &announced.segments {
        let rendition = segment.rendition.as_ref().unwrap().name.clone();
        seen.entry(rendition)
            .or_default()
            .entry(segment.seq)
            .or_default()
            .push(segment.clone());
    }
    assert_every_segment_once(&seen, blob.as_ref(), &stream, count, dir.path()).await;

    let parts_of = |rendition: &str, seq: u64| -> Vec<&v1::PartReady> {
        announced
            .parts
            .iter()
            .filter(|p| p.seq == seq && p.rendition.as_ref().unwrap().name == rendition)
            .collect()
    };
    let mut made_from_parts = BTreeMap::<&str, BTreeSet<u64>>::new();
    for (rendition, seqs) in &seen {
        for (seq, events) in seqs {
            let producers: BTreeSet<&str> = parts_of(rendition, *seq)
                .iter()
                .map(|p| p.region.as_str())
                .collect();
            assert!(
                producers.len() <= 1,
                "{rendition} seq {seq}: parts from {producers:?}"
            );
            let part_count = events[0].part_count;
            if part_count == 0 {
                continue;
            }
            // Announced in parts: each part once, all of them, and together the segment.
            let parts = parts_of(rendition, *seq);
            let indexes: Vec<u32> = parts.iter().map(|p| p.part).collect();
            assert_eq!(
                indexes,
                (0..part_count).collect::<Vec<_>>(),
                "{rendition} seq {seq}"
            );
            assert!(parts[0].independent, "{rendition} seq {seq}: part 0");
            assert!(parts.iter().all(|p| p.duration_ms <= p.part_target_ms));
            let mut joined = Vec::new();
            for part in &parts {
                joined.extend_from_slice(&blob.get(&part.blob_key).await.unwrap());
            }
            let segment = blob.get(&events[0].blob_key).await.unwrap();
            assert!(
                joined == segment.as_ref(),
                "{rendition} seq {seq}: parts are not the segment"
            );
            made_from_parts.entry(rendition).or_default().insert(*seq);
        }
    }
    for rendition in RENDITIONS {
        let from_parts = &made_from_parts[rendition];
        // Every chunk but the first (from the store) and the ones around the crash.
        assert!(
            from_parts.len() as u64 >= count - 5,
            "{rendition}: {from_parts:?}"
        );
        assert!(
            !from_parts.contains(&KILLED_DURING),
            "{rendition}: the chunk being followed at the crash was made whole from the store"
        );
        let second_parts = announced
            .parts
            .iter()
            .any(|p| p.region == "second" && p.rendition.as_ref().unwrap().name == rendition);
        assert!(
            second_parts,
            "{rendition}: the second worker followed chunks too"
        );
    }
}
