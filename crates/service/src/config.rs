//! Layered configuration: the type's defaults, then a TOML file, then `LIVECAST_SECTION__KEY`
//! environment variables. Loaded and validated once at start-up.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context;
use figment::Figment;
use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Value};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Environment variable that names the configuration file.
pub const CONFIG_FILE_VAR: &str = "LIVECAST_CONFIG";

/// Variables the test suites read (`LIVECAST_TEST_KAFKA_BROKERS`, ...); never configuration.
pub const TEST_VAR_PREFIX: &str = "LIVECAST_TEST_";

/// Environment variable that selects the log format; read by telemetry, not configuration.
pub const LOG_FORMAT_VAR: &str = "LIVECAST_LOG_FORMAT";

/// Loads `T` from `file` (if given) and the process environment.
pub fn load<T: DeserializeOwned>(file: Option<&Path>) -> anyhow::Result<T> {
    let env: Vec<(String, String)> = std::env::vars().collect();
    load_from(file, env)
}

/// Loads `T` from `file` (if given) and the given environment, so tests inject variables
/// instead of changing the process environment.
pub fn load_from<T: DeserializeOwned>(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<T> {
    let mut figment = Figment::new();
    if let Some(path) = file {
        anyhow::ensure!(
            path.exists(),
            "configuration file {} does not exist",
            path.display()
        );
        figment = figment.merge(Toml::file(path));
    }
    figment
        .merge(Serialized::defaults(env_dict(env)))
        .extract()
        .context("invalid configuration")
}

/// Turns `LIVECAST_SECTION__KEY=value` variables into a nested dictionary
/// (`section.key = value`); values are read as numbers, booleans or arrays when they look so.
fn env_dict(env: impl IntoIterator<Item = (String, String)>) -> Dict {
    let mut root = Dict::new();
    for (key, raw) in env {
        let Some(path) = key.strip_prefix("LIVECAST_") else {
            continue;
        };
        if key == CONFIG_FILE_VAR
            || key == LOG_FORMAT_VAR
            || key.starts_with(TEST_VAR_PREFIX)
            || path.is_empty()
        {
            continue;
        }
        let parts: Vec<String> = path.split("__").map(str::to_ascii_lowercase).collect();
        let value: Value = raw.parse().unwrap_or_else(|never| match never {});
        insert_path(&mut root, &parts, value);
    }
    root
}

fn insert_path(dict: &mut Dict, parts: &[String], value: Value) {
    match parts {
        [] => {}
        [last] => {
            dict.insert(last.clone(), value);
        }
        [first, rest @ ..] => {
            let entry = dict
                .entry(first.clone())
                .or_insert_with(|| Value::from(Dict::new()));
            if !matches!(entry, Value::Dict(..)) {
                *entry = Value::from(Dict::new());
            }
            if let Value::Dict(_, inner) = entry {
                insert_path(inner, rest, value);
            }
        }
    }
}

/// Where an HTTP server listens and how much it accepts.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Address to bind.
    pub addr: SocketAddr,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// How long in-flight requests may take to finish after shutdown starts, in seconds.
    pub drain_seconds: u64,
    /// How long a client may take to send a request head, in milliseconds; an idle keep-alive
    /// connection waiting for its next request is closed after it too.
    pub header_timeout_ms: u64,
    /// How long a connection may go without a byte read or written (no request at all, a
    /// client that stopped reading a response) before it is closed, in milliseconds.
    pub idle_timeout_ms: u64,
    /// Connections one client address may hold open at once; more are closed as they come.
    /// 0 (the default) means no limit: clients behind one NAT or CDN share an address.
    pub max_connections_per_client: usize,
}

impl HttpConfig {
    /// The defaults with another address.
    pub fn on(addr: SocketAddr) -> Self {
        HttpConfig {
            addr,
            ..HttpConfig::default()
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1 << 20,
            drain_seconds: 10,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections_per_client: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, Default)]
    #[serde(default)]
    struct Sample {
        http: HttpConfig,
        region: String,
        backend: Backend,
    }

    #[derive(Debug, Deserialize, Default, PartialEq)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Backend {
        #[default]
        Local,
        Remote {
            endpoint: String,
            port: u16,
        },
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_then_file_then_environment() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("livecast.toml");
        std::fs::write(
            &file,
            "region = \"eu-west\"\n[http]\naddr = \"127.0.0.1:9000\"\nmax_body_bytes = 10\n",
        )
        .unwrap();
        let sample: Sample = load_from(
            Some(&file),
            vars(&[
                ("LIVECAST_HTTP__MAX_BODY_BYTES", "2048"),
                ("LIVECAST_BACKEND__KIND", "remote"),
                ("LIVECAST_BACKEND__ENDPOINT", "http://127.0.0.1"),
                ("LIVECAST_BACKEND__PORT", "9092"),
                ("OTHER_VAR", "ignored"),
                ("LIVECAST_LOG_FORMAT", "json"),
                ("LIVECAST_TEST_KAFKA_BROKERS", "127.0.0.1:9"),
            ]),
        )
        .unwrap();
        assert_eq!(sample.region, "eu-west");
        assert_eq!(sample.http.addr.port(), 9000);
        assert_eq!(sample.http.max_body_bytes, 2048);
        assert_eq!(
            sample.http.drain_seconds,
            HttpConfig::default().drain_seconds
        );
        assert_eq!(
            sample.backend,
            Backend::Remote {
                endpoint: "http://127.0.0.1".into(),
                port: 9092
            }
        );
    }

    #[test]
    fn bad_values_and_missing_files_are_reported() {
        let error = load_from::<Sample>(None, vars(&[("LIVECAST_HTTP__ADDR", "not an address")]))
            .unwrap_err();
        assert!(
            format!("{error:#}").contains("invalid configuration"),
            "{error:#}"
        );
        let missing = load_from::<Sample>(Some(Path::new("/nonexistent/livecast.toml")), vec![]);
        assert!(missing.is_err());
        let defaults: Sample = load_from(None, vec![]).unwrap();
        assert_eq!(defaults.backend, Backend::Local);
    }
}
