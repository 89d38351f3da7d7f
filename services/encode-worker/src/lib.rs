//! The encode worker: transcodes source chunks into the ABR ladder as CMAF segments.
//!
//! This release serves probes and metrics over its backends; transcoding arrives with the encode-worker work (see docs/status.md).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::Router;
use livecast_blob::BlobConfig;
use livecast_bus::BusConfig;
use livecast_service::config::HttpConfig;
use livecast_service::{Readiness, Shutdown};
use serde::Deserialize;
use tokio::net::TcpListener;

/// Everything the service needs to start.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Probes and metrics.
    pub http: HttpConfig,
    /// This region's name.
    pub region: String,
    /// Where media objects are stored.
    pub blob: BlobConfig,
    /// Where events travel.
    pub bus: BusConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig::on(SocketAddr::from(([127, 0, 0, 1], 8083))),
            region: "local".into(),
            blob: BlobConfig::Local {
                dir: PathBuf::from("data/blobs"),
            },
            bus: BusConfig::InProcess,
        }
    }
}

/// Runs the service on an already-bound listener until `shutdown`.
pub async fn run(config: Config, http: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let blob = livecast_blob::open(&config.blob)
        .await
        .context("cannot open the blob store")?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;
    let readiness = Readiness::new()
        .with(livecast_blob::readiness_check(blob.clone()))
        .with(livecast_bus::readiness_check(bus.clone()));
    livecast_service::http::serve_service(http, Router::new(), readiness, &config.http, shutdown)
        .await
}
