//! Handlers for `/v1/videos`.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use livecast_core::time::now_millis;
use livecast_core::{Error, RegionName, StreamId, StreamRecord, StreamStatus};
use livecast_metadata::{StreamQuery, StreamSort};
use livecast_service::{ApiError, ApiJson};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiState;
use super::auth::{Admin, MaybeAdmin};
use super::views::{
    CreateVideo, CreatedVideoView, StatusChange, UpdateVideo, VideoList, VideoView,
    parse_status_filter, parse_time,
};
use crate::catalogue::{NewStream, StreamPatch};
use crate::keys::StreamKey;

/// Default page size.
const DEFAULT_LIMIT: u32 = 20;
/// Largest page size.
pub const MAX_LIMIT: u32 = 100;

/// Query of `GET /v1/videos`.
#[derive(Debug, Default, Deserialize, IntoParams)]
pub struct ListParams {
    /// Comma-separated statuses: `live`, `completed`, `upcoming` or proto names.
    status: Option<String>,
    /// Case-insensitive part of the name.
    q: Option<String>,
    /// Start time at or after (RFC 3339).
    from: Option<String>,
    /// Start time at or before (RFC 3339).
    to: Option<String>,
    /// `started_at`, `-started_at` (default) or `name`.
    sort: Option<String>,
    /// From the previous page's `next_page_token`.
    page_token: Option<String>,
    /// Page size, 1 to 100 (default 20).
    limit: Option<u32>,
}

type ApiResult<T> = Result<T, ApiError>;

fn stream_id(raw: &str) -> Result<StreamId, ApiError> {
    Ok(StreamId::parse(raw)?)
}

fn view(state: &ApiState, record: &StreamRecord) -> VideoView {
    VideoView::of(record, &state.urls, now_millis())
}

fn created_view(state: &ApiState, record: &StreamRecord, key: &StreamKey) -> CreatedVideoView {
    CreatedVideoView {
        video: view(state, record),
        stream_key: key.expose().to_string(),
        rtmp_url: state.urls.rtmp_url(key),
        hls_push_url: state.urls.hls_push_url(key),
    }
}

/// Lists streams, newest first by default. Viewers see only public streams.
#[utoipa::path(get, path = "/v1/videos", params(ListParams),
    responses((status = 200, body = VideoList), (status = 400, description = "bad filter")))]
pub async fn list_videos(
    State(state): State<Arc<ApiState>>,
    MaybeAdmin(admin): MaybeAdmin,
    params: Result<Query<ListParams>, QueryRejection>,
) -> ApiResult<Json<VideoList>> {
    let Query(params) = params.map_err(|e| Error::invalid(e.body_text()))?;
    let mut statuses = match &params.status {
        Some(text) => parse_status_filter(text)?,
        None => Vec::new(),
    };
    if !admin {
        if statuses.is_empty() {
            statuses = StreamStatus::ALL
                .into_iter()
                .filter(|s| s.is_public())
                .collect();
        } else {
            statuses.retain(|s| s.is_public());
            if statuses.is_empty() {
                return Ok(Json(VideoList {
                    items: Vec::new(),
                    next_page_token: None,
                }));
            }
        }
    }
    let sort = match params.sort.as_deref() {
        None | Some("-started_at") => StreamSort::StartTimeDesc,
        Some("started_at") => StreamSort::StartTimeAsc,
        Some("name") => StreamSort::NameAsc,
        Some(other) => {
            return Err(Error::invalid(format!(
                "sort {other:?} is not one of started_at, -started_at, name"
            ))
            .into());
        }
    };
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(format!("limit must be between 1 and {MAX_LIMIT}")).into());
    }
    let query = StreamQuery {
        statuses,
        name_contains: params.q.filter(|q| !q.trim().is_empty()),
        start_from: params
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        start_to: params
            .to
            .as_deref()
            .map(|t| parse_time("to", t))
            .transpose()?,
        sort,
        page_token: params.page_token.filter(|t| !t.is_empty()),
        limit,
    };
    let page = state.catalogue.list(&query).await?;
    Ok(Json(VideoList {
        items: page.items.iter().map(|r| view(&state, r)).collect(),
        next_page_token: page.next_page_token,
    }))
}

