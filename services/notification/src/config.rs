//! Configuration of the notification service: the standalone binary's [`Config`] and the
//! [`NotificationSettings`] section that the all-in-one process embeds too.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use livecast_bus::BusConfig;
use livecast_core::RegionName;
use livecast_service::Secret;
use livecast_service::config::HttpConfig;
use serde::Deserialize;

/// Everything the standalone notification service needs to start.
#[derive(Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// SSE, polling, webhook administration and probes.
    pub http: HttpConfig,
    /// This region's name; part of the consumer group name.
    pub region: String,
    /// The admin bearer token for `/v1/webhooks`. Without it (or `admin_token_file`) webhook
    /// administration is refused; SSE and polling work regardless.
    pub admin_token: Option<Secret>,
    /// A file holding the admin bearer token (a mounted Kubernetes secret).
    pub admin_token_file: Option<PathBuf>,
    /// Where lifecycle events travel.
    pub bus: BusConfig,
    /// History, SSE and webhook tuning (`[notification]`).
    pub notification: NotificationSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            http: HttpConfig::on(SocketAddr::from(([127, 0, 0, 1], 8085))),
            region: "local".into(),
            admin_token: None,
            admin_token_file: None,
            bus: BusConfig::InProcess,
            notification: NotificationSettings::default(),
        }
    }
}

impl Config {
    /// The settings with the top-level region and admin token filled in.
    pub fn settings(&self) -> anyhow::Result<NotificationSettings> {
        let token = match (&self.admin_token, &self.admin_token_file) {
            (Some(token), _) => Some(token.clone()),
            (None, Some(path)) => Some(
                Secret::read_file(path)
                    .with_context(|| format!("cannot read admin_token_file {}", path.display()))?,
            ),
            (None, None) => None,
        };
        Ok(self
            .notification
            .clone()
            .with_region(self.region.clone())
            .with_admin_token(token))
    }
}

/// How the service keeps history, serves SSE clients and delivers webhooks (`[notification]` in
/// the config file, `LIVECAST_NOTIFICATION__*` variables).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationSettings {
    /// The SQLite file holding this instance's history, webhooks and pending deliveries.
    pub data_file: PathBuf,
    /// Playback base URL; `/{stream_id}/master.m3u8` is appended for `playback_url`.
    pub playback_base: String,
    /// Notifications retained for polling and `Last-Event-ID` replay.
    pub history_size: usize,
    /// Interval of SSE heartbeat comments, in milliseconds.
    pub heartbeat_ms: u64,
    /// Notifications queued for one SSE client; a client that falls this far behind is dropped
    /// (it reconnects with `Last-Event-ID` and catches up from the history).
    pub sse_client_buffer: usize,
    /// SSE clients served at once; more get 503.
    pub max_sse_clients: usize,
    /// Webhook endpoints that can be registered.
    pub max_webhooks: usize,
    /// How long one webhook request may take, in milliseconds.
    pub webhook_timeout_ms: u64,
    /// Pause after the first failed attempt, in milliseconds; it doubles on every failure.
    pub webhook_retry_initial_ms: u64,
    /// Longest pause between two attempts, in milliseconds.
    pub webhook_retry_max_ms: u64,
    /// How long after it was queued a delivery is still retried, in milliseconds; a failure
    /// after that abandons it and the next one for the stream goes.
    pub webhook_retry_for_ms: u64,
    /// Consecutive failed attempts after which an endpoint is reported `failing`.
    pub webhook_failing_after: u32,
    /// Streams delivered to one endpoint at once (each stream stays in order).
    pub webhook_concurrency: usize,
    /// Partitions of the lifecycle topic when this service creates it.
    pub topic_partitions: u32,
    /// This region's name; names the consumer group. Filled from the top-level `region`.
    #[serde(skip)]
    pub region: String,
    /// The admin bearer token; filled from the top-level `admin_token`/`admin_token_file`.
    #[serde(skip)]
    pub admin_token: Option<Secret>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            data_file: PathBuf::from("data/notification.sqlite"),
            playback_base: "http://127.0.0.1:8080/stream".into(),
            history_size: 1_000,
            heartbeat_ms: 15_000,
            sse_client_buffer: 64,
            max_sse_clients: 10_000,
            max_webhooks: 100,
            webhook_timeout_ms: 10_000,
            webhook_retry_initial_ms: 1_000,
            webhook_retry_max_ms: 300_000,
            webhook_retry_for_ms: 24 * 3600 * 1000,
            webhook_failing_after: 5,
            webhook_concurrency: 4,
            topic_partitions: 8,
            region: "local".into(),
            admin_token: None,
        }
    }
}

