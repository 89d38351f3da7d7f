//! A worker dies and a viewer at the low-latency live edge does not notice: the platform runs
//! with its encoding done by two separate `encode-worker` processes (tansu, s3s-fs), ffmpeg
//! pushes a source carrying each frame's number, and hls.js in headless Chromium plays it in
//! low-latency mode. The worker making the stream's parts is SIGKILLed in the middle of a
//! segment; its standby publishes in its place. The viewer must see no stall and no fatal error
//! and stay under 3 s glass-to-glass; the recording then lists every segment once per
//! rendition, and every rendition decodes without an error.
//!
//! The long form (`make chaos`): a worker SIGKILLed every 20 s for 2 minutes and started again.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use livecast_core::EventId;
use livecast_tests::player::{Watching, coded_source};
use livecast_tests::{
    Engines, Platform, continuous_segments, engines, free_port, metric_value, record_fault_result,
    service_binary, spawn_platform,
};

/// The viewer joins this long after the broadcast's first frame (the stream is live in parts
/// by then, with a standby)...
const JOIN_S: u32 = 10;
/// ...and watches this long; the worker is killed about halfway.
const WATCH_S: u32 = 40;
const RENDITIONS: [&str; 3] = ["360p", "240p", "audio"];
/// Glass-to-glass a viewer in low-latency mode must stay under, throughout.
const WORST_GLASS_MS: f64 = 3_000.0;

/// One `encode-worker` process of the platform's fleet.
struct Worker {
    child: Child,
    metrics: String,
}

