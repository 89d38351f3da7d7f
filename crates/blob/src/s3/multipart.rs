//! Multipart upload of large objects: parts go up a few at a time and the object appears only
//! when the upload completes; a failed upload is aborted so no parts are left behind.

use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use tracing::{debug, warn};

use super::failure::classify;
use super::{MIN_PART_BYTES, S3BlobStore};
use crate::BlobError;

/// S3 allows at most this many parts in one upload.
const MAX_PARTS: u64 = 10_000;

/// Parts uploaded at the same time for one object.
const PART_CONCURRENCY: usize = 4;

impl S3BlobStore {
    pub(super) async fn put_multipart(&self, key: &str, body: Bytes) -> Result<(), BlobError> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|e| self.key_error("start a multipart upload of", key, classify(&e)))?;
        let upload_id = created
            .upload_id()
            .ok_or_else(|| {
                BlobError::other(format!("{}: no upload id for {key:?}", self.described))
            })?
            .to_owned();
        let part_size = part_size(body.len() as u64, self.multipart_threshold);
        debug!(key, bytes = body.len(), part_size, "multipart upload");
        match self.upload_parts(key, &upload_id, &body, part_size).await {
            Ok(()) => Ok(()),
            Err(error) => {
                // Without an abort the parts would be kept (and billed) until a lifecycle rule
                // removes them.
                if let Err(abort) = self
                    .client
                    .abort_multipart_upload()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(&upload_id)
                    .send()
                    .await
                {
                    warn!(key, upload_id, error = %aws_sdk_s3::error::DisplayErrorContext(&abort), "cannot abort multipart upload");
                }
                Err(error)
            }
        }
    }

    async fn upload_parts(
        &self,
        key: &str,
        upload_id: &str,
        body: &Bytes,
        part_size: u64,
    ) -> Result<(), BlobError> {
        let len = body.len() as u64;
        let uploads = (0..len.div_ceil(part_size)).map(|index| {
            let start = index * part_size;
            let end = (start + part_size).min(len);
            let chunk = body.slice(start as usize..end as usize);
            let part_number = index as i32 + 1;
            async move {
                let uploaded = self
                    .client
                    .upload_part()
                    .bucket(&self.bucket)
                    .key(key)
                    .upload_id(upload_id)
                    .part_number(part_number)
                    .content_length((end - start) as i64)
                    .body(ByteStream::from(chunk))
                    .send()
                    .await
                    .map_err(|e| self.key_error("upload a part of", key, classify(&e)))?;
                Ok::<_, BlobError>(
                    CompletedPart::builder()
                        .part_number(part_number)
                        .set_e_tag(uploaded.e_tag().map(str::to_owned))
                        .build(),
                )
            }
        });
        let parts: Vec<CompletedPart> = futures::stream::iter(uploads)
            .buffered(PART_CONCURRENCY)
            .try_collect()
            .await?;
        self.client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await
            .map_err(|e| self.key_error("complete the multipart upload of", key, classify(&e)))?;
        Ok(())
    }
}

/// The part size for an object of `len` bytes: the threshold, grown if the object would need
/// more than S3's 10,000 parts.
fn part_size(len: u64, threshold: u64) -> u64 {
    threshold.max(len.div_ceil(MAX_PARTS)).max(MIN_PART_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1024 * 1024;

    #[test]
    fn parts_are_the_threshold_unless_there_would_be_too_many() {
        assert_eq!(part_size(12 * MIB, 5 * MIB), 5 * MIB);
        assert_eq!(part_size(100 * MIB, 8 * MIB), 8 * MIB);
        let huge = 200_000 * MIB;
        assert!(huge.div_ceil(part_size(huge, 8 * MIB)) <= MAX_PARTS);
    }
}
