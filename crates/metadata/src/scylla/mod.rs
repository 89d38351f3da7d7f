//! The production metadata store: ScyllaDB (or Cassandra 4+) through the `scylla` driver.
//!
//! Every statement runs at `LOCAL_QUORUM` in the local datacenter; create, update, delete,
//! `put_segment` and `record_event` are lightweight transactions at `LOCAL_SERIAL`. The key-hash
//! and start-day indexes are written before the stream row changes and checked against it on
//! every read, so a crash between writes leaves at worst a stale index entry that reads skip,
//! never a stream that the indexes cannot find. See docs/metadata-store-scylla.md.

mod listing;
mod prepared;
mod rows;
mod statements;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::future::try_join_all;
use livecast_core::{
    EventId, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamRecord,
};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::policies::load_balancing::DefaultPolicy;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};
use scylla::value::{CqlTimestamp, Row};
use tracing::{info, warn};

use crate::query::{ListPlan, StreamPage, StreamQuery, StreamSort, stream_start_ms};
use crate::{MetadataError, MetadataStore, ScyllaSettings, validate_consumer};
use prepared::{Prepared, execution_error, result_error};
use rows::{
    LwtOutcome, RenditionRow, SegmentRow, StreamRow, lwt_outcome, rendition_to_row,
    row_to_rendition, row_to_segment, row_to_stream, segment_to_row, stream_to_row, stream_update,
};
use statements::{Cql, day_bucket, schema_statements};

const BACKEND: &str = "scylla";
/// How long `check` may take.
const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// The ScyllaDB metadata store.
pub struct ScyllaStore {
    session: Arc<Session>,
    statements: Arc<Prepared>,
    keyspace: String,
}

impl std::fmt::Debug for ScyllaStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaStore")
            .field("keyspace", &self.keyspace)
            .finish_non_exhaustive()
    }
}

