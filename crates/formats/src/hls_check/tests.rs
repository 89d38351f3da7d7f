use super::*;
use proptest::{option, prelude::*};

/// A valid live LL-HLS playlist: segments 10 to 13, parts listed for 12 and 13, two parts of
/// the open segment 14, a preload hint for its third part and a rendition report.
const VALID: &str = "#EXTM3U
#EXT-X-VERSION:9
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-INDEPENDENT-SEGMENTS
#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3.0,CAN-SKIP-UNTIL=24
#EXT-X-PART-INF:PART-TARGET=1.0
#EXT-X-PROGRAM-DATE-TIME:2025-01-01T00:00:00.000Z
#EXTINF:4.0,
seg10.m4s
#EXTINF:3.96,
seg11.m4s
#EXT-X-PART:DURATION=1.0,URI=\"seg12.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.0,URI=\"seg12.1.m4s\"
#EXT-X-PART:DURATION=1.0,URI=\"seg12.2.m4s\"
#EXT-X-PART:DURATION=0.96,URI=\"seg12.3.m4s\"
#EXTINF:3.96,
seg12.m4s
#EXT-X-PART:DURATION=1.0,URI=\"seg13.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.0,URI=\"seg13.1.m4s\"
#EXT-X-PART:DURATION=1.0,URI=\"seg13.2.m4s\"
#EXT-X-PART:DURATION=0.5,URI=\"seg13.3.m4s\"
#EXTINF:3.5,
seg13.m4s
#EXT-X-PART:DURATION=1.0,URI=\"seg14.0.m4s\",INDEPENDENT=YES
#EXT-X-PART:DURATION=1.0,URI=\"seg14.1.m4s\"
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg14.2.m4s\"
#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=14,LAST-PART=1
";

const HINT: &str = "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg14.2.m4s\"\n";

/// `VALID` with `from` replaced by `to`, which must occur in it.
fn edit(from: &str, to: &str) -> String {
    assert!(
        VALID.contains(from),
        "{from:?} is not in the valid playlist"
    );
    VALID.replacen(from, to, 1)
}

fn rules(violations: &[Violation]) -> Vec<&'static str> {
    violations.iter().map(|v| v.rule).collect()
}

fn media_rules(text: &str) -> Vec<&'static str> {
    rules(&check_media(text))
}

#[test]
fn valid_ll_playlist_has_no_violation_and_parses() {
    assert_eq!(check_media(VALID), vec![]);
    let playlist = parse_media(VALID).unwrap();
    assert_eq!(
        (
            playlist.version,
            playlist.target_duration,
            playlist.media_sequence
        ),
        (9, 4, 10)
    );
    assert_eq!(playlist.part_target, Some(1.0));
    assert!(playlist.can_block_reload && !playlist.ended);
    assert_eq!(
        (playlist.part_hold_back, playlist.can_skip_until),
        (Some(3.0), Some(24.0))
    );
    let msns: Vec<u64> = playlist.segments.iter().map(|s| s.msn).collect();
    assert_eq!(msns, [10, 11, 12, 13]);
    let counts: Vec<usize> = playlist.segments.iter().map(|s| s.parts.len()).collect();
    assert_eq!(counts, [0, 0, 4, 4]);
    assert_eq!(playlist.segments[3].uri, "seg13.m4s");
    assert!(
        playlist.segments[3].parts[0].independent && !playlist.segments[3].parts[1].independent
    );
    assert_eq!(playlist.trailing_parts.len(), 2);
    assert_eq!(playlist.trailing_parts[1].uri, "seg14.1.m4s");
    assert_eq!(playlist.preload_hint.as_deref(), Some("seg14.2.m4s"));
    assert_eq!(
        playlist.rendition_reports,
        [RenditionReport {
            uri: "../audio/index.m3u8".into(),
            last_msn: Some(14),
            last_part: Some(1)
        }]
    );
    assert_eq!(playlist.skipped_segments, 0);
}

#[test]
fn plain_live_and_ended_playlists_without_parts_are_valid() {
    let live = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n\
                #EXTINF:2.002000,\nindex4.ts\n#EXTINF:1.5,\nindex5.ts\n";
    assert_eq!(check_media(live), vec![]);
    assert_eq!(check_media(&format!("{live}#EXT-X-ENDLIST\n")), vec![]);
    assert_eq!(
        check_media("#EXTM3U\r\n#EXT-X-TARGETDURATION:2\r\n#EXTINF:2,\r\na.ts\r\n"),
        vec![]
    );
}

