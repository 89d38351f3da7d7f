//! The OpenAPI 3 document, generated from the handlers and views.

use axum::Json;
use utoipa::OpenApi;

use super::videos;
use super::views::{
    CreateVideo, CreatedVideoView, StatusChange, UpdateVideo, VideoList, VideoView,
};

/// The REST API of the catalogue.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Livecast catalogue",
        description = "Live and past streams, and their lifecycle."
    ),
    paths(
        videos::list_videos,
        videos::get_video,
        videos::create_video,
        videos::update_video,
        videos::change_status,
        videos::rotate_key,
        videos::delete_video
    ),
    components(schemas(
        VideoView,
        CreatedVideoView,
        VideoList,
        CreateVideo,
        UpdateVideo,
        StatusChange
    ))
)]
pub struct ApiDoc;

/// `GET /v1/openapi.json`
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
