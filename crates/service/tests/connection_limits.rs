//! What every Livecast HTTP server does against clients that hold connections: it closes those
//! that do not send a request (idle ones, slowloris clients dribbling a header, keep-alive
//! connections left open after a request), and, when configured, the connections a client
//! opens beyond its limit. Meanwhile a well-behaved client is answered at once.

use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use livecast_service::Shutdown;
use livecast_service::config::HttpConfig;
use livecast_service::http::serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How long after this call the server closed `stream` (read EOF or reset), while writing
/// `dribble` one byte every half second.
async fn closed_after(
    who: &str,
    mut stream: TcpStream,
    dribble: Option<&'static [u8]>,
) -> Duration {
    let started = Instant::now();
    let mut buffer = [0u8; 1024];
    let mut dribbled = 0;
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "{who} connection never closed"
        );
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            read = stream.read(&mut buffer) => match read {
                Ok(0) | Err(_) => return started.elapsed(),
                Ok(_) => {}
            },
            () = tokio::time::sleep(Duration::from_millis(500)), if dribble.is_some() => {
                let bytes = dribble.unwrap_or_default();
                if dribbled < bytes.len() {
                    if stream.write_all(&bytes[dribbled..=dribbled]).await.is_err() {
                        return started.elapsed();
                    }
                    dribbled += 1;
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_slowloris_and_lingering_keep_alive_connections_are_closed() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let router = Router::new().route("/hello", get(|| async { "hello" }));
    let config = HttpConfig {
        header_timeout_ms: 2_000,
        idle_timeout_ms: 3_000,
        drain_seconds: 1,
        ..HttpConfig::default()
    };
    let serving = shutdown.clone();
    let server = tokio::spawn(async move { serve(listener, router, serving, &config).await });

    let idle = TcpStream::connect(addr).await.unwrap();
    let slowloris = TcpStream::connect(addr).await.unwrap();
    let mut keep_alive = TcpStream::connect(addr).await.unwrap();
    keep_alive
        .write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 256];
    let n = keep_alive.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 200"));

    let header: &'static [u8] =
        b"GET /hello HTTP/1.1\r\nHost: test\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let (idle, slowloris, keep_alive, ()) = tokio::join!(
        closed_after("idle", idle, None),
        closed_after("slowloris", slowloris, Some(header)),
        closed_after("keep-alive", keep_alive, None),
        async {
            // A good client is served while the others hang on.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let mut good = TcpStream::connect(addr).await.unwrap();
            good.write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let mut body = Vec::new();
            good.read_to_end(&mut body).await.unwrap();
            assert!(
                body.starts_with(b"HTTP/1.1 200"),
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
    );
    // Idle: nothing ever sent, the 3 s idle timeout. Slowloris: a byte every half second
    // keeps it from idling; the 2 s head timeout ends it. Keep-alive: waiting for the next
    // request head counts as reading one, so the head timeout ends it too.
    for (who, after, timeout) in [
        ("idle", idle, 3),
        ("slowloris", slowloris, 2),
        ("keep-alive", keep_alive, 2),
    ] {
        let timeout = Duration::from_secs(timeout);
        let (earliest, latest) = (
            timeout - Duration::from_millis(500),
            timeout + Duration::from_secs(2),
        );
        assert!(
            (earliest..=latest).contains(&after),
            "{who} connection was closed after {after:?}; its timeout is {timeout:?}"
        );
    }
    shutdown.cancel();
    server.await.unwrap().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_a_clients_limit_are_closed_and_its_slots_come_back() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let router = Router::new().route("/hello", get(|| async { "hello" }));
    let config = HttpConfig {
        max_connections_per_client: 3,
        drain_seconds: 1,
        ..HttpConfig::default()
    };
    let serving = shutdown.clone();
    let server = tokio::spawn(async move { serve(listener, router, serving, &config).await });

    let mut held = Vec::new();
    for _ in 0..3 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let mut answer = [0u8; 256];
        let n = stream.read(&mut answer).await.unwrap();
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"));
        held.push(stream);
    }
    // A fourth connection from the same address is closed without an answer.
    let mut extra = TcpStream::connect(addr).await.unwrap();
    let _ = extra
        .write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\n\r\n")
        .await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), extra.read_to_end(&mut answer)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "the connection over the limit was answered: {}",
        String::from_utf8_lossy(&answer)
    );
    // Closing one frees its slot.
    drop(held.pop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut again = TcpStream::connect(addr).await.unwrap();
    again
        .write_all(b"GET /hello HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut body = Vec::new();
    again.read_to_end(&mut body).await.unwrap();
    assert!(
        body.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    drop(held);
    shutdown.cancel();
    server.await.unwrap().unwrap();
}
