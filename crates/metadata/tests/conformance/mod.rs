//! The one conformance suite of the metadata-store port: every implementation must pass it.
//!
//! Each case uses its own stream ids and its own range of start times, so the cases share one
//! store without seeing each other's streams (listings always filter on the case's range).

use std::sync::Arc;

use livecast_core::{
    ErrorKind, EventId, RegionName, RenditionName, RenditionRecord, SegmentRecord, StreamId,
    StreamRecord, StreamStatus,
};
use livecast_metadata::{MetadataError, MetadataStore, StreamPage, StreamQuery, StreamSort};

mod listing;

use listing::{
    listing_filters_and_sorts, malformed_page_tokens_are_invalid_arguments,
    pagination_yields_each_stream_exactly_once,
};

/// A day in milliseconds: the Scylla store buckets start times by day.
pub const DAY_MS: i64 = 86_400_000;

/// Runs every case against `store`, in order.
pub async fn run_all(store: Arc<dyn MetadataStore>) {
    store.check().await.expect("a fresh store is ready");
    create_get_and_duplicate_create(store.clone()).await;
    key_hash_lookup_follows_key_rotation(store.clone()).await;
    updates_are_conditional_on_the_version(store.clone()).await;
    listing_filters_and_sorts(store.clone()).await;
    pagination_yields_each_stream_exactly_once(store.clone()).await;
    malformed_page_tokens_are_invalid_arguments(store.clone()).await;
    put_segment_is_idempotent_and_listing_is_ordered(store.clone()).await;
    renditions_upsert_and_list(store.clone()).await;
    record_event_reports_duplicates(store.clone()).await;
    delete_removes_the_stream_and_everything_under_it(store.clone()).await;
}

fn id(value: &str) -> StreamId {
    StreamId::parse(value).unwrap()
}

/// A stream created at `created_at`, with no schedule and not started.
pub fn stream(stream_id: &str, name: &str, created_at: i64) -> StreamRecord {
    StreamRecord {
        id: id(stream_id),
        name: name.to_owned(),
        description: format!("about {name}"),
        thumbnail_url: None,
        scheduled_start: None,
        home_region: RegionName::parse("eu-west").unwrap(),
        status: StreamStatus::Created,
        stream_key_hash: format!("key-of-{stream_id}"),
        created_at,
        updated_at: created_at,
        started_at: None,
        ended_at: None,
        version: 1,
    }
}

fn segment(stream_id: &str, rendition: &str, seq: u64) -> SegmentRecord {
    SegmentRecord {
        stream_id: id(stream_id),
        rendition: RenditionName::parse(rendition).unwrap(),
        seq,
        duration_ms: 2_000,
        discontinuity: seq == 0,
        program_date_time: 1_700_000_000_000 + seq as i64 * 2_000,
        size_bytes: 100_000 + seq,
    }
}

fn rendition(stream_id: &str, name: &str, height: u32, bandwidth: u32) -> RenditionRecord {
    RenditionRecord {
        stream_id: id(stream_id),
        name: RenditionName::parse(name).unwrap(),
        width: height * 16 / 9,
        height,
        bandwidth,
        average_bandwidth: bandwidth * 3 / 4,
        codecs: "avc1.64001f,mp4a.40.2".into(),
        frame_rate_milli: 30_000,
        audio_only: false,
    }
}

/// The start time a listing sorts by.
pub fn start_of(stream: &StreamRecord) -> i64 {
    stream
        .started_at
        .or(stream.scheduled_start)
        .unwrap_or(stream.created_at)
}

/// The ids the store lists for `query` (one page).
pub async fn ids(store: &Arc<dyn MetadataStore>, query: StreamQuery) -> Vec<String> {
    let page = store.list_streams(&query).await.unwrap();
    page.items.iter().map(|s| s.id.to_string()).collect()
}

/// Every page of `query`, following tokens; panics if the listing does not end.
pub async fn all_pages(store: &Arc<dyn MetadataStore>, mut query: StreamQuery) -> Vec<StreamPage> {
    let mut pages = Vec::new();
    loop {
        let page = store.list_streams(&query).await.unwrap();
        let next = page.next_page_token.clone();
        assert!(page.items.len() <= query.limit as usize);
        pages.push(page);
        assert!(pages.len() < 1_000, "the listing does not end");
        match next {
            Some(token) => query.page_token = Some(token),
            None => return pages,
        }
    }
}

