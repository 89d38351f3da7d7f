//! The RTMP server against a real broadcaster (the ffmpeg command line) and hostile clients.

mod support;

use std::time::Duration;

use livecast_formats::flv::parse_flv;
use livecast_ingest::publish::Departure;
use rand::RngCore;
use support::{
    GOOD_KEY, decode_errors, eventually, ffmpeg_publish, first_video_frame_is_key, probe_streams,
    spawn_app, test_config, wait_child,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One video frame at 30 fps, the tolerance for "continuous".
const FRAME_MS: i64 = 34;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_is_cut_into_self_contained_chunks() {
    let app = spawn_app(test_config()).await;
    let ffmpeg = ffmpeg_publish(&app.url("live", GOOD_KEY), 7);
    let (status, stderr) = wait_child(ffmpeg, Duration::from_secs(60)).await;
    assert!(status.success(), "ffmpeg failed: {stderr}");
    assert!(
        eventually(Duration::from_secs(10), || app
            .count(|r| r.departures.len())
            == 1)
        .await,
        "the publish was never ended"
    );
    assert_eq!(
        app.recording.lock().unwrap().departures,
        vec![Departure::Finished],
        "ffmpeg unpublishes when its input ends: no slate for a broadcaster that finished"
    );

    let chunks = app.chunks();
    assert!((3..=5).contains(&chunks.len()), "{} chunks", chunks.len());
    let total: i64 = chunks.iter().map(|c| i64::from(c.duration_ms)).sum();
    assert!(
        (6_500..=7_500).contains(&total),
        "chunks last {total} ms in all"
    );
    for pair in chunks.windows(2) {
        let expected = pair[0].pts_ms + i64::from(pair[0].duration_ms);
        assert!(
            (pair[1].pts_ms - expected).abs() <= FRAME_MS,
            "gap between chunks: {} then {}",
            expected,
            pair[1].pts_ms
        );
        assert!(
            (1_900..=2_100).contains(&pair[0].duration_ms),
            "{}",
            pair[0].duration_ms
        );
    }
    for chunk in &chunks {
        parse_flv(&chunk.bytes).expect("chunk is FLV");
        assert_eq!(
            probe_streams(&chunk.path),
            ["aac,audio", "h264,video"],
            "{:?}",
            chunk.path
        );
        assert!(first_video_frame_is_key(&chunk.path), "{:?}", chunk.path);
        assert_eq!(decode_errors(&chunk.path), None, "{:?}", chunk.path);
    }
    assert_eq!(app.count(|r| r.begun), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_and_records_nothing() {
    let app = spawn_app(test_config()).await;
    let ffmpeg = ffmpeg_publish(&app.url("live", "wrong-key"), 3);
    let (status, _) = wait_child(ffmpeg, Duration::from_secs(30)).await;
    assert!(!status.success(), "ffmpeg published with a wrong key");
    assert_eq!(app.count(|r| r.refused), 1);
    assert_eq!(app.count(|r| r.begun), 0);
    assert!(app.chunks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_app_and_play_requests_are_refused() {
    let app = spawn_app(test_config()).await;
    let wrong_app = ffmpeg_publish(&app.url("other", GOOD_KEY), 3);
    let (status, _) = wait_child(wrong_app, Duration::from_secs(30)).await;
    assert!(!status.success(), "ffmpeg published to an unknown app");

    let player = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-i"])
        .arg(app.url("live", GOOD_KEY))
        .args(["-t", "1", "-f", "null", "-"])
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let (status, _) = wait_child(player, Duration::from_secs(30)).await;
    assert!(!status.success(), "ffmpeg played from an ingest server");
    assert_eq!(app.count(|r| r.begun), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_bytes_are_closed_without_affecting_a_publish() {
    let app = spawn_app(test_config()).await;
    let ffmpeg = ffmpeg_publish(&app.url("live", GOOD_KEY), 4);
    assert!(
        eventually(Duration::from_secs(20), || app.count(|r| r.begun) == 1).await,
        "the good publish did not start"
    );

    let mut garbage = vec![0u8; 4096];
    rand::rng().fill_bytes(&mut garbage);
    let mut client = TcpStream::connect(app.addr).await.unwrap();
    // The server may close while this is still being written.
    let _ = client.write_all(&garbage).await;
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        let mut sink = [0u8; 8192];
        loop {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the server kept a garbage connection open");

    let (status, stderr) = wait_child(ffmpeg, Duration::from_secs(60)).await;
    assert!(status.success(), "ffmpeg failed: {stderr}");
    assert!(
        eventually(Duration::from_secs(10), || app
            .count(|r| r.departures.len())
            == 1)
        .await
    );
    let chunks = app.chunks();
    assert!(chunks.len() >= 2, "{} chunks", chunks.len());
    for chunk in &chunks {
        assert_eq!(decode_errors(&chunk.path), None, "{:?}", chunk.path);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_limit_are_closed_at_once() {
    let config = livecast_ingest::rtmp::RtmpConfig {
        max_connections: 1,
        ..test_config()
    };
    let app = spawn_app(config).await;
    // Holds the only slot, silently, inside its handshake timeout.
    let _first = TcpStream::connect(app.addr).await.unwrap();
    let mut second = TcpStream::connect(app.addr).await.unwrap();
    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(1), second.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(Ok(0) | Err(_))),
        "the second connection was served: {read:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_flushes_and_ends_a_live_publish() {
    let mut app = spawn_app(test_config()).await;
    let ffmpeg = ffmpeg_publish(&app.url("live", GOOD_KEY), 8);
    assert!(
        eventually(Duration::from_secs(20), || !app.chunks().is_empty()).await,
        "no chunk arrived"
    );
    app.shutdown.cancel();
    let server = app.server.take().unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the server drained in time")
        .unwrap()
        .unwrap();
    assert_eq!(
        app.recording.lock().unwrap().departures,
        vec![Departure::Dropped]
    );
    // The flushed remainder is a chunk of its own, after the complete ones.
    assert!(app.chunks().len() >= 2);
    let mut ffmpeg = ffmpeg;
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
}
