use anyhow::Context;
use livecast_notification::{Config, run};
use tokio::net::TcpListener;

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("notification", |config: Config, shutdown| async move {
        let http = TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.addr))?;
        tracing::info!(http = %config.http.addr, "notification listening");
        run(config, http, shutdown).await
    })
}
