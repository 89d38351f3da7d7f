//! Ingest as a whole: RTMP and HLS push become durable, gapless source chunks with one
//! `SourceChunk` event each (on the real Kafka-protocol broker when one is configured).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use livecast_blob::{BlobStore, LocalBlobStore};
use livecast_bus::{BusConfig, EventBus, SubscribeOptions};
use livecast_core::{Error, ErrorKind, EventId, RegionName, StreamId, StreamStatus};
use livecast_ingest::{AuthorizedStream, IngestService, IngestSettings, StreamDirectory};
use livecast_proto::{topics, v1};
use livecast_service::Shutdown;
use prost::Message;
use support::{ffmpeg_publish, probe_streams, wait_child};
use tokio::net::TcpListener;

const MAX_PUSH: usize = 4 << 20;

/// Admits `key-{n}` for the streams it was built with.
struct Directory(Vec<StreamId>);

#[async_trait::async_trait]
impl StreamDirectory for Directory {
    async fn authorize(&self, key: &str) -> Result<AuthorizedStream, Error> {
        let n: usize = key
            .strip_prefix("key-")
            .and_then(|n| n.parse().ok())
            .filter(|n| *n < self.0.len())
            .ok_or_else(|| Error::new(ErrorKind::PermissionDenied, "stream key is not valid"))?;
        Ok(AuthorizedStream {
            id: self.0[n].clone(),
            name: format!("stream {n}"),
            status: StreamStatus::Created,
        })
    }
}

