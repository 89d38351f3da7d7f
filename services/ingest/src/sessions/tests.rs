//! Publishing sessions across ingest instances that share the blob store and the bus, as a
//! fleet behind a load balancer does.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use livecast_blob::{BlobStore, LocalBlobStore};
use livecast_bus::{EventBus, InProcessBus, SubscribeOptions, Subscription};
use livecast_core::blob_keys::SourceExt;
use livecast_core::{Error, RegionName, StreamId, StreamStatus};
use livecast_proto::{topics, v1};
use prost::Message;

use super::Ingest;
use crate::config::IngestSettings;
use crate::directory::{AuthorizedStream, StreamDirectory};
use crate::publish::{Departure, MediaChunk, PublishGate};

const WINDOW: Duration = Duration::from_millis(400);

/// A reconnect window of `window`, slate every `slate_every`, and backup inputs or not.
fn settings(window: Duration, slate_every: Duration, backup_inputs: bool) -> IngestSettings {
    IngestSettings {
        reconnect_window_ms: window.as_millis() as u64,
        slate_ms: slate_every.as_millis() as u32,
        backup_inputs,
        ..IngestSettings::default()
    }
}

/// Longer than the window: no slate in tests about who completes a stream.
fn no_slate() -> IngestSettings {
    settings(WINDOW, Duration::from_secs(60), false)
}

struct OneStream(StreamId);

#[async_trait::async_trait]
impl StreamDirectory for OneStream {
    async fn authorize(&self, _key: &str) -> Result<AuthorizedStream, Error> {
        Ok(AuthorizedStream {
            id: self.0.clone(),
            name: "handover".into(),
            status: StreamStatus::Created,
        })
    }
}

async fn bus() -> Arc<dyn EventBus> {
    let bus = InProcessBus::new();
    for topic in [topics::CHUNKS, topics::STREAM_EVENTS] {
        bus.ensure_topic(topic, 1).await.unwrap();
    }
    Arc::new(bus)
}

/// One ingest instance for a single stream, on a fresh blob directory and `bus`; the chunk
/// events of that bus from the start.
async fn single(
    settings: &IngestSettings,
    bus: &Arc<dyn EventBus>,
    dir: &tempfile::TempDir,
) -> (Ingest, Box<dyn Subscription>) {
    let ingest = Ingest::new(
        Arc::new(OneStream(StreamId::generate())),
        Arc::new(LocalBlobStore::open(dir.path()).await.unwrap()),
        bus.clone(),
        RegionName::parse("test").unwrap(),
        settings,
    );
    let chunks = bus
        .subscribe(topics::CHUNKS, SubscribeOptions::earliest("chunks"))
        .await
        .unwrap();
    (ingest, chunks)
}

fn media(pts_ms: i64) -> MediaChunk {
    MediaChunk {
        bytes: Bytes::from_static(b"chunk"),
        container: SourceExt::Flv,
        pts_ms,
        duration_ms: 2_000,
    }
}

/// Checks that `chunks` follow each other: numbered one after another, each starting on the
/// stream timeline where the one before ended.
fn assert_one_timeline(chunks: &[v1::SourceChunk]) {
    for pair in chunks.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        assert_eq!(after.seq, before.seq + 1, "{chunks:?}");
        assert_eq!(
            after.pts_ms,
            before.pts_ms + i64::from(before.duration_ms),
            "chunk {} does not start where chunk {} ended",
            after.seq,
            before.seq
        );
    }
}

/// Everything on `subscription` that arrives within `wait`.
async fn drain(subscription: &mut Box<dyn Subscription>, wait: Duration) -> Vec<Bytes> {
    let mut out = Vec::new();
    while let Ok(Ok(message)) = tokio::time::timeout(wait, subscription.next()).await {
        out.push(message.payload);
    }
    out
}

