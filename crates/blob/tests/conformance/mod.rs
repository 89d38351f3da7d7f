//! The blob store conformance suite: the same assertions for every implementation of
//! [`BlobStore`]. Each check works under its own key prefix, so they can share one store.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use livecast_blob::{BlobError, BlobStore, validate_key};

const MIB: usize = 1024 * 1024;

/// Size of the large object; with a 5 MiB multipart threshold it takes three parts.
pub const LARGE_OBJECT_BYTES: usize = 12 * MIB;

/// Where [`large_object_round_trips_byte_exact`] leaves its object, so a backend's own test can
/// inspect how it was stored.
pub const LARGE_OBJECT_KEY: &str = "suite/large/segment.m4s";

/// Runs every check against `store`, which must start empty.
pub async fn run(store: Arc<dyn BlobStore>) {
    check_passes_on_a_usable_store(&store).await;
    put_then_get_round_trips(&store).await;
    overwrite_replaces_the_whole_object(&store).await;
    readers_never_see_a_partial_object(&store).await;
    range_reads_clamp_the_end_and_refuse_a_start_past_the_end(&store).await;
    head_reports_size_and_modification_time(&store).await;
    list_returns_keys_under_the_prefix_sorted(&store).await;
    list_paginates_past_a_thousand_objects(&store).await;
    delete_removes_and_deleting_a_missing_key_is_ok(&store).await;
    put_if_absent_creates_once_and_keeps_the_original(&store).await;
    large_object_round_trips_byte_exact(&store).await;
    invalid_keys_are_rejected_by_every_operation(&store).await;
    a_missing_key_is_not_found(&store).await;
    listing_everything_shows_only_stored_objects(&store).await;
}

fn bytes_of(len: usize, seed: u32) -> Bytes {
    // A cheap generator, so a misplaced chunk of the object cannot look right by accident.
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state >> 24) as u8
        })
        .collect::<Vec<u8>>()
        .into()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn assert_not_found(result: Result<impl std::fmt::Debug, BlobError>, key: &str) {
    match result {
        Err(BlobError::NotFound { key: missing }) => assert_eq!(missing, key),
        other => panic!("expected NotFound for {key:?}, got {other:?}"),
    }
}

fn assert_invalid_range(result: Result<Bytes, BlobError>, range: Range<u64>) {
    assert!(
        matches!(result, Err(BlobError::InvalidRange { .. })),
        "expected InvalidRange for {range:?}, got {result:?}"
    );
}

async fn check_passes_on_a_usable_store(store: &Arc<dyn BlobStore>) {
    store.check().await.expect("check on a usable store");
}

async fn put_then_get_round_trips(store: &Arc<dyn BlobStore>) {
    let key = "suite/roundtrip/hls/s1/720p/3.m4s";
    let body = bytes_of(70_000, 1);
    store.put(key, body.clone()).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), body);

    let empty = "suite/roundtrip/empty";
    store.put(empty, Bytes::new()).await.unwrap();
    assert_eq!(store.get(empty).await.unwrap(), Bytes::new());
    assert_eq!(store.head(empty).await.unwrap().unwrap().size, 0);
}

async fn overwrite_replaces_the_whole_object(store: &Arc<dyn BlobStore>) {
    let key = "suite/overwrite/init.mp4";
    store.put(key, bytes_of(5000, 2)).await.unwrap();
    let shorter = bytes_of(1200, 3);
    store.put(key, shorter.clone()).await.unwrap();
    assert_eq!(store.get(key).await.unwrap(), shorter);
    assert_eq!(store.head(key).await.unwrap().unwrap().size, 1200);
}

async fn readers_never_see_a_partial_object(store: &Arc<dyn BlobStore>) {
    let key = "suite/atomic/segment.m4s";
    let old = Bytes::from(vec![0xAA; 256 * 1024]);
    let new = Bytes::from(vec![0xBB; 512 * 1024]);
    store.put(key, old.clone()).await.unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let (store, done, old, new) = (store.clone(), done.clone(), old.clone(), new.clone());
            tokio::spawn(async move {
                let mut reads = 0;
                while reads == 0 || !done.load(Ordering::Acquire) {
                    let seen = store.get(key).await.expect("read during overwrite");
                    assert!(
                        seen == old || seen == new,
                        "a reader saw a partial object of {} bytes",
                        seen.len()
                    );
                    reads += 1;
                }
                reads
            })
        })
        .collect();
    for round in 0..12 {
        let body = if round % 2 == 0 { &new } else { &old };
        store.put(key, body.clone()).await.unwrap();
    }
    done.store(true, Ordering::Release);
    for reader in readers {
        assert!(reader.await.expect("reader task") > 0);
    }
}

