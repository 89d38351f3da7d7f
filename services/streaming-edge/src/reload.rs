//! Media playlists and partial segments for players at the live edge: blocking playlist reload
//! (`_HLS_msn`, `_HLS_part`, RFC 8216bis 6.2.5.2) and preload-hinted parts held until they are
//! durable. Every request waiting on a stream wakes on the one change that lists what it waits
//! for, they all get the playlist rendered once for it, and a part they then fetch is read
//! from the blob store once.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::Response;
use livecast_core::{Error, RenditionName, blob_keys};
use tokio::sync::watch;

use crate::http::{EdgeState, media_object, no_segments, not_available, playlist_cache_control};
use crate::index::{IndexedStream, PlaylistKey};
use crate::metrics;
use crate::objects::entity_tag;
use crate::playlist::{self, low_latency};
use crate::respond::{PLAYLIST_TYPE, Representation, respond};
use crate::timeline::StreamTimeline;

/// A media playlist; with `_HLS_msn` (and `_HLS_part`) a blocking reload, answered once the
/// playlist lists that segment (or part), within three target durations.
pub(crate) async fn media(
    state: &EdgeState,
    stream: &IndexedStream,
    rendition: &RenditionName,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, Error> {
    let directives = Directives::parse(query)?;
    let which = match directives.skip {
        true => PlaylistKey::Delta(rendition.clone()),
        false => PlaylistKey::Media(rendition.clone()),
    };
    let Some(wanted) = directives.msn else {
        // A plain reload, the common case: the memoized playlist, nothing else looked at.
        let (playlist, ()) = media_playlist(state, stream, &which, |_| ())?;
        return Ok(respond(headers, playlist));
    };
    let listed_now = |timeline: &StreamTimeline| Listed::of(timeline, rendition, state.live_window);
    // Subscribed before the first look, so no change between the two is missed.
    let mut changes = stream.changes();
    let (mut playlist, mut listed) = media_playlist(state, stream, &which, listed_now)?;
    let mut waiting = None;
    while !listed.complete && !listed.has(wanted, directives.part) {
        if wanted > listed.newest_msn() + 2 {
            return Err(Error::invalid(format!(
                "_HLS_msn={wanted} is more than two segments past the newest ({})",
                listed.newest_msn()
            )));
        }
        waiting
            .get_or_insert_with(|| Waiting::new(listed.target_duration_secs))
            .for_change(&mut changes, || {
                format!(
                    "segment {wanted} of {}/{rendition} was not listed",
                    stream.id()
                )
            })
            .await?;
        (playlist, listed) = media_playlist(state, stream, &which, listed_now)?;
    }
    if !listed.complete {
        // The answer for this segment hardly changes: a CDN may keep it while the segment is in
        // the window, and every viewer blocked on it shares one origin request.
        playlist.cache_control = format!(
            "public, max-age={}",
            listed.target_duration_secs * state.live_window as u64
        );
    }
    Ok(respond(headers, playlist))
}

/// Part `index` of segment `seq`: served once listed; the part the playlist hints at next is
/// held open until it is durable (then sent whole, as the RFC asks), anything else is 404.
pub(crate) async fn part(
    state: &EdgeState,
    stream: &IndexedStream,
    rendition: &RenditionName,
    (seq, index): (u64, u32),
    headers: &HeaderMap,
) -> Result<Response, Error> {
    let id = stream.id();
    let mut changes = stream.changes();
    let mut waiting = None;
    loop {
        let (listed, hinted, target_duration_secs) = {
            let timeline = stream.read();
            if timeline.is_gone() {
                return Err(not_available(id));
            }
            let rendition = timeline.rendition(rendition);
            let run = rendition.and_then(|r| r.parts().run(seq));
            let listed = run.is_some_and(|run| run.parts.len() > index as usize);
            // Next, or known to come: its segment is whole and announced with it.
            let hinted = !timeline.is_complete()
                && (rendition.and_then(|r| low_latency::preload_hint(r, state.live_window))
                    == Some((seq, index))
                    || run.is_some_and(|run| run.whole_in.is_some_and(|count| index < count)));
            (
                listed,
                hinted,
                rendition.map_or(1, |r| r.target_duration_secs()),
            )
        };
        if listed {
            break;
        }
        // Checked on every wake-up: a part that stops being next and is not awaited (its
        // segment came whole without it) will never come.
        if !hinted {
            return Err(Error::not_found(format!(
                "part {index} of segment {seq} of {id}/{rendition} is neither listed nor next"
            )));
        }
        waiting
            .get_or_insert_with(|| Waiting::new(target_duration_secs))
            .for_change(&mut changes, || {
                format!("part {index} of segment {seq} of {id}/{rendition} did not come")
            })
            .await?;
    }
    let key = blob_keys::media_part(id, rendition, seq, index);
    media_object(state, &key, None, headers).await
}

/// One request waiting for the stream to change, counted while it waits, for at most three
/// target durations.
struct Waiting {
    deadline: tokio::time::Instant,
    wait: Duration,
    _blocked: metrics::BlockedReload,
}

impl Waiting {
    fn new(target_duration_secs: u64) -> Self {
        let wait = Duration::from_secs(3 * target_duration_secs.max(1));
        Waiting {
            deadline: tokio::time::Instant::now() + wait,
            wait,
            _blocked: metrics::BlockedReload::start(),
        }
    }

    /// Waits for the next change; a 503 (`what` did not happen) once the time is up.
    async fn for_change(
        &self,
        changes: &mut watch::Receiver<u64>,
        what: impl FnOnce() -> String,
    ) -> Result<(), Error> {
        match tokio::time::timeout_at(self.deadline, changes.changed()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Error::unavailable(format!(
                "{} within {:?}",
                what(),
                self.wait
            ))),
        }
    }
}

