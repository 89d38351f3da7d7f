//! A viewer that behaves like an HLS player at the live edge: it joins three segments behind
//! live (as hls.js does), downloads every new segment in order as the media playlist lists it,
//! and plays them back to back in real time. It notes every stall: the moments its buffer ran
//! dry before the next segment had arrived.

use std::time::Duration;

use tokio::time::Instant;

use crate::listed_segments;

/// Segments behind the live edge a player starts at (hls.js `liveSyncDurationCount`).
const JOIN_BEHIND: usize = 3;
/// How often the media playlist is reloaded (half a 2 s target duration, as players do).
const RELOAD_EVERY: Duration = Duration::from_millis(1_000);

/// When a player's buffer runs dry, fed one segment at a time.
#[derive(Debug, Default)]
pub struct StallMeter {
    /// When the buffered media runs out, once playback has started.
    runs_dry_at: Option<Instant>,
    stalls: Vec<Duration>,
}

impl StallMeter {
    /// A segment of `duration` seconds arrived at `at`; playback starts with the first one.
    pub fn arrived(&mut self, at: Instant, duration: f64) {
        let duration = Duration::from_secs_f64(duration);
        self.runs_dry_at = Some(match self.runs_dry_at {
            Some(dry) if at > dry => {
                self.stalls.push(at - dry);
                at + duration
            }
            Some(dry) => dry + duration,
            None => at + duration,
        });
    }

    /// Every stall, in order.
    pub fn stalls(&self) -> &[Duration] {
        &self.stalls
    }

    /// The longest stall, zero when there was none.
    pub fn longest_stall(&self) -> Duration {
        self.stalls.iter().copied().max().unwrap_or_default()
    }
}

/// What a viewer saw.
#[derive(Debug)]
pub struct Viewing {
    /// Sequence numbers of the segments it played, in order.
    pub played: Vec<u64>,
    /// Seconds of media it played.
    pub seconds: f64,
    /// Its buffer running dry.
    pub stalls: StallMeter,
    /// Whether it reached the end of the broadcast (`#EXT-X-ENDLIST`).
    pub ended: bool,
    /// Requests that failed (status and URL), which a player would retry.
    pub failures: Vec<String>,
    /// Gaps in its rendition (`EXT-X-GAP`), played from another rendition.
    pub gaps: u64,
}

impl Viewing {
    /// Checks that the viewer watched to the end without skipping or repeating a segment;
    /// returns its stalls as a cell of the fault table.
    pub fn assert_whole(&self) -> String {
        assert!(
            self.ended,
            "the live viewer did not reach the end; failed requests: {:?}",
            self.failures
        );
        assert_eq!(
            self.gaps_and_repeats(),
            (vec![], vec![]),
            "the live viewer skipped (left) or repeated (right) a segment"
        );
        let gaps = match self.gaps {
            0 => String::new(),
            gaps => format!("; {gaps} gaps played from another rendition"),
        };
        format!(
            "longest stall {:.1} s ({} stalls){gaps}",
            self.stalls.longest_stall().as_secs_f64(),
            self.stalls.stalls().len()
        )
    }

    /// Sequence numbers that are missing between the first and the last played, or repeated.
    pub fn gaps_and_repeats(&self) -> (Vec<u64>, Vec<u64>) {
        let mut missing = Vec::new();
        let mut repeated = Vec::new();
        for pair in self.played.windows(2) {
            if pair[1] <= pair[0] {
                repeated.push(pair[1]);
            } else {
                missing.extend(pair[0] + 1..pair[1]);
            }
        }
        (missing, repeated)
    }
}

