//! A broadcaster's bad day, as a viewer at the low-latency live edge sees it: hls.js in
//! headless Chromium, as the viewer app plays, while ffmpeg pushes, stops and comes back. A
//! broadcaster back inside the reconnect window with the same settings (after a clean stop, a
//! drop, on another ingest instance, or as a backup input taking over) continues one timeline:
//! slate bridges the absence, no playlist, live or recorded, has a discontinuity, and hls.js
//! has no fatal error; its stalls are recorded in the fault table. One back at another
//! resolution needs a discontinuity, and hls.js plays through it with at most one short stall.

use std::time::Duration;

use livecast_core::EventId;
use livecast_tests::player::{Played, Playing, Viewer};
use livecast_tests::{
    Platform, continuous_segments, engines, free_port, record_fault_result, service_binary,
    spawn_platform, test_stream_command,
};
use tokio::process::Child;

const RENDITIONS: [&str; 3] = ["360p", "240p", "audio"];
/// Seconds of its 30 s window a viewer that played on through the change has played (stalls
/// of a few seconds in all included).
const PLAYED_ON_S: f64 = 24.0;

/// What a run saw: the viewer, and whether any live playlist of 360p had a discontinuity.
struct Run {
    played: Played,
    live_discontinuity: bool,
    id: String,
}

/// ffmpeg pushing a `size` test picture with a tone to `url` for `seconds`.
fn push(url: &str, size: &str, seconds: u32) -> Child {
    let mut command = test_stream_command(url, &["-f", "flv"], seconds);
    if size != "640x360" {
        // Another resolution: the same command with another picture.
        let source = format!("testsrc2=size={size}:rate=30");
        let args: Vec<String> = command
            .as_std()
            .get_args()
            .map(|a| {
                a.to_string_lossy()
                    .replace("testsrc2=size=640x360:rate=30", &source)
            })
            .collect();
        command = tokio::process::Command::new("ffmpeg");
        command.args(args).stdin(std::process::Stdio::null());
    }
    command
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ffmpeg runs")
}

/// Watches `id` with hls.js for `seconds` from its first frame while `broadcast` runs, noting
/// whether a live playlist ever lists a discontinuity.
async fn watch_while(
    platform: &Platform,
    id: &str,
    seconds: u32,
    broadcast: impl Future<Output = ()>,
) -> Run {
    let playlist = format!("/stream/{id}/360p/index.m3u8");
    platform
        .wait_for(&playlist, Duration::from_secs(30), |s, b| {
            s == 200 && b.matches(".m4s").count() >= 3
        })
        .await;
    let dir = tempfile::tempdir().unwrap();
    let master = format!("{}/stream/{id}/master.m3u8", platform.http);
    let viewer = Playing::start(&master, seconds, Viewer::App, dir.path());
    let mut broadcast = std::pin::pin!(broadcast);
    let mut broadcast_done = false;
    let mut live_discontinuity = false;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(seconds) + 60);
    let mut viewer = std::pin::pin!(viewer.finish());
    let played = loop {
        tokio::select! {
            played = &mut viewer => break played,
            () = &mut broadcast, if !broadcast_done => broadcast_done = true,
            () = tokio::time::sleep(Duration::from_millis(300)) => {
                let (status, body) = platform.get(&playlist).await;
                live_discontinuity |= status == 200 && body.contains("#EXT-X-DISCONTINUITY\n");
                assert!(tokio::time::Instant::now() < deadline, "the viewer never finished");
            }
        }
    };
    if !broadcast_done {
        broadcast.await;
    }
    Run {
        played,
        live_discontinuity,
        id: id.to_string(),
    }
}

/// The recording of every rendition, once over: whole, and whether it has a discontinuity.
async fn recording_has_discontinuity(platform: &Platform, id: &str) -> bool {
    let mut any = false;
    for rendition in RENDITIONS {
        let vod = platform
            .wait_for(
                &format!("/stream/{id}/{rendition}/index.m3u8"),
                Duration::from_secs(90),
                |s, b| s == 200 && b.contains("#EXT-X-ENDLIST"),
            )
            .await;
        continuous_segments(rendition, &vod);
        any |= vod.contains("#EXT-X-DISCONTINUITY\n");
    }
    any
}

/// Checks a run that must continue one timeline; returns the viewer's cell of the fault table.
/// Checks the viewer played without a fatal error and on past the change, which comes inside
/// its 30 s window: a player stuck there plays less than [`PLAYED_ON_S`]. Its figures.
fn assert_played_on(run: &Run) -> String {
    let figures = run.played.assert_played();
    println!("viewer: {figures}");
    assert!(
        run.played.played_s >= PLAYED_ON_S,
        "hls.js did not play on through the change: {figures}"
    );
    figures
}

async fn assert_one_timeline(platform: &Platform, run: &Run) -> String {
    let figures = assert_played_on(run);
    assert!(
        !run.live_discontinuity,
        "a live playlist listed a discontinuity"
    );
    assert!(
        !recording_has_discontinuity(platform, &run.id).await,
        "the recording has a discontinuity"
    );
    figures
}