/// `_HLS_msn` and `_HLS_part` of a blocking playlist reload, and `_HLS_skip` (a delta update);
/// other query parameters (cache busters) are ignored.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Directives {
    msn: Option<u64>,
    part: Option<u32>,
    skip: bool,
}

impl Directives {
    fn parse(query: Option<&str>) -> Result<Self, Error> {
        let mut directives = Directives::default();
        for pair in query.unwrap_or_default().split('&') {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let invalid =
                || Error::invalid(format!("{name} must be a whole number, not {value:?}"));
            match name {
                "_HLS_msn" => directives.msn = Some(value.parse().map_err(|_| invalid())?),
                "_HLS_part" => directives.part = Some(value.parse().map_err(|_| invalid())?),
                // v2 may also skip date ranges; the edge lists none, so both mean the same.
                "_HLS_skip" => match value {
                    "YES" | "v2" => directives.skip = true,
                    _ => {
                        return Err(Error::invalid(format!(
                            "_HLS_skip must be YES or v2, not {value:?}"
                        )));
                    }
                },
                _ => {}
            }
        }
        if directives.part.is_some() && directives.msn.is_none() {
            return Err(Error::invalid("_HLS_part needs _HLS_msn"));
        }
        Ok(directives)
    }
}

/// What a blocking reload checks of a rendered media playlist.
#[derive(Debug, Clone, Copy)]
struct Listed {
    /// The newest whole segment.
    last_msn: u64,
    /// How many parts that segment was listed in (0: made whole at once).
    last_parts: u32,
    /// The segment being made, how many of its parts are listed, and whether the last is.
    open: Option<(u64, u32, bool)>,
    complete: bool,
    target_duration_secs: u64,
}

impl Listed {
    fn of(timeline: &StreamTimeline, rendition: &RenditionName, live_window: usize) -> Self {
        let complete = timeline.is_complete();
        let rendition = timeline.rendition(rendition);
        let newest = rendition.and_then(|r| {
            if complete {
                r.newest().copied()
            } else {
                r.live_window(live_window).last().copied()
            }
        });
        let last_msn = newest.map_or(0, |s| s.seq);
        Listed {
            last_msn,
            last_parts: rendition
                .and_then(|r| r.parts().settled(last_msn))
                .map_or(0, |run| run.parts.len() as u32),
            open: rendition
                .filter(|_| newest.is_some())
                .and_then(|r| r.parts().open(last_msn + 1))
                .map(|run| (last_msn + 1, run.parts.len() as u32, run.complete())),
            complete,
            target_duration_secs: rendition.map_or(1, |r| r.target_duration_secs()),
        }
    }

    /// The newest segment the playlist lists anything of.
    fn newest_msn(&self) -> u64 {
        self.open.map_or(self.last_msn, |(seq, ..)| seq)
    }