#[test]
fn missing_header_is_caught() {
    let text = edit("#EXTM3U\n", "");
    assert_eq!(media_rules(&text), ["extm3u"]);
    assert_eq!(parse_media(&text).unwrap_err().rule, "extm3u");
    assert_eq!(media_rules(&edit("#EXTM3U\n", "\n#EXTM3U\n")), ["extm3u"]);
}

#[test]
fn target_duration_must_be_present_and_bound_every_segment() {
    let missing = edit("#EXT-X-TARGETDURATION:4\n", "");
    assert_eq!(media_rules(&missing), ["target-duration"]);
    assert_eq!(parse_media(&missing).unwrap_err().rule, "target-duration");
    let long = edit("#EXTINF:4.0,", "#EXTINF:4.5,");
    assert_eq!(media_rules(&long), ["segment-duration"]);
    assert!(
        check_media(&long)[0].detail.contains("segment 10"),
        "{:?}",
        check_media(&long)
    );
    assert_eq!(check_media(&edit("#EXTINF:4.0,", "#EXTINF:4.49,")), vec![]);
}

#[test]
fn part_inf_goes_with_parts() {
    assert_eq!(
        media_rules(&edit("#EXT-X-PART-INF:PART-TARGET=1.0\n", "")),
        ["part-inf"]
    );
    let text = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-SERVER-CONTROL:PART-HOLD-BACK=1.5\n\
                #EXT-X-PART-INF:PART-TARGET=0.5\n#EXTINF:2,\na.ts\n#EXT-X-ENDLIST\n";
    assert_eq!(media_rules(text), ["part-inf"]);
    let zero = edit("PART-TARGET=1.0", "PART-TARGET=0");
    assert_eq!(media_rules(&zero), ["part-inf"]);
}

#[test]
fn parts_longer_than_part_target_are_caught() {
    let text = edit(
        "DURATION=1.0,URI=\"seg14.1.m4s\"",
        "DURATION=1.2,URI=\"seg14.1.m4s\"",
    );
    assert_eq!(media_rules(&text), ["part-duration"]);
    assert!(
        check_media(&text)[0]
            .detail
            .contains("part 1 of segment 14")
    );
    let slack = edit(
        "DURATION=1.0,URI=\"seg14.1.m4s\"",
        "DURATION=1.0005,URI=\"seg14.1.m4s\"",
    );
    assert_eq!(check_media(&slack), vec![]);
}

#[test]
fn short_parts_are_caught_unless_last_or_independent() {
    let short = edit(
        "DURATION=1.0,URI=\"seg13.1.m4s\"",
        "DURATION=0.8,URI=\"seg13.1.m4s\"",
    )
    .replacen(
        "DURATION=0.5,URI=\"seg13.3",
        "DURATION=0.7,URI=\"seg13.3",
        1,
    );
    assert_eq!(media_rules(&short), ["part-duration-floor"]);
    // An INDEPENDENT=YES part may be short (§4.4.4.9), and so may the open parent's last part.
    let independent = edit(
        "DURATION=1.0,URI=\"seg12.0.m4s\"",
        "DURATION=0.5,URI=\"seg12.0.m4s\"",
    )
    .replacen("#EXTINF:3.96,\nseg12", "#EXTINF:3.46,\nseg12", 1)
    .replacen(
        "DURATION=1.0,URI=\"seg14.1",
        "DURATION=0.2,URI=\"seg14.1",
        1,
    );
    assert_eq!(check_media(&independent), vec![]);
}

#[test]
fn parts_must_add_up_to_their_segment() {
    assert_eq!(
        media_rules(&edit("#EXTINF:3.5,", "#EXTINF:3.6,")),
        ["parts-sum"]
    );
    assert_eq!(
        check_media(&edit("#EXTINF:3.5,", "#EXTINF:3.5015,")),
        vec![]
    );
}

#[test]
fn part_hold_back_is_required_and_at_least_three_part_targets() {
    assert_eq!(
        media_rules(&edit("PART-HOLD-BACK=3.0", "PART-HOLD-BACK=2.0")),
        ["part-hold-back"]
    );
    assert_eq!(
        media_rules(&edit("PART-HOLD-BACK=3.0,", "")),
        ["part-hold-back"]
    );
}

