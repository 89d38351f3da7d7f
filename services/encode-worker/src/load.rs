//! How many top rungs a stream leaves out, from how far behind real time its encoding runs.
//!
//! The measure is each chunk's lag: from ingest cutting the chunk (its last frame in) to its
//! whole segments being made. A worker that keeps up makes a chunk's last part within a part or so of the cut; one
//! that is short of CPU falls further behind with every chunk, and every rendition's parts come
//! later and later until players stall. Then the top rung is left out of the next chunk (its
//! segment announced as a gap), then the next one, never the lowest: audio and the lower rungs
//! stay live and players on the top rungs switch down. A rung comes back after several chunks
//! made well within real time.

use std::time::Duration;

/// Chunks in a row made well within real time before a rung comes back; doubled (up to
/// [`MAX_CALM_CHUNKS`]) each time the rung it brought back had to go again, so that a worker
/// on the edge of keeping up does not swing between the two.
const CALM_CHUNKS: u32 = 5;
const MAX_CALM_CHUNKS: u32 = 80;
/// Lag, in parts, past which two rungs are left out at once: about a whole chunk behind.
const FAR_BEHIND_PARTS: u32 = 4;

/// The shedding state of one stream.
#[derive(Debug)]
pub(crate) struct Load {
    /// A chunk whose segments came more than this after its cut was made behind real time.
    behind: Duration,
    shed: usize,
    calm: u32,
    /// Calm chunks needed before the next rung comes back.
    calm_needed: u32,
    /// A rung came back and no chunk has been behind since.
    restored: bool,
    last_lag: Duration,
}

impl Load {
    /// For parts of at most `part_target`.
    pub fn new(part_target: Duration) -> Self {
        Load {
            behind: part_target,
            shed: 0,
            calm: 0,
            calm_needed: CALM_CHUNKS,
            restored: false,
            last_lag: Duration::ZERO,
        }
    }

    /// Top rungs to leave out of the next chunk.
    pub fn shed(&self) -> usize {
        self.shed
    }

    /// A chunk was made `lag` after its cut, out of `rungs` video rungs: what to leave out of
    /// the next one, and whether that changed (more rungs shed: `Some(true)`; one restored:
    /// `Some(false)`).
    pub fn chunk_made(&mut self, lag: Duration, rungs: usize) -> Option<bool> {
        let growing = lag > self.behind && lag >= self.last_lag;
        self.last_lag = lag;
        if growing {
            self.calm = 0;
            if std::mem::take(&mut self.restored) {
                self.calm_needed = (self.calm_needed * 2).min(MAX_CALM_CHUNKS);
            }
            let more = if lag > self.behind * FAR_BEHIND_PARTS {
                2
            } else {
                1
            };
            let shed = (self.shed + more).min(rungs.saturating_sub(1));
            let changed = shed > self.shed;
            self.shed = shed;
            return changed.then_some(true);
        }
        if lag > self.behind / 4 {
            self.calm = 0;
            return None;
        }
        self.calm += 1;
        if self.calm >= self.calm_needed && self.shed > 0 {
            self.calm = 0;
            self.shed -= 1;
            self.restored = true;
            return Some(false);
        }
        if self.calm >= self.calm_needed {
            // Well within real time for long enough since the last rung came back.
            self.restored = false;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PART: Duration = Duration::from_millis(500);

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn a_worker_that_keeps_up_sheds_nothing() {
        let mut load = Load::new(PART);
        for lag in [80, 150, 300, 120, 90] {
            assert_eq!(load.chunk_made(ms(lag), 4), None);
        }
        assert_eq!(load.shed(), 0);
    }

    #[test]
    fn falling_behind_sheds_the_top_rungs_but_never_the_lowest() {
        let mut load = Load::new(PART);
        assert_eq!(load.chunk_made(ms(700), 3), Some(true));
        assert_eq!(load.chunk_made(ms(1_100), 3), Some(true));
        assert_eq!(load.shed(), 2);
        assert_eq!(load.chunk_made(ms(1_500), 3), None, "the lowest rung stays");
        assert_eq!(load.shed(), 2);
    }

    #[test]
    fn a_rung_that_had_to_go_again_waits_twice_as_long_to_come_back() {
        let mut load = Load::new(PART);
        load.chunk_made(ms(700), 4);
        for _ in 0..CALM_CHUNKS {
            load.chunk_made(ms(60), 4);
        }
        assert_eq!(load.shed(), 0, "restored after the calm");
        assert_eq!(load.chunk_made(ms(700), 4), Some(true), "too much again");
        for _ in 0..2 * CALM_CHUNKS - 1 {
            assert_eq!(load.chunk_made(ms(60), 4), None);
        }
        assert_eq!(load.chunk_made(ms(60), 4), Some(false));
    }

    #[test]
    fn a_whole_chunk_behind_sheds_two_rungs_at_once() {
        let mut load = Load::new(PART);
        assert_eq!(load.chunk_made(ms(2_500), 5), Some(true));
        assert_eq!(load.shed(), 2);
    }

    #[test]
    fn catching_up_sheds_no_more_and_calm_brings_a_rung_back() {
        let mut load = Load::new(PART);
        load.chunk_made(ms(900), 4);
        // The backlog drains: still behind, but less and less.
        for lag in [800, 600] {
            assert_eq!(load.chunk_made(ms(lag), 4), None);
        }
        assert_eq!(load.shed(), 1);
        for _ in 0..CALM_CHUNKS - 1 {
            assert_eq!(load.chunk_made(ms(60), 4), None);
        }
        assert_eq!(load.chunk_made(ms(60), 4), Some(false));
        assert_eq!(load.shed(), 0);
    }
}
