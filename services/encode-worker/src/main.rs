use livecast_encode_worker::{Config, Listeners, return_freed_buffers_to_the_system, run};

fn main() -> anyhow::Result<()> {
    return_freed_buffers_to_the_system();
    livecast_service::runtime::main_with("encode-worker", |config: Config, shutdown| async move {
        let listeners = Listeners {
            http: livecast_service::listen(config.http.addr)?,
            grpc: livecast_service::listen(config.grpc_addr)?,
        };
        tracing::info!(http = %config.http.addr, grpc = %config.grpc_addr, "encode-worker listening");
        run(config, listeners, shutdown).await
    })
}
