//! The encode worker: a consumer group on `livecast.chunks` that transcodes each source chunk
//! into the adaptive-bitrate ladder as CMAF segments, writes them to the blob store, announces
//! them on `livecast.segments`, and only then commits the chunk.
#![forbid(unsafe_code)]

pub mod config;
mod live;
mod metrics;
mod output;
pub mod worker;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use livecast_blob::BlobStore;
use livecast_bus::{EventBus, SubscribeOptions};
use livecast_core::{Error, RegionName};
use livecast_proto::{topics, v1};
use livecast_service::{Readiness, Shutdown};
use prost::Message;
use tokio::net::TcpListener;

pub use config::{Config, WorkerSettings};
pub use worker::{ChunkOutcome, EncodeWorker};

/// The default consumer group of the workers: partitions keyed by stream id give each stream
/// one owner.
pub const GROUP: &str = "encode-worker";

/// The worker wired to its backends.
#[derive(Clone)]
pub struct WorkerService {
    worker: Arc<EncodeWorker>,
    blob: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    concurrency: usize,
    group: String,
}

impl WorkerService {
    /// Wires the worker to its backends, creating the topics it uses.
    pub async fn new(
        blob: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        region: RegionName,
        settings: &WorkerSettings,
    ) -> anyhow::Result<Self> {
        livecast_bus::ensure_topics(
            &bus,
            &[topics::CHUNKS, topics::SEGMENTS, topics::PARTS],
            settings.topic_partitions,
        )
        .await;
        let mut worker = EncodeWorker::new(
            blob.clone(),
            bus.clone(),
            region,
            settings.ladder(),
            settings.transcode_options(),
        )?;
        if let Some(backup) = &settings.backup_blob {
            let replica = livecast_blob::open(backup)
                .await
                .context("cannot open the backup region's blob store")?;
            worker = worker.with_backup(replica);
        }
        Ok(WorkerService {
            worker: Arc::new(worker),
            blob,
            bus,
            concurrency: settings.concurrency(),
            group: settings.group.clone(),
        })
    }

    /// The backends that must answer before the worker takes chunks.
    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .with(livecast_blob::readiness_check(self.blob.clone()))
            .with(livecast_bus::readiness_check(self.bus.clone()))
    }

    /// Starts one consumer-group member per transcode slot; they stop at `shutdown`, leaving
    /// an unfinished chunk uncommitted for another worker.
    pub fn spawn(&self, shutdown: Shutdown) {
        for _ in 0..self.concurrency {
            let worker = self.worker.clone();
            tokio::spawn(livecast_bus::consume(
                self.bus.clone(),
                topics::CHUNKS,
                SubscribeOptions::earliest(self.group.clone()),
                shutdown.clone(),
                move |message| {
                    let worker = worker.clone();
                    async move {
                        let chunk = v1::SourceChunk::decode(message.payload.as_ref())
                            .map_err(|e| Error::invalid(format!("undecodable SourceChunk: {e}")))?;
                        worker.handle(&chunk).await.map(|_| ())
                    }
                },
            ));
        }
    }
}

/// Runs the standalone worker until `shutdown`.
pub async fn run(config: Config, http: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let region = RegionName::parse(config.region.clone()).context("invalid region")?;
    let blob = livecast_blob::open(&config.blob)
        .await
        .context("cannot open the blob store")?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;
    let service = WorkerService::new(blob, bus, region, &config.worker).await?;
    service.spawn(shutdown.clone());
    livecast_service::http::serve_service(
        http,
        Router::new(),
        service.readiness(),
        &config.http,
        shutdown,
    )
    .await
}
