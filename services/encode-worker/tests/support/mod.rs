//! Shared by the worker's engine tests: the engines `make test` starts, source chunks cut as
//! ingest cuts them, and readers of what the workers announce and store.
// Each test binary uses only part of it.
#![allow(dead_code)]

pub mod live;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_blob::{BlobStore, S3BlobStore, S3Settings};
use livecast_bus::{BusConfig, EventBus, SubscribeOptions, Subscription};
use livecast_core::blob_keys::{self, SourceExt};
use livecast_core::{EventId, Secret, StreamId};
use livecast_proto::{topics, v1};
use prost::Message;

pub const CHUNK_MS: u32 = 2_000;
/// A 640x360 source: 360p, 240p and audio.
pub const RENDITIONS: [&str; 3] = ["360p", "240p", "audio"];

/// The engines `make test` starts, or `None` (after saying so) when none are configured.
pub struct Engines {
    pub s3_endpoint: String,
    access_key: String,
    secret_key: String,
    brokers: String,
}

pub fn engines() -> Option<Engines> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let (Some(s3_endpoint), Some(brokers)) = (
        var("LIVECAST_TEST_S3_ENDPOINT"),
        var("LIVECAST_TEST_KAFKA_BROKERS"),
    ) else {
        assert!(
            std::env::var("LIVECAST_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
            "LIVECAST_TEST_S3_ENDPOINT and LIVECAST_TEST_KAFKA_BROKERS must be set"
        );
        println!("skipped: no test engines configured");
        return None;
    };
    Some(Engines {
        s3_endpoint,
        access_key: var("LIVECAST_TEST_S3_ACCESS_KEY").expect("S3 access key"),
        secret_key: var("LIVECAST_TEST_S3_SECRET_KEY").expect("S3 secret key"),
        brokers,
    })
}

impl Engines {
    pub async fn fresh_bucket(&self) -> (String, Arc<dyn BlobStore>) {
        let bucket = format!(
            "worker-test-{}",
            StreamId::generate().as_str().to_lowercase()
        );
        let settings = S3Settings::new(
            Some(self.s3_endpoint.clone()),
            &bucket,
            self.access_key.clone(),
            Secret::new(self.secret_key.clone()),
        );
        let store = S3BlobStore::new(settings).unwrap();
        store.create_bucket_if_missing().await.unwrap();
        (bucket, Arc::new(store))
    }

    pub async fn bus(&self) -> Arc<dyn EventBus> {
        let config = BusConfig::Kafka {
            brokers: self.brokers.clone(),
            client_id: None,
            session_timeout_ms: Some(6_000),
            publish_timeout_ms: None,
            replication_factor: None,
        };
        let bus = livecast_bus::open(&config).await.unwrap();
        for topic in [topics::CHUNKS, topics::SEGMENTS] {
            bus.ensure_topic(topic, 4).await.unwrap();
        }
        bus
    }

    /// A standalone `encode-worker` process on these engines; `name` goes into its segment
    /// events (as their region) to tell the workers apart.
    pub fn spawn_worker(&self, bucket: &str, name: &str, group: &str) -> Worker {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_encode-worker"))
            .env("LIVECAST_HTTP__ADDR", format!("127.0.0.1:{port}"))
            .env("LIVECAST_GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
            .env("LIVECAST_REGION", name)
            .env("LIVECAST_WORKER__GROUP", group)
            .env("LIVECAST_BLOB__KIND", "s3")
            .env("LIVECAST_BLOB__ENDPOINT", &self.s3_endpoint)
            .env("LIVECAST_BLOB__BUCKET", bucket)
            .env("LIVECAST_BLOB__ACCESS_KEY_ID", &self.access_key)
            .env("LIVECAST_BLOB__SECRET_ACCESS_KEY", &self.secret_key)
            .env("LIVECAST_BUS__KIND", "kafka")
            .env("LIVECAST_BUS__BROKERS", &self.brokers)
            .env("LIVECAST_BUS__SESSION_TIMEOUT_MS", "6000")
            .env("LIVECAST_WORKER__PRESET", "ultrafast")
            .env("LIVECAST_WORKER__CONCURRENCY", "1")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .spawn()
            .expect("the encode-worker binary starts");
        Worker {
            child,
            name: name.to_string(),
            metrics: format!("http://127.0.0.1:{port}/metrics"),
        }
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A worker process.
pub struct Worker {
    pub child: Child,
    /// As its events name it (their region).
    pub name: String,
    metrics: String,
}

impl Worker {
    /// SIGKILLs it and reaps it.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }

    /// A series of its `/metrics` (`name` or `name{label="value"}`); 0 when absent or when the
    /// process does not answer yet.
    pub async fn metric(&self, series: &str) -> f64 {
        let Ok(response) = reqwest::get(&self.metrics).await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .filter(|line| !line.starts_with('#'))
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == series).then(|| value.parse().ok()).flatten()
            })
            .unwrap_or(0.0)
    }
}

