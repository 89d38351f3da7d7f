//! What the worker says of a chunk it cannot make, on the embedded backends: whether the
//! consume loop retries it is the worker's word, not a guess from the error's kind.
//! - a chunk whose source is missing from the blob store, of a stream the store holds source
//!   of, is retried within a budget and, once given up on, slate takes its place;
//! - a chunk of a stream the store never saw is another store's: skipped at once;
//! - a transcoder failure of ours is not bad input: retried, not slated as the broadcaster's.

mod support;

use std::sync::Arc;

use bytes::Bytes;
use livecast_blob::{BlobStore, LocalBlobStore};
use livecast_bus::{EventBus, InProcessBus, SubscribeOptions};
use livecast_core::blob_keys::{self, SourceExt};
use livecast_core::{ErrorKind, RegionName, Retry, StreamId};
use livecast_encode_worker::{ChunkOutcome, EncodeWorker, WorkerSettings};
use livecast_proto::{topics, v1};
use prost::Message;
use support::*;

async fn worker(blob: Arc<dyn BlobStore>, bus: Arc<dyn EventBus>) -> EncodeWorker {
    let settings = WorkerSettings {
        preset: "ultrafast".into(),
        ..WorkerSettings::default()
    };
    EncodeWorker::new(
        blob,
        bus,
        RegionName::parse("test").unwrap(),
        settings.ladder(),
        settings.transcode_options(),
    )
    .unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    blob: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    chunks: Vec<(Bytes, i64)>,
}

async fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let blob: Arc<dyn BlobStore> = Arc::new(
        LocalBlobStore::open(dir.path().join("blobs"))
            .await
            .unwrap(),
    );
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    for topic in [topics::SEGMENTS, topics::PARTS] {
        bus.ensure_topic(topic, 1).await.unwrap();
    }
    let chunks = source_chunks(dir.path(), 4);
    Setup {
        _dir: dir,
        blob,
        bus,
        chunks,
    }
}

#[tokio::test]
async fn a_missing_source_chunk_is_retried_within_a_budget_then_slated() {
    let Setup {
        _dir,
        blob,
        bus,
        mut chunks,
    } = setup().await;
    let mut segments = bus
        .subscribe(topics::SEGMENTS, SubscribeOptions::earliest("viewer"))
        .await
        .unwrap();
    let worker = worker(blob.clone(), bus.clone()).await;
    let stream = StreamId::generate();
    // Ingest began the epoch in this store, and stored chunk 0.
    blob.put(
        &blob_keys::source_epoch_claim(&stream, 0),
        Bytes::from_static(b"ingest-1"),
    )
    .await
    .unwrap();
    let first = store_chunk(blob.as_ref(), &stream, 0, chunks.remove(0)).await;
    assert_eq!(worker.handle(&first).await.unwrap(), ChunkOutcome::Encoded);

    // Chunk 1 was announced, but its bytes are not in the store (yet).
    let (media, pts_ms) = chunks.remove(0);
    let mut missing = store_chunk(blob.as_ref(), &stream, 1, (media, pts_ms)).await;
    blob.delete(&missing.blob_key).await.unwrap();
    let error = worker.handle(&missing).await.expect_err("not there");
    assert_eq!(error.kind, ErrorKind::NotFound);
    assert!(
        matches!(error.retry, Retry::Budget(attempts) if attempts > 1),
        "retried, within a budget: {:?}",
        error.retry
    );

    // Given up on: slate stands in for its time range, in every rendition.
    worker.give_up(&missing, &error).await;
    let mut slated = Vec::new();
    while slated.len() < RENDITIONS.len() {
        let message = segments.next().await.unwrap();
        let ready = v1::SegmentReady::decode(message.payload.as_ref()).unwrap();
        if ready.seq == 1 {
            slated.push(ready);
        }
    }
    for ready in &slated {
        assert_eq!(ready.content, v1::SegmentContent::Slate as i32);
        assert!(
            ready.content_reason.contains("set aside"),
            "{}",
            ready.content_reason
        );
    }

    // A chunk of a stream this store never saw belongs to another store: skipped at once.
    missing.stream_id = StreamId::generate().to_string();
    missing.blob_key = blob_keys::source_chunk(
        &StreamId::parse(missing.stream_id.clone()).unwrap(),
        0,
        1,
        SourceExt::Flv,
    );
    let error = worker.handle(&missing).await.expect_err("not ours");
    assert_eq!(error.retry, Retry::Never);
}

#[tokio::test]
async fn a_transcoder_failure_of_ours_is_not_reported_as_bad_input() {
    let Setup {
        _dir,
        blob,
        bus,
        mut chunks,
    } = setup().await;
    let worker = worker(blob.clone(), bus).await;
    let stream = StreamId::generate();
    // A chunk placed before the start of the stream's timeline: the transcoder refuses the
    // call, which says nothing about the broadcaster's media.
    let mut chunk = store_chunk(blob.as_ref(), &stream, 0, chunks.remove(0)).await;
    chunk.pts_ms = -40;
    let error = worker.handle(&chunk).await.expect_err("refused");
    assert_ne!(error.kind, ErrorKind::InvalidArgument, "{error}");
    assert!(
        matches!(error.retry, Retry::Budget(_)),
        "retried a few times, then set aside: {:?}",
        error.retry
    );
    let cause = std::error::Error::source(&error).expect("the transcoder's error is kept");
    assert!(cause.to_string().contains("-40"), "{cause}");
}
