//! Partial segments (Low-Latency HLS) of one rendition's newest segments: what `PartReady`
//! announced, kept while a player at the live edge may ask for them.

use std::collections::BTreeMap;

/// Parents whose parts are kept, counting back from the newest: parts are listed only for the
/// last three target durations of a playlist, which three 2 s segments and the open one cover.
const KEPT_PARENTS: u64 = 4;

/// One partial segment as announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Part {
    pub duration_ms: u32,
    /// Starts with a sync sample.
    pub independent: bool,
    /// The segment's last part.
    pub last: bool,
}

/// The parts of one segment, contiguous from part 0, and what its first part said of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRun {
    pub parts: Vec<Part>,
    pub program_date_time_ms: i64,
    pub discontinuity: bool,
    /// Once the segment is whole: how many parts it was announced in. Parts and segments
    /// travel on two topics, so its last parts may still be on their way.
    pub whole_in: Option<u32>,
}

impl PartRun {
    /// Whether its last part came: the next part is the next segment's first.
    pub fn complete(&self) -> bool {
        self.parts.last().is_some_and(|part| part.last)
    }

    /// Whether the segment is whole and every one of its parts is here: listed with it.
    pub fn settled(&self) -> bool {
        self.whole_in == Some(self.parts.len() as u32)
    }

    /// The part that comes after the run's newest: (segment, part) relative to its own.
    pub fn next_after(&self, seq: u64) -> (u64, u32) {
        match self.complete() {
            true => (seq + 1, 0),
            false => (seq, self.parts.len() as u32),
        }
    }
}

/// The parts of a rendition's newest segments.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    runs: BTreeMap<u64, PartRun>,
    target_ms: u32,
}

/// Where a part comes in a segment's run.
#[derive(Debug, Clone, Copy)]
pub struct PartAt {
    pub seq: u64,
    pub index: u32,
    pub program_date_time_ms: i64,
    pub discontinuity: bool,
    pub target_ms: u32,
}

impl Parts {
    /// Takes part `at.index` of segment `at.seq`; only the next part of a run counts (part 0
    /// opens one), so a run never has a hole. Whether it was new.
    pub fn apply(&mut self, at: PartAt, part: Part) -> bool {
        if self
            .runs
            .last_key_value()
            .is_some_and(|(&newest, _)| at.seq + KEPT_PARENTS <= newest)
        {
            return false;
        }
        if at.index == 0 && !self.runs.contains_key(&at.seq) {
            self.runs.insert(
                at.seq,
                PartRun {
                    parts: Vec::new(),
                    program_date_time_ms: at.program_date_time_ms,
                    discontinuity: at.discontinuity,
                    whole_in: None,
                },
            );
        }
        let Some(run) = self.runs.get_mut(&at.seq).filter(|run| {
            run.parts.len() == at.index as usize
                && !run.complete()
                && run.whole_in.is_none_or(|count| at.index < count)
        }) else {
            return false;
        };
        run.parts.push(part);
        self.target_ms = self.target_ms.max(at.target_ms);
        while self.runs.len() as u64 > KEPT_PARENTS {
            self.runs.pop_first();
        }
        true
    }

    /// Segment `seq` is whole, announced in `part_count` parts: its run is listed with it
    /// once it holds every one of them (the last may come after the segment); a segment made
    /// whole at once, or in fewer parts than the run has, drops the run.
    pub fn segment_done(&mut self, seq: u64, part_count: u32) {
        let Some(run) = self.runs.get_mut(&seq) else {
            return;
        };
        if part_count == 0 || run.parts.len() > part_count as usize {
            self.runs.remove(&seq);
        } else {
            run.whole_in = Some(part_count);
        }
    }

    /// The longest a part lasts (`PART-TARGET`), while parts come: any was announced, and the
    /// segment after `newest` (the newest whole one) has some or one of the two newest whole
    /// segments was listed in parts. A stream whose worker stopped making parts (falling back
    /// to whole segments) stops advertising them, so no player waits on a hint that never comes.
    pub fn target_ms(&self, newest: u64) -> Option<u32> {
        let active = self.open(newest + 1).is_some()
            || self.settled(newest).is_some()
            || newest
                .checked_sub(1)
                .and_then(|seq| self.settled(seq))
                .is_some();
        (self.target_ms > 0 && active).then_some(self.target_ms)
    }

