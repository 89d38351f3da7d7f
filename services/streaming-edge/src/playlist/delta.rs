//! Playlist delta updates (RFC 8216bis 4.4.5.2, 6.2.5.1): a player at the live edge reloads
//! every part, so a long live window would be sent again and again; with `_HLS_skip=YES` the
//! segments older than the skip boundary are replaced by one `EXT-X-SKIP` tag, and the player
//! keeps the ones it already has.

use crate::timeline::Segment;

/// The skip boundary in target durations: the RFC's least.
const SKIP_TARGETS: u64 = 6;

/// `CAN-SKIP-UNTIL` in milliseconds, offered only when a live window is longer than the
/// boundary (otherwise a delta update could never skip anything).
pub(super) fn skip_until_ms(target_duration_secs: u64, live_window: usize) -> Option<u64> {
    (live_window as u64 > SKIP_TARGETS).then_some(SKIP_TARGETS * target_duration_secs * 1000)
}

/// How many of the oldest `segments` lie wholly before the skip boundary, `skip_until_ms`
/// before `media_end_ms` (the end of the playlist, parts of the segment being made included).
pub(super) fn skippable(segments: &[Segment], media_end_ms: i64, skip_until_ms: u64) -> usize {
    let newest = segments.last().map_or(media_end_ms, |s| {
        s.program_date_time_ms + i64::from(s.duration_ms)
    });
    // Measured in media time from the end: the open segment's parts, then whole segments.
    let mut behind_end = (media_end_ms - newest).max(0) as u64;
    let mut keep = 0;
    for segment in segments.iter().rev() {
        if behind_end >= skip_until_ms {
            break;
        }
        behind_end += u64::from(segment.duration_ms);
        keep += 1;
    }
    segments.len() - keep
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segments(count: u64) -> Vec<Segment> {
        (0..count)
            .map(|seq| Segment {
                seq,
                duration_ms: 2_000,
                discontinuity: false,
                program_date_time_ms: 1_000_000 + 2_000 * seq as i64,
                size_bytes: 1,
            })
            .collect()
    }

    #[test]
    fn skip_is_offered_only_for_windows_longer_than_the_boundary() {
        assert_eq!(skip_until_ms(2, 6), None);
        assert_eq!(skip_until_ms(2, 15), Some(12_000));
    }

    #[test]
    fn segments_wholly_before_the_boundary_are_skipped() {
        let window = segments(15);
        let end = 1_000_000 + 30_000;
        // The newest 6 segments are the last 12 s: the 9 before them are skipped.
        assert_eq!(skippable(&window, end, 12_000), 9);
        // With 1.5 s of parts of the next segment, the boundary moves by them.
        assert_eq!(skippable(&window, end + 1_500, 12_000), 9);
        assert_eq!(skippable(&window, end + 2_000, 12_000), 10);
        assert_eq!(skippable(&segments(5), 1_010_000, 12_000), 0);
    }
}
