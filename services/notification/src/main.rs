use livecast_notification::{Config, run};

fn main() -> anyhow::Result<()> {
    livecast_service::runtime::main_with("notification", |config: Config, shutdown| async move {
        let http = livecast_service::listen(config.http.addr)?;
        tracing::info!(http = %config.http.addr, "notification listening");
        run(config, http, shutdown).await
    })
}
