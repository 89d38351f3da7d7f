//! The platform rides out its backends going away for 5 s in the middle of a broadcast: the
//! S3-compatible blob store, then the Kafka-protocol broker, each stopped and restarted (same
//! data, same port) while ffmpeg pushes. No segment is missing or duplicated in any rendition
//! and no second of the broadcast is lost.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use livecast::Config;
use livecast_bus::BusConfig;
use livecast_tests::viewer::watch_live;
use livecast_tests::{
    continuous_segments, free_port, listed_seconds, play_to_end, push_test_stream,
    record_fault_result, s3_bucket, spawn_platform,
};

const PUSH_SECONDS: u32 = 24;
const RENDITIONS: [&str; 3] = ["360p", "240p", "audio"];

/// A private engine this test stops and starts again on the same port and data.
struct Engine {
    command: Box<dyn Fn() -> Command + Send>,
    child: Child,
    port: u16,
}

impl Engine {
    fn start(command: impl Fn() -> Command + Send + 'static, port: u16) -> Engine {
        let child = command()
            .spawn()
            .expect("the engine is installed by make test");
        wait_for_port(port);
        Engine {
            command: Box::new(command),
            child,
            port,
        }
    }

    fn stop(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    fn restart(&mut self) {
        self.child = (self.command)().spawn().unwrap();
        wait_for_port(self.port);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for_port(port: u16) {
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("nothing listens on port {port}");
}

fn quiet(mut command: Command) -> Command {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .stdin(Stdio::null());
    command
}

fn s3_server(dir: &Path, port: u16) -> Engine {
    let dir = dir.to_path_buf();
    Engine::start(
        move || {
            let mut command = quiet(Command::new("s3s-fs"));
            command
                .args(["--host", "127.0.0.1", "--port", &port.to_string()])
                .args(["--access-key", "outage", "--secret-key", "outage-secret"])
                .arg(&dir);
            command
        },
        port,
    )
}

fn broker(dir: &Path, port: u16) -> Engine {
    let dir = dir.to_path_buf();
    Engine::start(
        move || {
            let address = format!("tcp://127.0.0.1:{port}");
            let mut command = quiet(Command::new("tansu"));
            command
                .current_dir(&dir)
                .args(["broker", "--storage-engine", "sqlite://kafka.db"])
                .args([
                    "--listener-url",
                    &address,
                    "--advertised-listener-url",
                    &address,
                ]);
            command
        },
        port,
    )
}

fn engines_required() -> bool {
    let required = std::env::var("LIVECAST_TEST_REQUIRE_ENGINES").as_deref() == Ok("1");
    let installed = ["s3s-fs", "tansu"].iter().all(|engine| {
        Command::new("which")
            .arg(engine)
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    assert!(
        installed || !required,
        "s3s-fs and tansu are installed by make test"
    );
    installed
}

/// Pushes the broadcast, takes `engine` away for 5 s from 8 s in, and checks the recording and
/// what a viewer at the live edge saw.
async fn broadcast_through_an_outage(
    scenario: &str,
    configure: impl FnOnce(&mut Config),
    engine: &mut Engine,
) {
    let platform = spawn_platform(configure).await;
    platform
        .wait_for("/readyz", Duration::from_secs(30), |s, _| s == 200)
        .await;
    let created = platform.create_stream("Through an outage").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();
    let url = format!("{}/{key}", platform.rtmp);
    let pushed_at = tokio::time::Instant::now();
    let push =
        tokio::spawn(async move { push_test_stream(&url, &["-f", "flv"], PUSH_SECONDS).await });
    let live = format!("/stream/{id}/{}/index.m3u8", RENDITIONS[0]);
    // The viewer waits for the playlist, then joins three segments behind live.
    let viewer = tokio::spawn(watch_live(
        format!("{}{live}", platform.http),
        Duration::from_secs(120),
    ));
    tokio::time::sleep_until(pushed_at + Duration::from_secs(8)).await;
    engine.stop();
    tokio::time::sleep(Duration::from_secs(5)).await;
    engine.restart();
    assert!(push.await.unwrap(), "the broadcaster was cut off");

    let mut least_listed = f64::MAX;
    for rendition in RENDITIONS {
        let path = format!("/stream/{id}/{rendition}/index.m3u8");
        let playlist = platform
            .wait_for(&path, Duration::from_secs(90), |s, b| {
                s == 200 && b.contains("#EXT-X-ENDLIST")
            })
            .await;
        let listed = listed_seconds(&continuous_segments(rendition, &playlist));
        least_listed = least_listed.min(listed);
        assert!(
            (listed - f64::from(PUSH_SECONDS)).abs() < 2.5,
            "{rendition}: {listed:.1} s of a {PUSH_SECONDS} s broadcast are listed"
        );
        play_to_end(&format!("{}{path}", platform.http))
            .await
            .unwrap_or_else(|e| panic!("{rendition} does not play: {e}"));
    }

    let stalls = viewer.await.unwrap().assert_whole();
    let lost = (f64::from(PUSH_SECONDS) - least_listed).max(0.0);
    record_fault_result([scenario, "0 / 0", &format!("{lost:.1} s"), &stalls]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_blob_store_away_for_5_seconds_costs_no_segment() {
    if !engines_required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut s3 = s3_server(dir.path(), port);
    let endpoint = format!("http://127.0.0.1:{port}");
    let blob = s3_bucket(&endpoint, "outage", "outage", "outage-secret").await;
    broadcast_through_an_outage(
        "S3 server stopped 5 s mid-broadcast",
        move |config| config.blob = Some(blob),
        &mut s3,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_broker_away_for_5_seconds_costs_no_segment() {
    if !engines_required() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut kafka = broker(dir.path(), port);
    let bus = BusConfig::Kafka {
        brokers: format!("127.0.0.1:{port}"),
        client_id: None,
        session_timeout_ms: Some(6_000),
        publish_timeout_ms: None,
        replication_factor: None,
    };
    broadcast_through_an_outage(
        "Kafka broker stopped 5 s mid-broadcast",
        move |config| {
            config.bus = bus;
            config.ingest.topic_partitions = 2;
            config.worker.topic_partitions = 2;
            config.edge.topic_partitions = 2;
            config.notification.topic_partitions = 2;
        },
        &mut kafka,
    )
    .await;
}
