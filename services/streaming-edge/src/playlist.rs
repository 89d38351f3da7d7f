//! HLS playlists (RFC 8216, version 7, CMAF segments) rendered from the segment index, never
//! from blob listings.

use std::cmp::Reverse;
use std::fmt::Write as _;

use time::OffsetDateTime;

use livecast_core::RenditionName;

use crate::timeline::{Segment, StreamTimeline};

mod delta;
pub mod low_latency;

/// Codecs of an audio-only variant whose encoder did not say (AAC-LC).
const DEFAULT_AUDIO_CODECS: &str = "mp4a.40.2";

/// A rendered media playlist and what its HTTP headers are derived from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaPlaylist {
    /// The playlist text.
    pub body: String,
    /// `EXT-X-TARGETDURATION`, in seconds.
    pub target_duration_secs: u64,
    /// When the newest listed segment ends (ms since the epoch), for `Last-Modified`.
    pub newest_end_ms: i64,
    /// The media sequence number of the newest listed segment.
    pub last_msn: u64,
    /// Whether this is the whole recording (`ENDLIST`).
    pub complete: bool,
}

/// The master playlist: one variant per playable rendition, video from the highest bandwidth
/// down, the audio-only variant last. `None` until every rendition of the ladder is playable, so
/// a player never sees a partial ladder.
pub fn master(stream: &StreamTimeline) -> Option<String> {
    if !stream.ladder_complete() {
        return None;
    }
    let mut variants: Vec<_> = stream
        .playable()
        .filter_map(|(name, timeline)| timeline.info().map(|info| (name, timeline, info)))
        .collect();
    if variants.is_empty() {
        return None;
    }
    variants.sort_by_key(|(name, timeline, info)| {
        (
            info.audio_only,
            Reverse(timeline.bandwidth()),
            Reverse(info.height),
            (*name).clone(),
        )
    });
    let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for (name, timeline, info) in variants {
        let _ = write!(out, "#EXT-X-STREAM-INF:BANDWIDTH={}", timeline.bandwidth());
        if info.average_bandwidth > 0 {
            let _ = write!(out, ",AVERAGE-BANDWIDTH={}", info.average_bandwidth);
        }
        if info.audio_only {
            let codecs = quoted_safe(&info.codecs);
            let codecs = if codecs.is_empty() {
                DEFAULT_AUDIO_CODECS.to_owned()
            } else {
                codecs
            };
            let _ = write!(out, ",CODECS=\"{codecs}\"");
        } else {
            if info.width > 0 && info.height > 0 {
                let _ = write!(out, ",RESOLUTION={}x{}", info.width, info.height);
            }
            let codecs = quoted_safe(&info.codecs);
            if !codecs.is_empty() {
                let _ = write!(out, ",CODECS=\"{codecs}\"");
            }
            if info.frame_rate_milli > 0 {
                let _ = write!(
                    out,
                    ",FRAME-RATE={}.{:03}",
                    info.frame_rate_milli / 1000,
                    info.frame_rate_milli % 1000
                );
            }
        }
        let _ = write!(out, "\n{name}/index.m3u8\n");
    }
    Some(out)
}

