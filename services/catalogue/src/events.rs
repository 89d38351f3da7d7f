//! The catalogue's event consumers: lifecycle events and durable segments.

use std::sync::Arc;
use std::time::Duration;

use livecast_bus::{EventBus, Message, StartFrom, SubscribeOptions};
use livecast_core::{Error, ErrorKind, RenditionName, RenditionRecord, SegmentRecord, StreamId};
use livecast_proto::{topics, v1};
use livecast_service::Shutdown;
use prost::Message as _;

use crate::catalogue::Catalogue;
use crate::metrics;

/// The consumer group of the catalogue.
pub const GROUP: &str = "catalogue";

/// Consumes `livecast.stream-events` and `livecast.segments` until shutdown.
pub fn spawn(catalogue: Catalogue, bus: Arc<dyn EventBus>, shutdown: Shutdown) {
    let lifecycle = catalogue.clone();
    tokio::spawn(consume(
        bus.clone(),
        topics::STREAM_EVENTS,
        shutdown.clone(),
        move |message| {
            let catalogue = lifecycle.clone();
            async move {
                let event = v1::StreamEvent::decode(message.payload.as_ref())
                    .map_err(|e| Error::invalid(format!("undecodable StreamEvent: {e}")))?;
                catalogue.apply_stream_event(&event).await
            }
        },
    ));
    tokio::spawn(consume(bus, topics::SEGMENTS, shutdown, move |message| {
        let catalogue = catalogue.clone();
        async move {
            let ready = v1::SegmentReady::decode(message.payload.as_ref())
                .map_err(|e| Error::invalid(format!("undecodable SegmentReady: {e}")))?;
            apply_segment(&catalogue, &ready).await
        }
    }));
}

/// Records a durable segment and the rendition it belongs to.
pub async fn apply_segment(catalogue: &Catalogue, ready: &v1::SegmentReady) -> Result<(), Error> {
    let stream_id = StreamId::parse(ready.stream_id.clone())?;
    let info = ready
        .rendition
        .as_ref()
        .ok_or_else(|| Error::invalid("SegmentReady without rendition"))?;
    let rendition = RenditionName::parse(info.name.clone())?;
    let segment = SegmentRecord {
        stream_id: stream_id.clone(),
        rendition: rendition.clone(),
        seq: ready.seq,
        duration_ms: ready.duration_ms,
        discontinuity: ready.discontinuity,
        program_date_time: ready.program_date_time_ms,
        size_bytes: ready.size_bytes,
    };
    if catalogue.record_segment(&segment).await? {
        catalogue
            .put_rendition(&RenditionRecord {
                stream_id,
                name: rendition,
                width: info.width,
                height: info.height,
                bandwidth: info.bandwidth,
                average_bandwidth: info.average_bandwidth,
                codecs: info.codecs.clone(),
                frame_rate_milli: info.frame_rate_milli,
                audio_only: info.audio_only,
            })
            .await?;
    }
    Ok(())
}

/// Delivers every message of `topic` to `handle`, committing after it succeeds. A message that
/// can never succeed (undecodable, invalid) is logged, counted and skipped; a backend failure is
/// retried with backoff and not committed, so nothing is lost.
async fn consume<F, Fut>(bus: Arc<dyn EventBus>, topic: &'static str, shutdown: Shutdown, handle: F)
where
    F: Fn(Message) -> Fut,
    Fut: Future<Output = Result<(), Error>>,
{
    let options = SubscribeOptions {
        group: GROUP.to_string(),
        start_from: StartFrom::Earliest,
    };
    let mut subscription = loop {
        match bus.subscribe(topic, options.clone()).await {
            Ok(subscription) => break subscription,
            Err(error) => {
                tracing::warn!(topic, %error, "cannot subscribe; retrying");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    };
    loop {
        let message = tokio::select! {
            _ = shutdown.cancelled() => return,
            next = subscription.next() => next,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(topic, %error, "event bus read failed; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        let mut backoff = Duration::from_millis(100);
        loop {
            match handle(message.clone()).await {
                Ok(()) => {
                    metrics::event(topic, "applied");
                    break;
                }
                Err(error) if is_permanent(&error) => {
                    metrics::event(topic, "rejected");
                    tracing::warn!(topic, offset = message.offset, %error, "event rejected");
                    break;
                }
                Err(error) => {
                    tracing::warn!(topic, %error, ?backoff, "event not applied; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(10));
                }
            }
        }
        if let Err(error) = subscription.commit(&message).await {
            tracing::warn!(topic, %error, "commit failed; the event may be delivered again");
        }
    }
}

fn is_permanent(error: &Error) -> bool {
    matches!(
        error.kind,
        ErrorKind::InvalidArgument | ErrorKind::NotFound | ErrorKind::Conflict
    )
}
