//! The catalogue's event consumers: lifecycle events and durable segments.

use std::sync::Arc;

use livecast_bus::{EventBus, SubscribeOptions};
use livecast_core::{Error, RenditionName, RenditionRecord, SegmentRecord, StreamId};
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
    tokio::spawn(livecast_bus::consume(
        bus.clone(),
        topics::STREAM_EVENTS,
        SubscribeOptions::earliest(GROUP),
        shutdown.clone(),
        move |message| {
            let catalogue = lifecycle.clone();
            async move {
                let event = v1::StreamEvent::decode(message.payload.as_ref())
                    .map_err(|e| Error::invalid(format!("undecodable StreamEvent: {e}")))?;
                counted(
                    topics::STREAM_EVENTS,
                    catalogue.apply_stream_event(&event).await,
                )
            }
        },
    ));
    tokio::spawn(livecast_bus::consume(
        bus,
        topics::SEGMENTS,
        SubscribeOptions::earliest(GROUP),
        shutdown,
        move |message| {
            let catalogue = catalogue.clone();
            async move {
                let ready = v1::SegmentReady::decode(message.payload.as_ref())
                    .map_err(|e| Error::invalid(format!("undecodable SegmentReady: {e}")))?;
                counted(topics::SEGMENTS, apply_segment(&catalogue, &ready).await)
            }
        },
    ));
}

/// Counts the outcome of one event.
fn counted(topic: &str, result: Result<(), Error>) -> Result<(), Error> {
    match &result {
        Ok(()) => metrics::event(topic, "applied"),
        Err(error) if error.retry == livecast_core::Retry::Never => {
            metrics::event(topic, "rejected")
        }
        Err(_) => {}
    }
    result
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
    // A gap (no bytes: a top rung left out) names its rendition and says nothing else of it.
    if catalogue.record_segment(&segment).await? && !segment.is_gap() {
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
