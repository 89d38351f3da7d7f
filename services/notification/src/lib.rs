//! The notification service: tells clients when a stream goes live.
//!
//! This release serves probes and metrics over its backends; SSE, polling and webhooks arrive with the notification work (see docs/status.md).
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::Router;
use livecast_bus::BusConfig;
use livecast_metadata::MetadataConfig;
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
    /// Where delivery state is recorded.
    pub metadata: MetadataConfig,
    /// Where events travel.
    pub bus: BusConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig::on(SocketAddr::from(([127, 0, 0, 1], 8085))),
            region: "local".into(),
            metadata: MetadataConfig::Embedded {
                path: PathBuf::from("data/notification.sqlite"),
            },
            bus: BusConfig::InProcess,
        }
    }
}

/// Runs the service on an already-bound listener until `shutdown`.
pub async fn run(config: Config, http: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let store = livecast_metadata::open(&config.metadata)
        .await
        .context("cannot open the metadata store")?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;
    let readiness = Readiness::new()
        .with(livecast_metadata::readiness_check(store.clone()))
        .with(livecast_bus::readiness_check(bus.clone()));
    livecast_service::http::serve_service(http, Router::new(), readiness, &config.http, shutdown)
        .await
}
