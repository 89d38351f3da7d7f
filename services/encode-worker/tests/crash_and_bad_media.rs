//! The encode worker on the real engines (the Kafka-protocol broker and the S3 server that the
//! test script starts): a worker process killed mid-stream loses and duplicates nothing, and a
//! corrupted chunk is reported and slated while the stream goes on.

mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use bytes::Bytes;
use livecast_core::{EventId, RegionName, StreamId};
use livecast_encode_worker::{ChunkOutcome, EncodeWorker, WorkerSettings};
use livecast_proto::{topics, v1};
use prost::Message;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_stream_is_replaced_without_a_missing_or_duplicated_segment() {
    let Some(engines) = engines() else { return };
    let dir = tempfile::tempdir().unwrap();
    let chunks = source_chunks(dir.path(), 24);
    let (bucket, blob) = engines.fresh_bucket().await;
    let bus = engines.bus().await;
    let stream = StreamId::generate();
    let mut segments = segment_events(bus.as_ref()).await;
    for (seq, media) in chunks.into_iter().enumerate() {
        let event = store_chunk(blob.as_ref(), &stream, seq as u64, media).await;
        bus.publish(
            topics::CHUNKS,
            stream.as_str(),
            Bytes::from(event.encode_to_vec()),
        )
        .await
        .unwrap();
    }
    let count = 12u64;
    // A group of this test's own: other tests share the broker and the chunks topic.
    let group = format!("encode-worker-{}", EventId::generate());

    let mut first = engines.spawn_worker(&bucket, "first", &group);
    let mut seen = BTreeMap::new();
    segments_until(&mut segments, &stream, &mut seen, None, |seen| {
        seen.get("360p").is_some_and(|seqs| seqs.len() >= 4)
    })
    .await;
    first.kill();
    let killed_at = Instant::now();
    let done_before_kill = seen["360p"].len();

    let mut second = engines.spawn_worker(&bucket, "second", &group);
    let resumed_at = segments_until(
        &mut segments,
        &stream,
        &mut seen,
        Some("second"),
        all_seqs_of_every_rendition(count),
    )
    .await;
    second.kill();
    assert_every_segment_once(&seen, blob.as_ref(), &stream, count, dir.path()).await;
    if let Some(resumed_at) = resumed_at {
        // One row of the fault table that `make chaos` writes into bench/RESULTS.md.
        println!(
            "fault result: | one encode-worker process SIGKILLed mid-stream, durable chunks only \
             (no live feed: the consumer group's rebalance) ({done_before_kill} of {count} chunks \
             done), another started | 0 / 0 | 0 s | publishing paused {:.1} s (no viewer) |",
            resumed_at.duration_since(killed_at).as_secs_f64()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_chunk_is_reported_and_slated_and_the_stream_goes_on() {
    let Some(engines) = engines() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut chunks = source_chunks(dir.path(), 6);
    // Chunk 1's bytes are overwritten after its FLV header.
    let mut corrupted = chunks[1].0.to_vec();
    for (i, byte) in corrupted.iter_mut().enumerate().skip(13) {
        *byte = (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[2];
    }
    chunks[1].0 = Bytes::from(corrupted);
    let (_bucket, blob) = engines.fresh_bucket().await;
    let bus = engines.bus().await;
    let mut segments = segment_events(bus.as_ref()).await;
    let settings = WorkerSettings {
        preset: "ultrafast".into(),
        ..WorkerSettings::default()
    };
    let worker = EncodeWorker::new(
        blob.clone(),
        bus.clone(),
        RegionName::parse("test").unwrap(),
        settings.ladder(),
        settings.transcode_options(),
    )
    .unwrap();
    let stream = StreamId::generate();
    let mut outcomes = Vec::new();
    for (seq, media) in chunks.into_iter().enumerate() {
        let event = store_chunk(blob.as_ref(), &stream, seq as u64, media).await;
        outcomes.push(worker.handle(&event).await.unwrap());
    }
    assert_eq!(
        outcomes,
        [
            ChunkOutcome::Encoded,
            ChunkOutcome::BadInput,
            ChunkOutcome::Encoded
        ]
    );

    let mut seen = BTreeMap::new();
    segments_until(
        &mut segments,
        &stream,
        &mut seen,
        None,
        all_seqs_of_every_rendition(3),
    )
    .await;
    for rendition in RENDITIONS {
        let contents: Vec<(i32, bool)> = seen[rendition]
            .values()
            .map(|events| {
                (
                    events[0].content,
                    events[0].content_reason.contains("chunk 1"),
                )
            })
            .collect();
        let (source, slate) = (
            v1::SegmentContent::Source as i32,
            v1::SegmentContent::Slate as i32,
        );
        assert_eq!(
            contents,
            [(source, false), (slate, true), (source, false)],
            "{rendition}"
        );
        assert_plays(
            dir.path(),
            rendition,
            &rendition_bytes(blob.as_ref(), &stream, rendition, 3).await,
        );
    }
    println!(
        "fault result: | corrupted chunk between two good ones | 0 / 0 | its 2 s, slated in every \
         rendition | none: the slate takes its place |"
    );
}