/// `seconds` of a 640x360 picture with a tone, cut into 2 s FLV chunks at its keyframes as
/// ingest cuts them (timestamps continue from chunk to chunk), each with where it starts: its
/// earliest timestamp, as ingest reports it.
pub fn source_chunks(dir: &Path, seconds: u32) -> Vec<(Bytes, i64)> {
    let run = |args: String| {
        let status = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args(args.split_whitespace())
            .current_dir(dir)
            .status()
            .expect("ffmpeg runs");
        assert!(status.success(), "ffmpeg {args}");
    };
    run(format!(
        "-f lavfi -i testsrc2=size=640x360:rate=30 -f lavfi -i sine=f=440:sample_rate=48000 \
         -t {seconds} -c:v libx264 -preset ultrafast -g 60 -keyint_min 60 -sc_threshold 0 \
         -pix_fmt yuv420p -c:a aac -f flv source.flv"
    ));
    run(
        "-i source.flv -c copy -f segment -segment_time 2 -segment_format flv \
         -reset_timestamps 0 chunk%d.flv"
            .into(),
    );
    (0..seconds / 2)
        .map(|n| {
            let path = dir.join(format!("chunk{n}.flv"));
            (
                Bytes::from(std::fs::read(&path).unwrap()),
                earliest_ms(&path),
            )
        })
        .collect()
}

/// The earliest stream start of a media file, in milliseconds.
pub fn earliest_ms(path: &Path) -> i64 {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=start_time",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.trim().trim_end_matches(',').parse::<f64>().ok())
        .map(|seconds| (seconds * 1000.0).round() as i64)
        .min()
        .expect("the chunk has a stream with a start time")
}

/// Stores `media` as chunk `seq` of `stream` and returns its event.
pub async fn store_chunk(
    blob: &dyn BlobStore,
    stream: &StreamId,
    seq: u64,
    (media, pts_ms): (Bytes, i64),
) -> v1::SourceChunk {
    let key = blob_keys::source_chunk(stream, 0, seq, SourceExt::Flv);
    let size_bytes = media.len() as u64;
    blob.put(&key, media).await.unwrap();
    v1::SourceChunk {
        event_id: EventId::generate().to_string(),
        stream_id: stream.to_string(),
        seq,
        blob_key: key,
        pts_ms,
        duration_ms: CHUNK_MS,
        container: "flv".into(),
        wall_clock_ms: livecast_core::time::now_millis(),
        size_bytes,
        realtime_ratio_milli: 1_000,
        ..Default::default()
    }
}

/// A new consumer group's view of the segment events from now on.
pub async fn segment_events(bus: &dyn EventBus) -> Box<dyn Subscription> {
    let group = SubscribeOptions::latest(EventId::generate().to_string());
    bus.subscribe(topics::SEGMENTS, group).await.unwrap()
}

/// Segment events by rendition, then seq.
pub type Seen = BTreeMap<String, BTreeMap<u64, Vec<v1::SegmentReady>>>;

