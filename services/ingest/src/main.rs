use livecast_ingest::{Config, run};

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("ingest", |config: Config, shutdown| async move {
        let http = livecast_service::listen(config.http.addr)?;
        let rtmp = livecast_service::listen(config.rtmp_addr)?;
        tracing::info!(http = %config.http.addr, rtmp = %config.rtmp_addr, "ingest listening");
        run(config, http, rtmp, shutdown).await
    })
}
