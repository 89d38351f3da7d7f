//! The embedded metadata store: one SQLite file in WAL mode.
//!
//! SQLite calls block, so every call runs in `spawn_blocking` over one connection behind a
//! mutex. One connection is plenty for the embedded deployment (a laptop, tests); WAL lets
//! other processes read the file meanwhile.

mod schema;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livecast_core::{
    EventId, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamRecord,
};
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params_from_iter};

use crate::error::to_stored;
use crate::query::{ListPlan, StreamPage, StreamQuery};
use crate::{EVENT_RETENTION, MetadataError, MetadataStore, validate_consumer};
use schema::{
    RENDITION_COLUMNS, SEGMENT_COLUMNS, STREAM_COLUMNS, list_streams_sql, migrate, read_rendition,
    read_segment, read_stream, sqlite_error, stream_params,
};

/// How long a call waits for another process's write lock before `Unavailable`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long `check` may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The embedded metadata store.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    location: Arc<PathBuf>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path` and its directory, in WAL mode,
    /// and migrates its schema.
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, MetadataError> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| {
                    MetadataError::unavailable(
                        "sqlite",
                        format!("cannot create directory {}: {e}", dir.display()),
                    )
                })?;
            }
            let conn = Connection::open(&path).map_err(|e| {
                MetadataError::unavailable("sqlite", format!("cannot open {}: {e}", path.display()))
            })?;
            SqliteStore::prepare(conn, path)
        })
        .await
        .map_err(|e| MetadataError::Other(format!("sqlite open task failed: {e}")))?
    }

    /// A private in-memory database, for tests.
    pub fn open_in_memory() -> Result<SqliteStore, MetadataError> {
        let conn = Connection::open_in_memory().map_err(sqlite_error)?;
        SqliteStore::prepare(conn, PathBuf::from(":memory:"))
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.location
    }

    fn prepare(mut conn: Connection, location: PathBuf) -> Result<SqliteStore, MetadataError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite_error)?;
        // WAL: readers never block the writer. synchronous=FULL: this is a system of record,
        // and the write rate (a few rows per segment) is far below what an fsync per commit allows.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(sqlite_error)?;
        if location != Path::new(":memory:") && !mode.eq_ignore_ascii_case("wal") {
            return Err(MetadataError::unavailable(
                "sqlite",
                format!("{} cannot use WAL mode (got {mode})", location.display()),
            ));
        }
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(sqlite_error)?;
        migrate(&mut conn)?;
        let cutoff = livecast_core::time::now_millis() - EVENT_RETENTION.as_millis() as i64;
        conn.execute(
            "DELETE FROM processed_events WHERE recorded_at < ?1",
            [cutoff],
        )
        .map_err(sqlite_error)?;
        Ok(SqliteStore {
            conn: Arc::new(Mutex::new(conn)),
            location: Arc::new(location),
        })
    }

    /// Runs `work` on the connection in the blocking pool.
    async fn call<T, F>(&self, work: F) -> Result<T, MetadataError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, MetadataError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            // A panic mid-call cannot leave a half-applied change: transactions roll back on
            // drop, so a poisoned lock still guards a consistent database.
            let mut conn = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            work(&mut conn)
        })
        .await
        .map_err(|e| MetadataError::Other(format!("sqlite task failed: {e}")))?
    }
}

fn get_stream_by_id(conn: &Connection, id: &str) -> Result<Option<StreamRecord>, MetadataError> {
    conn.query_row(
        &format!("SELECT {STREAM_COLUMNS} FROM streams WHERE id = ?1"),
        [id],
        |row| Ok(read_stream(row)),
    )
    .optional()
    .map_err(sqlite_error)?
    .transpose()
}

