//! A stream plays without a gap while hostile clients attack the platform: 10,000 idle
//! connections on the RTMP and HTTP ports, slowloris clients dribbling request heads, and
//! garbage instead of RTMP handshakes. Each attacker is cut off by a timeout or a limit; the
//! broadcaster and a viewer polling the live playlist never notice.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use livecast_tests::{
    listed_sequence_numbers, play_to_end, push_test_stream, record_fault_result, spawn_platform,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const IDLE_CONNECTIONS: usize = 10_000;
const SLOWLORIS: usize = 50;
const GARBAGE_HANDSHAKES: usize = 200;
const PUSH_SECONDS: u32 = 24;
/// How long after the last idle client connected every idle HTTP connection must be closed:
/// the 5 s idle timeout plus the time the server takes to accept 10,000 connections on a
/// machine that is also transcoding.
const IDLE_CLOSE_WITHIN: Duration = Duration::from_secs(10);

fn socket_of(url: &str) -> SocketAddr {
    let rest = url.split("://").nth(1).unwrap();
    rest.split('/').next().unwrap().parse().unwrap()
}

/// Opens `count` connections to `addr`, 200 at a time; returns those that connected.
async fn open_idle(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    let mut open = Vec::with_capacity(count);
    for batch in (0..count).collect::<Vec<_>>().chunks(200) {
        let connects = batch.iter().map(|_| TcpStream::connect(addr));
        open.extend(
            futures::future::join_all(connects)
                .await
                .into_iter()
                .flatten(),
        );
    }
    open
}

/// Seconds until the server closed `stream` while we dribble `bytes` one every 500 ms.
async fn dribble_until_closed(mut stream: TcpStream, bytes: &[u8]) -> f64 {
    let started = Instant::now();
    let mut buffer = [0u8; 512];
    for byte in bytes.iter().cycle() {
        if stream.write_all(&[*byte]).await.is_err() {
            break;
        }
        match tokio::time::timeout(Duration::from_millis(500), stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => break,
            _ if started.elapsed() > Duration::from_secs(30) => break,
            _ => {}
        }
    }
    started.elapsed().as_secs_f64()
}

/// Whether the server closed `stream` (EOF or reset) within `within`.
async fn closed_within(mut stream: TcpStream, within: Duration) -> bool {
    let mut buffer = [0u8; 4096];
    let until = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(until, stream.read(&mut buffer)).await {
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_plays_without_a_gap_through_idle_floods_slowloris_and_garbage_handshakes() {
    let platform = spawn_platform(|config| {
        config.http.header_timeout_ms = 3_000;
        config.http.idle_timeout_ms = 5_000;
    })
    .await;
    let created = platform.create_stream("Under attack").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();
    let url = format!("{}/{key}", platform.rtmp);
    let push =
        tokio::spawn(async move { push_test_stream(&url, &["-f", "flv"], PUSH_SECONDS).await });
    let live = format!("/stream/{id}/360p/index.m3u8");
    platform
        .wait_for(&live, Duration::from_secs(30), |s, b| {
            s == 200 && b.contains(".m4s")
        })
        .await;

    let (http, rtmp) = (socket_of(&platform.http), socket_of(&platform.rtmp));
    // A viewer polls the live playlist all along: every answer must be a prompt 200.
    let viewer = {
        let (client, url) = (platform.client.clone(), format!("{}{live}", platform.http));
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let until = Instant::now() + Duration::from_secs(15);
            while Instant::now() < until {
                let asked = Instant::now();
                let response = client
                    .get(&url)
                    .send()
                    .await
                    .expect("the viewer is answered");
                assert_eq!(
                    response.status(),
                    200,
                    "the live playlist during the attack"
                );
                slowest = slowest.max(asked.elapsed());
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            slowest
        })
    };

    let slowloris = (0..SLOWLORIS).map(|_| async move {
        let stream = TcpStream::connect(http).await.unwrap();
        dribble_until_closed(stream, b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaa").await
    });
    let garbage = (0..GARBAGE_HANDSHAKES).map(|n| async move {
        let mut stream = TcpStream::connect(rtmp).await.ok()?;
        let junk: Vec<u8> = (0..4096u32)
            .map(|i| (i * 31 + n as u32 * 7) as u8)
            .collect();
        let _ = stream.write_all(&junk).await;
        Some(closed_within(stream, Duration::from_secs(10)).await)
    });
    let (idle_rtmp, idle_http) = tokio::join!(
        open_idle(rtmp, IDLE_CONNECTIONS * 6 / 10),
        open_idle(http, IDLE_CONNECTIONS * 4 / 10),
    );
    assert_eq!(
        idle_rtmp.len() + idle_http.len(),
        IDLE_CONNECTIONS,
        "every idle client connected"
    );
    let (slowloris, garbage, idle_http_closed) = tokio::join!(
        futures::future::join_all(slowloris),
        futures::future::join_all(garbage),
        futures::future::join_all(
            idle_http
                .into_iter()
                .map(|s| closed_within(s, IDLE_CLOSE_WITHIN))
        ),
    );
    drop(idle_rtmp);

    let longest_slowloris = slowloris.iter().copied().fold(0.0, f64::max);
    assert!(
        longest_slowloris < 6.0,
        "slowloris held on {longest_slowloris:.1} s (head timeout 3 s)"
    );
    let garbage_closed = garbage.iter().filter(|c| **c == Some(true)).count();
    assert_eq!(
        garbage_closed, GARBAGE_HANDSHAKES,
        "every garbage handshake was closed"
    );
    let outlived = idle_http_closed.iter().filter(|closed| !**closed).count();
    assert_eq!(
        outlived, 0,
        "idle HTTP connections still open {IDLE_CLOSE_WITHIN:?} after the last one connected (idle timeout 5 s)"
    );
    let slowest = viewer.await.unwrap();
    assert!(
        slowest < Duration::from_secs(2),
        "a viewer waited {slowest:?} for the playlist"
    );

    // The broadcast went through whole: a VOD with continuous segments covering the push.
    assert!(push.await.unwrap(), "the broadcaster was disturbed");
    let vod = platform
        .wait_for(&live, Duration::from_secs(30), |s, b| {
            s == 200 && b.contains("#EXT-X-ENDLIST")
        })
        .await;
    let seqs = listed_sequence_numbers(&vod);
    assert_eq!(
        seqs,
        (0..seqs.len() as u64).collect::<Vec<_>>(),
        "a segment is missing"
    );
    let played = play_to_end(&format!("{}{live}", platform.http))
        .await
        .unwrap();
    assert!(
        (played - f64::from(PUSH_SECONDS)).abs() < 2.5,
        "played {played} s of a {PUSH_SECONDS} s broadcast"
    );
    assert!(!platform.stopped(), "the platform kept running");
    record_fault_result([
        "10,000 idle connections, 50 slowloris, 200 garbage handshakes during a broadcast",
        "0 / 0",
        &format!("{:.1} s", (f64::from(PUSH_SECONDS) - played).max(0.0)),
        &format!("none: the live playlist answered within {slowest:.1?} throughout"),
    ]);
}
