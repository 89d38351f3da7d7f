//! The production blob store: one bucket of an S3-compatible service, through `aws-sdk-s3`.
//!
//! Objects above a threshold go up as multipart uploads, which S3 makes visible only when the
//! upload completes, so readers never see a partial object either way. Create-if-absent is a
//! conditional `PUT` with `If-None-Match: *`. Every failure that means "the service cannot be
//! used right now" (unreachable, timed out, credentials refused, bucket missing, 5xx) becomes
//! [`BlobError::Unavailable`] with the endpoint and bucket in the message.

mod failure;
mod multipart;
mod settings;

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};
use bytes::Bytes;

use crate::{
    BlobError, BlobStore, ListedObject, ObjectMeta, check_range_shape, validate_key,
    validate_prefix,
};
use failure::{S3Failure, classify};
pub use settings::S3Settings;

/// The smallest part S3 accepts in a multipart upload (except the last one).
pub(crate) const MIN_PART_BYTES: u64 = 5 * 1024 * 1024;

/// The largest single `PUT` (and the largest part) S3 accepts.
pub(crate) const MAX_SINGLE_PUT_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// The readiness check never waits longer than this, whatever the operation timeout.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// A blob store in one S3 bucket.
#[derive(Clone)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
    region: String,
    /// "s3 endpoint URL, bucket NAME": put in front of every unavailability message.
    described: String,
    multipart_threshold: u64,
    operation_timeout: Duration,
}

impl fmt::Debug for S3BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3BlobStore")
            .field("backend", &self.described)
            .field("multipart_threshold", &self.multipart_threshold)
            .finish_non_exhaustive()
    }
}

impl S3BlobStore {
    /// Builds the client. Nothing is sent: an unreachable service or a missing bucket shows up
    /// in [`BlobStore::check`] and in every call after.
    pub fn new(settings: S3Settings) -> Result<Self, BlobError> {
        let threshold = settings.multipart_threshold_bytes;
        if !(MIN_PART_BYTES..=MAX_SINGLE_PUT_BYTES).contains(&threshold) {
            return Err(BlobError::invalid_config(format!(
                "multipart_threshold_bytes is {threshold}; S3 needs {MIN_PART_BYTES} to \
                 {MAX_SINGLE_PUT_BYTES}"
            )));
        }
        if settings.bucket.is_empty() {
            return Err(BlobError::invalid_config("the S3 bucket name is empty"));
        }
        if settings.max_attempts == 0 {
            return Err(BlobError::invalid_config("max_attempts must be at least 1"));
        }
        let described = format!(
            "s3 endpoint {}, bucket {}",
            settings.endpoint.as_deref().unwrap_or("AWS (default)"),
            settings.bucket
        );
        let client = settings::build_client(&settings);
        Ok(S3BlobStore {
            client,
            bucket: settings.bucket,
            region: settings.region,
            described,
            multipart_threshold: threshold,
            operation_timeout: settings.operation_timeout,
        })
    }

    /// The SDK client, for operations tooling and tests that need more than the port offers.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The bucket this store writes to.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket unless it exists; answers whether it created it. For tests and
    /// operations: the services never create buckets themselves.
    pub async fn create_bucket_if_missing(&self) -> Result<bool, BlobError> {
        match self.client.head_bucket().bucket(&self.bucket).send().await {
            Ok(_) => return Ok(false),
            Err(error) => match classify(&error) {
                S3Failure::NotFound | S3Failure::NoSuchBucket => {}
                failure => return Err(self.backend_error("check the bucket", failure)),
            },
        }
        let mut request = self.client.create_bucket().bucket(&self.bucket);
        // us-east-1 is the default location and must not be named.
        if self.region != "us-east-1" {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(self.region.as_str()))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|e| e.is_bucket_already_owned_by_you()) =>
            {
                Ok(false)
            }
            Err(error) => Err(self.backend_error("create the bucket", classify(&error))),
        }
    }

    /// Turns a failure that is not about one key into a [`BlobError`].
    fn backend_error(&self, action: &str, failure: S3Failure) -> BlobError {
        match failure {
            S3Failure::NoSuchBucket | S3Failure::NotFound => BlobError::unavailable(format!(
                "{}: cannot {action}: the bucket does not exist",
                self.described
            )),
            S3Failure::Unavailable(detail) => {
                BlobError::unavailable(format!("{}: cannot {action}: {detail}", self.described))
            }
            S3Failure::InvalidRange
            | S3Failure::PreconditionFailed
            | S3Failure::ConditionalConflict => BlobError::other(format!(
                "{}: cannot {action}: unexpected {failure:?}",
                self.described
            )),
            S3Failure::Other(detail) => {
                BlobError::other(format!("{}: cannot {action}: {detail}", self.described))
            }
        }
    }

    /// Turns a failure of a call about `key` into a [`BlobError`].
    fn key_error(&self, action: &str, key: &str, failure: S3Failure) -> BlobError {
        match failure {
            S3Failure::NotFound => BlobError::not_found(key),
            other => self.backend_error(&format!("{action} {key:?}"), other),
        }
    }

    async fn put_single(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        let len = body.len() as i64;
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(len)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| self.key_error("write", key, classify(&e)))?;
        Ok(())
    }

    async fn collect_body(&self, key: &str, body: ByteStream) -> Result<Bytes, BlobError> {
        body.collect()
            .await
            .map(|data| data.into_bytes())
            .map_err(|e| {
                BlobError::unavailable(format!("{}: reading {key:?} failed: {e}", self.described))
            })
    }
}

