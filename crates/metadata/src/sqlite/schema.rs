//! The SQLite schema (versioned migrations), row mapping and the listing query.

use livecast_core::{
    RegionName, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamRecord, StreamStatus,
};
use rusqlite::types::Value;
use rusqlite::{Connection, ErrorCode, Row, TransactionBehavior};

use crate::MetadataError;
use crate::error::{from_stored, to_stored};
use crate::query::{ListPlan, SortKey, StreamSort, fold_name, stream_start_ms};

/// Schema migrations in order; each runs once, in a transaction, and is recorded in
/// `schema_migrations`. Append new ones; never edit an applied one.
const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "CREATE TABLE streams (
        id TEXT PRIMARY KEY NOT NULL,
        name TEXT NOT NULL,
        name_folded TEXT NOT NULL,
        description TEXT NOT NULL,
        thumbnail_url TEXT,
        scheduled_start INTEGER,
        home_region TEXT NOT NULL,
        status TEXT NOT NULL,
        stream_key_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        started_at INTEGER,
        ended_at INTEGER,
        start_ms INTEGER NOT NULL,
        version INTEGER NOT NULL
    ) STRICT;
    CREATE INDEX streams_by_key_hash ON streams (stream_key_hash, id);
    CREATE INDEX streams_by_start ON streams (start_ms, id);
    CREATE INDEX streams_by_name ON streams (name_folded, id);
    CREATE INDEX streams_by_status_start ON streams (status, start_ms, id);
    CREATE TABLE segments (
        stream_id TEXT NOT NULL,
        rendition TEXT NOT NULL,
        seq INTEGER NOT NULL,
        duration_ms INTEGER NOT NULL,
        discontinuity INTEGER NOT NULL,
        program_date_time INTEGER NOT NULL,
        size_bytes INTEGER NOT NULL,
        PRIMARY KEY (stream_id, rendition, seq)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE renditions (
        stream_id TEXT NOT NULL,
        name TEXT NOT NULL,
        width INTEGER NOT NULL,
        height INTEGER NOT NULL,
        bandwidth INTEGER NOT NULL,
        average_bandwidth INTEGER NOT NULL,
        codecs TEXT NOT NULL,
        frame_rate_milli INTEGER NOT NULL,
        audio_only INTEGER NOT NULL,
        PRIMARY KEY (stream_id, name)
    ) STRICT, WITHOUT ROWID;
    CREATE TABLE processed_events (
        consumer TEXT NOT NULL,
        event_id TEXT NOT NULL,
        recorded_at INTEGER NOT NULL,
        PRIMARY KEY (consumer, event_id)
    ) STRICT, WITHOUT ROWID;
    CREATE INDEX processed_events_by_time ON processed_events (recorded_at);",
)];

/// Brings the schema up to the newest migration; refuses a database from a newer release.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), MetadataError> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
            version INTEGER PRIMARY KEY NOT NULL,
            applied_at INTEGER NOT NULL
        ) STRICT;",
    )
    .map_err(sqlite_error)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sqlite_error)?;
    let current: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(sqlite_error)?;
    let newest = MIGRATIONS.last().map_or(0, |(v, _)| *v);
    if current > newest {
        return Err(MetadataError::Other(format!(
            "the database has schema version {current}, newer than this release knows \
             ({newest}); refusing to use it"
        )));
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        tx.execute_batch(sql).map_err(sqlite_error)?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, ?2)",
            (version, livecast_core::time::now_millis()),
        )
        .map_err(sqlite_error)?;
    }
    tx.commit().map_err(sqlite_error)
}

/// Maps a SQLite failure to the store's error: busy and I/O failures are `Unavailable`,
/// a value of the wrong type is corruption, anything else a bug.
pub(crate) fn sqlite_error(error: rusqlite::Error) -> MetadataError {
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::FileLockingProtocolFailed
            | ErrorCode::OutOfMemory => MetadataError::unavailable("sqlite", error.to_string()),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => {
                MetadataError::corrupt("database", error.to_string())
            }
            _ => MetadataError::Other(format!("sqlite: {error}")),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => {
            MetadataError::corrupt("row", error.to_string())
        }
        _ => MetadataError::Other(format!("sqlite: {error}")),
    }
}

/// The stream columns in the order [`read_stream`] reads them.
pub(crate) const STREAM_COLUMNS: &str = "id, name, description, thumbnail_url, scheduled_start, \
    home_region, status, stream_key_hash, created_at, updated_at, started_at, ended_at, version";

