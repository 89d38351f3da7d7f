//! Wall-clock time as milliseconds since the Unix epoch: what events, records and playlists
//! (`EXT-X-PROGRAM-DATE-TIME`) carry.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