/// The HTTP `Range` header for `range`; an end past any real object size becomes an open end,
/// since servers refuse numbers beyond 2^63.
fn range_header(range: &Range<u64>) -> String {
    if range.end > i64::MAX as u64 {
        format!("bytes={}-", range.start)
    } else {
        format!("bytes={}-{}", range.start, range.end - 1)
    }
}

/// Size and date of an S3 object.
fn meta(size: Option<i64>, modified: Option<&aws_sdk_s3::primitives::DateTime>) -> ObjectMeta {
    ObjectMeta {
        size: size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
        last_modified_ms: modified.and_then(|d| d.to_millis().ok()).unwrap_or(0),
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        validate_key(key)?;
        if body.len() as u64 > self.multipart_threshold {
            self.put_multipart(key, body).await
        } else {
            self.put_single(key, body).await
        }
    }

    /// Always one conditional `PUT` (up to 5 GiB), since a conditional multipart completion is
    /// not supported by every S3-compatible server.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, BlobError> {
        validate_key(key)?;
        // S3 answers 409 while another conditional write of the key is in flight; the answer
        // after that one finishes is the real one.
        let mut conflicts = 0;
        loop {
            let sent = self
                .client
                .put_object()
                .bucket(&self.bucket)
                .key(key)
                .if_none_match("*")
                .content_length(body.len() as i64)
                .body(ByteStream::from(body.clone()))
                .send()
                .await;
            let error = match sent {
                Ok(_) => return Ok(true),
                Err(error) => error,
            };
            match classify(&error) {
                S3Failure::PreconditionFailed => return Ok(false),
                S3Failure::ConditionalConflict if conflicts < 3 => {
                    conflicts += 1;
                    tokio::time::sleep(Duration::from_millis(100 * conflicts)).await;
                }
                failure => return Err(self.key_error("create", key, failure)),
            }
        }
    }

    async fn get(&self, key: &str) -> Result<Bytes, BlobError> {
        validate_key(key)?;
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.key_error("read", key, classify(&e)))?;
        self.collect_body(key, object.body).await
    }

    async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Bytes, BlobError> {
        validate_key(key)?;
        check_range_shape(key, &range)?;
        let invalid = |size| BlobError::InvalidRange {
            key: key.to_owned(),
            range: range.clone(),
            size,
        };
        let object = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .range(range_header(&range))
            .send()
            .await
            .map_err(|e| match classify(&e) {
                S3Failure::InvalidRange => invalid(None),
                failure => self.key_error("read", key, failure),
            })?;
        let ranged = object.content_range().is_some();
        let body = self.collect_body(key, object.body).await?;
        if ranged {
            return Ok(body);
        }
        // A server that ignores `Range` sends the whole object: cut it here.
        let size = body.len() as u64;
        if range.start >= size {
            return Err(invalid(Some(size)));
        }
        Ok(body.slice(range.start as usize..range.end.min(size) as usize))
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectMeta>, BlobError> {
        validate_key(key)?;
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(head) => Ok(Some(meta(head.content_length(), head.last_modified()))),
            Err(error) => match classify(&error) {
                S3Failure::NotFound => Ok(None),
                failure => Err(self.key_error("inspect", key, failure)),
            },
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, BlobError> {
        validate_prefix(prefix)?;
        let mut found = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .set_prefix((!prefix.is_empty()).then(|| prefix.to_owned()))
                .set_continuation_token(token.take())
                .send()
                .await
                .map_err(|e| self.backend_error(&format!("list {prefix:?}"), classify(&e)))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                let meta = meta(object.size(), object.last_modified());
                found.push(ListedObject {
                    key: key.to_owned(),
                    size: meta.size,
                    last_modified_ms: meta.last_modified_ms,
                });
            }
            match page.next_continuation_token() {
                Some(next) if page.is_truncated().unwrap_or(false) => token = Some(next.to_owned()),
                _ => break,
            }
        }
        found.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(found)
    }

    async fn delete(&self, key: &str) -> Result<(), BlobError> {
        validate_key(key)?;
        match self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(error) => match classify(&error) {
                S3Failure::NotFound => Ok(()),
                failure => Err(self.key_error("delete", key, failure)),
            },
        }
    }

    async fn check(&self) -> Result<(), BlobError> {
        let timeout = self.operation_timeout.min(CHECK_TIMEOUT);
        self.client
            .head_bucket()
            .bucket(&self.bucket)
            .customize()
            .config_override(
                aws_sdk_s3::Config::builder()
                    .timeout_config(TimeoutConfig::builder().operation_timeout(timeout).build()),
            )
            .send()
            .await
            .map_err(|e| self.backend_error("reach the bucket", classify(&e)))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn thresholds_outside_what_s3_accepts_are_refused() {
        let mut settings = S3Settings::new(None, "b", "id", Secret::new("s"));
        settings.multipart_threshold_bytes = MIB;
        assert!(matches!(
            S3BlobStore::new(settings),
            Err(BlobError::InvalidConfig { .. })
        ));
    }

    #[test]
    fn debug_names_the_backend_but_not_the_secret() {
        let settings = S3Settings::new(
            Some("http://127.0.0.1:1".into()),
            "media",
            "id",
            Secret::new("hunter2"),
        );
        assert!(!format!("{settings:?}").contains("hunter2"));
        let store = S3BlobStore::new(settings).unwrap();
        let debug = format!("{store:?}");
        assert!(
            debug.contains("http://127.0.0.1:1") && debug.contains("media"),
            "{debug}"
        );
        assert!(!debug.contains("hunter2"));
    }
}
