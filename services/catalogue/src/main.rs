use livecast_catalogue::{Config, run};

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("catalogue", |config: Config, shutdown| async move {
        let http = livecast_service::listen(config.http.addr)?;
        let grpc = livecast_service::listen(config.grpc_addr)?;
        tracing::info!(http = %config.http.addr, grpc = %config.grpc_addr, "catalogue listening");
        run(config, http, grpc, shutdown).await
    })
}