async fn platform(backup_inputs: bool) -> Platform {
    spawn_platform(|config| {
        config.ingest.reconnect_window_ms = 15_000;
        config.ingest.backup_inputs = backup_inputs;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcaster_stopping_and_starting_again_continues_one_timeline() {
    let platform = platform(false).await;
    let created = platform.create_stream("Stop and start").await;
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["stream_key"].as_str().unwrap(),
    );
    let url = format!("{}/{key}", platform.rtmp);
    let first = push(&url, "640x360", 18);
    let run = watch_while(&platform, id, 30, async {
        // ffmpeg ends its push cleanly (an RTMP unpublish), then starts again 5 s later.
        let _ = first.wait_with_output().await;
        tokio::time::sleep(Duration::from_secs(5)).await;
        let _ = push(&url, "640x360", 14).wait().await;
    })
    .await;
    // Stalls are measured, not yet held to zero (see docs/status.md).
    let figures = assert_one_timeline(&platform, &run).await;
    // Each session's first chunk was followed live like every later one, not made from the
    // store once cut (one chunk falling back under load is allowed).
    let media = platform.counter("livecast_ingest_chunks_total").await;
    let followed = platform
        .counter(r#"livecast_worker_followed_chunks_total{outcome="announced"}"#)
        .await;
    assert!(
        followed >= media - 1.0,
        "{followed} of {media} chunks were followed live"
    );
    record_fault_result([
        "broadcaster stops cleanly and starts again 5 s later (hls.js low-latency viewer)",
        "0 / 0",
        "slate for the absence; no discontinuity",
        &figures,
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_input_takes_over_on_one_timeline() {
    let platform = platform(true).await;
    let created = platform.create_stream("Backup input").await;
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["stream_key"].as_str().unwrap(),
    );
    let url = format!("{}/{key}", platform.rtmp);
    let mut main = push(&url, "640x360", 40);
    let run = watch_while(&platform, id, 30, async {
        tokio::time::sleep(Duration::from_secs(8)).await;
        // The backup encoder takes the stream over; the main one is cut off.
        let backup = push(&url, "640x360", 16);
        let _ = backup.wait_with_output().await;
    })
    .await;
    let _ = main.kill().await;
    let figures = assert_one_timeline(&platform, &run).await;
    record_fault_result([
        "a backup input takes a live stream over (hls.js low-latency viewer)",
        "0 / 0",
        "none; no discontinuity",
        &figures,
    ]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcaster_back_at_another_resolution_plays_through_the_discontinuity() {
    let platform = platform(false).await;
    let created = platform.create_stream("Another resolution").await;
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["stream_key"].as_str().unwrap(),
    );
    let url = format!("{}/{key}", platform.rtmp);
    let mut first = push(&url, "640x360", 40);
    let run = watch_while(&platform, id, 30, async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        first.kill().await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let _ = push(&url, "480x270", 14).wait().await;
    })
    .await;
    let figures = assert_played_on(&run);
    assert!(
        recording_has_discontinuity(&platform, &run.id).await,
        "another resolution is another format: the recording marks it"
    );
    // hls.js flushes and switches down at the new format. What that costs in stalls is
    // measured and recorded, not yet held to a bound: from 0.6 s to 4 s over runs here, where
    // the aim is at most one stall under a second.
    record_fault_result([
        "broadcaster back at another resolution 3 s after a drop (hls.js low-latency viewer)",
        "0 / 0",
        "slate for the absence; a discontinuity at the new format",
        &figures,
    ]);
}

/// The broadcaster dropped and came back 5 s later through another ingest instance: a separate
/// `ingest` process on the same engines takes the second push.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcaster_back_on_another_ingest_instance_continues_one_timeline() {
    let Some(engines) = engines() else { return };
    let bucket = format!("continuity-{}", EventId::generate());
    let platform = engines
        .platform(&bucket, |config| config.ingest.reconnect_window_ms = 15_000)
        .await;
    let rtmp = free_port();
    let mut other = std::process::Command::new(service_binary("ingest"))
        .env("LIVECAST_RTMP_ADDR", format!("127.0.0.1:{rtmp}"))
        .env("LIVECAST_GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
        .env("LIVECAST_HTTP__ADDR", format!("127.0.0.1:{}", free_port()))
        .env("LIVECAST_CATALOGUE_ENDPOINT", &platform.grpc)
        .envs(engines.service_env(&bucket))
        .env("LIVECAST_INGEST__TOPIC_PARTITIONS", "4")
        .env("LIVECAST_INGEST__RECONNECT_WINDOW_MS", "15000")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("the ingest binary starts");
    let created = platform.create_stream("Another instance").await;
    let (id, key) = (
        created["id"].as_str().unwrap(),
        created["stream_key"].as_str().unwrap(),
    );
    let mut first = push(&format!("{}/{key}", platform.rtmp), "640x360", 40);
    let run = watch_while(&platform, id, 30, async {
        tokio::time::sleep(Duration::from_secs(10)).await;
        first.kill().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        let url = format!("rtmp://127.0.0.1:{rtmp}/live/{key}");
        let _ = push(&url, "640x360", 14).wait().await;
    })
    .await;
    let figures = assert_one_timeline(&platform, &run).await;
    let _ = other.kill();
    let _ = other.wait();
    record_fault_result([
        "broadcaster killed and back 5 s later on another ingest instance (hls.js low-latency \
         viewer)",
        "0 / 0",
        "slate for the absence; no discontinuity",
        &figures,
    ]);
}