#[test]
fn can_skip_until_is_at_least_six_target_durations() {
    let text = edit("CAN-SKIP-UNTIL=24", "CAN-SKIP-UNTIL=23.5");
    assert_eq!(media_rules(&text), ["can-skip-until"]);
}

#[test]
fn delta_updates_number_segments_after_the_skip() {
    let delta = edit(
        "#EXTINF:4.0,\nseg10.m4s\n",
        "#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n",
    );
    assert_eq!(check_media(&delta), vec![]);
    let playlist = parse_media(&delta).unwrap();
    assert_eq!(playlist.skipped_segments, 1);
    assert_eq!(playlist.segments[0].msn, 11);
    assert_eq!(playlist.segments[0].uri, "seg11.m4s");
}

#[test]
fn skip_needs_version_nine() {
    let delta = edit(
        "#EXTINF:4.0,\nseg10.m4s\n",
        "#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n",
    );
    let old = delta.replacen("#EXT-X-VERSION:9", "#EXT-X-VERSION:6", 1);
    assert_eq!(media_rules(&old), ["skip-version"]);
}

#[test]
fn skip_appears_once_and_before_segments() {
    let twice = edit(
        "#EXTINF:4.0,\nseg10.m4s\n",
        "#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-SKIP:SKIPPED-SEGMENTS=0\n",
    );
    assert_eq!(media_rules(&twice), ["skip-placement"]);
    let late = edit("seg10.m4s\n", "seg10.m4s\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n");
    assert_eq!(media_rules(&late), ["skip-placement"]);
}

#[test]
fn live_playlists_with_parts_need_exactly_one_part_hint() {
    assert_eq!(media_rules(&edit(HINT, "")), ["preload-hint"]);
    let two = edit(
        HINT,
        &format!("{HINT}{}", HINT.replace("seg14.2", "seg14.3")),
    );
    assert_eq!(media_rules(&two), ["preload-hint"]);
    let map_hint = edit(
        HINT,
        &format!("{HINT}#EXT-X-PRELOAD-HINT:TYPE=MAP,URI=\"init.mp4\"\n"),
    );
    assert_eq!(check_media(&map_hint), vec![]);
}

#[test]
fn ended_playlists_have_no_preload_hint() {
    let ended = format!("{VALID}#EXT-X-ENDLIST\n");
    assert_eq!(media_rules(&ended), ["preload-hint-with-endlist"]);
    assert_eq!(check_media(&ended.replacen(HINT, "", 1)), vec![]);
}

#[test]
fn preload_hint_names_a_part_not_yet_listed() {
    let listed = edit(HINT, &HINT.replace("seg14.2", "seg14.1"));
    assert_eq!(media_rules(&listed), ["preload-hint-uri"]);
    // Byte-range parts share a resource: the hint must start past the listed ranges.
    let ranged = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:4\n\
        #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=3\n#EXT-X-PART-INF:PART-TARGET=1\n\
        #EXT-X-PART:DURATION=1,URI=\"s0.mp4\",BYTERANGE=\"1000@0\"\n\
        #EXT-X-PART:DURATION=1,URI=\"s0.mp4\",BYTERANGE=\"800\"\n\
        #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"s0.mp4\",BYTERANGE-START=OFFSET\n\
        #EXT-X-RENDITION-REPORT:URI=\"a.m3u8\",LAST-MSN=0,LAST-PART=1\n";
    assert_eq!(check_media(&ranged.replace("OFFSET", "1800")), vec![]);
    assert_eq!(
        media_rules(&ranged.replace("OFFSET", "1000")),
        ["preload-hint-uri"]
    );
}

#[test]
fn parts_older_than_three_target_durations_are_caught() {
    let parts = "#EXT-X-PART:DURATION=1.0,URI=\"seg11.0.m4s\",INDEPENDENT=YES\n\
                 #EXT-X-PART:DURATION=1.0,URI=\"seg11.1.m4s\"\n\
                 #EXT-X-PART:DURATION=1.0,URI=\"seg11.2.m4s\"\n\
                 #EXT-X-PART:DURATION=0.96,URI=\"seg11.3.m4s\"\n";
    let stale = edit(
        "#EXTINF:3.96,\nseg11",
        &format!("{parts}#EXTINF:3.96,\nseg11"),
    );
    assert_eq!(media_rules(&stale), ["stale-parts"]);
    assert!(check_media(&stale)[0].detail.contains("segment 11"));
}