struct Ingest {
    rtmp: String,
    http: String,
    blob: Arc<dyn BlobStore>,
    streams: Vec<StreamId>,
    chunks: tokio::sync::mpsc::UnboundedReceiver<v1::SourceChunk>,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// The real broker when `LIVECAST_TEST_KAFKA_BROKERS` is set, else the in-process bus.
async fn bus() -> Arc<dyn EventBus> {
    let config = match std::env::var("LIVECAST_TEST_KAFKA_BROKERS") {
        Ok(brokers) => BusConfig::Kafka {
            brokers,
            client_id: None,
            session_timeout_ms: Some(6_000),
            publish_timeout_ms: None,
            replication_factor: None,
        },
        Err(_) => {
            assert!(
                std::env::var("LIVECAST_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
                "LIVECAST_TEST_KAFKA_BROKERS is not set"
            );
            BusConfig::InProcess
        }
    };
    livecast_bus::open(&config).await.unwrap()
}

async fn spawn_ingest(streams: usize) -> Ingest {
    if std::env::var_os("TEST_LOG").is_some() {
        livecast_service::telemetry::init();
    }
    let dir = tempfile::tempdir().unwrap();
    let blob: Arc<dyn BlobStore> = Arc::new(
        LocalBlobStore::open(dir.path().join("blobs"))
            .await
            .unwrap(),
    );
    let bus = bus().await;
    let ids: Vec<StreamId> = (0..streams).map(|_| StreamId::generate()).collect();
    let settings = IngestSettings {
        max_push_bytes: MAX_PUSH,
        topic_partitions: 4,
        ..IngestSettings::default()
    };
    let service = IngestService::new(
        Arc::new(Directory(ids.clone())),
        blob.clone(),
        bus.clone(),
        RegionName::parse("test").unwrap(),
        settings,
    )
    .await
    .unwrap();

    // Every chunk event of these streams, read back from the bus as a worker would.
    let mut subscription = bus
        .subscribe(
            topics::CHUNKS,
            SubscribeOptions::earliest(EventId::generate().to_string()),
        )
        .await
        .unwrap();
    let (sender, chunks) = tokio::sync::mpsc::unbounded_channel();
    let mine: Vec<String> = ids.iter().map(ToString::to_string).collect();
    tokio::spawn(async move {
        while let Ok(message) = subscription.next().await {
            let chunk = v1::SourceChunk::decode(message.payload.as_ref()).unwrap();
            // Openings announce a chunk to follow; the chunk itself comes later.
            if chunk.opening || !mine.contains(&chunk.stream_id) {
                continue;
            }
            if sender.send(chunk).is_err() {
                return;
            }
        }
    });

    let shutdown = Shutdown::new();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rtmp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http_url = format!("http://{}", http.local_addr().unwrap());
    let rtmp_url = format!("rtmp://{}/live", rtmp.local_addr().unwrap());
    let config = livecast_service::config::HttpConfig {
        max_body_bytes: MAX_PUSH,
        ..Default::default()
    };
    let (routes, readiness) = (service.http_routes(), service.readiness());
    let serve_shutdown = shutdown.clone();
    tokio::spawn(async move {
        livecast_service::http::serve_service(http, routes, readiness, &config, serve_shutdown)
            .await
    });
    let rtmp_shutdown = shutdown.clone();
    tokio::spawn(async move { service.serve_rtmp(rtmp, rtmp_shutdown).await });
    Ingest {
        rtmp: rtmp_url,
        http: http_url,
        blob,
        streams: ids,
        chunks,
        shutdown,
        _dir: dir,
    }
}

impl Ingest {
    /// Chunk events per stream, by seq, once the media of `stream` adds up to `at_least_ms`:
    /// every chunk up to its last chunk of media (the slate that bridges the time after it,
    /// waiting for the broadcaster to come back, is left out).
    async fn collect(&mut self, stream: usize, at_least_ms: u32) -> BTreeMap<u64, v1::SourceChunk> {
        let id = self.streams[stream].to_string();
        let mut seen: BTreeMap<u64, v1::SourceChunk> = BTreeMap::new();
        let mut duplicates = 0;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while total_ms(&seen) < at_least_ms {
            let chunk = tokio::time::timeout_at(deadline, self.chunks.recv())
                .await
                .expect("chunks did not arrive in time")
                .unwrap();
            if chunk.stream_id == id && seen.insert(chunk.seq, chunk).is_some() {
                duplicates += 1;
            }
        }
        // Anything still in flight (the last chunk flushed at disconnect).
        while let Ok(Some(chunk)) =
            tokio::time::timeout(Duration::from_secs(3), self.chunks.recv()).await
        {
            if chunk.stream_id == id && seen.insert(chunk.seq, chunk).is_some() {
                duplicates += 1;
            }
        }
        assert_eq!(duplicates, 0, "one event per chunk");
        let last_media = seen
            .values()
            .filter(|c| !c.slate && !c.end_of_stream)
            .map(|c| c.seq)
            .max()
            .unwrap_or(0);
        seen.retain(|seq, _| *seq <= last_media);
        seen
    }

    /// Asserts no gap in sequence numbers and that every chunk decodes alone.
    async fn assert_durable_and_gapless(&self, chunks: &BTreeMap<u64, v1::SourceChunk>) {
        let seqs: Vec<u64> = chunks.keys().copied().collect();
        assert_eq!(
            seqs,
            (0..seqs.len() as u64).collect::<Vec<_>>(),
            "sequence gap"
        );
        let dir = tempfile::tempdir().unwrap();
        for chunk in chunks.values().filter(|c| !c.slate) {
            let bytes = self
                .blob
                .get(&chunk.blob_key)
                .await
                .expect("chunk is durable");
            assert_eq!(bytes.len() as u64, chunk.size_bytes);
            let file = dir.path().join(chunk.blob_key.replace('/', "_"));
            std::fs::write(&file, &bytes).unwrap();
            let streams = probe_streams(&file);
            assert!(streams.iter().any(|s| s.starts_with("h264")), "{streams:?}");
            assert!(streams.iter().any(|s| s.starts_with("aac")), "{streams:?}");
        }
    }
}

/// Media time the broadcaster sent (slate chunks excluded).
fn total_ms(chunks: &BTreeMap<u64, v1::SourceChunk>) -> u32 {
    chunks
        .values()
        .filter(|c| !c.slate)
        .map(|c| c.duration_ms)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_second_rtmp_push_becomes_gapless_durable_chunks() {
    let mut ingest = spawn_ingest(1).await;
    let ffmpeg = ffmpeg_publish(&format!("{}/key-0", ingest.rtmp), 20);
    let (status, stderr) = wait_child(ffmpeg, Duration::from_secs(90)).await;
    assert!(status.success(), "{stderr}");
    let chunks = ingest.collect(0, 18_000).await;
    let total = total_ms(&chunks);
    assert!(
        (17_900..=22_100).contains(&total),
        "chunks cover {total} ms of 20 s"
    );
    assert!(
        chunks
            .values()
            .all(|c| c.container == "flv" && c.epoch == 0 && !c.discontinuity)
    );
    for chunk in chunks.values() {
        let expected = chunk.size_bytes * 8 * 1000 / u64::from(chunk.duration_ms);
        assert_eq!(
            u64::from(chunk.input_bitrate),
            expected,
            "uplink bitrate on every chunk"
        );
        assert!(
            chunk.realtime_ratio_milli > 0,
            "uplink ratio on every chunk"
        );
    }
    ingest.assert_durable_and_gapless(&chunks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_20_second_hls_push_becomes_gapless_durable_chunks() {
    let mut ingest = spawn_ingest(1).await;
    let url = format!("{}/ingest/key-0/index.m3u8", ingest.http);
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-t",
            "20",
        ])
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "60",
            "-pix_fmt",
            "yuv420p",
        ])
        .args([
            "-c:a",
            "aac",
            "-f",
            "hls",
            "-hls_time",
            "2",
            "-method",
            "PUT",
            &url,
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let chunks = ingest.collect(0, 19_000).await;
    let total = total_ms(&chunks);
    assert!(
        (18_000..=22_100).contains(&total),
        "chunks cover {total} ms of 20 s"
    );
    assert!(chunks.values().all(|c| c.container == "ts"));
    ingest.assert_durable_and_gapless(&chunks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcaster_that_drops_and_returns_continues_the_same_stream() {
    let mut ingest = spawn_ingest(1).await;
    let url = format!("{}/key-0", ingest.rtmp);
    let mut first = ffmpeg_publish(&url, 60);
    tokio::time::sleep(Duration::from_secs(10)).await;
    first.kill().unwrap();
    first.wait().unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let second = ffmpeg_publish(&url, 6);
    let (status, stderr) = wait_child(second, Duration::from_secs(60)).await;
    assert!(status.success(), "{stderr}");

    let chunks = ingest.collect(0, 14_000).await;
    let epochs: Vec<u32> = chunks.values().map(|c| c.epoch).collect();
    assert_eq!(epochs.first(), Some(&0));
    assert_eq!(
        epochs.last(),
        Some(&1),
        "the return is a new epoch of the same stream"
    );
    let flagged: Vec<u64> = chunks
        .values()
        .filter(|c| c.discontinuity)
        .map(|c| c.seq)
        .collect();
    assert_eq!(
        flagged,
        Vec::<u64>::new(),
        "the broadcaster came back with the same settings: nothing calls for a discontinuity"
    );
    // The 5 s away are slate, continuing the first epoch's timeline until the return.
    let first_epoch: Vec<&v1::SourceChunk> = chunks.values().filter(|c| c.epoch == 0).collect();
    let slate_at = first_epoch
        .iter()
        .position(|c| c.slate)
        .expect("slate while away");
    assert!(first_epoch[slate_at..].iter().all(|c| c.slate));
    let slate_ms: u32 = first_epoch[slate_at..].iter().map(|c| c.duration_ms).sum();
    assert!(
        (2_000..=8_000).contains(&slate_ms),
        "{slate_ms} ms of slate for 5 s away"
    );
    for pair in first_epoch.windows(2) {
        assert_eq!(
            pair[1].pts_ms,
            pair[0].pts_ms + i64::from(pair[0].duration_ms),
            "the timeline goes on through the slate"
        );
    }
    let total = total_ms(&chunks);
    assert!(
        (13_000..=18_500).contains(&total),
        "chunks cover {total} ms of 16 s pushed"
    );
    ingest.assert_durable_and_gapless(&chunks).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_clients_get_their_error_while_another_stream_carries_on() {
    let mut ingest = spawn_ingest(1).await;
    let good = ffmpeg_publish(&format!("{}/key-0", ingest.rtmp), 10);

    let wrong = ffmpeg_publish(&format!("{}/key-7", ingest.rtmp), 2);
    let (status, _) = wait_child(wrong, Duration::from_secs(30)).await;
    assert!(!status.success(), "a wrong key must be refused");

    let address = ingest
        .rtmp
        .trim_start_matches("rtmp://")
        .trim_end_matches("/live")
        .to_string();
    let mut garbage = tokio::net::TcpStream::connect(&address).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut garbage, &[0x42u8; 4096])
        .await
        .ok();

    // Refused on its head: the server answers and closes without taking the body (a client
    // that writes it all first may only see the connection closed).
    let oversized = push_head(
        &ingest.http,
        "/ingest/key-0/huge.ts",
        MAX_PUSH + 1,
        64 << 10,
        Duration::from_secs(5),
    )
    .await;
    assert!(
        oversized.as_deref().is_some_and(|s| s.contains(" 413 ")),
        "{oversized:?}"
    );
    let client = reqwest::Client::new();
    let sneaky = client
        .put(format!("{}/ingest/key-0/..%2Fescape.ts", ingest.http))
        .body(vec![0u8; 188])
        .send()
        .await
        .unwrap();
    assert_eq!(sneaky.status(), 400);
    let wrong_push = client
        .put(format!("{}/ingest/key-9/index0.ts", ingest.http))
        .body(vec![0u8; 188])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_push.status(), 403);

    let (status, stderr) = wait_child(good, Duration::from_secs(60)).await;
    assert!(status.success(), "{stderr}");
    let chunks = ingest.collect(0, 9_000).await;
    ingest.assert_durable_and_gapless(&chunks).await;
}

/// Sends the head of a push to `path` announcing `declared` body bytes and `sent` of them, then
/// waits up to `within` for the answer; returns its status line, if one came.
async fn push_head(
    http: &str,
    path: &str,
    declared: usize,
    sent: usize,
    within: Duration,
) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut socket = tokio::net::TcpStream::connect(&http["http://".len()..])
        .await
        .unwrap();
    let head = format!("PUT {path} HTTP/1.1\r\nHost: ingest\r\nContent-Length: {declared}\r\n\r\n");
    socket.write_all(head.as_bytes()).await.unwrap();
    // The server may answer and close before it takes all of this.
    let _ = socket.write_all(&vec![0x47; sent]).await;
    let mut answer = vec![0u8; 256];
    let read = tokio::time::timeout(within, socket.read(&mut answer))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&answer[..read]).to_string();
    text.lines().next().map(str::to_string)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyless_hls_pushes_are_refused_before_their_bodies_are_read() {
    let ingest = spawn_ingest(1).await;
    // 64 pushes under keys that are not valid, each announcing a body just under the limit and
    // sending a sliver of it: each is refused on its head, none waits for (or holds) its body.
    let pushes = (0..64).map(|n| {
        let http = ingest.http.clone();
        tokio::spawn(async move {
            let path = format!("/ingest/wrong-key-{n}/segment0.ts");
            push_head(&http, &path, MAX_PUSH - 1, 64 << 10, Duration::from_secs(5)).await
        })
    });
    for push in pushes {
        let status = push.await.unwrap();
        assert!(
            status.as_deref().is_some_and(|s| s.contains(" 403 ")),
            "a keyless push was answered {status:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_body_that_trickles_is_cut_off() {
    let ingest = spawn_ingest(1).await;
    // Admitted, then 1 KiB of an announced MiB, then nothing: cut off once the grace for a
    // slow body (10 s) has passed, not held for as long as the client likes.
    let status = push_head(
        &ingest.http,
        "/ingest/key-0/segment0.ts",
        1 << 20,
        1 << 10,
        Duration::from_secs(20),
    )
    .await;
    assert!(
        status.as_deref().is_some_and(|s| s.contains(" 400 ")),
        "{status:?}"
    );
}
