use anyhow::Context;
use livecast::{Config, Listeners, run};
use tokio::net::TcpListener;

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("livecast", |config: Config, shutdown| async move {
        let http = TcpListener::bind(config.http.addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.http.addr))?;
        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.grpc_addr))?;
        let rtmp = TcpListener::bind(config.rtmp_addr)
            .await
            .with_context(|| format!("cannot listen on {}", config.rtmp_addr))?;
        run(config, Listeners { http, grpc, rtmp }, shutdown).await
    })
}
