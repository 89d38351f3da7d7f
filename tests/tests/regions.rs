//! Two regions as separate process sets on one machine: region A is the all-in-one platform
//! (ingest, worker, catalogue, edge) with its own blob directory; region B is a
//! `streaming-edge` process with another blob directory, pulling from A's edge. They share the
//! Kafka-protocol broker that the test script starts (the event backbone) and A's catalogue.
//! A's worker copies every segment to B's blob store (the backup region).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use livecast_blob::BlobConfig;
use livecast_bus::BusConfig;
use livecast_core::EventId;
use livecast_tests::{
    free_port, listed_sequence_numbers, metric_value, play_to_end, push_test_stream,
    record_fault_result, service_binary, spawn_platform,
};

/// A process stopped when the test ends, passed or not.
struct Stopped(Child);

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Region B's edge: its own blob directory, pulling from `peer` (region A's edge).
fn spawn_region_b(
    blob_dir: &Path,
    brokers: &str,
    catalogue: &str,
    peer: &str,
) -> (Stopped, String) {
    let port = free_port();
    let child = Command::new(service_binary("streaming-edge"))
        .env("LIVECAST_REGION", "b")
        .env("LIVECAST_HTTP__ADDR", format!("127.0.0.1:{port}"))
        .env("LIVECAST_CATALOGUE_ENDPOINT", catalogue)
        .env("LIVECAST_BLOB__KIND", "local")
        .env("LIVECAST_BLOB__DIR", blob_dir)
        .env("LIVECAST_BUS__KIND", "kafka")
        .env("LIVECAST_BUS__BROKERS", brokers)
        .env("LIVECAST_EDGE__PEERS", format!("a={peer}"))
        .env("LIVECAST_EDGE__TOPIC_PARTITIONS", "4")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("the streaming-edge binary starts");
    (Stopped(child), format!("http://127.0.0.1:{port}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn region_b_pulls_each_object_once_from_region_a_and_plays_on_when_region_a_is_down() {
    let Ok(brokers) = std::env::var("LIVECAST_TEST_KAFKA_BROKERS") else {
        assert!(
            std::env::var("LIVECAST_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
            "LIVECAST_TEST_KAFKA_BROKERS is not set"
        );
        return;
    };
    let region_b_dir = tempfile::tempdir().unwrap();
    let bus = BusConfig::Kafka {
        brokers: brokers.clone(),
        client_id: None,
        session_timeout_ms: Some(6_000),
        publish_timeout_ms: None,
        replication_factor: None,
    };
    let b_blobs = region_b_dir.path().to_path_buf();
    let region_a = spawn_platform(move |config| {
        config.region = "a".into();
        config.bus = bus;
        config.ingest.topic_partitions = 4;
        config.edge.topic_partitions = 4;
        config.worker.topic_partitions = 4;
        // Groups of this test's own: other tests share the broker.
        config.worker.group = format!("encode-worker-{}", EventId::generate());
        config.worker.backup_blob = Some(BlobConfig::Local { dir: b_blobs });
    })
    .await;
    region_a
        .wait_for("/readyz", Duration::from_secs(30), |s, _| s == 200)
        .await;
    let (edge_b, region_b) = spawn_region_b(
        region_b_dir.path(),
        &brokers,
        &region_a.grpc,
        &region_a.http,
    );
    let client = reqwest::Client::new();
    let ready_b = async {
        for _ in 0..150 {
            let ok = client.get(format!("{region_b}/readyz")).send().await;
            if ok.is_ok_and(|r| r.status() == 200) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    assert!(ready_b.await, "region B's edge never became ready");

    let created = region_a.create_stream("Two regions").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();
    assert!(push_test_stream(&format!("{}/{key}", region_a.rtmp), &["-f", "flv"], 12).await);
    let vod = format!("/stream/{id}/360p/index.m3u8");
    let playlist = region_a
        .wait_for(&vod, Duration::from_secs(60), |s, b| {
            s == 200 && b.contains("#EXT-X-ENDLIST")
        })
        .await;
    let seqs = listed_sequence_numbers(&playlist);
    assert!(seqs.len() >= 5, "{playlist}");

    // Region B lists the same segments (its index follows the shared events).
    let listed_at_b = async {
        for _ in 0..100 {
            let response = client.get(format!("{region_b}{vod}")).send().await.unwrap();
            if response.status() == 200 && response.text().await.unwrap().contains("#EXT-X-ENDLIST")
            {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        false
    };
    assert!(listed_at_b.await, "region B never listed the stream");

    // One segment has not reached region B yet (replication lag): 200 viewers ask at once.
    let object = format!("{id}/360p/{}.m4s", seqs[1]);
    let replica = region_b_dir.path().join(format!("hls/{object}"));
    assert!(
        replica.exists(),
        "the backup copy is at {}",
        replica.display()
    );
    std::fs::remove_file(&replica).unwrap();
    let url = format!("{region_b}/stream/{object}");
    let answers = futures::future::join_all((0..200).map(|_| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.bytes().await.unwrap()
        }
    }))
    .await;
    let from_a = client
        .get(format!("{}/stream/{object}", region_a.http))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(
        answers.iter().all(|body| *body == from_a),
        "all 200 got region A's bytes"
    );
    let metrics_b = client
        .get(format!("{region_b}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric_value(
            &metrics_b,
            "livecast_edge_region_pulls_total{outcome=\"ok\",region=\"a\"}"
        ),
        Some(1.0),
        "200 concurrent misses, one pull from region A:\n{metrics_b}"
    );
    // Written through: the next edge of region B finds it in B's own store.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(std::fs::read(&replica).unwrap(), from_a.to_vec());

    // Parts are written only to region A's store: region B pulls a part it lists, too.
    let get = |url: String| {
        let client = client.clone();
        async move {
            let response = client.get(url).send().await.unwrap();
            (response.status().as_u16(), response.bytes().await.unwrap())
        }
    };
    let mut pulled_part = false;
    for seq in seqs.iter().rev().take(3) {
        let part = format!("{id}/360p/{seq}.0.m4s");
        let (status, from_a) = get(format!("{}/stream/{part}", region_a.http)).await;
        if status != 200 {
            continue;
        }
        let (status_b, at_b) = get(format!("{region_b}/stream/{part}")).await;
        assert_eq!(status_b, 200, "region B serves part {part}");
        assert_eq!(at_b, from_a, "region B's part {part} is region A's");
        pulled_part = true;
        break;
    }
    assert!(pulled_part, "none of the newest segments was made of parts");

    // Region A goes down entirely; a region B viewer plays the whole recording from B.
    drop(region_a);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let master_b = format!("{region_b}/stream/{id}/master.m3u8");
    let played = play_to_end(&master_b)
        .await
        .unwrap_or_else(|e| panic!("region B stopped playing without region A: {e}"));
    assert!((played - 12.0).abs() < 2.5, "played {played} s of 12 s");
    record_fault_result([
        "region A stopped entirely (its processes and blob store), region B viewer plays the recording",
        "0 / 0",
        &format!("{:.1} s", (12.0 - played).max(0.0)),
        "none (played from B's replica; one object pulled from A before the outage)",
    ]);

    drop(edge_b);
}
