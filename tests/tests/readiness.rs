//! `/readyz` tells the truth about the backends, and names the one that is broken.

use livecast_blob::{BlobConfig, S3Config};
use livecast_bus::BusConfig;
use livecast_service::Secret;
use std::time::Duration;

use livecast_tests::spawn_platform;

#[tokio::test]
async fn the_all_in_one_platform_is_ready_on_embedded_defaults() {
    let platform = spawn_platform(|_| {}).await;
    let body = platform
        .wait_for("/readyz", Duration::from_secs(10), |s, _| s == 200)
        .await;
    for backend in ["blob-store", "event-bus", "metadata-store"] {
        assert!(body.contains(backend), "{body}");
    }
    let (status, metrics) = platform.get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metrics.contains("livecast_"), "{metrics}");
    assert_eq!(platform.get("/healthz").await.0, 200);
}

/// A private Kafka-protocol broker this test may stop without disturbing the others.
fn start_broker(dir: &std::path::Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let child = std::process::Command::new("tansu")
        .current_dir(dir)
        .args(["broker", "--storage-engine", "sqlite://kafka.db"])
        .args(["--listener-url", &format!("tcp://{address}")])
        .args(["--advertised-listener-url", &format!("tcp://{address}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("tansu is installed by make test");
    (child, address)
}

#[tokio::test]
async fn a_stopped_broker_makes_readyz_503_naming_the_event_bus() {
    if std::env::var_os("LIVECAST_TEST_KAFKA_BROKERS").is_none() {
        assert!(
            std::env::var("LIVECAST_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
            "LIVECAST_TEST_KAFKA_BROKERS is not set"
        );
        println!("skipped: no Kafka-protocol broker in this run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut broker, brokers) = start_broker(dir.path());
    let platform = spawn_platform(|config| {
        config.bus = BusConfig::Kafka {
            brokers: brokers.clone(),
            client_id: None,
            session_timeout_ms: Some(6_000),
            publish_timeout_ms: None,
            replication_factor: None,
        };
    })
    .await;
    platform
        .wait_for("/readyz", Duration::from_secs(60), |s, _| s == 200)
        .await;
    broker.kill().unwrap();
    broker.wait().unwrap();
    let body = platform
        .wait_for("/readyz", Duration::from_secs(30), |s, _| s == 503)
        .await;
    assert!(
        body.contains("event-bus") && body.contains(&brokers),
        "{body}"
    );
    assert!(
        !platform.stopped(),
        "a broken backend must not stop the process"
    );
    assert_eq!(platform.get("/healthz").await.0, 200);
}

#[tokio::test]
async fn a_wrong_s3_secret_makes_readyz_503_naming_the_blob_store() {
    let Some(endpoint) = std::env::var("LIVECAST_TEST_S3_ENDPOINT").ok() else {
        assert!(
            std::env::var("LIVECAST_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
            "LIVECAST_TEST_S3_ENDPOINT is not set"
        );
        println!("skipped: LIVECAST_TEST_S3_ENDPOINT is not set");
        return;
    };
    let access = std::env::var("LIVECAST_TEST_S3_ACCESS_KEY").unwrap_or_default();
    let platform = spawn_platform(|config| {
        config.blob = Some(BlobConfig::S3(S3Config {
            endpoint: Some(endpoint.clone()),
            bucket: "livecast-readiness".into(),
            region: "us-east-1".into(),
            access_key_id: Some(access.clone()),
            secret_access_key: Some(Secret::new("wrong-secret")),
            secret_access_key_file: None,
            multipart_threshold_bytes: None,
            connect_timeout_ms: None,
            operation_timeout_ms: None,
        }));
    })
    .await;
    let (status, body) = platform.get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body.contains("blob-store") && body.contains(&endpoint),
        "{body}"
    );
    assert!(!platform.stopped());
}
