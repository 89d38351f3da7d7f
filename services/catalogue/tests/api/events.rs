//! Lifecycle events from other services: duplicates and reordering change nothing.

use std::time::Duration;

use bytes::Bytes;
use livecast_core::{EventId, StreamId, StreamStatus};
use livecast_proto::{topics, v1};
use prost::Message;
use rand::seq::SliceRandom;

use crate::helpers::{TestApp, spawn_app};

fn event(stream: &str, kind: StreamStatus, at: i64) -> v1::StreamEvent {
    v1::StreamEvent {
        event_id: EventId::generate().to_string(),
        stream_id: stream.to_string(),
        kind: v1::StreamStatus::from(kind) as i32,
        at,
        region: "test-region".into(),
        name: String::new(),
        epoch: 0,
        segments: 0,
    }
}

/// For each of `count` new streams: went live, then completed.
async fn streams_with_history(app: &TestApp, count: usize) -> (Vec<String>, Vec<v1::StreamEvent>) {
    let mut ids = Vec::new();
    let mut events = Vec::new();
    for n in 0..count {
        let id = app.create(&format!("history {n}")).await["id"]
            .as_str()
            .unwrap()
            .to_string();
        let start = 1_700_000_000_000 + n as i64 * 1000;
        events.push(event(&id, StreamStatus::StreamActive, start));
        if n % 3 != 0 {
            events.push(event(&id, StreamStatus::StreamComplete, start + 60_000));
        }
        ids.push(id);
    }
    (ids, events)
}

async fn snapshot(app: &TestApp, ids: &[String]) -> Vec<(StreamStatus, Option<i64>, Option<i64>)> {
    let mut states = Vec::new();
    for id in ids {
        let record = app
            .service
            .catalogue
            .get(&StreamId::parse(id.clone()).unwrap())
            .await
            .unwrap();
        states.push((record.status, record.started_at, record.ended_at));
    }
    states
}

#[tokio::test]
async fn events_replayed_twice_and_shuffled_leave_the_in_order_state() {
    let in_order = spawn_app().await;
    let (ids, events) = streams_with_history(&in_order, 12).await;
    for event in &events {
        in_order
            .service
            .catalogue
            .apply_stream_event(event)
            .await
            .unwrap();
    }
    let expected = snapshot(&in_order, &ids).await;
    assert!(expected.iter().any(|s| s.0 == StreamStatus::StreamActive));
    assert!(expected.iter().any(|s| s.0 == StreamStatus::StreamComplete));

    let shuffled = spawn_app().await;
    let (shuffled_ids, shuffled_events) = streams_with_history(&shuffled, 12).await;
    let mut replay: Vec<_> = shuffled_events
        .iter()
        .chain(shuffled_events.iter())
        .cloned()
        .collect();
    replay.shuffle(&mut rand::rng());
    for event in &replay {
        shuffled
            .service
            .catalogue
            .apply_stream_event(event)
            .await
            .unwrap();
    }
    let states: Vec<_> = snapshot(&shuffled, &shuffled_ids).await;
    let statuses =
        |s: &[(StreamStatus, Option<i64>, Option<i64>)]| s.iter().map(|x| x.0).collect::<Vec<_>>();
    assert_eq!(statuses(&states), statuses(&expected));
    for (n, (_, started, ended)) in states.iter().enumerate() {
        let start = 1_700_000_000_000 + n as i64 * 1000;
        assert_eq!(*started, Some(start), "stream {n}");
        assert_eq!(*ended, (n % 3 != 0).then_some(start + 60_000), "stream {n}");
    }
}

#[tokio::test]
async fn events_on_the_bus_move_the_stream_and_bad_ones_are_skipped() {
    let app = spawn_app().await;
    let id = app.create("From the bus").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.bus
        .publish(
            topics::STREAM_EVENTS,
            &id,
            Bytes::from_static(b"\xff\x00garbage"),
        )
        .await
        .unwrap();
    let live = event(&id, StreamStatus::StreamActive, 1_700_000_000_000);
    app.bus
        .publish(
            topics::STREAM_EVENTS,
            &id,
            Bytes::from(live.encode_to_vec()),
        )
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (_, body) = app.get_json(&format!("/v1/videos/{id}"), false).await;
        if body["status"] == "STREAM_ACTIVE" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "event not applied: {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
