//! `spawn_app()`: a notification service on port 0 over an in-process bus and a fresh data file,
//! plus an SSE client and polling helpers.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use livecast_bus::{EventBus, InProcessBus};
use livecast_core::EventId;
use livecast_notification::{NotificationService, NotificationSettings};
use livecast_proto::{topics, v1};
use livecast_service::config::HttpConfig;
use livecast_service::{Secret, Shutdown};
use prost::Message;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

pub const ADMIN_TOKEN: &str = "test-admin-token";
pub const PLAYBACK_BASE: &str = "http://edge.test/stream";
/// Generous: a slow CI machine must not fail a correct build.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub bus: Arc<dyn EventBus>,
    pub service: NotificationService,
    pub data_file: PathBuf,
    shutdown: Shutdown,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Short retry settings so webhook retries happen within a test.
pub fn test_settings(data_file: PathBuf) -> NotificationSettings {
    NotificationSettings {
        data_file,
        playback_base: PLAYBACK_BASE.into(),
        history_size: 100,
        heartbeat_ms: 100,
        webhook_timeout_ms: 5_000,
        webhook_retry_initial_ms: 10,
        webhook_retry_max_ms: 100,
        webhook_retry_for_ms: 600_000,
        webhook_failing_after: 3,
        topic_partitions: 4,
        ..NotificationSettings::default()
    }
    .with_region("test-region")
    .with_admin_token(Some(Secret::new(ADMIN_TOKEN)))
}

/// A fresh service: its own bus and data file (kept until the test ends).
pub async fn spawn_app() -> (TestApp, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path().join("notification.sqlite"));
    let app = spawn_app_on(Arc::new(InProcessBus::new()), settings).await;
    (app, dir)
}

/// A service over `bus` with `settings`, ready (its consumer group has joined) on return.
pub async fn spawn_app_on(bus: Arc<dyn EventBus>, settings: NotificationSettings) -> TestApp {
    if std::env::var_os("TEST_LOG").is_some() {
        livecast_service::telemetry::init();
    }
    let data_file = settings.data_file.clone();
    let service = NotificationService::new(bus.clone(), settings)
        .await
        .unwrap();
    let shutdown = Shutdown::new();
    service.spawn(shutdown.clone());
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", http.local_addr().unwrap());
    let routes = service.http_routes();
    let readiness = service.readiness();
    let serve_shutdown = shutdown.clone();
    tokio::spawn(async move {
        let config = HttpConfig::default();
        livecast_service::http::serve_service(http, routes, readiness, &config, serve_shutdown)
            .await
            .unwrap();
    });
    let app = TestApp {
        address,
        client: reqwest::Client::new(),
        bus,
        service,
        data_file,
        shutdown,
    };
    eventually("the service to be ready", || async {
        let response = app.client.get(app.url("/readyz")).send().await.ok()?;
        (response.status() == StatusCode::OK).then_some(())
    })
    .await;
    app
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn publish(&self, event: &v1::StreamEvent) {
        self.publish_raw(&event.stream_id, Bytes::from(event.encode_to_vec()))
            .await;
    }

    pub async fn publish_raw(&self, key: &str, payload: Bytes) {
        self.bus
            .publish(topics::STREAM_EVENTS, key, payload)
            .await
            .unwrap();
    }

    /// GET `path` (with the admin token when `admin`): status and JSON.
    pub async fn get_json(&self, path: &str, admin: bool) -> (StatusCode, Value) {
        let mut request = self.client.get(self.url(path));
        if admin {
            request = request.bearer_auth(ADMIN_TOKEN);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `/v1/notifications` until it lists `count` notifications; returns them.
    pub async fn notifications(&self, count: usize) -> Vec<Value> {
        eventually(&format!("{count} notifications"), || async {
            let (_, body) = self.get_json("/v1/notifications", false).await;
            let list = body["notifications"].as_array()?.clone();
            (list.len() >= count).then_some(list)
        })
        .await
    }

    /// Connects an SSE client, optionally resuming after `last_event_id`.
    pub async fn sse(&self, last_event_id: Option<u64>) -> SseClient {
        let mut request = self.client.get(self.url("/v1/notifications/stream"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id.to_string());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        SseClient {
            response,
            buffer: String::new(),
        }
    }

    /// Registers a webhook for `url`; returns the answer (with the secret).
    pub async fn register_webhook(&self, url: &str) -> Value {
        let response = self
            .client
            .post(self.url("/v1/webhooks"))
            .bearer_auth(ADMIN_TOKEN)
            .json(&serde_json::json!({ "url": url }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        response.json().await.unwrap()
    }

    /// The webhook `id` as `GET /v1/webhooks` lists it.
    pub async fn webhook(&self, id: &str) -> Value {
        let (status, body) = self.get_json("/v1/webhooks", true).await;
        assert_eq!(status, StatusCode::OK);
        body["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("webhook {id} not listed: {body}"))
    }

    /// Stops the service and waits until its consumer and workers have stopped.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(DEADLINE, self.service.stopped())
            .await
            .expect("the service stops");
    }
}

/// A lifecycle event with a fresh event id.
pub fn stream_event(stream: &str, kind: v1::StreamStatus, name: &str) -> v1::StreamEvent {
    v1::StreamEvent {
        event_id: EventId::generate().to_string(),
        stream_id: stream.to_string(),
        kind: kind as i32,
        at: livecast_core::time::now_millis(),
        region: "test-region".into(),
        name: name.into(),
        epoch: 0,
        segments: 0,
    }
}

/// Calls `check` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One SSE frame: an event, or a comment (heartbeat).
#[derive(Debug, Clone, Default)]
pub struct SseFrame {
    pub id: Option<String>,
    pub event: Option<String>,
    pub data: String,
    pub comment: Option<String>,
}

impl SseFrame {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap()
    }

    pub fn cursor(&self) -> u64 {
        self.id.as_deref().unwrap().parse().unwrap()
    }
}

pub struct SseClient {
    response: reqwest::Response,
    buffer: String,
}

impl SseClient {
    /// The next frame, within [`DEADLINE`]; `None` when the server ended the stream.
    pub async fn next_frame(&mut self) -> Option<SseFrame> {
        tokio::time::timeout(DEADLINE, async {
            loop {
                if let Some(end) = self.buffer.find("\n\n") {
                    let raw: String = self.buffer.drain(..end + 2).collect();
                    return Some(parse_frame(&raw));
                }
                let chunk = self.response.chunk().await.unwrap()?;
                self.buffer.push_str(std::str::from_utf8(&chunk).unwrap());
            }
        })
        .await
        .expect("an SSE frame within the deadline")
    }

    /// The next event, skipping heartbeats.
    pub async fn next_event(&mut self) -> SseFrame {
        loop {
            let frame = self.next_frame().await.expect("the stream stays open");
            if frame.event.is_some() {
                return frame;
            }
        }
    }
}

fn parse_frame(raw: &str) -> SseFrame {
    let mut frame = SseFrame::default();
    for line in raw.lines().filter(|l| !l.is_empty()) {
        if let Some(comment) = line.strip_prefix(':') {
            frame.comment = Some(comment.trim().to_string());
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => frame.id = Some(value.to_string()),
            "event" => frame.event = Some(value.to_string()),
            "data" => frame.data.push_str(value),
            _ => {}
        }
    }
    frame
}
