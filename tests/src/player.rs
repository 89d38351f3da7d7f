//! A real player as the judge of a fault: hls.js in headless Chromium, driven by the
//! glass-to-glass harness of `bench/glass`. The broadcaster pushes a source that carries each
//! frame's number in its picture, through a relay that notes when every frame left; the viewer
//! reads the number on its screen every 100 ms. What it reports: glass-to-glass latency, stalls
//! (`waiting` after the first frame), hls.js fatal errors, and what made the run unusable.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::Value;
use tokio::process::{Child, Command};

fn harness() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/glass/harness.py")
}

/// A 16:9 30 fps source of `seconds` at `(width, height)` with each frame's number in its
/// picture (GOP 2 s, no B-frames, AAC), encoded once per machine and reused.
pub async fn coded_source(seconds: u32, (width, height): (u32, u32)) -> PathBuf {
    let path = std::env::temp_dir().join(format!("livecast-test-coded-{height}p-{seconds}s.flv"));
    let status = Command::new("python3")
        .arg(harness())
        .args(["source", path.to_str().unwrap(), &seconds.to_string()])
        .args([width.to_string(), height.to_string()])
        .stdin(Stdio::null())
        .status()
        .await
        .expect("python3 runs");
    assert!(status.success(), "the coded source could not be made");
    path
}

/// How the viewer plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    /// As the viewer app does: low-latency mode, catching up with the live edge, choosing its
    /// rendition by bandwidth.
    App,
    /// The same, pinned to the lowest rendition.
    AppLowestRendition,
}

/// A broadcaster pushing a coded source and one viewer watching, running.
pub struct Watching {
    harness: Child,
    out: PathBuf,
}

/// What the viewer saw.
#[derive(Debug)]
pub struct Seen {
    /// Glass-to-glass latency: median, 95th percentile and worst, in milliseconds.
    pub median_ms: f64,
    /// See `median_ms`.
    pub p95_ms: f64,
    /// See `median_ms`; from the join on.
    pub worst_ms: f64,
    /// The worst once the player caught up from where it joined (8 s after its first frame):
    /// what a fault, not the join, costs.
    pub settled_worst_ms: f64,
    /// Pictures read.
    pub samples: u64,
    /// Stalls after the first frame, and how long they lasted in all.
    pub stalls: u64,
    /// See `stalls`.
    pub stalled_ms: f64,
    /// Seconds played.
    pub played_s: f64,
    /// hls.js fatal errors.
    pub fatal: Vec<Value>,
    /// What made the measurement unusable (nothing read, the push ended early...).
    pub problems: Vec<String>,
}

impl Watching {
    /// Pushes `source` to `rtmp://127.0.0.1:{rtmp_port}/{path}` through the relay and, `join_s`
    /// s after its first frame, plays `playlist` for `seconds` as `viewer` says. Screenshots and
    /// the run's JSON go to `dir`.
    pub fn start(
        rtmp_port: u16,
        path: &str,
        source: &Path,
        playlist: &str,
        (join_s, seconds): (u32, u32),
        viewer: Viewer,
        dir: &Path,
    ) -> Self {
        let out = dir.join("run.json");
        let harness = Command::new("python3")
            .arg(harness())
            .arg("run")
            .arg(rtmp_port.to_string())
            .arg(path)
            .arg(source)
            .arg(playlist)
            .arg(join_s.to_string())
            .arg("1")
            .arg(seconds.to_string())
            .arg(&out)
            .arg(dir)
            .arg(match viewer {
                Viewer::App => "app",
                Viewer::AppLowestRendition => "app-lowest",
            })
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("python3 runs");
        Watching { harness, out }
    }

    /// Waits for the viewer to finish (the push stops then) and reads what it saw.
    pub async fn finish(mut self) -> Seen {
        let status = self.harness.wait().await.expect("the harness runs");
        assert!(
            status.success(),
            "the glass-to-glass harness failed: {status}"
        );
        let output = Command::new("python3")
            .arg(harness())
            .arg("summary")
            .arg(&self.out)
            .output()
            .await
            .expect("python3 runs");
        let text = String::from_utf8_lossy(&output.stdout);
        let summary: Value = serde_json::from_str(text.trim()).unwrap_or_else(|e| {
            panic!(
                "no summary ({e}): {text} {}",
                String::from_utf8_lossy(&output.stderr)
            )
        });
        let number = |key: &str| summary[key].as_f64().unwrap_or(f64::NAN);
        let list = |key: &str| summary[key].as_array().cloned().unwrap_or_default();
        Seen {
            median_ms: number("p50"),
            p95_ms: number("p95"),
            worst_ms: number("hi"),
            settled_worst_ms: number("hi_settled"),
            samples: summary["n"].as_u64().unwrap_or(0),
            stalls: summary["waiting"].as_u64().unwrap_or(0),
            stalled_ms: number("stalled_ms"),
            played_s: number("played_s"),
            fatal: list("fatal"),
            problems: list("problems")
                .into_iter()
                .map(|p| p.as_str().unwrap_or_default().to_string())
                .collect(),
        }
    }
}

