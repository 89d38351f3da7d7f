use anyhow::Context;
use livecast_encode_worker::{Config, run};
use tokio::net::TcpListener;

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("encode-worker", |config: Config, shutdown| async move {
        let http = TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.addr))?;
        tracing::info!(http = %config.http.addr, "encode-worker listening");
        run(config, http, shutdown).await
    })
}
