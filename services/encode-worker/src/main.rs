use livecast_encode_worker::{Config, run};

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("encode-worker", |config: Config, shutdown| async move {
        let http = livecast_service::listen(config.http.addr)?;
        tracing::info!(http = %config.http.addr, "encode-worker listening");
        run(config, http, shutdown).await
    })
}
