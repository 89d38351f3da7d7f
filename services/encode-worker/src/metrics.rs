//! Prometheus metrics of the encode worker.

use std::sync::LazyLock;

use prometheus::{Histogram, IntCounterVec};

static CHUNKS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_worker_chunks_total",
        "Source chunks handled, by outcome (encoded, bad_input, end_of_stream).",
        &["outcome"],
    )
});

static TRANSCODE_SECONDS: LazyLock<Histogram> = LazyLock::new(|| {
    livecast_service::metrics::histogram_vec(
        "livecast_worker_transcode_seconds",
        "Wall time to transcode one source chunk into the whole ladder.",
        &[],
    )
    .with_label_values::<&str>(&[])
});

/// Counts a handled chunk.
pub fn chunk(outcome: &str) {
    CHUNKS.with_label_values(&[outcome]).inc();
}

/// Records how long one chunk took.
pub fn transcode_seconds(seconds: f64) {
    TRANSCODE_SECONDS.observe(seconds);
}
