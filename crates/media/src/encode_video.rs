//! H.264 encoding of one video rendition of one chunk with libx264.
//!
//! A fresh encoder per chunk: every chunk starts on a keyframe of the source, so each segment
//! is one closed GOP that opens with the only IDR (no scene-cut keyframes, a keyframe interval
//! longer than any chunk). No B-frames: decode order equals presentation order, so a segment's
//! `tfdt` is its first frame's place on the stream timeline, the same on every rendition, and
//! the first chunk of a stream never needs negative decode times.

use ffmpeg_next::{Dictionary, Packet, Rational, codec, encoder, frame};

use crate::{
    MediaError,
    error::ffmpeg,
    ladder::VideoRendition,
    scale::{OUTPUT_FORMAT, RenditionScaler},
};

/// Video timestamps inside the crate: MPEG ticks, exact for every common frame rate.
pub(crate) const VIDEO_TIME_BASE: Rational = Rational(1, 90_000);

/// What every video encoder of a stream shares.
#[derive(Debug, Clone)]
pub(crate) struct VideoSettings {
    pub preset: String,
    pub threads: u32,
    /// Frames between forced keyframes; longer than any chunk.
    pub keyint: u32,
    /// The muxer wants SPS/PPS out of band (`avcC`) rather than in the stream.
    pub global_header: bool,
    /// No lookahead: a frame's packet comes out right after the frame went in (less the
    /// frame threads' delay).
    pub low_delay: bool,
}

/// Encodes the frames of one chunk into one rendition.
pub(crate) struct RenditionEncoder {
    pub rendition: VideoRendition,
    encoder: encoder::Video,
    scaler: RenditionScaler,
    frame_rate: Rational,
    frame_ticks: i64,
    /// Whether the rung's `max_fps` is below the source rate, so frames are dropped.
    capped: bool,
    /// When capped: the earliest time the next frame may be kept.
    next_due: Option<i64>,
    expected_options: Vec<(&'static str, String)>,
    pub packets: Vec<Packet>,
}

impl RenditionEncoder {
    /// Opens libx264 for `rendition` at `source_rate` (capped by the rung's `max_fps`).
    pub fn open(
        rendition: VideoRendition,
        source_rate: Rational,
        settings: &VideoSettings,
    ) -> Result<Self, MediaError> {
        let cap = rendition
            .max_fps
            .filter(|max| f64::from(source_rate) > f64::from(*max));
        let frame_rate = match cap {
            Some(max) => Rational::new(i32::try_from(max).unwrap_or(i32::MAX), 1),
            None => source_rate,
        };
        let frame_ticks = (90_000.0 / f64::from(frame_rate)).round().max(1.0) as i64;

        let codec = encoder::find_by_name("libx264")
            .ok_or_else(|| MediaError::Ffmpeg("this FFmpeg has no libx264 encoder".into()))?;
        let mut video = codec::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(ffmpeg("allocating the H.264 encoder"))?;
        video.set_width(rendition.width);
        video.set_height(rendition.height);
        video.set_format(OUTPUT_FORMAT);
        video.set_time_base(VIDEO_TIME_BASE);
        video.set_frame_rate(Some(frame_rate));
        video.set_gop(settings.keyint);
        video.set_max_b_frames(0);
        let bitrate = rendition.bitrate as usize;
        video.set_bit_rate(bitrate);
        video.set_max_bit_rate(bitrate);
        if settings.global_header {
            video.set_flags(codec::Flags::GLOBAL_HEADER);
        }

        let mut options = Dictionary::new();
        options.set("preset", &settings.preset);
        options.set("profile", "high");
        options.set("bufsize", &(2 * u64::from(rendition.bitrate)).to_string());
        options.set("threads", &settings.threads.to_string());
        let keyint = settings.keyint;
        let mut params =
            format!("scenecut=0:open-gop=0:bframes=0:keyint={keyint}:min-keyint={keyint}");
        if settings.low_delay {
            params.push_str(":rc-lookahead=0:sync-lookahead=0:mbtree=0");
        }
        options.set("x264-params", &params);
        let encoder = video
            .open_with(options)
            .map_err(ffmpeg("opening the H.264 encoder"))?;

        // libavcodec passes these to x264 in kb/s, rounding down.
        let kbps = rendition.bitrate / 1000;
        // x264 prints open_gop only with B-frames; without them every GOP is closed anyway.
        let mut expected_options = vec![
            ("scenecut", "0".to_string()),
            ("bframes", "0".to_string()),
            ("keyint", keyint.to_string()),
            ("bitrate", kbps.to_string()),
            ("vbv_maxrate", kbps.to_string()),
            ("vbv_bufsize", (2 * kbps).to_string()),
        ];
        if settings.low_delay {
            expected_options.extend([
                ("rc_lookahead", "0".to_string()),
                ("mbtree", "0".to_string()),
            ]);
        }
        let scaler = RenditionScaler::new(rendition.width, rendition.height);
        Ok(Self {
            rendition,
            encoder,
            scaler,
            frame_rate,
            frame_ticks,
            capped: cap.is_some(),
            next_due: None,
            expected_options,
            packets: Vec::new(),
        })
    }

    /// The frame rate this rendition is encoded at.
    pub fn frame_rate(&self) -> Rational {
        self.frame_rate
    }

