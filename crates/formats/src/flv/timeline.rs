//! One 64-bit millisecond timeline out of RTMP's 32-bit timestamps.
//!
//! RTMP timestamps wrap after about 49.7 days, and extended timestamps are already folded in
//! by the chunk layer, so what arrives here is a `u32` per message. Consecutive messages are
//! read as a signed 32-bit step from the previous one, which unwraps the counter. The result
//! stays the broadcaster's own timeline, with two repairs so that every track is monotonic and
//! durations stay meaningful: a small step back within a track is clamped to the track's last
//! time, and a large step back (an encoder that restarted its clock) or an absurd step forward
//! shifts everything after it to continue where the timeline was.

/// A step back larger than this is an encoder clock reset, not jitter between tracks.
const RESET_TOLERANCE_MS: i64 = 1_000;
/// A step forward larger than this is a broken clock, not a pause.
const MAX_STEP_FORWARD_MS: i64 = 3_600_000;

/// The media tracks of an FLV stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Track {
    Video = 0,
    Audio = 1,
}

/// Maps each message's RTMP timestamp onto the stream's monotonic timeline.
#[derive(Debug, Default)]
pub(crate) struct Timeline {
    last_raw: Option<u32>,
    unwrapped: i64,
    offset: i64,
    latest: Option<i64>,
    track_last: [Option<i64>; 2],
}

impl Timeline {
    /// The timeline position, in milliseconds, of a `track` message stamped `raw`.
    pub(crate) fn map(&mut self, track: Track, raw: u32) -> i64 {
        self.unwrapped = match self.last_raw {
            None => i64::from(raw),
            Some(last) => self.unwrapped + i64::from(raw.wrapping_sub(last) as i32),
        };
        self.last_raw = Some(raw);
        let mut at = self.unwrapped + self.offset;
        if let Some(latest) = self.latest
            && (at < latest - RESET_TOLERANCE_MS || at > latest + MAX_STEP_FORWARD_MS)
        {
            self.offset += latest - at;
            at = latest;
        }
        let slot = &mut self.track_last[track as usize];
        if let Some(last) = *slot {
            at = at.max(last);
        }
        *slot = Some(at);
        self.latest = Some(self.latest.map_or(at, |latest| latest.max(at)));
        at
    }
}

/// The FLV tag timestamp for a timeline position: the low 32 bits, which is the broadcaster's
/// original timestamp unless the timeline repaired it.
pub(crate) fn flv_timestamp(at: i64) -> u32 {
    at.rem_euclid(1 << 32) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_timestamps_are_kept() {
        let mut timeline = Timeline::default();
        assert_eq!(timeline.map(Track::Video, 1000), 1000);
        assert_eq!(timeline.map(Track::Audio, 990), 990);
        assert_eq!(timeline.map(Track::Video, 1033), 1033);
        assert_eq!(timeline.map(Track::Audio, 1011), 1011);
    }

    #[test]
    fn the_32_bit_counter_unwraps() {
        let mut timeline = Timeline::default();
        let start = u32::MAX - 40;
        assert_eq!(timeline.map(Track::Video, start), i64::from(start));
        assert_eq!(timeline.map(Track::Video, 25), (1 << 32) + 25);
        assert_eq!(timeline.map(Track::Audio, 5), (1 << 32) + 5);
        assert_eq!(flv_timestamp((1 << 32) + 25), 25);
    }

    #[test]
    fn a_step_back_within_a_track_is_clamped() {
        let mut timeline = Timeline::default();
        timeline.map(Track::Video, 500);
        assert_eq!(timeline.map(Track::Video, 480), 500);
        assert_eq!(timeline.map(Track::Video, 533), 533);
    }

    #[test]
    fn a_clock_reset_continues_the_timeline() {
        let mut timeline = Timeline::default();
        timeline.map(Track::Video, 60_000);
        assert_eq!(timeline.map(Track::Video, 0), 60_000);
        assert_eq!(timeline.map(Track::Video, 33), 60_033);
        assert_eq!(timeline.map(Track::Audio, 40), 60_040);
        // Two days ahead in one step is not a pause either.
        assert_eq!(timeline.map(Track::Video, 172_800_000), 60_040);
        assert_eq!(timeline.map(Track::Video, 172_800_033), 60_073);
    }
}
