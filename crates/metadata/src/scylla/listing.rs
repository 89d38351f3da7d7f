//! Listing streams on Scylla, with the same results as the SQLite store.
//!
//! Cassandra-style tables cannot filter by name or status across partitions, so the listing walks
//! the start-day index: `stream_start_days` says which days hold streams, `streams_by_start_day`
//! gives (start, id) per day in clustering order, and each candidate's row is read (a bounded
//! number at a time) to check it against the index and the filters in the service.
//!
//! Cost: a start-sorted page reads the days from the cursor on and one stream row per candidate
//! until the page is full, so a selective filter (a rare status, a rare name) reads many rows per
//! page. The name sort has no index order to follow: every page reads every stream in the start
//! range and sorts them, and refuses ranges holding more than [`MAX_NAME_SORT_SCAN`] index
//! entries rather than answering slowly or partially.

use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use livecast_core::StreamRecord;
use scylla::errors::{NextRowError, PagerExecutionError};
use scylla::value::CqlTimestamp;

use super::statements::{day_bucket, day_slice, start_window};
use super::{BACKEND, ScyllaStore, result_error};
use crate::MetadataError;
use crate::query::{ListPlan, SortKey, StreamPage, StreamSort, sort_streams, stream_start_ms};

/// Stream rows read at once while listing.
const FETCH_CONCURRENCY: usize = 16;
/// The most index entries a name-sorted listing reads.
pub(crate) const MAX_NAME_SORT_SCAN: usize = 20_000;

/// (start time, stream id) entries of the start-day index, in index order.
type Entries<'a> = BoxStream<'a, Result<(i64, String), MetadataError>>;

/// What a listing reads: the start-day index and the stream rows. The store implements it over
/// its tables; tests implement it in memory.
#[async_trait::async_trait]
pub(super) trait StartDayIndex: Sync {
    /// The days from `first` to `last` (inclusive) that hold index entries, in order.
    async fn days(
        &self,
        first: i64,
        last: i64,
        descending: bool,
    ) -> Result<Vec<i64>, MetadataError>;

    /// The entries of `day` with a start time in `from..=to`, in (start, id) order.
    async fn entries(
        &self,
        day: i64,
        from: i64,
        to: i64,
        descending: bool,
    ) -> Result<Entries<'_>, MetadataError>;

    /// The stream row with this id, if any.
    async fn stream(&self, id: &str) -> Result<Option<StreamRecord>, MetadataError>;
}

/// A page sorted by start time: days in the sort direction from the cursor, each in clustering
/// order, stopping as soon as the page (plus one, to know whether more exist) is full.
pub(super) async fn by_start_time(
    index: &impl StartDayIndex,
    plan: &ListPlan,
) -> Result<StreamPage, MetadataError> {
    let descending = plan.sort == StreamSort::StartTimeDesc;
    let window = start_window(plan);
    let want = plan.limit as usize + 1;
    let mut items = Vec::new();
    for day in days(index, window, descending).await? {
        let (from, to) = day_slice(day, window);
        let mut entries = index.entries(day, from, to, descending).await?;
        let mut batch = Vec::new();
        while let Some(entry) = entries.next().await {
            let (start, id) = entry?;
            let key = SortKey::Start {
                start_ms: start,
                id: id.clone(),
            };
            if !plan.is_after_cursor(&key) {
                continue;
            }
            batch.push((start, id));
            if batch.len() >= (want - items.len()).min(FETCH_CONCURRENCY) {
                admit(index, plan, std::mem::take(&mut batch), &mut items).await?;
                if items.len() >= want {
                    return Ok(plan.page(items));
                }
            }
        }
        admit(index, plan, batch, &mut items).await?;
        if items.len() >= want {
            items.truncate(want);
            return Ok(plan.page(items));
        }
    }
    Ok(plan.page(items))
}