/// Reads the segment events of `stream` into `seen` until `done` holds (at most 90 s); returns
/// when the first event from the worker named `from` arrived, if one did.
pub async fn segments_until(
    subscription: &mut Box<dyn Subscription>,
    stream: &StreamId,
    seen: &mut Seen,
    from: Option<&str>,
    done: impl Fn(&Seen) -> bool,
) -> Option<Instant> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let mut first_arrival = None;
    while !done(seen) {
        let message = tokio::time::timeout_at(deadline, subscription.next())
            .await
            .expect("segments did not arrive in time")
            .unwrap();
        let ready = v1::SegmentReady::decode(message.payload.as_ref()).unwrap();
        if ready.stream_id != stream.as_str() {
            continue;
        }
        if from.is_none_or(|from| ready.region == from) {
            first_arrival.get_or_insert_with(Instant::now);
        }
        let rendition = ready.rendition.as_ref().unwrap().name.clone();
        seen.entry(rendition)
            .or_default()
            .entry(ready.seq)
            .or_default()
            .push(ready);
    }
    first_arrival
}

pub fn all_seqs_of_every_rendition(count: u64) -> impl Fn(&Seen) -> bool {
    move |seen| {
        RENDITIONS
            .iter()
            .all(|r| seen.get(*r).is_some_and(|seqs| seqs.len() as u64 == count))
    }
}

/// Every rendition of `stream` announced seqs `0..count`, each under one name, stored as
/// exactly `count` media segments, and the whole rendition plays.
pub async fn assert_every_segment_once(
    seen: &Seen,
    blob: &dyn BlobStore,
    stream: &StreamId,
    count: u64,
    dir: &Path,
) {
    for rendition in RENDITIONS {
        let announced: Vec<u64> = seen[rendition].keys().copied().collect();
        assert_eq!(
            announced,
            (0..count).collect::<Vec<_>>(),
            "{rendition}: a sequence number is missing"
        );
        let prefix = format!("hls/{stream}/{rendition}/");
        let stored: BTreeSet<String> = blob
            .list(&prefix)
            .await
            .unwrap()
            .into_iter()
            .map(|o| o.key)
            // Segments (`7.m4s`), not their parts (`7.0.m4s`).
            .filter(|k| k.ends_with(".m4s") && k[prefix.len()..].matches('.').count() == 1)
            .collect();
        assert_eq!(
            stored.len() as u64,
            count,
            "{rendition}: one object per segment: {stored:?}"
        );
        // A chunk redone after a crash is the same segment again, never a second one.
        for (seq, events) in &seen[rendition] {
            let keys: BTreeSet<&str> = events.iter().map(|e| e.blob_key.as_str()).collect();
            assert_eq!(
                keys.len(),
                1,
                "{rendition} seq {seq} announced under two names"
            );
        }
        let whole = rendition_bytes(blob, stream, rendition, count).await;
        assert_plays(dir, rendition, &whole);
    }
}

/// The init segment and the first `count` media segments of `rendition`, as a player reads them.
pub async fn rendition_bytes(
    blob: &dyn BlobStore,
    stream: &StreamId,
    rendition: &str,
    count: u64,
) -> Vec<u8> {
    let name = rendition.parse().unwrap();
    let mut whole = blob
        .get(&blob_keys::init_segment(stream, &name))
        .await
        .unwrap()
        .to_vec();
    for seq in 0..count {
        let key = blob_keys::media_segment(stream, &name, seq);
        whole.extend_from_slice(&blob.get(&key).await.unwrap());
    }
    whole
}

/// Decodes init + segments with the ffmpeg command line; any error fails the test.
pub fn assert_plays(dir: &Path, rendition: &str, bytes: &[u8]) {
    let path = dir.join(format!("{rendition}.mp4"));
    std::fs::write(&path, bytes).unwrap();
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-xerror", "-i"])
        .arg(&path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success() && output.stderr.is_empty(),
        "{rendition} does not play: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
