//! Prometheus metrics of the streaming edge.

use std::sync::LazyLock;

use prometheus::{IntCounter, IntCounterVec, IntGauge};

static REQUESTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_edge_requests_total",
        "Viewer requests, by kind (master, media, init, segment) and HTTP status.",
        &["kind", "status"],
    )
});

static ORIGIN_FETCHES: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_edge_origin_fetches_total",
        "Objects read from the origin (the regional blob store) to fill the cache.",
    )
});

static REGION_PULLS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_edge_region_pulls_total",
        "Objects this edge asked another region's edges for (a miss in this region), by region \
         and outcome (ok, failed).",
        &["region", "outcome"],
    )
});

static SERVED_TO_REGIONS: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_edge_served_to_regions_total",
        "Objects this edge gave other regions' edges.",
    )
});

static CACHE_HITS: LazyLock<IntCounter> = LazyLock::new(|| {
    livecast_service::metrics::counter(
        "livecast_edge_cache_hits_total",
        "Object requests answered from the cache, including ones that waited for another \
         request's origin fetch.",
    )
});

static INDEX_LOADS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_edge_index_loads_total",
        "Streams loaded into the segment index from the catalogue, by outcome.",
        &["outcome"],
    )
});

static EVENTS: LazyLock<IntCounterVec> = LazyLock::new(|| {
    livecast_service::metrics::counter_vec(
        "livecast_edge_events_total",
        "Events consumed, by topic and outcome (applied, rejected).",
        &["topic", "outcome"],
    )
});

static BLOCKED_RELOADS: LazyLock<IntGauge> = LazyLock::new(|| {
    livecast_service::metrics::gauge(
        "livecast_edge_blocked_reloads",
        "Playlist requests (blocking reload, _HLS_msn) waiting for their segment right now.",
    )
});

/// One blocking playlist reload waiting, counted in the gauge until dropped.
#[derive(Debug)]
pub struct BlockedReload(());

impl BlockedReload {
    /// Counts a request that starts waiting.
    pub fn start() -> Self {
        BLOCKED_RELOADS.inc();
        BlockedReload(())
    }
}

impl Drop for BlockedReload {
    fn drop(&mut self) {
        BLOCKED_RELOADS.dec();
    }
}

/// Counts one viewer request.
pub fn request(kind: &str, status: u16) {
    REQUESTS
        .with_label_values(&[kind, &status.to_string()])
        .inc();
}

/// Counts one origin fetch.
pub fn origin_fetch() {
    ORIGIN_FETCHES.inc();
}

/// Counts one object served from the cache.
pub fn cache_hit() {
    CACHE_HITS.inc();
}

/// Counts one cold load of a stream (`ok`, `not_found`, `failed`).
pub fn index_load(outcome: &str) {
    INDEX_LOADS.with_label_values(&[outcome]).inc();
}

/// Counts one consumed event.
pub fn event(topic: &str, outcome: &str) {
    EVENTS.with_label_values(&[topic, outcome]).inc();
}

/// Counts a pull from another region.
pub fn region_pull(region: &str, outcome: &str) {
    REGION_PULLS.with_label_values(&[region, outcome]).inc();
}

/// Counts an object given to another region.
pub fn served_to_region() {
    SERVED_TO_REGIONS.inc();
}