/// The parameters of an insert or full update of a stream, in the order of
/// `id, name, name_folded, description, thumbnail_url, scheduled_start, home_region, status,
/// stream_key_hash, created_at, updated_at, started_at, ended_at, start_ms, version`.
pub(crate) fn stream_params(stream: &StreamRecord) -> Result<[Value; 15], MetadataError> {
    let opt = |v: Option<i64>| v.map_or(Value::Null, Value::Integer);
    Ok([
        Value::Text(stream.id.as_str().to_owned()),
        Value::Text(stream.name.clone()),
        Value::Text(fold_name(&stream.name)),
        Value::Text(stream.description.clone()),
        stream
            .thumbnail_url
            .clone()
            .map_or(Value::Null, Value::Text),
        opt(stream.scheduled_start),
        Value::Text(stream.home_region.as_str().to_owned()),
        Value::Text(stream.status.as_str().to_owned()),
        Value::Text(stream.stream_key_hash.clone()),
        Value::Integer(stream.created_at),
        Value::Integer(stream.updated_at),
        opt(stream.started_at),
        opt(stream.ended_at),
        Value::Integer(stream_start_ms(stream)),
        Value::Integer(to_stored("version", stream.version)?),
    ])
}

/// Reads a stream selected with [`STREAM_COLUMNS`]; bad ids or status text are corruption.
pub(crate) fn read_stream(row: &Row<'_>) -> Result<StreamRecord, MetadataError> {
    let get_err = sqlite_error;
    let corrupt = |e: livecast_core::Error| MetadataError::corrupt("stream", e.message);
    let id: String = row.get(0).map_err(get_err)?;
    let status: String = row.get(6).map_err(get_err)?;
    let region: String = row.get(5).map_err(get_err)?;
    Ok(StreamRecord {
        id: StreamId::parse(id).map_err(corrupt)?,
        name: row.get(1).map_err(get_err)?,
        description: row.get(2).map_err(get_err)?,
        thumbnail_url: row.get(3).map_err(get_err)?,
        scheduled_start: row.get(4).map_err(get_err)?,
        home_region: RegionName::parse(region).map_err(corrupt)?,
        status: status.parse::<StreamStatus>().map_err(corrupt)?,
        stream_key_hash: row.get(7).map_err(get_err)?,
        created_at: row.get(8).map_err(get_err)?,
        updated_at: row.get(9).map_err(get_err)?,
        started_at: row.get(10).map_err(get_err)?,
        ended_at: row.get(11).map_err(get_err)?,
        version: from_stored("stream", "version", row.get(12).map_err(get_err)?)?,
    })
}

/// The segment columns in the order [`read_segment`] reads them.
pub(crate) const SEGMENT_COLUMNS: &str =
    "stream_id, rendition, seq, duration_ms, discontinuity, program_date_time, size_bytes";

/// Reads a segment selected with [`SEGMENT_COLUMNS`].
pub(crate) fn read_segment(row: &Row<'_>) -> Result<SegmentRecord, MetadataError> {
    let corrupt = |e: livecast_core::Error| MetadataError::corrupt("segment", e.message);
    let stream_id: String = row.get(0).map_err(sqlite_error)?;
    let rendition: String = row.get(1).map_err(sqlite_error)?;
    Ok(SegmentRecord {
        stream_id: StreamId::parse(stream_id).map_err(corrupt)?,
        rendition: RenditionName::parse(rendition).map_err(corrupt)?,
        seq: from_stored("segment", "seq", row.get(2).map_err(sqlite_error)?)?,
        duration_ms: from_stored("segment", "duration_ms", row.get(3).map_err(sqlite_error)?)?,
        discontinuity: row.get(4).map_err(sqlite_error)?,
        program_date_time: row.get(5).map_err(sqlite_error)?,
        size_bytes: from_stored("segment", "size_bytes", row.get(6).map_err(sqlite_error)?)?,
    })
}

/// The rendition columns in the order [`read_rendition`] reads them.
pub(crate) const RENDITION_COLUMNS: &str = "stream_id, name, width, height, bandwidth, \
    average_bandwidth, codecs, frame_rate_milli, audio_only";

/// Reads a rendition selected with [`RENDITION_COLUMNS`].
pub(crate) fn read_rendition(row: &Row<'_>) -> Result<RenditionRecord, MetadataError> {
    let corrupt = |e: livecast_core::Error| MetadataError::corrupt("rendition", e.message);
    let number = |i: usize, field: &str| -> Result<u32, MetadataError> {
        from_stored("rendition", field, row.get(i).map_err(sqlite_error)?)
    };
    let stream_id: String = row.get(0).map_err(sqlite_error)?;
    let name: String = row.get(1).map_err(sqlite_error)?;
    Ok(RenditionRecord {
        stream_id: StreamId::parse(stream_id).map_err(corrupt)?,
        name: RenditionName::parse(name).map_err(corrupt)?,
        width: number(2, "width")?,
        height: number(3, "height")?,
        bandwidth: number(4, "bandwidth")?,
        average_bandwidth: number(5, "average_bandwidth")?,
        codecs: row.get(6).map_err(sqlite_error)?,
        frame_rate_milli: number(7, "frame_rate_milli")?,
        audio_only: row.get(8).map_err(sqlite_error)?,
    })
}

