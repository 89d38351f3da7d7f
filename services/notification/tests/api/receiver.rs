//! A webhook endpoint for tests: records every call, fails the first few (or all) of them, and
//! checks signatures the way a receiver written against the docs would.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use tokio::net::TcpListener;
use tokio_util::sync::{CancellationToken, DropGuard};

/// One POST the receiver got.
#[derive(Debug, Clone)]
pub struct Call {
    pub signature: String,
    pub event_id_header: String,
    pub body: String,
    pub accepted: bool,
}

impl Call {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap()
    }

    pub fn event_id(&self) -> String {
        self.json()["event_id"].as_str().unwrap().to_string()
    }
}

#[derive(Default)]
struct ReceiverState {
    fail_first: usize,
    always_fail: AtomicBool,
    calls: Mutex<Vec<Call>>,
}

pub struct Receiver {
    pub url: String,
    state: Arc<ReceiverState>,
    _server: DropGuard,
}

impl Receiver {
    /// A receiver answering 500 to its first `fail_first` calls and 200 afterwards.
    pub async fn start(fail_first: usize) -> Receiver {
        let state = Arc::new(ReceiverState {
            fail_first,
            ..ReceiverState::default()
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let router = Router::new()
            .route("/hook", post(receive))
            .with_state(state.clone());
        let stop = CancellationToken::new();
        let signal = stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(signal.cancelled_owned())
                .await
                .unwrap();
        });
        Receiver {
            url,
            state,
            _server: stop.drop_guard(),
        }
    }

    /// A receiver that answers 500 until told otherwise.
    pub async fn failing() -> Receiver {
        let receiver = Receiver::start(0).await;
        receiver.set_always_fail(true);
        receiver
    }

    pub fn set_always_fail(&self, fail: bool) {
        self.state.always_fail.store(fail, Ordering::SeqCst);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    pub fn accepted(&self) -> Vec<Call> {
        self.calls().into_iter().filter(|c| c.accepted).collect()
    }

    /// Accepted calls deduplicated by event id, in arrival order: what an idempotent
    /// receiver would act on.
    pub fn deduplicated(&self) -> Vec<Call> {
        let mut seen = std::collections::HashSet::new();
        self.accepted()
            .into_iter()
            .filter(|call| seen.insert(call.event_id()))
            .collect()
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    let mut calls = state.calls.lock().unwrap();
    let accepted = !state.always_fail.load(Ordering::SeqCst) && calls.len() >= state.fail_first;
    calls.push(Call {
        signature: header("livecast-signature"),
        event_id_header: header("livecast-event-id"),
        body,
        accepted,
    });
    if accepted {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

/// Checks `Livecast-Signature: t=<unix>,v1=<hex>` against HMAC-SHA256(secret, "<t>.<body>"),
/// independently of the service's own code.
pub fn signature_is_valid(secret: &str, header: &str, body: &str) -> bool {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => timestamp = Some(value.to_string()),
            Some(("v1", value)) => signature = Some(value.to_string()),
            _ => {}
        }
    }
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return false;
    };
    let Ok(expected) = hex::decode(signature) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.verify_slice(&expected).is_ok()
}
