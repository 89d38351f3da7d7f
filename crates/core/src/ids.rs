//! Typed ids. Every id ends up in a URL path, a blob key or a Kafka key, so each is checked once
//! at the boundary: 1 to 64 characters from `[A-Za-z0-9_-]` (a `.` is allowed inside but never
//! `..`, a leading `.`, `/`, `\` or a control character).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::Error;

/// Longest id accepted anywhere.
pub const MAX_ID_LEN: usize = 64;

/// Checks that `value` is safe to use as a path segment; `what` names the id in the message.
pub fn validate_id(what: &str, value: &str) -> Result<(), Error> {
    if value.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if value.len() > MAX_ID_LEN {
        return Err(Error::invalid(format!(
            "{what} is {} characters long; the limit is {MAX_ID_LEN}",
            value.len()
        )));
    }
    if value.starts_with('.') || value.contains("..") {
        return Err(Error::invalid(format!(
            "{what} {value:?} must not start with '.' or contain '..'"
        )));
    }
    if let Some(bad) = value
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
    {
        return Err(Error::invalid(format!(
            "{what} {:?} contains {bad:?}; only letters, digits, '-', '_' and '.' are allowed",
            value.escape_debug().to_string()
        )));
    }
    Ok(())
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value` and wraps it.
            pub fn parse(value: impl Into<String>) -> Result<Self, Error> {
                let value = value.into();
                validate_id($what, &value)?;
                Ok($name(value))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Error> {
                $name::parse(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(deserializer)?;
                $name::parse(raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

define_id!(
    /// The id of a stream: its catalogue entry, its blob prefix and its Kafka key.
    StreamId,
    "stream id"
);
define_id!(
    /// The name of one rung of the ladder (`720p`, `audio`).
    RenditionName,
    "rendition"
);
define_id!(
    /// A region of the fleet (`eu-west`).
    RegionName,
    "region"
);
define_id!(
    /// The id of one event, used by consumers to drop duplicates.
    EventId,
    "event id"
);

impl StreamId {
    /// A new, time-ordered stream id.
    pub fn generate() -> StreamId {
        StreamId(uuid::Uuid::now_v7().simple().to_string())
    }
}

impl EventId {
    /// A new, time-ordered event id.
    pub fn generate() -> EventId {
        EventId(uuid::Uuid::now_v7().simple().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn path_tricks_are_rejected_with_a_message() {
        for bad in [
            "", "..", "../etc", "a/b", "a\\b", ".hidden", "a..b", "a\nb", "a b", "é",
        ] {
            let err = StreamId::parse(bad).unwrap_err();
            assert_eq!(err.kind, crate::ErrorKind::InvalidArgument, "{bad:?}");
            assert!(err.message.starts_with("stream id"), "{}", err.message);
        }
        let long = "a".repeat(MAX_ID_LEN + 1);
        assert!(StreamId::parse(long).is_err());
    }

    #[test]
    fn ordinary_ids_are_accepted() {
        for good in [
            "abc",
            "720p",
            "eu-west-1",
            "a_b",
            "v1.2",
            &"a".repeat(MAX_ID_LEN),
        ] {
            assert_eq!(StreamId::parse(good).unwrap().as_str(), good);
        }
        let generated = StreamId::generate();
        assert_eq!(StreamId::parse(generated.as_str()).unwrap(), generated);
    }

    #[test]
    fn deserializing_validates() {
        let ok: RenditionName = serde_json::from_str("\"360p\"").unwrap();
        assert_eq!(ok.as_str(), "360p");
        assert!(serde_json::from_str::<RenditionName>("\"../x\"").is_err());
    }

    proptest! {
        #[test]
        fn an_accepted_id_is_always_a_single_safe_path_segment(s in "\\PC{0,80}") {
            if let Ok(id) = StreamId::parse(s.clone()) {
                prop_assert!(!id.as_str().contains('/'));
                prop_assert!(!id.as_str().contains(".."));
                prop_assert!(!id.as_str().chars().any(char::is_control));
                prop_assert!(id.as_str().len() <= MAX_ID_LEN);
            }
        }
    }
}
