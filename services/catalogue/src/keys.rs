//! Stream keys: generated from the OS random source, stored only as a SHA-256 hash.

use std::fmt;

use rand::RngCore;
use sha2::{Digest, Sha256};

/// The prefix that marks a Livecast stream key (helps secret scanners and support staff).
const KEY_PREFIX: &str = "lck_";

/// A secret stream key, shown to the admin once at creation or rotation.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamKey(String);

impl StreamKey {
    /// A fresh key with 256 bits of randomness.
    pub fn generate() -> StreamKey {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        StreamKey(format!("{KEY_PREFIX}{}", hex::encode(bytes)))
    }

    /// The key as given to the broadcaster.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The hash that the metadata store keeps.
    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }
}

impl fmt::Debug for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StreamKey([redacted])")
    }
}

/// SHA-256 of a secret, hex encoded.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_hashed_and_never_printed() {
        let a = StreamKey::generate();
        let b = StreamKey::generate();
        assert_ne!(a, b);
        assert!(a.expose().starts_with(KEY_PREFIX));
        assert_eq!(a.expose().len(), KEY_PREFIX.len() + 64);
        assert_eq!(a.hash(), hash_secret(a.expose()));
        assert_ne!(a.hash(), a.expose());
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