impl ScyllaStore {
    /// Connects, applies the schema (idempotently) and prepares every statement. An unreachable
    /// cluster is `Unavailable` within about twice `settings.connect_timeout`.
    pub async fn connect(settings: &ScyllaSettings) -> Result<ScyllaStore, MetadataError> {
        settings.validate()?;
        let policy = DefaultPolicy::builder()
            .prefer_datacenter(settings.local_datacenter.clone())
            .permit_dc_failover(false)
            .token_aware(true)
            .build();
        let profile = ExecutionProfile::builder()
            .consistency(Consistency::LocalQuorum)
            .serial_consistency(Some(SerialConsistency::LocalSerial))
            .request_timeout(Some(settings.request_timeout))
            .load_balancing_policy(policy)
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&settings.nodes)
            .connection_timeout(settings.connect_timeout)
            .default_execution_profile_handle(profile.into_handle());
        if let Some(credentials) = &settings.credentials {
            builder = builder.user(
                credentials.username.clone(),
                credentials.password.expose().to_owned(),
            );
        }
        let nodes = settings.nodes.join(",");
        let session = tokio::time::timeout(settings.connect_timeout * 2, builder.build())
            .await
            .map_err(|_| {
                MetadataError::unavailable(
                    BACKEND,
                    format!(
                        "no answer from {nodes} within {:?}",
                        settings.connect_timeout * 2
                    ),
                )
            })?
            .map_err(|e| {
                MetadataError::unavailable(BACKEND, format!("cannot connect to {nodes}: {e}"))
            })?;
        for statement in schema_statements(settings) {
            session
                .query_unpaged(statement, ())
                .await
                .map_err(execution_error)?;
        }
        let statements = Prepared::new(&session, &Cql::for_keyspace(&settings.keyspace)).await?;
        info!(keyspace = %settings.keyspace, nodes = %nodes, "metadata store connected to scylla");
        Ok(ScyllaStore {
            session: Arc::new(session),
            statements: Arc::new(statements),
            keyspace: settings.keyspace.clone(),
        })
    }

    /// The keyspace this store uses.
    pub fn keyspace(&self) -> &str {
        &self.keyspace
    }

    async fn execute(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<(), MetadataError> {
        self.session
            .execute_unpaged(statement, values)
            .await
            .map(drop)
            .map_err(execution_error)
    }

    async fn rows<R>(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<Vec<R>, MetadataError>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
    {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(execution_error)?
            .into_rows_result()
            .map_err(result_error)?;
        result
            .rows::<R>()
            .map_err(result_error)?
            .collect::<Result<Vec<R>, _>>()
            .map_err(result_error)
    }

    async fn lwt(
        &self,
        statement: &PreparedStatement,
        values: impl SerializeRow,
    ) -> Result<LwtOutcome, MetadataError> {
        let result = self
            .session
            .execute_unpaged(statement, values)
            .await
            .map_err(execution_error)?
            .into_rows_result()
            .map_err(result_error)?;
        let columns: Vec<String> = result
            .column_specs()
            .iter()
            .map(|spec| spec.name().to_owned())
            .collect();
        let row = result.maybe_first_row::<Row>().map_err(result_error)?;
        lwt_outcome(&columns, row)
    }

    async fn fetch_stream(&self, id: &str) -> Result<Option<StreamRecord>, MetadataError> {
        let rows: Vec<StreamRow> = self.rows(&self.statements.select_stream, (id,)).await?;
        rows.into_iter().next().map(row_to_stream).transpose()
    }

    /// Writes the index entries that find `stream` (before its row changes; see the module doc).
    async fn write_indexes(&self, stream: &StreamRecord) -> Result<(), MetadataError> {
        let start = stream_start_ms(stream);
        let id = stream.id.as_str();
        let s = &self.statements;
        let at = now_micros();
        futures::try_join!(
            self.execute(&s.insert_key_index, (&stream.stream_key_hash, id, at)),
            self.execute(
                &s.insert_start_index,
                (day_bucket(start), CqlTimestamp(start), id, at)
            ),
            self.execute(&s.insert_start_day, (day_bucket(start),)),
        )?;
        Ok(())
    }

    /// Removes index entries of `old` that `new` (if any) no longer uses. The deletes carry
    /// `as_of`, a time taken before the change was written: should a later update put the same
    /// entry back meanwhile, its newer write wins over this delete. Best effort: a left-over
    /// entry is skipped by reads, so a failure here is logged, not returned.
    async fn remove_stale_indexes(
        &self,
        old: &StreamRecord,
        new: Option<&StreamRecord>,
        as_of: i64,
    ) {
        let id = old.id.as_str();
        let s = &self.statements;
        if new.is_none_or(|n| n.stream_key_hash != old.stream_key_hash)
            && let Err(error) = self
                .execute(&s.delete_key_index, (as_of, &old.stream_key_hash, id))
                .await
        {
            warn!(stream_id = %id, error = %error, "stale key index entry left behind");
        }
        let start = stream_start_ms(old);
        if new.is_none_or(|n| stream_start_ms(n) != start)
            && let Err(error) = self
                .execute(
                    &s.delete_start_index,
                    (as_of, day_bucket(start), CqlTimestamp(start), id),
                )
                .await
        {
            warn!(stream_id = %id, error = %error, "stale start index entry left behind");
        }
    }
}

/// Now, in the microseconds CQL write timestamps use.
fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

#[async_trait::async_trait]
impl MetadataStore for ScyllaStore {
    async fn create_stream(&self, stream: &StreamRecord) -> Result<(), MetadataError> {
        let row = stream_to_row(stream)?;
        self.write_indexes(stream).await?;
        let outcome = self.lwt(&self.statements.insert_stream, &row).await?;
        if !outcome.applied {
            return Err(MetadataError::AlreadyExists(format!(
                "stream {}",
                stream.id
            )));
        }
        Ok(())
    }

    async fn get_stream(&self, id: &StreamId) -> Result<Option<StreamRecord>, MetadataError> {
        self.fetch_stream(id.as_str()).await
    }

    async fn stream_by_key_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<StreamRecord>, MetadataError> {
        let mut ids: Vec<(String,)> = self
            .rows(&self.statements.select_key_index, (key_hash,))
            .await?;
        ids.sort();
        for (id,) in ids {
            // The index may be stale (a rotated key, a refused write): the row decides.
            if let Some(stream) = self.fetch_stream(&id).await?
                && stream.stream_key_hash == key_hash
            {
                return Ok(Some(stream));
            }
        }
        Ok(None)
    }

    async fn update_stream(
        &self,
        stream: &StreamRecord,
        expected_version: u64,
    ) -> Result<(), MetadataError> {
        let update = stream_update(stream_to_row(stream)?, expected_version)?;
        let not_found = || MetadataError::NotFound(format!("stream {}", stream.id));
        let current = self
            .fetch_stream(stream.id.as_str())
            .await?
            .ok_or_else(not_found)?;
        let conflict = |actual: u64| MetadataError::VersionConflict {
            id: stream.id.to_string(),
            expected: expected_version,
            actual,
        };
        if current.version != expected_version {
            return Err(conflict(current.version));
        }
        let as_of = now_micros();
        self.write_indexes(stream).await?;
        let outcome = self.lwt(&self.statements.update_stream, &update).await?;
        if !outcome.applied {
            return Err(match outcome.version {
                None => not_found(),
                Some(actual) => conflict(crate::error::from_stored("stream", "version", actual)?),
            });
        }
        self.remove_stale_indexes(&current, Some(stream), as_of)
            .await;
        Ok(())
    }

    async fn delete_stream(&self, id: &StreamId) -> Result<bool, MetadataError> {
        let Some(current) = self.fetch_stream(id.as_str()).await? else {
            return Ok(false);
        };
        let s = &self.statements;
        // Dependents first and the row last, so a delete that fails midway can be retried.
        let renditions: Vec<(String,)> = self
            .rows(&s.select_segment_renditions, (id.as_str(),))
            .await?;
        try_join_all(
            renditions
                .iter()
                .map(|(rendition,)| self.execute(&s.delete_segments, (id.as_str(), rendition))),
        )
        .await?;
        futures::try_join!(
            self.execute(&s.delete_segment_renditions, (id.as_str(),)),
            self.execute(&s.delete_renditions, (id.as_str(),)),
        )?;
        self.remove_stale_indexes(&current, None, now_micros())
            .await;
        let outcome = self.lwt(&s.delete_stream, (id.as_str(),)).await?;
        Ok(outcome.applied)
    }

    async fn list_streams(&self, query: &StreamQuery) -> Result<StreamPage, MetadataError> {
        let plan = ListPlan::new(query)?;
        match plan.sort {
            StreamSort::StartTimeAsc | StreamSort::StartTimeDesc => {
                listing::by_start_time(self, &plan).await
            }
            StreamSort::NameAsc => listing::by_name(self, &plan).await,
        }
    }

    async fn put_segment(&self, segment: &SegmentRecord) -> Result<bool, MetadataError> {
        let row = segment_to_row(segment)?;
        // Recorded first so that deleting the stream always finds this segment's partition.
        self.execute(
            &self.statements.insert_segment_rendition,
            (&row.stream_id, &row.rendition),
        )
        .await?;
        let outcome = self.lwt(&self.statements.insert_segment, &row).await?;
        Ok(outcome.applied)
    }

    async fn list_segments(
        &self,
        stream: &StreamId,
        rendition: &RenditionName,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>, MetadataError> {
        // CQL refuses LIMIT 0, and no stored seq exceeds i64::MAX.
        let Ok(from_seq) = i64::try_from(from_seq) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows: Vec<SegmentRow> = self
            .rows(
                &self.statements.select_segments,
                (stream.as_str(), rendition.as_str(), from_seq, limit),
            )
            .await?;
        rows.into_iter().map(row_to_segment).collect()
    }

    async fn put_rendition(&self, rendition: &RenditionRecord) -> Result<(), MetadataError> {
        self.execute(
            &self.statements.insert_rendition,
            rendition_to_row(rendition),
        )
        .await
    }

    async fn list_renditions(
        &self,
        stream: &StreamId,
    ) -> Result<Vec<RenditionRecord>, MetadataError> {
        let rows: Vec<RenditionRow> = self
            .rows(&self.statements.select_renditions, (stream.as_str(),))
            .await?;
        rows.into_iter().map(row_to_rendition).collect()
    }

    async fn record_event(
        &self,
        consumer: &str,
        event_id: &EventId,
    ) -> Result<bool, MetadataError> {
        validate_consumer(consumer)?;
        let now = CqlTimestamp(livecast_core::time::now_millis());
        let outcome = self
            .lwt(
                &self.statements.insert_event,
                (consumer, event_id.as_str(), now),
            )
            .await?;
        Ok(outcome.applied)
    }

    async fn check(&self) -> Result<(), MetadataError> {
        let probe = self.rows::<(String,)>(&self.statements.check, ());
        tokio::time::timeout(CHECK_TIMEOUT, probe)
            .await
            .map_err(|_| {
                MetadataError::unavailable(BACKEND, format!("no answer within {CHECK_TIMEOUT:?}"))
            })?
            .map(drop)
    }
}
