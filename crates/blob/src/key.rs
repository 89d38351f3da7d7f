//! Key and prefix validation shared by every backend. The local store turns keys into file
//! paths, so a key must never be able to leave the store's directory; the S3 store applies the
//! same rules so both backends accept exactly the same keys.

use crate::BlobError;

/// Longest key accepted, in bytes (the S3 limit).
pub const MAX_KEY_LEN: usize = 1024;

/// Longest `/`-separated segment accepted, in bytes (a common file-name limit).
pub const MAX_SEGMENT_LEN: usize = 255;

/// Checks a key such as `hls/s1/720p/3.m4s`: not empty, at most [`MAX_KEY_LEN`] bytes,
/// `/`-separated non-empty segments, no leading or trailing `/`, no segment starting with `.`
/// (which rules out `.` and `..`; dot names are reserved for the store's own files), no `\`
/// and no control characters.
pub fn validate_key(key: &str) -> Result<(), BlobError> {
    if key.is_empty() {
        return Err(BlobError::invalid_key(key, "a key must not be empty"));
    }
    check_common(key, key)?;
    for segment in key.split('/') {
        check_segment(key, segment)?;
    }
    Ok(())
}

/// Checks a list prefix: empty (everything) or a key-like string that may end in `/` and whose
/// last segment may be partial (`hls/s1/72` matches `hls/s1/720p/...`).
pub fn validate_prefix(prefix: &str) -> Result<(), BlobError> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_common(prefix, prefix)?;
    let body = prefix.strip_suffix('/').unwrap_or(prefix);
    if body.is_empty() {
        return Err(BlobError::invalid_key(prefix, "a prefix must not be \"/\""));
    }
    for segment in body.split('/') {
        check_segment(prefix, segment)?;
    }
    Ok(())
}

fn check_common(original: &str, text: &str) -> Result<(), BlobError> {
    if text.len() > MAX_KEY_LEN {
        return Err(BlobError::invalid_key(
            &original.chars().take(64).collect::<String>(),
            format!(
                "a key is at most {MAX_KEY_LEN} bytes; this one is {}",
                text.len()
            ),
        ));
    }
    if text.starts_with('/') {
        return Err(BlobError::invalid_key(
            original,
            "a key must not start with '/'",
        ));
    }
    if text.contains('\\') {
        return Err(BlobError::invalid_key(
            original,
            "a key must not contain '\\'",
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(BlobError::invalid_key(
            original,
            "a key must not contain control characters",
        ));
    }
    Ok(())
}

fn check_segment(original: &str, segment: &str) -> Result<(), BlobError> {
    if segment.is_empty() {
        return Err(BlobError::invalid_key(
            original,
            "a key must not have an empty segment (\"//\" or a trailing '/')",
        ));
    }
    if segment.starts_with('.') {
        return Err(BlobError::invalid_key(
            original,
            "no segment may start with '.' (this rules out \".\" and \"..\")",
        ));
    }
    if segment.len() > MAX_SEGMENT_LEN {
        return Err(BlobError::invalid_key(
            original,
            format!("a segment is at most {MAX_SEGMENT_LEN} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_the_documented_layout_are_accepted() {
        for key in [
            "hls/s1/720p/3.m4s",
            "hls/s1/720p/init.mp4",
            "source/s1/0/17.flv",
            "a",
            "caf\u{e9}/x",
        ] {
            assert_eq!(validate_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn path_tricks_and_odd_characters_are_rejected() {
        let long = "a".repeat(MAX_KEY_LEN + 1);
        let long_segment = format!("a/{}", "b".repeat(MAX_SEGMENT_LEN + 1));
        for key in [
            "",
            "/abs",
            "../x",
            "a/../b",
            "a/..",
            "./a",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a\nb",
            "a\u{0}b",
            "a\u{7f}",
            ".hidden",
            long.as_str(),
            long_segment.as_str(),
        ] {
            let error = validate_key(key).expect_err(key);
            assert!(matches!(error, BlobError::InvalidKey { .. }), "{key}");
        }
    }

    #[test]
    fn prefixes_may_be_empty_partial_or_end_in_a_slash() {
        for prefix in ["", "hls/", "hls/s1/72", "hls"] {
            assert_eq!(validate_prefix(prefix), Ok(()), "{prefix}");
        }
        for prefix in ["/", "/hls", "../", "hls/../", "hls//", "a\\b"] {
            assert!(validate_prefix(prefix).is_err(), "{prefix}");
        }
    }
}
