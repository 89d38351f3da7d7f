//! Runs the one event bus conformance suite against every implementation.
//!
//! Kafka runs when `LIVECAST_TEST_KAFKA_BROKERS` names a broker (e.g. `127.0.0.1:9092`); with
//! `LIVECAST_TEST_REQUIRE_ENGINES=1` a missing broker fails the test instead of skipping it.
//! Set `TEST_LOG` (an env filter such as `debug`) to see the bus's logs.

mod conformance;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use livecast_bus::{BusConfig, BusError};
use livecast_core::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_bus_passes_the_bus_suite() {
    init_logs();
    let bus = livecast_bus::open(&BusConfig::InProcess)
        .await
        .expect("open the in-process bus");
    conformance::run_all(bus, &unique_prefix("in-process")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_bus_passes_the_bus_suite() {
    init_logs();
    let Some(brokers) = kafka_brokers() else {
        return;
    };
    let bus = livecast_bus::open(&kafka_config(&brokers))
        .await
        .expect("open the kafka bus");
    conformance::run_all(bus, &unique_prefix("kafka")).await;
}

#[tokio::test]
async fn unreachable_kafka_is_unavailable_and_names_the_brokers() {
    init_logs();
    // A port that was just free and is closed now: connections are refused.
    let brokers = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        format!(
            "127.0.0.1:{}",
            listener.local_addr().expect("address").port()
        )
    };
    let bus = livecast_bus::open(&kafka_config(&brokers))
        .await
        .expect("opening does not contact the brokers");
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(10), bus.check())
        .await
        .expect("check() answers within seconds");
    let error = answer.expect_err("nothing listens on the port");
    assert!(
        matches!(&error, BusError::Unavailable { brokers: named, .. } if *named == brokers),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    let core = livecast_core::Error::from(error);
    assert_eq!(core.kind, ErrorKind::Unavailable);
    assert!(core.message.contains(&brokers), "{}", core.message);
}

fn kafka_config(brokers: &str) -> BusConfig {
    BusConfig::Kafka {
        brokers: brokers.to_owned(),
        client_id: Some("livecast-bus-conformance".to_owned()),
        // Short, so members that leave are noticed within the suite's patience.
        session_timeout_ms: Some(6_000),
        publish_timeout_ms: Some(15_000),
        replication_factor: None,
    }
}

fn kafka_brokers() -> Option<String> {
    match std::env::var("LIVECAST_TEST_KAFKA_BROKERS") {
        Ok(brokers) if !brokers.trim().is_empty() => Some(brokers),
        _ if std::env::var("LIVECAST_TEST_REQUIRE_ENGINES").as_deref() == Ok("1") => panic!(
            "LIVECAST_TEST_REQUIRE_ENGINES=1 but LIVECAST_TEST_KAFKA_BROKERS is not set: \
             start a Kafka-protocol broker and set it to host:port (e.g. 127.0.0.1:9092)"
        ),
        _ => {
            eprintln!("skipped: LIVECAST_TEST_KAFKA_BROKERS is not set");
            None
        }
    }
}

/// Topic names unique to this run: test brokers cannot delete topics.
fn unique_prefix(bus: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("conformance-{bus}-{}-{nanos}", std::process::id())
}

fn init_logs() {
    if let Ok(filter) = std::env::var("TEST_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}
