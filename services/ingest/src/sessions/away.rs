//! While a broadcaster is away: slate keeps the stream's players playing for the reconnect
//! window, then the stream completes unless the broadcaster came back (here or through another
//! ingest instance).

use std::sync::Arc;

use livecast_core::EventId;
use livecast_core::time::now_millis;
use livecast_proto::v1;
use tokio::time::{Instant, MissedTickBehavior};

use super::{Claim, Inner, StreamId, StreamState, TimelineEnd, TimelineRecord};
use crate::directory::AuthorizedStream;
use crate::metrics;

impl Inner {
    /// The broadcaster of `stream` left; after the reconnect window the stream completes. With
    /// `slate`, every `slate_every` a slate chunk continues the stream timeline where the last
    /// chunk ended. Both stop when the broadcaster is back.
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
            state.timeline_end.filter(|_| slate).map(|end| end.ms)
        };
        let inner = self.clone();
        tokio::spawn(async move {
            let deadline = Instant::now() + inner.reconnect_window;
            // Each piece of slate goes out when the time it covers has passed, as media would:
            // the stream timeline keeps to the clock, so players at the live edge keep the
            // buffer they had (a piece published ahead of the clock lets them catch up with it,
            // and the broadcaster's return then finds them with nothing in hand).
            let start = Instant::now() + inner.slate_every;
            let mut ticks = tokio::time::interval_at(start, inner.slate_every);
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
        let piece = {
            let mut streams = self.streams.lock().expect("streams lock");
            match streams.get_mut(id) {
                Some(state) if state.epoch == epoch && !state.publishing => {
                    SlatePiece::take(state, from_ms, duration_ms)
                }
                _ => return false,
            }
        };
        self.announce_slate(id, piece).await;
        true
    }

    /// A session that continues the timeline where slate left it (slate goes out in pieces,
    /// the broadcaster connects between two) starts with a last piece of slate up to now: the
    /// broadcaster's media then lands on the timeline when it arrives, and players at the live
    /// edge find the first part when they expect it. A timeline left further behind (a backup
    /// input taking over mid-chunk, an instance gone without slate) is not bridged so: the
    /// worker may have lost the picture to hold with the chunk it was following.
    pub(super) async fn catch_up(&self, id: &StreamId, claim: &mut Claim) {
        let Some(start) = claim.timeline_start.filter(|_| !claim.takeover) else {
            return;
        };
        let behind = now_millis() - start.at_ms;
        let slate_ms = self.slate_every.as_millis() as i64;
        if !(MIN_CATCH_UP_MS..=2 * slate_ms).contains(&behind) {
            return;
        }
        let piece = {
            let mut streams = self.streams.lock().expect("streams lock");
            match streams.get_mut(id) {
                Some(state) if state.epoch == claim.epoch && state.next_seq == claim.next_seq => {
                    SlatePiece::take(state, start.ms, behind as u32)
                }
                _ => return,
            }
        };
        claim.next_seq = piece.seq + 1;
        claim.timeline_start = Some(piece.end());
        self.announce_slate(id, piece).await;
    }

    /// Records where the timeline stands after `piece` (before announcing it: an instance the
    /// broadcaster comes back to numbers its chunks after this one), then announces it.
    async fn announce_slate(&self, id: &StreamId, piece: SlatePiece) {
        let record = TimelineRecord {
            next_seq: piece.seq + 1,
            end: piece.end(),
            format: piece.format,
        };
        self.record_timeline(id, record).await;
        let chunk = v1::SourceChunk {
            event_id: EventId::generate().to_string(),
            stream_id: id.to_string(),
            epoch: piece.epoch,
            seq: piece.seq,
            pts_ms: piece.from_ms,
            duration_ms: piece.duration_ms,
            wall_clock_ms: piece.at_ms - i64::from(piece.duration_ms),
            slate: true,
            ..Default::default()
        };
        match self.publish_chunk(chunk).await {
            Ok(()) => metrics::slate_chunk(),
            Err(error) => {
                tracing::warn!(stream_id = %id, seq = piece.seq, %error, "slate chunk not announced")
            }
        }
    }
}

/// Less than a frame behind the clock is on time.
const MIN_CATCH_UP_MS: i64 = 40;

/// One piece of slate, numbered and placed on the stream timeline.
struct SlatePiece {
    epoch: u32,
    seq: u64,
    from_ms: i64,
    duration_ms: u32,
    /// When it was placed: the time it covers has passed by then.
    at_ms: i64,
    format: Option<u64>,
}

impl SlatePiece {
    /// The next chunk of `state` as slate from `from_ms` for `duration_ms`.
    fn take(state: &mut StreamState, from_ms: i64, duration_ms: u32) -> Self {
        let piece = SlatePiece {
            epoch: state.epoch,
            seq: state.next_seq,
            from_ms,
            duration_ms,
            at_ms: now_millis(),
            format: state.format,
        };
        state.next_seq += 1;
        state.timeline_end = Some(piece.end());
        piece
    }

    fn end(&self) -> TimelineEnd {
        TimelineEnd {
            ms: self.from_ms + i64::from(self.duration_ms),
            at_ms: self.at_ms,
        }
    }
}
