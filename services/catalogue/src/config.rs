//! Configuration of the catalogue service.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use livecast_bus::BusConfig;
use livecast_core::StreamId;
use livecast_metadata::MetadataConfig;
use livecast_service::Secret;
use livecast_service::config::HttpConfig;
use serde::Deserialize;

use crate::keys::StreamKey;

/// Everything the catalogue needs to start.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// REST API and probes.
    pub http: HttpConfig,
    /// gRPC API for the other services.
    pub grpc_addr: SocketAddr,
    /// This region's name.
    pub region: String,
    /// The admin bearer token.
    pub admin_token: Option<Secret>,
    /// A file holding the admin bearer token (a mounted Kubernetes secret).
    pub admin_token_file: Option<PathBuf>,
    /// How URLs handed to clients are built.
    pub public_urls: PublicUrls,
    /// Where streams and segments are recorded.
    pub metadata: MetadataConfig,
    /// Where lifecycle and segment events travel.
    pub bus: BusConfig,
    /// Partitions of each topic when the catalogue creates it.
    pub topic_partitions: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig::on(SocketAddr::from(([127, 0, 0, 1], 8081))),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            region: "local".into(),
            admin_token: None,
            admin_token_file: None,
            public_urls: PublicUrls::default(),
            metadata: MetadataConfig::Embedded {
                path: PathBuf::from("data/metadata.sqlite"),
            },
            bus: BusConfig::InProcess,
            topic_partitions: 8,
        }
    }
}

impl Config {
    /// The admin token from `admin_token` or `admin_token_file`; one of them is required.
    pub fn admin_token(&self) -> anyhow::Result<Secret> {
        match (&self.admin_token, &self.admin_token_file) {
            (Some(token), _) => Ok(token.clone()),
            (None, Some(path)) => Secret::read_file(path)
                .with_context(|| format!("cannot read admin_token_file {}", path.display())),
            (None, None) => anyhow::bail!(
                "no admin token: set LIVECAST_ADMIN_TOKEN or LIVECAST_ADMIN_TOKEN_FILE"
            ),
        }
    }
}

/// The public addresses that ingest and playback URLs are built from.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PublicUrls {
    /// RTMP application URL; the key is appended (`rtmp://HOST/live`).
    pub rtmp_base: String,
    /// HLS push base; `/{key}/index.m3u8` is appended.
    pub hls_push_base: String,
    /// Playback base; `/{id}/master.m3u8` is appended.
    pub playback_base: String,
}

impl Default for PublicUrls {
    fn default() -> Self {
        PublicUrls {
            rtmp_base: "rtmp://127.0.0.1:1935/live".into(),
            hls_push_base: "http://127.0.0.1:8080/ingest".into(),
            playback_base: "http://127.0.0.1:8080/stream".into(),
        }
    }
}

impl PublicUrls {
    /// Where a broadcaster pushes RTMP.
    pub fn rtmp_url(&self, key: &StreamKey) -> String {
        format!("{}/{}", self.rtmp_base.trim_end_matches('/'), key.expose())
    }

    /// Where a broadcaster pushes HLS.
    pub fn hls_push_url(&self, key: &StreamKey) -> String {
        format!(
            "{}/{}/index.m3u8",
            self.hls_push_base.trim_end_matches('/'),
            key.expose()
        )
    }

    /// Where viewers play a stream.
    pub fn playback_url(&self, id: &StreamId) -> String {
        format!(
            "{}/{id}/master.m3u8",
            self.playback_base.trim_end_matches('/')
        )
    }
}
