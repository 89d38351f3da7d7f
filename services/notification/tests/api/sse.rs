//! SSE and polling: what a viewer's page sees.

use bytes::Bytes;
use livecast_proto::v1::StreamStatus;
use reqwest::StatusCode;

use crate::helpers::{PLAYBACK_BASE, spawn_app, stream_event};

#[tokio::test]
async fn a_connected_client_hears_live_then_completed_once_and_polling_shows_both() {
    let (app, _dir) = spawn_app().await;
    let mut client = app.sse(None).await;

    let live = stream_event("launch-1", StreamStatus::StreamActive, "Launch day");
    let created = stream_event("launch-1", StreamStatus::Created, "Launch day");
    let completed = stream_event("launch-1", StreamStatus::StreamComplete, "Launch day");
    app.publish(&created).await;
    app.publish(&live).await;
    app.publish(&live).await; // a redelivery: same event id
    app.publish(&completed).await;

    let first = client.next_event().await;
    assert_eq!(first.event.as_deref(), Some("stream.live"));
    let body = first.json();
    assert_eq!(body["id"], first.cursor());
    assert_eq!(body["type"], "stream.live");
    assert_eq!(body["event_id"], live.event_id.as_str());
    assert_eq!(body["stream_id"], "launch-1");
    assert_eq!(body["name"], "Launch day");
    assert_eq!(
        body["playback_url"],
        format!("{PLAYBACK_BASE}/launch-1/master.m3u8")
    );
    assert!(
        time::OffsetDateTime::parse(
            body["at"].as_str().unwrap(),
            &time::format_description::well_known::Rfc3339
        )
        .is_ok(),
        "{body}"
    );

    let second = client.next_event().await;
    assert_eq!(second.event.as_deref(), Some("stream.completed"));
    assert_eq!(second.json()["event_id"], completed.event_id.as_str());
    assert!(second.cursor() > first.cursor());

    // Events on one stream are handled in order, so once this arrives the duplicate has been
    // handled too: it must not have been delivered.
    let archived = stream_event("launch-1", StreamStatus::Archived, "Launch day");
    app.publish(&archived).await;
    let third = client.next_event().await;
    assert_eq!(third.event.as_deref(), Some("stream.archived"));
    assert_eq!(third.json()["event_id"], archived.event_id.as_str());

    let (status, page) = app.get_json("/v1/notifications", false).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<&str> = page["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        vec!["stream.live", "stream.completed", "stream.archived"]
    );
    assert_eq!(page["notifications"][0], first.json());
    assert_eq!(page["next_cursor"], third.cursor());
}

#[tokio::test]
async fn reconnecting_with_last_event_id_receives_only_what_was_missed() {
    let (app, _dir) = spawn_app().await;
    let mut first_connection = app.sse(None).await;
    app.publish(&stream_event("s-1", StreamStatus::StreamActive, "One"))
        .await;
    let seen = first_connection.next_event().await;
    drop(first_connection);

    let missed_a = stream_event("s-1", StreamStatus::StreamComplete, "One");
    let missed_b = stream_event("s-2", StreamStatus::StreamActive, "Two");
    app.publish(&missed_a).await;
    app.publish(&missed_b).await;
    app.notifications(3).await;

    let mut reconnected = app.sse(Some(seen.cursor())).await;
    let replayed: Vec<String> = vec![
        reconnected.next_event().await.json()["event_id"]
            .as_str()
            .unwrap()
            .to_string(),
        reconnected.next_event().await.json()["event_id"]
            .as_str()
            .unwrap()
            .to_string(),
    ];
    let mut expected = vec![missed_a.event_id.clone(), missed_b.event_id.clone()];
    // Two streams may sit on two partitions: the order between them is the consumer's.
    expected.sort();
    let mut sorted = replayed.clone();
    sorted.sort();
    assert_eq!(sorted, expected);

    let later = stream_event("s-2", StreamStatus::StreamComplete, "Two");
    app.publish(&later).await;
    let live = reconnected.next_event().await;
    assert_eq!(live.json()["event_id"], later.event_id.as_str());

    let (_, page) = app
        .get_json(&format!("/v1/notifications?since={}", seen.cursor()), false)
        .await;
    assert_eq!(page["notifications"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_idle_stream_gets_heartbeats_and_still_delivers() {
    let (app, _dir) = spawn_app().await;
    let mut client = app.sse(None).await;
    let heartbeat = client.next_frame().await.unwrap();
    assert_eq!(heartbeat.comment.as_deref(), Some("heartbeat"));
    assert!(heartbeat.event.is_none());
    let live = stream_event("quiet", StreamStatus::StreamActive, "Quiet");
    app.publish(&live).await;
    assert_eq!(
        client.next_event().await.json()["event_id"],
        live.event_id.as_str()
    );
}

#[tokio::test]
async fn polling_pages_with_a_cursor_and_bad_input_is_a_400() {
    let (app, _dir) = spawn_app().await;
    // A malformed payload is skipped; the events after it still arrive.
    app.publish_raw("junk", Bytes::from_static(b"\xff\x00not protobuf"))
        .await;
    for n in 0..3 {
        app.publish(&stream_event(
            &format!("page-{n}"),
            StreamStatus::StreamActive,
            "Paged",
        ))
        .await;
    }
    let all = app.notifications(3).await;

    let (status, page) = app.get_json("/v1/notifications?limit=2", false).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page["notifications"].as_array().unwrap().len(), 2);
    assert_eq!(page["notifications"][0], all[0]);
    let next = page["next_cursor"].as_u64().unwrap();
    assert_eq!(next, all[1]["id"].as_u64().unwrap());
    let (_, rest) = app
        .get_json(&format!("/v1/notifications?since={next}&limit=2"), false)
        .await;
    assert_eq!(rest["notifications"].as_array().unwrap().len(), 1);
    assert_eq!(rest["notifications"][0], all[2]);
    let (_, empty) = app
        .get_json(
            &format!("/v1/notifications?since={}", rest["next_cursor"]),
            false,
        )
        .await;
    assert!(empty["notifications"].as_array().unwrap().is_empty());
    assert_eq!(empty["next_cursor"], rest["next_cursor"]);

    for bad in [
        "limit=0",
        "limit=100000",
        "since=abc",
        "since=-1",
        "cursor=1",
    ] {
        let (status, body) = app
            .get_json(&format!("/v1/notifications?{bad}"), false)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_argument", "{bad}");
    }
    let response = app
        .client
        .get(app.url("/v1/notifications/stream"))
        .header("Last-Event-ID", "not-a-cursor")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Last-Event-ID"),
        "{body}"
    );
}
