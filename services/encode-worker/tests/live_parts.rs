//! Low-Latency HLS from a worker process on the real engines: chunks are fed over ingest's
//! `ChunkFeed` (gRPC, served by this test with ingest's own feed) while they are cut, one every
//! 2 s. The worker announces parts of every rendition before each chunk is durable, and the
//! parts of a segment laid end to end are the segment. It is SIGKILLed while following a
//! chunk and another worker takes over: that chunk is made whole from the store without parts
//! (so edges drop the dead worker's parts of it), no segment has parts from two workers, and
//! the new worker makes parts again from a later chunk on.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use livecast_core::{EventId, StreamId};
use livecast_proto::{topics, v1};
use support::live::{Broadcaster, everything_announced, until, watch};
use support::*;

const CHUNKS: u32 = 14;
/// The chunk whose parts are coming when the first worker is killed.
const KILLED_DURING: u64 = 4;

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
    let group = format!("encode-worker-{}", EventId::generate());
    let mut first = Some(engines.spawn_worker(&bucket, "first", &group));
    let mut second = None;

    // As ingest does: the next chunk's feed opens before a chunk is announced, and its bytes
    // arrive in real time; a chunk is durable, then its feed says so, then it is announced.
    let mut broadcaster = Broadcaster::start(&stream, chunks, blob.clone(), bus.clone()).await;
    loop {
        if broadcaster.position() == (1, 0) {
            // The worker has joined and made chunk 0 from the store: it follows from here.
            until("segment 0", 60, || {
                !announced.lock().unwrap().segments.is_empty()
            })
            .await;
        }
        let Some((seq, _)) = broadcaster.step().await else {
            break;
        };
        let killed_now = second.is_none()
            && seq == KILLED_DURING
            && announced
                .lock()
                .unwrap()
                .parts
                .iter()
                .any(|(p, _)| p.seq == seq && p.part >= 1);
        if let Some(mut worker) = first.take_if(|_| killed_now) {
            worker.kill();
            second = Some(engines.spawn_worker(&bucket, "second", &group));
        }
    }
    if let Some(mut worker) = first.take() {
        worker.kill();
        panic!("the first worker was never seen following chunk {KILLED_DURING}");
    }
    let mut second = second.expect("a second worker was started");
    let count = u64::from(CHUNKS);
    everything_announced(&announced, count).await;
    second.kill();

    let announced = std::mem::take(&mut *announced.lock().unwrap());
    let seen = announced.by_rendition();
    assert_every_segment_once(&seen, blob.as_ref(), &stream, count, dir.path()).await;

    let parts_of = |rendition: &str, seq: u64| -> Vec<&v1::PartReady> {
        announced
            .parts
            .iter()
            .map(|(p, _)| p)
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
            .any(|(p, _)| p.region == "second" && p.rendition.as_ref().unwrap().name == rendition);
        assert!(
            second_parts,
            "{rendition}: the second worker followed chunks too"
        );
    }
}
