//! The blob store port of Livecast: where source chunks and CMAF segments live.
//!
//! One trait, [`BlobStore`], held as `Arc<dyn BlobStore>`, with two implementations that pass
//! the same conformance suite (`tests/conformance`):
//! - [`LocalBlobStore`], a directory on local disk: the embedded default;
//! - [`S3BlobStore`], any S3-compatible service through `aws-sdk-s3`: production.
//!
//! [`open`] builds the one a [`BlobConfig`] names. Every key is checked by [`validate_key`]
//! before any backend sees it, so a key can never escape the store.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod config;
mod error;
mod key;
mod local;
mod s3;

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;

pub use config::{BlobConfig, DEFAULT_MULTIPART_THRESHOLD_BYTES, S3Config, open};
pub use error::BlobError;
pub use key::{MAX_KEY_LEN, MAX_SEGMENT_LEN, validate_key, validate_prefix};
pub use livecast_core::Secret;
pub use local::LocalBlobStore;
pub use s3::{S3BlobStore, S3Settings};

/// What a store knows about one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Size of the object in bytes.
    pub size: u64,
    /// When the object was last written, in milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

/// One object found by [`BlobStore::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The object's full key.
    pub key: String,
    /// Size of the object in bytes.
    pub size: u64,
    /// When the object was last written, in milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
}

impl ListedObject {
    /// The object's metadata without its key.
    pub fn meta(&self) -> ObjectMeta {
        ObjectMeta {
            size: self.size,
            last_modified_ms: self.last_modified_ms,
        }
    }
}

/// A store of immutable-looking objects addressed by `/`-separated keys such as
/// `hls/s1/720p/3.m4s`. Every method validates its key first and answers
/// [`BlobError::InvalidKey`] without touching the backend when the key is unacceptable.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync + std::fmt::Debug + 'static {
    /// Writes the whole object atomically (readers never see a partial object), replacing any
    /// object already stored under `key`.
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError>;

    /// Creates the object only if no object is stored under `key`. Answers `Ok(true)` when it
    /// wrote, `Ok(false)` when an object existed already (which is left as it was).
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError>;

    /// Reads the whole object; [`BlobError::NotFound`] when there is none.
    async fn get(&self, key: &str) -> Result<Bytes, BlobError>;

    /// Reads the bytes `range` of the object. The end is clamped to the object's size; an empty
    /// or reversed range, or a start at or beyond the size, is [`BlobError::InvalidRange`]
    /// (as an HTTP `Range` request would be unsatisfiable).
    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, BlobError>;

    /// The object's size and modification time, or `None` when there is no object.
    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, BlobError>;

    /// Every object whose key starts with `prefix` (plain string prefix; `""` lists all), sorted
    /// by key. Backends paginate internally; the whole listing is held in memory, so callers
    /// list narrow prefixes such as one stream's.
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, BlobError>;

    /// Deletes the object; deleting a key with no object is `Ok`.
    async fn delete(&self, key: &str) -> Result<(), BlobError>;

    /// Answers `Ok` when the backend is reachable and usable (for `/readyz`), otherwise
    /// [`BlobError::Unavailable`] naming the backend. Bounded in time.
    async fn check(&self) -> Result<(), BlobError>;
}

/// Checks a range before any backend work: it must be non-empty and not reversed.
pub(crate) fn check_range_shape(key: &str, range: &Range<u64>) -> Result<(), BlobError> {
    if range.start >= range.end {
        return Err(BlobError::InvalidRange {
            key: key.to_owned(),
            range: range.clone(),
            size: None,
        });
    }
    Ok(())
}

/// The `/readyz` check of a blob-store: it answers when [`BlobStore::check`] does.
pub fn readiness_check(backend: Arc<dyn BlobStore>) -> Arc<dyn livecast_core::ReadinessCheck> {
    Arc::new(Readiness(backend))
}

struct Readiness(Arc<dyn BlobStore>);

#[async_trait::async_trait]
impl livecast_core::ReadinessCheck for Readiness {
    fn name(&self) -> &str {
        "blob-store"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.check().await.map_err(|e| e.to_string())
    }
}