/// A page sorted by name: every stream of the start range, sorted in the service.
pub(super) async fn by_name(
    index: &impl StartDayIndex,
    plan: &ListPlan,
) -> Result<StreamPage, MetadataError> {
    let window = (
        plan.start_from.unwrap_or(i64::MIN),
        plan.start_to.unwrap_or(i64::MAX),
    );
    let mut candidates = Vec::new();
    for day in days(index, window, false).await? {
        let (from, to) = day_slice(day, window);
        let mut entries = index.entries(day, from, to, false).await?;
        while let Some(entry) = entries.next().await {
            candidates.push(entry?);
            if candidates.len() > MAX_NAME_SORT_SCAN {
                return Err(MetadataError::Invalid(format!(
                    "sorting by name covers more than {MAX_NAME_SORT_SCAN} streams on this \
                     store; narrow the start range or sort by start time"
                )));
            }
        }
    }
    let mut items = Vec::new();
    admit(index, plan, candidates, &mut items).await?;
    sort_streams(&mut items, StreamSort::NameAsc);
    items.truncate(plan.limit as usize + 1);
    Ok(plan.page(items))
}

async fn days(
    index: &impl StartDayIndex,
    window: (i64, i64),
    descending: bool,
) -> Result<Vec<i64>, MetadataError> {
    if window.0 > window.1 {
        return Ok(Vec::new());
    }
    index
        .days(day_bucket(window.0), day_bucket(window.1), descending)
        .await
}

/// Reads the rows of `entries` and keeps, in order, those whose row still matches its index
/// entry (a stale entry is skipped), passes the filters and lies after the cursor.
async fn admit(
    index: &impl StartDayIndex,
    plan: &ListPlan,
    entries: Vec<(i64, String)>,
    items: &mut Vec<StreamRecord>,
) -> Result<(), MetadataError> {
    let fetched: Vec<(i64, Option<StreamRecord>)> = futures::stream::iter(entries)
        .map(|(start, id)| async move { Ok((start, index.stream(&id).await?)) })
        .buffered(FETCH_CONCURRENCY)
        .try_collect()
        .await?;
    items.extend(fetched.into_iter().filter_map(|(start, stream)| {
        stream.filter(|s| {
            stream_start_ms(s) == start
                && plan.matches_filters(s)
                && plan.is_after_cursor(&SortKey::of(s, plan.sort))
        })
    }));
    Ok(())
}

#[async_trait::async_trait]
impl StartDayIndex for ScyllaStore {
    async fn days(
        &self,
        first: i64,
        last: i64,
        descending: bool,
    ) -> Result<Vec<i64>, MetadataError> {
        let s = &self.statements;
        let statement = if descending {
            &s.select_start_days_desc
        } else {
            &s.select_start_days_asc
        };
        let rows: Vec<(i64,)> = self.rows(statement, (first, last)).await?;
        Ok(rows.into_iter().map(|(day,)| day).collect())
    }

    async fn entries(
        &self,
        day: i64,
        from: i64,
        to: i64,
        descending: bool,
    ) -> Result<Entries<'_>, MetadataError> {
        let s = &self.statements;
        let statement = if descending {
            &s.select_start_index_desc
        } else {
            &s.select_start_index_asc
        };
        // Paged by the driver: a busy day is never loaded whole.
        let pager = self
            .session
            .execute_iter(
                statement.clone(),
                (day, CqlTimestamp(from), CqlTimestamp(to)),
            )
            .await
            .map_err(pager_error)?;
        let rows = pager
            .rows_stream::<(CqlTimestamp, String)>()
            .map_err(result_error)?;
        Ok(rows
            .map(|row| row.map(|(start, id)| (start.0, id)).map_err(next_row_error))
            .boxed())
    }

    async fn stream(&self, id: &str) -> Result<Option<StreamRecord>, MetadataError> {
        self.fetch_stream(id).await
    }
}

fn pager_error(error: PagerExecutionError) -> MetadataError {
    match error {
        PagerExecutionError::SerializationError(e) => MetadataError::Other(format!("scylla: {e}")),
        other => MetadataError::unavailable(BACKEND, other.to_string()),
    }
}

