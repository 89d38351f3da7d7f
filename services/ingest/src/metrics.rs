//! Prometheus metrics of ingest.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec};

static PUBLISHES: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_ingest_publishes_total",
        "Publishing sessions admitted (RTMP and HLS push).",
    )
});

static REJECTED: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_ingest_publishes_rejected_total",
        "Publishing attempts refused, by reason.",
        &["reason"],
    )
});

static CHUNKS: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_ingest_chunks_total",
        "Source chunks made durable and announced.",
    )
});

static CHUNK_BYTES: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_ingest_chunk_bytes_total",
        "Bytes of source chunks made durable.",
    )
});

/// A publishing session was admitted.
pub fn publish_started() {
    PUBLISHES.inc();
}

/// A publishing attempt was refused for `reason`.
pub fn rejected(reason: &str) {
    REJECTED.with_label_values(&[reason]).inc();
}

/// A chunk of `bytes` was stored and announced.
pub fn chunk_stored(bytes: u64) {
    CHUNKS.inc();
    CHUNK_BYTES.inc_by(bytes);
}
