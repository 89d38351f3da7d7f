//! CQL text (schema and statements) and the day-bucket arithmetic of listings. Pure functions:
//! tested without a server.

use crate::ScyllaSettings;
use crate::query::{ListPlan, SortKey, StreamSort};

/// The schema file, with `${KEYSPACE}`, `${DATACENTER}` and `${REPLICATION_FACTOR}` placeholders.
pub(crate) const SCHEMA_TEMPLATE: &str = include_str!("../../schema/scylla.cql");

/// Milliseconds in a day bucket.
pub(crate) const DAY_MS: i64 = 86_400_000;

/// The stream id `check` reads (it never exists; the read only has to succeed).
pub(crate) const READINESS_PROBE_ID: &str = "livecast-readiness-probe";

/// The single partition of `stream_start_days`.
pub(crate) const DAYS_PARTITION: i32 = 0;

/// The schema statements for `settings` (already validated, so the names are safe in CQL text),
/// in order, without comments or the final `;`.
pub(crate) fn schema_statements(settings: &ScyllaSettings) -> Vec<String> {
    let rendered = SCHEMA_TEMPLATE
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("${KEYSPACE}", &settings.keyspace)
        .replace("${DATACENTER}", &settings.local_datacenter)
        .replace(
            "${REPLICATION_FACTOR}",
            &settings.replication_factor.to_string(),
        );
    rendered
        .split(';')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The day bucket (days since the epoch, UTC) of a start time.
pub(crate) fn day_bucket(start_ms: i64) -> i64 {
    start_ms.div_euclid(DAY_MS)
}

/// The first and last millisecond of a day bucket, saturating at the ends of `i64`.
pub(crate) fn day_bounds(day: i64) -> (i64, i64) {
    let first = day.saturating_mul(DAY_MS);
    (first, first.saturating_add(DAY_MS - 1))
}

/// The inclusive window of start times a start-sorted page can come from: the query's range,
/// narrowed by the page cursor on the side the listing moves away from.
pub(crate) fn start_window(plan: &ListPlan) -> (i64, i64) {
    let mut low = plan.start_from.unwrap_or(i64::MIN);
    let mut high = plan.start_to.unwrap_or(i64::MAX);
    if let Some(SortKey::Start { start_ms, .. }) = &plan.after {
        // Ties at the cursor's start time are admitted here and sorted out by id.
        if plan.sort == StreamSort::StartTimeDesc {
            high = high.min(*start_ms);
        } else {
            low = low.max(*start_ms);
        }
    }
    (low, high)
}

/// The part of `window` that falls in `day`.
pub(crate) fn day_slice(day: i64, window: (i64, i64)) -> (i64, i64) {
    let (first, last) = day_bounds(day);
    (first.max(window.0), last.min(window.1))
}

/// The columns of the `streams` table, in the order of its row type.
pub(crate) const STREAM_COLUMNS: [&str; 13] = [
    "id",
    "name",
    "description",
    "thumbnail_url",
    "scheduled_start",
    "home_region",
    "status",
    "stream_key_hash",
    "created_at",
    "updated_at",
    "started_at",
    "ended_at",
    "version",
];

const SEGMENT_COLUMNS: &str =
    "stream_id, rendition, seq, duration_ms, discontinuity, program_date_time, size_bytes";

const RENDITION_COLUMNS: &str = "stream_id, name, width, height, bandwidth, average_bandwidth, \
    codecs, frame_rate_milli, audio_only";

/// Every statement the store prepares, as text for one keyspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cql {
    pub insert_stream: String,
    pub update_stream: String,
    pub select_stream: String,
    pub delete_stream: String,
    pub select_key_index: String,
    pub insert_key_index: String,
    pub delete_key_index: String,
    pub insert_start_index: String,
    pub delete_start_index: String,
    pub select_start_index_asc: String,
    pub select_start_index_desc: String,
    pub insert_start_day: String,
    pub select_start_days_asc: String,
    pub select_start_days_desc: String,
    pub insert_segment: String,
    pub select_segments: String,
    pub delete_segments: String,
    pub insert_segment_rendition: String,
    pub select_segment_renditions: String,
    pub delete_segment_renditions: String,
    pub insert_rendition: String,
    pub select_renditions: String,
    pub delete_renditions: String,
    pub insert_event: String,
    pub check: String,
}

