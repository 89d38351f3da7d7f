//! `/healthz` (the process runs) and `/readyz` (every backend it needs answers).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use serde_json::{Map, Value, json};

pub use livecast_core::ReadinessCheck;

/// The set of checks behind `/readyz`.
#[derive(Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn ReadinessCheck>>,
    timeout: Option<Duration>,
}

/// How long one check may take before it counts as failed.
const DEFAULT_CHECK_TIMEOUT: Duration = Duration::from_secs(3);

impl Readiness {
    /// No checks yet.
    pub fn new() -> Self {
        Readiness::default()
    }

    /// Adds a check.
    pub fn with(mut self, check: Arc<dyn ReadinessCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Adds every check of `other`.
    pub fn merge(mut self, other: &Readiness) -> Self {
        for check in &other.checks {
            if !self.checks.iter().any(|c| c.name() == check.name()) {
                self.checks.push(check.clone());
            }
        }
        self
    }

    /// Runs every check concurrently; returns each backend's name with its failure, if any.
    pub async fn run(&self) -> Vec<(String, Option<String>)> {
        let timeout = self.timeout.unwrap_or(DEFAULT_CHECK_TIMEOUT);
        let runs = self.checks.iter().map(|check| async move {
            let outcome = match tokio::time::timeout(timeout, check.check()).await {
                Ok(Ok(())) => None,
                Ok(Err(message)) => Some(message),
                Err(_) => Some(format!("did not answer within {timeout:?}")),
            };
            if let Some(message) = &outcome {
                tracing::warn!(backend = check.name(), error = %message, "backend not ready");
            }
            (check.name().to_string(), outcome)
        });
        futures::future::join_all(runs).await
    }

    /// The `/healthz` and `/readyz` routes.
    pub fn router(self) -> Router {
        Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route("/readyz", get(readyz))
            .with_state(Arc::new(self))
    }
}

async fn readyz(State(readiness): State<Arc<Readiness>>) -> impl IntoResponse {
    let outcomes = readiness.run().await;
    let ready = outcomes.iter().all(|(_, failure)| failure.is_none());
    let checks: Map<String, Value> = outcomes
        .into_iter()
        .map(|(name, failure)| (name, Value::String(failure.unwrap_or_else(|| "ok".into()))))
        .collect();
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": checks });
    (status, Json(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    struct Fixed(&'static str, Result<(), String>);

    #[async_trait::async_trait]
    impl ReadinessCheck for Fixed {
        fn name(&self) -> &str {
            self.0
        }
        async fn check(&self) -> Result<(), String> {
            self.1.clone()
        }
    }

    async fn get_status(readiness: Readiness, path: &str) -> (StatusCode, String) {
        let response = readiness
            .router()
            .oneshot(Request::get(path).body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn ready_only_when_every_backend_answers() {
        let ok = Readiness::new().with(Arc::new(Fixed("blob-store", Ok(()))));
        assert_eq!(get_status(ok, "/readyz").await.0, StatusCode::OK);

        let broken = Readiness::new()
            .with(Arc::new(Fixed("blob-store", Ok(()))))
            .with(Arc::new(Fixed(
                "event-bus",
                Err("127.0.0.1:9092 refused".into()),
            )));
        let (status, body) = get_status(broken.clone(), "/readyz").await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            body.contains("event-bus") && body.contains("127.0.0.1:9092 refused"),
            "{body}"
        );
        assert_eq!(get_status(broken, "/healthz").await.0, StatusCode::OK);
    }
}
