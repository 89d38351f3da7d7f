//! The viewer-facing routes: `/stream/{stream_id}/master.m3u8`,
//! `/stream/{stream_id}/{rendition}/index.m3u8`, `.../init.mp4` and `.../{seq}.m4s`. A thin
//! adapter over the [`SegmentIndex`] and the [`ObjectCache`].

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    RANGE,
};
use axum::http::{HeaderMap, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use livecast_core::{Error, RenditionName, StreamId, blob_keys};
use livecast_service::ApiError;
use tower_http::cors::{Any, CorsLayer};

use crate::index::{IndexedStream, PlaylistKey, SegmentIndex};
use crate::metrics;
use crate::objects::{ObjectCache, entity_tag};
use crate::playlist;
use crate::reload;
use crate::respond::{IMMUTABLE, INIT_TYPE, PLAYLIST_TYPE, Representation, SEGMENT_TYPE, respond};

/// How long a VOD playlist may be cached: it never changes again.
const VOD_MAX_AGE_SECS: u64 = 86_400;

/// What the handlers share.
#[derive(Debug)]
pub struct EdgeState {
    /// Playlists come from here.
    pub index: SegmentIndex,
    /// Init and media segments come from here.
    pub objects: ObjectCache,
    /// Segments in a live media playlist.
    pub live_window: usize,
}

/// The `/stream/...` routes with CORS for browser players.
pub fn router(state: Arc<EdgeState>) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([RANGE, IF_NONE_MATCH, IF_MODIFIED_SINCE, IF_RANGE])
        .expose_headers([CONTENT_LENGTH, CONTENT_RANGE, ETAG])
        .max_age(Duration::from_secs(VOD_MAX_AGE_SECS));
    Router::new()
        .route("/stream/{stream_id}/{file}", get(stream_file))
        .route(
            "/stream/{stream_id}/{rendition}/{file}",
            get(rendition_file),
        )
        .layer(cors)
        .with_state(state)
}

/// The file a rendition path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RenditionFile {
    Playlist,
    Init,
    Segment(u64),
    /// Part `.1` of segment `.0` (Low-Latency HLS).
    Part(u64, u32),
}

impl RenditionFile {
    /// `index.m3u8`, `init.mp4` or `{seq}.m4s` with `seq` written canonically.
    pub(crate) fn parse(file: &str) -> Option<Self> {
        match file {
            "index.m3u8" => Some(RenditionFile::Playlist),
            "init.mp4" => Some(RenditionFile::Init),
            _ => {
                let name = file.strip_suffix(".m4s")?;
                match name.split_once('.') {
                    None => canonical_number(name).map(RenditionFile::Segment),
                    Some((seq, part)) => Some(RenditionFile::Part(
                        canonical_number(seq)?,
                        canonical_number(part)?,
                    )),
                }
            }
        }
    }

    fn kind(self) -> &'static str {
        match self {
            RenditionFile::Playlist => "media",
            RenditionFile::Init => "init",
            RenditionFile::Segment(_) => "segment",
            RenditionFile::Part(..) => "part",
        }
    }
}

/// Digits written canonically (no sign, no leading zero), as a number that fits.
fn canonical_number<N: std::str::FromStr>(digits: &str) -> Option<N> {
    let canonical = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| digits.parse().ok()).flatten()
}

