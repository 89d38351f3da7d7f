//! The RTMP server in-process on port 0 with a recording gate, and the ffmpeg/ffprobe helpers
//! the tests drive it with. Set `TEST_LOG` to see the server's logs.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livecast_core::{Error, ErrorKind};
use livecast_ingest::publish::{Departure, MediaChunk, PublishGate, Publisher};
use livecast_ingest::rtmp::{RtmpConfig, serve_rtmp};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The only key the test gate admits.
pub const GOOD_KEY: &str = "good-key";

/// A chunk the gate received, also written to the temp directory.
#[derive(Debug, Clone)]
pub struct RecordedChunk {
    pub path: PathBuf,
    pub bytes: bytes::Bytes,
    pub pts_ms: i64,
    pub duration_ms: u32,
}

/// What the gate saw.
#[derive(Debug, Default)]
pub struct Recording {
    pub chunks: Vec<RecordedChunk>,
    pub begun: usize,
    /// How each publish ended, in order.
    pub departures: Vec<Departure>,
    pub refused: usize,
}

/// Admits [`GOOD_KEY`], refuses any other key with PermissionDenied, records chunks.
pub struct TestGate {
    dir: PathBuf,
    recording: Arc<Mutex<Recording>>,
}

#[async_trait::async_trait]
impl PublishGate for TestGate {
    async fn begin(&self, stream_key: &str) -> Result<Box<dyn Publisher>, Error> {
        let mut recording = self.recording.lock().unwrap();
        if stream_key != GOOD_KEY {
            recording.refused += 1;
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                "unknown stream key",
            ));
        }
        recording.begun += 1;
        Ok(Box::new(RecordingPublisher {
            dir: self.dir.clone(),
            session: recording.begun,
            recording: self.recording.clone(),
        }))
    }
}

struct RecordingPublisher {
    dir: PathBuf,
    session: usize,
    recording: Arc<Mutex<Recording>>,
}

#[async_trait::async_trait]
impl Publisher for RecordingPublisher {
    async fn chunk(&mut self, chunk: MediaChunk) -> Result<(), Error> {
        let seq = self.recording.lock().unwrap().chunks.len();
        let path = self.dir.join(format!(
            "{}-{seq}.{}",
            self.session,
            chunk.container.as_str()
        ));
        tokio::fs::write(&path, &chunk.bytes)
            .await
            .map_err(|e| Error::internal(e.to_string()))?;
        self.recording.lock().unwrap().chunks.push(RecordedChunk {
            path,
            bytes: chunk.bytes,
            pts_ms: chunk.pts_ms,
            duration_ms: chunk.duration_ms,
        });
        Ok(())
    }

    async fn end(self: Box<Self>, departure: Departure) {
        self.recording.lock().unwrap().departures.push(departure);
    }
}

/// A running RTMP server; dropping it shuts the server down.
pub struct TestApp {
    pub addr: SocketAddr,
    pub recording: Arc<Mutex<Recording>>,
    pub shutdown: CancellationToken,
    pub server: Option<JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

impl TestApp {
    /// `rtmp://` URL of this server for `app`/`key`.
    pub fn url(&self, app: &str, key: &str) -> String {
        format!("rtmp://{}/{app}/{key}", self.addr)
    }

    /// A copy of what the gate has seen so far.
    pub fn chunks(&self) -> Vec<RecordedChunk> {
        self.recording.lock().unwrap().chunks.clone()
    }

    /// Reads one counter of the recording.
    pub fn count(&self, read: impl Fn(&Recording) -> usize) -> usize {
        read(&self.recording.lock().unwrap())
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Test timeouts: short enough that garbage and stalled clients end quickly.
pub fn test_config() -> RtmpConfig {
    RtmpConfig {
        handshake_timeout: Duration::from_secs(2),
        idle_timeout: Duration::from_secs(5),
        ..RtmpConfig::default()
    }
}

pub async fn spawn_app(config: RtmpConfig) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        livecast_service::telemetry::init();
    }
    let dir = tempfile::tempdir().unwrap();
    let recording = Arc::new(Mutex::new(Recording::default()));
    let gate = Arc::new(TestGate {
        dir: dir.path().to_path_buf(),
        recording: recording.clone(),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve_rtmp(listener, gate, config, shutdown.clone()));
    TestApp {
        addr,
        recording,
        shutdown,
        server: Some(server),
        _dir: dir,
    }
}

/// Polls `condition` until it holds or `within` passes; returns whether it held.
pub async fn eventually(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A real-time ffmpeg broadcaster: H.264 + AAC test signal for `seconds`, published to `url`.
pub fn ffmpeg_publish(url: &str, seconds: u32) -> std::process::Child {
    let seconds = seconds.to_string();
    Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin"])
        .args(["-re", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args([
            "-re",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ])
        .args(["-t", &seconds, "-pix_fmt", "yuv420p"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "30"])
        .args(["-c:a", "aac", "-f", "flv", url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg is installed")
}

/// Waits for `child` to exit (killing it after `within`); its status and stderr.
pub async fn wait_child(mut child: std::process::Child, within: Duration) -> (ExitStatus, String) {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut pipe) = child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            return (status, stderr);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("child process did not finish within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `codec_name,codec_type` of each stream in `file`.
pub fn probe_streams(file: &Path) -> Vec<String> {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name,codec_type",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("ffprobe is installed");
    assert!(output.status.success(), "ffprobe failed on {file:?}");
    let mut streams: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    streams.sort();
    streams
}

/// Whether the first decoded video frame of `file` is a keyframe.
pub fn first_video_frame_is_key(file: &Path) -> bool {
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v",
            "-read_intervals",
            "%+#1",
        ])
        .args([
            "-show_entries",
            "frame=key_frame",
            "-of",
            "default=noprint_wrappers=1",
        ])
        .arg(file)
        .output()
        .expect("ffprobe is installed");
    assert!(output.status.success(), "ffprobe failed on {file:?}");
    let first = String::from_utf8_lossy(&output.stdout)
        .lines()
        .find(|line| line.starts_with("key_frame="))
        .map(str::to_owned);
    first.as_deref() == Some("key_frame=1")
}

/// Decodes all of `file` alone; the decoder's complaints, if any.
pub fn decode_errors(file: &Path) -> Option<String> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-nostdin", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg is installed");
    let stderr = String::from_utf8_lossy(&output.stderr).trim().to_owned();
    (!output.status.success() || !stderr.is_empty()).then_some(stderr)
}