/// The media playlist of one rendition: the live window, or every segment with `ENDLIST` once
/// the stream is complete. `None` when no segment is indexed yet. A live playlist says that
/// the edge holds a reload for the next segment (`CAN-BLOCK-RELOAD`) and reports where the
/// other renditions are, so a player can switch with one blocking request; where the worker
/// announced partial segments it is a Low-Latency HLS playlist (see [`low_latency`]). A window
/// longer than the skip boundary offers delta updates (`CAN-SKIP-UNTIL`); `delta` asks for one:
/// the segments older than the boundary replaced by `EXT-X-SKIP` (RFC 8216bis 4.4.5.2).
pub fn media(
    stream: &StreamTimeline,
    rendition: &RenditionName,
    live_window: usize,
    delta: bool,
) -> Option<MediaPlaylist> {
    let complete = stream.is_complete();
    let timeline = stream.rendition(rendition)?;
    let segments = if complete {
        let end = stream.recording_end();
        let mut all = timeline.all();
        all.retain(|segment| end.is_none_or(|end| segment.seq < end));
        all
    } else {
        timeline.live_window(live_window)
    };
    let (first, last) = (segments.first()?, segments.last()?);
    let target_duration_secs = timeline.target_duration_secs();
    let part_target_ms = timeline.parts().target_ms(last.seq).filter(|_| !complete);
    let skip_until_ms =
        delta::skip_until_ms(target_duration_secs, live_window).filter(|_| !complete);
    let media_end_ms = low_latency::media_end_ms(timeline, last);
    let skipped = match skip_until_ms.filter(|_| delta) {
        Some(until) => delta::skippable(&segments, media_end_ms, until),
        None => 0,
    };
    let mut out = String::with_capacity(320 + segments.len() * 96);
    // EXT-X-SKIP needs version 9, EXT-X-GAP version 8.
    let version = match (skipped > 0, segments.iter().any(Segment::is_gap)) {
        (true, _) => 9,
        (false, true) => 8,
        (false, false) => 7,
    };
    let _ = write!(out, "#EXTM3U\n#EXT-X-VERSION:{version}\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{target_duration_secs}");
    if !complete {
        low_latency::write_server_control(&mut out, part_target_ms, skip_until_ms);
    }
    let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", first.seq);
    let _ = writeln!(
        out,
        "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
        timeline.discontinuities_before(first.seq)
    );
    if complete {
        out.push_str("#EXT-X-PLAYLIST-TYPE:VOD\n");
    }
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init.mp4\"\n");
    if skipped > 0 {
        let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
    }
    let end_ms = last.program_date_time_ms + i64::from(last.duration_ms);
    for segment in &segments[skipped..] {
        write_segment_head(
            &mut out,
            segment.discontinuity,
            segment.program_date_time_ms,
        );
        if part_target_ms.is_some() {
            low_latency::write_recent_parts(
                &mut out,
                timeline,
                segment,
                media_end_ms,
                target_duration_secs,
            );
        }
        if segment.is_gap() {
            out.push_str("#EXT-X-GAP\n");
        }
        let _ = write!(
            out,
            "#EXTINF:{},\n{}.m4s\n",
            seconds(segment.duration_ms),
            segment.seq
        );
    }
    if complete {
        out.push_str("#EXT-X-ENDLIST\n");
    } else {
        if part_target_ms.is_some() {
            low_latency::write_open_segment(&mut out, timeline, last.seq);
        }
        for (other, other_timeline) in stream.playable().filter(|(name, _)| *name != rendition) {
            low_latency::write_rendition_report(&mut out, other, other_timeline, live_window);
        }
    }
    Some(MediaPlaylist {
        body: out,
        target_duration_secs,
        newest_end_ms: end_ms,
        last_msn: last.seq,
        complete,
    })
}

/// The tags that come before a segment's first part or its `EXTINF`.
fn write_segment_head(out: &mut String, discontinuity: bool, program_date_time_ms: i64) {
    if discontinuity {
        out.push_str("#EXT-X-DISCONTINUITY\n");
    }
    let _ = writeln!(
        out,
        "#EXT-X-PROGRAM-DATE-TIME:{}",
        program_date_time(program_date_time_ms)
    );
}

