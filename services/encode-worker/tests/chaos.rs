//! The long form of the worker crash scenario, run by `make chaos` (ignored by `make test`): a
//! 2-minute stream whose chunks arrive live, one every 2 s, while one of two worker processes
//! is SIGKILLed every 20 s and started again. No segment may be missing or stored twice; the
//! longest pause in publishing is printed.

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_core::{EventId, StreamId};
use livecast_proto::topics;
use prost::Message;
use support::*;

const STREAM_SECONDS: u32 = 120;
const KILL_EVERY: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "long form, about 3 minutes: make chaos"]
async fn two_workers_one_killed_every_20_seconds_for_2_minutes_lose_no_segment() {
    let Some(engines) = engines() else { return };
    let dir = tempfile::tempdir().unwrap();
    let chunks = source_chunks(dir.path(), STREAM_SECONDS);
    let count = chunks.len() as u64;
    let (bucket, blob) = engines.fresh_bucket().await;
    let bus = engines.bus().await;
    let stream = StreamId::generate();
    let group = format!("encode-worker-{}", EventId::generate());
    let mut segments = segment_events(bus.as_ref()).await;
    let mut workers = [
        engines.spawn_worker(&bucket, "w0", &group),
        engines.spawn_worker(&bucket, "w1", &group),
    ];

    // The broadcaster: one chunk every 2 s, as ingest announces them.
    let started = Instant::now();
    let live = {
        let (blob, bus, stream) = (blob.clone(), bus.clone(), stream.clone());
        tokio::spawn(async move {
            for (seq, chunk) in chunks.into_iter().enumerate() {
                let due = started + Duration::from_secs(2) * seq as u32;
                tokio::time::sleep_until(due.into()).await;
                let event = store_chunk(blob.as_ref(), &stream, seq as u64, chunk).await;
                let payload = Bytes::from(event.encode_to_vec());
                bus.publish(topics::CHUNKS, stream.as_str(), payload)
                    .await
                    .unwrap();
            }
        })
    };
    // The chaos: every 20 s one worker is SIGKILLed and started again.
    let chaos = tokio::spawn(async move {
        let mut kills = 0;
        while started.elapsed() < Duration::from_secs(u64::from(STREAM_SECONDS)) {
            tokio::time::sleep(KILL_EVERY).await;
            let victim = kills % 2;
            workers[victim].kill();
            kills += 1;
            workers[victim] = engines.spawn_worker(&bucket, &format!("w{victim}"), &group);
        }
        (kills, workers)
    });

    let mut seen = BTreeMap::new();
    let mut arrivals = Vec::new();
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(u64::from(STREAM_SECONDS) + 90);
    while !all_seqs_of_every_rendition(count)(&seen) {
        let message = tokio::time::timeout_at(deadline, segments.next())
            .await
            .expect("segments stopped arriving")
            .unwrap();
        let ready = livecast_proto::v1::SegmentReady::decode(message.payload.as_ref()).unwrap();
        if ready.stream_id != stream.as_str() {
            continue;
        }
        arrivals.push(Instant::now());
        let rendition = ready.rendition.as_ref().unwrap().name.clone();
        seen.entry(rendition)
            .or_insert_with(BTreeMap::new)
            .entry(ready.seq)
            .or_insert_with(Vec::new)
            .push(ready);
    }
    live.await.unwrap();
    let (kills, mut workers) = chaos.await.unwrap();
    for worker in &mut workers {
        worker.kill();
    }

    assert_every_segment_once(&seen, blob.as_ref(), &stream, count, dir.path()).await;
    let longest_pause = arrivals
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or_default();
    let redone = seen
        .values()
        .flat_map(|seqs| seqs.values())
        .filter(|events| events.len() > 1)
        .count();
    // One row of the fault table that `make chaos` writes into bench/RESULTS.md.
    println!(
        "fault result: | {STREAM_SECONDS} s live stream, one of two encode workers SIGKILLed every \
         {} s ({kills} kills, {count} chunks) | 0 / 0 | 0 s | publishing paused {:.1} s at most; \
         {redone} segment events repeated by a redone chunk |",
        KILL_EVERY.as_secs(),
        longest_pause.as_secs_f64()
    );
}
