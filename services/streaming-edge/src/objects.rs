//! Init and media segments served from a bounded in-memory cache in front of an origin.
//!
//! Concurrent misses for one object are coalesced: the first request reads the origin, the
//! others wait for its answer, so a hundred viewers asking at once cost one origin read.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use livecast_blob::{BlobError, BlobStore};
use livecast_core::{Error, ErrorKind};
use moka::future::Cache;
use sha2::{Digest, Sha256};

use crate::metrics;

/// Where objects come from on a cache miss: this region's blob store
/// ([`RegionalOrigin`]), and behind it other regions
/// ([`RegionChainOrigin`](crate::regions::RegionChainOrigin)).
#[async_trait::async_trait]
pub trait ObjectOrigin: Send + Sync + fmt::Debug + 'static {
    /// The whole object stored under `key`.
    async fn fetch(&self, key: &str) -> Result<Bytes, Error>;

    /// The object from this region only (what another region's edge is given).
    async fn fetch_local(&self, key: &str) -> Result<Bytes, Error> {
        self.fetch(key).await
    }
}

/// The blob store of this region.
#[derive(Debug, Clone)]
pub struct RegionalOrigin {
    blob: Arc<dyn BlobStore>,
}

impl RegionalOrigin {
    /// Reads objects from `blob`.
    pub fn new(blob: Arc<dyn BlobStore>) -> Self {
        RegionalOrigin { blob }
    }
}

#[async_trait::async_trait]
impl ObjectOrigin for RegionalOrigin {
    async fn fetch(&self, key: &str) -> Result<Bytes, Error> {
        self.blob.get(key).await.map_err(|error| match error {
            // Only indexed objects are asked for, so a missing one is the origin's fault
            // (replication lag, a lost write), not the viewer's: retrying later may work.
            BlobError::NotFound { .. } => Error::unavailable(format!(
                "object {key} is indexed but not in the blob store yet"
            )),
            other => Error::from(other),
        })
    }
}

/// One cached object with its validator.
#[derive(Debug, Clone)]
pub struct CachedObject {
    /// The bytes.
    pub body: Bytes,
    /// A strong entity tag derived from the bytes (quoted, as sent in `ETag`).
    pub etag: Arc<str>,
}

/// A byte-bounded cache of objects in front of an [`ObjectOrigin`].
#[derive(Clone)]
pub struct ObjectCache {
    cache: Cache<String, CachedObject>,
    origin: Arc<dyn ObjectOrigin>,
    fetches: Arc<AtomicU64>,
}

impl fmt::Debug for ObjectCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectCache")
            .field("origin", &self.origin)
            .field("weighted_bytes", &self.cache.weighted_size())
            .field("origin_fetches", &self.origin_fetches())
            .finish()
    }
}

impl ObjectCache {
    /// A cache holding at most about `capacity_bytes` of objects from `origin`.
    pub fn new(origin: Arc<dyn ObjectOrigin>, capacity_bytes: u64) -> Self {
        let cache = Cache::builder()
            .max_capacity(capacity_bytes)
            .weigher(|key: &String, object: &CachedObject| {
                let bytes = key.len() + object.body.len() + object.etag.len();
                u32::try_from(bytes).unwrap_or(u32::MAX)
            })
            .build();
        ObjectCache {
            cache,
            origin,
            fetches: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The object under `key`, from the cache or, once for all concurrent askers, the origin.
    pub async fn get(&self, key: &str) -> Result<CachedObject, Error> {
        if let Some(hit) = self.cache.get(key).await {
            metrics::cache_hit();
            return Ok(hit);
        }
        let entry = self
            .cache
            .entry_by_ref(key)
            .or_try_insert_with(self.fill(key))
            .await
            .map_err(|shared: Arc<Error>| (*shared).clone())?;
        if !entry.is_fresh() {
            metrics::cache_hit();
        }
        Ok(entry.into_value())
    }

    async fn fill(&self, key: &str) -> Result<CachedObject, Error> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        metrics::origin_fetch();
        with_entity_tag(self.origin.fetch(key).await?).await
    }

    /// The object from the cache or this region's store, never pulled from another region;
    /// not cached on a miss (the asking region keeps its own copy).
    pub async fn get_local(&self, key: &str) -> Result<CachedObject, Error> {
        if let Some(hit) = self.cache.get(key).await {
            metrics::cache_hit();
            return Ok(hit);
        }
        with_entity_tag(self.origin.fetch_local(key).await?).await
    }

    /// How many times this cache read its origin (each coalesced miss counts once).
    pub fn origin_fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

/// `body` with its entity tag. Hashing a segment takes a few milliseconds: off the reactor.
async fn with_entity_tag(body: Bytes) -> Result<CachedObject, Error> {
    let hashed = body.clone();
    let etag = tokio::task::spawn_blocking(move || entity_tag(&hashed))
        .await
        .map_err(|e| Error::new(ErrorKind::Internal, format!("hashing failed: {e}")))?;
    Ok(CachedObject {
        body,
        etag: etag.into(),
    })
}

/// A strong entity tag for `body`: the first 128 bits of its SHA-256, quoted.
pub fn entity_tag(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    format!("\"{}\"", hex::encode(&digest[..16]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug, Default)]
    struct CountingOrigin {
        asked: Mutex<Vec<String>>,
    }

    #[async_trait::async_trait]
    impl ObjectOrigin for CountingOrigin {
        async fn fetch(&self, key: &str) -> Result<Bytes, Error> {
            self.asked.lock().unwrap().push(key.to_owned());
            tokio::task::yield_now().await;
            if key == "missing" {
                return Err(Error::unavailable("missing"));
            }
            Ok(Bytes::from(key.to_owned()))
        }
    }

    #[tokio::test]
    async fn concurrent_misses_share_one_fetch_and_errors_are_not_cached() {
        let origin = Arc::new(CountingOrigin::default());
        let cache = ObjectCache::new(origin.clone(), 1 << 20);
        let gets = (0..20).map(|_| cache.get("a"));
        for object in futures::future::join_all(gets).await {
            let object = object.unwrap();
            assert_eq!(object.body, Bytes::from_static(b"a"));
            assert_eq!(object.etag.as_ref(), entity_tag(b"a"));
        }
        assert_eq!(cache.origin_fetches(), 1);
        assert!(cache.get("missing").await.is_err());
        assert!(cache.get("missing").await.is_err());
        assert_eq!(cache.origin_fetches(), 3);
        assert_eq!(origin.asked.lock().unwrap().len(), 3);
    }
}
