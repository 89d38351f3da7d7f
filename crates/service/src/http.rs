//! Serving an axum router on an already-bound listener until shutdown, then draining.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::middleware::Next;
use axum::response::Response;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder as AutoBuilder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;

use crate::idle::IdleTimeout;
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
    serve(listener, router, shutdown, config).await
}

/// Serves `router` on `listener` until `shutdown` fires, then gives in-flight requests up to
/// `config.drain_seconds` to finish. Connections are closed when a request head takes longer
/// than `config.header_timeout_ms` or nothing moves for `config.idle_timeout_ms`.
///
/// Connections accept half-closure: HTTP clients such as FFmpeg's shut down their sending side
/// right after a request body and still expect the answer, so a read EOF must not cancel the
/// request (hyper's default does).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: Shutdown,
    config: &HttpConfig,
) -> anyhow::Result<()> {
    let drain = Duration::from_secs(config.drain_seconds);
    let idle = Duration::from_millis(config.idle_timeout_ms);
    let graceful = GracefulShutdown::new();
    // HTTP/1.1 only: browsers and players speak it over plain HTTP (gRPC has its own port),
    // and skipping version detection lets the header timeout start at the first byte.
    let mut builder = AutoBuilder::new(TokioExecutor::new()).http1_only();
    // Slowloris clients dribbling a request head are cut off; idle ones by `IdleTimeout`.
    builder
        .http1()
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(config.header_timeout_ms));
    let clients = ClientSlots::new(config.max_connections_per_client);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Some(slot) = clients.take(peer.ip()) else {
            tracing::debug!(%peer, "client is over its connection limit; closed");
            REFUSED.inc();
            continue;
        };
        let service = TowerToHyperService::new(router.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(IdleTimeout::new(stream, idle)), service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(?drain, "drain deadline passed; dropping open connections");
    }
    Ok(())
}

static REFUSED: LazyLock<prometheus::IntCounter> = LazyLock::new(|| {
    crate::metrics::counter(
        "livecast_http_connections_refused_total",
        "Connections closed at once because their client held http.max_connections_per_client.",
    )
});

/// Open connections per client address, bounded (0: unbounded).
#[derive(Clone)]
struct ClientSlots {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One client's open connection; dropping it frees the slot.
struct ClientSlot {
    slots: ClientSlots,
    client: IpAddr,
}

impl ClientSlots {
    fn new(limit: usize) -> Self {
        ClientSlots {
            limit,
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// A slot for a new connection from `client`, unless it has `limit` open already.
    fn take(&self, client: IpAddr) -> Option<ClientSlot> {
        if self.limit > 0 {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let count = open.entry(client).or_default();
            if *count >= self.limit {
                return None;
            }
            *count += 1;
        }
        Some(ClientSlot {
            slots: self.clone(),
            client,
        })
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        if self.slots.limit == 0 {
            return;
        }
        let mut open = self
            .slots
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.client);
            }
        }
    }
}