    /// The run of segment `seq`, whole or not.
    pub fn run(&self, seq: u64) -> Option<&PartRun> {
        self.runs.get(&seq)
    }

    /// Whether segment `seq` is whole and some of the parts it was announced in are still on
    /// their way.
    pub fn awaiting(&self, seq: u64) -> bool {
        self.runs
            .get(&seq)
            .is_some_and(|run| run.whole_in.is_some() && !run.settled())
    }

    /// The run of whole segment `seq` if every one of its parts is here.
    pub fn settled(&self, seq: u64) -> Option<&PartRun> {
        self.runs.get(&seq).filter(|run| run.settled())
    }

    /// The parts so far of segment `seq`, the one being made after the newest whole segment.
    pub fn open(&self, seq: u64) -> Option<&PartRun> {
        self.runs.get(&seq).filter(|run| !run.parts.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seq: u64, index: u32) -> PartAt {
        PartAt {
            seq,
            index,
            program_date_time_ms: 1_000 * seq as i64,
            discontinuity: false,
            target_ms: 500,
        }
    }

    const HALF: Part = Part {
        duration_ms: 500,
        independent: false,
        last: false,
    };

    #[test]
    fn runs_grow_only_by_their_next_part() {
        let mut parts = Parts::default();
        assert_eq!(parts.target_ms(5), None);
        assert!(parts.apply(at(5, 0), HALF));
        assert!(!parts.apply(at(5, 2), HALF), "a hole");
        assert!(parts.apply(at(5, 1), HALF));
        assert!(!parts.apply(at(5, 1), HALF), "a repeat");
        assert!(!parts.apply(at(6, 1), HALF), "a run starts at part 0");
        assert_eq!(parts.run(5).unwrap().parts.len(), 2);
        assert_eq!(parts.target_ms(4), Some(500));
        // Two whole segments later with no part since, parts are no longer advertised.
        assert_eq!(parts.target_ms(7), None);
        assert_eq!(parts.open(5).map(|run| run.parts.len()), Some(2));
        assert_eq!(parts.open(6), None);
    }

    #[test]
    fn a_whole_segment_keeps_its_run_only_when_every_part_was_seen() {
        let mut parts = Parts::default();
        for index in 0..4 {
            parts.apply(at(1, index), HALF);
        }
        parts.apply(at(2, 0), HALF);
        parts.segment_done(1, 4);
        parts.segment_done(2, 4);
        assert!(parts.settled(1).is_some());
        assert!(
            parts.settled(2).is_none(),
            "three parts of segment 2 are missing"
        );
        // They were on their way: the segment's event overtook them.
        for index in 1..4 {
            assert!(parts.apply(at(2, index), HALF));
        }
        assert!(parts.settled(2).is_some());
        assert!(
            !parts.apply(at(2, 4), HALF),
            "no part beyond the segment's count"
        );
        parts.segment_done(3, 0);
        parts.apply(at(3, 0), HALF);
        parts.segment_done(3, 0);
        assert!(
            parts.run(3).is_none(),
            "made whole at once: its parts are not listed"
        );
    }

    #[test]
    fn a_run_ends_with_its_last_part_and_then_points_at_the_next_segment() {
        let mut parts = Parts::default();
        parts.apply(at(7, 0), HALF);
        assert_eq!(parts.run(7).unwrap().next_after(7), (7, 1));
        let last = Part { last: true, ..HALF };
        assert!(parts.apply(at(7, 1), last));
        assert!(parts.run(7).unwrap().complete());
        assert_eq!(parts.run(7).unwrap().next_after(7), (8, 0));
        assert!(
            !parts.apply(at(7, 2), HALF),
            "nothing comes after the last part"
        );
    }

    #[test]
    fn only_the_newest_parents_are_kept() {
        let mut parts = Parts::default();
        for seq in 0..10 {
            parts.apply(at(seq, 0), HALF);
        }
        assert!(parts.run(5).is_none());
        assert!(parts.run(6).is_some());
        assert!(!parts.apply(at(2, 0), HALF), "too old to list");
    }
}
