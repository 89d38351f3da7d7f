//! Helpers for whole-platform tests: the all-in-one process on port 0, ffmpeg as the
//! broadcaster, HTTP and ffprobe as the viewer.
#![forbid(unsafe_code)]

pub mod fleet;
pub mod player;
pub mod viewer;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use livecast::{Config, Listeners};
use livecast_core::EventId;
use livecast_service::{Secret, Shutdown};
use serde_json::{Value, json};
use tokio::process::Command;

/// Where the test platform listens: loopback, on ports the kernel picks.
const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// The admin token of every test platform.
pub const ADMIN_TOKEN: &str = "platform-test-token";

/// A running all-in-one platform.
pub struct Platform {
    /// `http://127.0.0.1:PORT`
    pub http: String,
    /// `rtmp://127.0.0.1:PORT/live`
    pub rtmp: String,
    /// `http://127.0.0.1:PORT` of the catalogue's gRPC API.
    pub grpc: String,
    /// An HTTP client.
    pub client: reqwest::Client,
    shutdown: Shutdown,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for Platform {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts `livecast` on free ports with a fresh data directory; `adjust` changes the config.
pub async fn spawn_platform(adjust: impl FnOnce(&mut Config)) -> Platform {
    if std::env::var_os("TEST_LOG").is_some() {
        livecast_service::telemetry::init();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        admin_token: Some(Secret::new(ADMIN_TOKEN)),
        ..Config::default()
    };
    config.ingest.reconnect_window_ms = 2_000;
    config.worker.preset = "ultrafast".into();
    adjust(&mut config);
    let http = livecast_service::listen(LOOPBACK).unwrap();
    let grpc = livecast_service::listen(LOOPBACK).unwrap();
    let rtmp = livecast_service::listen(LOOPBACK).unwrap();
    let http_url = format!("http://{}", http.local_addr().unwrap());
    let rtmp_url = format!("rtmp://{}/live", rtmp.local_addr().unwrap());
    let grpc_url = format!("http://{}", grpc.local_addr().unwrap());
    let shutdown = Shutdown::new();
    let task = tokio::spawn(livecast::run(
        config,
        Listeners { http, grpc, rtmp },
        shutdown.clone(),
    ));
    Platform {
        http: http_url,
        rtmp: rtmp_url,
        grpc: grpc_url,
        client: reqwest::Client::new(),
        shutdown,
        task,
        _dir: dir,
    }
}

impl Platform {
    /// Whether the platform stopped (with its result), without waiting.
    pub fn stopped(&self) -> bool {
        self.task.is_finished()
    }

    /// Creates a stream; returns the JSON with `id` and `stream_key`.
    pub async fn create_stream(&self, name: &str) -> Value {
        let response = self
            .client
            .post(format!("{}/v1/videos", self.http))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    /// GET `path`; status and body text.
    pub async fn get(&self, path: &str) -> (u16, String) {
        let response = self
            .client
            .get(format!("{}{path}", self.http))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    /// A counter from `/metrics` (see [`metric_value`]); 0 while the series does not exist
    /// yet, as Prometheus leaves out labelled series nothing has counted.
    pub async fn counter(&self, series: &str) -> f64 {
        let (status, exposition) = self.get("/metrics").await;
        assert_eq!(status, 200, "/metrics: {exposition}");
        metric_value(&exposition, series).unwrap_or(0.0)
    }

    /// Polls `path` until `done` accepts its (status, body), or panics after `deadline`.
    pub async fn wait_for(
        &self,
        path: &str,
        deadline: Duration,
        done: impl Fn(u16, &str) -> bool,
    ) -> String {
        let until = tokio::time::Instant::now() + deadline;
        loop {
            let (status, body) = self.get(path).await;
            if done(status, &body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < until,
                "{path} did not become ready in {deadline:?}: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Pushes `seconds` of a 640x360 test picture with a tone to `url` in real time, as OBS
/// would; returns whether ffmpeg succeeded.
pub async fn push_test_stream(url: &str, format: &[&str], seconds: u32) -> bool {
    test_stream_command(url, format, seconds)
        .status()
        .await
        .map(|s| s.success())
        .unwrap_or(false)
}

/// The ffmpeg command [`push_test_stream`] runs, to spawn it and stop it at will (for example
/// to kill the broadcaster mid-stream).
pub fn test_stream_command(url: &str, format: &[&str], seconds: u32) -> Command {
    let seconds = seconds.to_string();
    let mut command = Command::new("ffmpeg");
    command
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "60"])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"])
        .args(format)
        .arg(url)
        .stdin(Stdio::null());
    command
}

/// Plays `url` to the end with ffmpeg (as a viewer would); returns the media duration in
/// seconds that ffprobe reports, or the error output.
pub async fn play_to_end(url: &str) -> Result<f64, String> {
    let output = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-i",
            url,
            "-f",
            "null",
            "-",
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| e.to_string())?;
    if !output.status.success() {
        return Err(String::from_utf8_lossy(&output.stderr).into_owned());
    }
    probe_duration(url).await
}

/// The duration ffprobe reports for `url`.
pub async fn probe_duration(url: &str) -> Result<f64, String> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
            url,
        ])
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim().parse().map_err(|_| {
        format!(
            "ffprobe said {text:?} {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

/// One segment as a media playlist lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct ListedSegment {
    /// Its sequence number (from its `{seq}.m4s` name).
    pub seq: u64,
    /// Its `#EXTINF` duration in seconds.
    pub duration: f64,
    /// Its `#EXT-X-PROGRAM-DATE-TIME`, if given.
    pub program_date_time: Option<String>,
    /// Whether an `#EXT-X-DISCONTINUITY` comes right before it.
    pub discontinuity: bool,
    /// Whether it is a gap (`#EXT-X-GAP`): not made, a player takes another rendition for it.
    pub gap: bool,
}

/// The segments a media playlist lists, in order.
pub fn listed_segments(playlist: &str) -> Vec<ListedSegment> {
    let mut segments = Vec::new();
    let (mut duration, mut program_date_time, mut discontinuity) = (0.0, None, false);
    let mut gap = false;
    for line in playlist.lines() {
        if line == "#EXT-X-DISCONTINUITY" {
            discontinuity = true;
        } else if line == "#EXT-X-GAP" {
            gap = true;
        } else if let Some(value) = line.strip_prefix("#EXTINF:") {
            duration = value.trim_end_matches(',').parse().unwrap_or(0.0);
        } else if let Some(value) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            program_date_time = Some(value.to_string());
        } else if let Some(seq) = line.strip_suffix(".m4s").and_then(|s| s.parse().ok()) {
            segments.push(ListedSegment {
                seq,
                duration,
                program_date_time: program_date_time.take(),
                discontinuity: std::mem::take(&mut discontinuity),
                gap: std::mem::take(&mut gap),
            });
        }
    }
    segments
}

/// The segments `playlist` lists, checked to be numbered 0, 1, 2... without a gap or a repeat.
pub fn continuous_segments(rendition: &str, playlist: &str) -> Vec<ListedSegment> {
    let segments = listed_segments(playlist);
    let seqs: Vec<u64> = segments.iter().map(|s| s.seq).collect();
    let expected: Vec<u64> = (0..segments.len() as u64).collect();
    assert_eq!(
        seqs, expected,
        "{rendition}: sequence numbers must be continuous:\n{playlist}"
    );
    segments
}

/// Seconds of media `segments` cover.
pub fn listed_seconds(segments: &[ListedSegment]) -> f64 {
    segments.iter().map(|s| s.duration).sum()
}

/// The sequence numbers a media playlist lists, in order.
pub fn listed_sequence_numbers(playlist: &str) -> Vec<u64> {
    playlist
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.strip_suffix(".m4s")?.parse().ok())
        .collect()
}

/// The value of one series (`name` or `name{label="value"}`, labels as the exposition writes
/// them) in a Prometheus text exposition, if it is there.
pub fn metric_value(exposition: &str, series: &str) -> Option<f64> {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let (name, value) = line.rsplit_once(' ')?;
            if name == series {
                value.parse().ok()
            } else {
                None
            }
        })
}

/// Prints one row of the fault-scenario table (scenario, missing / duplicated segments, content
/// lost, longest viewer stall); `make chaos` collects these lines into `bench/RESULTS.md`.
pub fn record_fault_result(cells: [&str; 4]) {
    println!("fault result: | {} |", cells.join(" | "));
}

/// The binary `bin` of the workspace, built (debug, like the tests) if missing, for tests that
/// run services as separate processes. Built as `make test` builds every binary first (the
/// whole workspace's features), so that build is found up to date here.
pub fn service_binary(bin: &str) -> std::path::PathBuf {
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--workspace", "--bins"])
        .status()
        .expect("cargo runs");
    assert!(status.success(), "cannot build {bin}");
    let exe = std::env::current_exe().unwrap();
    // target/debug/deps/this-test -> target/debug/
    let profile_dir = exe.parent().and_then(std::path::Path::parent).unwrap();
    profile_dir.join(bin)
}

/// A fresh bucket `bucket` on the S3 server at `endpoint`, as the platform's blob config.
pub async fn s3_bucket(
    endpoint: &str,
    bucket: &str,
    access_key: &str,
    secret_key: &str,
) -> livecast_blob::BlobConfig {
    let settings = livecast_blob::S3Settings::new(
        Some(endpoint.to_string()),
        bucket,
        access_key.to_string(),
        Secret::new(secret_key),
    );
    livecast_blob::S3BlobStore::new(settings)
        .unwrap()
        .create_bucket_if_missing()
        .await
        .unwrap();
    serde_json::from_value(json!({
        "kind": "s3",
        "endpoint": endpoint,
        "bucket": bucket,
        "access_key_id": access_key,
        "secret_access_key": secret_key,
    }))
    .unwrap()
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The real engines `make test` starts (a Kafka-protocol broker, an S3-compatible server).
#[derive(Debug, Clone)]
pub struct Engines {
    /// `host:port` of the broker.
    pub brokers: String,
    /// `http://host:port` of the S3 server.
    pub s3_endpoint: String,
    /// Its credentials.
    pub s3_access_key: String,
    /// See `s3_access_key`.
    pub s3_secret_key: String,
}

/// The engines, or `None` (the test then does nothing) when none are configured; under
/// `make test` (`LIVECAST_TEST_REQUIRE_ENGINES=1`) their absence fails the test instead.
pub fn engines() -> Option<Engines> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let engines = (|| {
        Some(Engines {
            brokers: var("LIVECAST_TEST_KAFKA_BROKERS")?,
            s3_endpoint: var("LIVECAST_TEST_S3_ENDPOINT")?,
            s3_access_key: var("LIVECAST_TEST_S3_ACCESS_KEY")?,
            s3_secret_key: var("LIVECAST_TEST_S3_SECRET_KEY")?,
        })
    })();
    assert!(
        engines.is_some() || std::env::var("LIVECAST_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
        "the test engines are not configured"
    );
    engines
}

impl Engines {
    /// The broker as a service's bus configuration.
    pub fn bus(&self) -> livecast_bus::BusConfig {
        livecast_bus::BusConfig::Kafka {
            brokers: self.brokers.clone(),
            client_id: None,
            session_timeout_ms: Some(6_000),
            publish_timeout_ms: None,
            replication_factor: None,
        }
    }

    /// A fresh bucket `bucket` on the S3 server, as a service's blob configuration.
    pub async fn bucket(&self, bucket: &str) -> livecast_blob::BlobConfig {
        s3_bucket(
            &self.s3_endpoint,
            bucket,
            &self.s3_access_key,
            &self.s3_secret_key,
        )
        .await
    }

    /// The all-in-one platform on the broker and a fresh bucket `bucket`, with four partitions
    /// per topic and an encoding group of its own (other tests share the broker), as `adjust`
    /// further says; ready.
    pub async fn platform(&self, bucket: &str, adjust: impl FnOnce(&mut Config)) -> Platform {
        let (blob, bus) = (self.bucket(bucket).await, self.bus());
        let platform = spawn_platform(|config| {
            config.blob = Some(blob);
            config.bus = bus;
            config.ingest.topic_partitions = 4;
            config.edge.topic_partitions = 4;
            config.worker.topic_partitions = 4;
            config.notification.topic_partitions = 4;
            config.worker.group = format!("encode-worker-{}", EventId::generate());
            adjust(config);
        })
        .await;
        platform
            .wait_for("/readyz", Duration::from_secs(30), |s, _| s == 200)
            .await;
        platform
    }

    /// The environment that points a service process at `bucket` and the broker.
    pub fn service_env(&self, bucket: &str) -> Vec<(&'static str, String)> {
        vec![
            ("LIVECAST_BLOB__KIND", "s3".into()),
            ("LIVECAST_BLOB__ENDPOINT", self.s3_endpoint.clone()),
            ("LIVECAST_BLOB__BUCKET", bucket.into()),
            ("LIVECAST_BLOB__ACCESS_KEY_ID", self.s3_access_key.clone()),
            (
                "LIVECAST_BLOB__SECRET_ACCESS_KEY",
                self.s3_secret_key.clone(),
            ),
            ("LIVECAST_BUS__KIND", "kafka".into()),
            ("LIVECAST_BUS__BROKERS", self.brokers.clone()),
            ("LIVECAST_BUS__SESSION_TIMEOUT_MS", "6000".into()),
        ]
    }
}
