//! The HTTP API: `/v1/notifications` (polling), `/v1/notifications/stream` (SSE) and
//! `/v1/webhooks` (admin), a thin adapter over the hub and the webhook registry.

mod auth;
mod notifications;
mod webhooks;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;

use crate::delivery::Webhooks;
use crate::hub::Hub;

pub use livecast_service::AdminToken;

/// What the handlers share.
#[derive(Debug)]
pub struct ApiState {
    /// History and SSE clients.
    pub hub: Arc<Hub>,
    /// Registered webhooks.
    pub webhooks: Arc<Webhooks>,
    /// The admin bearer token.
    pub admin: AdminToken,
    /// Interval of SSE heartbeat comments.
    pub heartbeat: Duration,
}

/// The notification and webhook routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/v1/notifications", get(notifications::poll))
        .route("/v1/notifications/stream", get(notifications::stream))
        .route(
            "/v1/webhooks",
            get(webhooks::list_webhooks).post(webhooks::create_webhook),
        )
        .route(
            "/v1/webhooks/{id}",
            get(webhooks::get_webhook).delete(webhooks::delete_webhook),
        )
        .with_state(state)
}
