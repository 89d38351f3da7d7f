use anyhow::Context;
use livecast_ingest::{Config, run};
use tokio::net::TcpListener;

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("ingest", |config: Config, shutdown| async move {
        let http = TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.addr))?;
        let rtmp = TcpListener::bind(config.rtmp_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.rtmp_addr))?;
        tracing::info!(http = %config.http.addr, rtmp = %config.rtmp_addr, "ingest listening");
        run(config, http, rtmp, shutdown).await
    })
}
