//! The edge's event consumers: segments, their parts and lifecycle events into the
//! [`SegmentIndex`].
//!
//! Every edge instance must see every event, so each joins its own consumer group
//! (`edge-{region}-{uuid}`) at the live end. The group lives as long as the process: a
//! restarted edge rebuilds its index from the catalogue, not from offsets. It still commits
//! what it applied, so that after the broker went away and came back the group resumes where
//! it was instead of jumping to the live end past the events published meanwhile.

use std::sync::Arc;

use anyhow::Context;
use livecast_bus::{EventBus, StartFrom, SubscribeOptions, Subscription};
use livecast_core::Error;
use livecast_proto::{topics, v1};
use livecast_service::Shutdown;
use prost::Message as _;

use crate::index::SegmentIndex;
use crate::metrics;

/// Subscriptions made before the edge serves, so no event published after start-up is missed.
pub struct EdgeSubscriptions {
    segments: Box<dyn Subscription>,
    parts: Box<dyn Subscription>,
    stream_events: Box<dyn Subscription>,
}

impl std::fmt::Debug for EdgeSubscriptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EdgeSubscriptions").finish_non_exhaustive()
    }
}

/// The consumer group of one edge instance.
pub fn group_for(region: &str) -> String {
    format!("edge-{region}-{}", uuid::Uuid::now_v7().simple())
}

/// Joins `livecast.segments`, `livecast.parts` and `livecast.stream-events` at their live end.
pub async fn subscribe(bus: &dyn EventBus, group: &str) -> anyhow::Result<EdgeSubscriptions> {
    let options = SubscribeOptions {
        group: group.to_owned(),
        start_from: StartFrom::Latest,
    };
    let segments = bus
        .subscribe(topics::SEGMENTS, options.clone())
        .await
        .with_context(|| format!("cannot subscribe to {}", topics::SEGMENTS))?;
    let parts = bus
        .subscribe(topics::PARTS, options.clone())
        .await
        .with_context(|| format!("cannot subscribe to {}", topics::PARTS))?;
    let stream_events = bus
        .subscribe(topics::STREAM_EVENTS, options)
        .await
        .with_context(|| format!("cannot subscribe to {}", topics::STREAM_EVENTS))?;
    Ok(EdgeSubscriptions {
        segments,
        parts,
        stream_events,
    })
}

/// Applies every event to `index` until `shutdown`.
pub fn spawn(
    bus: Arc<dyn EventBus>,
    subscriptions: EdgeSubscriptions,
    index: SegmentIndex,
    shutdown: Shutdown,
) {
    let segments_index = index.clone();
    tokio::spawn(consume(
        bus.clone(),
        subscriptions.segments,
        topics::SEGMENTS,
        shutdown.clone(),
        move |payload| {
            let index = segments_index.clone();
            async move {
                let ready = v1::SegmentReady::decode(payload.as_ref())
                    .map_err(|e| Error::invalid(format!("undecodable SegmentReady: {e}")))?;
                index.apply_segment(&ready).await
            }
        },
    ));
    let parts_index = index.clone();
    tokio::spawn(consume(
        bus.clone(),
        subscriptions.parts,
        topics::PARTS,
        shutdown.clone(),
        move |payload| {
            let index = parts_index.clone();
            async move {
                let ready = v1::PartReady::decode(payload.as_ref())
                    .map_err(|e| Error::invalid(format!("undecodable PartReady: {e}")))?;
                index.apply_part(&ready).await
            }
        },
    ));
    tokio::spawn(consume(
        bus.clone(),
        subscriptions.stream_events,
        topics::STREAM_EVENTS,
        shutdown,
        move |payload| {
            let index = index.clone();
            async move {
                let event = v1::StreamEvent::decode(payload.as_ref())
                    .map_err(|e| Error::invalid(format!("undecodable StreamEvent: {e}")))?;
                index.apply_stream_event(&event).await
            }
        },
    ));
}

/// Applies every message of `topic` until `shutdown`, counting the outcome and committing it.
/// A message that can never apply (undecodable, invalid ids) is counted, logged and skipped.
async fn consume<F, Fut>(
    bus: Arc<dyn EventBus>,
    subscription: Box<dyn Subscription>,
    topic: &'static str,
    shutdown: Shutdown,
    apply: F,
) where
    F: Fn(bytes::Bytes) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    livecast_bus::consume_from(bus, subscription, topic, shutdown, |message| {
        let applied = apply(message.payload);
        async move {
            let result = applied.await;
            match &result {
                Ok(()) => metrics::event(topic, "applied"),
                Err(error) if error.retry == livecast_core::Retry::Never => {
                    metrics::event(topic, "rejected")
                }
                Err(_) => {}
            }
            result
        }
    })
    .await;
}