/// Create, read back, and a second create of the same id refused without touching the first.
pub async fn create_get_and_duplicate_create(store: Arc<dyn MetadataStore>) {
    let mut record = stream("cg-1", "First light", 1_000_000_000_000);
    record.thumbnail_url = Some("https://img.example/cg-1.png".into());
    record.scheduled_start = Some(1_000_000_500_000);
    store.create_stream(&record).await.unwrap();
    assert_eq!(
        store.get_stream(&record.id).await.unwrap(),
        Some(record.clone())
    );

    let mut twin = stream("cg-1", "Impostor", 1_000_000_000_001);
    twin.stream_key_hash = "key-of-impostor".into();
    let err = store.create_stream(&twin).await.unwrap_err();
    assert!(matches!(err, MetadataError::AlreadyExists(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::AlreadyExists);
    assert_eq!(store.get_stream(&record.id).await.unwrap(), Some(record));
    assert_eq!(
        store.stream_by_key_hash("key-of-impostor").await.unwrap(),
        None
    );
    assert_eq!(store.get_stream(&id("cg-missing")).await.unwrap(), None);
}

/// The key-hash lookup finds the stream, and after a key rotation only the new hash does.
pub async fn key_hash_lookup_follows_key_rotation(store: Arc<dyn MetadataStore>) {
    let record = stream("kh-1", "Keyed", 1_000_000_000_000);
    store.create_stream(&record).await.unwrap();
    let found = store.stream_by_key_hash("key-of-kh-1").await.unwrap();
    assert_eq!(found, Some(record.clone()));
    assert_eq!(store.stream_by_key_hash("no-such-key").await.unwrap(), None);

    let rotated = StreamRecord {
        stream_key_hash: "rotated-key-of-kh-1".into(),
        version: 2,
        updated_at: record.updated_at + 1,
        ..record.clone()
    };
    store.update_stream(&rotated, 1).await.unwrap();
    assert_eq!(store.stream_by_key_hash("key-of-kh-1").await.unwrap(), None);
    assert_eq!(
        store
            .stream_by_key_hash("rotated-key-of-kh-1")
            .await
            .unwrap(),
        Some(rotated)
    );
}

/// Updates apply only on the expected version; a moved start time is listed once, at its new place.
pub async fn updates_are_conditional_on_the_version(store: Arc<dyn MetadataStore>) {
    let base = 1_100_000_000_000;
    let record = stream("cu-1", "Before", base);
    store.create_stream(&record).await.unwrap();
    let live = StreamRecord {
        name: "After".into(),
        status: StreamStatus::StreamActive,
        started_at: Some(base + 3 * DAY_MS),
        version: 2,
        ..record.clone()
    };
    let err = store.update_stream(&live, 5).await.unwrap_err();
    assert!(
        matches!(err, MetadataError::VersionConflict { .. }),
        "{err}"
    );
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert_eq!(
        store.get_stream(&record.id).await.unwrap(),
        Some(record.clone())
    );

    store.update_stream(&live, 1).await.unwrap();
    assert_eq!(
        store.get_stream(&record.id).await.unwrap(),
        Some(live.clone())
    );
    // A writer that read version 1 lost the race.
    let stale = StreamRecord {
        name: "Stale".into(),
        version: 2,
        ..record.clone()
    };
    let err = store.update_stream(&stale, 1).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);

    let ghost = stream("cu-missing", "Ghost", base);
    let err = store.update_stream(&ghost, 1).await.unwrap_err();
    assert!(matches!(err, MetadataError::NotFound(_)), "{err}");

    // The start time moved: the stream is listed at its new start only, once.
    let around = |from: i64, to: i64| StreamQuery {
        start_from: Some(from),
        start_to: Some(to),
        limit: 10,
        ..StreamQuery::default()
    };
    assert!(ids(&store, around(base, base)).await.is_empty());
    let start = base + 3 * DAY_MS;
    assert_eq!(ids(&store, around(start - 1, start + 1)).await, ["cu-1"]);
    assert_eq!(
        ids(&store, around(base - DAY_MS, start + DAY_MS)).await,
        ["cu-1"]
    );
}

/// A replayed segment is refused and the first write kept; segments list in seq order from a seq.
pub async fn put_segment_is_idempotent_and_listing_is_ordered(store: Arc<dyn MetadataStore>) {
    let original = segment("sg-1", "720p", 3);
    assert!(store.put_segment(&original).await.unwrap());
    let replay = SegmentRecord {
        size_bytes: 1,
        discontinuity: true,
        ..original.clone()
    };
    assert!(!store.put_segment(&replay).await.unwrap());
    let listed = store
        .list_segments(&original.stream_id, &original.rendition, 3, 1)
        .await
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&original));

    for seq in [10, 0, 7, 1, 9, 2, 8, 4, 6, 5] {
        assert!(
            store
                .put_segment(&segment("sg-1", "720p", seq))
                .await
                .unwrap()
        );
    }
    assert!(
        store
            .put_segment(&segment("sg-1", "360p", 5))
            .await
            .unwrap()
    );
    let from_four = store
        .list_segments(&original.stream_id, &original.rendition, 4, 5)
        .await
        .unwrap();
    let seqs: Vec<u64> = from_four.iter().map(|s| s.seq).collect();
    assert_eq!(seqs, [4, 5, 6, 7, 8]);
    assert_eq!(from_four[0], segment("sg-1", "720p", 4));
    let everything = store
        .list_segments(&original.stream_id, &original.rendition, 0, 100)
        .await
        .unwrap();
    assert_eq!(
        everything.iter().map(|s| s.seq).collect::<Vec<_>>(),
        (0..=10).collect::<Vec<_>>()
    );
    assert_eq!(everything[3], original, "the first write is kept");
    let none = store
        .list_segments(&original.stream_id, &original.rendition, 11, 100)
        .await
        .unwrap();
    assert!(none.is_empty());
    let zero = store
        .list_segments(&original.stream_id, &original.rendition, 0, 0)
        .await
        .unwrap();
    assert!(zero.is_empty());
    let other = RenditionName::parse("360p").unwrap();
    let other_rendition = store
        .list_segments(&original.stream_id, &other, 0, 100)
        .await
        .unwrap();
    assert_eq!(other_rendition, [segment("sg-1", "360p", 5)]);
}

