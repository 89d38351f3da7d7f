use super::*;
use proptest::prelude::*;

fn timeline(seqs: &[u64]) -> RenditionTimeline {
    let mut timeline = RenditionTimeline::default();
    for &seq in seqs {
        timeline.insert(segment(seq, seq % 4 == 3));
    }
    timeline
}

fn segment(seq: u64, discontinuity: bool) -> Segment {
    Segment {
        seq,
        duration_ms: 2_000,
        discontinuity,
        program_date_time_ms: 1_700_000_000_000 + seq as i64 * 2_000,
        size_bytes: 100_000,
    }
}

fn seqs(segments: &[Segment]) -> Vec<u64> {
    segments.iter().map(|s| s.seq).collect()
}

#[test]
fn the_live_window_slides_and_holds_back_before_a_recent_hole() {
    assert_eq!(seqs(&timeline(&[0, 1, 2, 3, 4]).live_window(3)), [2, 3, 4]);
    assert_eq!(seqs(&timeline(&[0, 1]).live_window(3)), [0, 1]);
    // 5 is late: hold back at 4 until it comes.
    assert_eq!(
        seqs(&timeline(&[0, 1, 2, 3, 4, 6]).live_window(3)),
        [2, 3, 4]
    );
    assert_eq!(
        seqs(&timeline(&[0, 1, 2, 3, 4, 5, 6]).live_window(3)),
        [4, 5, 6]
    );
    // 2 never came and three newer segments exist: it is skipped, never listed across.
    assert_eq!(seqs(&timeline(&[0, 1, 3, 4, 5]).live_window(3)), [3, 4, 5]);
    assert!(timeline(&[]).live_window(3).is_empty());
}

