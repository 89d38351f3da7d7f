//! What viewers get when the source gives no picture: the stream's last picture held still,
//! in every rendition of the ladder, with the source's audio when it still flows (video
//! stalled) or silence (input stopped, chunk undecodable). Encoded with the same settings as
//! real chunks, so the init segments stay the same and players switch in and out without a
//! discontinuity.

use ffmpeg_next::{Rational, frame};

use crate::{
    Content, EncodedRendition, MediaError, StreamTranscoder,
    encode_video::{RenditionEncoder, VIDEO_TIME_BASE},
};

/// The newest decoded picture of a stream and the rate it came at.
pub(crate) struct Still {
    /// Its pts is that of the newest picture, in [`VIDEO_TIME_BASE`].
    pub picture: frame::Video,
    pub rate: Rational,
}

impl Still {
    /// One frame after the picture, in [`VIDEO_TIME_BASE`].
    pub fn next_pts(&self) -> i64 {
        self.picture
            .pts()
            .map_or(0, |pts| pts + self.frame_ticks().round() as i64)
    }

    fn frame_ticks(&self) -> f64 {
        f64::from(VIDEO_TIME_BASE.denominator()) / f64::from(self.rate)
    }
}

/// Feeds the still picture to `encoders` at every frame time from `start` until `end` (in
/// [`VIDEO_TIME_BASE`]; at least one frame); returns how many frames that was.
pub(crate) fn hold(
    encoders: &mut [RenditionEncoder],
    still: &mut Still,
    start: i64,
    end: i64,
) -> Result<i64, MediaError> {
    let ticks = still.frame_ticks();
    let frames = ((end - start) as f64 / ticks).round().max(1.0) as i64;
    for index in 0..frames {
        still
            .picture
            .set_pts(Some(start + (index as f64 * ticks).round() as i64));
        for encoder in encoders.iter_mut() {
            encoder.push(&still.picture)?;
        }
    }
    Ok(frames)
}

impl StreamTranscoder {
    /// Slate for `duration_ms` from `pts_ms` on the stream timeline: the last picture held
    /// still in every video rendition, silence as the audio. Empty when the stream has shown
    /// neither a picture nor audio yet (there is nothing to match).
    ///
    /// Blocking; call in stream order with the chunks, like [`StreamTranscoder::transcode`].
    pub fn slate(
        &mut self,
        pts_ms: i64,
        duration_ms: u32,
    ) -> Result<Vec<EncodedRendition>, MediaError> {
        if pts_ms < 0 || duration_ms == 0 {
            return Err(MediaError::Config(format!(
                "slate from {pts_ms} ms for {duration_ms} ms is not on the stream timeline"
            )));
        }
        let encoders = match self.still.is_some() {
            true => self.still_video(pts_ms, duration_ms)?,
            false => Vec::new(),
        };
        let audio = self.audio.silence(pts_ms, duration_ms)?;
        let rate = self.still.as_ref().map(|still| still.rate);
        let mut renditions = self.assemble(encoders, audio.as_ref(), pts_ms, rate)?;
        for rendition in &mut renditions {
            rendition.content = Content::Slate;
        }
        Ok(renditions)
    }

    /// Encoders holding the last picture from `pts_ms` for `duration_ms`, one per rendition.
    pub(crate) fn still_video(
        &mut self,
        pts_ms: i64,
        duration_ms: u32,
    ) -> Result<Vec<RenditionEncoder>, MediaError> {
        let (Some(still), Some(renditions)) = (self.still.as_mut(), self.renditions.as_ref())
        else {
            return Ok(Vec::new());
        };
        let per_ms = i64::from(VIDEO_TIME_BASE.denominator()) / 1000;
        let end = (pts_ms + i64::from(duration_ms)) * per_ms;
        // Never before the picture itself: the range may overlap the chunk it came from.
        let start = (pts_ms * per_ms).max(still.next_pts());
        let mut encoders = renditions
            .iter()
            .map(|r| RenditionEncoder::open(r.clone(), still.rate, &self.video_settings))
            .collect::<Result<Vec<_>, _>>()?;
        hold(&mut encoders, still, start, end.max(start + 1))?;
        for encoder in &mut encoders {
            encoder.finish()?;
        }
        Ok(encoders)
    }
}
