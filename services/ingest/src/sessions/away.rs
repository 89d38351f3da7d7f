//! While a broadcaster is away: slate keeps the stream's players playing for the reconnect
//! window, then the stream completes unless the broadcaster came back (here or through another
//! ingest instance).

use std::sync::Arc;

use livecast_core::EventId;
use livecast_core::time::now_millis;
use livecast_proto::v1;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Inner, StreamId, TimelineRecord};
use crate::directory::AuthorizedStream;
use crate::metrics;

impl Inner {
    /// The broadcaster of `stream` left; after the reconnect window the stream completes. With
    /// `slate` (it dropped rather than finished), every `slate_every` a slate chunk continues
    /// the stream timeline where the last chunk ended. Both stop when the broadcaster is back.
    pub(super) fn release(self: &Arc<Self>, stream: AuthorizedStream, epoch: u32, slate: bool) {
        let timer = tokio_util::sync::CancellationToken::new();
        let timeline_end = {
            let mut streams = self.streams.lock().expect("streams lock");
            let Some(state) = streams.get_mut(&stream.id) else {
                return;
            };
            if state.epoch != epoch {
                return;
            }
            state.publishing = false;
            state.completion = Some(timer.clone());
            state.timeline_end.filter(|_| slate)
        };
        let inner = self.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + inner.reconnect_window;
            // The first slate chunk goes out at once: players at the live edge hold about a
            // second and a half.
            let mut ticks = tokio::time::interval_at(Instant::now(), inner.slate_every);
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut slate_from = timeline_end;
            loop {
                tokio::select! {
                    () = timer.cancelled() => return,
                    () = tokio::time::sleep_until(deadline) => break,
                    _ = ticks.tick() => {}
                }
                let Some(from) = slate_from else { continue };
                if !inner.slate(&stream.id, epoch, from).await {
                    return;
                }
                slate_from = Some(from + inner.slate_every.as_millis() as i64);
            }
            inner.complete(stream, epoch).await;
        });
    }

    /// Announces one slate chunk from `from_ms`; false when the stream is no longer this
    /// instance's to fill (the broadcaster is back, here or elsewhere).
    async fn slate(&self, id: &StreamId, epoch: u32, from_ms: i64) -> bool {
        if self.taken_over(id, epoch).await {
            return false;
        }
        let duration_ms = self.slate_every.as_millis() as u32;
        let seq = {
            let mut streams = self.streams.lock().expect("streams lock");
            match streams.get_mut(id) {
                Some(state) if state.epoch == epoch && !state.publishing => {
                    let seq = state.next_seq;
                    state.next_seq += 1;
                    state.timeline_end = Some(from_ms + i64::from(duration_ms));
                    seq
                }
                _ => return false,
            }
        };
        // Recorded before it is announced: an instance the broadcaster comes back to numbers
        // its chunks after this one.
        let record = TimelineRecord {
            next_seq: seq + 1,
            end_ms: from_ms + i64::from(duration_ms),
        };
        self.record_timeline(id, record).await;
        let chunk = v1::SourceChunk {
            event_id: EventId::generate().to_string(),
            stream_id: id.to_string(),
            epoch,
            seq,
            pts_ms: from_ms,
            duration_ms,
            wall_clock_ms: now_millis() - i64::from(duration_ms),
            slate: true,
            ..Default::default()
        };
        match self.publish_chunk(chunk).await {
            Ok(()) => metrics::slate_chunk(),
            Err(error) => {
                tracing::warn!(stream_id = %id, seq, %error, "slate chunk not announced")
            }
        }
        true
    }
}