#[tokio::test]
async fn a_broadcaster_moving_to_another_instance_continues_the_stream_there() {
    let dir = tempfile::tempdir().unwrap();
    let blob: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(dir.path()).await.unwrap());
    let bus = bus().await;
    let stream = StreamId::generate();
    let instance = || {
        Ingest::new(
            Arc::new(OneStream(stream.clone())),
            blob.clone(),
            bus.clone(),
            RegionName::parse("test").unwrap(),
            &settings(WINDOW, WINDOW * 3 / 8, false),
        )
    };
    let (first, second) = (instance(), instance());
    let mut chunks = bus
        .subscribe(topics::CHUNKS, SubscribeOptions::earliest("chunks"))
        .await
        .unwrap();
    let mut lifecycle = bus
        .subscribe(topics::STREAM_EVENTS, SubscribeOptions::earliest("events"))
        .await
        .unwrap();

    let mut publisher = first.begin("key").await.unwrap();
    publisher.chunk(media(0)).await.unwrap();
    publisher.chunk(media(2_000)).await.unwrap();
    publisher.end(Departure::Dropped).await;
    // The broadcaster reconnects through the other instance a moment later, inside the
    // window, and before the first instance's first piece of slate was due.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let mut publisher = second.begin("key").await.unwrap();
    publisher.chunk(media(5_000)).await.unwrap();
    tokio::time::sleep(WINDOW * 2).await;
    publisher.chunk(media(7_000)).await.unwrap();

    let before_end: Vec<v1::SourceChunk> = drain(&mut chunks, Duration::from_millis(100))
        .await
        .iter()
        .map(|payload| v1::SourceChunk::decode(payload.as_ref()).unwrap())
        .collect();
    assert_one_timeline(&before_end);
    let kinds: Vec<(u32, bool, bool)> = before_end
        .iter()
        .map(|c| (c.epoch, c.slate, c.discontinuity))
        .collect();
    // The new session's encoder starts at 5 s; it continues the timeline where it stands:
    // after the first session and, when it connected a moment after the last chunk was
    // announced, a piece of slate up to the clock.
    let catch_up = kinds.contains(&(1, true, false));
    let mut expected = vec![(0, false, false), (0, false, false)];
    expected.extend(catch_up.then_some((1, true, false)));
    expected.extend([(1, false, true), (1, false, false)]);
    assert_eq!(
        kinds, expected,
        "the first instance's window passed without ending the stream the second one carries"
    );

    publisher.end(Departure::Finished).await;
    let after_end: Vec<v1::SourceChunk> = drain(&mut chunks, WINDOW * 3)
        .await
        .iter()
        .map(|payload| v1::SourceChunk::decode(payload.as_ref()).unwrap())
        .collect();
    let kinds: Vec<(u64, bool, bool)> = after_end
        .iter()
        .map(|c| (c.seq, c.slate, c.end_of_stream))
        .collect();
    let slates = kinds.len().saturating_sub(1);
    let next = before_end.last().unwrap().seq + 1;
    let mut expected: Vec<(u64, bool, bool)> = (0..slates as u64)
        .map(|n| (next + n, true, false))
        .collect();
    expected.push((next + slates as u64, false, true));
    assert!(
        slates >= 1 && kinds == expected,
        "slate bridges even a clean stop, then the stream ends: {kinds:?}"
    );
    let events: Vec<v1::StreamEvent> = drain(&mut lifecycle, Duration::from_millis(100))
        .await
        .iter()
        .map(|payload| v1::StreamEvent::decode(payload.as_ref()).unwrap())
        .collect();
    let complete = v1::StreamStatus::from(StreamStatus::StreamComplete) as i32;
    let completions: Vec<&v1::StreamEvent> = events.iter().filter(|e| e.kind == complete).collect();
    assert_eq!(
        completions.len(),
        1,
        "completed once, by the instance that had the broadcaster last: {events:?}"
    );
    assert_eq!(
        completions[0].segments,
        before_end.len() as u64,
        "the recording ends with the broadcaster's last chunk, not with the slate after it"
    );
}

#[tokio::test]
async fn a_second_publisher_on_the_same_instance_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ingest, _) = single(&no_slate(), &bus().await, &dir).await;
    let _live = ingest.begin("key").await.unwrap();
    let error = ingest.begin("key").await.err().expect("refused");
    assert_eq!(error.kind, livecast_core::ErrorKind::Conflict);
}

#[tokio::test]
async fn while_the_broadcaster_is_away_slate_continues_the_timeline() {
    let dir = tempfile::tempdir().unwrap();
    let (ingest, mut chunks) = single(
        &settings(Duration::from_secs(30), Duration::from_millis(200), false),
        &bus().await,
        &dir,
    )
    .await;
    let mut publisher = ingest.begin("key").await.unwrap();
    publisher.chunk(media(1_000)).await.unwrap();
    publisher.end(Departure::Dropped).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut publisher = ingest.begin("key").await.unwrap();
    publisher.chunk(media(0)).await.unwrap();

    let announced: Vec<v1::SourceChunk> = drain(&mut chunks, Duration::from_millis(100))
        .await
        .iter()
        .map(|payload| v1::SourceChunk::decode(payload.as_ref()).unwrap())
        .collect();
    // The new session starts at 0 on its encoder's clock, after the slate on the stream's.
    assert_one_timeline(&announced);
    assert_eq!(announced[0].pts_ms, 1_000);
    let kinds: Vec<(u32, u32, bool, bool)> = announced
        .iter()
        .map(|c| (c.epoch, c.duration_ms, c.slate, c.discontinuity))
        .collect();
    // About 2 slate chunks in 500 ms, the first 200 ms after the broadcaster left, then one
    // up to the clock when the broadcaster is back; how many exactly depends on the scheduler.
    let away = kinds.iter().filter(|k| k.0 == 0 && k.2).count();
    assert!((1..=3).contains(&away), "{kinds:?}");
    let mut expected = vec![(0, 2_000, false, false)];
    expected.extend(std::iter::repeat_n((0, 200, true, false), away));
    if let Some(catch_up) = kinds.iter().find(|k| k.0 == 1 && k.2) {
        assert!((40..=200).contains(&catch_up.1), "{kinds:?}");
        expected.push(*catch_up);
    }
    expected.push((1, 2_000, false, true));
    assert_eq!(
        kinds, expected,
        "slate from where the last chunk ended, every 200 ms as the time passes, until the \
         broadcaster is back"
    );
}

