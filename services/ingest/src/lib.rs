//! The ingest service: terminates broadcasters (RTMP and HLS push), checks their stream keys
//! with the catalogue, and turns what they send into durable source chunks announced on
//! `livecast.chunks`.
#![forbid(unsafe_code)]

pub mod config;
pub mod directory;
pub mod feed;
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
pub use feed::ChunkFeedService;
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
        let hls_push = hls_push::HlsPush::new(
            Arc::new(ingest.clone()),
            HLS_PUSH_IDLE,
            settings.max_push_bytes,
        );
        Ok(IngestService {
            ingest,
            hls_push,
            blob,
            bus,
            settings,
        })
    }

    /// The gRPC service through which workers follow the chunks being cut.
    pub fn feed_service(&self) -> ChunkFeedService {
        ChunkFeedService::new(self.ingest.feeds())
    }

    /// The HLS push routes.
    pub fn http_routes(&self) -> Router {
        self.hls_push.router()
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

/// The listeners the standalone ingest serves on, bound by the caller (port 0 in tests).
#[derive(Debug)]
pub struct Listeners {
    /// HLS push and probes.
    pub http: TcpListener,
    /// RTMP.
    pub rtmp: TcpListener,
    /// The chunk feed (gRPC) for encode workers.
    pub grpc: TcpListener,
}

/// Runs the standalone ingest on already-bound listeners until `shutdown`.
pub async fn run(
    mut config: Config,
    listeners: Listeners,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let Listeners { http, rtmp, grpc } = listeners;
    let grpc_addr = grpc.local_addr()?;
    if config.ingest.feed_url.is_empty() {
        if grpc_addr.ip().is_unspecified() {
            tracing::warn!(
                %grpc_addr,
                "no ingest.feed_url and the chunk feed listens on every address: workers cannot \
                 follow chunks, so streams play without partial segments"
            );
        } else {
            config.ingest.feed_url = format!("http://{grpc_addr}");
        }
    }
    let region = RegionName::parse(config.region.clone()).context("invalid region")?;
    let blob = livecast_blob::open(&config.blob)
        .await
        .context("cannot open the blob store")?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;
    let directory = Arc::new(GrpcDirectory::new(&config.catalogue_endpoint)?);
    let service = IngestService::new(directory, blob, bus, region, config.ingest.clone()).await?;
    let feed = tonic::transport::Server::builder()
        .add_service(service.feed_service().into_server())
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(grpc),
            shutdown.clone().cancelled_owned(),
        );
    let (http_result, rtmp_result, feed_result) = tokio::join!(
        livecast_service::http::serve_service(
            http,
            service.http_routes(),
            service.readiness(),
            &config.http,
            shutdown.clone(),
        ),
        service.serve_rtmp(rtmp, shutdown),
        feed,
    );
    http_result
        .and(rtmp_result)
        .and(feed_result.context("chunk feed (gRPC) server failed"))
}
