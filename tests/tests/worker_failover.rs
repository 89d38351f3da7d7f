//! A worker dies and a viewer at the low-latency live edge does not notice: the platform runs
//! with its encoding done by two separate `encode-worker` processes (tansu, s3s-fs), ffmpeg
//! pushes a source carrying each frame's number, and hls.js in headless Chromium plays it as
//! the viewer app does (low-latency mode). The worker making the stream's parts is SIGKILLed in
//! the middle of a segment; its standby publishes in its place. The viewer must see no stall
//! and no fatal error and stay under 3 s glass-to-glass once it caught up from its join
//! (the join is reported, not judged: hls.js starts up to a second further back at an
//! independent part and catches up at 1.25x); the recording then lists every segment
//! once per rendition, and every rendition decodes without an error.
//!
//! The long form (`make chaos`): a worker SIGKILLed every 20 s for 2 minutes and started again.

use std::time::Duration;

use livecast_tests::fleet::{Fleet, JOIN_S, Worker, WorkerOptions};
use livecast_tests::player::Viewer;
use livecast_tests::{Platform, continuous_segments, engines, record_fault_result};

/// The viewer watches this long; the worker is killed about halfway.
const WATCH_S: u32 = 40;
const SOURCE: (u32, u32) = (640, 360);
const RENDITIONS: [&str; 3] = ["360p", "240p", "audio"];
/// Glass-to-glass a viewer in low-latency mode must stay under, from the join's catch-up on.
const WORST_GLASS_MS: f64 = 3_000.0;
/// How long a standby has stood by before its primary is killed: two chunks.
const IN_STEP: Duration = Duration::from_secs(4);

/// Parts the newest segment being made has listed so far (those after the last whole segment).
fn open_parts(playlist: &str) -> usize {
    let lines: Vec<&str> = playlist.lines().collect();
    let after_last_segment = lines
        .iter()
        .rposition(|line| !line.starts_with('#') && line.ends_with(".m4s"))
        .map_or(0, |at| at + 1);
    lines[after_last_segment..]
        .iter()
        .filter(|line| line.starts_with("#EXT-X-PART:"))
        .count()
}

/// Kills whichever of `workers` is the stream's primary, once its standby has stood by for
/// [`IN_STEP`] (a standby recruited moments ago, after an earlier take-over, starts at the next
/// chunk and is not in step yet) and the segment being made has some parts but not all: in the
/// middle of a segment. Its index.
async fn kill_the_primary_mid_segment(
    platform: &Platform,
    id: &str,
    workers: &mut [Worker],
) -> usize {
    let playlist = format!("/stream/{id}/360p/index.m3u8");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // The pair of workers last seen as (primary, standby), and since when.
    let mut pair_since: Option<((usize, usize), tokio::time::Instant)> = None;
    loop {
        let mut primary = None;
        let mut standby = None;
        let mut roles = Vec::new();
        for (index, worker) in workers.iter().enumerate() {
            let (primaries, standbys) = (
                worker.live_streams("primary").await,
                worker.live_streams("standby").await,
            );
            if primaries >= 1.0 {
                primary = Some(index);
            }
            if standbys >= 1.0 {
                standby = Some(index);
            }
            roles.push((primaries, standbys));
        }
        let (status, body) = platform.get(&playlist).await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "no primary with a standby in 30 s: workers' (primary, standby) streams {roles:?}; \
             playlist {status}:\n{body}"
        );
        let pair = primary.zip(standby);
        pair_since = match (pair, pair_since) {
            (Some(pair), Some((seen, since))) if pair == seen => Some((pair, since)),
            (Some(pair), _) => Some((pair, tokio::time::Instant::now())),
            (None, _) => None,
        };
        let in_step = pair_since.is_some_and(|(_, since)| since.elapsed() >= IN_STEP);
        let mid_segment = status == 200 && (1..=3).contains(&open_parts(&body));
        if let (Some((index, _)), true, true) = (pair, in_step, mid_segment) {
            workers[index].kill();
            return index;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The recording lists every segment once per rendition, and each rendition decodes without
/// an error (the segments where two workers met included).
async fn assert_recording_whole(fleet: &Fleet, id: &str) {
    for rendition in RENDITIONS {
        continuous_segments(rendition, &fleet.recording(id, rendition).await);
        if let Some(errors) = fleet.decode_errors(id, rendition).await {
            panic!("{rendition} does not decode cleanly: {errors}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_segment_costs_a_low_latency_viewer_no_stall() {
    let Some(engines) = engines() else { return };
    let mut fleet = Fleet::start(engines, 2, WorkerOptions::default()).await;
    let (id, seen) = fleet
        .broadcast_and_watch(SOURCE, Viewer::App, WATCH_S, async |fleet, id| {
            // Halfway through the viewer's window.
            tokio::time::sleep(Duration::from_secs(u64::from(JOIN_S + WATCH_S / 2))).await;
            let index = kill_the_primary_mid_segment(&fleet.platform, id, &mut fleet.workers).await;
            // Kubernetes starts the crashed pod again a few seconds later. The viewer is
            // already past the kill; the new member also hands the dead worker's partitions on
            // (the test broker, tansu 0.6, keeps a vanished member's partitions unassigned
            // until the group changes, where Kafka moves them after the session timeout), so
            // slate and the end of the broadcast are made.
            tokio::time::sleep(Duration::from_secs(3)).await;
            fleet.workers[index] = fleet.spawn_worker(&format!("worker-{index}-restarted"));
        })
        .await;
    let figures = seen.assert_usable();
    println!("viewer across the kill: {figures}");
    assert_eq!(seen.stalls, 0, "the viewer stalled: {figures}");
    assert!(
        seen.settled_worst_ms < WORST_GLASS_MS,
        "glass-to-glass went over {WORST_GLASS_MS} ms: {figures}"
    );
    assert_recording_whole(&fleet, &id).await;
    record_fault_result([
        "encode worker making the parts SIGKILLed mid-segment (two workers, hls.js low-latency \
         viewer)",
        "0 / 0",
        "0 s",
        &figures,
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "long form, about 3 minutes: make chaos"]
async fn a_worker_killed_every_20_seconds_for_2_minutes_costs_a_low_latency_viewer_no_stall() {
    let Some(engines) = engines() else { return };
    let mut fleet = Fleet::start(engines, 2, WorkerOptions::default()).await;
    let mut kills = 0;
    let (id, seen) = fleet
        .broadcast_and_watch(SOURCE, Viewer::App, 120 + 10, async |fleet, id| {
            tokio::time::sleep(Duration::from_secs(u64::from(JOIN_S))).await;
            for restart in 1..=6 {
                tokio::time::sleep(Duration::from_secs(20)).await;
                let index =
                    kill_the_primary_mid_segment(&fleet.platform, id, &mut fleet.workers).await;
                // Started again at once, as Kubernetes restarts a crashed pod.
                fleet.workers[index] =
                    fleet.spawn_worker(&format!("worker-{index}-restart-{restart}"));
                kills = restart;
            }
        })
        .await;
    let figures = seen.assert_usable();
    println!("viewer across {kills} kills: {figures}");
    assert_eq!(seen.stalls, 0, "the viewer stalled: {figures}");
    assert_recording_whole(&fleet, &id).await;
    record_fault_result([
        &format!(
            "encode worker making the parts SIGKILLed every 20 s for 2 minutes and restarted \
             ({kills} kills, hls.js low-latency viewer)"
        ),
        "0 / 0",
        "0 s",
        &figures,
    ]);
}