#[test]
fn redelivery_keeps_the_first_version_and_counts_discontinuities_once() {
    let mut timeline = timeline(&[0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert!(!timeline.insert(Segment {
        duration_ms: 9_000,
        ..segment(3, false)
    }));
    assert_eq!(timeline.segment(3).unwrap().duration_ms, 2_000);
    assert_eq!(timeline.discontinuities_before(3), 0);
    assert_eq!(timeline.discontinuities_before(4), 1);
    assert_eq!(timeline.discontinuities_before(100), 2);
    assert_eq!(timeline.target_duration_secs(), 2);
    timeline.insert(Segment {
        duration_ms: 2_001,
        ..segment(9, false)
    });
    assert_eq!(timeline.target_duration_secs(), 3);
    assert_eq!(timeline.bandwidth(), 400_000);
}

#[test]
fn a_completed_stream_plays_as_vod_only_once_every_rendition_has_its_last_segment() {
    let mut stream = StreamTimeline::default();
    let names = [
        RenditionName::parse("360p").unwrap(),
        RenditionName::parse("audio").unwrap(),
    ];
    for seq in 0..3 {
        for name in &names {
            stream.apply_segment(name.clone(), None, segment(seq, false));
        }
    }
    // Ingest says the recording has 5 segments; the worker has published 3 of them.
    stream.apply_status(StreamStatus::StreamComplete, 5);
    assert!(!stream.is_complete());
    stream.apply_segment(names[0].clone(), None, segment(4, false));
    stream.apply_segment(names[0].clone(), None, segment(3, false));
    assert!(!stream.is_complete(), "the audio rendition is still short");
    for seq in [3, 4] {
        stream.apply_segment(names[1].clone(), None, segment(seq, false));
    }
    assert!(stream.is_complete());
}

#[test]
fn a_rendition_that_stopped_being_made_is_not_waited_for() {
    let mut stream = StreamTimeline::default();
    let (p720, p360) = (
        RenditionName::parse("720p").unwrap(),
        RenditionName::parse("360p").unwrap(),
    );
    for seq in 0..3 {
        stream.apply_segment(p720.clone(), None, segment(seq, false));
        stream.apply_segment(p360.clone(), None, segment(seq, false));
    }
    // Back at 360p after a discontinuity: the 720p rendition ends at segment 2.
    for seq in 3..6 {
        stream.apply_segment(p360.clone(), None, segment(seq, seq == 3));
    }
    stream.apply_status(StreamStatus::StreamComplete, 6);
    assert!(stream.is_complete());
}

#[test]
fn a_part_that_comes_after_its_segment_is_whole_is_not_listed() {
    let mut stream = StreamTimeline::default();
    let name = RenditionName::parse("720p").unwrap();
    stream.apply_segment(name.clone(), None, segment(0, false));
    let at = |seq| PartAt {
        seq,
        index: 0,
        program_date_time_ms: 0,
        discontinuity: false,
        target_ms: 500,
    };
    let part = Part {
        duration_ms: 500,
        independent: true,
        last: false,
    };
    assert!(!stream.apply_part(name.clone(), None, at(0), part), "late");
    assert!(stream.apply_part(name.clone(), None, at(1), part));
    let timeline = stream.rendition(&name).unwrap();
    assert!(timeline.parts().run(0).is_none());
    assert_eq!(timeline.parts().open(1).map(|run| run.parts.len()), Some(1));
}

#[test]
fn a_segment_whose_event_overtook_its_last_parts_is_listed_as_being_made_until_they_come() {
    let mut stream = StreamTimeline::default();
    let name = RenditionName::parse("360p").unwrap();
    let at = |seq, index| PartAt {
        seq,
        index,
        program_date_time_ms: 0,
        discontinuity: false,
        target_ms: 500,
    };
    let part = |last| Part {
        duration_ms: 467,
        independent: false,
        last,
    };
    stream.apply_segment(name.clone(), None, segment(0, false));
    for index in 0..3 {
        assert!(stream.apply_part(name.clone(), None, at(1, index), part(false)));
    }
    // Segment 1 comes whole, announced in 5 parts; parts 3 and 4 are still on their way.
    stream.apply_segment(name.clone(), None, segment(1, false));
    stream.segment_parts_done(&name, 1, 5);
    let timeline = stream.rendition(&name).unwrap();
    let listed: Vec<u64> = timeline.live_window(5).iter().map(|s| s.seq).collect();
    assert_eq!(listed, [0], "segment 1 is still being made for a player");
    assert_eq!(timeline.parts().open(1).map(|run| run.parts.len()), Some(3));
    assert_eq!(
        crate::playlist::low_latency::preload_hint(timeline, 5),
        Some((1, 3))
    );

    stream.apply_part(name.clone(), None, at(1, 3), part(false));
    stream.apply_part(name.clone(), None, at(1, 4), part(true));
    let timeline = stream.rendition(&name).unwrap();
    let listed: Vec<u64> = timeline.live_window(5).iter().map(|s| s.seq).collect();
    assert_eq!(listed, [0, 1], "whole, with all its parts");
    assert_eq!(
        crate::playlist::low_latency::preload_hint(timeline, 5),
        Some((2, 0))
    );
}

#[test]
fn the_catalogue_only_moves_a_stream_forward() {
    let mut stream = StreamTimeline::default();
    stream.apply_status(StreamStatus::StreamComplete, 0);
    stream.merge_loaded(StreamStatus::StreamActive, &[], &[]);
    assert!(stream.is_complete());
    stream.merge_loaded(StreamStatus::Inactive, &[], &[]);
    assert!(stream.is_gone());
    let rendition = RenditionName::parse("360p").unwrap();
    assert!(!stream.apply_segment(rendition, None, segment(0, false)));
    assert!(stream.rendition_names().is_empty());
}

proptest! {
    #[test]
    fn a_live_window_is_contiguous_bounded_and_ends_at_most_at_the_newest(
        present in proptest::collection::btree_set(0u64..40, 0..40),
        window in 3usize..8,
    ) {
        let seqs: Vec<u64> = present.iter().copied().collect();
        let listed = timeline(&seqs).live_window(window);
        prop_assert!(listed.len() <= window);
        prop_assert!(listed.windows(2).all(|pair| pair[1].seq == pair[0].seq + 1));
        if let Some(last) = listed.last() {
            prop_assert!(present.contains(&last.seq));
        } else {
            prop_assert!(present.is_empty());
        }
    }
}
