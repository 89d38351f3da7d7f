//! `GET /v1/notifications` (polling) and `GET /v1/notifications/stream` (SSE).

use std::convert::Infallible;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header::HeaderName;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use livecast_core::Error;
use livecast_service::ApiError;
use serde::{Deserialize, Serialize};

use super::ApiState;
use crate::hub::Subscription;
use crate::notification::Notification;

/// Notifications per page unless the client asks otherwise.
const DEFAULT_LIMIT: usize = 100;
/// Most notifications per page.
const MAX_LIMIT: usize = 1_000;

/// `?since=CURSOR&limit=N`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PollQuery {
    since: Option<u64>,
    limit: Option<usize>,
}

/// One page of notifications.
#[derive(Debug, Serialize)]
pub struct PollPage {
    /// Oldest first, newest last.
    notifications: Vec<Notification>,
    /// Pass as `since` next time.
    next_cursor: u64,
    /// True when some notifications after `since` are no longer retained.
    history_truncated: bool,
}

fn query<T>(query: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    query
        .map(|Query(value)| value)
        .map_err(|rejection| ApiError(Error::invalid(rejection.body_text())))
}

/// Notifications after `since` (from the oldest retained when absent), at most `limit`.
#[tracing::instrument(skip_all)]
pub async fn poll(
    State(state): State<Arc<ApiState>>,
    params: Result<Query<PollQuery>, QueryRejection>,
) -> Result<Json<PollPage>, ApiError> {
    let params = query(params)?;
    let limit = params.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError(Error::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, not {limit}"
        ))));
    }
    let page = state.hub.page(params.since, limit);
    Ok(Json(PollPage {
        notifications: page
            .notifications
            .iter()
            .map(|n| n.as_ref().clone())
            .collect(),
        next_cursor: page.next_cursor,
        history_truncated: page.truncated,
    }))
}

/// `?since=CURSOR` for clients that cannot set `Last-Event-ID` on the first connection.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamQuery {
    since: Option<u64>,
}

/// Server-sent events: what was missed after `Last-Event-ID` (or `since`), then every new
/// notification, with heartbeat comments in between.
#[tracing::instrument(skip_all)]
pub async fn stream(
    State(state): State<Arc<ApiState>>,
    headers: HeaderMap,
    params: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query(params)?;
    let after = last_event_id(&headers)?.or(params.since);
    let subscription = state.hub.subscribe(after)?;
    let events = futures::stream::unfold((subscription, 0usize), next_notification)
        .map(|notification| Ok::<_, Infallible>(sse_event(&notification)));
    let sse =
        Sse::new(events).keep_alive(KeepAlive::new().interval(state.heartbeat).text("heartbeat"));
    // Reverse proxies (nginx) must pass events through instead of buffering them.
    let no_buffering = (
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    Ok(([no_buffering], sse).into_response())
}

/// The replay first, then the live queue; the stream ends when the queue closes.
async fn next_notification(
    (mut subscription, replayed): (Subscription, usize),
) -> Option<(Arc<Notification>, (Subscription, usize))> {
    if let Some(notification) = subscription.replay.get(replayed).cloned() {
        return Some((notification, (subscription, replayed + 1)));
    }
    let notification = subscription.live.recv().await?;
    Some((notification, (subscription, replayed)))
}

fn sse_event(notification: &Notification) -> Event {
    Event::default()
        .id(notification.id.to_string())
        .event(notification.kind.as_str())
        .data(notification.to_json())
}

/// The cursor in `Last-Event-ID`, if any; a value that is not a cursor is a 400.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        ApiError(Error::invalid(format!(
            "Last-Event-ID {text:?} is not a notification cursor (a number from an earlier event's id)"
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_event_id_is_a_cursor() {
        let mut headers = HeaderMap::new();
        assert_eq!(last_event_id(&headers).unwrap(), None);
        headers.insert("last-event-id", HeaderValue::from_static(" 42 "));
        assert_eq!(last_event_id(&headers).unwrap(), Some(42));
        headers.insert("last-event-id", HeaderValue::from_static(""));
        assert_eq!(last_event_id(&headers).unwrap(), None);
        headers.insert("last-event-id", HeaderValue::from_static("abc"));
        assert!(last_event_id(&headers).is_err());
    }
}