impl Worker {
    /// A worker process whose log goes to `log`.
    fn spawn(engines: &Engines, bucket: &str, group: &str, log: &Path) -> Self {
        let http = free_port();
        let log = std::fs::File::create(log).expect("worker log");
        let child = Command::new(service_binary("encode-worker"))
            .env("LIVECAST_HTTP__ADDR", format!("127.0.0.1:{http}"))
            .env("LIVECAST_GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
            .envs(engines.service_env(bucket))
            .env("LIVECAST_WORKER__GROUP", group)
            .env("LIVECAST_WORKER__TOPIC_PARTITIONS", "4")
            .env("LIVECAST_WORKER__PRESET", "ultrafast")
            .env("LIVECAST_WORKER__CONCURRENCY", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("worker log"))
            .stderr(log)
            .spawn()
            .expect("the encode-worker binary starts");
        Worker {
            child,
            metrics: format!("http://127.0.0.1:{http}/metrics"),
        }
    }

    /// Its live streams in `role` (primary, standby); 0 while it does not answer.
    async fn live_streams(&self, role: &str) -> f64 {
        let Ok(response) = reqwest::get(&self.metrics).await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        metric_value(
            &text,
            &format!("livecast_worker_live_streams{{role=\"{role}\"}}"),
        )
        .unwrap_or(0.0)
    }

    fn kill(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().unwrap();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

/// Kills whichever of `workers` is the stream's primary, once its standby is in place and the
/// segment being made has some parts but not all: in the middle of a segment. Its index.
async fn kill_the_primary_mid_segment(
    platform: &Platform,
    playlist: &str,
    workers: &mut [Worker],
) -> usize {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut primary = None;
        let mut standby = false;
        let mut roles = Vec::new();
        for (index, worker) in workers.iter().enumerate() {
            let (primaries, standbys) = (
                worker.live_streams("primary").await,
                worker.live_streams("standby").await,
            );
            if primaries >= 1.0 {
                primary = Some(index);
            }
            standby |= standbys >= 1.0;
            roles.push((primaries, standbys));
        }
        let (status, body) = platform.get(playlist).await;
        assert!(
            tokio::time::Instant::now() < deadline,
            "no primary with a standby in 30 s: workers' (primary, standby) streams {roles:?}; \
             playlist {status}:\n{body}"
        );
        let mid_segment = status == 200 && (1..=3).contains(&open_parts(&body));
        if let (Some(index), true, true) = (primary, standby, mid_segment) {
            workers[index].kill();
            return index;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The recording lists every segment once per rendition, and each rendition decodes without
/// an error (the segments where two workers met included).
async fn assert_recording_whole(platform: &Platform, id: &str) {
    for rendition in RENDITIONS {
        let playlist = format!("/stream/{id}/{rendition}/index.m3u8");
        let vod = platform
            .wait_for(&playlist, Duration::from_secs(60), |s, b| {
                s == 200 && b.contains("#EXT-X-ENDLIST")
            })
            .await;
        continuous_segments(rendition, &vod);
        let output = tokio::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-xerror", "-i"])
            .arg(format!("{}{playlist}", platform.http))
            .args(["-f", "null", "-"])
            .output()
            .await
            .expect("ffmpeg runs");
        assert!(
            output.status.success() && output.stderr.is_empty(),
            "{rendition} does not decode cleanly: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

struct Fleet {
    engines: Engines,
    bucket: String,
    group: String,
    platform: Platform,
    workers: Vec<Worker>,
    /// The workers' logs, the viewer's run and screenshot, kept after the test.
    artifacts: PathBuf,
}

/// The platform without its own worker, and two worker processes on the same engines.
async fn fleet(engines: Engines) -> Fleet {
    let bucket = format!("worker-failover-{}", EventId::generate());
    let artifacts = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&bucket);
    std::fs::create_dir_all(&artifacts).unwrap();
    let blob = engines.bucket(&bucket).await;
    let bus = engines.bus();
    let group = format!("encode-worker-{}", EventId::generate());
    let platform = spawn_platform(|config| {
        config.blob = Some(blob);
        config.bus = bus;
        config.run_worker = false;
        config.ingest.topic_partitions = 4;
        config.edge.topic_partitions = 4;
        config.worker.topic_partitions = 4;
        config.notification.topic_partitions = 4;
    })
    .await;
    platform
        .wait_for("/readyz", Duration::from_secs(30), |s, _| s == 200)
        .await;
    let workers = (0..2)
        .map(|n| {
            Worker::spawn(
                &engines,
                &bucket,
                &group,
                &artifacts.join(format!("worker-{n}.log")),
            )
        })
        .collect();
    Fleet {
        engines,
        bucket,
        group,
        platform,
        workers,
        artifacts,
    }
}

/// Pushes the coded source and plays it with hls.js in low-latency mode for `watch_s`,
/// running `faults` meanwhile; returns what the viewer saw.
async fn broadcast_and_watch(
    fleet: &mut Fleet,
    watch_s: u32,
    faults: impl AsyncFnOnce(&mut Fleet, &str, &str),
) -> (String, livecast_tests::player::Seen) {
    let created = fleet.platform.create_stream("Worker fail-over").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();
    let source = coded_source(JOIN_S + watch_s + 20).await;
    let rtmp_port: u16 = fleet
        .platform
        .rtmp
        .trim_end_matches("/live")
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("rtmp://127.0.0.1:PORT/live");
    let master = format!("{}/stream/{id}/master.m3u8", fleet.platform.http);
    let watching = Watching::start(
        rtmp_port,
        &format!("live/{key}"),
        &source,
        &master,
        (JOIN_S, watch_s),
        true,
        &fleet.artifacts,
    );
    let playlist = format!("/stream/{id}/360p/index.m3u8");
    faults(fleet, &id, &playlist).await;
    (id, watching.finish().await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_worker_killed_mid_segment_costs_a_low_latency_viewer_no_stall() {
    let Some(engines) = engines() else { return };
    let mut fleet = fleet(engines).await;
    let (id, seen) = broadcast_and_watch(&mut fleet, WATCH_S, async |fleet, _, playlist| {
        // Halfway through the viewer's window.
        tokio::time::sleep(Duration::from_secs(u64::from(JOIN_S + WATCH_S / 2))).await;
        kill_the_primary_mid_segment(&fleet.platform, playlist, &mut fleet.workers).await;
    })
    .await;
    println!("artifacts in {}", fleet.artifacts.display());
    let figures = seen.assert_usable();
    println!("viewer across the kill: {figures}");
    assert_eq!(seen.stalls, 0, "the viewer stalled: {figures}");
    assert!(
        seen.worst_ms < WORST_GLASS_MS,
        "glass-to-glass went over {WORST_GLASS_MS} ms: {figures}"
    );
    assert_recording_whole(&fleet.platform, &id).await;
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
    let mut fleet = fleet(engines).await;
    let kills = std::sync::atomic::AtomicU32::new(0);
    let (id, seen) = broadcast_and_watch(&mut fleet, 120 + 10, async |fleet, _, playlist| {
        tokio::time::sleep(Duration::from_secs(u64::from(JOIN_S))).await;
        for _ in 0..6 {
            tokio::time::sleep(Duration::from_secs(20)).await;
            let index =
                kill_the_primary_mid_segment(&fleet.platform, playlist, &mut fleet.workers).await;
            // Started again at once, as Kubernetes restarts a crashed pod.
            let restart = kills.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let log = fleet
                .artifacts
                .join(format!("worker-{index}-restart-{restart}.log"));
            fleet.workers[index] = Worker::spawn(&fleet.engines, &fleet.bucket, &fleet.group, &log);
        }
    })
    .await;
    println!("artifacts in {}", fleet.artifacts.display());
    let figures = seen.assert_usable();
    let kills = kills.into_inner();
    println!("viewer across {kills} kills: {figures}");
    assert_eq!(seen.stalls, 0, "the viewer stalled: {figures}");
    assert_recording_whole(&fleet.platform, &id).await;
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
