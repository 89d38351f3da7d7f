//! One HTTP representation answered the way CDNs and players expect: validators (`ETag`,
//! `Last-Modified`) with conditional requests (304), single byte ranges (206, 416) and the
//! same headers for `HEAD` (axum drops the body of a `HEAD` answer and keeps its length).

use std::ops::Range;
use std::time::{Duration, UNIX_EPOCH};

use axum::body::Body;
use axum::http::header::{
    ACCEPT_RANGES, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, ETAG,
    IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LAST_MODIFIED, RANGE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;

/// Playlists.
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// CMAF init segments.
pub const INIT_TYPE: &str = "video/mp4";
/// CMAF media segments.
pub const SEGMENT_TYPE: &str = "video/iso.segment";
/// Objects whose name never points at other bytes.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// What is served, with its validators.
#[derive(Debug, Clone)]
pub struct Representation {
    /// The whole body.
    pub body: Bytes,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Cache-Control`.
    pub cache_control: String,
    /// A strong entity tag, quoted.
    pub etag: String,
    /// When the content last changed, ms since the epoch.
    pub last_modified_ms: Option<i64>,
}

/// Which part of a body a `Range` header asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: the whole body (multiple ranges and malformed headers end up here,
    /// as RFC 9110 allows).
    Full,
    /// One satisfiable range of bytes.
    Partial(Range<u64>),
    /// A well-formed range that lies outside the body.
    Unsatisfiable,
}

/// Parses `Range: bytes=a-b`, `bytes=a-` or `bytes=-n` against a body of `len` bytes.
pub fn parse_range(header: &str, len: u64) -> RangeRequest {
    let Some((unit, spec)) = header.trim().split_once('=') else {
        return RangeRequest::Full;
    };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let number = |text: &str| {
        (!text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<u64>().ok())
            .flatten()
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match number(suffix) {
            None => RangeRequest::Full,
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial(len.saturating_sub(n)..len),
        },
        (start, "") => match number(start) {
            None => RangeRequest::Full,
            Some(start) if start >= len => RangeRequest::Unsatisfiable,
            Some(start) => RangeRequest::Partial(start..len),
        },
        (start, end) => match (number(start), number(end)) {
            (Some(start), Some(end)) if start <= end => {
                if start >= len {
                    RangeRequest::Unsatisfiable
                } else {
                    RangeRequest::Partial(start..end.saturating_add(1).min(len))
                }
            }
            _ => RangeRequest::Full,
        },
    }
}

/// Whether an `If-None-Match` value names `etag` (weak comparison, `*` matches anything).
fn none_match_hits(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

fn http_date(ms: i64) -> Option<HeaderValue> {
    let at = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).ok()?);
    HeaderValue::from_str(&httpdate::fmt_http_date(at)).ok()
}

fn unmodified_since(request: &HeaderMap, last_modified_ms: Option<i64>) -> bool {
    let (Some(ms), Some(since)) = (last_modified_ms, request.get(IF_MODIFIED_SINCE)) else {
        return false;
    };
    let Some(since) = since
        .to_str()
        .ok()
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return false;
    };
    let since_secs = since.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    u64::try_from(ms).is_ok_and(|ms| ms / 1000 <= since_secs)
}

/// Answers a `GET` or `HEAD` of `representation` given the request's headers.
pub fn respond(request: &HeaderMap, representation: Representation) -> Response {
    let len = representation.body.len() as u64;
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static(representation.content_type),
    );
    if let Ok(value) = HeaderValue::from_str(&representation.cache_control) {
        headers.insert(CACHE_CONTROL, value);
    }
    if let Ok(value) = HeaderValue::from_str(&representation.etag) {
        headers.insert(ETAG, value);
    }
    if let Some(value) = representation.last_modified_ms.and_then(http_date) {
        headers.insert(LAST_MODIFIED, value);
    }
    headers.insert(ACCEPT_RANGES, HeaderValue::from_static("bytes"));

    // If-None-Match wins over If-Modified-Since when both are sent (RFC 9110 13.2.2).
    let not_modified = match request.get(IF_NONE_MATCH).map(HeaderValue::to_str) {
        Some(Ok(value)) => none_match_hits(value, &representation.etag),
        Some(Err(_)) => false,
        None => unmodified_since(request, representation.last_modified_ms),
    };
    if not_modified {
        headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
        return build(StatusCode::NOT_MODIFIED, headers, Body::empty());
    }

    let if_range_matches = request
        .get(IF_RANGE)
        .is_none_or(|value| value.as_bytes() == representation.etag.as_bytes());
    let range = match request.get(RANGE).map(HeaderValue::to_str) {
        Some(Ok(value)) if if_range_matches => parse_range(value, len),
        _ => RangeRequest::Full,
    };
    match range {
        RangeRequest::Full => build(StatusCode::OK, headers, Body::from(representation.body)),
        RangeRequest::Partial(range) => {
            let content_range = format!("bytes {}-{}/{len}", range.start, range.end - 1);
            if let Ok(value) = HeaderValue::from_str(&content_range) {
                headers.insert(CONTENT_RANGE, value);
            }
            let part = representation
                .body
                .slice(range.start as usize..range.end as usize);
            build(StatusCode::PARTIAL_CONTENT, headers, Body::from(part))
        }
        RangeRequest::Unsatisfiable => {
            headers.remove(CONTENT_TYPE);
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{len}")) {
                headers.insert(CONTENT_RANGE, value);
            }
            build(StatusCode::RANGE_NOT_SATISFIABLE, headers, Body::empty())
        }
    }
}

fn build(status: StatusCode, headers: HeaderMap, body: Body) -> Response {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::SystemTime;

    fn now_ms() -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64)
    }

    fn representation() -> Representation {
        Representation {
            body: Bytes::from_static(b"0123456789"),
            content_type: SEGMENT_TYPE,
            cache_control: IMMUTABLE.into(),
            etag: "\"abc\"".into(),
            last_modified_ms: Some(now_ms() - 60_000),
        }
    }

    fn request(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-3", 10), RangeRequest::Partial(0..4));
        assert_eq!(parse_range("bytes=5-", 10), RangeRequest::Partial(5..10));
        assert_eq!(parse_range("bytes=-3", 10), RangeRequest::Partial(7..10));
        assert_eq!(parse_range("bytes=-30", 10), RangeRequest::Partial(0..10));
        assert_eq!(parse_range("bytes=8-100", 10), RangeRequest::Partial(8..10));
        assert_eq!(parse_range("bytes=10-", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 10), RangeRequest::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-0", 0), RangeRequest::Unsatisfiable);
        for ignored in [
            "bytes=3-1",
            "bytes=0-1,4-5",
            "items=0-1",
            "bytes=a-b",
            "0-1",
        ] {
            assert_eq!(parse_range(ignored, 10), RangeRequest::Full, "{ignored}");
        }
    }

    #[test]
    fn validators_give_304_and_ranges_give_206_or_416() {
        let ok = respond(&request(&[]), representation());
        assert_eq!(ok.status(), StatusCode::OK);
        assert_eq!(ok.headers()[ETAG], "\"abc\"");
        let hit = respond(
            &request(&[("if-none-match", "W/\"x\", \"abc\"")]),
            representation(),
        );
        assert_eq!(hit.status(), StatusCode::NOT_MODIFIED);
        let miss = respond(&request(&[("if-none-match", "\"x\"")]), representation());
        assert_eq!(miss.status(), StatusCode::OK);
        let since = httpdate::fmt_http_date(SystemTime::now());
        let fresh = respond(&request(&[("if-modified-since", &since)]), representation());
        assert_eq!(fresh.status(), StatusCode::NOT_MODIFIED);
        let part = respond(&request(&[("range", "bytes=2-4")]), representation());
        assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
        assert_eq!(part.headers()[CONTENT_RANGE], "bytes 2-4/10");
        let stale_if_range = respond(
            &request(&[("range", "bytes=2-4"), ("if-range", "\"old\"")]),
            representation(),
        );
        assert_eq!(stale_if_range.status(), StatusCode::OK);
        let beyond = respond(&request(&[("range", "bytes=20-")]), representation());
        assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
        assert_eq!(beyond.headers()[CONTENT_RANGE], "bytes */10");
    }

    proptest! {
        #[test]
        fn a_partial_range_is_never_empty_nor_beyond_the_body(
            header in prop_oneof!["\\PC{0,24}", "bytes= ?[0-9]{0,3}-[0-9]{0,3}"],
            len in 0u64..64,
        ) {
            if let RangeRequest::Partial(range) = parse_range(&header, len) {
                prop_assert!(range.start < range.end);
                prop_assert!(range.end <= len);
            }
        }
    }
}