/// Watches the media playlist at `url` until the broadcast ends or `for_at_most` passes.
pub async fn watch_live(url: String, for_at_most: Duration) -> Viewing {
    let client = reqwest::Client::new();
    let base = url.rsplit_once('/').map(|(base, _)| base).unwrap_or(&url);
    let until = Instant::now() + for_at_most;
    let mut viewing = Viewing {
        played: Vec::new(),
        seconds: 0.0,
        stalls: StallMeter::default(),
        ended: false,
        failures: Vec::new(),
        gaps: 0,
    };
    let mut next: Option<u64> = None;
    while Instant::now() < until && !viewing.ended {
        let reloaded = Instant::now();
        let playlist = match fetch(&client, &url).await {
            Ok(body) => String::from_utf8_lossy(&body).into_owned(),
            Err(failure) => {
                viewing.failures.push(failure);
                tokio::time::sleep(RELOAD_EVERY).await;
                continue;
            }
        };
        let listed = listed_segments(&playlist);
        let ended = playlist.contains("#EXT-X-ENDLIST");
        if next.is_none() && listed.len() < JOIN_BEHIND && !ended {
            // A player starts three segments behind live: it waits until there are three.
            tokio::time::sleep_until(reloaded + RELOAD_EVERY).await;
            continue;
        }
        let first = *next.get_or_insert_with(|| {
            let join = listed.len().saturating_sub(JOIN_BEHIND);
            listed.get(join).map_or(0, |segment| segment.seq)
        });
        for segment in listed.iter().filter(|s| s.seq >= first) {
            if segment.gap {
                // Not made (the worker was short of CPU): a player plays another rendition for
                // its time; the model counts it as played from there, and counts it.
                viewing.stalls.arrived(Instant::now(), segment.duration);
                viewing.played.push(segment.seq);
                viewing.seconds += segment.duration;
                viewing.gaps += 1;
                next = Some(segment.seq + 1);
                continue;
            }
            let segment_url = format!("{base}/{}.m4s", segment.seq);
            match fetch(&client, &segment_url).await {
                Ok(_) => {
                    viewing.stalls.arrived(Instant::now(), segment.duration);
                    viewing.played.push(segment.seq);
                    viewing.seconds += segment.duration;
                    next = Some(segment.seq + 1);
                }
                Err(failure) => {
                    viewing.failures.push(failure);
                    break;
                }
            }
        }
        viewing.ended = ended && listed.last().is_none_or(|last| next > Some(last.seq));
        tokio::time::sleep_until(reloaded + RELOAD_EVERY).await;
    }
    viewing
}

async fn fetch(client: &reqwest::Client, url: &str) -> Result<bytes::Bytes, String> {
    let response = client
        .get(url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .map_err(|error| format!("{url}: {error}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("{url}: {status}"));
    }
    response
        .bytes()
        .await
        .map_err(|error| format!("{url}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_player_stalls_only_when_the_next_segment_comes_after_its_buffer_ran_dry() {
        let start = Instant::now();
        let mut meter = StallMeter::default();
        // Three segments at once, then one every 2 s: the buffer never empties.
        for _ in 0..3 {
            meter.arrived(start, 2.0);
        }
        meter.arrived(start + Duration::from_secs(2), 2.0);
        meter.arrived(start + Duration::from_secs(4), 2.0);
        assert!(meter.stalls().is_empty());
        // 10 s of media buffered ran out at 10 s; the next segment comes at 13 s.
        meter.arrived(start + Duration::from_secs(13), 2.0);
        assert_eq!(meter.stalls(), [Duration::from_secs(3)]);
        // Playback resumed at 13 s with 2 s in hand: a segment at 14 s is in time.
        meter.arrived(start + Duration::from_secs(14), 2.0);
        assert_eq!(meter.longest_stall(), Duration::from_secs(3));
    }

    #[test]
    fn gaps_and_repeats_are_found_in_what_was_played() {
        let viewing = Viewing {
            played: vec![4, 5, 7, 7, 8],
            seconds: 10.0,
            stalls: StallMeter::default(),
            ended: true,
            failures: Vec::new(),
            gaps: 0,
        };
        assert_eq!(viewing.gaps_and_repeats(), (vec![6], vec![7]));
    }
}
