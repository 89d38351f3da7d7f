//! Which bus to open and how to reach it.

use std::time::Duration;

use serde::Deserialize;

use crate::BusError;

/// The event bus a service uses, as written in its config file (`[bus]`) or in
/// `LIVECAST_BUS__*` variables, e.g. `kind = "kafka"`, `brokers = "kafka-1:9092"`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum BusConfig {
    /// In-memory topics shared by everything in this process.
    #[default]
    InProcess,
    /// A Kafka cluster (or another Kafka-protocol broker).
    Kafka {
        /// Comma-separated bootstrap brokers, `host:port,host:port`.
        brokers: String,
        /// The client id brokers log and quota by; defaults to `livecast`.
        client_id: Option<String>,
        /// How long a silent consumer stays in its group before its partitions move; defaults
        /// to 10 s. Heartbeats are sent every third of it.
        session_timeout_ms: Option<u32>,
        /// How long a publish may wait for the brokers before failing; defaults to 30 s.
        publish_timeout_ms: Option<u32>,
        /// Replication factor of topics created by `ensure_topic`; defaults to the broker's.
        replication_factor: Option<i16>,
        // SASL/TLS: add a `security` field here whose secrets come from `*_file` paths and are
        // redacted in Debug; `KafkaSettings::client_config` is the one place that applies it.
    },
}

/// Resolved settings of a [`crate::KafkaBus`], with defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaSettings {
    /// Comma-separated bootstrap brokers.
    pub brokers: String,
    /// The client id sent to the brokers.
    pub client_id: String,
    /// Consumer group session timeout.
    pub session_timeout: Duration,
    /// Upper bound of one publish (librdkafka `message.timeout.ms`).
    pub publish_timeout: Duration,
    /// Replication factor for new topics; `-1` asks for the broker's default.
    pub replication_factor: i32,
}

impl KafkaSettings {
    /// Settings for `brokers` with every default.
    pub fn new(brokers: impl Into<String>) -> Self {
        KafkaSettings {
            brokers: brokers.into(),
            client_id: "livecast".to_owned(),
            session_timeout: Duration::from_secs(10),
            publish_timeout: Duration::from_secs(30),
            replication_factor: -1,
        }
    }

    /// Settings from a `BusConfig::Kafka`; any other kind is an invalid argument.
    pub fn from_config(config: &BusConfig) -> Result<Self, BusError> {
        let BusConfig::Kafka {
            brokers,
            client_id,
            session_timeout_ms,
            publish_timeout_ms,
            replication_factor,
        } = config
        else {
            return Err(BusError::InvalidArgument(
                "the bus config is not of kind kafka".to_owned(),
            ));
        };
        if brokers.split(',').all(|broker| broker.trim().is_empty()) {
            return Err(BusError::InvalidArgument(
                "bus.brokers must list at least one host:port".to_owned(),
            ));
        }
        let mut settings = KafkaSettings::new(brokers.trim());
        if let Some(client_id) = client_id {
            settings.client_id = client_id.clone();
        }
        if let Some(ms) = session_timeout_ms {
            // librdkafka wants heartbeats well inside the session, and at least 1 ms of each.
            if *ms < 3 {
                return Err(BusError::InvalidArgument(format!(
                    "bus.session_timeout_ms = {ms} is too small"
                )));
            }
            settings.session_timeout = Duration::from_millis(u64::from(*ms));
        }
        if let Some(ms) = publish_timeout_ms {
            settings.publish_timeout = Duration::from_millis(u64::from(*ms));
        }
        if let Some(factor) = replication_factor {
            settings.replication_factor = i32::from(*factor);
        }
        Ok(settings)
    }

    /// The properties every client (producer, consumer, admin) shares.
    pub(crate) fn client_config(&self) -> rdkafka::ClientConfig {
        let mut config = rdkafka::ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", &self.client_id)
            // A live pipeline reconnects within a second of a broker coming back, where
            // librdkafka's default backoff grows to 10 s and keeps segments unannounced.
            .set("reconnect.backoff.max.ms", "1000");
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_is_the_default_and_parses_from_its_kind() {
        assert_eq!(BusConfig::default(), BusConfig::InProcess);
        let parsed: BusConfig = serde_json::from_str(r#"{"kind":"in_process"}"#).unwrap();
        assert_eq!(parsed, BusConfig::InProcess);
    }

    #[test]
    fn kafka_parses_with_defaults_filled_in() {
        let parsed: BusConfig =
            serde_json::from_str(r#"{"kind":"kafka","brokers":"k1:9092,k2:9092"}"#).unwrap();
        let settings = KafkaSettings::from_config(&parsed).unwrap();
        assert_eq!(settings, KafkaSettings::new("k1:9092,k2:9092"));

        let parsed: BusConfig = serde_json::from_str(
            r#"{"kind":"kafka","brokers":"k1:9092","client_id":"edge",
                "session_timeout_ms":6000,"publish_timeout_ms":5000,"replication_factor":3}"#,
        )
        .unwrap();
        let settings = KafkaSettings::from_config(&parsed).unwrap();
        assert_eq!(settings.client_id, "edge");
        assert_eq!(settings.session_timeout, Duration::from_secs(6));
        assert_eq!(settings.publish_timeout, Duration::from_secs(5));
        assert_eq!(settings.replication_factor, 3);
    }

    #[test]
    fn typos_and_missing_brokers_are_rejected() {
        let typo = serde_json::from_str::<BusConfig>(r#"{"kind":"kafka","broker":"k1:9092"}"#);
        assert!(typo.is_err());
        let empty = BusConfig::Kafka {
            brokers: " , ".into(),
            client_id: None,
            session_timeout_ms: None,
            publish_timeout_ms: None,
            replication_factor: None,
        };
        assert!(matches!(
            KafkaSettings::from_config(&empty),
            Err(BusError::InvalidArgument(_))
        ));
        assert!(KafkaSettings::from_config(&BusConfig::InProcess).is_err());
    }
}
