//! The bitrate ladder and how it is fitted to a source picture.

use std::collections::HashSet;

use crate::MediaError;

/// One video rung of the ladder, named by the short side of its picture ("720p").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rung {
    /// Rendition name, also used in segment names: "720p".
    pub name: String,
    /// Lines of the short side of the picture (the height of a landscape picture).
    pub height: u32,
    /// Target video bitrate in bits/s; also the VBV max rate (buffer: twice that).
    pub video_bitrate: u32,
    /// Frames above this rate are dropped; `None` keeps the source rate.
    pub max_fps: Option<u32>,
}

impl Rung {
    /// A rung without a frame-rate cap.
    pub fn new(name: impl Into<String>, height: u32, video_bitrate: u32) -> Self {
        Self {
            name: name.into(),
            height,
            video_bitrate,
            max_fps: None,
        }
    }
}

/// The renditions a stream is offered in, plus the audio bitrate shared by all of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ladder {
    /// Video rungs; order does not matter.
    pub rungs: Vec<Rung>,
    /// AAC bitrate in bits/s when audio has to be encoded (copied audio keeps its own).
    pub audio_bitrate: u32,
}

impl Default for Ladder {
    /// 1080p 5 Mb/s, 720p 2.8 Mb/s, 480p 1.4 Mb/s, 360p 800 kb/s, 240p 400 kb/s, AAC 128 kb/s.
    fn default() -> Self {
        Self {
            rungs: vec![
                Rung::new("1080p", 1080, 5_000_000),
                Rung::new("720p", 720, 2_800_000),
                Rung::new("480p", 480, 1_400_000),
                Rung::new("360p", 360, 800_000),
                Rung::new("240p", 240, 400_000),
            ],
            audio_bitrate: 128_000,
        }
    }
}

/// The name of the audio-only rendition.
pub const AUDIO_RENDITION: &str = "audio";

impl Ladder {
    /// Checks the ladder once, at start-up.
    pub fn validate(&self) -> Result<(), MediaError> {
        if self.rungs.is_empty() {
            return Err(MediaError::Config("the ladder has no rungs".into()));
        }
        if self.audio_bitrate < 8_000 {
            return Err(MediaError::Config("audio bitrate below 8 kb/s".into()));
        }
        let mut names = HashSet::new();
        for rung in &self.rungs {
            let name_ok = !rung.name.is_empty()
                && rung
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !name_ok || rung.name == AUDIO_RENDITION {
                return Err(MediaError::Config(format!(
                    "rung name {:?} must be [A-Za-z0-9_-]+ and not {AUDIO_RENDITION:?}",
                    rung.name
                )));
            }
            if !names.insert(rung.name.as_str()) {
                return Err(MediaError::Config(format!(
                    "duplicate rung {:?}",
                    rung.name
                )));
            }
            if rung.height < 16 || rung.height > 4320 {
                return Err(MediaError::Config(format!(
                    "rung {:?}: height out of range",
                    rung.name
                )));
            }
            if rung.video_bitrate < 50_000 {
                return Err(MediaError::Config(format!(
                    "rung {:?}: bitrate below 50 kb/s",
                    rung.name
                )));
            }
            if rung.max_fps == Some(0) {
                return Err(MediaError::Config(format!(
                    "rung {:?}: max_fps is 0",
                    rung.name
                )));
            }
        }
        Ok(())
    }
}

/// A rung fitted to one source: the exact picture size to encode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct VideoRendition {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate: u32,
    pub max_fps: Option<u32>,
}