#[test]
fn live_playlists_with_parts_report_renditions() {
    let report = "#EXT-X-RENDITION-REPORT:URI=\"../audio/index.m3u8\",LAST-MSN=14,LAST-PART=1\n";
    assert_eq!(media_rules(&edit(report, "")), ["rendition-report"]);
    assert_eq!(media_rules(&edit(",LAST-PART=1", "")), ["rendition-report"]);
    assert_eq!(media_rules(&edit("LAST-MSN=14,", "")), ["rendition-report"]);
}

#[test]
fn independent_segments_need_independent_first_parts() {
    let text = edit("URI=\"seg13.0.m4s\",INDEPENDENT=YES", "URI=\"seg13.0.m4s\"");
    assert_eq!(media_rules(&text), ["independent-parts"]);
    assert!(check_media(&text)[0].detail.contains("segment 13"));
    assert_eq!(
        check_media(&edit("#EXT-X-INDEPENDENT-SEGMENTS\n", "")),
        vec![]
    );
}

#[test]
fn malformed_values_are_syntax_violations() {
    for (from, to) in [
        (
            "DURATION=1.0,URI=\"seg13.1.m4s\"",
            "DURATION=abc,URI=\"seg13.1.m4s\"",
        ),
        (",URI=\"seg13.1.m4s\"", ""),
        ("#EXTINF:4.0,", "#EXTINF:-4,"),
        ("#EXT-X-TARGETDURATION:4", "#EXT-X-TARGETDURATION:4.5"),
        ("LAST-MSN=14", "LAST-MSN=x"),
        ("#EXTINF:4.0,\n", ""),
    ] {
        let violations = check_media(&edit(from, to));
        assert_eq!(rules(&violations), ["syntax"], "{from:?} -> {to:?}");
        assert!(violations[0].detail.starts_with("line "), "{violations:?}");
    }
    assert_eq!(
        media_rules("#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\n"),
        ["syntax"]
    );
    let shown = check_media("#EXTM3U\n#EXTINF:nan,\na.ts\n")[0].to_string();
    assert!(shown.starts_with("syntax: line 2"), "{shown}");
}

/// `VALID` one part later: part 2 of segment 14 listed, part 3 hinted.
fn one_part_later() -> String {
    edit(
        HINT,
        "#EXT-X-PART:DURATION=1.0,URI=\"seg14.2.m4s\"\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg14.3.m4s\"\n",
    )
}

#[test]
fn reloads_that_move_forward_are_valid() {
    let later = one_part_later();
    assert_eq!(check_media(&later), vec![]);
    assert_eq!(check_reload(VALID, &later), vec![]);
    assert_eq!(check_reload(VALID, VALID), vec![]);
    // Segment 14 completes, segment 10 slides out of the window.
    let slid = edit("#EXT-X-MEDIA-SEQUENCE:10", "#EXT-X-MEDIA-SEQUENCE:11")
        .replacen("#EXTINF:4.0,\nseg10.m4s\n", "", 1)
        .replacen(
            HINT,
            "#EXT-X-PART:DURATION=1.0,URI=\"seg14.2.m4s\"\n#EXT-X-PART:DURATION=0.96,URI=\"seg14.3.m4s\"\n\
             #EXTINF:3.96,\nseg14.m4s\n#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg15.0.m4s\"\n",
            1,
        );
    assert_eq!(check_media(&slid), vec![]);
    assert_eq!(check_reload(&later, &slid), vec![]);
}

#[test]
fn reloads_going_backwards_are_caught() {
    assert_eq!(
        rules(&check_reload(&one_part_later(), VALID)),
        ["reload-live-edge"]
    );
    let ahead = edit("#EXT-X-MEDIA-SEQUENCE:10", "#EXT-X-MEDIA-SEQUENCE:11");
    let found = rules(&check_reload(&ahead, VALID));
    assert!(found.contains(&"reload-media-sequence"), "{found:?}");
    assert!(found.contains(&"reload-live-edge"), "{found:?}");
}