impl Seen {
    /// Checks that the measurement is usable, and the viewer saw no fatal error; returns the
    /// figures as a cell of the fault table.
    pub fn assert_usable(&self) -> String {
        assert!(
            self.problems.is_empty(),
            "the viewer's run is unusable: {:?}",
            self.problems
        );
        assert!(self.samples > 0, "no picture was read");
        assert!(
            self.fatal.is_empty(),
            "hls.js fatal errors: {:?}",
            self.fatal
        );
        format!(
            "{} stalls ({:.0} ms) in {:.0} s; glass-to-glass {:.2} s median, {:.2} s worst \
             (join included), {:.2} s worst once caught up",
            self.stalls,
            self.stalled_ms,
            self.played_s,
            self.median_ms / 1000.0,
            self.worst_ms / 1000.0,
            self.settled_worst_ms / 1000.0
        )
    }
}

/// One viewer alone, playing a stream that someone else pushes: what it saw, without
/// glass-to-glass (the pictures carry no frame numbers it could read).
pub struct Playing {
    viewer: Child,
    out: PathBuf,
}

/// What a viewer playing alone saw.
#[derive(Debug)]
pub struct Played {
    /// Stalls after the first frame (`waiting`), and how long they lasted in all.
    pub stalls: u64,
    /// See `stalls`.
    pub stalled_ms: f64,
    /// Seconds played.
    pub played_s: f64,
    /// hls.js fatal errors.
    pub fatal: Vec<Value>,
    /// Why it stopped early, if it did.
    pub error: Option<String>,
    /// Each stall: when it began (milliseconds since the Unix epoch), how long it lasted and
    /// how much media was buffered ahead when it began (seconds), to line up with the logs.
    pub stall_list: Vec<(i64, f64, f64)>,
}

impl Playing {
    /// Plays `playlist` for `seconds` from its first frame, as `viewer` says.
    pub fn start(playlist: &str, seconds: u32, viewer: Viewer, dir: &Path) -> Self {
        let out = dir.join("viewer.json");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/glass/viewer.mjs");
        let viewer = Command::new("node")
            .arg(script)
            .arg(playlist)
            .arg(seconds.to_string())
            .arg(&out)
            .arg("0")
            .arg(dir.join("viewer.png"))
            .arg(match viewer {
                Viewer::App => "app",
                Viewer::AppLowestRendition => "app-lowest",
            })
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs");
        Playing { viewer, out }
    }

    /// Waits for the viewer to finish and reads what it saw.
    pub async fn finish(mut self) -> Played {
        let _ = self.viewer.wait().await;
        let text = std::fs::read_to_string(&self.out).unwrap_or_default();
        let result: Value = serde_json::from_str(&text).unwrap_or_default();
        Played {
            stalls: result["waiting"].as_u64().unwrap_or(0),
            stalled_ms: result["stalledMs"].as_f64().unwrap_or(0.0),
            played_s: result["playedSeconds"].as_f64().unwrap_or(0.0),
            fatal: result["fatalErrors"]
                .as_array()
                .cloned()
                .unwrap_or_default(),
            error: result["error"].as_str().map(str::to_string),
            stall_list: result["stalls"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|stall| {
                    (
                        stall["t"].as_i64().unwrap_or(0),
                        stall["ms"].as_f64().unwrap_or(0.0),
                        stall["ahead"].as_f64().unwrap_or(0.0),
                    )
                })
                .collect(),
        }
    }
}

impl Played {
    /// Checks that the viewer played and saw no fatal error; returns what it saw as a cell of
    /// the fault table.
    pub fn assert_played(&self) -> String {
        assert!(self.error.is_none(), "the viewer stopped: {:?}", self.error);
        assert!(
            self.fatal.is_empty(),
            "hls.js fatal errors: {:?}",
            self.fatal
        );
        assert!(self.played_s > 0.0, "nothing played");
        for (at, ms, ahead) in &self.stall_list {
            println!("viewer stall at {at} ms: {ms:.0} ms, {ahead:.2} s buffered ahead");
        }
        format!(
            "{} stalls ({:.0} ms) in {:.0} s, no fatal error",
            self.stalls, self.stalled_ms, self.played_s
        )
    }
}