/// The SQL and parameters of one listing page: filters, keyset cursor and order all in SQL,
/// fetching `limit + 1` rows so the caller knows whether another page exists.
pub(crate) fn list_streams_sql(plan: &ListPlan) -> (String, Vec<Value>) {
    let mut sql = format!("SELECT {STREAM_COLUMNS} FROM streams WHERE 1 = 1");
    let mut params = Vec::new();
    if !plan.statuses.is_empty() {
        let marks = vec!["?"; plan.statuses.len()].join(", ");
        sql.push_str(&format!(" AND status IN ({marks})"));
        params.extend(
            plan.statuses
                .iter()
                .map(|s| Value::Text(s.as_str().to_owned())),
        );
    }
    if let Some(needle) = &plan.name_needle {
        // instr, not LIKE: the needle's own % and _ must match literally.
        sql.push_str(" AND instr(name_folded, ?) > 0");
        params.push(Value::Text(needle.clone()));
    }
    if let Some(from) = plan.start_from {
        sql.push_str(" AND start_ms >= ?");
        params.push(Value::Integer(from));
    }
    if let Some(to) = plan.start_to {
        sql.push_str(" AND start_ms <= ?");
        params.push(Value::Integer(to));
    }
    match &plan.after {
        Some(SortKey::Start { start_ms, id }) => {
            let op = if plan.sort == StreamSort::StartTimeDesc {
                "<"
            } else {
                ">"
            };
            sql.push_str(&format!(" AND (start_ms, id) {op} (?, ?)"));
            params.extend([Value::Integer(*start_ms), Value::Text(id.clone())]);
        }
        Some(SortKey::Name { name, id }) => {
            sql.push_str(" AND (name_folded, id) > (?, ?)");
            params.extend([Value::Text(name.clone()), Value::Text(id.clone())]);
        }
        None => {}
    }
    sql.push_str(match plan.sort {
        StreamSort::StartTimeAsc => " ORDER BY start_ms ASC, id ASC",
        StreamSort::StartTimeDesc => " ORDER BY start_ms DESC, id DESC",
        StreamSort::NameAsc => " ORDER BY name_folded ASC, id ASC",
    });
    sql.push_str(" LIMIT ?");
    params.push(Value::Integer(i64::from(plan.limit) + 1));
    (sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{StreamQuery, encode_page_token};

    #[test]
    fn migrating_twice_is_a_no_op_and_a_newer_schema_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        migrate(&mut conn).unwrap();
        let versions: i64 = conn
            .query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| r.get(0))
            .unwrap();
        assert_eq!(versions, MIGRATIONS.len() as i64);
        conn.execute("INSERT INTO schema_migrations VALUES (999, 0)", [])
            .unwrap();
        assert!(matches!(migrate(&mut conn), Err(MetadataError::Other(_))));
    }

    #[test]
    fn corrupt_rows_are_typed_errors() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        conn.execute(
            "INSERT INTO streams VALUES ('a', 'n', 'n', '', NULL, NULL, 'eu', 'LIVE-ISH', 'h',
             0, 0, NULL, NULL, 0, 1)",
            [],
        )
        .unwrap();
        let sql = format!("SELECT {STREAM_COLUMNS} FROM streams");
        let err = conn
            .query_row(&sql, [], |row| Ok(read_stream(row)))
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(err, MetadataError::Corrupt { what: "stream", .. }),
            "{err}"
        );
        conn.execute(
            "INSERT INTO segments VALUES ('../x', '720p', 1, 2000, 0, 0, 10)",
            [],
        )
        .unwrap();
        let sql = format!("SELECT {SEGMENT_COLUMNS} FROM segments");
        let err = conn
            .query_row(&sql, [], |row| Ok(read_segment(row)))
            .unwrap()
            .unwrap_err();
        assert!(
            matches!(
                err,
                MetadataError::Corrupt {
                    what: "segment",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn the_listing_query_filters_orders_and_seeks_in_sql() {
        let token = encode_page_token(
            StreamSort::StartTimeDesc,
            &SortKey::Start {
                start_ms: 5,
                id: "x".into(),
            },
        );
        let plan = ListPlan::new(&StreamQuery {
            statuses: vec![StreamStatus::Created, StreamStatus::StreamActive],
            name_contains: Some("Foo".into()),
            start_from: Some(1),
            start_to: Some(9),
            sort: StreamSort::StartTimeDesc,
            page_token: Some(token),
            limit: 7,
        })
        .unwrap();
        let (sql, params) = list_streams_sql(&plan);
        assert!(sql.contains("status IN (?, ?)"), "{sql}");
        assert!(sql.contains("(start_ms, id) < (?, ?)"), "{sql}");
        assert!(
            sql.ends_with("ORDER BY start_ms DESC, id DESC LIMIT ?"),
            "{sql}"
        );
        assert_eq!(params.len(), 8);
        assert_eq!(params[2], Value::Text("foo".into()));
        assert_eq!(params[7], Value::Integer(8));
    }
}
