//! The statements the store prepares once at connect, and how driver failures map to
//! `MetadataError`.

use scylla::client::session::Session;
use scylla::errors::{DbError, ExecutionError, PrepareError, RequestAttemptError};
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};

use super::BACKEND;
use super::statements::{self, Cql};
use crate::MetadataError;

/// Every statement, prepared once at connect.
#[derive(Debug)]
pub(super) struct Prepared {
    pub(super) insert_stream: PreparedStatement,
    pub(super) update_stream: PreparedStatement,
    pub(super) select_stream: PreparedStatement,
    pub(super) delete_stream: PreparedStatement,
    pub(super) select_key_index: PreparedStatement,
    pub(super) insert_key_index: PreparedStatement,
    pub(super) delete_key_index: PreparedStatement,
    pub(super) insert_start_index: PreparedStatement,
    pub(super) delete_start_index: PreparedStatement,
    pub(super) select_start_index_asc: PreparedStatement,
    pub(super) select_start_index_desc: PreparedStatement,
    pub(super) insert_start_day: PreparedStatement,
    pub(super) select_start_days_asc: PreparedStatement,
    pub(super) select_start_days_desc: PreparedStatement,
    pub(super) insert_segment: PreparedStatement,
    pub(super) select_segments: PreparedStatement,
    pub(super) delete_segments: PreparedStatement,
    pub(super) insert_segment_rendition: PreparedStatement,
    pub(super) select_segment_renditions: PreparedStatement,
    pub(super) delete_segment_renditions: PreparedStatement,
    pub(super) insert_rendition: PreparedStatement,
    pub(super) select_renditions: PreparedStatement,
    pub(super) delete_renditions: PreparedStatement,
    pub(super) insert_event: PreparedStatement,
    pub(super) check: PreparedStatement,
}

impl Prepared {
    pub(super) async fn new(session: &Session, cql: &Cql) -> Result<Prepared, MetadataError> {
        Ok(Prepared {
            insert_stream: prepare(session, &cql.insert_stream).await?,
            update_stream: prepare(session, &cql.update_stream).await?,
            select_stream: prepare(session, &cql.select_stream).await?,
            delete_stream: prepare(session, &cql.delete_stream).await?,
            select_key_index: prepare(session, &cql.select_key_index).await?,
            insert_key_index: prepare(session, &cql.insert_key_index).await?,
            delete_key_index: prepare(session, &cql.delete_key_index).await?,
            insert_start_index: prepare(session, &cql.insert_start_index).await?,
            delete_start_index: prepare(session, &cql.delete_start_index).await?,
            select_start_index_asc: prepare(session, &cql.select_start_index_asc).await?,
            select_start_index_desc: prepare(session, &cql.select_start_index_desc).await?,
            insert_start_day: prepare(session, &cql.insert_start_day).await?,
            select_start_days_asc: prepare(session, &cql.select_start_days_asc).await?,
            select_start_days_desc: prepare(session, &cql.select_start_days_desc).await?,
            insert_segment: prepare(session, &cql.insert_segment).await?,
            select_segments: prepare(session, &cql.select_segments).await?,
            delete_segments: prepare(session, &cql.delete_segments).await?,
            insert_segment_rendition: prepare(session, &cql.insert_segment_rendition).await?,
            select_segment_renditions: prepare(session, &cql.select_segment_renditions).await?,
            delete_segment_renditions: prepare(session, &cql.delete_segment_renditions).await?,
            insert_rendition: prepare(session, &cql.insert_rendition).await?,
            select_renditions: prepare(session, &cql.select_renditions).await?,
            delete_renditions: prepare(session, &cql.delete_renditions).await?,
            insert_event: prepare(session, &cql.insert_event).await?,
            check: prepare(session, &cql.check).await?,
        })
    }
}

/// Prepares one statement with the store's consistency: `LOCAL_QUORUM`, and `LOCAL_SERIAL` for
/// the Paxos round of conditional writes. Only plain reads and upserts may be retried blindly.
async fn prepare(session: &Session, text: &str) -> Result<PreparedStatement, MetadataError> {
    let mut statement = session.prepare(text).await.map_err(prepare_error)?;
    statement.set_consistency(Consistency::LocalQuorum);
    statement.set_serial_consistency(Some(SerialConsistency::LocalSerial));
    statement.set_is_idempotent(!statements::is_lwt(text));
    Ok(statement)
}

/// Maps a driver failure: a statement the server refuses as malformed is a bug (`Other`);
/// anything about reaching or hearing from replicas is `Unavailable`.
pub(super) fn execution_error(error: ExecutionError) -> MetadataError {
    match &error {
        ExecutionError::BadQuery(_) => MetadataError::Other(format!("scylla: {error}")),
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, _))
            if is_statement_bug(db) =>
        {
            MetadataError::Other(format!("scylla: {error}"))
        }
        _ => MetadataError::unavailable(BACKEND, error.to_string()),
    }
}

pub(super) fn prepare_error(error: PrepareError) -> MetadataError {
    match &error {
        PrepareError::AllAttemptsFailed {
            first_attempt: RequestAttemptError::DbError(db, _),
        } if is_statement_bug(db) => MetadataError::Other(format!("scylla prepare: {error}")),
        _ => MetadataError::unavailable(BACKEND, error.to_string()),
    }
}

fn is_statement_bug(db: &DbError) -> bool {
    matches!(
        db,
        DbError::SyntaxError | DbError::Invalid | DbError::ConfigError | DbError::Unauthorized
    )
}

/// A result of an unexpected shape: the schema and this code disagree.
pub(super) fn result_error(error: impl std::fmt::Display) -> MetadataError {
    MetadataError::Other(format!("scylla result: {error}"))
}
