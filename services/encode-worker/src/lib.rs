//! The encode worker: a consumer group on `livecast.chunks` that transcodes each source chunk
//! into the adaptive-bitrate ladder as CMAF segments, writes them to the blob store, announces
//! them on `livecast.segments`, and only then commits the chunk.
#![forbid(unsafe_code)]

pub mod config;
mod live;
mod load;
mod members;
mod metrics;
mod output;
mod transcoders;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

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
pub use livecast_media::return_freed_buffers_to_the_system;
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
    standby_url: String,
}

impl WorkerService {
    /// Wires the worker to its backends, creating the topics it uses. `standby_url` is where
    /// other workers reach this one's `Standby` service (empty: nowhere).
    pub async fn new(
        blob: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        region: RegionName,
        settings: &WorkerSettings,
        standby_url: String,
    ) -> anyhow::Result<Self> {
        livecast_bus::ensure_topics(
            &bus,
            &[
                topics::CHUNKS,
                topics::SEGMENTS,
                topics::PARTS,
                topics::WORKERS,
            ],
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
        let worker = worker.with_live(live::LiveSettings {
            standby: settings.standby,
            lease: Duration::from_millis(u64::from(settings.standby_lease_ms.max(100))),
            group: settings.group.clone(),
        });
        Ok(WorkerService {
            worker: Arc::new(worker),
            blob,
            bus,
            concurrency: settings.concurrency(),
            group: settings.group.clone(),
            standby_url,
        })
    }

    /// The backends that must answer before the worker takes chunks.
    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .with(livecast_blob::readiness_check(self.blob.clone()))
            .with(livecast_bus::readiness_check(self.bus.clone()))
    }

    /// The `Standby` gRPC service other workers' primaries call.
    pub fn standby_service(
        &self,
    ) -> v1::standby_server::StandbyServer<impl v1::standby_server::Standby> {
        v1::standby_server::StandbyServer::new(live::StandbyService::new(
            self.worker.live().clone(),
        ))
    }

    /// Starts one consumer-group member per transcode slot and the heartbeats; they stop at
    /// `shutdown`, leaving an unfinished chunk uncommitted for another worker, and the live
    /// streams to their standbys.
    pub fn spawn(&self, shutdown: Shutdown) {
        let worker = self.worker.clone();
        let live = worker.live().clone();
        members::spawn(
            self.bus.clone(),
            worker.members().clone(),
            self.standby_url.clone(),
            move || live.counts(),
            shutdown.clone(),
        );
        {
            let (worker, shutdown) = (worker.clone(), shutdown.clone());
            tokio::spawn(async move {
                shutdown.cancelled().await;
                worker.stop();
            });
        }
        tracing::info!(worker = worker.id(), standby_url = %self.standby_url, "encode worker started");
        for _ in 0..self.concurrency {
            let (handler, giver) = (worker.clone(), worker.clone());
            tokio::spawn(livecast_bus::consume_with_give_up(
                self.bus.clone(),
                topics::CHUNKS,
                SubscribeOptions::earliest(self.group.clone()),
                shutdown.clone(),
                move |message| {
                    let worker = handler.clone();
                    async move {
                        let chunk = decode_chunk(&message.payload)?;
                        worker.handle(&chunk).await.map(|_| ())
                    }
                },
                move |message, error| {
                    let worker = giver.clone();
                    async move {
                        if let Ok(chunk) = decode_chunk(&message.payload) {
                            worker.give_up(&chunk, &error).await;
                        }
                    }
                },
            ));
        }
    }
}

fn decode_chunk(payload: &[u8]) -> Result<v1::SourceChunk, Error> {
    v1::SourceChunk::decode(payload)
        .map_err(|e| Error::invalid(format!("undecodable SourceChunk: {e}")).with_source(e))
}

/// Where other workers reach this one: `configured`, or the gRPC listener's address when it is
/// bound to a specific one (a wildcard address names no host others can use).
pub fn standby_url(configured: &str, grpc: SocketAddr) -> String {
    match configured {
        "" if grpc.ip().is_unspecified() => String::new(),
        "" => format!("http://{grpc}"),
        url => url.to_string(),
    }
}

/// The listeners the standalone worker serves on, bound by the caller (port 0 in tests).
#[derive(Debug)]
pub struct Listeners {
    /// Probes and metrics.
    pub http: TcpListener,
    /// The `Standby` service.
    pub grpc: TcpListener,
}

/// Runs the standalone worker until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> anyhow::Result<()> {
    let region = RegionName::parse(config.region.clone()).context("invalid region")?;
    let blob = livecast_blob::open(&config.blob)
        .await
        .context("cannot open the blob store")?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;
    let standby_url = standby_url(&config.worker.standby_url, listeners.grpc.local_addr()?);
    let service = WorkerService::new(blob, bus, region, &config.worker, standby_url).await?;
    service.spawn(shutdown.clone());
    let grpc = tonic::transport::Server::builder()
        .add_service(service.standby_service())
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listeners.grpc),
            shutdown.clone().cancelled_owned(),
        );
    let http = livecast_service::http::serve_service(
        listeners.http,
        Router::new(),
        service.readiness(),
        &config.http,
        shutdown,
    );
    let (grpc, http) = tokio::join!(grpc, http);
    grpc.context("gRPC server failed")?;
    http
}
