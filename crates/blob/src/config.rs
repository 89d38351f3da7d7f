//! Which blob store a service uses, as read from its configuration, and [`open`] to build it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use livecast_core::Secret;

use crate::{BlobError, BlobStore, LocalBlobStore, S3BlobStore, S3Settings};

/// Objects larger than this go up as S3 multipart uploads unless configured otherwise.
pub const DEFAULT_MULTIPART_THRESHOLD_BYTES: u64 = 8 * 1024 * 1024;

/// Signing region when none is configured.
pub(crate) const DEFAULT_REGION: &str = "us-east-1";

/// The blob store of a service: `kind = "local"` or `kind = "s3"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BlobConfig {
    /// A directory on local disk (the embedded default).
    Local {
        /// The directory; created if missing.
        dir: PathBuf,
    },
    /// A bucket of an S3-compatible service.
    S3(S3Config),
}

/// Where and how to reach the S3 bucket. `Debug` never shows the secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Endpoint URL such as `http://minio:9000`; unset means AWS.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The bucket; it must exist (the services never create it).
    pub bucket: String,
    /// Signing region.
    #[serde(default = "default_region")]
    pub region: String,
    /// Static access key id.
    #[serde(default)]
    pub access_key_id: Option<String>,
    /// Static secret access key; or use `secret_access_key_file`.
    #[serde(default)]
    pub secret_access_key: Option<Secret>,
    /// A file holding the secret access key (a mounted Kubernetes secret).
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// Objects larger than this are uploaded in parts (default 8 MiB, at least 5 MiB).
    #[serde(default)]
    pub multipart_threshold_bytes: Option<u64>,
    /// Connection timeout in milliseconds (default 2000).
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Limit on one operation, retries included, in milliseconds (default 30000).
    #[serde(default)]
    pub operation_timeout_ms: Option<u64>,
}

fn default_region() -> String {
    DEFAULT_REGION.to_owned()
}

impl BlobConfig {
    /// A local-directory store at `dir`.
    pub fn local(dir: impl Into<PathBuf>) -> Self {
        BlobConfig::Local { dir: dir.into() }
    }
}

impl S3Config {
    /// Resolves the secret (reading its file if so configured) and applies the defaults.
    pub async fn settings(&self) -> Result<S3Settings, BlobError> {
        let secret = match (&self.secret_access_key, &self.secret_access_key_file) {
            (Some(_), Some(_)) => {
                return Err(BlobError::invalid_config(
                    "set secret_access_key or secret_access_key_file, not both",
                ));
            }
            (Some(secret), None) => secret.clone(),
            (None, Some(path)) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || Secret::read_file(&path).map_err(|e| (path, e)))
                    .await
                    .map_err(|e| {
                        BlobError::invalid_config(format!("secret file read failed: {e}"))
                    })?
                    .map_err(|(path, e)| {
                        BlobError::invalid_config(format!(
                            "cannot read secret file {}: {e}",
                            path.display()
                        ))
                    })?
            }
            (None, None) => {
                return Err(BlobError::invalid_config(
                    "the S3 blob store needs secret_access_key or secret_access_key_file",
                ));
            }
        };
        let Some(access_key_id) = self.access_key_id.clone().filter(|id| !id.is_empty()) else {
            return Err(BlobError::invalid_config(
                "the S3 blob store needs access_key_id",
            ));
        };
        let mut settings =
            S3Settings::new(self.endpoint.clone(), &self.bucket, access_key_id, secret);
        settings.region = self.region.clone();
        if let Some(threshold) = self.multipart_threshold_bytes {
            settings.multipart_threshold_bytes = threshold;
        }
        if let Some(ms) = self.connect_timeout_ms {
            settings.connect_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = self.operation_timeout_ms {
            settings.operation_timeout = Duration::from_millis(ms);
        }
        Ok(settings)
    }
}

/// Builds the store `config` names. A local store creates its directory; an S3 store only
/// builds its client (it neither contacts the service nor creates the bucket): call
/// [`BlobStore::check`] to find out whether it is usable.
pub async fn open(config: &BlobConfig) -> Result<Arc<dyn BlobStore>, BlobError> {
    match config {
        BlobConfig::Local { dir } => Ok(Arc::new(LocalBlobStore::open(dir.clone()).await?)),
        BlobConfig::S3(s3) => Ok(Arc::new(S3BlobStore::new(s3.settings().await?)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_and_s3_configs_deserialize_with_defaults() {
        let local: BlobConfig =
            serde_json::from_str(r#"{"kind": "local", "dir": "/var/lib/livecast"}"#).unwrap();
        assert_eq!(local, BlobConfig::local("/var/lib/livecast"));

        let s3: BlobConfig = serde_json::from_str(
            r#"{"kind": "s3", "endpoint": "http://127.0.0.1:9000", "bucket": "media",
                "access_key_id": "id", "secret_access_key": "hunter2"}"#,
        )
        .unwrap();
        let BlobConfig::S3(s3) = s3 else {
            panic!("not s3: {s3:?}")
        };
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.secret_access_key, Some(Secret::new("hunter2")));
        assert_eq!(s3.multipart_threshold_bytes, None);
    }

    #[test]
    fn debug_redacts_the_secret() {
        let config: BlobConfig = serde_json::from_str(
            r#"{"kind": "s3", "bucket": "media", "secret_access_key": "hunter2"}"#,
        )
        .unwrap();
        let debug = format!("{config:?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert!(debug.contains("[redacted]"), "{debug}");
    }

    #[test]
    fn a_misspelt_s3_field_is_an_error() {
        let parsed = serde_json::from_str::<BlobConfig>(
            r#"{"kind": "s3", "bucket": "media", "secret_acess_key": "x"}"#,
        );
        assert!(parsed.is_err());
        let parsed =
            serde_json::from_str::<BlobConfig>(r#"{"kind": "local", "dir": "/x", "extra": 1}"#);
        assert!(parsed.is_err());
        let parsed = serde_json::from_str::<BlobConfig>(r#"{"kind": "ftp", "dir": "/x"}"#);
        assert!(parsed.is_err());
    }
}
