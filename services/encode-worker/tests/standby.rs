//! A hot standby takes a live stream over inside a player's buffer, on the real engines: two
//! worker processes, chunks fed over ingest's own `ChunkFeed` as they are cut. One worker makes
//! the stream's parts; the other, recruited as its standby, encodes the same chunks in step.
//! The primary is SIGKILLed in the middle of a segment: the standby publishes the rest of that
//! segment's parts and carries the stream on. No part and no segment is missing or announced
//! twice, the segment where the two met is its parts end to end (both made the same bytes) and
//! plays, and parts keep coming: the longest wait between two parts of a rendition is printed
//! and bounded.

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use livecast_core::{EventId, StreamId};
use livecast_proto::{topics, v1};
use support::live::{Broadcaster, everything_announced, until, watch};
use support::*;

const CHUNKS: u32 = 12;
/// The longest two parts of a rendition may be apart around the takeover: a part lasts about
/// 470 ms, and a player in low-latency mode holds about three.
const LONGEST_PART_WAIT: Duration = Duration::from_millis(1_200);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_publishes_in_the_killed_primarys_place_without_a_gap() {
    let Some(engines) = engines() else { return };
    let dir = tempfile::tempdir().unwrap();
    let chunks = source_chunks(dir.path(), CHUNKS * 2);
    let (bucket, blob) = engines.fresh_bucket().await;
    let bus = engines.bus().await;
    bus.ensure_topic(topics::PARTS, 4).await.unwrap();
    let stream = StreamId::generate();
    let announced = watch(&bus, &stream).await;
    let group = format!("encode-worker-{}", EventId::generate());
    let mut workers = [
        engines.spawn_worker(&bucket, "a", &group),
        engines.spawn_worker(&bucket, "b", &group),
    ];

    let mut broadcaster = Broadcaster::start(&stream, chunks, blob.clone(), bus.clone()).await;
    let mut killed: Option<(usize, u64, Instant)> = None;
    loop {
        if broadcaster.position() == (1, 0) {
            until("segment 0", 60, || {
                !announced.lock().unwrap().segments.is_empty()
            })
            .await;
        }
        let Some((seq, _)) = broadcaster.step().await else {
            break;
        };
        if killed.is_some() || seq < 3 {
            continue;
        }
        // The primary is the worker whose parts come; it is killed once its standby is in
        // place and it has published some but not all parts of the segment being made.
        let primary = {
            let announced = announced.lock().unwrap();
            let parts: Vec<&v1::PartReady> = announced
                .parts
                .iter()
                .map(|(p, _)| p)
                .filter(|p| p.seq == seq && !p.rendition.as_ref().unwrap().audio_only)
                .collect();
            let mid_segment = parts.iter().any(|p| p.part >= 1) && !parts.iter().any(|p| p.last);
            let maker = parts.last().map(|p| p.region.clone());
            maker.filter(|_| mid_segment)
        };
        let Some(primary) = primary else { continue };
        let index = workers.iter().position(|w| w.name == primary).unwrap();
        let standby = &workers[1 - index];
        if standby
            .metric("livecast_worker_live_streams{role=\"standby\"}")
            .await
            < 1.0
        {
            continue;
        }
        workers[index].kill();
        killed = Some((index, seq, Instant::now()));
    }
    let (dead, killed_during, killed_at) = killed.expect("the primary was killed mid-segment");
    let survivor = workers[1 - dead].name.clone();

    let count = u64::from(CHUNKS);
    everything_announced(&announced, count).await;
    workers[1 - dead].kill();

    let announced = std::mem::take(&mut *announced.lock().unwrap());
    let seen = announced.by_rendition();
    assert_every_segment_once(&seen, blob.as_ref(), &stream, count, dir.path()).await;

    let mut longest_wait = Duration::ZERO;
    for rendition in RENDITIONS {
        let parts: Vec<&(v1::PartReady, Instant)> = announced
            .parts
            .iter()
            .filter(|(p, _)| p.rendition.as_ref().unwrap().name == rendition)
            .collect();
        for (seq, events) in &seen[rendition] {
            assert_eq!(events.len(), 1, "{rendition} seq {seq} announced twice");
            let segment = &events[0];
            // Every segment after the first is made live, the one where the two met included.
            if *seq == 0 {
                continue;
            }
            let of_segment: Vec<&v1::PartReady> = parts
                .iter()
                .map(|(p, _)| p)
                .filter(|p| p.seq == *seq)
                .collect();
            let indexes: Vec<u32> = of_segment.iter().map(|p| p.part).collect();
            assert_eq!(
                indexes,
                (0..segment.part_count).collect::<Vec<_>>(),
                "{rendition} seq {seq}: each part once, in order"
            );
            let mut joined = blob.get(&segment.init_blob_key).await.unwrap().to_vec();
            let init_len = joined.len();
            for part in &of_segment {
                joined.extend_from_slice(&blob.get(&part.blob_key).await.unwrap());
            }
            let whole = blob.get(&segment.blob_key).await.unwrap();
            assert!(
                joined[init_len..] == whole[..],
                "{rendition} seq {seq}: its parts are not the segment"
            );
            let makers: BTreeSet<&str> = of_segment.iter().map(|p| p.region.as_str()).collect();
            if *seq == killed_during {
                assert_eq!(makers.len(), 2, "{rendition}: both made parts of seq {seq}");
                // As a player at the live edge reads it: the primary's parts, then the
                // standby's, after the init segment.
                assert_plays(dir.path(), &format!("{rendition}-spliced"), &joined);
            } else if *seq > killed_during {
                assert_eq!(
                    makers,
                    BTreeSet::from([survivor.as_str()]),
                    "{rendition} seq {seq}"
                );
            }
        }
        let arrivals: Vec<Instant> = parts.iter().map(|(_, at)| *at).collect();
        let around_kill = arrivals
            .windows(2)
            .filter(|pair| pair[1] > killed_at && pair[0] < killed_at + Duration::from_secs(4))
            .map(|pair| pair[1] - pair[0])
            .max()
            .unwrap_or_default();
        longest_wait = longest_wait.max(around_kill);
    }
    assert!(
        longest_wait <= LONGEST_PART_WAIT,
        "parts paused {longest_wait:?} around the takeover"
    );
    println!(
        "standby takeover: primary SIGKILLed mid-segment {killed_during}; longest wait between two \
         parts of a rendition around it {:.0} ms",
        longest_wait.as_secs_f64() * 1000.0
    );
}