async fn range_reads_clamp_the_end_and_refuse_a_start_past_the_end(store: &Arc<dyn BlobStore>) {
    let key = "suite/range/chunk.flv";
    let body = Bytes::from((0..100u8).collect::<Vec<u8>>());
    store.put(key, body.clone()).await.unwrap();

    assert_eq!(
        store.get_range(key, 10..20).await.unwrap(),
        body.slice(10..20)
    );
    assert_eq!(store.get_range(key, 0..1).await.unwrap(), body.slice(0..1));
    assert_eq!(store.get_range(key, 0..100).await.unwrap(), body);
    assert_eq!(
        store.get_range(key, 90..1000).await.unwrap(),
        body.slice(90..100)
    );
    assert_eq!(
        store.get_range(key, 99..100).await.unwrap(),
        body.slice(99..100)
    );

    for range in [100..101, 150..160, 1000..u64::MAX] {
        assert_invalid_range(store.get_range(key, range.clone()).await, range);
    }
    #[allow(clippy::reversed_empty_ranges)]
    for range in [5..5, 20..10] {
        assert_invalid_range(store.get_range(key, range.clone()).await, range);
    }
    let missing = "suite/range/missing.flv";
    assert_not_found(store.get_range(missing, 0..10).await, missing);
}

async fn head_reports_size_and_modification_time(store: &Arc<dyn BlobStore>) {
    let key = "suite/head/1.m4s";
    assert_eq!(store.head(key).await.unwrap(), None);
    let before = now_ms();
    store.put(key, bytes_of(1234, 4)).await.unwrap();
    let meta = store.head(key).await.unwrap().expect("head after put");
    assert_eq!(meta.size, 1234);
    // S3 keeps whole seconds and the server's clock may differ a little from ours.
    let slack = 5 * 60 * 1000;
    assert!(
        (before - slack..=now_ms() + slack).contains(&meta.last_modified_ms),
        "last_modified_ms {} is not close to now ({before})",
        meta.last_modified_ms
    );
}

async fn list_returns_keys_under_the_prefix_sorted(store: &Arc<dyn BlobStore>) {
    let keys = [
        ("suite/list/s1/720p/1.m4s", 11),
        ("suite/list/s1/720p/0.m4s", 10),
        ("suite/list/s1/360p/0.m4s", 5),
        ("suite/list/s1/init.mp4", 7),
        ("suite/list/s10/720p/0.m4s", 3),
        ("suite/listing/other", 1),
    ];
    for (key, len) in keys {
        store.put(key, bytes_of(len, len as u32)).await.unwrap();
    }
    let listed = store.list("suite/list/s1/").await.unwrap();
    let names: Vec<_> = listed.iter().map(|o| o.key.as_str()).collect();
    assert_eq!(
        names,
        [
            "suite/list/s1/360p/0.m4s",
            "suite/list/s1/720p/0.m4s",
            "suite/list/s1/720p/1.m4s",
            "suite/list/s1/init.mp4",
        ]
    );
    let sizes: Vec<_> = listed.iter().map(|o| o.size).collect();
    assert_eq!(sizes, [5, 10, 11, 7]);
    assert!(listed.iter().all(|o| o.last_modified_ms > 0));

    let rendition = store.list("suite/list/s1/720p/").await.unwrap();
    assert_eq!(rendition.len(), 2);
    // A prefix is a plain string prefix, not a directory.
    let partial = store.list("suite/list/s1").await.unwrap();
    assert_eq!(partial.len(), 5);
    assert_eq!(partial[4].key, "suite/list/s10/720p/0.m4s");
    let partial_segment = store.list("suite/list/s1/72").await.unwrap();
    assert_eq!(partial_segment.len(), 2);
    assert!(store.list("suite/list/none/").await.unwrap().is_empty());
    assert!(store.list("suite/nothing-here").await.unwrap().is_empty());
}

