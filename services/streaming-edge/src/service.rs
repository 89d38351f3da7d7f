//! The edge wired to its backends: what both the standalone binary and the all-in-one process
//! serve.

use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;
use axum::Router;
use livecast_blob::BlobStore;
use livecast_bus::EventBus;
use livecast_proto::topics;
use livecast_service::{Readiness, Shutdown};

use crate::config::EdgeSettings;
use crate::directory::PlaybackDirectory;
use crate::events::{self, EdgeSubscriptions};
use crate::http::{self, EdgeState};
use crate::index::SegmentIndex;
use crate::objects::{ObjectCache, ObjectOrigin, RegionalOrigin};
use crate::regions::RegionChainOrigin;

/// The streaming edge: a segment index fed by events, an object cache in front of the
/// regional blob store, and the HLS routes over both.
#[derive(Debug, Clone)]
pub struct EdgeService {
    state: Arc<EdgeState>,
    blob: Arc<dyn BlobStore>,
    bus: Arc<dyn EventBus>,
    group: String,
    subscriptions: Arc<Mutex<Option<EdgeSubscriptions>>>,
}

impl EdgeService {
    /// Wires the edge to its backends: creates the topics it reads (with
    /// `settings.topic_partitions`) and joins them at their live end in a consumer group of
    /// its own, before anything can be served, so no event falls between a cold load and the
    /// events that follow it.
    pub async fn new(
        blob: Arc<dyn BlobStore>,
        bus: Arc<dyn EventBus>,
        directory: Arc<dyn PlaybackDirectory>,
        settings: EdgeSettings,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        for topic in [topics::SEGMENTS, topics::PARTS, topics::STREAM_EVENTS] {
            bus.ensure_topic(topic, settings.topic_partitions)
                .await
                .with_context(|| format!("cannot create topic {topic}"))?;
        }
        let group = events::group_for(&settings.region);
        let subscriptions = events::subscribe(bus.as_ref(), &group).await?;
        let peers = settings.peer_regions()?;
        let origin: Arc<dyn ObjectOrigin> = if peers.is_empty() {
            Arc::new(RegionalOrigin::new(blob.clone()))
        } else {
            Arc::new(RegionChainOrigin::new(blob.clone(), peers))
        };
        let state = Arc::new(EdgeState {
            index: SegmentIndex::new(directory, settings.max_streams),
            objects: ObjectCache::new(origin, settings.cache_bytes),
            live_window: settings.live_window_segments,
        });
        Ok(EdgeService {
            state,
            blob,
            bus,
            group,
            subscriptions: Arc::new(Mutex::new(Some(subscriptions))),
        })
    }

    /// The `/stream/...` routes.
    pub fn http_routes(&self) -> Router {
        http::router(self.state.clone()).merge(crate::regions::router(self.state.clone()))
    }

    /// The backends that must answer before the edge takes traffic.
    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .with(livecast_blob::readiness_check(self.blob.clone()))
            .with(livecast_bus::readiness_check(self.bus.clone()))
    }

    /// Starts the event consumers; they stop when `shutdown` fires. Only the first call does
    /// anything.
    pub fn spawn(&self, shutdown: Shutdown) {
        let taken = self
            .subscriptions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match taken {
            Some(subscriptions) => {
                tracing::info!(group = %self.group, "edge consumers started");
                events::spawn(
                    self.bus.clone(),
                    subscriptions,
                    self.state.index.clone(),
                    shutdown,
                );
            }
            None => tracing::warn!("edge consumers were started already"),
        }
    }

    /// The consumer group this instance reads events in.
    pub fn consumer_group(&self) -> &str {
        &self.group
    }

    /// How many times this instance read an object from its origin (each coalesced cache
    /// miss counts once); `livecast_edge_origin_fetches_total` adds up every instance.
    pub fn origin_fetches(&self) -> u64 {
        self.state.objects.origin_fetches()
    }
}