/// One stream. Streams that are not public are visible to admins only.
#[utoipa::path(get, path = "/v1/videos/{id}",
    responses((status = 200, body = VideoView), (status = 404, description = "unknown id")))]
pub async fn get_video(
    State(state): State<Arc<ApiState>>,
    MaybeAdmin(admin): MaybeAdmin,
    Path(id): Path<String>,
) -> ApiResult<Json<VideoView>> {
    let id = stream_id(&id)?;
    let record = state.catalogue.get(&id).await?;
    if !admin && !record.status.is_public() {
        return Err(Error::not_found(format!("no stream with id {id}")).into());
    }
    Ok(Json(view(&state, &record)))
}

/// Creates a stream and returns its secret key and ingest URLs (shown once).
#[utoipa::path(post, path = "/v1/videos", request_body = CreateVideo,
    responses((status = 201, body = CreatedVideoView), (status = 401), (status = 422)))]
pub async fn create_video(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    ApiJson(body): ApiJson<CreateVideo>,
) -> ApiResult<(StatusCode, Json<CreatedVideoView>)> {
    let new = NewStream {
        name: body.name,
        description: body.description,
        thumbnail_url: body.thumbnail_url,
        scheduled_start: body
            .scheduled_start
            .as_deref()
            .map(|t| parse_time("scheduled_start", t))
            .transpose()?,
        home_region: body.region.map(RegionName::parse).transpose()?,
    };
    let (record, key) = state.catalogue.create(new).await?;
    Ok((
        StatusCode::CREATED,
        Json(created_view(&state, &record, &key)),
    ))
}

/// Updates a stream's metadata.
#[utoipa::path(put, path = "/v1/videos/{id}", request_body = UpdateVideo,
    responses((status = 200, body = VideoView), (status = 401), (status = 404)))]
pub async fn update_video(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<UpdateVideo>,
) -> ApiResult<Json<VideoView>> {
    let id = stream_id(&id)?;
    let scheduled_start = match body.scheduled_start {
        None => None,
        Some(None) => Some(None),
        Some(Some(text)) => Some(Some(parse_time("scheduled_start", &text)?)),
    };
    let patch = StreamPatch {
        name: body.name,
        description: body.description,
        thumbnail_url: body.thumbnail_url,
        scheduled_start,
    };
    let record = state.catalogue.update(&id, patch).await?;
    Ok(Json(view(&state, &record)))
}

/// Moves a stream through its lifecycle; an illegal transition is 409.
#[utoipa::path(put, path = "/v1/videos/{id}/status", request_body = StatusChange,
    responses((status = 200, body = VideoView), (status = 409, description = "illegal transition")))]
pub async fn change_status(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<StatusChange>,
) -> ApiResult<Json<VideoView>> {
    let id = stream_id(&id)?;
    let to: StreamStatus = body.status.parse()?;
    let record = state.catalogue.change_status(&id, to).await?;
    Ok(Json(view(&state, &record)))
}

/// Issues a new stream key; the old one stops working.
#[utoipa::path(post, path = "/v1/videos/{id}/stream-key:rotate",
    responses((status = 200, body = CreatedVideoView), (status = 404)))]
pub async fn rotate_key(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<Json<CreatedVideoView>> {
    let id = stream_id(&id)?;
    let (record, key) = state.catalogue.rotate_key(&id).await?;
    Ok(Json(created_view(&state, &record, &key)))
}

/// Deletes a stream and its segment index; its media cleanup is queued.
#[utoipa::path(delete, path = "/v1/videos/{id}",
    responses((status = 204), (status = 401), (status = 404)))]
pub async fn delete_video(
    State(state): State<Arc<ApiState>>,
    _admin: Admin,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = stream_id(&id)?;
    state.catalogue.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}
