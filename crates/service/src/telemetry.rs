//! Structured logs with `tracing`: human-readable by default, JSON when
//! `LIVECAST_LOG_FORMAT=json`; the filter comes from `RUST_LOG` (default `info`).

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json =
        std::env::var(crate::config::LOG_FORMAT_VAR).is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
    // Already installed (a second service in the same process, or a test): keep the first.
    drop(result);
}
