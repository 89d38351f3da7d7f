//! The lifecycle-event consumer: every event becomes at most one notification, recorded before
//! its offset is committed, then fanned out to SSE clients and webhook workers.
//!
//! # Consumer groups
//!
//! Each instance must see every event: its SSE clients are connected to it alone, and its
//! history, cursors and webhook queue live in its own data file. So each instance is its own
//! consumer group, `notification-{region}-{instance}`, where `instance` is a name generated
//! when the data file was created. The group's committed offsets and the file's journal thus
//! always belong together: a restart over the same file resumes where the journal stops (an
//! event recorded but not committed comes again and is dropped as a duplicate); a new file is
//! a new group, which starts at the live end (`StartFrom::Latest`) rather than replaying the
//! retained topic as a burst of stale "stream is live" notifications. Groups of data files
//! that are gone expire on the brokers after their offset retention.
//!
//! This loop is not `livecast_bus::consume` because `/readyz` must say when the group has
//! joined: with `Latest`, events published before that moment are not this instance's.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use livecast_bus::{EventBus, SubscribeOptions};
use livecast_core::Error;
use livecast_proto::{topics, v1};
use livecast_service::Shutdown;
use prost::Message as _;

use crate::config::NotificationSettings;
use crate::delivery::Webhooks;
use crate::hub::Hub;
use crate::metrics;
use crate::notification::StreamChange;
use crate::store::Store;

/// What handling an event needs.
#[derive(Debug, Clone)]
pub struct EventHandler {
    /// The journal.
    pub store: Store,
    /// SSE fan-out and history.
    pub hub: Arc<Hub>,
    /// Webhook workers to wake.
    pub webhooks: Arc<Webhooks>,
    /// Playback URLs and history size.
    pub settings: Arc<NotificationSettings>,
}

impl EventHandler {
    /// Turns one `StreamEvent` payload into a notification. Malformed events are
    /// `InvalidArgument` (skipped); a store failure is retried by the caller.
    pub async fn handle(&self, payload: &[u8]) -> Result<(), Error> {
        let event = v1::StreamEvent::decode(payload)
            .map_err(|e| Error::invalid(format!("undecodable StreamEvent: {e}")))?;
        let Some(change) = StreamChange::from_event(&event)? else {
            metrics::event("ignored");
            return Ok(());
        };
        let playback_url = self.settings.playback_url(change.stream_id.as_str());
        let recorded = self
            .store
            .record(change, playback_url, self.settings.history_size)
            .await?;
        let Some(recorded) = recorded else {
            metrics::event("duplicate");
            tracing::debug!(event_id = %event.event_id, "duplicate lifecycle event dropped");
            return Ok(());
        };
        metrics::event("notified");
        metrics::webhook_queued(recorded.webhooks.len());
        tracing::info!(cursor = recorded.notification.id, kind = recorded.notification.kind.as_str(),
            stream_id = %recorded.notification.stream_id, "notification recorded");
        self.hub.publish(recorded.notification);
        self.webhooks.wake(&recorded.webhooks);
        Ok(())
    }
}

/// Consumes `livecast.stream-events` as `group` until `shutdown`; sets `joined` once the group
/// member exists.
pub async fn run(
    bus: Arc<dyn EventBus>,
    group: String,
    handler: EventHandler,
    joined: Arc<AtomicBool>,
    shutdown: Shutdown,
) {
    let topic = topics::STREAM_EVENTS;
    let options = SubscribeOptions::latest(group.clone());
    let Some(subscription) =
        livecast_bus::subscribe_until_ready(&bus, topic, &options, &shutdown).await
    else {
        return;
    };
    joined.store(true, Ordering::SeqCst);
    tracing::info!(topic, %group, "consuming lifecycle events");
    let handler = Arc::new(handler);
    livecast_bus::consume_from(bus, subscription, topic, shutdown, |message| {
        let handler = handler.clone();
        async move {
            let result = handler.handle(&message.payload).await;
            if let Err(error) = &result
                && error.retry == livecast_core::Retry::Never
            {
                metrics::event("rejected");
            }
            result
        }
    })
    .await;
}