async fn list_paginates_past_a_thousand_objects(store: &Arc<dyn BlobStore>) {
    let count = 1005;
    futures::stream::iter(0..count)
        .map(|i| {
            let store = store.clone();
            async move {
                store
                    .put(&format!("suite/many/{i:05}.m4s"), Bytes::from_static(b"x"))
                    .await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .unwrap();
    let listed = store.list("suite/many/").await.unwrap();
    assert_eq!(listed.len(), count);
    assert_eq!(listed[0].key, "suite/many/00000.m4s");
    assert_eq!(
        listed[count - 1].key,
        format!("suite/many/{:05}.m4s", count - 1)
    );
    assert!(listed.windows(2).all(|pair| pair[0].key < pair[1].key));
}

async fn delete_removes_and_deleting_a_missing_key_is_ok(store: &Arc<dyn BlobStore>) {
    let key = "suite/delete/s1/0.m4s";
    let kept = "suite/delete/s1/1.m4s";
    store.put(key, bytes_of(10, 5)).await.unwrap();
    store.put(kept, bytes_of(10, 6)).await.unwrap();
    store.delete(key).await.unwrap();
    assert_not_found(store.get(key).await, key);
    assert_eq!(store.head(key).await.unwrap(), None);
    let listed = store.list("suite/delete/").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].key, kept);

    store.delete(key).await.expect("deleting again");
    store
        .delete("suite/delete/never/existed")
        .await
        .expect("deleting a key never written");
    store.delete(kept).await.unwrap();
    assert!(store.list("suite/delete/").await.unwrap().is_empty());
}

async fn put_if_absent_creates_once_and_keeps_the_original(store: &Arc<dyn BlobStore>) {
    let key = "suite/create/source/s1/0/0.flv";
    let original = bytes_of(3000, 7);
    assert!(store.put_if_absent(key, original.clone()).await.unwrap());
    assert!(!store.put_if_absent(key, bytes_of(10, 8)).await.unwrap());
    assert_eq!(store.get(key).await.unwrap(), original);

    store.delete(key).await.unwrap();
    let second = bytes_of(20, 9);
    assert!(store.put_if_absent(key, second.clone()).await.unwrap());
    assert_eq!(store.get(key).await.unwrap(), second);
}

async fn large_object_round_trips_byte_exact(store: &Arc<dyn BlobStore>) {
    let body = bytes_of(LARGE_OBJECT_BYTES, 10);
    store.put(LARGE_OBJECT_KEY, body.clone()).await.unwrap();
    let read = store.get(LARGE_OBJECT_KEY).await.unwrap();
    assert_eq!(read.len(), body.len());
    assert!(read == body, "the large object came back different");
    let meta = store.head(LARGE_OBJECT_KEY).await.unwrap().unwrap();
    assert_eq!(meta.size, LARGE_OBJECT_BYTES as u64);
    // Across the first part boundary of a 5 MiB-part upload.
    let boundary = (5 * MIB) as u64;
    let range = boundary - 10..boundary + 10;
    assert_eq!(
        store
            .get_range(LARGE_OBJECT_KEY, range.clone())
            .await
            .unwrap(),
        body.slice(range.start as usize..range.end as usize)
    );
}

async fn invalid_keys_are_rejected_by_every_operation(store: &Arc<dyn BlobStore>) {
    fn assert_invalid<T: std::fmt::Debug>(result: Result<T, BlobError>, key: &str, op: &str) {
        assert!(
            matches!(result, Err(BlobError::InvalidKey { .. })),
            "{op}({key:?}) should be InvalidKey, got {result:?}"
        );
    }
    let body = Bytes::from_static(b"evil");
    for key in ["../x", "/abs", "a/../b", "", "a\\b", "a\nb", "a//b", "a/"] {
        assert!(validate_key(key).is_err());
        assert_invalid(store.put(key, body.clone()).await, key, "put");
        assert_invalid(
            store.put_if_absent(key, body.clone()).await,
            key,
            "put_if_absent",
        );
        assert_invalid(store.get(key).await, key, "get");
        assert_invalid(store.get_range(key, 0..1).await, key, "get_range");
        assert_invalid(store.head(key).await, key, "head");
        assert_invalid(store.delete(key).await, key, "delete");
    }
    for prefix in ["../", "/abs", "a/../"] {
        assert_invalid(store.list(prefix).await, prefix, "list");
    }
}

async fn a_missing_key_is_not_found(store: &Arc<dyn BlobStore>) {
    let key = "suite/missing/hls/s9/720p/0.m4s";
    assert_not_found(store.get(key).await, key);
    assert_eq!(store.head(key).await.unwrap(), None);
    let error: livecast_core::Error = store.get(key).await.unwrap_err().into();
    assert_eq!(error.kind, livecast_core::ErrorKind::NotFound);
}

async fn listing_everything_shows_only_stored_objects(store: &Arc<dyn BlobStore>) {
    let everything = store.list("").await.unwrap();
    assert!(!everything.is_empty());
    for object in &everything {
        assert!(
            object.key.starts_with("suite/") && validate_key(&object.key).is_ok(),
            "unexpected object {:?} (a temporary file?)",
            object.key
        );
    }
}
