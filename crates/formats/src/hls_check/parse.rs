//! Reading a media playlist into what the rules of [`super`] look at.

use std::fmt;

use super::{MediaPlaylist, Part, RenditionReport, Segment, Violation, first_msn};

/// A `TYPE=PART` preload hint.
pub(super) struct Hint {
    pub(super) uri: String,
    pub(super) byterange_start: Option<u64>,
}

/// A playlist as read, with the facts the rules need beyond [`MediaPlaylist`].
pub(super) struct Scan {
    pub(super) playlist: MediaPlaylist,
    pub(super) has_header: bool,
    pub(super) has_target_duration: bool,
    pub(super) independent_segments: bool,
    pub(super) skip_tags: usize,
    pub(super) skip_after_media: bool,
    pub(super) part_hints: Vec<Hint>,
    pub(super) hint_count: usize,
}

/// The attributes of a tag, `NAME=value` separated by commas, quoted strings unquoted.
struct Attributes<'a> {
    line: usize,
    tag: &'a str,
    pairs: Vec<(&'a str, &'a str)>,
}

impl<'a> Attributes<'a> {
    fn read(line: usize, tag: &'a str, list: &'a str) -> Self {
        let (mut pairs, mut rest) = (Vec::new(), list.trim());
        while let Some((name, after)) = rest.split_once('=') {
            let (value, next) = match after.strip_prefix('"') {
                Some(quoted) => match quoted.split_once('"') {
                    Some((value, next)) => (value, next.trim_start().trim_start_matches(',')),
                    None => (quoted, ""),
                },
                None => after.split_once(',').unwrap_or((after, "")),
            };
            pairs.push((name.trim(), value.trim()));
            rest = next.trim_start();
        }
        Self { line, tag, pairs }
    }

    fn text(&self, name: &str) -> Option<&'a str> {
        self.pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    fn required(&self, name: &str) -> Result<&'a str, Violation> {
        let missing = || syntax(self.line, format!("{} lacks {name}", self.tag));
        self.text(name).ok_or_else(missing)
    }

    fn yes(&self, name: &str) -> bool {
        self.text(name) == Some("YES")
    }

    fn decimal(&self, name: &str) -> Result<Option<f64>, Violation> {
        self.text(name)
            .map(|v| decimal(self.line, name, v))
            .transpose()
    }

    fn integer(&self, name: &str) -> Result<Option<u64>, Violation> {
        self.text(name)
            .map(|v| integer(self.line, name, v))
            .transpose()
    }
}

pub(super) fn syntax(line: usize, what: impl fmt::Display) -> Violation {
    Violation::new("syntax", format!("line {line}: {what}"))
}

pub(super) fn decimal(line: usize, what: &str, value: &str) -> Result<f64, Violation> {
    let number = value.trim().parse::<f64>().ok();
    let bad = || syntax(line, format!("{what} {value:?} is not a number ≥ 0"));
    let valid = number.filter(|v| v.is_finite() && *v >= 0.0);
    valid.ok_or_else(bad)
}

pub(super) fn integer(line: usize, what: &str, value: &str) -> Result<u64, Violation> {
    let bad = |_| syntax(line, format!("{what} {value:?} is not a decimal integer"));
    value.trim().parse().map_err(bad)
}

pub(super) fn starts_with_header(text: &str) -> bool {
    text.lines().next().map(str::trim_end) == Some("#EXTM3U")
}

pub(super) fn no_header() -> Violation {
    Violation::new("extm3u", "the first line is not #EXTM3U")
}

pub(super) fn no_target_duration() -> Violation {
    Violation::new("target-duration", "no #EXT-X-TARGETDURATION")
}