#[async_trait::async_trait]
impl MetadataStore for SqliteStore {
    async fn create_stream(&self, stream: &StreamRecord) -> Result<(), MetadataError> {
        let params = stream_params(stream)?;
        let id = stream.id.clone();
        self.call(move |conn| {
            let inserted = conn
                .execute(
                    "INSERT INTO streams (id, name, name_folded, description, thumbnail_url,
                        scheduled_start, home_region, status, stream_key_hash, created_at,
                        updated_at, started_at, ended_at, start_ms, version)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)
                     ON CONFLICT (id) DO NOTHING",
                    params_from_iter(params),
                )
                .map_err(sqlite_error)?;
            if inserted == 0 {
                return Err(MetadataError::AlreadyExists(format!("stream {id}")));
            }
            Ok(())
        })
        .await
    }

    async fn get_stream(&self, id: &StreamId) -> Result<Option<StreamRecord>, MetadataError> {
        let id = id.clone();
        self.call(move |conn| get_stream_by_id(conn, id.as_str()))
            .await
    }

    async fn stream_by_key_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<StreamRecord>, MetadataError> {
        let key_hash = key_hash.to_owned();
        self.call(move |conn| {
            conn.query_row(
                &format!(
                    "SELECT {STREAM_COLUMNS} FROM streams WHERE stream_key_hash = ?1 \
                     ORDER BY id LIMIT 1"
                ),
                [key_hash],
                |row| Ok(read_stream(row)),
            )
            .optional()
            .map_err(sqlite_error)?
            .transpose()
        })
        .await
    }

    async fn update_stream(
        &self,
        stream: &StreamRecord,
        expected_version: u64,
    ) -> Result<(), MetadataError> {
        let mut params = stream_params(stream)?.to_vec();
        params.push(Value::Integer(to_stored(
            "expected_version",
            expected_version,
        )?));
        let id = stream.id.clone();
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_error)?;
            let updated = tx
                .execute(
                    "UPDATE streams SET name = ?2, name_folded = ?3, description = ?4,
                        thumbnail_url = ?5, scheduled_start = ?6, home_region = ?7, status = ?8,
                        stream_key_hash = ?9, created_at = ?10, updated_at = ?11,
                        started_at = ?12, ended_at = ?13, start_ms = ?14, version = ?15
                     WHERE id = ?1 AND version = ?16",
                    params_from_iter(params),
                )
                .map_err(sqlite_error)?;
            if updated == 0 {
                let stored: Option<i64> = tx
                    .query_row(
                        "SELECT version FROM streams WHERE id = ?1",
                        [id.as_str()],
                        |r| r.get(0),
                    )
                    .optional()
                    .map_err(sqlite_error)?;
                return Err(match stored {
                    None => MetadataError::NotFound(format!("stream {id}")),
                    Some(actual) => MetadataError::VersionConflict {
                        id: id.to_string(),
                        expected: expected_version,
                        actual: crate::error::from_stored("stream", "version", actual)?,
                    },
                });
            }
            tx.commit().map_err(sqlite_error)
        })
        .await
    }

    async fn delete_stream(&self, id: &StreamId) -> Result<bool, MetadataError> {
        let id = id.clone();
        self.call(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_error)?;
            for table in ["segments", "renditions"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE stream_id = ?1"),
                    [id.as_str()],
                )
                .map_err(sqlite_error)?;
            }
            let deleted = tx
                .execute("DELETE FROM streams WHERE id = ?1", [id.as_str()])
                .map_err(sqlite_error)?;
            tx.commit().map_err(sqlite_error)?;
            Ok(deleted > 0)
        })
        .await
    }

    async fn list_streams(&self, query: &StreamQuery) -> Result<StreamPage, MetadataError> {
        let plan = ListPlan::new(query)?;
        self.call(move |conn| {
            let (sql, params) = list_streams_sql(&plan);
            let mut statement = conn.prepare_cached(&sql).map_err(sqlite_error)?;
            let items = statement
                .query_map(params_from_iter(params), |row| Ok(read_stream(row)))
                .map_err(sqlite_error)?
                .map(|row| row.map_err(sqlite_error)?)
                .collect::<Result<Vec<_>, _>>()?;
            Ok(plan.page(items))
        })
        .await
    }

    async fn put_segment(&self, segment: &SegmentRecord) -> Result<bool, MetadataError> {
        let params = [
            Value::Text(segment.stream_id.as_str().to_owned()),
            Value::Text(segment.rendition.as_str().to_owned()),
            Value::Integer(to_stored("seq", segment.seq)?),
            Value::Integer(i64::from(segment.duration_ms)),
            Value::Integer(i64::from(segment.discontinuity)),
            Value::Integer(segment.program_date_time),
            Value::Integer(to_stored("size_bytes", segment.size_bytes)?),
        ];
        self.call(move |conn| {
            let inserted = conn
                .prepare_cached(&format!(
                    "INSERT INTO segments ({SEGMENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                     ON CONFLICT DO NOTHING"
                ))
                .and_then(|mut s| s.execute(params_from_iter(params)))
                .map_err(sqlite_error)?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn list_segments(
        &self,
        stream: &StreamId,
        rendition: &RenditionName,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>, MetadataError> {
        // No stored seq exceeds i64::MAX (put_segment refuses them), so such a start is past the end.
        let Ok(from_seq) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        let (stream, rendition) = (stream.clone(), rendition.clone());
        self.call(move |conn| {
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {SEGMENT_COLUMNS} FROM segments
                     WHERE stream_id = ?1 AND rendition = ?2 AND seq >= ?3
                     ORDER BY seq ASC LIMIT ?4"
                ))
                .map_err(sqlite_error)?;
            statement
                .query_map(
                    (
                        stream.as_str(),
                        rendition.as_str(),
                        from_seq,
                        i64::from(limit),
                    ),
                    |row| Ok(read_segment(row)),
                )
                .map_err(sqlite_error)?
                .map(|row| row.map_err(sqlite_error)?)
                .collect()
        })
        .await
    }

    async fn put_rendition(&self, rendition: &RenditionRecord) -> Result<(), MetadataError> {
        let r = rendition.clone();
        self.call(move |conn| {
            conn.prepare_cached(&format!(
                "INSERT INTO renditions ({RENDITION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (stream_id, name) DO UPDATE SET width = excluded.width,
                    height = excluded.height, bandwidth = excluded.bandwidth,
                    average_bandwidth = excluded.average_bandwidth, codecs = excluded.codecs,
                    frame_rate_milli = excluded.frame_rate_milli, audio_only = excluded.audio_only"
            ))
            .and_then(|mut s| {
                s.execute((
                    r.stream_id.as_str(),
                    r.name.as_str(),
                    r.width,
                    r.height,
                    r.bandwidth,
                    r.average_bandwidth,
                    r.codecs.as_str(),
                    r.frame_rate_milli,
                    r.audio_only,
                ))
            })
            .map_err(sqlite_error)?;
            Ok(())
        })
        .await
    }

    async fn list_renditions(
        &self,
        stream: &StreamId,
    ) -> Result<Vec<RenditionRecord>, MetadataError> {
        let stream = stream.clone();
        self.call(move |conn| {
            let mut statement = conn
                .prepare_cached(&format!(
                    "SELECT {RENDITION_COLUMNS} FROM renditions WHERE stream_id = ?1 ORDER BY name"
                ))
                .map_err(sqlite_error)?;
            statement
                .query_map([stream.as_str()], |row| Ok(read_rendition(row)))
                .map_err(sqlite_error)?
                .map(|row| row.map_err(sqlite_error)?)
                .collect()
        })
        .await
    }

    async fn record_event(
        &self,
        consumer: &str,
        event_id: &EventId,
    ) -> Result<bool, MetadataError> {
        validate_consumer(consumer)?;
        let (consumer, event_id) = (consumer.to_owned(), event_id.clone());
        self.call(move |conn| {
            let now = livecast_core::time::now_millis();
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sqlite_error)?;
            // Expire as Scylla's TTL does, so both stores answer a late duplicate the same way.
            let cutoff = now - EVENT_RETENTION.as_millis() as i64;
            // An indexed range delete: nearly always empty, and it keeps the table bounded.
            tx.execute(
                "DELETE FROM processed_events WHERE recorded_at < ?1",
                [cutoff],
            )
            .map_err(sqlite_error)?;
            let inserted = tx
                .execute(
                    "INSERT INTO processed_events (consumer, event_id, recorded_at)
                     VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    (consumer.as_str(), event_id.as_str(), now),
                )
                .map_err(sqlite_error)?;
            tx.commit().map_err(sqlite_error)?;
            Ok(inserted == 1)
        })
        .await
    }

    async fn check(&self) -> Result<(), MetadataError> {
        let probe = self.call(|conn| {
            conn.query_row("SELECT COUNT(*) FROM schema_migrations", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(sqlite_error)
            .map(drop)
        });
        tokio::time::timeout(CHECK_TIMEOUT, probe)
            .await
            .map_err(|_| {
                MetadataError::unavailable(
                    "sqlite",
                    format!(
                        "{} did not answer within {CHECK_TIMEOUT:?}",
                        self.location.display()
                    ),
                )
            })?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_store_uses_wal_and_reopens_with_its_data() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.sqlite3");
        let store = SqliteStore::open(&path).await.unwrap();
        let mode: String = store
            .call(|c| {
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))
                    .map_err(sqlite_error)
            })
            .await
            .unwrap();
        assert_eq!(mode.to_lowercase(), "wal");
        let event = EventId::parse("e1").unwrap();
        assert!(store.record_event("edge", &event).await.unwrap());
        drop(store);
        let reopened = SqliteStore::open(&path).await.unwrap();
        assert!(!reopened.record_event("edge", &event).await.unwrap());
        assert_eq!(reopened.path(), path);
    }

    #[tokio::test]
    async fn an_unopenable_path_is_unavailable() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = SqliteStore::open(blocker.join("m.sqlite3"))
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                MetadataError::Unavailable {
                    backend: "sqlite",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[tokio::test]
    async fn numbers_beyond_i64_are_refused_not_wrapped() {
        let store = SqliteStore::open_in_memory().unwrap();
        let segment = SegmentRecord {
            stream_id: StreamId::parse("s").unwrap(),
            rendition: RenditionName::parse("720p").unwrap(),
            seq: u64::MAX,
            duration_ms: 2000,
            discontinuity: false,
            program_date_time: 0,
            size_bytes: 1,
        };
        let err = store.put_segment(&segment).await.unwrap_err();
        assert!(matches!(err, MetadataError::Invalid(_)));
        let listed = store
            .list_segments(&segment.stream_id, &segment.rendition, u64::MAX, 10)
            .await
            .unwrap();
        assert!(listed.is_empty());
    }
}