impl NotificationSettings {
    /// The same settings for another region.
    pub fn with_region(mut self, region: impl Into<String>) -> Self {
        self.region = region.into();
        self
    }

    /// The same settings with an admin token (or none: webhook administration refused).
    pub fn with_admin_token(mut self, token: Option<Secret>) -> Self {
        self.admin_token = token;
        self
    }

    /// Checks the settings once, at start-up, with a message naming the key to fix.
    pub fn validate(&self) -> anyhow::Result<()> {
        let positive = [
            ("history_size", self.history_size as u64),
            ("heartbeat_ms", self.heartbeat_ms),
            ("sse_client_buffer", self.sse_client_buffer as u64),
            ("max_sse_clients", self.max_sse_clients as u64),
            ("webhook_timeout_ms", self.webhook_timeout_ms),
            ("webhook_retry_initial_ms", self.webhook_retry_initial_ms),
            (
                "webhook_failing_after",
                u64::from(self.webhook_failing_after),
            ),
            ("webhook_concurrency", self.webhook_concurrency as u64),
            ("topic_partitions", u64::from(self.topic_partitions)),
        ];
        for (key, value) in positive {
            anyhow::ensure!(value > 0, "notification.{key} must be at least 1");
        }
        anyhow::ensure!(
            self.webhook_retry_max_ms >= self.webhook_retry_initial_ms,
            "notification.webhook_retry_max_ms ({}) must not be below webhook_retry_initial_ms ({})",
            self.webhook_retry_max_ms,
            self.webhook_retry_initial_ms
        );
        anyhow::ensure!(
            self.playback_base.starts_with("http://") || self.playback_base.starts_with("https://"),
            "notification.playback_base {:?} must be an http(s) URL",
            self.playback_base
        );
        RegionName::parse(self.region.clone())
            .map_err(|e| anyhow::anyhow!("invalid region: {}", e.message))?;
        Ok(())
    }

    /// The SSE heartbeat interval.
    pub fn heartbeat(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ms)
    }

    /// The playback URL handed out for `stream_id`.
    pub fn playback_url(&self, stream_id: &str) -> String {
        format!(
            "{}/{stream_id}/master.m3u8",
            self.playback_base.trim_end_matches('/')
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        let config = Config::default();
        assert_eq!(config.http.addr.port(), 8085);
        let settings = config.settings().unwrap();
        settings.validate().unwrap();
        assert!(settings.admin_token.is_none());
        assert_eq!(
            settings.data_file,
            PathBuf::from("data/notification.sqlite")
        );
        assert_eq!(
            settings.playback_url("abc"),
            "http://127.0.0.1:8080/stream/abc/master.m3u8"
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let zero = NotificationSettings {
            sse_client_buffer: 0,
            ..NotificationSettings::default()
        };
        let error = zero.validate().unwrap_err().to_string();
        assert!(error.contains("sse_client_buffer"), "{error}");
        let inverted = NotificationSettings {
            webhook_retry_max_ms: 1,
            ..NotificationSettings::default()
        };
        let error = inverted.validate().unwrap_err().to_string();
        assert!(error.contains("webhook_retry_max_ms"), "{error}");
        let region = NotificationSettings::default().with_region("a/b");
        assert!(region.validate().is_err());
    }

    #[test]
    fn the_admin_token_comes_from_a_file_or_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "from-file\n").unwrap();
        let config = Config {
            admin_token_file: Some(path),
            ..Config::default()
        };
        let token = config.settings().unwrap().admin_token.unwrap();
        assert_eq!(token.expose(), "from-file");
        let missing = Config {
            admin_token_file: Some(dir.path().join("missing")),
            ..Config::default()
        };
        assert!(missing.settings().is_err());
    }
}
