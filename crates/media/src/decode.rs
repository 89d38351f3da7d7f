//! Opening a source chunk: demuxer, stream choice and decoders.

use std::{io::Read, path::Path};

use ffmpeg_next::{
    Dictionary, Packet, Rational, codec, decoder, format,
    format::context::StreamIo,
    media, threading,
    util::error::{EACCES, EISDIR, ENOENT},
};

use crate::{MediaError, error::ffmpeg};

/// A demuxed chunk with a decoder for its best video and best audio stream.
pub(crate) struct Source {
    pub input: format::context::Input,
    pub video: Option<VideoInput>,
    pub audio: Option<AudioInput>,
}

/// The chosen video stream.
pub(crate) struct VideoInput {
    pub index: usize,
    pub time_base: Rational,
    pub start: Option<i64>,
    /// Nominal frame rate from the container, when it is plausible.
    pub frame_rate: Option<Rational>,
    pub decoder: decoder::Video,
}

/// The chosen audio stream.
pub(crate) struct AudioInput {
    pub index: usize,
    pub time_base: Rational,
    pub start: Option<i64>,
    /// As demuxed: what a stream copy hands to the muxer.
    pub parameters: codec::Parameters,
    pub decoder: decoder::Audio,
}

/// What the demuxer returned next.
pub(crate) enum Demuxed {
    Packet(Packet),
    /// A damaged packet the demuxer skipped.
    Corrupt,
    End,
}

impl Source {
    /// Opens `path` and prepares decoders. Bad input is [`MediaError::Undecodable`].
    pub fn open(path: &Path) -> Result<Self, MediaError> {
        let input = format::input(path).map_err(|e| match e {
            ffmpeg_next::Error::Other { errno } if [ENOENT, EACCES, EISDIR].contains(&errno) => {
                MediaError::Io(std::io::Error::from_raw_os_error(errno))
            }
            other => not_media(other),
        })?;
        Self::with_input(input)
    }

    /// Opens a chunk whose bytes are still arriving: `reader` blocks until more come and
    /// reports the end of the chunk as end of file. Probing stops as soon as every stream is
    /// described instead of reading ahead (seconds, by default), so the first frames are
    /// decoded as soon as they arrive.
    pub fn open_live(reader: impl Read + Send + 'static) -> Result<Self, MediaError> {
        let io = StreamIo::from_read(reader).map_err(ffmpeg("creating the chunk reader"))?;
        let mut options = Dictionary::new();
        // Bytes and microseconds of media looked at to describe the streams: enough for a
        // keyframe and a few audio frames, far less than FFmpeg's 5 MB / 5 s.
        options.set("probesize", "262144");
        options.set("analyzeduration", "300000");
        // The frame rate comes from the metadata or the codec, not from counting frames.
        options.set("fpsprobesize", "0");
        let input = format::input_from_stream(io, None, Some(options)).map_err(not_media)?;
        Self::with_input(input)
    }

    fn with_input(input: format::context::Input) -> Result<Self, MediaError> {
        let video = match best_stream(&input, media::Type::Video) {
            Some(stream) => Some(open_video(&stream)?),
            None => None,
        };
        let audio = match best_stream(&input, media::Type::Audio) {
            Some(stream) => Some(open_audio(&stream)?),
            None => None,
        };
        if video.is_none() && audio.is_none() {
            return Err(MediaError::NoMedia);
        }
        Ok(Self {
            input,
            video,
            audio,
        })
    }

    /// Reads the next packet. I/O errors end the chunk with an error rather than silently.
    pub fn read(&mut self) -> Result<Demuxed, MediaError> {
        let mut packet = Packet::empty();
        match packet.read(&mut self.input) {
            Ok(()) => Ok(Demuxed::Packet(packet)),
            Err(ffmpeg_next::Error::Eof) => Ok(Demuxed::End),
            Err(ffmpeg_next::Error::InvalidData) => Ok(Demuxed::Corrupt),
            Err(e) => Err(MediaError::undecodable(format!("demuxing stopped: {e}"))),
        }
    }
}

fn not_media(error: ffmpeg_next::Error) -> MediaError {
    MediaError::undecodable(format!("not a media container FFmpeg can read ({error})"))
}

/// The stream FFmpeg ranks best for `kind`, ignoring cover art.
fn best_stream(
    input: &format::context::Input,
    kind: media::Type,
) -> Option<format::stream::Stream<'_>> {
    let is_cover = |s: &format::stream::Stream| {
        s.disposition()
            .contains(format::stream::Disposition::ATTACHED_PIC)
    };
    match input.streams().best(kind) {
        Some(best) if !is_cover(&best) => Some(best),
        _ => input
            .streams()
            .find(|s| s.parameters().medium() == kind && !is_cover(s)),
    }
}

fn start_of(stream: &format::stream::Stream) -> Option<i64> {
    let start = stream.start_time();
    (start != ffmpeg_next::ffi::AV_NOPTS_VALUE).then_some(start)
}

fn open_video(stream: &format::stream::Stream) -> Result<VideoInput, MediaError> {
    let parameters = stream.parameters();
    let codec_id = parameters.id();
    let mut context =
        codec::Context::from_parameters(parameters).map_err(ffmpeg("reading video parameters"))?;
    // Frame threads: the decoder keeps up with four encoders on two cores.
    context.set_threading(threading::Config::kind(threading::Type::Frame));
    let mut decoder = context.decoder();
    decoder.set_packet_time_base(stream.time_base());
    let decoder = decoder.video().map_err(|e| {
        MediaError::undecodable(format!("no decoder for video codec {codec_id:?} ({e})"))
    })?;
    // r_frame_rate is the rate the timestamps tick at; avg_frame_rate is frames over the
    // duration, which a short chunk with an audio lead skews (fMP4: 24.7 for 25).
    let frame_rate = [stream.rate(), stream.avg_frame_rate()]
        .into_iter()
        .find(|r| plausible_rate(*r));
    Ok(VideoInput {
        index: stream.index(),
        time_base: stream.time_base(),
        start: start_of(stream),
        frame_rate,
        decoder,
    })
}

fn open_audio(stream: &format::stream::Stream) -> Result<AudioInput, MediaError> {
    let parameters = stream.parameters();
    let codec_id = parameters.id();
    let context = codec::Context::from_parameters(parameters.clone())
        .map_err(ffmpeg("reading audio parameters"))?;
    let mut decoder = context.decoder();
    decoder.set_packet_time_base(stream.time_base());
    let decoder = decoder.audio().map_err(|e| {
        MediaError::undecodable(format!("no decoder for audio codec {codec_id:?} ({e})"))
    })?;
    Ok(AudioInput {
        index: stream.index(),
        time_base: stream.time_base(),
        start: start_of(stream),
        parameters,
        decoder,
    })
}

/// Between 1 and 240 frames per second: anything else is a container's placeholder.
pub(crate) fn plausible_rate(rate: Rational) -> bool {
    let (num, den) = (rate.numerator(), rate.denominator());
    num > 0 && den > 0 && num >= den && i64::from(num) <= 240 * i64::from(den)
}