#[test]
fn reloads_keep_listed_segments_unchanged() {
    let renamed = edit("seg11.m4s", "other11.m4s");
    let found = check_reload(VALID, &renamed);
    assert_eq!(rules(&found), ["reload-segment-changed"]);
    assert!(found[0].detail.contains("segment 11"), "{found:?}");
    let shorter = edit("#EXTINF:3.96,\nseg11", "#EXTINF:3.9,\nseg11");
    assert_eq!(
        rules(&check_reload(VALID, &shorter)),
        ["reload-segment-changed"]
    );
}

#[test]
fn reloads_keep_endlist_and_report_unreadable_playlists() {
    let ended = format!("{VALID}#EXT-X-ENDLIST\n");
    assert_eq!(rules(&check_reload(&ended, VALID)), ["reload-ended"]);
    assert_eq!(check_reload(VALID, &ended), vec![]);
    let found = check_reload("garbage", VALID);
    assert_eq!(rules(&found), ["extm3u"]);
    assert!(
        found[0].detail.starts_with("previous playlist"),
        "{found:?}"
    );
    let found = check_reload(VALID, &edit("#EXTINF:3.5,", "#EXTINF:x,"));
    assert!(found[0].detail.starts_with("next playlist") && found[0].rule == "syntax");
}

#[test]
fn blocking_answers_contain_the_requested_segment_or_part() {
    for (msn, part) in [
        (5, None),
        (13, None),
        (13, Some(0)),
        (13, Some(3)),
        (14, Some(0)),
        (14, Some(1)),
    ] {
        assert_eq!(
            check_blocking_answer(VALID, msn, part),
            vec![],
            "{msn} {part:?}"
        );
    }
    for (msn, part) in [(14, None), (14, Some(2)), (15, Some(0)), (15, None)] {
        let found = check_blocking_answer(VALID, msn, part);
        assert_eq!(rules(&found), ["blocking-answer"], "{msn} {part:?}");
        assert!(
            found[0].detail.contains("part 1 of segment 14"),
            "{found:?}"
        );
    }
}

#[test]
fn a_part_past_the_last_of_a_completed_segment_means_the_next_segments_first() {
    // Segment 13 has parts 0-3: part 4 of 13 stands for part 0 of 14 (§6.2.5.2).
    assert_eq!(check_blocking_answer(VALID, 13, Some(4)), vec![]);
    let no_open_parts = edit(
        "#EXT-X-PART:DURATION=1.0,URI=\"seg14.0.m4s\",INDEPENDENT=YES\n",
        "",
    )
    .replacen("#EXT-X-PART:DURATION=1.0,URI=\"seg14.1.m4s\"\n", "", 1);
    assert_eq!(check_blocking_answer(&no_open_parts, 13, Some(3)), vec![]);
    let found = check_blocking_answer(&no_open_parts, 13, Some(4));
    assert_eq!(rules(&found), ["blocking-answer"]);
    assert!(
        found[0].detail.contains("completed segment 13"),
        "{found:?}"
    );
}

#[test]
fn blocking_answers_of_ended_or_unblockable_playlists() {
    let ended = format!("{VALID}#EXT-X-ENDLIST\n");
    assert_eq!(check_blocking_answer(&ended, 20, Some(2)), vec![]);
    let unblockable = edit("CAN-BLOCK-RELOAD=YES,", "");
    assert_eq!(
        rules(&check_blocking_answer(&unblockable, 13, None)),
        ["blocking-support"]
    );
    assert_eq!(
        rules(&check_blocking_answer("#EXTM3U\n", 1, None)),
        ["target-duration"]
    );
}

proptest! {
    #[test]
    fn checking_never_panics(text in "\\PC{0,300}", msn in 0u64..20, part in option::of(0u64..6)) {
        let text = format!("#EXTM3U\n#EXT-X-TARGETDURATION:4\n{text}");
        let _ = check_media(&text);
        let _ = check_reload(VALID, &text);
        let _ = check_blocking_answer(&text, msn, part);
    }

    #[test]
    fn mangled_valid_lines_never_panic(cut in 0usize..1200, extra in "[ -~\n]{0,40}") {
        let cut = cut.min(VALID.len());
        let text = format!("{}{extra}{}", &VALID[..cut], &VALID[cut..]);
        let _ = check_media(&text);
        let _ = check_reload(&text, VALID);
        let _ = check_blocking_answer(&text, 14, Some(1));
    }
}
