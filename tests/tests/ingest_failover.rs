//! An ingest instance dies mid-broadcast and the broadcaster reconnects to another one: the
//! first instance is a separate `ingest` process, SIGKILLed 10 s into the push; the second is
//! the all-in-one platform's own ingest. Both share the Kafka-protocol broker and the S3 server
//! that the test script starts, and the platform's catalogue. A viewer follows the live
//! playlist all along; the stream goes on with the same id, continuous sequence numbers and
//! one timeline (no discontinuity: the broadcaster came back with the same settings).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use livecast_core::EventId;
use livecast_tests::viewer::watch_live;
use livecast_tests::{
    Engines, continuous_segments, engines, free_port, listed_seconds, play_to_end,
    record_fault_result, service_binary, test_stream_command,
};

const FIRST_PUSH_SECONDS: u64 = 10;
const SECOND_PUSH_SECONDS: u32 = 14;

/// The first ingest instance: its own process on the shared blob store, bus and catalogue.
fn spawn_ingest(engines: &Engines, bucket: &str, catalogue: &str) -> (Child, String) {
    let (rtmp, http, grpc) = (free_port(), free_port(), free_port());
    let mut child = Command::new(service_binary("ingest"))
        .env("LIVECAST_RTMP_ADDR", format!("127.0.0.1:{rtmp}"))
        .env("LIVECAST_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("LIVECAST_HTTP__ADDR", format!("127.0.0.1:{http}"))
        .env("LIVECAST_CATALOGUE_ENDPOINT", catalogue)
        .envs(engines.service_env(bucket))
        .env("LIVECAST_INGEST__TOPIC_PARTITIONS", "4")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the ingest binary starts");
    for _ in 0..150 {
        if std::net::TcpStream::connect(("127.0.0.1", rtmp)).is_ok() {
            return (child, format!("rtmp://127.0.0.1:{rtmp}/live"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the first ingest instance never listened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_broadcaster_moving_to_another_ingest_instance_after_a_crash_continues_the_stream() {
    let Some(engines) = engines() else { return };
    let bucket = format!("failover-{}", EventId::generate());
    let platform = engines.platform(&bucket, |_| {}).await;
    let (mut first_ingest, first_rtmp) = spawn_ingest(&engines, &bucket, &platform.grpc);

    let created = platform.create_stream("Ingest fail-over").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();
    let mut first_push = test_stream_command(&format!("{first_rtmp}/{key}"), &["-f", "flv"], 60)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pushed_at = tokio::time::Instant::now();
    let live = format!("/stream/{id}/360p/index.m3u8");
    // The viewer waits for the playlist, then joins three segments behind live.
    let viewer = tokio::spawn(watch_live(
        format!("{}{live}", platform.http),
        // Past the VOD deadline below, so a slow machine fails on what it asserts, not here.
        Duration::from_secs(180),
    ));

    tokio::time::sleep_until(pushed_at + Duration::from_secs(FIRST_PUSH_SECONDS)).await;
    first_ingest.kill().expect("SIGKILL");
    first_ingest.wait().unwrap();
    // The broadcaster notices and reconnects to the other instance at once (as OBS does to
    // its backup server).
    let _ = first_push.wait().await;
    let second_push = test_stream_command(
        &format!("{}/{key}", platform.rtmp),
        &["-f", "flv"],
        SECOND_PUSH_SECONDS,
    )
    .status()
    .await
    .unwrap();
    assert!(
        second_push.success(),
        "the second instance took the broadcast"
    );

    let vod = platform
        .wait_for(&live, Duration::from_secs(60), |s, b| {
            s == 200 && b.contains("#EXT-X-ENDLIST")
        })
        .await;
    let segments = continuous_segments("360p", &vod);
    assert!(
        !segments.iter().any(|s| s.discontinuity),
        "the same broadcaster on another instance continues one timeline: {vod}"
    );
    let listed = listed_seconds(&segments);
    let pushed = FIRST_PUSH_SECONDS as f64 + f64::from(SECOND_PUSH_SECONDS);
    let lost = (pushed - listed).max(0.0);
    // At most the chunk the dead instance was still cutting (up to 2 s), the frames in flight,
    // and ffmpeg's start-up before its first frame (counted as pushed here).
    assert!(lost < 4.0, "{listed:.1} s listed of {pushed} s pushed");
    play_to_end(&format!("{}{live}", platform.http))
        .await
        .unwrap_or_else(|e| panic!("the recording does not play: {e}"));

    let stalls = viewer.await.unwrap().assert_whole();
    record_fault_result([
        "ingest instance SIGKILLed 10 s in, broadcaster reconnects to another instance at once",
        "0 / 0",
        &format!("{lost:.1} s (the dead instance's unfinished chunk)"),
        &stalls,
    ]);
}
