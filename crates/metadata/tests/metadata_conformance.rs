//! Runs the one metadata conformance suite against the embedded SQLite store and, when
//! `LIVECAST_TEST_SCYLLA` names a CQL node (`host:port`), against ScyllaDB.

mod conformance;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use livecast_metadata::{MetadataConfig, MetadataError, ScyllaSettings, ScyllaStore, open};

#[tokio::test]
async fn sqlite_store_passes_the_metadata_suite() {
    let dir = tempfile::tempdir().unwrap();
    let config = MetadataConfig::Embedded {
        path: dir.path().join("metadata.sqlite3"),
    };
    let store = open(&config).await.unwrap();
    conformance::run_all(store).await;
}

#[tokio::test]
async fn scylla_store_passes_the_metadata_suite() {
    let Some(node) = std::env::var("LIVECAST_TEST_SCYLLA")
        .ok()
        .filter(|node| !node.trim().is_empty())
    else {
        println!(
            "skipped: LIVECAST_TEST_SCYLLA is not set (no CQL server can be installed on this \
             machine; see docs/metadata-store-scylla.md)"
        );
        return;
    };
    // A fresh keyspace per run, so runs never see each other's rows.
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let keyspace = format!(
        "livecast_test_{}_{}",
        std::process::id(),
        nanos % 1_000_000_000
    );
    let datacenter =
        std::env::var("LIVECAST_TEST_SCYLLA_DC").unwrap_or_else(|_| "datacenter1".to_owned());
    let mut settings = ScyllaSettings::new(vec![node], &keyspace, &datacenter);
    settings.replication_factor = 1;
    settings.request_timeout = Duration::from_secs(30);
    let store = ScyllaStore::connect(&settings).await.unwrap();
    println!("running the metadata suite in keyspace {keyspace}");
    conformance::run_all(Arc::new(store)).await;
}

#[tokio::test]
async fn an_unreachable_scylla_node_is_unavailable_from_open_within_seconds() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = MetadataConfig::Scylla {
        nodes: vec![format!("127.0.0.1:{port}")],
        keyspace: "livecast_unreachable".into(),
        local_datacenter: "datacenter1".into(),
        username: None,
        password: None,
        password_file: None,
        replication_factor: 1,
    };
    let started = Instant::now();
    let err = open(&config).await.unwrap_err();
    let elapsed = started.elapsed();
    println!("open failed after {elapsed:?}: {err}");
    assert!(
        matches!(
            err,
            MetadataError::Unavailable {
                backend: "scylla",
                ..
            }
        ),
        "{err}"
    );
    assert!(elapsed < Duration::from_secs(12), "took {elapsed:?}");
}
