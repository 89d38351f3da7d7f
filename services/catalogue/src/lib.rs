//! The catalogue: the system of record for streams and their segments. REST for admins and
//! apps, gRPC for the other services, lifecycle and segment events in and out.
#![forbid(unsafe_code)]

pub mod catalogue;
pub mod config;
pub mod events;
pub mod grpc;
pub mod keys;
mod metrics;
pub mod rest;

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use livecast_bus::EventBus;
use livecast_core::RegionName;
use livecast_metadata::MetadataStore;
use livecast_proto::topics;
use livecast_service::{Readiness, Secret, Shutdown};
use tokio::net::TcpListener;

pub use catalogue::Catalogue;
pub use config::{Config, PublicUrls};

/// The catalogue wired to its backends: what both the standalone binary and the all-in-one
/// process serve.
#[derive(Debug, Clone)]
pub struct CatalogueService {
    /// The logic.
    pub catalogue: Catalogue,
    api: Arc<rest::ApiState>,
    store: Arc<dyn MetadataStore>,
    bus: Arc<dyn EventBus>,
}

impl CatalogueService {
    /// Wires the catalogue to `store` and `bus`, creating the topics it uses.
    pub async fn new(
        store: Arc<dyn MetadataStore>,
        bus: Arc<dyn EventBus>,
        region: RegionName,
        urls: PublicUrls,
        admin_token: &Secret,
        topic_partitions: u32,
    ) -> anyhow::Result<Self> {
        livecast_bus::ensure_topics(
            &bus,
            &[topics::STREAM_EVENTS, topics::SEGMENTS],
            topic_partitions,
        )
        .await;
        let catalogue = Catalogue::new(store.clone(), bus.clone(), region);
        let api = Arc::new(rest::ApiState {
            catalogue: catalogue.clone(),
            urls,
            admin: livecast_service::AdminToken::new(Some(admin_token)),
        });
        Ok(CatalogueService {
            catalogue,
            api,
            store,
            bus,
        })
    }

    /// The REST routes.
    pub fn http_routes(&self) -> Router {
        rest::router(self.api.clone())
    }

    /// The backends that must answer before the catalogue takes traffic.
    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .with(livecast_metadata::readiness_check(self.store.clone()))
            .with(livecast_bus::readiness_check(self.bus.clone()))
    }

    /// Starts the event consumers; they stop when `shutdown` fires.
    pub fn spawn_consumers(&self, shutdown: Shutdown) {
        events::spawn(self.catalogue.clone(), self.bus.clone(), shutdown);
    }

    /// The catalogue's gRPC service, for a server that may carry others too.
    pub fn grpc_service(
        &self,
    ) -> livecast_proto::v1::catalogue_server::CatalogueServer<grpc::GrpcCatalogue> {
        grpc::service(self.catalogue.clone())
    }

    /// Serves the catalogue's gRPC API on `listener` until `shutdown`.
    pub async fn serve_grpc(
        &self,
        listener: TcpListener,
        shutdown: Shutdown,
    ) -> anyhow::Result<()> {
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tonic::transport::Server::builder()
            .add_service(self.grpc_service())
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await
            .context("gRPC server failed")
    }
}

/// Runs the standalone catalogue on already-bound listeners until `shutdown`.
pub async fn run(
    config: Config,
    http: TcpListener,
    grpc: TcpListener,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let admin_token = config.admin_token()?;
    let region = RegionName::parse(config.region.clone()).context("invalid region")?;
    let store = livecast_metadata::open(&config.metadata)
        .await
        .context("cannot open the metadata store")?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;
    let service = CatalogueService::new(
        store,
        bus,
        region,
        config.public_urls.clone(),
        &admin_token,
        config.topic_partitions,
    )
    .await?;
    service.spawn_consumers(shutdown.clone());
    let (http_result, grpc_result) = tokio::join!(
        livecast_service::http::serve_service(
            http,
            service.http_routes(),
            service.readiness(),
            &config.http,
            shutdown.clone(),
        ),
        service.serve_grpc(grpc, shutdown),
    );
    http_result.and(grpc_result)
}
