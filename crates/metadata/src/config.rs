//! Which metadata store to open, as the service configuration names it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use livecast_core::Secret;

use crate::MetadataError;

/// The metadata store to open: `kind = "embedded"` (a SQLite file) or `kind = "scylla"`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum MetadataConfig {
    /// The embedded store: one SQLite file, created with its directory if missing.
    Embedded {
        /// The database file.
        path: PathBuf,
    },
    /// ScyllaDB (or Cassandra 4+), the production store.
    Scylla {
        /// Contact points, `host:port`.
        nodes: Vec<String>,
        /// The keyspace; created with the schema if missing.
        keyspace: String,
        /// The datacenter of this region: requests go to its replicas (`LOCAL_QUORUM`).
        local_datacenter: String,
        /// The user name, when the cluster requires authentication.
        #[serde(default)]
        username: Option<String>,
        /// The password (prefer `password_file`).
        #[serde(default)]
        password: Option<Secret>,
        /// A file holding the password (a mounted Kubernetes secret).
        #[serde(default)]
        password_file: Option<PathBuf>,
        /// The replication factor in `local_datacenter` used only when the keyspace is created.
        #[serde(default = "default_replication_factor")]
        replication_factor: u32,
    },
}

fn default_replication_factor() -> u32 {
    3
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig::Embedded {
            path: PathBuf::from("data/metadata.sqlite3"),
        }
    }
}

/// A user name and password for the CQL cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScyllaCredentials {
    /// The user name.
    pub username: String,
    /// The password.
    pub password: Secret,
}

/// Everything the Scylla store needs to connect, resolved and validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScyllaSettings {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    /// The keyspace (letters, digits and `_`, starting with a letter, at most 48 characters).
    pub keyspace: String,
    /// The local datacenter.
    pub local_datacenter: String,
    /// Credentials, if the cluster requires them.
    pub credentials: Option<ScyllaCredentials>,
    /// Replication factor in the local datacenter when the keyspace is created.
    pub replication_factor: u32,
    /// How long connecting (and the initial metadata fetch) may take before `Unavailable`.
    pub connect_timeout: Duration,
    /// How long one request may take before it fails.
    pub request_timeout: Duration,
}

