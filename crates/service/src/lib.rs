//! What every Livecast binary shares: layered configuration, tracing, Prometheus metrics,
//! `/healthz` `/readyz` `/metrics`, JSON errors, HTTP serving on an already-bound listener and
//! one shutdown signal with a bounded drain.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api_error;
pub mod api_json;
pub mod config;
pub mod health;
pub mod http;
pub mod idle;
pub mod listen;
pub mod metrics;
pub mod runtime;
pub mod shutdown;
pub mod telemetry;

pub use admin::AdminToken;
pub use api_error::ApiError;
pub use api_json::ApiJson;
pub use health::{Readiness, ReadinessCheck};
pub use listen::listen;
pub use livecast_core::Secret;
pub use shutdown::Shutdown;
