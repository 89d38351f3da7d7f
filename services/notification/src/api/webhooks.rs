//! `/v1/webhooks`: register, list, inspect and delete webhook endpoints (admin token).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use livecast_service::ApiError;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::auth::Admin;
use crate::notification::rfc3339;
use crate::store::WebhookState;
use livecast_service::ApiJson;

/// `POST /v1/webhooks` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where notifications are POSTed (http or https).
    url: String,
}

/// A webhook as admins see it.
#[derive(Debug, Serialize)]
pub struct WebhookView {
    id: String,
    url: String,
    /// `healthy`, or `failing` after `webhook_failing_after` consecutive failed attempts.
    status: &'static str,
    consecutive_failures: u32,
    pending_deliveries: u64,
    last_error: Option<String>,
    last_success_at: Option<String>,
    last_failure_at: Option<String>,
    created_at: String,
    /// The signing secret: only in the answer to the registration.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
}

impl WebhookView {
    fn new(state: WebhookState, failing_after: u32) -> Self {
        WebhookView {
            status: if state.consecutive_failures >= failing_after {
                "failing"
            } else {
                "healthy"
            },
            id: state.id,
            url: state.url,
            consecutive_failures: state.consecutive_failures,
            pending_deliveries: state.pending,
            last_error: state.last_error,
            last_success_at: state.last_success_at.map(rfc3339),
            last_failure_at: state.last_failure_at.map(rfc3339),
            created_at: rfc3339(state.created_at),
            secret: None,
        }
    }
}

/// Every webhook.
#[derive(Debug, Serialize)]
pub struct WebhookList {
    webhooks: Vec<WebhookView>,
}

/// Registers an endpoint; the answer carries its signing secret, shown this once.
#[tracing::instrument(skip_all)]
pub async fn create_webhook(
    _: Admin,
    State(state): State<Arc<ApiState>>,
    ApiJson(body): ApiJson<CreateWebhook>,
) -> Result<Response, ApiError> {
    let (webhook, secret) = state.webhooks.register(&body.url).await?;
    let location = HeaderValue::from_str(&format!("/v1/webhooks/{}", webhook.id))
        .map_err(|e| ApiError(livecast_core::Error::internal(e.to_string())))?;
    let mut view = WebhookView::new(webhook, state.webhooks.failing_after());
    view.secret = Some(secret.expose().to_owned());
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(view),
    )
        .into_response())
}

/// Every registered endpoint with its delivery state.
#[tracing::instrument(skip_all)]
pub async fn list_webhooks(
    _: Admin,
    State(state): State<Arc<ApiState>>,
) -> Result<Json<WebhookList>, ApiError> {
    let failing_after = state.webhooks.failing_after();
    let webhooks = state
        .webhooks
        .list()
        .await?
        .into_iter()
        .map(|webhook| WebhookView::new(webhook, failing_after))
        .collect();
    Ok(Json(WebhookList { webhooks }))
}

/// One endpoint with its delivery state.
#[tracing::instrument(skip(state))]
pub async fn get_webhook(
    _: Admin,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Json<WebhookView>, ApiError> {
    let webhook = state.webhooks.get(&id).await?;
    Ok(Json(WebhookView::new(
        webhook,
        state.webhooks.failing_after(),
    )))
}

/// Removes an endpoint and drops its pending deliveries.
#[tracing::instrument(skip(state))]
pub async fn delete_webhook(
    _: Admin,
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.webhooks.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
