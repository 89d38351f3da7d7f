//! The streaming edge: serves HLS to viewers in its region.
//!
//! - Playlists come from the [`SegmentIndex`], kept in memory, fed by `livecast.segments`,
//!   `livecast.parts` (Low-Latency HLS) and `livecast.stream-events`, and filled from the catalogue (a [`PlaybackDirectory`]) the
//!   first time a stream is asked for.
//! - Init and media segments come from the regional blob store through a bounded in-memory
//!   cache that coalesces concurrent misses into one origin read.
//! - Playlists and objects carry CDN-friendly `Cache-Control`, `ETag` and `Last-Modified`,
//!   answer conditional and range requests, and allow any origin (CORS) for browser players.
//!
//! [`EdgeService`] is what both the standalone binary ([`run`]) and the all-in-one process
//! serve.
#![forbid(unsafe_code)]

mod config;
pub mod directory;
mod events;
mod grpc_directory;
mod http;
mod index;
mod metrics;
pub mod objects;
pub mod parts;
pub mod playlist;
pub mod regions;
mod reload;
mod respond;
mod service;
pub mod timeline;

use std::sync::Arc;

use anyhow::Context;
use livecast_service::Shutdown;
use tokio::net::TcpListener;

pub use config::{Config, EdgeSettings};
pub use directory::{PlaybackDirectory, PlaybackStream};
pub use grpc_directory::GrpcPlaybackDirectory;
pub use index::{IndexedStream, SegmentIndex};
pub use service::EdgeService;

/// Runs the standalone edge on an already-bound listener until `shutdown`.
pub async fn run(config: Config, http: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let settings = config.edge.clone().with_region(config.region.clone());
    settings.validate().context("invalid edge configuration")?;
    let blob = livecast_blob::open(&config.blob)
        .await
        .context("cannot open the blob store")?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;
    let directory = GrpcPlaybackDirectory::new(&config.catalogue_endpoint)?;
    let service = EdgeService::new(blob, bus, Arc::new(directory), settings).await?;
    service.spawn(shutdown.clone());
    livecast_service::http::serve_service(
        http,
        service.http_routes(),
        service.readiness(),
        &config.http,
        shutdown,
    )
    .await
}