fn next_row_error(error: NextRowError) -> MetadataError {
    match error {
        NextRowError::RowDeserializationError(e) => result_error(e),
        other => MetadataError::unavailable(BACKEND, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use livecast_core::{RegionName, StreamId, StreamStatus};

    use super::*;
    use crate::query::StreamQuery;
    use crate::{MetadataStore, SqliteStore};

    /// The start-day index in memory, with the stream rows beside it.
    #[derive(Default)]
    struct MemoryIndex {
        entries: BTreeSet<(i64, i64, String)>,
        rows: HashMap<String, StreamRecord>,
    }

    impl MemoryIndex {
        fn index(&mut self, start: i64, id: &str) {
            self.entries
                .insert((day_bucket(start), start, id.to_owned()));
        }
    }

    #[async_trait::async_trait]
    impl StartDayIndex for MemoryIndex {
        async fn days(&self, first: i64, last: i64, desc: bool) -> Result<Vec<i64>, MetadataError> {
            let mut days: Vec<i64> = self.entries.iter().map(|e| e.0).collect();
            days.dedup();
            days.retain(|d| (first..=last).contains(d));
            if desc {
                days.reverse();
            }
            Ok(days)
        }

        async fn entries(
            &self,
            day: i64,
            from: i64,
            to: i64,
            desc: bool,
        ) -> Result<Entries<'_>, MetadataError> {
            let mut found: Vec<_> = self
                .entries
                .iter()
                .filter(|(d, start, _)| *d == day && (from..=to).contains(start))
                .map(|(_, start, id)| Ok((*start, id.clone())))
                .collect();
            if desc {
                found.reverse();
            }
            Ok(futures::stream::iter(found).boxed())
        }

        async fn stream(&self, id: &str) -> Result<Option<StreamRecord>, MetadataError> {
            Ok(self.rows.get(id).cloned())
        }
    }

    fn stream(n: i64) -> StreamRecord {
        let day = crate::scylla::statements::DAY_MS;
        StreamRecord {
            id: StreamId::parse(format!("s{:03}", (n * 7) % 120)).unwrap(),
            name: ["Alpha", "beta", "ALPHA", "Gamma ray", "été"][(n % 5) as usize].into(),
            description: String::new(),
            thumbnail_url: None,
            scheduled_start: (n % 3 == 0).then_some(n * day / 5),
            home_region: RegionName::parse("eu").unwrap(),
            status: StreamStatus::ALL[(n % 4) as usize],
            stream_key_hash: format!("k{n}"),
            created_at: -day + (n % 6) * day / 3,
            updated_at: 0,
            started_at: None,
            ended_at: None,
            version: 1,
        }
    }

    async fn walk_page(index: &MemoryIndex, query: &StreamQuery) -> StreamPage {
        let plan = ListPlan::new(query).unwrap();
        match plan.sort {
            StreamSort::NameAsc => by_name(index, &plan).await,
            _ => by_start_time(index, &plan).await,
        }
        .unwrap()
    }

    #[tokio::test]
    async fn the_day_walk_pages_exactly_like_sqlite_despite_stale_entries() {
        let sqlite = SqliteStore::open_in_memory().unwrap();
        let mut index = MemoryIndex::default();
        for n in 0..120 {
            let record = stream(n);
            sqlite.create_stream(&record).await.unwrap();
            index.index(stream_start_ms(&record), record.id.as_str());
            index.rows.insert(record.id.to_string(), record);
        }
        // What a crash or a refused write leaves: an entry at a start the row no longer has,
        // and an entry for a stream that was deleted.
        index.index(12_345, "s007");
        index.index(-99_999_999, "gone");

        let filters = [
            StreamQuery::default(),
            StreamQuery {
                statuses: vec![StreamStatus::Created, StreamStatus::Pending],
                ..StreamQuery::default()
            },
            StreamQuery {
                name_contains: Some("ALP".into()),
                start_from: Some(-40_000_000),
                start_to: Some(30_000_000),
                ..StreamQuery::default()
            },
        ];
        for filter in filters {
            for sort in [
                StreamSort::StartTimeAsc,
                StreamSort::StartTimeDesc,
                StreamSort::NameAsc,
            ] {
                for limit in [1, 7, 200] {
                    let mut query = StreamQuery {
                        sort,
                        limit,
                        ..filter.clone()
                    };
                    let mut listed = 0;
                    loop {
                        let expected = sqlite.list_streams(&query).await.unwrap();
                        let walked = walk_page(&index, &query).await;
                        assert_eq!(walked, expected, "{query:?}");
                        listed += walked.items.len();
                        match walked.next_page_token {
                            Some(token) => query.page_token = Some(token),
                            None => break,
                        }
                    }
                    assert!(listed > 1, "{query:?} lists too little to tell anything");
                }
            }
        }
    }
}