/// Reads the playlist line by line; only malformed values of known tags are errors.
pub(super) fn scan(text: &str) -> Result<Scan, Violation> {
    let mut playlist = MediaPlaylist {
        version: 1,
        ..MediaPlaylist::default()
    };
    let has_header = starts_with_header(text);
    let (mut has_target_duration, mut independent_segments) = (false, false);
    let (mut skip_tags, mut skip_after_media, mut media_seen) = (0, false, false);
    let (mut part_hints, mut hint_count) = (Vec::new(), 0);
    let mut pending_duration: Option<f64> = None;
    for (index, raw) in text.lines().enumerate().skip(usize::from(has_header)) {
        let (line, at) = (raw.trim(), index + 1);
        if line.is_empty() {
            continue;
        } else if !line.starts_with('#') {
            let orphan = || syntax(at, format!("URI {line:?} without a preceding #EXTINF"));
            let duration = pending_duration.take().ok_or_else(orphan)?;
            let parts = std::mem::take(&mut playlist.trailing_parts);
            let (msn, uri) = (0, line.to_string());
            playlist.segments.push(Segment {
                msn,
                duration,
                uri,
                parts,
            });
            media_seen = true;
            continue;
        }
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        let list = Attributes::read(at, tag, value);
        match tag {
            "#EXT-X-VERSION" => {
                let bad = |_| syntax(at, format!("EXT-X-VERSION {value:?} is not a version"));
                playlist.version = value.trim().parse().map_err(bad)?;
            }
            "#EXT-X-TARGETDURATION" => {
                playlist.target_duration = integer(at, "EXT-X-TARGETDURATION", value)?;
                has_target_duration = true;
            }
            "#EXT-X-MEDIA-SEQUENCE" => {
                playlist.media_sequence = integer(at, "EXT-X-MEDIA-SEQUENCE", value)?;
            }
            "#EXT-X-INDEPENDENT-SEGMENTS" => independent_segments = true,
            "#EXT-X-ENDLIST" => playlist.ended = true,
            "#EXTINF" => {
                let seconds = value.split(',').next().unwrap_or_default();
                pending_duration = Some(decimal(at, "EXTINF duration", seconds)?);
                media_seen = true;
            }
            "#EXT-X-PART-INF" => {
                let target = list.required("PART-TARGET")?;
                playlist.part_target = Some(decimal(at, "PART-TARGET", target)?);
            }
            "#EXT-X-SERVER-CONTROL" => {
                playlist.can_block_reload = list.yes("CAN-BLOCK-RELOAD");
                playlist.part_hold_back = list.decimal("PART-HOLD-BACK")?;
                playlist.can_skip_until = list.decimal("CAN-SKIP-UNTIL")?;
            }
            "#EXT-X-PART" => {
                playlist.trailing_parts.push(Part {
                    duration: decimal(at, "DURATION", list.required("DURATION")?)?,
                    uri: list.required("URI")?.to_string(),
                    independent: list.yes("INDEPENDENT"),
                    byterange: list.text("BYTERANGE").map(str::to_string),
                });
                media_seen = true;
            }
            "#EXT-X-PRELOAD-HINT" => {
                hint_count += 1;
                if list.required("TYPE")? == "PART" {
                    let uri = list.required("URI")?.to_string();
                    let byterange_start = list.integer("BYTERANGE-START")?;
                    playlist.preload_hint.get_or_insert_with(|| uri.clone());
                    part_hints.push(Hint {
                        uri,
                        byterange_start,
                    });
                }
            }
            "#EXT-X-RENDITION-REPORT" => playlist.rendition_reports.push(RenditionReport {
                uri: list.required("URI")?.to_string(),
                last_msn: list.integer("LAST-MSN")?,
                last_part: list.integer("LAST-PART")?,
            }),
            "#EXT-X-SKIP" => {
                let skipped = list.required("SKIPPED-SEGMENTS")?;
                let skipped = integer(at, "SKIPPED-SEGMENTS", skipped)?;
                playlist.skipped_segments = playlist.skipped_segments.saturating_add(skipped);
                skip_tags += 1;
                skip_after_media |= media_seen;
            }
            _ => {}
        }
    }
    if pending_duration.is_some() {
        return Err(syntax(text.lines().count(), "the last #EXTINF has no URI"));
    }
    let first = first_msn(&playlist);
    for (index, segment) in playlist.segments.iter_mut().enumerate() {
        segment.msn = first.saturating_add(index as u64);
    }
    Ok(Scan {
        playlist,
        has_header,
        has_target_duration,
        independent_segments,
        skip_tags,
        skip_after_media,
        part_hints,
        hint_count,
    })
}