/// Milliseconds as the decimal seconds playlists carry (`2.000`).
fn seconds(ms: u32) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// RFC 3339 in UTC with milliseconds (`2026-11-05T12:00:00.000Z`); times outside what a
/// calendar can show are clamped to the epoch.
pub fn program_date_time(ms: i64) -> String {
    let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// A codecs string fit for a quoted attribute (no quotes, no control characters).
fn quoted_safe(codecs: &str) -> String {
    codecs
        .chars()
        .filter(|c| *c != '"' && !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::RenditionInfo;
    use livecast_core::StreamStatus;

    fn info(width: u32, height: u32, bandwidth: u32, audio_only: bool) -> RenditionInfo {
        RenditionInfo {
            width,
            height,
            bandwidth,
            average_bandwidth: bandwidth / 2,
            codecs: if audio_only {
                String::new()
            } else {
                "avc1.64001f,mp4a.40.2".into()
            },
            frame_rate_milli: if audio_only { 0 } else { 29_970 },
            audio_only,
        }
    }

    fn segment(seq: u64, discontinuity: bool) -> Segment {
        Segment {
            seq,
            duration_ms: 2_000,
            discontinuity,
            program_date_time_ms: 1_767_225_600_000 + seq as i64 * 2_000,
            size_bytes: 10,
        }
    }

    fn stream(seqs: u64, disc_at: &[u64]) -> StreamTimeline {
        let mut stream = StreamTimeline::default();
        stream.apply_status(StreamStatus::StreamActive, 0);
        for (name, info) in [
            ("audio", info(0, 0, 64_000, true)),
            ("360p", info(640, 360, 800_000, false)),
            ("720p", info(1280, 720, 3_000_000, false)),
        ] {
            for seq in 0..seqs {
                stream.apply_segment(
                    RenditionName::parse(name).unwrap(),
                    Some(info.clone()),
                    segment(seq, disc_at.contains(&seq)),
                );
            }
        }
        stream
    }

    #[test]
    fn a_recording_ends_with_the_broadcast_not_with_the_slate_after_it() {
        let mut stream = stream(6, &[]);
        stream.apply_status(StreamStatus::StreamComplete, 4);
        let p360 = RenditionName::parse("360p").unwrap();
        let vod = media(&stream, &p360, 5, false).unwrap().body;
        assert!(vod.contains("3.m4s") && !vod.contains("4.m4s"), "{vod}");
        assert!(vod.ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn a_segment_not_made_is_listed_as_a_gap() {
        let mut stream = stream(3, &[]);
        let p720 = RenditionName::parse("720p").unwrap();
        let gap = Segment {
            size_bytes: 0,
            ..segment(3, false)
        };
        stream.apply_segment(p720.clone(), None, gap);
        let playlist = media(&stream, &p720, 5, false).unwrap().body;
        assert!(playlist.contains("#EXT-X-VERSION:8\n"), "{playlist}");
        assert!(
            playlist.contains("#EXT-X-GAP\n#EXTINF:2.000,\n3.m4s\n"),
            "{playlist}"
        );
        assert_eq!(playlist.matches("#EXT-X-GAP").count(), 1);
    }

    #[test]
    fn master_waits_for_the_whole_ladder() {
        let mut partial = StreamTimeline::default();
        partial.apply_status(StreamStatus::StreamActive, 0);
        partial.expect_ladder(3);
        partial.apply_segment(
            RenditionName::parse("audio").unwrap(),
            Some(info(0, 0, 64_000, true)),
            segment(0, false),
        );
        assert_eq!(master(&partial), None, "a partial ladder is not published");
        let mut whole = stream(1, &[]);
        whole.expect_ladder(3);
        assert!(master(&whole).unwrap().contains("720p/index.m3u8"));
    }

    #[test]
    fn master_lists_video_highest_first_and_audio_last() {
        let text = master(&stream(1, &[])).unwrap();
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-STREAM-INF:BANDWIDTH=3000000,AVERAGE-BANDWIDTH=1500000,RESOLUTION=1280x720,\
             CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=29.970\n720p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=800000,AVERAGE-BANDWIDTH=400000,RESOLUTION=640x360,\
             CODECS=\"avc1.64001f,mp4a.40.2\",FRAME-RATE=29.970\n360p/index.m3u8\n\
             #EXT-X-STREAM-INF:BANDWIDTH=64000,AVERAGE-BANDWIDTH=32000,CODECS=\"mp4a.40.2\"\n\
             audio/index.m3u8\n"
        );
        assert_eq!(master(&StreamTimeline::default()), None);
    }

    #[test]
    fn live_media_playlist_lists_the_window_with_discontinuity_counts() {
        let stream = stream(10, &[2, 7]);
        let playlist = media(&stream, &RenditionName::parse("720p").unwrap(), 3, false).unwrap();
        assert_eq!(
            playlist.body,
            "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-INDEPENDENT-SEGMENTS\n\
             #EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:14.000Z\n\
             #EXTINF:2.000,\n7.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:16.000Z\n#EXTINF:2.000,\n8.m4s\n\
             #EXT-X-PROGRAM-DATE-TIME:2026-01-01T00:00:18.000Z\n#EXTINF:2.000,\n9.m4s\n\
             #EXT-X-RENDITION-REPORT:URI=\"../360p/index.m3u8\",LAST-MSN=9\n\
             #EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=9\n"
        );
        assert_eq!(playlist.newest_end_ms, 1_767_225_600_000 + 20_000);
        assert_eq!((playlist.last_msn, playlist.complete), (9, false));
    }

    #[test]
    fn complete_media_playlist_lists_everything_and_ends() {
        let mut stream = stream(4, &[]);
        stream.apply_status(StreamStatus::StreamComplete, 4);
        let playlist = media(&stream, &RenditionName::parse("audio").unwrap(), 3, false).unwrap();
        let body = playlist.body;
        assert!(body.contains("#EXT-X-MEDIA-SEQUENCE:0\n"), "{body}");
        assert!(body.contains("#EXT-X-PLAYLIST-TYPE:VOD\n"), "{body}");
        assert!(body.ends_with("3.m4s\n#EXT-X-ENDLIST\n"), "{body}");
        assert!(!body.contains("SERVER-CONTROL") && !body.contains("RENDITION-REPORT"));
        assert_eq!(body.matches("#EXTINF:").count(), 4);
        assert!(playlist.complete);
    }

    #[test]
    fn program_date_time_is_rfc3339_utc_with_milliseconds() {
        assert_eq!(program_date_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            program_date_time(1_767_225_600_123),
            "2026-01-01T00:00:00.123Z"
        );
        assert_eq!(program_date_time(i64::MAX), "1970-01-01T00:00:00.000Z");
    }
}
