use livecast::{Config, Listeners, run};

fn main() -> anyhow::Result<()> {
    // This process transcodes too.
    livecast_encode_worker::return_freed_buffers_to_the_system();
    livecast_service::runtime::main_with("livecast", |config: Config, shutdown| async move {
        let http = livecast_service::listen(config.http.addr)?;
        let grpc = livecast_service::listen(config.grpc_addr)?;
        let rtmp = livecast_service::listen(config.rtmp_addr)?;
        run(config, Listeners { http, grpc, rtmp }, shutdown).await
    })
}
