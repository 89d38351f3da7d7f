//! Livecast all-in-one: the services in one process on embedded defaults, so a newcomer can try
//! the platform on a laptop with `make run`.
#![forbid(unsafe_code)]

pub mod config;
mod directory;

use anyhow::Context;
use livecast_core::RegionName;
use std::sync::Arc;

use livecast_service::{Readiness, Secret, Shutdown};
use tokio::net::TcpListener;

pub use config::Config;

/// The listeners the process serves on, bound by the caller (port 0 in tests).
#[derive(Debug)]
pub struct Listeners {
    /// Every HTTP API.
    pub http: TcpListener,
    /// The gRPC APIs: the catalogue's and ingest's chunk feed.
    pub grpc: TcpListener,
    /// RTMP ingest.
    pub rtmp: TcpListener,
}

/// What a person needs to use the running platform.
#[derive(Debug, Clone)]
pub struct Welcome {
    /// Base URL of every HTTP API.
    pub http_url: String,
    /// The admin bearer token.
    pub admin_token: Secret,
    /// Where broadcasters push RTMP (the key is appended).
    pub rtmp_base: String,
}

impl Welcome {
    /// The banner printed at start-up.
    pub fn banner(&self) -> String {
        let http = &self.http_url;
        let token = self.admin_token.expose();
        format!(
            "\nLivecast is running.\n\
             \n  watch         {http}/\
             \n  admin token   {token}\
             \n  health        {http}/readyz\
             \n  catalogue     {http}/v1/videos   (OpenAPI: {http}/v1/openapi.json)\
             \n  notifications {http}/v1/notifications/stream (SSE), {http}/v1/notifications\
             \n\nCreate a stream (the answer holds its stream key and its playback URL):\
             \n  curl -s -X POST -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\
             \n       -d '{{\"name\":\"My first stream\"}}' {http}/v1/videos\
             \n\nPush to {rtmp}/STREAM_KEY and watch at {http}/stream/STREAM_ID/master.m3u8\
             \n",
            rtmp = self.rtmp_base,
        )
    }
}

/// Runs every service in this process until `shutdown`.
pub async fn run(config: Config, listeners: Listeners, shutdown: Shutdown) -> anyhow::Result<()> {
    let admin_token = config.admin_token()?;
    let region = RegionName::parse(config.region.clone()).context("invalid region")?;
    let http_addr = listeners.http.local_addr()?;
    let rtmp_addr = listeners.rtmp.local_addr()?;
    let urls = config.public_urls(http_addr, rtmp_addr);

    let blob = livecast_blob::open(&config.blob())
        .await
        .context("cannot open the blob store")?;
    let store = livecast_metadata::open(&config.metadata())
        .await
        .context("cannot open the metadata store")?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;

    let catalogue = livecast_catalogue::CatalogueService::new(
        store,
        bus.clone(),
        region.clone(),
        urls.clone(),
        &admin_token,
        config.ingest.topic_partitions,
    )
    .await?;
    catalogue.spawn_consumers(shutdown.clone());

    let directory = Arc::new(directory::InProcessDirectory(catalogue.catalogue.clone()));
    let grpc_addr = listeners.grpc.local_addr()?;
    let ingest_settings = livecast_ingest::IngestSettings {
        // The worker follows chunks over the same gRPC listener the catalogue answers on.
        feed_url: format!("http://{grpc_addr}"),
        ..config.ingest.clone()
    };
    let ingest = livecast_ingest::IngestService::new(
        directory,
        blob.clone(),
        bus.clone(),
        region.clone(),
        ingest_settings,
    )
    .await?;

    let worker = livecast_encode_worker::WorkerService::new(
        blob.clone(),
        bus.clone(),
        region,
        &livecast_encode_worker::WorkerSettings {
            // One process: the worker knows how long ingest cuts chunks.
            chunk_target_ms: config.ingest.chunk_target_ms,
            ..config.worker.clone()
        },
        livecast_encode_worker::standby_url(&config.worker.standby_url, grpc_addr),
    )
    .await?;
    if config.run_worker {
        worker.spawn(shutdown.clone());
    }

    let playback = Arc::new(directory::InProcessPlayback(catalogue.catalogue.clone()));
    let edge_settings = config.edge.clone().with_region(config.region.clone());
    let edge =
        livecast_streaming_edge::EdgeService::new(blob, bus.clone(), playback, edge_settings)
            .await?;
    edge.spawn(shutdown.clone());

    let notification_settings = livecast_notification::NotificationSettings {
        data_file: config.data_dir.join("notification.sqlite"),
        playback_base: urls.playback_base.clone(),
        ..config.notification.clone()
    }
    .with_region(config.region.clone())
    .with_admin_token(Some(admin_token.clone()));
    let notification =
        livecast_notification::NotificationService::new(bus, notification_settings).await?;
    notification.spawn(shutdown.clone());

    let readiness = Readiness::new()
        .merge(&catalogue.readiness())
        .merge(&ingest.readiness())
        .merge(&worker.readiness())
        .merge(&edge.readiness())
        .merge(&notification.readiness());
    let routes = catalogue
        .http_routes()
        .merge(ingest.http_routes())
        .merge(edge.http_routes())
        .merge(notification.http_routes())
        .merge(livecast_web::router());

    let welcome = Welcome {
        http_url: format!("http://{http_addr}"),
        admin_token,
        rtmp_base: urls.rtmp_base.clone(),
    };
    println!("{}", welcome.banner());

    let (http_result, grpc_result, rtmp_result) = tokio::join!(
        livecast_service::http::serve_service(
            listeners.http,
            routes,
            readiness,
            &config.http,
            shutdown.clone(),
        ),
        serve_grpc(
            &catalogue,
            &ingest,
            &worker,
            listeners.grpc,
            shutdown.clone()
        ),
        ingest.serve_rtmp(listeners.rtmp, shutdown),
    );
    http_result.and(grpc_result).and(rtmp_result)
}

/// The catalogue's gRPC API, ingest's chunk feed and the worker's standby service on one
/// listener.
async fn serve_grpc(
    catalogue: &livecast_catalogue::CatalogueService,
    ingest: &livecast_ingest::IngestService,
    worker: &livecast_encode_worker::WorkerService,
    listener: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    tonic::transport::Server::builder()
        .add_service(catalogue.grpc_service())
        .add_service(ingest.feed_service().into_server())
        .add_service(worker.standby_service())
        .serve_with_incoming_shutdown(
            tonic::transport::server::TcpIncoming::from(listener),
            shutdown.cancelled_owned(),
        )
        .await
        .context("gRPC server failed")
}
