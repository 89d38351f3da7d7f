//! A viewer hears about a stream the moment it goes live, and when it completes.

use std::time::Duration;

use livecast_tests::{push_test_stream, spawn_platform};
use serde_json::Value;

/// Reads server-sent events from `response` until one of `kind` for `stream` arrives.
async fn next_event(
    response: &mut reqwest::Response,
    buffer: &mut String,
    kind: &str,
    stream: &str,
) -> Value {
    loop {
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let event = block
                .lines()
                .find_map(|l| l.strip_prefix("event:"))
                .map(str::trim);
            let data = block
                .lines()
                .find_map(|l| l.strip_prefix("data:"))
                .map(str::trim);
            if let (Some(event), Some(data)) = (event, data) {
                let json: Value = serde_json::from_str(data).unwrap();
                if event == kind && json["stream_id"] == stream {
                    return json;
                }
            }
        }
        let chunk = tokio::time::timeout(Duration::from_secs(90), response.chunk())
            .await
            .expect("no event in time")
            .unwrap()
            .expect("the event stream ended");
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_sse_client_hears_live_then_completed_and_polling_shows_both() {
    let platform = spawn_platform(|_| {}).await;
    platform
        .wait_for("/readyz", Duration::from_secs(30), |s, _| s == 200)
        .await;
    let mut events = platform
        .client
        .get(format!("{}/v1/notifications/stream", platform.http))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let created = platform.create_stream("Notify me").await;
    let id = created["id"].as_str().unwrap().to_string();
    let key = created["stream_key"].as_str().unwrap().to_string();
    let url = format!("{}/{key}", platform.rtmp);
    let push = tokio::spawn(async move { push_test_stream(&url, &["-f", "flv"], 4).await });

    let mut buffer = String::new();
    let live = next_event(&mut events, &mut buffer, "stream.live", &id).await;
    assert_eq!(live["name"], "Notify me");
    assert!(
        live["playback_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/stream/{id}/master.m3u8"))
    );
    assert!(push.await.unwrap());
    let completed = next_event(&mut events, &mut buffer, "stream.completed", &id).await;
    assert_ne!(completed["event_id"], live["event_id"]);

    let (status, body) = platform.get("/v1/notifications").await;
    assert_eq!(status, 200);
    let polled: Value = serde_json::from_str(&body).unwrap();
    let kinds: Vec<&str> = polled["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["stream_id"] == id.as_str())
        .map(|n| n["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["stream.live", "stream.completed"]);
}
