//! The metadata-store port of Livecast: the system of record for streams, their renditions and
//! their segment index, plus the processed-event ledger that makes event consumers idempotent.
//!
//! One trait, [`MetadataStore`], held as `Arc<dyn MetadataStore>`, with two implementations that
//! pass the same conformance suite: [`SqliteStore`] (embedded, the default) and [`ScyllaStore`]
//! (production). [`open`] picks one from a [`MetadataConfig`].
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use livecast_core::{
    EventId, RenditionName, RenditionRecord, SegmentRecord, StreamId, StreamRecord,
};

pub mod config;
pub mod error;
pub mod query;
pub mod scylla;
pub mod sqlite;

pub use config::{MetadataConfig, ScyllaCredentials, ScyllaSettings};
pub use error::MetadataError;
pub use livecast_core::Secret;
pub use query::{StreamPage, StreamQuery, StreamSort};
pub use scylla::ScyllaStore;
pub use sqlite::SqliteStore;

/// How long a consumer's record of a processed event is kept; a duplicate delivered later than
/// this counts as new. Far longer than any redelivery the event bus does.
pub const EVENT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The longest consumer name accepted by [`MetadataStore::record_event`].
pub const MAX_CONSUMER_LEN: usize = 128;

/// The metadata store: streams, their key index, renditions, segment index and processed events.
#[async_trait::async_trait]
pub trait MetadataStore: Send + Sync + std::fmt::Debug + 'static {
    /// Stores a new stream; `AlreadyExists` if its id is taken.
    async fn create_stream(&self, stream: &StreamRecord) -> Result<(), MetadataError>;

    /// The stream with this id, if any.
    async fn get_stream(&self, id: &StreamId) -> Result<Option<StreamRecord>, MetadataError>;

    /// The stream whose stream key hashes to `key_hash`, if any.
    async fn stream_by_key_hash(
        &self,
        key_hash: &str,
    ) -> Result<Option<StreamRecord>, MetadataError>;

    /// Replaces a stream if its stored version is `expected_version` (optimistic concurrency).
    /// Writes `stream.version` as given: the caller bumps it. `VersionConflict` if another
    /// version is stored, `NotFound` if there is none. Keeps the key-hash index in step when
    /// `stream_key_hash` changes: after a key rotation the old hash no longer finds the stream.
    async fn update_stream(
        &self,
        stream: &StreamRecord,
        expected_version: u64,
    ) -> Result<(), MetadataError>;

    /// Removes the stream, its key index, its renditions and its segment index.
    /// `Ok(false)` if there was no such stream.
    async fn delete_stream(&self, id: &StreamId) -> Result<bool, MetadataError>;

    /// One page of streams matching `query`, in its order.
    async fn list_streams(&self, query: &StreamQuery) -> Result<StreamPage, MetadataError>;

    /// Adds a segment to the index, idempotently on (stream, rendition, seq): `Ok(true)` when
    /// new, `Ok(false)` when one is there already (it is kept, not overwritten).
    async fn put_segment(&self, segment: &SegmentRecord) -> Result<bool, MetadataError>;

    /// Segments of one rendition in ascending seq, from `from_seq` on, at most `limit`.
    async fn list_segments(
        &self,
        stream: &StreamId,
        rendition: &RenditionName,
        from_seq: u64,
        limit: u32,
    ) -> Result<Vec<SegmentRecord>, MetadataError>;

    /// Inserts or replaces a rendition, keyed by (stream, name).
    async fn put_rendition(&self, rendition: &RenditionRecord) -> Result<(), MetadataError>;

    /// The renditions of a stream, by name.
    async fn list_renditions(
        &self,
        stream: &StreamId,
    ) -> Result<Vec<RenditionRecord>, MetadataError>;

    /// Records that `consumer` handled `event_id`: `Ok(true)` the first time, `Ok(false)` for a
    /// duplicate (within [`EVENT_RETENTION`]).
    async fn record_event(&self, consumer: &str, event_id: &EventId)
    -> Result<bool, MetadataError>;

    /// Whether the store is reachable and usable (for `/readyz`); answers within seconds.
    async fn check(&self) -> Result<(), MetadataError>;
}

/// Opens the store `config` names. An unreachable backend is an `Unavailable` error, never a
/// silent fallback to another store.
pub async fn open(config: &MetadataConfig) -> Result<Arc<dyn MetadataStore>, MetadataError> {
    match config {
        MetadataConfig::Embedded { path } => Ok(Arc::new(SqliteStore::open(path).await?)),
        MetadataConfig::Scylla { .. } => {
            let settings = config
                .scylla_settings()?
                .ok_or_else(|| MetadataError::Other("scylla config without settings".into()))?;
            Ok(Arc::new(ScyllaStore::connect(&settings).await?))
        }
    }
}

/// Checks a consumer name given to `record_event`.
pub(crate) fn validate_consumer(consumer: &str) -> Result<(), MetadataError> {
    if consumer.is_empty()
        || consumer.len() > MAX_CONSUMER_LEN
        || consumer.chars().any(char::is_control)
    {
        return Err(MetadataError::Invalid(format!(
            "consumer name must be 1 to {MAX_CONSUMER_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// The `/readyz` check of a metadata-store: it answers when [`MetadataStore::check`] does.
pub fn readiness_check(backend: Arc<dyn MetadataStore>) -> Arc<dyn livecast_core::ReadinessCheck> {
    Arc::new(Readiness(backend))
}

struct Readiness(Arc<dyn MetadataStore>);

#[async_trait::async_trait]
impl livecast_core::ReadinessCheck for Readiness {
    fn name(&self) -> &str {
        "metadata-store"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.check().await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_checked() {
        assert!(validate_consumer("notification").is_ok());
        assert!(validate_consumer("").is_err());
        assert!(validate_consumer("a\nb").is_err());
        assert!(validate_consumer(&"c".repeat(MAX_CONSUMER_LEN + 1)).is_err());
    }

    #[tokio::test]
    async fn open_builds_the_embedded_store() {
        let dir = tempfile::tempdir().unwrap();
        let config = MetadataConfig::Embedded {
            path: dir.path().join("nested/metadata.sqlite3"),
        };
        let store = open(&config).await.unwrap();
        store.check().await.unwrap();
    }
}
