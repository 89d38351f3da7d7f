use livecast_ingest::{Config, Listeners, run};

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("ingest", |config: Config, shutdown| async move {
        let listeners = Listeners {
            http: livecast_service::listen(config.http.addr)?,
            rtmp: livecast_service::listen(config.rtmp_addr)?,
            grpc: livecast_service::listen(config.grpc_addr)?,
        };
        tracing::info!(
            http = %config.http.addr,
            rtmp = %config.rtmp_addr,
            grpc = %config.grpc_addr,
            "ingest listening"
        );
        run(config, listeners, shutdown).await
    })
}
