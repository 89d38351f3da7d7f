//! The Livecast viewer web app, embedded at build time and served by [`router`].
//!
//! `build.rs` turns `web/dist` (the output of `npm run build` in `web/`) into a static table, so
//! the binary needs no web server or files next to it. Only `GET /`, `/index.html`,
//! `/assets/...` and `/watch/...` are served; every API path stays with its service.

#![forbid(unsafe_code)]

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// One embedded file of the built app.
#[derive(Debug)]
pub struct Asset {
    /// Path under `web/dist`, with `/` separators (`index.html`, `assets/app-3F2A.js`).
    pub path: &'static str,
    /// The `Content-Type` it is served with.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// Built assets carry a content hash in their name, so a browser may keep them for a year;
/// the page that names them must be revalidated so a new build shows up at once.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// The embedded file at `path` (relative to `web/dist`), if any.
pub fn asset(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.path == path)
}

/// Whether the embedded app is the real build rather than the "web app not built" placeholder.
pub fn is_built() -> bool {
    BUILT
}

/// Routes for the app: the page at `/`, `/index.html` and `/watch/...` (the watch page's
/// shareable path), and its files under `/assets/`. Merge it into a service's router.
pub fn router() -> Router {
    Router::new()
        .route("/", get(index))
        .route("/index.html", get(index))
        .route("/watch/{*rest}", get(index))
        .route("/assets/{*path}", get(built_asset))
}

async fn index() -> Response {
    match asset("index.html") {
        Some(page) => serve(page, REVALIDATE),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn built_asset(Path(path): Path<String>) -> Response {
    match asset(&format!("assets/{path}")) {
        Some(file) => serve(file, IMMUTABLE),
        None => (StatusCode::NOT_FOUND, "no such asset").into_response(),
    }
}

fn serve(asset: &'static Asset, cache_control: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, asset.content_type),
            (header::CACHE_CONTROL, cache_control),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    async fn get(path: &str) -> Response {
        request(Method::GET, path).await
    }

    async fn request(method: Method, path: &str) -> Response {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        router().oneshot(request).await.unwrap()
    }

    fn header(response: &Response, name: header::HeaderName) -> &str {
        response.headers()[name].to_str().unwrap()
    }

    #[tokio::test]
    async fn index_is_served_at_root_and_watch_paths_without_long_caching() {
        for path in ["/", "/index.html", "/watch/0190abcd", "/watch/a/b"] {
            let response = get(path).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            assert_eq!(
                header(&response, header::CONTENT_TYPE),
                "text/html; charset=utf-8"
            );
            assert_eq!(header(&response, header::CACHE_CONTROL), REVALIDATE);
        }
    }

    #[tokio::test]
    async fn every_built_asset_is_served_with_its_type_and_a_long_cache() {
        for file in ASSETS.iter().filter(|a| a.path.starts_with("assets/")) {
            let response = get(&format!("/{}", file.path)).await;
            assert_eq!(response.status(), StatusCode::OK, "{}", file.path);
            assert_eq!(header(&response, header::CONTENT_TYPE), file.content_type);
            assert_eq!(header(&response, header::CACHE_CONTROL), IMMUTABLE);
            let body = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            assert_eq!(&body[..], file.body);
        }
    }

    #[tokio::test]
    async fn scripts_and_styles_have_their_mime_types_when_built() {
        if !is_built() {
            return;
        }
        let types: Vec<_> = ASSETS.iter().map(|a| (a.path, a.content_type)).collect();
        assert!(
            types
                .iter()
                .any(|(p, t)| p.ends_with(".js") && t.starts_with("text/javascript")),
            "{types:?}"
        );
        assert!(
            types
                .iter()
                .any(|(p, t)| p.ends_with(".css") && t.starts_with("text/css")),
            "{types:?}"
        );
    }

    #[tokio::test]
    async fn unknown_assets_are_not_found() {
        assert_eq!(get("/assets/nope.js").await.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            get("/assets/../index.html").await.status(),
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn api_paths_are_left_to_their_services() {
        for path in [
            "/v1/videos",
            "/stream/x/master.m3u8",
            "/ingest/key/index.m3u8",
            "/healthz",
            "/readyz",
            "/metrics",
            "/favicon.ico",
        ] {
            assert_eq!(get(path).await.status(), StatusCode::NOT_FOUND, "{path}");
        }
    }

    #[tokio::test]
    async fn only_reads_are_served() {
        let response = request(Method::POST, "/").await;
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        let response = request(Method::HEAD, "/").await;
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[test]
    fn the_page_is_always_embedded() {
        let index = asset("index.html").expect("index.html");
        let text = std::str::from_utf8(index.body).unwrap();
        if is_built() {
            assert!(text.contains("/assets/"), "{text}");
        } else {
            assert!(text.contains("web app not built; run <code>make web</code>"));
        }
    }
}
