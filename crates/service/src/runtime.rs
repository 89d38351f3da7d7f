//! The shape every service binary's `main` has: telemetry, configuration, a runtime, the
//! shutdown signal, then the service's own `run`.

use std::future::Future;
use std::path::PathBuf;

use serde::de::DeserializeOwned;

use crate::Shutdown;
use crate::config::{self, CONFIG_FILE_VAR};

/// Starts telemetry, loads `C` (defaults, the file named by `LIVECAST_CONFIG`, then
/// `LIVECAST_*` variables), and runs `run` on a multi-threaded runtime until it returns.
pub fn main_with<C, F, Fut>(service: &'static str, run: F) -> anyhow::Result<()>
where
    C: DeserializeOwned + std::fmt::Debug,
    F: FnOnce(C, Shutdown) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    crate::telemetry::init();
    let file = std::env::var_os(CONFIG_FILE_VAR).map(PathBuf::from);
    let config: C = config::load(file.as_deref())?;
    tracing::info!(service, ?config, "starting");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let result = runtime.block_on(async move {
        let shutdown = crate::shutdown::on_signals();
        run(config, shutdown).await
    });
    if let Err(error) = &result {
        tracing::error!(
            service,
            error = format!("{error:#}"),
            "stopped with an error"
        );
    } else {
        tracing::info!(service, "stopped");
    }
    result
}