async fn stream_file(
    State(state): State<Arc<EdgeState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Response {
    let outcome = async {
        let Path((stream, file)) = path.map_err(|e| Error::invalid(e.body_text()))?;
        let id = StreamId::parse(stream)?;
        if file != "master.m3u8" {
            return Err(Error::not_found(format!(
                "stream {id} has no file {file:?}"
            )));
        }
        master(&state, &id, &headers).await
    }
    .await;
    finish("master", outcome)
}

async fn rendition_file(
    State(state): State<Arc<EdgeState>>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Response {
    let mut kind = "other";
    let outcome = async {
        let Path((stream, rendition, file)) = path.map_err(|e| Error::invalid(e.body_text()))?;
        let id = StreamId::parse(stream)?;
        let rendition = RenditionName::parse(rendition)?;
        let file = RenditionFile::parse(&file).ok_or_else(|| {
            Error::not_found(format!(
                "{file:?} is not a file of a rendition (index.m3u8, init.mp4, SEQ.m4s or SEQ.PART.m4s)"
            ))
        })?;
        kind = file.kind();
        let stream = state.index.stream(&id).await?;
        match file {
            RenditionFile::Playlist => {
                reload::media(&state, &stream, &rendition, &headers, query.as_deref()).await
            }
            RenditionFile::Part(seq, part) => {
                reload::part(&state, &stream, &rendition, (seq, part), &headers).await
            }
            RenditionFile::Init => init(&state, &stream, &rendition, &headers).await,
            RenditionFile::Segment(seq) => {
                segment(&state, &stream, &rendition, seq, &headers).await
            }
        }
    }
    .await;
    finish(kind, outcome)
}

/// Counts the request and turns an error into its JSON answer, never cached for long (a
/// stream with no segments yet will have some in a moment).
fn finish(kind: &str, outcome: Result<Response, Error>) -> Response {
    let mut response = match outcome {
        Ok(response) => response,
        Err(error) => {
            let mut response = ApiError(error).into_response();
            response
                .headers_mut()
                .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
    };
    metrics::request(kind, response.status().as_u16());
    if response.status().is_server_error() {
        response
            .headers_mut()
            .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

pub(crate) fn not_available(id: &StreamId) -> Error {
    Error::not_found(format!("stream {id} is not available"))
}

pub(crate) fn no_segments(id: &StreamId) -> Error {
    Error::not_found(format!("stream {id} has no segments yet"))
}

/// Live playlists change every segment: cache them for about half a target duration.
pub(crate) fn playlist_cache_control(complete: bool, target_duration_secs: u64) -> String {
    if complete {
        format!("public, max-age={VOD_MAX_AGE_SECS}")
    } else {
        format!("public, max-age={}", (target_duration_secs / 2).max(1))
    }
}

async fn master(state: &EdgeState, id: &StreamId, headers: &HeaderMap) -> Result<Response, Error> {
    let stream = state.index.stream(id).await?;
    let (playlist, ()) = stream.playlist(
        &PlaylistKey::Master,
        |timeline| {
            if timeline.is_gone() {
                return Err(not_available(id));
            }
            let body = playlist::master(timeline).ok_or_else(|| no_segments(id))?;
            let target = timeline
                .playable()
                .map(|(_, rendition)| rendition.target_duration_secs())
                .max()
                .unwrap_or(1);
            Ok(Representation {
                etag: entity_tag(body.as_bytes()),
                body: body.into(),
                content_type: PLAYLIST_TYPE,
                cache_control: playlist_cache_control(timeline.is_complete(), target),
                last_modified_ms: None,
            })
        },
        |_| (),
    )?;
    Ok(respond(headers, playlist))
}

async fn init(
    state: &EdgeState,
    stream: &IndexedStream,
    rendition: &RenditionName,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let id = stream.id();
    let first_segment_at = {
        let timeline = stream.read();
        if timeline.is_gone() {
            return Err(not_available(id));
        }
        timeline
            .rendition(rendition)
            .and_then(|r| r.first())
            .map(|s| s.program_date_time_ms)
            .ok_or_else(|| Error::not_found(format!("stream {id} has no rendition {rendition}")))?
    };
    let object = state
        .objects
        .get(&blob_keys::init_segment(id, rendition))
        .await?;
    Ok(respond(
        headers,
        Representation {
            body: object.body,
            content_type: INIT_TYPE,
            cache_control: IMMUTABLE.into(),
            etag: object.etag.to_string(),
            last_modified_ms: Some(first_segment_at),
        },
    ))
}

async fn segment(
    state: &EdgeState,
    stream: &IndexedStream,
    rendition: &RenditionName,
    seq: u64,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let id = stream.id();
    let ends_at = {
        let timeline = stream.read();
        if timeline.is_gone() {
            return Err(not_available(id));
        }
        // Only listed segments are fetched: an unlisted one never reaches the blob store, and
        // a gap has no bytes anywhere.
        let segment = timeline
            .rendition(rendition)
            .and_then(|r| r.segment(seq))
            .ok_or_else(|| {
                Error::not_found(format!("segment {seq} of {id}/{rendition} is not listed"))
            })?;
        if segment.is_gap() {
            return Err(Error::not_found(format!(
                "segment {seq} of {id}/{rendition} is a gap: take another rendition"
            )));
        }
        segment.program_date_time_ms + i64::from(segment.duration_ms)
    };
    let key = blob_keys::media_segment(id, rendition, seq);
    media_object(state, &key, Some(ends_at), headers).await
}

/// A media segment or part from the cache: immutable once written.
pub(crate) async fn media_object(
    state: &EdgeState,
    key: &str,
    last_modified_ms: Option<i64>,
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let object = state.objects.get(key).await?;
    Ok(respond(
        headers,
        Representation {
            body: object.body,
            content_type: SEGMENT_TYPE,
            cache_control: IMMUTABLE.into(),
            etag: object.etag.to_string(),
            last_modified_ms,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendition_files_are_parsed_canonically() {
        assert_eq!(
            RenditionFile::parse("index.m3u8"),
            Some(RenditionFile::Playlist)
        );
        assert_eq!(RenditionFile::parse("init.mp4"), Some(RenditionFile::Init));
        assert_eq!(
            RenditionFile::parse("0.m4s"),
            Some(RenditionFile::Segment(0))
        );
        assert_eq!(
            RenditionFile::parse("42.m4s"),
            Some(RenditionFile::Segment(42))
        );
        assert_eq!(
            RenditionFile::parse("42.3.m4s"),
            Some(RenditionFile::Part(42, 3))
        );
        for bad in [
            "42.03.m4s",
            "42..m4s",
            ".3.m4s",
            "1.2.3.m4s",
            "01.m4s",
            ".m4s",
            "-1.m4s",
            "1.ts",
            "x.m4s",
            "99999999999999999999.m4s",
        ] {
            assert_eq!(RenditionFile::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn live_playlists_are_cached_for_half_a_target_duration() {
        assert_eq!(playlist_cache_control(false, 2), "public, max-age=1");
        assert_eq!(playlist_cache_control(false, 6), "public, max-age=3");
        assert_eq!(playlist_cache_control(false, 1), "public, max-age=1");
        assert_eq!(playlist_cache_control(true, 2), "public, max-age=86400");
    }
}