impl Cql {
    /// The statements for `ks` (a validated keyspace name).
    pub(crate) fn for_keyspace(ks: &str) -> Cql {
        let columns = STREAM_COLUMNS.join(", ");
        let named = STREAM_COLUMNS.map(|c| format!(":{c}")).join(", ");
        let assignments = STREAM_COLUMNS[1..]
            .iter()
            .map(|c| format!("{c} = :{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        let start_index = |order: &str| {
            format!(
                "SELECT start_at, stream_id FROM {ks}.streams_by_start_day \
                 WHERE day = ? AND start_at >= ? AND start_at <= ? \
                 ORDER BY start_at {order}, stream_id {order}"
            )
        };
        let start_days = |order: &str| {
            format!(
                "SELECT day FROM {ks}.stream_start_days \
                 WHERE bucket = {DAYS_PARTITION} AND day >= ? AND day <= ? ORDER BY day {order}"
            )
        };
        Cql {
            insert_stream: format!(
                "INSERT INTO {ks}.streams ({columns}) VALUES ({named}) IF NOT EXISTS"
            ),
            update_stream: format!(
                "UPDATE {ks}.streams SET {assignments} WHERE id = :id \
                 IF version = :expected_version"
            ),
            select_stream: format!("SELECT {columns} FROM {ks}.streams WHERE id = ?"),
            delete_stream: format!("DELETE FROM {ks}.streams WHERE id = ? IF EXISTS"),
            select_key_index: format!(
                "SELECT stream_id FROM {ks}.streams_by_key_hash WHERE stream_key_hash = ?"
            ),
            insert_key_index: format!(
                "INSERT INTO {ks}.streams_by_key_hash (stream_key_hash, stream_id) VALUES (?, ?) \
                 USING TIMESTAMP ?"
            ),
            delete_key_index: format!(
                "DELETE FROM {ks}.streams_by_key_hash USING TIMESTAMP ? \
                 WHERE stream_key_hash = ? AND stream_id = ?"
            ),
            insert_start_index: format!(
                "INSERT INTO {ks}.streams_by_start_day (day, start_at, stream_id) \
                 VALUES (?, ?, ?) USING TIMESTAMP ?"
            ),
            delete_start_index: format!(
                "DELETE FROM {ks}.streams_by_start_day USING TIMESTAMP ? \
                 WHERE day = ? AND start_at = ? AND stream_id = ?"
            ),
            select_start_index_asc: start_index("ASC"),
            select_start_index_desc: start_index("DESC"),
            insert_start_day: format!(
                "INSERT INTO {ks}.stream_start_days (bucket, day) VALUES ({DAYS_PARTITION}, ?)"
            ),
            select_start_days_asc: start_days("ASC"),
            select_start_days_desc: start_days("DESC"),
            insert_segment: format!(
                "INSERT INTO {ks}.segments ({SEGMENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) \
                 IF NOT EXISTS"
            ),
            select_segments: format!(
                "SELECT {SEGMENT_COLUMNS} FROM {ks}.segments \
                 WHERE stream_id = ? AND rendition = ? AND seq >= ? ORDER BY seq ASC LIMIT ?"
            ),
            delete_segments: format!(
                "DELETE FROM {ks}.segments WHERE stream_id = ? AND rendition = ?"
            ),
            insert_segment_rendition: format!(
                "INSERT INTO {ks}.segment_renditions (stream_id, rendition) VALUES (?, ?)"
            ),
            select_segment_renditions: format!(
                "SELECT rendition FROM {ks}.segment_renditions WHERE stream_id = ?"
            ),
            delete_segment_renditions: format!(
                "DELETE FROM {ks}.segment_renditions WHERE stream_id = ?"
            ),
            insert_rendition: format!(
                "INSERT INTO {ks}.renditions ({RENDITION_COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
            ),
            select_renditions: format!(
                "SELECT {RENDITION_COLUMNS} FROM {ks}.renditions WHERE stream_id = ? \
                 ORDER BY name ASC"
            ),
            delete_renditions: format!("DELETE FROM {ks}.renditions WHERE stream_id = ?"),
            insert_event: format!(
                "INSERT INTO {ks}.processed_events (consumer, event_id, recorded_at) \
                 VALUES (?, ?, ?) IF NOT EXISTS"
            ),
            // A single-partition read: proves a quorum of local replicas answers, cheaply.
            check: format!("SELECT id FROM {ks}.streams WHERE id = '{READINESS_PROBE_ID}'"),
        }
    }

    /// Every statement with whether it is a lightweight transaction (run at `LOCAL_SERIAL`).
    #[cfg(test)]
    pub(crate) fn all(&self) -> Vec<(&str, bool)> {
        [
            &self.insert_stream,
            &self.update_stream,
            &self.select_stream,
            &self.delete_stream,
            &self.select_key_index,
            &self.insert_key_index,
            &self.delete_key_index,
            &self.insert_start_index,
            &self.delete_start_index,
            &self.select_start_index_asc,
            &self.select_start_index_desc,
            &self.insert_start_day,
            &self.select_start_days_asc,
            &self.select_start_days_desc,
            &self.insert_segment,
            &self.select_segments,
            &self.delete_segments,
            &self.insert_segment_rendition,
            &self.select_segment_renditions,
            &self.delete_segment_renditions,
            &self.insert_rendition,
            &self.select_renditions,
            &self.delete_renditions,
            &self.insert_event,
            &self.check,
        ]
        .into_iter()
        .map(|s| (s.as_str(), is_lwt(s)))
        .collect()
    }
}

/// Whether a statement is conditional (a Paxos round at the serial consistency).
pub(crate) fn is_lwt(cql: &str) -> bool {
    cql.contains(" IF NOT EXISTS") || cql.contains(" IF EXISTS") || cql.contains(" IF version")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{StreamQuery, encode_page_token};

    #[test]
    fn the_schema_renders_with_network_topology_and_no_placeholders() {
        let mut settings = ScyllaSettings::new(vec!["n:9042".into()], "live_ks", "eu-west");
        settings.replication_factor = 3;
        let statements = schema_statements(&settings);
        assert_eq!(statements.len(), 9);
        assert!(statements[0].starts_with("CREATE KEYSPACE IF NOT EXISTS live_ks"));
        assert!(statements[0].contains("{'class': 'NetworkTopologyStrategy', 'eu-west': 3}"));
        for statement in &statements {
            assert!(!statement.contains("${"), "{statement}");
            assert!(statement.contains("IF NOT EXISTS live_ks"), "{statement}");
        }
        assert!(
            statements
                .iter()
                .any(|s| s.contains("default_time_to_live = 604800"))
        );
    }

    #[test]
    fn statements_are_qualified_and_conditional_where_they_must_be() {
        let cql = Cql::for_keyspace("ks1");
        for (text, _) in cql.all() {
            assert!(text.contains(" ks1."), "{text}");
        }
        let lwt: Vec<_> = cql
            .all()
            .into_iter()
            .filter(|(_, lwt)| *lwt)
            .map(|(t, _)| t)
            .collect();
        assert_eq!(
            lwt,
            [
                cql.insert_stream.as_str(),
                cql.update_stream.as_str(),
                cql.delete_stream.as_str(),
                cql.insert_segment.as_str(),
                cql.insert_event.as_str()
            ]
        );
        for column in STREAM_COLUMNS {
            assert!(
                cql.insert_stream.contains(&format!(":{column}")),
                "{column}"
            );
            assert!(cql.select_stream.contains(column), "{column}");
        }
        assert!(
            cql.update_stream
                .ends_with("WHERE id = :id IF version = :expected_version")
        );
        assert!(!cql.update_stream.contains("SET id ="));
        assert!(
            cql.select_start_index_desc
                .ends_with("ORDER BY start_at DESC, stream_id DESC")
        );
        // Index writes carry explicit timestamps: see `ScyllaStore::remove_stale_indexes`.
        for index_write in [
            &cql.insert_key_index,
            &cql.delete_key_index,
            &cql.insert_start_index,
            &cql.delete_start_index,
        ] {
            assert!(index_write.contains("USING TIMESTAMP ?"), "{index_write}");
        }
    }

    #[test]
    fn day_buckets_cover_negative_and_extreme_times() {
        assert_eq!(day_bucket(0), 0);
        assert_eq!(day_bucket(DAY_MS - 1), 0);
        assert_eq!(day_bucket(DAY_MS), 1);
        assert_eq!(day_bucket(-1), -1);
        assert_eq!(day_bounds(-1), (-DAY_MS, -1));
        let (first, last) = day_bounds(day_bucket(i64::MAX));
        assert!(first < last && last == i64::MAX);
        let (first, _) = day_bounds(day_bucket(i64::MIN));
        assert!(first <= i64::MIN + DAY_MS);
        // 2026-11-05T10:00:00Z
        assert_eq!(day_bucket(1_793_872_800_000), 20_762);
    }

    #[test]
    fn the_window_follows_the_cursor_in_the_sort_direction() {
        let cursor = SortKey::Start {
            start_ms: 500,
            id: "m".into(),
        };
        let query = |sort| StreamQuery {
            start_from: Some(100),
            start_to: Some(900),
            sort,
            page_token: Some(encode_page_token(sort, &cursor)),
            ..StreamQuery::default()
        };
        let asc = ListPlan::new(&query(StreamSort::StartTimeAsc)).unwrap();
        assert_eq!(start_window(&asc), (500, 900));
        let desc = ListPlan::new(&query(StreamSort::StartTimeDesc)).unwrap();
        assert_eq!(start_window(&desc), (100, 500));
        let open = ListPlan::new(&StreamQuery::default()).unwrap();
        assert_eq!(start_window(&open), (i64::MIN, i64::MAX));
        assert_eq!(day_slice(1, (100, DAY_MS + 5)), (DAY_MS, DAY_MS + 5));
        assert_eq!(day_slice(0, (100, DAY_MS + 5)), (100, DAY_MS - 1));
    }
}
