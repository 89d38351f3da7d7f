//! Notification fan-out: 1,000 SSE clients connected at once, one `STREAM_ACTIVE` event; how
//! long until every client has `stream.live`, and the process RSS. Bounded: one event, a
//! deadline of 60 s.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use livecast_bus::{EventBus, InProcessBus};
use livecast_core::{EventId, StreamId};
use livecast_notification::{NotificationService, NotificationSettings};
use livecast_proto::{topics, v1};
use livecast_service::Shutdown;
use prost::Message;

const CLIENTS: usize = 1_000;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let bus: Arc<dyn EventBus> = Arc::new(InProcessBus::new());
    let settings = NotificationSettings {
        data_file: dir.path().join("notification.sqlite"),
        max_sse_clients: CLIENTS * 2,
        ..NotificationSettings::default()
    };
    let service = NotificationService::new(bus.clone(), settings).await?;
    let shutdown = Shutdown::new();
    service.spawn(shutdown.clone());
    let base = livecast_bench::serve_on_loopback(
        service.http_routes(),
        service.readiness(),
        shutdown.clone(),
    )
    .await?;
    let url = format!("{base}/v1/notifications/stream");
    let rss_before = livecast_bench::rss_kib();

    let connected = Arc::new(AtomicUsize::new(0));
    let (sender, mut received) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    for _ in 0..CLIENTS {
        let (url, connected, sender) = (url.clone(), connected.clone(), sender.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let Ok(mut response) = client.get(&url).send().await else {
                return;
            };
            connected.fetch_add(1, Ordering::SeqCst);
            let mut seen = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                seen.push_str(&String::from_utf8_lossy(&chunk));
                if seen.contains("event: stream.live") || seen.contains("event:stream.live") {
                    let _ = sender.send(Instant::now());
                    return;
                }
            }
        });
    }
    drop(sender);
    let deadline = Instant::now() + Duration::from_secs(60);
    while connected.load(Ordering::SeqCst) < CLIENTS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_connected = livecast_bench::rss_kib();
    println!(
        "{} SSE clients connected; RSS {} MiB before, {} MiB with them (clients and server share the process)",
        connected.load(Ordering::SeqCst),
        rss_before / 1024,
        rss_connected / 1024
    );

    let stream = StreamId::generate();
    let event = v1::StreamEvent {
        event_id: EventId::generate().to_string(),
        stream_id: stream.to_string(),
        kind: v1::StreamStatus::StreamActive as i32,
        at: livecast_core::time::now_millis(),
        region: "bench".into(),
        name: "fan-out".into(),
        epoch: 0,
        segments: 0,
    };
    let published = Instant::now();
    bus.publish(
        topics::STREAM_EVENTS,
        stream.as_str(),
        Bytes::from(event.encode_to_vec()),
    )
    .await?;
    let mut delays = Vec::with_capacity(CLIENTS);
    while let Ok(Some(at)) = tokio::time::timeout_at(deadline.into(), received.recv()).await {
        delays.push(at - published);
        if delays.len() == CLIENTS {
            break;
        }
    }
    delays.sort();
    let at = |q: f64| delays[((delays.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1e3;
    println!(
        "fan-out of one stream.live to {} of {CLIENTS} clients: first {:.1} ms, p50 {:.1} ms, last {:.1} ms after the STREAM_ACTIVE event",
        delays.len(),
        at(0.0),
        at(0.5),
        at(1.0)
    );
    shutdown.cancel();
    Ok(())
}
