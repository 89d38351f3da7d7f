use livecast_streaming_edge::{Config, run};

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("streaming-edge", |config: Config, shutdown| async move {
        let http = livecast_service::listen(config.http.addr)?;
        tracing::info!(http = %config.http.addr, "streaming-edge listening");
        run(config, http, shutdown).await
    })
}
