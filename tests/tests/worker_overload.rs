//! A worker short of CPU keeps audio and the lowest rungs live: the platform's one worker
//! process, pinned to a single core, transcodes a 1080p30 source into the whole ladder with x264
//! `veryfast`, which one core cannot do in real time. As it falls behind it leaves the top rungs
//! out (gaps in their playlists, `EXT-X-GAP`), and hls.js pinned to the lowest rendition, as the
//! viewer app plays it (low-latency mode), plays 60 s without a stall. The fault table records
//! which rungs were left out, and for how much of the broadcast.

use livecast_tests::fleet::{Fleet, WorkerOptions};
use livecast_tests::player::Viewer;
use livecast_tests::{continuous_segments, engines, record_fault_result};

const WATCH_S: u32 = 60;
const SOURCE: (u32, u32) = (1920, 1080);
const LADDER: [&str; 6] = ["1080p", "720p", "480p", "360p", "240p", "audio"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "starves the machine on purpose, so its outcome depends on the CPU left to the \
            broadcaster and the browser: make chaos"]
async fn a_worker_short_of_cpu_keeps_audio_and_the_lowest_rung_live() {
    let Some(engines) = engines() else { return };
    let options = WorkerOptions {
        preset: "veryfast",
        pinned_to_cpu: Some(1),
    };
    let mut fleet = Fleet::start(engines, 1, options).await;
    let (id, seen) = fleet
        .broadcast_and_watch(SOURCE, Viewer::AppLowestRendition, WATCH_S, async |_, _| {})
        .await;
    let figures = seen.assert_usable();
    println!("viewer of the lowest rendition: {figures}");
    assert_eq!(seen.stalls, 0, "the viewer stalled: {figures}");

    let mut left_out = Vec::new();
    for rendition in LADDER {
        let recording = fleet.recording(&id, rendition).await;
        let segments = continuous_segments(rendition, &recording);
        let gaps = recording.matches("#EXT-X-GAP").count();
        println!(
            "{rendition}: {gaps} of {} segments left out",
            segments.len()
        );
        left_out.push((rendition, gaps, segments.len()));
    }
    for (rendition, gaps, _) in &left_out[left_out.len() - 2..] {
        assert_eq!(*gaps, 0, "{rendition} must stay whole");
    }
    let (top, top_gaps, _) = left_out[0];
    assert!(
        top_gaps > 0,
        "{top} was never left out: one core kept up with the whole ladder, so this run proves \
         nothing about a worker short of CPU"
    );
    let summary: Vec<String> = left_out
        .iter()
        .filter(|(_, gaps, _)| *gaps > 0)
        .map(|(rendition, gaps, total)| format!("{rendition} {gaps} of {total} segments"))
        .collect();
    record_fault_result([
        "one worker pinned to one core, 1080p source into the whole ladder with veryfast (hls.js \
         low-latency viewer pinned to the lowest rendition)",
        "0 / 0 (audio and 240p whole)",
        &format!("top rungs left out as gaps: {}", summary.join(", ")),
        &figures,
    ]);
}
