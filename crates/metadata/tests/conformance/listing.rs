//! Listing cases of the conformance suite: filters, sorts, pagination and page tokens.

use std::collections::HashSet;
use std::sync::Arc;

use livecast_core::{ErrorKind, StreamId, StreamStatus};
use livecast_metadata::{MetadataStore, StreamQuery, StreamSort};

use super::{DAY_MS, all_pages, ids, start_of, stream};

/// Each filter (status, name, start range) and each sort, with exact expected orders.
pub async fn listing_filters_and_sorts(store: Arc<dyn MetadataStore>) {
    let base = 2_000_000_000_000;
    let mut streams = vec![
        stream("lf-a", "Morning News", base),
        stream("lf-b", "evening news", base + 10),
        stream("lf-c", "Été en direct", base + 2 * DAY_MS),
        stream("lf-d", "Cooking 100%_live", base + 20),
        stream("lf-e", "morning yoga", base + 30),
    ];
    streams[1].status = StreamStatus::StreamActive;
    streams[1].started_at = Some(base + DAY_MS + 5);
    streams[2].scheduled_start = Some(base + 5);
    streams[3].status = StreamStatus::StreamComplete;
    streams[4].status = StreamStatus::Archived;
    for s in &streams {
        store.create_stream(s).await.unwrap();
    }
    let in_range = |query: StreamQuery| StreamQuery {
        start_from: Some(base),
        start_to: Some(base + 3 * DAY_MS),
        limit: 50,
        ..query
    };
    // Start times: a=base, c=base+5 (scheduled), d=base+20, e=base+30, b=base+DAY+5 (started).
    let asc = in_range(StreamQuery {
        sort: StreamSort::StartTimeAsc,
        ..StreamQuery::default()
    });
    assert_eq!(
        ids(&store, asc).await,
        ["lf-a", "lf-c", "lf-d", "lf-e", "lf-b"]
    );
    let desc = in_range(StreamQuery {
        sort: StreamSort::StartTimeDesc,
        ..StreamQuery::default()
    });
    assert_eq!(
        ids(&store, desc).await,
        ["lf-b", "lf-e", "lf-d", "lf-c", "lf-a"]
    );
    let by_name = in_range(StreamQuery {
        sort: StreamSort::NameAsc,
        ..StreamQuery::default()
    });
    assert_eq!(
        ids(&store, by_name).await,
        ["lf-d", "lf-b", "lf-a", "lf-e", "lf-c"]
    );

    let statuses = in_range(StreamQuery {
        statuses: vec![StreamStatus::StreamActive, StreamStatus::StreamComplete],
        sort: StreamSort::StartTimeAsc,
        ..StreamQuery::default()
    });
    assert_eq!(ids(&store, statuses).await, ["lf-d", "lf-b"]);
    let name = |needle: &str| {
        in_range(StreamQuery {
            name_contains: Some(needle.into()),
            sort: StreamSort::NameAsc,
            ..StreamQuery::default()
        })
    };
    assert_eq!(ids(&store, name("NEWS")).await, ["lf-b", "lf-a"]);
    assert_eq!(ids(&store, name("été")).await, ["lf-c"]);
    assert_eq!(ids(&store, name("ÉTÉ")).await, ["lf-c"]);
    assert_eq!(ids(&store, name("0%_")).await, ["lf-d"]);
    assert_eq!(ids(&store, name("%")).await, ["lf-d"]);
    assert!(ids(&store, name("weather")).await.is_empty());

    // Inclusive bounds on the start time.
    let range = |from: i64, to: i64| StreamQuery {
        start_from: Some(from),
        start_to: Some(to),
        sort: StreamSort::StartTimeAsc,
        limit: 50,
        ..StreamQuery::default()
    };
    assert_eq!(
        ids(&store, range(base + 5, base + 20)).await,
        ["lf-c", "lf-d"]
    );
    assert_eq!(
        ids(&store, range(base + DAY_MS + 5, base + DAY_MS + 5)).await,
        ["lf-b"]
    );
    let open_ended = StreamQuery {
        start_from: Some(base + 21),
        start_to: None,
        sort: StreamSort::StartTimeAsc,
        ..StreamQuery::default()
    };
    let listed = ids(&store, open_ended).await;
    assert_eq!(listed[..2], ["lf-e", "lf-b"]);
    let err = store
        .list_streams(&range(base + 1, base))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}

/// 250 streams with tied start times and names, paged by 7 in each sort: each exactly once, in order.
pub async fn pagination_yields_each_stream_exactly_once(store: Arc<dyn MetadataStore>) {
    let base = 2_100_000_000_000;
    let mut created = Vec::new();
    for i in 0..250_i64 {
        // Ten start times six hours apart (three day buckets), ten names with different case:
        // plenty of ties for the id to break.
        let name = if i % 2 == 0 {
            format!("Show {}", i % 10)
        } else {
            format!("show {}", i % 10)
        };
        let record = stream(
            &format!("pg-{:03}", (i * 37) % 250),
            &name,
            base + (i % 10) * DAY_MS / 4,
        );
        store.create_stream(&record).await.unwrap();
        created.push(record);
    }
    for sort in [
        StreamSort::StartTimeAsc,
        StreamSort::StartTimeDesc,
        StreamSort::NameAsc,
    ] {
        let mut expected = created.clone();
        match sort {
            StreamSort::StartTimeAsc => expected.sort_by_key(|s| (start_of(s), s.id.clone())),
            StreamSort::StartTimeDesc => {
                expected.sort_by_key(|s| std::cmp::Reverse((start_of(s), s.id.clone())))
            }
            StreamSort::NameAsc => expected.sort_by_key(|s| (s.name.to_lowercase(), s.id.clone())),
        }
        let query = StreamQuery {
            start_from: Some(base),
            start_to: Some(base + 3 * DAY_MS),
            sort,
            limit: 7,
            ..StreamQuery::default()
        };
        let pages = all_pages(&store, query).await;
        assert_eq!(pages.len(), 36, "{sort:?}: 250 streams in pages of 7");
        assert!(pages[..35].iter().all(|p| p.items.len() == 7), "{sort:?}");
        assert_eq!(pages[35].items.len(), 250 - 35 * 7);
        let listed: Vec<StreamId> = pages
            .iter()
            .flat_map(|p| p.items.iter().map(|s| s.id.clone()))
            .collect();
        let unique: HashSet<_> = listed.iter().collect();
        assert_eq!(unique.len(), 250, "{sort:?}: duplicates");
        let want: Vec<StreamId> = expected.iter().map(|s| s.id.clone()).collect();
        assert_eq!(listed, want, "{sort:?}: order");
    }
}

/// Page tokens that the store did not produce, or produced for another sort, are invalid arguments.
pub async fn malformed_page_tokens_are_invalid_arguments(store: Arc<dyn MetadataStore>) {
    for token in ["garbage", "zz", "0", "76317c617c317c78", "v1|d|1|x"] {
        let query = StreamQuery {
            page_token: Some(token.into()),
            ..StreamQuery::default()
        };
        let err = store.list_streams(&query).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidArgument, "{token:?}: {err}");
    }
    // A token is tied to its sort order.
    let base = 2_100_000_000_000;
    let first = store
        .list_streams(&StreamQuery {
            start_from: Some(base),
            sort: StreamSort::StartTimeAsc,
            limit: 1,
            ..StreamQuery::default()
        })
        .await
        .unwrap();
    let token = first
        .next_page_token
        .expect("more than one stream in the range");
    let err = store
        .list_streams(&StreamQuery {
            sort: StreamSort::NameAsc,
            page_token: Some(token),
            ..StreamQuery::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidArgument);
}