impl ScyllaSettings {
    /// Settings with the default timeouts and replication factor, no credentials.
    pub fn new(nodes: Vec<String>, keyspace: &str, local_datacenter: &str) -> Self {
        ScyllaSettings {
            nodes,
            keyspace: keyspace.to_owned(),
            local_datacenter: local_datacenter.to_owned(),
            credentials: None,
            replication_factor: default_replication_factor(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
        }
    }

    /// Checks every field that ends up in CQL text or decides the connection.
    pub fn validate(&self) -> Result<(), MetadataError> {
        if self.nodes.is_empty() || self.nodes.iter().any(|n| n.trim().is_empty()) {
            return Err(MetadataError::Invalid(
                "scylla nodes must list at least one host:port".into(),
            ));
        }
        validate_keyspace(&self.keyspace)?;
        let dc = &self.local_datacenter;
        if dc.is_empty()
            || dc.len() > 64
            || !dc
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(MetadataError::Invalid(format!(
                "local_datacenter {dc:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
            )));
        }
        if self.replication_factor == 0 {
            return Err(MetadataError::Invalid(
                "replication_factor must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// Checks that `keyspace` is a plain CQL identifier, safe to put in statement text.
pub fn validate_keyspace(keyspace: &str) -> Result<(), MetadataError> {
    let mut chars = keyspace.chars();
    let starts_with_letter = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !starts_with_letter
        || keyspace.len() > 48
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Err(MetadataError::Invalid(format!(
            "keyspace {keyspace:?} must start with a letter and hold at most 48 letters, digits \
             or '_'"
        )));
    }
    Ok(())
}

impl MetadataConfig {
    /// The Scylla settings of a `scylla` config, reading `password_file` if set; `None` for
    /// the embedded store.
    pub fn scylla_settings(&self) -> Result<Option<ScyllaSettings>, MetadataError> {
        let MetadataConfig::Scylla {
            nodes,
            keyspace,
            local_datacenter,
            username,
            password,
            password_file,
            replication_factor,
        } = self
        else {
            return Ok(None);
        };
        let password = match (password, password_file) {
            (Some(_), Some(_)) => {
                return Err(MetadataError::Invalid(
                    "set only one of password and password_file".into(),
                ));
            }
            (Some(password), None) => Some(password.clone()),
            (None, Some(path)) => Some(read_secret_file(path)?),
            (None, None) => None,
        };
        let credentials = match (username, password) {
            (Some(username), Some(password)) => Some(ScyllaCredentials {
                username: username.clone(),
                password,
            }),
            (None, None) => None,
            _ => {
                return Err(MetadataError::Invalid(
                    "scylla username and password must be set together".into(),
                ));
            }
        };
        let mut settings = ScyllaSettings::new(nodes.clone(), keyspace, local_datacenter);
        settings.credentials = credentials;
        settings.replication_factor = *replication_factor;
        settings.validate()?;
        Ok(Some(settings))
    }
}

fn read_secret_file(path: &Path) -> Result<Secret, MetadataError> {
    Secret::read_file(path).map_err(|e| {
        MetadataError::Invalid(format!("cannot read password_file {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scylla(json: serde_json::Value) -> Result<MetadataConfig, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn both_kinds_deserialize_and_debug_redacts_the_password() {
        let embedded =
            scylla(serde_json::json!({"kind": "embedded", "path": "/tmp/m.db"})).unwrap();
        assert_eq!(embedded.scylla_settings().unwrap(), None);
        let config = scylla(serde_json::json!({
            "kind": "scylla",
            "nodes": ["10.0.0.1:9042"],
            "keyspace": "livecast",
            "local_datacenter": "eu-west",
            "username": "livecast",
            "password": "hunter2",
        }))
        .unwrap();
        assert!(!format!("{config:?}").contains("hunter2"));
        let settings = config.scylla_settings().unwrap().unwrap();
        assert_eq!(settings.replication_factor, 3);
        assert_eq!(
            settings.credentials.as_ref().unwrap().password.expose(),
            "hunter2"
        );
        assert!(!format!("{settings:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        assert!(scylla(serde_json::json!({"kind": "embedded", "path": "x", "pth": "y"})).is_err());
        assert!(scylla(serde_json::json!({"kind": "postgres"})).is_err());
    }

    #[test]
    fn the_password_can_come_from_a_file_but_not_from_both() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cr3t\n").unwrap();
        let base = serde_json::json!({
            "kind": "scylla", "nodes": ["n:9042"], "keyspace": "ks",
            "local_datacenter": "dc1", "username": "u", "password_file": file,
        });
        let settings = scylla(base.clone())
            .unwrap()
            .scylla_settings()
            .unwrap()
            .unwrap();
        assert_eq!(settings.credentials.unwrap().password.expose(), "s3cr3t");
        let mut both = base;
        both["password"] = "x".into();
        assert!(scylla(both).unwrap().scylla_settings().is_err());
    }

    #[test]
    fn names_that_would_break_cql_are_invalid() {
        for bad in ["", "1ks", "ks; DROP", "a-b", &"k".repeat(49)] {
            assert!(validate_keyspace(bad).is_err(), "{bad:?}");
        }
        assert!(validate_keyspace("livecast_test_1").is_ok());
        let mut settings = ScyllaSettings::new(vec!["n:9042".into()], "ks", "dc1");
        assert!(settings.validate().is_ok());
        settings.local_datacenter = "dc' : 1}".into();
        assert!(settings.validate().is_err());
        settings.local_datacenter = "dc1".into();
        settings.nodes.clear();
        assert!(settings.validate().is_err());
    }
}
