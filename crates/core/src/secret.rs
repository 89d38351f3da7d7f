//! A secret value (token, password, key) that never shows in logs or `Debug` output.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Deserializer};

/// A secret string. `Debug` prints `[redacted]`; [`Secret::expose`] is called only where the
/// value is used.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Reads a secret from a file (a mounted Kubernetes secret), without its final newline.
    pub fn read_file(path: &Path) -> std::io::Result<Secret> {
        let text = std::fs::read_to_string(path)?;
        Ok(Secret(text.trim_end_matches(['\n', '\r']).to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn a_secret_file_is_read_without_its_newline() {
        let dir = std::env::temp_dir().join(format!("livecast-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "s3cr3t\n").unwrap();
        assert_eq!(Secret::read_file(&path).unwrap().expose(), "s3cr3t");
        assert!(Secret::read_file(&dir.join("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
