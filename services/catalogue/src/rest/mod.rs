//! The admin and viewer REST API under `/v1/videos`, a thin adapter over [`Catalogue`].

mod auth;
pub mod openapi;
mod videos;
pub mod views;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post, put};

use crate::catalogue::Catalogue;
use crate::config::PublicUrls;

/// What the handlers share.
#[derive(Debug)]
pub struct ApiState {
    /// The logic.
    pub catalogue: Catalogue,
    /// How URLs handed to clients are built.
    pub urls: PublicUrls,
    /// The admin bearer token.
    pub admin: livecast_service::AdminToken,
}

/// The `/v1/videos` routes and the OpenAPI document at `/v1/openapi.json`.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route(
            "/v1/videos",
            get(videos::list_videos).post(videos::create_video),
        )
        .route(
            "/v1/videos/{id}",
            get(videos::get_video)
                .put(videos::update_video)
                .delete(videos::delete_video),
        )
        .route("/v1/videos/{id}/status", put(videos::change_status))
        .route(
            "/v1/videos/{id}/stream-key:rotate",
            post(videos::rotate_key),
        )
        .route("/v1/openapi.json", get(openapi::document))
        .with_state(state)
}
