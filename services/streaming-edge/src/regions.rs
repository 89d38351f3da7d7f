//! Other regions. An object this region's blob store does not hold (a stream ingested
//! elsewhere, not yet replicated here) is pulled from the edges of the other regions, in the
//! configured order, once per object however many viewers ask (the object cache coalesces
//! misses), and written through to this region's blob store.
//!
//! Edges answer each other on `/region/objects/{stream_id}/{rendition}/{file}` from their cache
//! or their own blob store only, never pulling onward, so two regions missing an object cannot
//! ask each other in a loop.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use livecast_blob::{BlobError, BlobStore};
use livecast_core::{Error, RegionName, RenditionName, StreamId, blob_keys};
use livecast_service::ApiError;

use crate::http::{EdgeState, RenditionFile};
use crate::metrics;
use crate::objects::ObjectOrigin;

/// Another region's edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerRegion {
    /// Its name.
    pub region: RegionName,
    /// Base URL of its edges, e.g. `http://edge.eu-west.example:8084`.
    pub base_url: String,
}

/// Reads `edge.peers`: `region=url` pairs separated by commas, in order of preference.
pub fn parse_peers(spec: &str) -> Result<Vec<PeerRegion>, String> {
    spec.split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (region, url) = pair
                .split_once('=')
                .ok_or_else(|| format!("edge.peers entry {pair:?} is not region=url"))?;
            let region = RegionName::parse(region.trim()).map_err(|e| e.message)?;
            let url = url.trim().trim_end_matches('/');
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(format!(
                    "edge.peers URL {url:?} of region {region} is not http(s)"
                ));
            }
            Ok(PeerRegion {
                region,
                base_url: url.to_string(),
            })
        })
        .collect()
}

/// This region's blob store, then the other regions' edges.
#[derive(Debug)]
pub struct RegionChainOrigin {
    local: Arc<dyn BlobStore>,
    peers: Vec<PeerRegion>,
    client: reqwest::Client,
}

impl RegionChainOrigin {
    /// Objects from `local`, else from `peers` in order.
    pub fn new(local: Arc<dyn BlobStore>, peers: Vec<PeerRegion>) -> Self {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(1))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("an HTTP client without TLS options builds");
        RegionChainOrigin {
            local,
            peers,
            client,
        }
    }

    async fn pull(&self, peer: &PeerRegion, key: &str) -> Result<Bytes, Error> {
        let path = key.strip_prefix("hls/").ok_or_else(|| {
            Error::internal(format!("{key} is not an object other regions serve"))
        })?;
        let url = format!("{}/region/objects/{path}", peer.base_url);
        let response = self.client.get(&url).send().await.map_err(|e| {
            Error::unavailable(format!("region {} does not answer: {e}", peer.region))
        })?;
        if !response.status().is_success() {
            return Err(Error::unavailable(format!(
                "region {} answered {} for {key}",
                peer.region,
                response.status()
            )));
        }
        response.bytes().await.map_err(|e| {
            Error::unavailable(format!(
                "region {} broke off sending {key}: {e}",
                peer.region
            ))
        })
    }
}

#[async_trait::async_trait]
impl ObjectOrigin for RegionChainOrigin {
    async fn fetch(&self, key: &str) -> Result<Bytes, Error> {
        let local_error = match self.local.get(key).await {
            Ok(body) => return Ok(body),
            Err(error) => error,
        };
        if !matches!(local_error, BlobError::NotFound { .. }) {
            tracing::warn!(%key, error = %local_error, "this region's blob store failed; asking other regions");
        }
        let mut failures = Vec::new();
        for peer in &self.peers {
            match self.pull(peer, key).await {
                Ok(body) => {
                    metrics::region_pull(peer.region.as_str(), "ok");
                    // Written through in the background: the viewer is not kept waiting, and
                    // the next edge of this region finds it here.
                    let (local, key, copy) = (self.local.clone(), key.to_string(), body.clone());
                    tokio::spawn(async move {
                        if let Err(error) = local.put(&key, copy).await {
                            tracing::warn!(%key, %error, "pulled object not written through");
                        }
                    });
                    return Ok(body);
                }
                Err(error) => {
                    metrics::region_pull(peer.region.as_str(), "failed");
                    failures.push(error.message);
                }
            }
        }
        Err(Error::unavailable(format!(
            "object {key} is not in this region ({local_error}){}",
            failures
                .iter()
                .map(|f| format!("; {f}"))
                .collect::<String>()
        )))
    }

    async fn fetch_local(&self, key: &str) -> Result<Bytes, Error> {
        self.local.get(key).await.map_err(Error::from)
    }
}

/// The route other regions' edges pull from.
pub fn router(state: Arc<EdgeState>) -> Router {
    Router::new()
        .route(
            "/region/objects/{stream_id}/{rendition}/{file}",
            get(object_for_peer),
        )
        .with_state(state)
}

async fn object_for_peer(
    State(state): State<Arc<EdgeState>>,
    path: Result<Path<(String, String, String)>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path((stream, rendition, file)) = path.map_err(|e| Error::invalid(e.body_text()))?;
    let id = StreamId::parse(stream)?;
    let rendition = RenditionName::parse(rendition)?;
    let key = match RenditionFile::parse(&file) {
        Some(RenditionFile::Init) => blob_keys::init_segment(&id, &rendition),
        Some(RenditionFile::Segment(seq)) => blob_keys::media_segment(&id, &rendition, seq),
        Some(RenditionFile::Part(seq, part)) => blob_keys::media_part(&id, &rendition, seq, part),
        _ => {
            return Err(Error::not_found(format!(
                "{file:?} is not an init segment, media segment or part"
            ))
            .into());
        }
    };
    let object = state.objects.get_local(&key).await?;
    metrics::served_to_region();
    Ok((
        StatusCode::OK,
        [(CONTENT_TYPE, "application/octet-stream")],
        object.body,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_read_in_order_and_bad_entries_are_named() {
        let peers = parse_peers(" eu-west=http://edge.eu:8084/ , us-east=https://edge.us").unwrap();
        let read: Vec<(&str, &str)> = peers
            .iter()
            .map(|p| (p.region.as_str(), p.base_url.as_str()))
            .collect();
        assert_eq!(
            read,
            [
                ("eu-west", "http://edge.eu:8084"),
                ("us-east", "https://edge.us")
            ]
        );
        assert!(parse_peers("").unwrap().is_empty());
        assert!(parse_peers("eu-west").unwrap_err().contains("region=url"));
        assert!(parse_peers("eu/west=http://x").is_err());
        assert!(parse_peers("eu=ftp://x").unwrap_err().contains("not http"));
    }
}