#[tokio::test]
async fn a_backup_input_takes_a_live_stream_over_and_cuts_the_first_one_off() {
    let dir = tempfile::tempdir().unwrap();
    let (ingest, mut chunks) = single(
        &settings(WINDOW, Duration::from_secs(60), true),
        &bus().await,
        &dir,
    )
    .await;
    let mut main = ingest.begin("key").await.unwrap();
    main.chunk(media(0)).await.unwrap();
    let mut backup = ingest
        .begin("key")
        .await
        .expect("the backup input is admitted");
    let cut_off = main
        .chunk(media(2_000))
        .await
        .expect_err("the first input is cut off");
    assert_eq!(cut_off.kind, livecast_core::ErrorKind::Conflict);
    main.end(Departure::Dropped).await;
    backup.chunk(media(500)).await.unwrap();

    let announced: Vec<(u64, u32, bool)> = drain(&mut chunks, Duration::from_millis(100))
        .await
        .iter()
        .map(|payload| v1::SourceChunk::decode(payload.as_ref()).unwrap())
        .map(|c| (c.seq, c.epoch, c.discontinuity))
        .collect();
    assert_eq!(announced, [(0, 0, false), (1, 1, true)]);
    // The first input leaving does not end the stream the backup carries.
    tokio::time::sleep(WINDOW * 2).await;
    assert!(
        drain(&mut chunks, Duration::from_millis(100))
            .await
            .is_empty()
    );
}

/// The first frame of a session in source `format`, at `pts_ms` on its encoder's clock.
fn first_frame(publisher: &mut Box<dyn crate::publish::Publisher>, pts_ms: i64, format: u64) {
    publisher.growing(crate::publish::ChunkSoFar {
        bytes: b"chunk",
        pts_ms,
        arrived_ms: livecast_core::time::now_millis(),
        format: Some(format),
    });
}

#[tokio::test]
async fn a_session_in_the_streams_format_is_followed_from_its_first_chunk_without_a_discontinuity()
{
    let dir = tempfile::tempdir().unwrap();
    let blob: Arc<dyn BlobStore> = Arc::new(LocalBlobStore::open(dir.path()).await.unwrap());
    let bus = bus().await;
    let stream = StreamId::generate();
    let instance = || {
        let settings = IngestSettings {
            feed_url: "http://ingest.test:50052".into(),
            ..no_slate()
        };
        Ingest::new(
            Arc::new(OneStream(stream.clone())),
            blob.clone(),
            bus.clone(),
            RegionName::parse("test").unwrap(),
            &settings,
        )
    };
    let (first, second) = (instance(), instance());
    let mut chunks = bus
        .subscribe(topics::CHUNKS, SubscribeOptions::earliest("chunks"))
        .await
        .unwrap();
    // The stream's first session, then the broadcaster back on the same instance with the same
    // settings, then on another instance with the same, then with other settings.
    let sessions = [(&first, 7), (&first, 7), (&second, 7), (&second, 8)];
    for (ingest, format) in sessions {
        let mut publisher = ingest.begin("key").await.unwrap();
        first_frame(&mut publisher, 0, format);
        publisher.chunk(media(0)).await.unwrap();
        publisher.end(Departure::Dropped).await;
        // Slate bridges the absence.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let announced: Vec<v1::SourceChunk> = drain(&mut chunks, WINDOW / 4)
        .await
        .iter()
        .map(|payload| v1::SourceChunk::decode(payload.as_ref()).unwrap())
        .filter(|c| !c.slate)
        .collect();
    let kinds: Vec<(u32, bool, bool)> = announced
        .iter()
        .map(|c| (c.epoch, c.opening, c.discontinuity))
        .collect();
    assert_eq!(
        kinds,
        [
            (0, true, false),
            (0, false, false),
            (1, true, false),
            (1, false, false),
            (2, true, false),
            (2, false, false),
            // Another format: no opening, and a discontinuity before it.
            (3, false, true),
        ],
        "each session in the stream's format opens to followers before its first chunk"
    );
    for pair in announced.chunks(2).filter(|pair| pair.len() == 2) {
        let (opening, chunk) = (&pair[0], &pair[1]);
        assert_eq!(
            (opening.seq, opening.pts_ms, opening.feed_url.as_str()),
            (chunk.seq, chunk.pts_ms, "http://ingest.test:50052"),
            "the opening names the chunk that follows it, and where to follow it"
        );
    }
}
