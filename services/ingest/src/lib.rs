//! The ingest service: terminates broadcasters (RTMP and HLS push), checks their stream keys
//! with the catalogue, and turns what they send into durable source chunks announced on
//! `livecast.chunks`.
#![forbid(unsafe_code)]

pub mod config;
pub mod directory;
pub mod hls_push;
mod metrics;
pub mod publish;
pub mod rtmp;
pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use livecast_blob::BlobStore;
use livecast_bus::EventBus;
use livecast_core::RegionName;
use livecast_proto::topics;
use livecast_service::{Readiness, Shutdown};
use tokio::net::TcpListener;

pub use config::{Config, IngestSettings};
pub use directory::{AuthorizedStream, GrpcDirectory, StreamDirectory};
pub use sessions::Ingest;

/// How long an HLS push may stay silent before its session ends.
const HLS_PUSH_IDLE: Duration = Duration::from_secs(10);

/// Ingest wired to its backends: what the standalone binary and the all-in-one process serve.
#[derive(Clone)]
pub struct IngestService {
    /// Admits broadcasters and stores their chunks.
    pub ingest: Ingest,
    hls_push: Arc<hls_push::HlsPush>,
    blob: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    settings: IngestSettings,
}

impl IngestService {
    /// Wires ingest to its backends, creating the topics it publishes to.
    pub async fn new(
        directory: Arc<dyn StreamDirectory>,
        blob: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        region: RegionName,
        settings: IngestSettings,
    ) -> anyhow::Result<Self> {
        livecast_bus::ensure_topics(
            &bus,
            &[topics::CHUNKS, topics::STREAM_EVENTS],
            settings.topic_partitions,
        )
        .await;
        let ingest = Ingest::new(directory, blob.clone(), bus.clone(), region, &settings);
        let hls_push = hls_push::HlsPush::new(Arc::new(ingest.clone()), HLS_PUSH_IDLE);
        Ok(IngestService {
            ingest,
            hls_push,
            blob,
            bus,
            settings,
        })
    }

    /// The HLS push routes.
    pub fn http_routes(&self) -> Router {
        self.hls_push.router(self.settings.max_push_bytes)
    }

    /// The backends that must answer before ingest takes broadcasters.
    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .with(livecast_blob::readiness_check(self.blob.clone()))
            .with(livecast_bus::readiness_check(self.bus.clone()))
    }

    /// Serves RTMP on `listener` and sweeps idle HLS pushes until `shutdown`.
    pub async fn serve_rtmp(
        &self,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        self.hls_push.spawn_idle_sweeper(shutdown.clone());
        let config = rtmp::RtmpConfig {
            chunk_target_ms: self.settings.chunk_target_ms,
            ..rtmp::RtmpConfig::default()
        };
        rtmp::serve_rtmp(listener, Arc::new(self.ingest.clone()), config, shutdown).await
    }
}

/// Runs the standalone ingest on already-bound listeners until `shutdown`.
pub async fn run(
    config: Config,
    http: TcpListener,
    rtmp: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let region = RegionName::parse(config.region.clone()).context("invalid region")?;
    let blob = livecast_blob::open(&config.blob)
        .await
        .context("cannot open the blob store")?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;
    let directory = Arc::new(GrpcDirectory::new(&config.catalogue_endpoint)?);
    let service = IngestService::new(directory, blob, bus, region, config.ingest.clone()).await?;
    let (http_result, rtmp_result) = tokio::join!(
        livecast_service::http::serve_service(
            http,
            service.http_routes(),
            service.readiness(),
            &config.http,
            shutdown.clone(),
        ),
        service.serve_rtmp(rtmp, shutdown),
    );
    http_result.and(rtmp_result)
}
