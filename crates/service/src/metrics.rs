//! The Prometheus registry every crate registers into, and the `/metrics` route.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus::{Encoder, TextEncoder};

/// Renders every registered metric in the Prometheus text format.
pub fn render() -> String {
    let mut buffer = Vec::new();
    let families = prometheus::gather();
    if let Err(error) = TextEncoder::new().encode(&families, &mut buffer) {
        tracing::error!(%error, "metrics encoding failed");
    }
    String::from_utf8(buffer).unwrap_or_default()
}

/// The `/metrics` route.
pub fn router() -> Router {
    Router::new().route(
        "/metrics",
        get(|| async {
            (
                [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                render(),
            )
                .into_response()
        }),
    )
}

/// Registers a counter in the default registry.
pub fn counter(name: &str, help: &str) -> prometheus::IntCounter {
    let counter = prometheus::IntCounter::new(name, help).expect("metric definition is valid");
    prometheus::register(Box::new(counter.clone())).expect("metric is registered once");
    counter
}

/// Registers a counter vector in the default registry (panics only on a programming error: a
/// duplicate or malformed metric name, found by the first test that touches it).
pub fn counter_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::IntCounterVec {
    let counter = prometheus::IntCounterVec::new(prometheus::Opts::new(name, help), labels)
        .expect("metric definition is valid");
    prometheus::register(Box::new(counter.clone())).expect("metric is registered once");
    counter
}

/// Registers a gauge in the default registry.
pub fn gauge(name: &str, help: &str) -> prometheus::IntGauge {
    let gauge = prometheus::IntGauge::new(name, help).expect("metric definition is valid");
    prometheus::register(Box::new(gauge.clone())).expect("metric is registered once");
    gauge
}

/// Registers a gauge vector in the default registry.
pub fn gauge_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::IntGaugeVec {
    let gauge = prometheus::IntGaugeVec::new(prometheus::Opts::new(name, help), labels)
        .expect("metric definition is valid");
    prometheus::register(Box::new(gauge.clone())).expect("metric is registered once");
    gauge
}

/// Registers a histogram vector (seconds) in the default registry.
pub fn histogram_vec(name: &str, help: &str, labels: &[&str]) -> prometheus::HistogramVec {
    let histogram =
        prometheus::HistogramVec::new(prometheus::HistogramOpts::new(name, help), labels)
            .expect("metric definition is valid");
    prometheus::register(Box::new(histogram.clone())).expect("metric is registered once");
    histogram
}
