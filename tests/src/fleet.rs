//! The platform with its encoding done by separate `encode-worker` processes on the real
//! engines, a broadcaster pushing a coded source, and hls.js in headless Chromium watching it:
//! for the scenarios where what happens to a worker is the subject.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use livecast_core::EventId;

use crate::player::{Seen, Viewer, Watching, coded_source};
use crate::{Engines, Platform, free_port, metric_value, service_binary};

/// The viewer joins this long after the broadcast's first frame: the stream is live in parts
/// by then, with a standby.
pub const JOIN_S: u32 = 10;

/// `target/test-artifacts`: kept after the tests, for a look at a failure.
fn artifacts_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/debug/deps/this-test -> target/
    let target = exe.ancestors().nth(3).expect("under target/");
    target.join("test-artifacts")
}

/// How a worker process runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// x264 preset.
    pub preset: &'static str,
    /// The one CPU it may use (`taskset`), if pinned.
    pub pinned_to_cpu: Option<u32>,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            preset: "ultrafast",
            pinned_to_cpu: None,
        }
    }
}

/// One `encode-worker` process of the fleet.
pub struct Worker {
    child: Child,
    metrics: String,
}

impl Worker {
    /// Its live streams in `role` (primary, standby); 0 while it does not answer.
    pub async fn live_streams(&self, role: &str) -> f64 {
        self.metric(&format!("livecast_worker_live_streams{{role=\"{role}\"}}"))
            .await
    }

    /// One series of its `/metrics`; 0 while absent or while it does not answer.
    pub async fn metric(&self, series: &str) -> f64 {
        let Ok(response) = reqwest::get(&self.metrics).await else {
            return 0.0;
        };
        let text = response.text().await.unwrap_or_default();
        metric_value(&text, series).unwrap_or(0.0)
    }

    /// SIGKILLs it and reaps it.
    pub fn kill(&mut self) {
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

/// The platform (all but encoding, in this process) and its worker processes.
pub struct Fleet {
    /// The engines everything runs on.
    pub engines: Engines,
    /// The blob store's bucket.
    pub bucket: String,
    /// The workers' consumer group.
    pub group: String,
    /// The platform.
    pub platform: Platform,
    /// The worker processes.
    pub workers: Vec<Worker>,
    /// How they run.
    pub options: WorkerOptions,
    /// The workers' logs, the viewer's run and screenshot, kept after the test.
    pub artifacts: PathBuf,
}

impl Fleet {
    /// The platform without its own worker, and `workers` worker processes on `engines`.
    pub async fn start(engines: Engines, workers: usize, options: WorkerOptions) -> Fleet {
        let bucket = format!("worker-fleet-{}", EventId::generate());
        let artifacts = artifacts_dir().join(&bucket);
        std::fs::create_dir_all(&artifacts).unwrap();
        let platform = engines
            .platform(&bucket, |config| config.run_worker = false)
            .await;
        let mut fleet = Fleet {
            engines,
            bucket,
            group: format!("encode-worker-{}", EventId::generate()),
            platform,
            workers: Vec::new(),
            options,
            artifacts,
        };
        for n in 0..workers {
            let worker = fleet.spawn_worker(&format!("worker-{n}"));
            fleet.workers.push(worker);
        }
        fleet
    }

    /// A worker process named `name` (its log is `name.log` in the artifacts).
    pub fn spawn_worker(&self, name: &str) -> Worker {
        let http = free_port();
        let log =
            std::fs::File::create(self.artifacts.join(format!("{name}.log"))).expect("worker log");
        let binary = service_binary("encode-worker");
        let mut command = match self.options.pinned_to_cpu {
            Some(cpu) => {
                let mut taskset = Command::new("taskset");
                taskset.args(["-c", &cpu.to_string()]).arg(binary);
                taskset
            }
            None => Command::new(binary),
        };
        let child = command
            .env("LIVECAST_HTTP__ADDR", format!("127.0.0.1:{http}"))
            .env("LIVECAST_GRPC_ADDR", format!("127.0.0.1:{}", free_port()))
            .envs(self.engines.service_env(&self.bucket))
            .env("LIVECAST_WORKER__GROUP", &self.group)
            .env("LIVECAST_WORKER__TOPIC_PARTITIONS", "4")
            .env("LIVECAST_WORKER__PRESET", self.options.preset)
            .env("LIVECAST_WORKER__CONCURRENCY", "1")
            .env(
                "RUST_LOG",
                std::env::var("TEST_WORKER_LOG").unwrap_or_else(|_| "info".into()),
            )
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

    /// Pushes a coded source of `size` and plays it with `viewer` for `watch_s` from [`JOIN_S`]
    /// after its first frame, running `faults` (given the stream id) meanwhile; returns the
    /// stream id and what the viewer saw.
    pub async fn broadcast_and_watch(
        &mut self,
        size: (u32, u32),
        viewer: Viewer,
        watch_s: u32,
        faults: impl AsyncFnOnce(&mut Fleet, &str),
    ) -> (String, Seen) {
        let created = self.platform.create_stream("Worker fleet").await;
        let id = created["id"].as_str().unwrap().to_string();
        let key = created["stream_key"].as_str().unwrap().to_string();
        let source = coded_source(JOIN_S + watch_s + 20, size).await;
        let rtmp_port: u16 = self
            .platform
            .rtmp
            .trim_end_matches("/live")
            .rsplit(':')
            .next()
            .and_then(|port| port.parse().ok())
            .expect("rtmp://127.0.0.1:PORT/live");
        let master = format!("{}/stream/{id}/master.m3u8", self.platform.http);
        let watching = Watching::start(
            rtmp_port,
            &format!("live/{key}"),
            &source,
            &master,
            (JOIN_S, watch_s),
            viewer,
            &self.artifacts,
        );
        faults(self, &id).await;
        let seen = watching.finish().await;
        println!("artifacts in {}", self.artifacts.display());
        (id, seen)
    }

    /// The VOD playlist of `rendition` once the broadcast is over.
    pub async fn recording(&self, id: &str, rendition: &str) -> String {
        self.platform
            .wait_for(
                &format!("/stream/{id}/{rendition}/index.m3u8"),
                Duration::from_secs(60),
                |s, b| s == 200 && b.contains("#EXT-X-ENDLIST"),
            )
            .await
    }

    /// Decodes `rendition` of the recording with ffmpeg; the errors it printed, if any.
    pub async fn decode_errors(&self, id: &str, rendition: &str) -> Option<String> {
        let output = tokio::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-v", "error", "-xerror", "-i"])
            .arg(format!(
                "{}/stream/{id}/{rendition}/index.m3u8",
                self.platform.http
            ))
            .args(["-f", "null", "-"])
            .output()
            .await
            .expect("ffmpeg runs");
        (!output.status.success() || !output.stderr.is_empty())
            .then(|| String::from_utf8_lossy(&output.stderr).into_owned())
    }
}