    /// Codec parameters for the muxer, including the `avcC` extradata.
    pub fn parameters(&self) -> codec::Parameters {
        codec::Parameters::from(&*self.encoder)
    }

    /// Encodes one decoded frame (pts in [`VIDEO_TIME_BASE`], picture type already cleared).
    pub fn push(&mut self, source: &frame::Video) -> Result<(), MediaError> {
        let pts = source.pts().unwrap_or(0);
        if self.capped {
            // Keep a frame when it is due (less a quarter frame of jitter); after a gap in
            // the source, count from the frame that ended it.
            let tolerance = self.frame_ticks / 4;
            match self.next_due {
                Some(due) if pts + tolerance < due => return Ok(()),
                Some(due) if pts <= due + self.frame_ticks => {
                    self.next_due = Some(due + self.frame_ticks)
                }
                _ => self.next_due = Some(pts + self.frame_ticks),
            }
        }
        let scaled = self.scaler.scale(source)?;
        let frame = scaled.as_ref().unwrap_or(source);
        self.encoder
            .send_frame(frame)
            .map_err(ffmpeg("sending a frame to x264"))?;
        self.drain()
    }

    /// Flushes the encoder at the end of the chunk.
    pub fn finish(&mut self) -> Result<(), MediaError> {
        self.encoder.send_eof().map_err(ffmpeg("flushing x264"))?;
        self.drain()
    }

    fn drain(&mut self) -> Result<(), MediaError> {
        let first = self.packets.is_empty();
        drain_packets(&mut self.encoder, &mut self.packets)?;
        for packet in &mut self.packets {
            if packet.duration() <= 0 {
                packet.set_duration(self.frame_ticks);
            }
        }
        if first && let Some(packet) = self.packets.first() {
            self.verify_options(packet.data().unwrap_or_default())?;
        }
        Ok(())
    }

    /// libavcodec ignores options it does not know, so read back what x264 says it applied:
    /// x264 puts its settings in an SEI message in front of the first frame.
    fn verify_options(&self, first_packet: &[u8]) -> Result<(), MediaError> {
        let applied = parse_x264_options(first_packet).ok_or_else(|| {
            MediaError::Ffmpeg("x264 wrote no settings SEI; cannot verify its options".into())
        })?;
        for (key, want) in &self.expected_options {
            let got = applied
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str());
            if got != Some(want.as_str()) {
                return Err(MediaError::Ffmpeg(format!(
                    "x264 applied {key}={} where {want} was asked for",
                    got.unwrap_or("(missing)")
                )));
            }
        }
        Ok(())
    }
}

/// Moves every packet the encoder has ready into `out`.
pub(crate) fn drain_packets(
    encoder: &mut encoder::Encoder,
    out: &mut Vec<Packet>,
) -> Result<(), MediaError> {
    loop {
        let mut packet = Packet::empty();
        match encoder.receive_packet(&mut packet) {
            Ok(()) => out.push(packet),
            Err(ffmpeg_next::Error::Eof) => return Ok(()),
            Err(ffmpeg_next::Error::Other { errno })
                if errno == ffmpeg_next::util::error::EAGAIN =>
            {
                return Ok(());
            }
            Err(e) => {
                return Err(MediaError::Ffmpeg(format!(
                    "receiving an encoded packet: {e}"
                )));
            }
        }
    }
}

/// The `key=value` list x264 writes after "options: " in its user-data SEI.
pub(crate) fn parse_x264_options(data: &[u8]) -> Option<Vec<(String, String)>> {
    const MARKER: &[u8] = b"x264 - core";
    const OPTIONS: &[u8] = b"options: ";
    let start = find(data, MARKER)?;
    let after = &data[start..];
    let options_at = find(after, OPTIONS)? + OPTIONS.len();
    let text = &after[options_at..];
    let end = text
        .iter()
        .position(|&b| b == 0 || !(b.is_ascii_graphic() || b == b' '))
        .unwrap_or(text.len());
    let text = std::str::from_utf8(&text[..end]).ok()?;
    Some(
        text.split(' ')
            .filter_map(|pair| pair.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_x264_settings_from_the_sei() {
        let mut packet = vec![0, 0, 0, 1, 6, 5, 0xff, 0x2c];
        packet.extend_from_slice(&[0xdc; 16]);
        packet.extend_from_slice(
            b"x264 - core 164 r3095 baee400 - H.264/MPEG-4 AVC codec - Copyleft 2003-2022 - \
              http://www.videolan.org/x264.html - options: cabac=1 ref=1 bframes=0 keyint=600 \
              scenecut=0 rc=cbr bitrate=2800 vbv_maxrate=2800 vbv_bufsize=5600 ip_ratio=1.40",
        );
        packet.extend_from_slice(&[0, 0x80, 0, 0, 0, 1, 0x65]);
        let options = parse_x264_options(&packet).expect("options");
        let get = |k: &str| {
            options
                .iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("scenecut").as_deref(), Some("0"));
        assert_eq!(get("vbv_bufsize").as_deref(), Some("5600"));
        assert_eq!(get("ip_ratio").as_deref(), Some("1.40"));
        assert_eq!(get("nothing"), None);
    }

    #[test]
    fn no_sei_means_no_options() {
        assert_eq!(parse_x264_options(b"\0\0\0\x01\x65\x88\x84"), None);
        assert_eq!(
            parse_x264_options(b"x264 - core 164 without the list"),
            None
        );
    }
}
