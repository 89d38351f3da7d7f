//! Runs the one blob store conformance suite against the local-directory store and against a
//! real S3-compatible server, plus the failure behaviour of each backend.
//!
//! The S3 tests read `LIVECAST_TEST_S3_ENDPOINT`, `LIVECAST_TEST_S3_ACCESS_KEY` and
//! `LIVECAST_TEST_S3_SECRET_KEY`. Without an endpoint they are skipped, unless
//! `LIVECAST_TEST_REQUIRE_ENGINES=1`, which makes them fail.

mod conformance;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_blob::{
    BlobConfig, BlobError, BlobStore, LocalBlobStore, S3BlobStore, S3Settings, Secret, open,
};

const MIB: u64 = 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_directory_store_passes_the_blob_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&BlobConfig::local(dir.path().join("blobs")))
        .await
        .unwrap();
    conformance::run(store).await;
}

/// The S3 server the tests may use, from the environment.
struct S3Env {
    endpoint: String,
    access_key: String,
    secret_key: String,
}

/// `None` (after saying so) when no server is configured and none is required.
fn s3_env() -> Option<S3Env> {
    let endpoint = std::env::var("LIVECAST_TEST_S3_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty());
    let Some(endpoint) = endpoint else {
        assert!(
            std::env::var("LIVECAST_TEST_REQUIRE_ENGINES").as_deref() != Ok("1"),
            "LIVECAST_TEST_REQUIRE_ENGINES=1 but LIVECAST_TEST_S3_ENDPOINT is not set: start an \
             S3-compatible server and set LIVECAST_TEST_S3_ENDPOINT, LIVECAST_TEST_S3_ACCESS_KEY \
             and LIVECAST_TEST_S3_SECRET_KEY"
        );
        println!("skipped: LIVECAST_TEST_S3_ENDPOINT is not set");
        return None;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    Some(S3Env {
        endpoint,
        access_key: var("LIVECAST_TEST_S3_ACCESS_KEY"),
        secret_key: var("LIVECAST_TEST_S3_SECRET_KEY"),
    })
}

fn unique_bucket() -> String {
    format!("livecast-test-{}", uuid::Uuid::now_v7().simple())
}

fn settings(env: &S3Env, bucket: &str, secret: &str) -> S3Settings {
    let mut settings = S3Settings::new(
        Some(env.endpoint.clone()),
        bucket,
        env.access_key.clone(),
        Secret::new(secret),
    );
    settings.connect_timeout = Duration::from_secs(2);
    settings.operation_timeout = Duration::from_secs(20);
    settings
}

/// A store on a fresh bucket, created for this test only.
async fn fresh_s3_store(env: &S3Env, multipart_threshold: u64) -> S3BlobStore {
    let mut settings = settings(env, &unique_bucket(), &env.secret_key);
    settings.multipart_threshold_bytes = multipart_threshold;
    let store = S3BlobStore::new(settings).unwrap();
    assert!(store.create_bucket_if_missing().await.unwrap());
    assert!(!store.create_bucket_if_missing().await.unwrap());
    store
}

/// Deletes the test bucket and what is in it, so a shared server does not fill up.
async fn remove_bucket(store: &S3BlobStore) {
    for object in store.list("").await.unwrap() {
        store.delete(&object.key).await.unwrap();
    }
    store
        .client()
        .delete_bucket()
        .bucket(store.bucket())
        .send()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_passes_the_blob_suite() {
    let Some(env) = s3_env() else { return };
    // Lowered so the 12 MiB object of the suite goes up in three parts.
    let store = fresh_s3_store(&env, 5 * MIB).await;
    conformance::run(Arc::new(store.clone())).await;

    // The large object really took the multipart path: S3 gives such objects an ETag of the
    // form "<hash>-<parts>".
    let head = store
        .client()
        .head_object()
        .bucket(store.bucket())
        .key(conformance::LARGE_OBJECT_KEY)
        .send()
        .await
        .unwrap();
    let etag = head.e_tag().unwrap_or_default();
    assert!(etag.trim_matches('"').ends_with("-3"), "etag {etag}");
    remove_bucket(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_with_a_wrong_secret_is_unavailable_and_names_the_endpoint() {
    let Some(env) = s3_env() else { return };
    let good = fresh_s3_store(&env, 8 * MIB).await;
    let wrong = S3BlobStore::new(settings(&env, good.bucket(), "not-the-secret")).unwrap();

    let error = wrong.check().await.unwrap_err();
    let BlobError::Unavailable { message } = &error else {
        panic!("expected Unavailable, got {error:?}")
    };
    println!("unavailable as expected: {message}");
    assert!(message.contains(&env.endpoint), "{message}");
    assert!(message.contains(good.bucket()), "{message}");
    let core: livecast_core::Error = error.clone().into();
    assert_eq!(core.kind.http_status(), 503);

    let put = wrong
        .put("hls/s1/720p/0.m4s", Bytes::from_static(b"x"))
        .await;
    assert!(matches!(put, Err(BlobError::Unavailable { .. })), "{put:?}");
    remove_bucket(&good).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_store_on_a_missing_bucket_is_unavailable() {
    let Some(env) = s3_env() else { return };
    let store = S3BlobStore::new(settings(&env, &unique_bucket(), &env.secret_key)).unwrap();
    let error = store.check().await.unwrap_err();
    let BlobError::Unavailable { message } = &error else {
        panic!("expected Unavailable, got {error:?}")
    };
    println!("unavailable as expected: {message}");
    assert!(message.contains("does not exist"), "{message}");
    assert!(message.contains(store.bucket()), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_s3_endpoint_is_unavailable() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut settings =
        S3Settings::new(Some(endpoint.clone()), "media", "id", Secret::new("secret"));
    settings.connect_timeout = Duration::from_millis(500);
    settings.operation_timeout = Duration::from_secs(3);
    let store = S3BlobStore::new(settings).unwrap();

    let started = Instant::now();
    let error = store.check().await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let BlobError::Unavailable { message } = &error else {
        panic!("expected Unavailable, got {error:?}")
    };
    println!(
        "unavailable as expected after {:?}: {message}",
        started.elapsed()
    );
    assert!(message.contains(&endpoint), "{message}");
    let get = store.get("hls/s1/720p/0.m4s").await;
    assert!(matches!(get, Err(BlobError::Unavailable { .. })), "{get:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_s3_endpoint_times_out_instead_of_hanging() {
    // Accepts connections (the kernel's backlog does) but never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", silent.local_addr().unwrap());
    let mut settings =
        S3Settings::new(Some(endpoint.clone()), "media", "id", Secret::new("secret"));
    settings.operation_timeout = Duration::from_secs(1);
    let store = S3BlobStore::new(settings).unwrap();

    let started = Instant::now();
    let error = store.check().await.unwrap_err();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    let BlobError::Unavailable { message } = &error else {
        panic!("expected Unavailable, got {error:?}")
    };
    println!("unavailable as expected after {elapsed:?}: {message}");
    assert!(message.contains(&endpoint), "{message}");
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_creators_of_one_local_key_have_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalBlobStore::open(dir.path()).await.unwrap());
    let racers: Vec<_> = (0..8u8)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let won = store
                    .put_if_absent("source/s1/0/0.flv", Bytes::from(vec![i; 4096]))
                    .await
                    .unwrap();
                (won, i)
            })
        })
        .collect();
    let mut winners = Vec::new();
    for racer in racers {
        let (won, i) = racer.await.unwrap();
        if won {
            winners.push(i);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = store.get("source/s1/0/0.flv").await.unwrap();
    assert_eq!(stored, Bytes::from(vec![winners[0]; 4096]));
}

#[tokio::test]
async fn local_store_leaves_no_temporary_files_or_empty_directories() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).await.unwrap();
    store
        .put("hls/s1/720p/0.m4s", Bytes::from_static(b"a"))
        .await
        .unwrap();
    assert!(
        !store
            .put_if_absent("hls/s1/720p/0.m4s", Bytes::from_static(b"b"))
            .await
            .unwrap()
    );
    let tmp_files = std::fs::read_dir(dir.path().join(".tmp")).unwrap().count();
    assert_eq!(tmp_files, 0);

    store.delete("hls/s1/720p/0.m4s").await.unwrap();
    assert!(
        !dir.path().join("hls").exists(),
        "empty directories were left behind"
    );
}

#[tokio::test]
async fn a_local_key_that_is_also_a_prefix_is_refused_not_corrupted() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalBlobStore::open(dir.path()).await.unwrap();
    store
        .put("hls/s1/720p/0.m4s", Bytes::from_static(b"a"))
        .await
        .unwrap();
    let clash = store.put("hls/s1", Bytes::from_static(b"b")).await;
    assert!(
        matches!(clash, Err(BlobError::InvalidKey { .. })),
        "{clash:?}"
    );
    let below_object = store
        .put("hls/s1/720p/0.m4s/x", Bytes::from_static(b"c"))
        .await;
    assert!(
        matches!(below_object, Err(BlobError::InvalidKey { .. })),
        "{below_object:?}"
    );
    assert_eq!(store.head("hls/s1").await.unwrap(), None);
    store.delete("hls/s1").await.unwrap();
    assert_eq!(
        store.get("hls/s1/720p/0.m4s").await.unwrap(),
        Bytes::from_static(b"a")
    );
}

#[tokio::test]
async fn a_local_store_whose_directory_is_gone_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("blobs");
    let store = LocalBlobStore::open(&root).await.unwrap();
    store.check().await.unwrap();
    std::fs::remove_dir_all(&root).unwrap();
    let error = store.check().await.unwrap_err();
    let BlobError::Unavailable { message } = &error else {
        panic!("expected Unavailable, got {error:?}")
    };
    assert!(message.contains(&root.display().to_string()), "{message}");
}

#[tokio::test]
async fn the_s3_secret_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "from-file\n").unwrap();
    let config: BlobConfig = serde_json::from_value(serde_json::json!({
        "kind": "s3",
        "endpoint": "http://127.0.0.1:9",
        "bucket": "media",
        "access_key_id": "id",
        "secret_access_key_file": secret_file,
        "multipart_threshold_bytes": 16 * MIB,
    }))
    .unwrap();
    let BlobConfig::S3(s3) = &config else {
        unreachable!()
    };
    let settings = s3.settings().await.unwrap();
    assert_eq!(settings.secret_access_key.expose(), "from-file");
    assert_eq!(settings.multipart_threshold_bytes, 16 * MIB);
    open(&config)
        .await
        .expect("open builds the client without contacting S3");

    let no_secret: BlobConfig = serde_json::from_value(serde_json::json!({
        "kind": "s3", "bucket": "media", "access_key_id": "id",
    }))
    .unwrap();
    let error = open(&no_secret).await.unwrap_err();
    assert!(
        matches!(error, BlobError::InvalidConfig { .. }),
        "{error:?}"
    );
}