/// Fits the ladder to a source of `display_width` x `display_height` square pixels.
///
/// Rungs bigger than the source are left out (never upscale). A source smaller than every rung
/// gets one rendition at its own size with the smallest rung's bitrate. Sizes keep the aspect
/// ratio and are even, as 4:2:0 chroma needs. Returned from the largest to the smallest.
pub(crate) fn fit(ladder: &Ladder, display_width: u32, display_height: u32) -> Vec<VideoRendition> {
    let (src_w, src_h) = (display_width.max(2), display_height.max(2));
    let short = src_w.min(src_h);
    let mut rungs: Vec<&Rung> = ladder.rungs.iter().collect();
    rungs.sort_by(|a, b| b.height.cmp(&a.height).then(a.name.cmp(&b.name)));

    let size_for = |short_side: u32| -> (u32, u32) {
        let long_side =
            even(f64::from(short_side) * f64::from(src_w.max(src_h)) / f64::from(short));
        if src_w >= src_h {
            (long_side, short_side)
        } else {
            (short_side, long_side)
        }
    };

    let fitted: Vec<VideoRendition> = rungs
        .iter()
        .filter(|rung| rung.height <= short)
        .map(|rung| {
            let (width, height) = size_for(even(f64::from(rung.height)));
            VideoRendition {
                name: rung.name.clone(),
                width,
                height,
                bitrate: rung.video_bitrate,
                max_fps: rung.max_fps,
            }
        })
        .collect();
    if !fitted.is_empty() {
        return fitted;
    }

    let smallest = rungs.last().expect("a validated ladder has rungs");
    let short_side = (short & !1).max(2);
    let (width, height) = size_for(short_side);
    vec![VideoRendition {
        name: format!("{short_side}p"),
        width,
        height,
        bitrate: smallest.video_bitrate,
        max_fps: smallest.max_fps,
    }]
}

/// Rounds to the nearest even number, at least 2.
fn even(value: f64) -> u32 {
    let rounded = (value / 2.0).round() * 2.0;
    if rounded < 2.0 { 2 } else { rounded as u32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(renditions: &[VideoRendition]) -> Vec<(&str, u32, u32)> {
        renditions
            .iter()
            .map(|r| (r.name.as_str(), r.width, r.height))
            .collect()
    }

    #[test]
    fn a_720p_source_never_gets_1080p() {
        let fitted = fit(&Ladder::default(), 1280, 720);
        assert_eq!(
            sizes(&fitted),
            vec![
                ("720p", 1280, 720),
                ("480p", 854, 480),
                ("360p", 640, 360),
                ("240p", 426, 240)
            ]
        );
    }

    #[test]
    fn a_1080p_source_gets_every_rung() {
        assert_eq!(fit(&Ladder::default(), 1920, 1080).len(), 5);
    }

    #[test]
    fn portrait_sources_use_the_short_side() {
        let fitted = fit(&Ladder::default(), 720, 1280);
        assert_eq!(fitted[0].name, "720p");
        assert_eq!((fitted[0].width, fitted[0].height), (720, 1280));
        assert_eq!((fitted[1].width, fitted[1].height), (480, 854));
    }

    #[test]
    fn a_tiny_source_gets_one_rendition_at_its_own_size() {
        let fitted = fit(&Ladder::default(), 321, 181);
        assert_eq!(sizes(&fitted), vec![("180p", 320, 180)]);
        assert_eq!(fitted[0].bitrate, 400_000);
    }

    #[test]
    fn sizes_are_even() {
        for (w, h) in [(1280, 720), (1366, 768), (1000, 563), (640, 481), (3, 3)] {
            for r in fit(&Ladder::default(), w, h) {
                assert_eq!((r.width % 2, r.height % 2), (0, 0), "{w}x{h} -> {r:?}");
            }
        }
    }

    #[test]
    fn validation_rejects_bad_ladders() {
        assert!(Ladder::default().validate().is_ok());
        let mut ladder = Ladder::default();
        ladder.rungs.push(Rung::new("720p", 720, 1_000_000));
        assert!(ladder.validate().is_err());
        let ladder = Ladder {
            rungs: vec![Rung::new("audio", 720, 1_000_000)],
            audio_bitrate: 128_000,
        };
        assert!(ladder.validate().is_err());
        let ladder = Ladder {
            rungs: vec![],
            audio_bitrate: 128_000,
        };
        assert!(ladder.validate().is_err());
    }
}
