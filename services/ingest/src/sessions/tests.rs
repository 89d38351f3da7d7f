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
        chunk_target_ms: slate_every.as_millis() as u32,
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
            &no_slate(),
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
    // The first instance bridges the absence with slate at once; the broadcaster reconnects
    // through the other instance a moment later, inside the window.
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
    let numbered: Vec<(u32, u64, bool, bool, i64)> = before_end
        .iter()
        .map(|c| (c.epoch, c.seq, c.slate, c.discontinuity, c.pts_ms))
        .collect();
    assert_eq!(
        numbered,
        vec![
            (0, 0, false, false, 0),
            (0, 1, false, false, 2_000),
            (0, 2, true, false, 4_000),
            // The new session's encoder starts at 5 s; it continues the timeline after the slate.
            (1, 3, false, true, 4_000 + 60_000),
            (1, 4, false, false, 4_000 + 60_000 + 2_000),
        ],
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
    assert_eq!(
        kinds,
        [(5, true, false), (6, false, true)],
        "slate bridges even a clean stop, then the stream ends"
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
        completions[0].segments, 5,
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

    let announced: Vec<(u64, u32, i64, u32, bool, bool)> =
        drain(&mut chunks, Duration::from_millis(100))
            .await
            .iter()
            .map(|payload| v1::SourceChunk::decode(payload.as_ref()).unwrap())
            .map(|c| {
                (
                    c.seq,
                    c.epoch,
                    c.pts_ms,
                    c.duration_ms,
                    c.slate,
                    c.discontinuity,
                )
            })
            .collect();
    // About 2 slate chunks in 500 ms; how many exactly depends on the scheduler.
    let slates = announced.len() - 2;
    assert!((1..=3).contains(&slates), "{announced:?}");
    let mut expected = vec![(0, 0, 1_000, 2_000, false, false)];
    for n in 0..slates {
        expected.push((1 + n as u64, 0, 3_000 + 200 * n as i64, 200, true, false));
    }
    // The new session starts at 0 on its encoder's clock, after the slate on the stream's.
    let after_slate = 3_000 + 200 * slates as i64;
    expected.push((1 + slates as u64, 1, after_slate, 2_000, false, true));
    assert_eq!(
        announced, expected,
        "slate from where the last chunk ended, at once and every 200 ms, until the broadcaster \
         is back"
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
