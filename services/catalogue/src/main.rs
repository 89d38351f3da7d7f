use anyhow::Context;
use livecast_catalogue::{Config, run};
use tokio::net::TcpListener;

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("catalogue", |config: Config, shutdown| async move {
        let http = TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.addr))?;
        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.grpc_addr))?;
        tracing::info!(http = %config.http.addr, grpc = %config.grpc_addr, "catalogue listening");
        run(config, http, grpc, shutdown).await
    })
}
