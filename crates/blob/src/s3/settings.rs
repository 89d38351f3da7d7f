//! The resolved settings of the S3 store and the SDK client built from them.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::config::retry::RetryConfig;
use aws_sdk_s3::config::timeout::TimeoutConfig;
use aws_sdk_s3::config::{
    BehaviorVersion, Credentials, Region, RequestChecksumCalculation, ResponseChecksumValidation,
};
use aws_smithy_http_client::tls;

use crate::Secret;

/// Everything the S3 store needs, already resolved (the secret read from its file, defaults
/// applied). Build it from a [`crate::BlobConfig`] with [`crate::open`], or directly in tests.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// Endpoint URL such as `http://127.0.0.1:9000`; `None` means AWS itself. A custom endpoint
    /// is addressed path-style (`ENDPOINT/BUCKET/KEY`), AWS virtual-hosted style.
    pub endpoint: Option<String>,
    /// The bucket that holds every object of this store.
    pub bucket: String,
    /// Signing region.
    pub region: String,
    /// Static access key id.
    pub access_key_id: String,
    /// Static secret access key.
    pub secret_access_key: Secret,
    /// Objects strictly larger than this go up as multipart uploads, in parts of this size;
    /// at least 5 MiB (S3's smallest part) and at most 5 GiB (its largest single `PUT`).
    pub multipart_threshold_bytes: u64,
    /// How long to wait for a TCP (and TLS) connection.
    pub connect_timeout: Duration,
    /// Limit on one whole operation, retries included.
    pub operation_timeout: Duration,
    /// Attempts per operation, the first one included.
    pub max_attempts: u32,
}

impl S3Settings {
    /// Settings with the defaults: region `us-east-1`, 8 MiB multipart threshold, 2 s connect
    /// timeout, 30 s operation timeout, 3 attempts.
    pub fn new(
        endpoint: Option<String>,
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: Secret,
    ) -> Self {
        S3Settings {
            endpoint,
            bucket: bucket.into(),
            region: crate::config::DEFAULT_REGION.to_owned(),
            access_key_id: access_key_id.into(),
            secret_access_key,
            multipart_threshold_bytes: crate::DEFAULT_MULTIPART_THRESHOLD_BYTES,
            connect_timeout: Duration::from_secs(2),
            operation_timeout: Duration::from_secs(30),
            max_attempts: 3,
        }
    }
}

/// The SDK client for `settings`: static credentials, the configured endpoint (path-style),
/// short connect timeout, bounded operations and a few quick retries.
pub(super) fn build_client(settings: &S3Settings) -> Client {
    let credentials = Credentials::new(
        settings.access_key_id.clone(),
        settings.secret_access_key.expose(),
        None,
        None,
        "livecast-config",
    );
    // rustls on ring: TLS for AWS, plain HTTP for a local endpoint, no aws-lc build.
    let http_client = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
    let mut config = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(settings.region.clone()))
        .credentials_provider(credentials)
        .http_client(http_client)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(settings.connect_timeout)
                .operation_timeout(settings.operation_timeout)
                .build(),
        )
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(settings.max_attempts)
                .with_initial_backoff(Duration::from_millis(100))
                .with_max_backoff(Duration::from_secs(2)),
        )
        // Checksums only where S3 requires them: some S3-compatible servers reject the
        // streaming-trailer checksums the SDK would otherwise add to every upload.
        .request_checksum_calculation(RequestChecksumCalculation::WhenRequired)
        .response_checksum_validation(ResponseChecksumValidation::WhenRequired);
    if let Some(endpoint) = &settings.endpoint {
        config = config.endpoint_url(endpoint).force_path_style(true);
    }
    Client::from_conf(config.build())
}
