//! The admin and viewer REST API.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, MAX_BODY, error_message, spawn_app};

#[tokio::test]
async fn a_created_stream_returns_its_key_and_urls_once() {
    let app = spawn_app().await;
    let created = app.create("Morning show").await;
    let id = created["id"].as_str().unwrap();
    let key = created["stream_key"].as_str().unwrap();
    assert_eq!(created["status"], "CREATED");
    assert_eq!(created["name"], "Morning show");
    assert_eq!(
        created["rtmp_url"],
        format!("rtmp://127.0.0.1:1935/live/{key}")
    );
    assert!(
        created["hls_push_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{key}/index.m3u8"))
    );
    assert!(
        created["playback_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/{id}/master.m3u8"))
    );

    let (status, one) = app.get_json(&format!("/v1/videos/{id}"), false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["id"], id);
    assert!(one.get("stream_key").is_none());

    let (_, list) = app.get_json("/v1/videos", false).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert!(
        !list.to_string().contains(key),
        "a list must never show a stream key"
    );
    assert!(list.get("next_page_token").is_none());
}

#[tokio::test]
async fn every_write_without_the_admin_token_is_401() {
    let app = spawn_app().await;
    let id = app.create("Guarded").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let client = &app.client;
    let attempts = [
        client
            .post(app.url("/v1/videos"))
            .json(&json!({"name": "x"})),
        client
            .put(app.url(&format!("/v1/videos/{id}")))
            .json(&json!({"name": "y"})),
        client
            .put(app.url(&format!("/v1/videos/{id}/status")))
            .json(&json!({"status": "ARCHIVED"})),
        client.post(app.url(&format!("/v1/videos/{id}/stream-key:rotate"))),
        client.delete(app.url(&format!("/v1/videos/{id}"))),
    ];
    for attempt in attempts {
        let without = attempt.try_clone().unwrap().send().await.unwrap();
        assert_eq!(without.status(), StatusCode::UNAUTHORIZED);
        let body: Value = without.json().await.unwrap();
        assert!(error_message(&body).contains("Bearer"), "{body}");
        let wrong = attempt.bearer_auth("not-the-token").send().await.unwrap();
        assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    }
    let (_, still) = app.get_json(&format!("/v1/videos/{id}"), false).await;
    assert_eq!(still["name"], "Guarded");
}

#[tokio::test]
async fn bad_bodies_and_ids_get_clear_4xx_errors() {
    let app = spawn_app().await;
    let post = |body: &'static str| {
        app.client
            .post(app.url("/v1/videos"))
            .bearer_auth(ADMIN_TOKEN)
            .header("content-type", "application/json")
            .body(body)
    };
    let cases = [
        ("{not json", StatusCode::BAD_REQUEST),
        ("{}", StatusCode::UNPROCESSABLE_ENTITY),
        (r#"{"name": 7}"#, StatusCode::UNPROCESSABLE_ENTITY),
        (
            r#"{"name": "a", "colour": "red"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (r#"{"name": "   "}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"name": "a", "thumbnail_url": "javascript:alert(1)"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"name": "a", "scheduled_start": "tomorrow"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"name": "a", "region": "../eu"}"#,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (body, expected) in cases {
        let response = post(body).send().await.unwrap();
        assert_eq!(response.status(), expected, "{body}");
        let json: Value = response.json().await.unwrap();
        assert!(!error_message(&json).is_empty(), "{body}: {json}");
    }

    let huge = format!(r#"{{"name": "{}"}}"#, "x".repeat(MAX_BODY + 1));
    let response = app
        .client
        .post(app.url("/v1/videos"))
        .bearer_auth(ADMIN_TOKEN)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let (status, body) = app.get_json("/v1/videos/no-such-stream", false).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "not_found");
    let (status, body) = app.get_json("/v1/videos/..%2Fetc%2Fpasswd", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error_message(&body).contains("stream id"), "{body}");
    let (status, _) = app.get_json("/v1/videos?limit=1000", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.get_json("/v1/videos?sort=sideways", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_lifecycle_allows_only_legal_transitions() {
    let app = spawn_app().await;
    let id = app.create("Lifecycle").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, body) = app.set_status(&id, "STREAM_ACTIVE").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["started_at"].is_string());
    let (status, body) = app.set_status(&id, "CREATED").await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(
        error_message(&body).contains("STREAM_ACTIVE to CREATED"),
        "{body}"
    );
    let (status, body) = app.set_status(&id, "STREAM_COMPLETE").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body["ended_at"].is_string());
    assert!(body["duration_seconds"].is_u64());
    let (status, _) = app.set_status(&id, "sideways").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    let (status, _) = app.set_status(&id, "ARCHIVED").await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.get_json(&format!("/v1/videos/{id}"), false).await;
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "archived streams are hidden from viewers"
    );
    let (_, list) = app.get_json("/v1/videos", false).await;
    assert!(list["items"].as_array().unwrap().is_empty());
    let (status, one) = app.get_json(&format!("/v1/videos/{id}"), true).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["status"], "ARCHIVED");
}

