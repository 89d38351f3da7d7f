//! `spawn_app()`: a catalogue on port 0 over an embedded store and an in-process bus.

use std::sync::Arc;

use livecast_bus::{EventBus, InProcessBus};
use livecast_catalogue::{CatalogueService, PublicUrls};
use livecast_core::RegionName;
use livecast_metadata::MetadataConfig;
use livecast_service::config::HttpConfig;
use livecast_service::{Secret, Shutdown};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const MAX_BODY: usize = 64 * 1024;

pub struct TestApp {
    pub address: String,
    pub grpc_address: String,
    pub client: reqwest::Client,
    pub service: CatalogueService,
    pub bus: Arc<dyn EventBus>,
    shutdown: Shutdown,
    _dir: tempfile::TempDir,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn spawn_app() -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        livecast_service::telemetry::init();
    }
    let dir = tempfile::tempdir().unwrap();
    let store = livecast_metadata::open(&MetadataConfig::Embedded {
        path: dir.path().join("metadata.sqlite"),
    })
    .await
    .unwrap();
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    let service = CatalogueService::new(
        store,
        bus.clone(),
        RegionName::parse("test-region").unwrap(),
        PublicUrls::default(),
        &Secret::new(ADMIN_TOKEN),
        4,
    )
    .await
    .unwrap();
    let shutdown = Shutdown::new();
    service.spawn_consumers(shutdown.clone());

    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let grpc = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", http.local_addr().unwrap());
    let grpc_address = format!("http://{}", grpc.local_addr().unwrap());
    let config = HttpConfig {
        max_body_bytes: MAX_BODY,
        ..HttpConfig::default()
    };
    let routes = service.http_routes();
    let readiness = service.readiness();
    let serve_shutdown = shutdown.clone();
    tokio::spawn(async move {
        livecast_service::http::serve_service(http, routes, readiness, &config, serve_shutdown)
            .await
            .unwrap();
    });
    let grpc_service = service.clone();
    let grpc_shutdown = shutdown.clone();
    tokio::spawn(async move { grpc_service.serve_grpc(grpc, grpc_shutdown).await.unwrap() });

    TestApp {
        address,
        grpc_address,
        client: reqwest::Client::new(),
        service,
        bus,
        shutdown,
        _dir: dir,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Creates a stream as the admin and returns the created JSON.
    pub async fn create(&self, name: &str) -> Value {
        let response = self
            .client
            .post(self.url("/v1/videos"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    pub async fn set_status(&self, id: &str, status: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .put(self.url(&format!("/v1/videos/{id}/status")))
            .bearer_auth(ADMIN_TOKEN)
            .json(&json!({ "status": status }))
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// GET `path` (with the admin token when `admin`) and return status and JSON.
    pub async fn get_json(&self, path: &str, admin: bool) -> (StatusCode, Value) {
        let mut request = self.client.get(self.url(path));
        if admin {
            request = request.bearer_auth(ADMIN_TOKEN);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

/// The error message of a JSON error body.
pub fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}