/// Renditions upsert by (stream, name) and list by name.
pub async fn renditions_upsert_and_list(store: Arc<dyn MetadataStore>) {
    let stream_id = id("rn-1");
    assert!(store.list_renditions(&stream_id).await.unwrap().is_empty());
    store
        .put_rendition(&rendition("rn-1", "720p", 720, 3_000_000))
        .await
        .unwrap();
    store
        .put_rendition(&rendition("rn-1", "360p", 360, 800_000))
        .await
        .unwrap();
    let updated = RenditionRecord {
        codecs: "avc1.640028,mp4a.40.2".into(),
        ..rendition("rn-1", "720p", 720, 3_500_000)
    };
    store.put_rendition(&updated).await.unwrap();
    let audio = RenditionRecord {
        width: 0,
        height: 0,
        frame_rate_milli: 0,
        audio_only: true,
        codecs: "mp4a.40.2".into(),
        ..rendition("rn-1", "audio", 0, 128_000)
    };
    store.put_rendition(&audio).await.unwrap();
    let listed = store.list_renditions(&stream_id).await.unwrap();
    assert_eq!(
        listed,
        [rendition("rn-1", "360p", 360, 800_000), updated, audio]
    );
}

/// An event is new once per consumer.
pub async fn record_event_reports_duplicates(store: Arc<dyn MetadataStore>) {
    let event = EventId::parse("ev-1").unwrap();
    assert!(store.record_event("catalogue", &event).await.unwrap());
    assert!(!store.record_event("catalogue", &event).await.unwrap());
    assert!(store.record_event("notification", &event).await.unwrap());
    let other = EventId::parse("ev-2").unwrap();
    assert!(store.record_event("catalogue", &other).await.unwrap());
    let err = store.record_event("", &event).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

/// Delete removes the stream, its key lookup, segments and renditions, and nothing of a neighbour.
pub async fn delete_removes_the_stream_and_everything_under_it(store: Arc<dyn MetadataStore>) {
    let base = 2_200_000_000_000;
    let record = stream("dl-1", "Doomed", base);
    let neighbour = stream("dl-2", "Neighbour", base + 1);
    store.create_stream(&record).await.unwrap();
    store.create_stream(&neighbour).await.unwrap();
    for seq in 0..3 {
        store
            .put_segment(&segment("dl-1", "720p", seq))
            .await
            .unwrap();
        store
            .put_segment(&segment("dl-1", "audio", seq))
            .await
            .unwrap();
        store
            .put_segment(&segment("dl-2", "720p", seq))
            .await
            .unwrap();
    }
    store
        .put_rendition(&rendition("dl-1", "720p", 720, 3_000_000))
        .await
        .unwrap();
    store
        .put_rendition(&rendition("dl-2", "720p", 720, 3_000_000))
        .await
        .unwrap();

    assert!(store.delete_stream(&record.id).await.unwrap());
    assert_eq!(store.get_stream(&record.id).await.unwrap(), None);
    assert_eq!(store.stream_by_key_hash("key-of-dl-1").await.unwrap(), None);
    for name in ["720p", "audio"] {
        let rendition = RenditionName::parse(name).unwrap();
        let left = store
            .list_segments(&record.id, &rendition, 0, 100)
            .await
            .unwrap();
        assert!(left.is_empty(), "{name} segments survived the delete");
    }
    assert!(store.list_renditions(&record.id).await.unwrap().is_empty());
    let listed = ids(
        &store,
        StreamQuery {
            start_from: Some(base),
            start_to: Some(base + 1),
            sort: StreamSort::StartTimeAsc,
            ..StreamQuery::default()
        },
    )
    .await;
    assert_eq!(listed, ["dl-2"]);
    assert!(!store.delete_stream(&record.id).await.unwrap());

    // The neighbour is untouched.
    assert_eq!(
        store.get_stream(&neighbour.id).await.unwrap(),
        Some(neighbour.clone())
    );
    let rendition = RenditionName::parse("720p").unwrap();
    assert_eq!(
        store
            .list_segments(&neighbour.id, &rendition, 0, 100)
            .await
            .unwrap()
            .len(),
        3
    );
    assert_eq!(store.list_renditions(&neighbour.id).await.unwrap().len(), 1);
    assert!(
        store
            .stream_by_key_hash("key-of-dl-2")
            .await
            .unwrap()
            .is_some()
    );
}
