//! Scaling decoded pictures to a rendition's size and pixel format.

use ffmpeg_next::{
    format::Pixel,
    frame,
    software::scaling::{self, Flags},
};

use crate::{MediaError, error::ffmpeg};

/// The pixel format every rendition is encoded in: 8-bit 4:2:0, what every player decodes.
pub(crate) const OUTPUT_FORMAT: Pixel = Pixel::YUV420P;

/// Converts frames to one output size; rebuilt if the source size or format changes mid-chunk.
pub(crate) struct RenditionScaler {
    width: u32,
    height: u32,
    context: Option<(Pixel, u32, u32, scaling::Context)>,
}

impl RenditionScaler {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            width,
            height,
            context: None,
        }
    }

    /// `None` when `source` already has the output size and format and can be encoded as is;
    /// otherwise a new frame carrying the source's timestamp and picture type.
    pub fn scale(&mut self, source: &frame::Video) -> Result<Option<frame::Video>, MediaError> {
        let (format, width, height) = (source.format(), source.width(), source.height());
        if format == OUTPUT_FORMAT && width == self.width && height == self.height {
            return Ok(None);
        }
        let stale =
            !matches!(&self.context, Some((f, w, h, _)) if (*f, *w, *h) == (format, width, height));
        if stale {
            // Bilinear: close to bicubic for downscaling by at most 4.5x, and cheaper.
            let context = scaling::Context::get(
                format,
                width,
                height,
                OUTPUT_FORMAT,
                self.width,
                self.height,
                Flags::BILINEAR,
            )
            .map_err(ffmpeg("creating a scaler"))?;
            self.context = Some((format, width, height, context));
        }
        let (.., context) = self.context.as_mut().expect("set above");
        // A fresh frame each time: the encoder may still hold a reference to the previous one.
        let mut scaled = frame::Video::empty();
        context
            .run(source, &mut scaled)
            .map_err(ffmpeg("scaling a frame"))?;
        scaled.set_pts(source.pts());
        // A keyframe asked of the source frame is asked of every rendition.
        scaled.set_kind(source.kind());
        Ok(Some(scaled))
    }
}
