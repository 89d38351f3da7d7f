//! Serving an axum router on an already-bound listener until shutdown, then draining.

use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::Response;
use tokio::net::TcpListener;

use crate::Shutdown;
use crate::config::HttpConfig;

/// The routes every service answers (`/healthz`, `/readyz`, `/metrics`) merged with its own,
/// with the body limit applied (a larger body gets 413).
pub fn service_router(routes: Router, readiness: crate::Readiness, config: &HttpConfig) -> Router {
    routes
        .merge(readiness.router())
        .merge(crate::metrics::router())
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn(log_request))
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    let status = response.status();
    if status.is_server_error() {
        tracing::warn!(%method, %path, status = status.as_u16(), "request failed");
    } else {
        tracing::debug!(%method, %path, status = status.as_u16(), "request served");
    }
    response
}

/// Serves a service's `routes` with the shared probes on `listener` until `shutdown`, then drains
/// for the configured time.
pub async fn serve_service(
    listener: TcpListener,
    routes: Router,
    readiness: crate::Readiness,
    config: &HttpConfig,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let router = service_router(routes, readiness, config);
    serve(
        listener,
        router,
        shutdown,
        Duration::from_secs(config.drain_seconds),
    )
    .await
}

/// Serves `router` on `listener` until `shutdown` fires, then gives in-flight requests up to
/// `drain` to finish.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
    drain: Duration,
) -> anyhow::Result<()> {
    let signal = shutdown.clone();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        signal.cancelled().await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return result.map_err(Into::into),
        _ = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(drain, server).await {
        Ok(result) => result.map_err(Into::into),
        Err(_) => {
            tracing::warn!(?drain, "drain deadline passed; dropping open connections");
            Ok(())
        }
    }
}
