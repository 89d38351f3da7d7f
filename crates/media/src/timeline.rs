//! Placing a chunk's own timestamps on the stream timeline.
//!
//! Source chunks come with whatever timestamps the broadcaster or the ingest muxer gave them:
//! continuing from the previous chunk (RTMP), offset by 1.4 s (MPEG-TS), or restarting at zero.
//! The ingest tells us where the chunk starts on the stream timeline (`pts_ms`); the chunk's
//! origin (its earliest timestamp) is mapped there and every other timestamp keeps its distance
//! to the origin. For RTMP chunks, whose timestamps are the stream timeline, that is the
//! identity, so consecutive chunks join exactly. Every rendition is cut from the same times.

use ffmpeg_next::Rational;

/// Maps timestamps of one chunk onto the stream timeline.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChunkClock {
    origin: i64,
    origin_base: Rational,
    start_ms: i64,
}

impl ChunkClock {
    /// `origin` (in `origin_base` units) is placed at `start_ms` on the stream timeline.
    pub fn new(origin: i64, origin_base: Rational, start_ms: i64) -> Self {
        Self {
            origin,
            origin_base,
            start_ms,
        }
    }

    /// `ts` (in `base` units) as ticks of `out_base` on the stream timeline.
    pub fn map(&self, ts: i64, base: Rational, out_base: Rational) -> i64 {
        let start = rescale(self.start_ms, Rational::new(1, 1000), out_base);
        if base == self.origin_base {
            start + rescale(ts - self.origin, base, out_base)
        } else {
            start + rescale(ts, base, out_base) - rescale(self.origin, self.origin_base, out_base)
        }
    }

    /// The chunk start on the stream timeline, in ticks of `out_base`.
    pub fn start(&self, out_base: Rational) -> i64 {
        rescale(self.start_ms, Rational::new(1, 1000), out_base)
    }
}

/// `value` from `from` units to `to` units, rounded to the nearest tick (halves away from 0).
pub(crate) fn rescale(value: i64, from: Rational, to: Rational) -> i64 {
    let num = i128::from(value) * i128::from(from.numerator()) * i128::from(to.denominator());
    let den = i128::from(from.denominator()) * i128::from(to.numerator());
    if den == 0 {
        return 0;
    }
    let (num, den) = if den < 0 { (-num, -den) } else { (num, den) };
    let rounded = if num >= 0 {
        (num + den / 2) / den
    } else {
        -((-num + den / 2) / den)
    };
    i64::try_from(rounded).unwrap_or(if rounded > 0 { i64::MAX } else { i64::MIN })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Rational = Rational(1, 1000);
    const MPEG: Rational = Rational(1, 90_000);

    #[test]
    fn rescale_rounds_to_nearest() {
        assert_eq!(rescale(1, MS, MPEG), 90);
        assert_eq!(rescale(1024, Rational(1, 48_000), MS), 21);
        assert_eq!(rescale(1536, Rational(1, 48_000), MS), 32);
        assert_eq!(rescale(-1536, Rational(1, 48_000), MS), -32);
        assert_eq!(rescale(5, MS, Rational(0, 1)), 0);
    }

    #[test]
    fn origin_lands_on_the_chunk_start() {
        // An MPEG-TS chunk whose first frame is at 1.4 s, placed at 6 s of the stream.
        let clock = ChunkClock::new(126_000, MPEG, 6_000);
        assert_eq!(clock.map(126_000, MPEG, MPEG), 540_000);
        assert_eq!(clock.map(129_000, MPEG, MS), 6_033);
        assert_eq!(clock.start(MS), 6_000);
    }

    #[test]
    fn other_time_bases_keep_their_distance_to_the_origin() {
        // FLV: video origin at 21 ms, audio packet at 5 ms, chunk placed at 2 s.
        let clock = ChunkClock::new(21, MS, 2_000);
        assert_eq!(clock.map(5, MS, Rational(1, 48_000)), 95_232);
        assert_eq!(clock.map(1_008, Rational(1, 48_000), MS), 2_000);
    }
}
