//! The Low-Latency HLS parts of a live media playlist (RFC 8216bis): `EXT-X-PART-INF`, the
//! parts of the newest segments and of the one being made, `EXT-X-PRELOAD-HINT` for the next
//! part, `PART-HOLD-BACK`, and rendition reports that say which part each rendition is at.

use std::fmt::Write as _;

use livecast_core::RenditionName;

use super::{seconds, write_segment_head};
use crate::parts::PartRun;
use crate::timeline::{RenditionTimeline, Segment};

/// How far behind the newest part a player starts, in part targets (the RFC's minimum).
const PART_HOLD_BACK_TARGETS: u32 = 3;

/// `EXT-X-SERVER-CONTROL` (with `CAN-SKIP-UNTIL` when delta updates are offered), and
/// `EXT-X-PART-INF` when the rendition has parts.
pub(super) fn write_server_control(
    out: &mut String,
    part_target_ms: Option<u32>,
    skip_until_ms: Option<u64>,
) {
    out.push_str("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES");
    if let Some(until) = skip_until_ms {
        let _ = write!(out, ",CAN-SKIP-UNTIL={}", until / 1000);
    }
    match part_target_ms {
        None => out.push('\n'),
        Some(target) => {
            let _ = writeln!(
                out,
                ",PART-HOLD-BACK={}\n#EXT-X-PART-INF:PART-TARGET={}",
                seconds(target * PART_HOLD_BACK_TARGETS),
                seconds(target)
            );
        }
    }
}

/// When the playlist's media ends: after the newest whole segment, the parts of the one being
/// made.
pub(super) fn media_end_ms(timeline: &RenditionTimeline, newest: &Segment) -> i64 {
    let open_ms = timeline.parts().open(newest.seq + 1).map_or(0, |run| {
        run.parts.iter().map(|p| i64::from(p.duration_ms)).sum()
    });
    newest.program_date_time_ms + i64::from(newest.duration_ms) + open_ms
}

/// The parts of `segment`, if it starts within three target durations of the playlist's end
/// (older parts are no use to a player at the live edge and the RFC has them removed) and all
/// of them are known.
pub(super) fn write_recent_parts(
    out: &mut String,
    timeline: &RenditionTimeline,
    segment: &Segment,
    media_end_ms: i64,
    target_duration_secs: u64,
) {
    let recent =
        media_end_ms - segment.program_date_time_ms < 3 * 1_000 * target_duration_secs as i64;
    if let Some(run) = timeline.parts().settled(segment.seq).filter(|_| recent) {
        write_parts(out, segment.seq, run);
    }
}

/// After the newest whole segment `newest`: the parts of the segment being made, then the
/// hint for the part that comes next.
pub(super) fn write_open_segment(out: &mut String, timeline: &RenditionTimeline, newest: u64) {
    let open = newest + 1;
    let next = match timeline.parts().open(open) {
        Some(run) => {
            write_segment_head(out, run.discontinuity, run.program_date_time_ms);
            write_parts(out, open, run);
            run.next_after(open)
        }
        None => (open, 0),
    };
    let _ = writeln!(
        out,
        "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}.{}.m4s\"",
        next.0, next.1
    );
}

/// The part a live playlist of `timeline` hints at next (`EXT-X-PRELOAD-HINT`), if it lists
/// parts: the one after the newest part, in the segment being made or, once its last part
/// came, the first of the one after it.
pub fn preload_hint(timeline: &RenditionTimeline, live_window: usize) -> Option<(u64, u32)> {
    let newest = timeline.live_window(live_window).last()?.seq;
    timeline.parts().target_ms(newest)?;
    let open = newest + 1;
    Some(
        timeline
            .parts()
            .open(open)
            .map_or((open, 0), |run| run.next_after(open)),
    )
}

/// `EXT-X-RENDITION-REPORT` of another rendition: its newest segment and, with parts, its
/// newest part.
pub(super) fn write_rendition_report(
    out: &mut String,
    name: &RenditionName,
    timeline: &RenditionTimeline,
    live_window: usize,
) {
    let Some(newest) = timeline.live_window(live_window).last().map(|s| s.seq) else {
        return;
    };
    let _ = write!(out, "#EXT-X-RENDITION-REPORT:URI=\"../{name}/index.m3u8\"");
    match timeline.parts().open(newest + 1) {
        Some(run) => {
            let _ = writeln!(
                out,
                ",LAST-MSN={},LAST-PART={}",
                newest + 1,
                run.parts.len() - 1
            );
        }
        None => match timeline.parts().settled(newest) {
            Some(run) => {
                let _ = writeln!(out, ",LAST-MSN={newest},LAST-PART={}", run.parts.len() - 1);
            }
            None => {
                let _ = writeln!(out, ",LAST-MSN={newest}");
            }
        },
    }
}

fn write_parts(out: &mut String, seq: u64, run: &PartRun) {
    for (index, part) in run.parts.iter().enumerate() {
        let _ = write!(
            out,
            "#EXT-X-PART:DURATION={},URI=\"{seq}.{index}.m4s\"",
            seconds(part.duration_ms)
        );
        out.push_str(if part.independent {
            ",INDEPENDENT=YES\n"
        } else {
            "\n"
        });
    }
}