    /// Whether segment `msn` (or its part `part`) or anything after it is listed. A part past
    /// the last of a segment made of parts is the next segment's first (RFC 8216bis 6.2.5.2):
    /// a player that asked for the part after the newest one learns of the next segment's
    /// first part in the same answer.
    fn has(&self, msn: u64, part: Option<u32>) -> bool {
        let ended = match self.open {
            Some((seq, parts, true)) if msn == seq => Some(parts),
            _ if msn == self.last_msn && self.last_parts > 0 => Some(self.last_parts),
            _ => None,
        };
        let (msn, part) = match (part, ended) {
            (Some(index), Some(parts)) if index >= parts => (msn + 1, Some(0)),
            _ => (msn, part),
        };
        if msn <= self.last_msn {
            return true;
        }
        match (part, self.open) {
            (Some(part), Some((seq, parts, _))) => msn < seq || (msn == seq && part < parts),
            _ => false,
        }
    }
}

/// The media playlist `which` names (whole or a delta update), rendered once per change of
/// the stream, and what `inspect` reads of the same timeline.
fn media_playlist<T>(
    state: &EdgeState,
    stream: &IndexedStream,
    which: &PlaylistKey,
    inspect: impl FnOnce(&StreamTimeline) -> T,
) -> Result<(Representation, T), Error> {
    let id = stream.id();
    let (PlaylistKey::Media(rendition) | PlaylistKey::Delta(rendition)) = which else {
        return Err(Error::internal(
            "a media playlist was asked for as the master",
        ));
    };
    let delta = matches!(which, PlaylistKey::Delta(_));
    stream.playlist(
        which,
        |timeline| {
            if timeline.is_gone() {
                return Err(not_available(id));
            }
            let playlist = playlist::media(timeline, rendition, state.live_window, delta)
                .ok_or_else(|| {
                    if timeline.playable().next().is_none() {
                        no_segments(id)
                    } else {
                        Error::not_found(format!("stream {id} has no rendition {rendition}"))
                    }
                })?;
            Ok(Representation {
                etag: entity_tag(playlist.body.as_bytes()),
                body: playlist.body.into(),
                content_type: PLAYLIST_TYPE,
                cache_control: playlist_cache_control(
                    playlist.complete,
                    playlist.target_duration_secs,
                ),
                last_modified_ms: Some(playlist.newest_end_ms),
            })
        },
        inspect,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_part_is_reached_once_listed_or_once_its_segment_is_whole() {
        let listed = Listed {
            last_msn: 9,
            last_parts: 4,
            open: Some((10, 2, false)),
            complete: false,
            target_duration_secs: 2,
        };
        assert!(listed.has(9, None) && listed.has(9, Some(3)));
        assert!(
            listed.has(9, Some(4)),
            "part 4 of 9 is part 0 of 10, listed"
        );
        let whole = Listed {
            open: None,
            ..listed
        };
        assert!(!whole.has(9, Some(4)), "part 0 of 10 is not listed yet");
        let ended = Listed {
            open: Some((10, 5, true)),
            ..listed
        };
        assert!(
            !ended.has(10, Some(5)),
            "past the last part of 10 is part 0 of 11"
        );
        assert!(!ended.has(11, Some(0)));
        let next = Listed {
            last_msn: 10,
            last_parts: 5,
            open: Some((11, 1, false)),
            ..listed
        };
        assert!(next.has(10, Some(5)) && next.has(11, Some(0)));
        assert!(whole.has(8, Some(9)), "an older segment is past");
        assert!(listed.has(10, Some(1)));
        assert!(!listed.has(10, Some(2)), "part 2 is the next one");
        assert!(!listed.has(10, None), "segment 10 is not whole yet");
        assert!(!listed.has(11, Some(0)));
        assert_eq!(listed.newest_msn(), 10);
    }

    #[test]
    fn directives_are_whole_numbers_and_a_part_needs_its_segment() {
        assert_eq!(
            Directives::parse(Some("_HLS_msn=10&_HLS_part=2&v=1")).unwrap(),
            Directives {
                msn: Some(10),
                part: Some(2),
                skip: false,
            }
        );
        assert!(Directives::parse(Some("_HLS_skip=YES")).unwrap().skip);
        assert!(Directives::parse(Some("_HLS_skip=maybe")).is_err());
        assert_eq!(Directives::parse(None).unwrap(), Directives::default());
        assert!(Directives::parse(Some("_HLS_part=2")).is_err());
        assert!(Directives::parse(Some("_HLS_msn=-1")).is_err());
        assert!(Directives::parse(Some("_HLS_msn=1&_HLS_part=x")).is_err());
    }
}
