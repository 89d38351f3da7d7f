//! Configuration of the all-in-one process: embedded defaults under one data directory, each
//! backend replaceable by its production engine.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use livecast_blob::BlobConfig;
use livecast_bus::BusConfig;
use livecast_catalogue::PublicUrls;
use livecast_encode_worker::WorkerSettings;
use livecast_ingest::IngestSettings;
use livecast_metadata::MetadataConfig;
use livecast_notification::NotificationSettings;
use livecast_service::Secret;
use livecast_service::config::HttpConfig;
use livecast_streaming_edge::EdgeSettings;
use rand::RngCore;
use serde::Deserialize;

/// Everything `livecast` needs to start.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where the embedded backends keep their files and where a generated admin token is kept.
    pub data_dir: PathBuf,
    /// Every HTTP API: catalogue, ingest push, playback, notifications, probes.
    #[serde(default = "default_http")]
    pub http: HttpConfig,
    /// The catalogue's gRPC API, for services started outside this process.
    pub grpc_addr: SocketAddr,
    /// Where broadcasters push RTMP.
    pub rtmp_addr: SocketAddr,
    /// This region's name.
    pub region: String,
    /// The admin bearer token; generated and kept in the data directory when absent.
    pub admin_token: Option<Secret>,
    /// URLs handed to clients; derived from the listen addresses when absent.
    pub public_urls: Option<PublicUrls>,
    /// Blob store; a directory under `data_dir` when absent.
    pub blob: Option<BlobConfig>,
    /// Metadata store; a SQLite file under `data_dir` when absent.
    pub metadata: Option<MetadataConfig>,
    /// Event bus; in-process by default.
    pub bus: BusConfig,
    /// How ingest cuts and keeps streams.
    pub ingest: IngestSettings,
    /// How chunks are transcoded.
    pub worker: WorkerSettings,
    /// Run the encode worker in this process. False when separate `encode-worker` processes
    /// transcode (a fleet sharing this process's event bus and blob store).
    pub run_worker: bool,
    /// How the edge serves viewers.
    pub edge: EdgeSettings,
    /// How clients are notified (the data file and playback base are derived here).
    pub notification: NotificationSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from(".livecast"),
            http: default_http(),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            rtmp_addr: SocketAddr::from(([127, 0, 0, 1], 1935)),
            region: "local".into(),
            admin_token: None,
            public_urls: None,
            blob: None,
            metadata: None,
            bus: BusConfig::InProcess,
            ingest: IngestSettings::default(),
            worker: WorkerSettings::default(),
            run_worker: true,
            edge: EdgeSettings::default(),
            notification: NotificationSettings::default(),
        }
    }
}

/// HTTP defaults, with bodies large enough for pushed HLS segments.
fn default_http() -> HttpConfig {
    HttpConfig {
        max_body_bytes: IngestSettings::default().max_push_bytes,
        ..HttpConfig::default()
    }
}

impl Config {
    /// The blob store to open.
    pub fn blob(&self) -> BlobConfig {
        self.blob.clone().unwrap_or_else(|| BlobConfig::Local {
            dir: self.data_dir.join("blobs"),
        })
    }

    /// The metadata store to open.
    pub fn metadata(&self) -> MetadataConfig {
        self.metadata
            .clone()
            .unwrap_or_else(|| MetadataConfig::Embedded {
                path: self.data_dir.join("metadata.sqlite"),
            })
    }

    /// The URLs handed to clients, for the addresses actually bound.
    pub fn public_urls(&self, http: SocketAddr, rtmp: SocketAddr) -> PublicUrls {
        self.public_urls.clone().unwrap_or_else(|| PublicUrls {
            rtmp_base: format!("rtmp://{rtmp}/live"),
            hls_push_base: format!("http://{http}/ingest"),
            playback_base: format!("http://{http}/stream"),
        })
    }

    /// The admin token: configured, or read from `data_dir/admin-token`, or generated there.
    pub fn admin_token(&self) -> anyhow::Result<Secret> {
        if let Some(token) = &self.admin_token {
            return Ok(token.clone());
        }
        let path = self.data_dir.join("admin-token");
        if path.exists() {
            return Secret::read_file(&path)
                .with_context(|| format!("cannot read the admin token from {}", path.display()));
        }
        let mut bytes = [0u8; 24];
        rand::rng().fill_bytes(&mut bytes);
        let token = Secret::new(hex::encode(bytes));
        write_private(&path, token.expose())
            .with_context(|| format!("cannot write the admin token to {}", path.display()))?;
        Ok(token)
    }
}

/// Writes a file only the owner can read.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    std::io::Write::write_all(&mut options.open(path)?, format!("{contents}\n").as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_admin_token_is_kept_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config {
            data_dir: dir.path().to_path_buf(),
            ..Config::default()
        };
        let first = config.admin_token().unwrap();
        let second = config.admin_token().unwrap();
        assert_eq!(first, second);
        assert_eq!(first.expose().len(), 48);
        let configured = Config {
            admin_token: Some(Secret::new("given")),
            ..Config::default()
        };
        assert_eq!(configured.admin_token().unwrap().expose(), "given");
    }
}
