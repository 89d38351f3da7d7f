//! Prometheus metrics of the catalogue.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec};

static STREAMS_CREATED: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_catalogue_streams_created_total",
        "Streams created through the catalogue.",
    )
});

static EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_catalogue_events_total",
        "Events consumed, by topic and outcome (applied, rejected).",
        &["topic", "outcome"],
    )
});

/// Streams created.
pub fn streams_created() -> &'static IntCounter {
    &STREAMS_CREATED
}

/// Counts one consumed event.
pub fn event(topic: &str, outcome: &str) {
    EVENTS.with_label_values(&[topic, outcome]).inc();
}