#[tokio::test]
async fn metadata_updates_key_rotation_and_delete() {
    let app = spawn_app().await;
    let created = app.create("Before").await;
    let id = created["id"].as_str().unwrap();
    let old_key = created["stream_key"].as_str().unwrap();

    let updated: Value = app
        .client
        .put(app.url(&format!("/v1/videos/{id}")))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({ "name": "After", "thumbnail_url": "https://img.example/t.jpg" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(updated["name"], "After");
    assert_eq!(updated["thumbnail_url"], "https://img.example/t.jpg");

    assert!(
        app.service
            .catalogue
            .check_stream_key(old_key)
            .await
            .is_ok()
    );
    let rotated: Value = app
        .client
        .post(app.url(&format!("/v1/videos/{id}/stream-key:rotate")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_key = rotated["stream_key"].as_str().unwrap();
    assert_ne!(new_key, old_key);
    assert!(
        app.service
            .catalogue
            .check_stream_key(old_key)
            .await
            .is_err()
    );
    assert_eq!(
        app.service
            .catalogue
            .check_stream_key(new_key)
            .await
            .unwrap()
            .id
            .as_str(),
        id
    );

    let delete = |id: String| {
        app.client
            .delete(app.url(&format!("/v1/videos/{id}")))
            .bearer_auth(ADMIN_TOKEN)
            .send()
    };
    assert_eq!(
        delete(id.to_string()).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        delete(id.to_string()).await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (status, _) = app.get_json(&format!("/v1/videos/{id}"), true).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        app.service
            .catalogue
            .check_stream_key(new_key)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn listing_filters_and_sorts() {
    let app = spawn_app().await;
    let alpha = app.create("Alpha news").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let beta = app.create("beta sports").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let gamma = app.create("Gamma NEWS night").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.set_status(&beta, "STREAM_ACTIVE").await;
    app.set_status(&gamma, "STREAM_ACTIVE").await;
    app.set_status(&gamma, "STREAM_COMPLETE").await;

    let ids = |list: &Value| -> Vec<String> {
        list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, live) = app.get_json("/v1/videos?status=live", false).await;
    assert_eq!(ids(&live), vec![beta.clone()]);
    let (_, done) = app.get_json("/v1/videos?status=completed", false).await;
    assert_eq!(ids(&done), vec![gamma.clone()]);
    let (_, news) = app.get_json("/v1/videos?q=news&sort=name", false).await;
    assert_eq!(ids(&news), vec![alpha.clone(), gamma.clone()]);
    let (_, by_name) = app.get_json("/v1/videos?sort=name", false).await;
    assert_eq!(
        ids(&by_name),
        vec![alpha.clone(), beta.clone(), gamma.clone()]
    );

    let (_, newest_first) = app.get_json("/v1/videos", false).await;
    let (_, oldest_first) = app.get_json("/v1/videos?sort=started_at", false).await;
    let mut reversed = ids(&oldest_first);
    reversed.reverse();
    assert_eq!(ids(&newest_first), reversed);

    let (_, future) = app
        .get_json("/v1/videos?from=2100-01-01T00:00:00Z", false)
        .await;
    assert!(ids(&future).is_empty());
    let (_, past) = app
        .get_json("/v1/videos?to=2000-01-01T00:00:00Z", false)
        .await;
    assert!(ids(&past).is_empty());
    let (_, now) = app
        .get_json(
            "/v1/videos?from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z",
            false,
        )
        .await;
    assert_eq!(ids(&now).len(), 3);
}

#[tokio::test]
async fn paging_through_250_streams_has_no_duplicates_or_gaps() {
    let app = spawn_app().await;
    let mut created = HashSet::new();
    for n in 0..250 {
        let id = app.create(&format!("stream {n:03}")).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        created.insert(id);
    }
    for sort in ["-started_at", "started_at", "name"] {
        let mut seen = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut params = vec![("limit", "7".to_string()), ("sort", sort.to_string())];
            if let Some(token) = &token {
                params.push(("page_token", token.clone()));
            }
            let response = app
                .client
                .get(app.url("/v1/videos"))
                .query(&params)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            let items = page["items"].as_array().unwrap();
            assert!(items.len() <= 7);
            seen.extend(items.iter().map(|v| v["id"].as_str().unwrap().to_string()));
            match page["next_page_token"].as_str() {
                Some(next) => token = Some(next.to_string()),
                None => break,
            }
        }
        let unique: HashSet<_> = seen.iter().cloned().collect();
        assert_eq!(seen.len(), 250, "sort {sort}: duplicates");
        assert_eq!(unique, created, "sort {sort}: gaps");
    }
    let (status, _) = app.get_json("/v1/videos?page_token=garbage!!", false).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let (status, doc) = app.get_json("/v1/openapi.json", false).await;
    assert_eq!(status, StatusCode::OK);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/v1/videos", "/v1/videos/{id}", "/v1/videos/{id}/status"] {
        assert!(doc["paths"].get(path).is_some(), "missing {path}");
    }
    assert!(
        doc["components"]["schemas"]
            .get("CreatedVideoView")
            .is_some()
    );
}
