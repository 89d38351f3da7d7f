//! The notification service: tells clients when a stream goes live, completes or is archived.
//!
//! Lifecycle events from `livecast.stream-events` become notifications
//! (`{ id, type, event_id, stream_id, name, playback_url, at }`, `id` being a cursor) that are
//! pushed over SSE (`GET /v1/notifications/stream`, with `Last-Event-ID` replay from a bounded
//! history), served to pollers (`GET /v1/notifications?since=&limit=`) and POSTed, signed, to
//! registered webhooks (`/v1/webhooks`, admin token) with retries. Duplicated events (same
//! `event_id`) are dropped. History, webhooks and pending deliveries live in the instance's own
//! SQLite file; see [`consumer`] for why every instance is its own consumer group.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod consumer;
pub mod delivery;
pub mod hub;
mod metrics;
pub mod notification;
pub mod signature;
pub mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use livecast_bus::EventBus;
use livecast_proto::topics;
use livecast_service::{Readiness, ReadinessCheck, Shutdown};
use tokio::net::TcpListener;
use tokio_util::task::TaskTracker;

pub use config::{Config, NotificationSettings};
pub use notification::{Notification, NotificationKind};

/// The notification service wired to its bus and data file: what both the standalone binary
/// and the all-in-one process serve. Clones share everything.
#[derive(Debug, Clone)]
pub struct NotificationService {
    bus: Arc<dyn EventBus>,
    group: String,
    store: store::Store,
    hub: Arc<hub::Hub>,
    webhooks: Arc<delivery::Webhooks>,
    settings: Arc<NotificationSettings>,
    joined: Arc<AtomicBool>,
    tasks: TaskTracker,
}

impl NotificationService {
    /// Opens the data file, loads the retained history and creates the lifecycle topic if
    /// needed. Nothing runs until [`Self::spawn`].
    pub async fn new(
        bus: Arc<dyn EventBus>,
        settings: NotificationSettings,
    ) -> anyhow::Result<Self> {
        settings.validate()?;
        metrics::register();
        if settings.admin_token.is_none() {
            tracing::warn!("no admin token: webhook administration is refused");
        }
        livecast_bus::ensure_topics(&bus, &[topics::STREAM_EVENTS], settings.topic_partitions)
            .await;
        let store = store::Store::open(&settings.data_file).await?;
        let history = store
            .recent(settings.history_size)
            .await
            .context("cannot load the notification history")?;
        let hub = Arc::new(hub::Hub::new(
            history,
            settings.history_size,
            settings.sse_client_buffer,
            settings.max_sse_clients,
        ));
        let webhooks = Arc::new(
            delivery::Webhooks::new(store.clone(), &settings)
                .context("cannot build the webhook HTTP client")?,
        );
        let group = format!("notification-{}-{}", settings.region, store.instance());
        Ok(NotificationService {
            bus,
            group,
            store,
            hub,
            webhooks,
            settings: Arc::new(settings),
            joined: Arc::new(AtomicBool::new(false)),
            tasks: TaskTracker::new(),
        })
    }

    /// The consumer group this instance reads lifecycle events in.
    pub fn consumer_group(&self) -> &str {
        &self.group
    }

    /// `/v1/notifications`, `/v1/notifications/stream` and `/v1/webhooks`.
    pub fn http_routes(&self) -> Router {
        api::router(Arc::new(api::ApiState {
            hub: self.hub.clone(),
            webhooks: self.webhooks.clone(),
            admin: api::AdminToken::new(self.settings.admin_token.as_ref()),
            heartbeat: self.settings.heartbeat(),
        }))
    }

    /// Ready when the bus and the data file answer and the consumer group has joined (events
    /// published before that are not seen by a new instance).
    pub fn readiness(&self) -> Readiness {
        Readiness::new()
            .with(livecast_bus::readiness_check(self.bus.clone()))
            .with(Arc::new(StoreCheck(self.store.clone())))
            .with(Arc::new(ConsumerCheck {
                joined: self.joined.clone(),
                group: self.group.clone(),
            }))
    }

    /// Starts the event consumer and the webhook workers; they stop, and SSE streams end, when
    /// `shutdown` fires. Call once.
    pub fn spawn(&self, shutdown: Shutdown) {
        let handler = consumer::EventHandler {
            store: self.store.clone(),
            hub: self.hub.clone(),
            webhooks: self.webhooks.clone(),
            settings: self.settings.clone(),
        };
        self.tasks.spawn(consumer::run(
            self.bus.clone(),
            self.group.clone(),
            handler,
            self.joined.clone(),
            shutdown.clone(),
        ));
        let webhooks = self.webhooks.clone();
        let tracker = self.tasks.clone();
        let worker_shutdown = shutdown.clone();
        self.tasks
            .spawn(async move { webhooks.start(worker_shutdown, tracker).await });
        let hub = self.hub.clone();
        self.tasks.spawn(async move {
            shutdown.cancelled().await;
            hub.close();
        });
        self.tasks.close();
    }

    /// Waits until everything [`Self::spawn`] started has stopped (after shutdown).
    pub async fn stopped(&self) {
        self.tasks.wait().await;
    }
}

/// Runs the standalone service on an already-bound listener until `shutdown`.
pub async fn run(config: Config, http: TcpListener, shutdown: Shutdown) -> anyhow::Result<()> {
    let settings = config.settings()?;
    let bus = livecast_bus::open(&config.bus)
        .await
        .context("cannot open the event bus")?;
    let service = NotificationService::new(bus, settings).await?;
    service.spawn(shutdown.clone());
    let served = livecast_service::http::serve_service(
        http,
        service.http_routes(),
        service.readiness(),
        &config.http,
        shutdown,
    )
    .await;
    let drain = Duration::from_secs(config.http.drain_seconds);
    if tokio::time::timeout(drain, service.stopped())
        .await
        .is_err()
    {
        tracing::warn!(?drain, "workers did not stop within the drain time");
    }
    served
}

struct StoreCheck(store::Store);

#[async_trait::async_trait]
impl ReadinessCheck for StoreCheck {
    fn name(&self) -> &str {
        "notification-store"
    }

    async fn check(&self) -> Result<(), String> {
        self.0.check().await.map_err(|e| e.message)
    }
}

struct ConsumerCheck {
    joined: Arc<AtomicBool>,
    group: String,
}

#[async_trait::async_trait]
impl ReadinessCheck for ConsumerCheck {
    fn name(&self) -> &str {
        "notification-consumer"
    }

    async fn check(&self) -> Result<(), String> {
        if self.joined.load(Ordering::SeqCst) {
            Ok(())
        } else {
            Err(format!(
                "consumer group {} has not joined {} yet",
                self.group,
                topics::STREAM_EVENTS
            ))
        }
    }
}
