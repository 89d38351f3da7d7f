//! A backend that must answer before a service takes traffic (`/readyz`). Defined here so the
//! backend crates can describe themselves without depending on the HTTP layer.

/// A readiness check of one backend.
#[async_trait::async_trait]
pub trait ReadinessCheck: Send + Sync {
    /// The backend's name as operators know it (`blob-store`, `event-bus`, `metadata-store`).
    fn name(&self) -> &str;
    /// Ok when the backend answers; otherwise what is wrong, naming the backend's address.
    async fn check(&self) -> Result<(), String>;
}
