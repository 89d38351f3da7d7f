//! Webhooks: signed, retried, in order per stream, at least once; failing endpoints are marked
//! and do not hold up healthy ones; administration needs the admin token.

use std::sync::Arc;

use livecast_bus::InProcessBus;
use livecast_proto::v1::StreamStatus;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, TestApp, eventually, spawn_app, spawn_app_on, stream_event, test_settings,
};
use crate::receiver::{Receiver, signature_is_valid};

#[tokio::test]
async fn a_flaky_receiver_gets_every_notification_once_in_order_and_signed() {
    let (app, _dir) = spawn_app().await;
    let receiver = Receiver::start(3).await;
    let webhook = app.register_webhook(&receiver.url).await;
    let secret = webhook["secret"].as_str().unwrap().to_string();
    assert!(secret.starts_with("whsec_"));

    let events = [
        stream_event("flaky", StreamStatus::StreamActive, "Flaky"),
        stream_event("flaky", StreamStatus::StreamComplete, "Flaky"),
        stream_event("flaky", StreamStatus::Archived, "Flaky"),
    ];
    for event in &events {
        app.publish(event).await;
    }
    // The first notification again, as a Kafka redelivery would bring it, then a marker: once
    // the marker is delivered, the redelivery has been handled (same stream, same order).
    app.publish(&events[0]).await;
    let marker = stream_event("flaky", StreamStatus::StreamActive, "Flaky again");
    app.publish(&marker).await;

    let expected: Vec<String> = events
        .iter()
        .chain([&marker])
        .map(|e| e.event_id.clone())
        .collect();
    let delivered = eventually("every notification delivered", || async {
        let calls = receiver.deduplicated();
        (calls.len() == expected.len()).then_some(calls)
    })
    .await;
    let order: Vec<String> = delivered.iter().map(|c| c.event_id()).collect();
    assert_eq!(order, expected, "in order per stream");

    let calls = receiver.calls();
    assert_eq!(calls.iter().filter(|c| !c.accepted).count(), 3);
    assert!(
        calls[..3].iter().all(|c| c.event_id() == expected[0]),
        "the first notification is retried before the next one goes"
    );
    for call in &calls {
        assert!(
            signature_is_valid(&secret, &call.signature, &call.body),
            "bad signature {} on {}",
            call.signature,
            call.body
        );
        assert_eq!(call.event_id_header, call.event_id());
    }
    assert!(!signature_is_valid(
        "whsec_wrong",
        &calls[0].signature,
        &calls[0].body
    ));
    assert_eq!(
        receiver.accepted().len(),
        expected.len(),
        "the replayed event produced no second delivery"
    );
    let body = delivered[0].json();
    assert_eq!(body["type"], "stream.live");
    assert_eq!(body["name"], "Flaky");
    assert!(
        body["playback_url"]
            .as_str()
            .unwrap()
            .ends_with("/flaky/master.m3u8")
    );

    let id = webhook["id"].as_str().unwrap();
    let state = eventually("the webhook queue to drain", || async {
        let state = app.webhook(id).await;
        (state["pending_deliveries"] == 0).then_some(state)
    })
    .await;
    assert_eq!(state["status"], "healthy");
    assert_eq!(state["consecutive_failures"], 0);
    assert!(state["last_error"].as_str().unwrap().contains("500"));
}

#[tokio::test]
async fn a_failing_endpoint_is_marked_and_does_not_delay_a_healthy_one() {
    let (app, _dir) = spawn_app().await;
    let broken = Receiver::failing().await;
    let healthy = Receiver::start(0).await;
    let broken_id = app.register_webhook(&broken.url).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.register_webhook(&healthy.url).await;

    let events: Vec<_> = (0..5)
        .map(|n| stream_event(&format!("busy-{n}"), StreamStatus::StreamActive, "Busy"))
        .collect();
    for event in &events {
        app.publish(event).await;
    }
    eventually("the healthy endpoint to get everything", || async {
        (healthy.deduplicated().len() == events.len()).then_some(())
    })
    .await;
    // The broken endpoint is still retrying (its retry time is minutes): it did not hold
    // the healthy one up.
    let broken_state = app.webhook(&broken_id).await;
    assert!(
        broken_state["pending_deliveries"].as_u64().unwrap() > 0,
        "{broken_state}"
    );
    assert!(broken.accepted().is_empty());

    let marked = eventually("the broken endpoint to be marked failing", || async {
        let state = app.webhook(&broken_id).await;
        (state["status"] == "failing").then_some(state)
    })
    .await;
    assert!(marked["consecutive_failures"].as_u64().unwrap() >= 3);
    assert!(
        marked["last_error"].as_str().unwrap().contains("500"),
        "{marked}"
    );
    assert!(marked["last_failure_at"].is_string());
    assert!(marked.get("secret").is_none(), "secrets are shown once");
}

async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = app.client.request(method, app.url(path));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn webhook_admin_needs_the_token_and_valid_input() {
    use reqwest::Method;
    let (app, _dir) = spawn_app().await;
    let good = json!({ "url": "https://hooks.example.com/livecast" });

    for token in [None, Some("wrong-token")] {
        let (status, body) = send(
            &app,
            Method::POST,
            "/v1/webhooks",
            token,
            Some(good.clone()),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert_eq!(body["error"]["code"], "unauthenticated");
        let (status, _) = send(&app, Method::GET, "/v1/webhooks", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }

    let token = Some(ADMIN_TOKEN);
    for bad in [
        "ftp://example.com/hook",
        "not a url",
        "http://",
        "javascript:alert(1)",
    ] {
        let (status, body) = send(
            &app,
            Method::POST,
            "/v1/webhooks",
            token,
            Some(json!({ "url": bad })),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_argument");
    }
    let (status, body) = send(
        &app,
        Method::POST,
        "/v1/webhooks",
        token,
        Some(json!({ "uri": "x" })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let (status, created) = send(&app, Method::POST, "/v1/webhooks", token, Some(good)).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["url"], "https://hooks.example.com/livecast");
    assert_eq!(created["status"], "healthy");
    let (status, fetched) = send(
        &app,
        Method::GET,
        &format!("/v1/webhooks/{id}"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(fetched["id"], id);
    assert!(fetched.get("secret").is_none());

    for method in [Method::GET, Method::DELETE] {
        let (status, body) = send(&app, method, "/v1/webhooks/no-such-webhook", token, None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(body["error"]["code"], "not_found");
    }
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("/v1/webhooks/{id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = send(
        &app,
        Method::DELETE,
        &format!("/v1/webhooks/{id}"),
        token,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, list) = send(&app, Method::GET, "/v1/webhooks", token, None).await;
    assert_eq!(list["webhooks"], json!([]));

    // An instance without an admin token refuses webhook administration outright.
    let dir = tempfile::tempdir().unwrap();
    let settings = test_settings(dir.path().join("n.sqlite")).with_admin_token(None);
    let tokenless = spawn_app_on(Arc::new(InProcessBus::new()), settings).await;
    let (status, body) = send(
        &tokenless,
        Method::GET,
        "/v1/webhooks",
        Some(ADMIN_TOKEN),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("admin token")
    );
}
