//! Restart: a service re-created over the same data file keeps its history, its cursors, its
//! webhooks and their pending deliveries.

use livecast_proto::v1::StreamStatus;

use crate::helpers::{eventually, spawn_app, spawn_app_on, stream_event, test_settings};
use crate::receiver::{Receiver, signature_is_valid};

#[tokio::test]
async fn a_restarted_service_keeps_its_webhooks_history_and_pending_deliveries() {
    let (first, dir) = spawn_app().await;
    let receiver = Receiver::failing().await;
    let webhook = first.register_webhook(&receiver.url).await;
    let id = webhook["id"].as_str().unwrap().to_string();
    let secret = webhook["secret"].as_str().unwrap().to_string();

    let live = stream_event("durable", StreamStatus::StreamActive, "Durable");
    first.publish(&live).await;
    let before = first.notifications(1).await;
    eventually("a failed attempt", || async {
        (!receiver.calls().is_empty()).then_some(())
    })
    .await;
    let bus = first.bus.clone();
    let data_file = first.data_file.clone();
    first.stop().await;

    // Only the restarted service can deliver now.
    receiver.set_always_fail(false);
    let second = spawn_app_on(bus, test_settings(data_file)).await;
    assert_eq!(second.webhook(&id).await["url"], receiver.url);
    assert_eq!(
        second.notifications(1).await,
        before,
        "history and cursors survive"
    );

    let completed = stream_event("durable", StreamStatus::StreamComplete, "Durable");
    second.publish(&completed).await;
    let delivered = eventually("both notifications delivered", || async {
        let calls = receiver.deduplicated();
        (calls.len() == 2).then_some(calls)
    })
    .await;
    assert_eq!(delivered[0].event_id(), live.event_id);
    assert_eq!(delivered[1].event_id(), completed.event_id);
    for call in &delivered {
        assert!(signature_is_valid(&secret, &call.signature, &call.body));
    }
    let after = second.notifications(2).await;
    assert!(after[1]["id"].as_u64() > after[0]["id"].as_u64());
    drop(dir);
}
