//! [`StreamTranscoder`]: one per live stream, one call per source chunk.

use std::{io::Write, sync::OnceLock};

use ffmpeg_next::{Rational, frame, picture};
use tracing::debug;

use crate::{
    ChunkMedia, Content, EncodedPart, EncodedRendition, Ladder, LiveChunkInput, MediaError,
    SourceChunkInput, TranscodeOptions,
    decode::{Demuxed, Source, VideoInput, plausible_rate},
    encode_audio::{AudioTrack, ChunkAudio},
    encode_video::{RenditionEncoder, VIDEO_TIME_BASE, VideoSettings},
    ladder::{self, VideoRendition},
    mux,
    parts::{AudioSoFar, PartCutter},
    slate::{self, Still},
    timeline::{ChunkClock, rescale},
};

/// Frame rate assumed when neither the container nor the codec states one.
const FALLBACK_FRAME_RATE: Rational = Rational(30, 1);
const MILLIS: Rational = Rational(1, 1000);

/// Where a stream's encoding stands between two chunks, as far as the bytes of the next chunk
/// depend on it: video encoders start afresh with every chunk, copied AAC keeps its sample-exact
/// timeline (the source's millisecond timestamps are rounded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Continuity {
    /// Sample rate and start of the next copied AAC packet, in samples on the stream timeline.
    pub copied_audio: Option<(u32, i64)>,
}

/// Transcodes the chunks of one live stream, in order.
///
/// Keeps what must not change between chunks: the renditions chosen from the first picture
/// (so the master playlist stays stable) and the audio encoder and timeline.
pub struct StreamTranscoder {
    ladder: Ladder,
    options: TranscodeOptions,
    pub(crate) video_settings: VideoSettings,
    pub(crate) renditions: Option<Vec<VideoRendition>>,
    pub(crate) audio: AudioTrack,
    /// The newest picture, for slate.
    pub(crate) still: Option<Still>,
    /// Top video rungs left out of the chunks to come (the worker is short of CPU).
    shed: usize,
    /// Renditions the stream had from an earlier source that this one does not reach.
    absent: Vec<String>,
}

/// Which chunk is being transcoded and where it lies on the stream timeline; a live chunk's
/// duration is known only once its last byte came.
struct ChunkSpan<'a> {
    seq: u64,
    pts_ms: i64,
    /// `None` while the chunk has not been cut: a live chunk whose bytes ended before its cut
    /// is a broken feed, not a chunk.
    duration_ms: Box<dyn Fn() -> Option<u32> + 'a>,
}

/// The video side of the chunk being transcoded.
#[derive(Default)]
struct ChunkVideo {
    encoders: Vec<RenditionEncoder>,
    packets: u32,
    frames: u32,
    decode_errors: u32,
    /// The chunk's newest decoded picture and frame rate.
    last: Option<frame::Video>,
    rate: Option<Rational>,
}

impl StreamTranscoder {
    /// Checks the ladder and options and prepares a transcoder for a new stream.
    pub fn new(ladder: Ladder, options: TranscodeOptions) -> Result<Self, MediaError> {
        ladder.validate()?;
        if !(1_000..=60_000).contains(&options.max_chunk_ms) {
            return Err(MediaError::Config(
                "max_chunk_ms must be 1 to 60 seconds".into(),
            ));
        }
        if !(100..=options.max_chunk_ms).contains(&options.part_target_ms) {
            return Err(MediaError::Config(
                "part_target_ms must be from 100 ms to max_chunk_ms".into(),
            ));
        }
        init_ffmpeg()?;
        let global_header = mux::mp4_wants_global_header()?;
        let video_settings = VideoSettings {
            preset: options.preset.clone(),
            threads: options.x264_threads,
            keyint: options.max_chunk_ms * 60 / 1000,
            global_header,
            low_delay: options.low_delay,
        };
        let audio = AudioTrack::new(ladder.audio_bitrate, global_header);
        Ok(Self {
            ladder,
            options,
            video_settings,
            renditions: None,
            audio,
            still: None,
            shed: 0,
            absent: Vec::new(),
        })
    }

    /// Leaves the `count` top video rungs out of the chunks to come (never the lowest): a
    /// worker short of CPU keeps audio and the lower rungs in real time. 0 makes them all.
    pub fn shed_top_rungs(&mut self, count: usize) {
        self.shed = count;
    }

    /// Renditions the stream had before this transcoder's source (an earlier broadcaster
    /// session at a higher resolution) that it does not make: reported left out of every chunk,
    /// so that players of them take another rendition.
    pub fn also_left_out(&mut self, rungs: Vec<String>) {
        self.absent = rungs;
    }

    /// The stream's renditions a chunk that made `made` left out: top rungs shed, and those of
    /// an earlier source it does not reach.
    pub fn left_out(&self, made: &[EncodedRendition]) -> Vec<String> {
        self.video_rungs()
            .into_iter()
            .chain(self.absent.iter().cloned())
            .filter(|rung| !made.iter().any(|rendition| &rendition.name == rung))
            .collect()
    }

    /// The names of the video rungs fitted to the stream, top first, once it showed a picture.
    pub fn video_rungs(&self) -> Vec<String> {
        self.renditions
            .iter()
            .flatten()
            .map(|rendition| rendition.name.clone())
            .collect()
    }

    /// What another transcoder needs to take this stream up at the next chunk and make the same
    /// bytes as this one would (a standby joining a live stream).
    pub fn continuity(&self) -> Continuity {
        Continuity {
            copied_audio: self.audio.copy_continuity(),
        }
    }

    /// Takes the stream up where `continuity` says another transcoder left it.
    pub fn continue_from(&mut self, continuity: Continuity) {
        self.audio.continue_copy_from(continuity.copied_audio);
    }

    /// Transcodes one chunk into every rendition that fits the source, plus audio only.
    ///
    /// Blocking and CPU-heavy. Call with the chunks of the stream in order: the audio encoder
    /// carries samples across the boundary. Bad input is [`MediaError::Undecodable`] or
    /// [`MediaError::NoMedia`].
    pub fn transcode(
        &mut self,
        input: &SourceChunkInput,
    ) -> Result<Vec<EncodedRendition>, MediaError> {
        let span = ChunkSpan {
            seq: input.seq,
            pts_ms: input.pts_ms,
            duration_ms: Box::new(move || Some(input.duration_ms)),
        };
        match input.media {
            ChunkMedia::File(path) => {
                self.transcode_source(Source::open(path)?, span, &mut |_| Ok(()))
            }
            ChunkMedia::Bytes(bytes) => {
                let mut builder = tempfile::Builder::new();
                builder.prefix("livecast-chunk-");
                let mut file = match &self.options.temp_dir {
                    Some(dir) => builder.tempfile_in(dir)?,
                    None => builder.tempfile()?,
                };
                file.write_all(bytes)?;
                file.flush()?;
                self.transcode_source(Source::open(file.path())?, span, &mut |_| Ok(()))
            }
        }
    }

    /// Transcodes a chunk while its bytes arrive, handing each part of each rendition to
    /// `on_part` as soon as the encoders have put it out; returns the whole segments (the parts
    /// laid end to end) once the reader reports the chunk's end.
    ///
    /// Blocking, like [`StreamTranscoder::transcode`], and in stream order with it. An error
    /// from `on_part` stops the chunk.
    pub fn transcode_live(
        &mut self,
        input: LiveChunkInput,
        on_part: &mut dyn FnMut(EncodedPart) -> Result<(), MediaError>,
    ) -> Result<Vec<EncodedRendition>, MediaError> {
        let source = Source::open_live(input.reader)?;
        let duration = input.duration_ms;
        let span = ChunkSpan {
            seq: input.seq,
            pts_ms: input.pts_ms,
            duration_ms: Box::new(move || duration.get().copied()),
        };
        self.transcode_source(source, span, on_part)
    }

    fn transcode_source(
        &mut self,
        mut source: Source,
        input: ChunkSpan<'_>,
        on_part: &mut dyn FnMut(EncodedPart) -> Result<(), MediaError>,
    ) -> Result<Vec<EncodedRendition>, MediaError> {
        if input.pts_ms < 0 {
            return Err(MediaError::Config(format!(
                "chunk {} starts at {} ms: the stream timeline starts at 0",
                input.seq, input.pts_ms
            )));
        }
        let clock = chunk_clock(&source, input.pts_ms);
        let mut video = ChunkVideo::default();
        let mut audio_chunk = self.audio.begin_chunk();
        let mut corrupt_packets = 0u32;
        let mut cutter = PartCutter::new(
            clock.start(VIDEO_TIME_BASE),
            self.options.part_target_ms,
            (source.video.is_some(), source.audio.is_some()),
        )
        .with_keyframes_every(
            self.options.keyframe_interval_ms,
            Some(self.options.chunk_target_ms),
        );

        loop {
            let packet = match source.read()? {
                Demuxed::End => break,
                Demuxed::Corrupt => {
                    corrupt_packets += 1;
                    continue;
                }
                Demuxed::Packet(packet) => packet,
            };
            let index = packet.stream();
            if let Some(video_input) = source.video.as_mut().filter(|v| v.index == index) {
                video.packets += 1;
                if video_input.decoder.send_packet(&packet).is_err() {
                    video.decode_errors += 1;
                    continue;
                }
                self.receive_video(video_input, &mut video, &clock, &mut cutter)?;
            } else if let Some(audio_input) = source.audio.as_mut().filter(|a| a.index == index) {
                self.audio
                    .push(&mut audio_chunk, audio_input, packet, &clock)?;
            } else {
                continue;
            }
            let track = match (&source.audio, cutter.wants_audio_track()) {
                (Some(audio_input), true) => self.audio.chunk_track(&audio_chunk, audio_input),
                _ => None,
            };
            let so_far = AudioSoFar {
                packets: &audio_chunk.packets,
                track,
            };
            cutter.cut(&mut video.encoders, &so_far, video.rate, false, on_part)?;
        }
        if let Some(video_input) = source.video.as_mut()
            && video_input.decoder.send_eof().is_ok()
        {
            self.receive_video(video_input, &mut video, &clock, &mut cutter)?;
        }
        // FFmpeg's reader takes a read error for the end of the stream: a chunk whose feed
        // broke off ends here too, and must not be finished as if it had been cut.
        let span_end = (input.duration_ms)().ok_or_else(|| {
            MediaError::Io(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("the bytes of chunk {} ended before it was cut", input.seq),
            ))
        })?;
        hold_to_chunk_end(&mut video, input.seq, input.pts_ms, span_end)?;
        for encoder in &mut video.encoders {
            encoder.finish()?;
        }
        let audio_errors = audio_chunk.decode_errors;
        let audio = match source.audio.as_mut() {
            Some(audio_input) => self.audio.finish(audio_chunk, audio_input, &clock)?,
            None => None,
        };

        let damage = format!(
            "{corrupt_packets} unreadable packets; {} of {} video packets and {audio_errors} audio \
             packets failed to decode",
            video.decode_errors, video.packets
        );
        if video.frames == 0 && audio.is_none() {
            return Err(MediaError::undecodable(format!(
                "neither video nor audio could be decoded ({damage})"
            )));
        }
        // Audio without a picture: the stream's last picture is held under it. Before the
        // stream has shown one, a video stream without packets (a TS whose camera is off) is
        // an audio-only chunk, and one whose packets give no picture is broken.
        let mut picture_held = false;
        let mut rate = video.rate;
        if video.frames == 0 && self.still.is_some() {
            video.encoders = self.still_video(input.pts_ms, span_end)?;
            rate = self.still.as_ref().map(|still| still.rate);
            picture_held = true;
        } else if video.packets > 0 && video.frames == 0 {
            return Err(MediaError::undecodable(format!(
                "no video frame could be decoded ({damage})"
            )));
        }
        if let (Some(picture), Some(rate)) = (video.last.take(), video.rate) {
            self.still = Some(Still { picture, rate });
        }
        if corrupt_packets + video.decode_errors + audio_errors > 0 {
            debug!(seq = input.seq, %damage, "chunk had damaged packets");
        }

        let audio_packets = audio.as_ref().map_or(&[][..], |a| &a.packets[..]);
        let so_far = AudioSoFar {
            packets: audio_packets,
            track: audio.as_ref().map(|a| (a.parameters.clone(), a.time_base)),
        };
        cutter.cut(&mut video.encoders, &so_far, rate, true, on_part)?;
        let mut renditions = cutter.into_renditions(&video.encoders, audio_packets)?;
        for rendition in renditions
            .iter_mut()
            .filter(|r| picture_held && !r.audio_only)
        {
            rendition.content = Content::StillPicture;
        }
        debug!(
            seq = input.seq,
            pts_ms = input.pts_ms,
            nominal_ms = span_end,
            frames = video.frames,
            renditions = renditions.len(),
            audio_copied = audio.as_ref().map(|a| a.copied),
            "transcoded chunk"
        );
        Ok(renditions)
    }

    /// Feeds every frame the decoder has ready to each rendition's encoder.
    fn receive_video(
        &mut self,
        input: &mut VideoInput,
        chunk: &mut ChunkVideo,
        clock: &ChunkClock,
        cutter: &mut PartCutter,
    ) -> Result<(), MediaError> {
        let start = clock.start(VIDEO_TIME_BASE);
        let mut decoded = frame::Video::empty();
        while input.decoder.receive_frame(&mut decoded).is_ok() {
            let Some(ts) = decoded.timestamp().or(decoded.pts()) else {
                continue;
            };
            let pts = clock.map(ts, input.time_base, VIDEO_TIME_BASE);
            // Pictures before the chunk's first keyframe (an open GOP's leading pictures)
            // belong to the previous segment.
            if pts < start - 90 {
                continue;
            }
            decoded.set_pts(Some(pts));
            if chunk.encoders.is_empty() {
                let (encoders, rate) = self.open_encoders(input, &decoded)?;
                chunk.encoders = encoders;
                chunk.rate = Some(rate);
            }
            // Decoder picture types would otherwise steer x264's frame-type decisions; a
            // keyframe is asked for only where a part must be independent.
            let rate = chunk.rate.unwrap_or(FALLBACK_FRAME_RATE);
            decoded.set_kind(match cutter.wants_keyframe(pts, rate) {
                true => picture::Type::I,
                false => picture::Type::None,
            });
            for encoder in &mut chunk.encoders {
                encoder.push(&decoded)?;
            }
            chunk.frames += 1;
            // Keep the newest picture without copying it: the one it replaces becomes the
            // buffer the next picture is decoded into.
            std::mem::swap(
                &mut decoded,
                chunk.last.get_or_insert_with(frame::Video::empty),
            );
        }
        Ok(())
    }

    fn open_encoders(
        &mut self,
        input: &VideoInput,
        first: &frame::Video,
    ) -> Result<(Vec<RenditionEncoder>, Rational), MediaError> {
        let renditions = self.renditions.get_or_insert_with(|| {
            let sar = first.aspect_ratio();
            let width = if sar.numerator() > 0 && sar.denominator() > 0 {
                (f64::from(first.width()) * f64::from(sar)).round() as u32
            } else {
                first.width()
            };
            ladder::fit(&self.ladder, width, first.height())
        });
        let rate = input
            .frame_rate
            .or_else(|| input.decoder.frame_rate().filter(|r| plausible_rate(*r)))
            .unwrap_or(FALLBACK_FRAME_RATE);
        let shed = self.shed.min(renditions.len().saturating_sub(1));
        let encoders = renditions
            .iter()
            .skip(shed)
            .map(|rendition| RenditionEncoder::open(rendition.clone(), rate, &self.video_settings))
            .collect::<Result<_, _>>()?;
        Ok((encoders, rate))
    }

    /// Every rendition of a stand-in made whole at once (slate, a held picture): cut into
    /// parts like any chunk, so its segments have the same shape.
    pub(crate) fn assemble(
        &self,
        mut encoders: Vec<RenditionEncoder>,
        audio: Option<&ChunkAudio>,
        pts_ms: i64,
        rate: Option<Rational>,
    ) -> Result<Vec<EncodedRendition>, MediaError> {
        let origin = rescale(pts_ms, MILLIS, VIDEO_TIME_BASE);
        let shape = (!encoders.is_empty(), audio.is_some());
        let mut cutter = PartCutter::new(origin, self.options.part_target_ms, shape);
        let packets = audio.map_or(&[][..], |a| &a.packets[..]);
        let so_far = AudioSoFar {
            packets,
            track: audio.map(|a| (a.parameters.clone(), a.time_base)),
        };
        cutter.cut(&mut encoders, &so_far, rate, true, &mut |_| Ok(()))?;
        cutter.into_renditions(&encoders, packets)
    }
}

/// A picture that stops inside the chunk while the chunk goes on (the camera stalled, the
/// sound did not) is held to the chunk's end, so every rendition covers the chunk's whole time
/// range and video and audio segments stay the same length.
fn hold_to_chunk_end(
    video: &mut ChunkVideo,
    seq: u64,
    pts_ms: i64,
    duration_ms: u32,
) -> Result<(), MediaError> {
    let (Some(picture), Some(rate)) = (video.last.take(), video.rate) else {
        return Ok(());
    };
    let mut still = Still { picture, rate };
    let end = (pts_ms + i64::from(duration_ms)) * (VIDEO_TIME_BASE.denominator() as i64 / 1000);
    let start = still.next_pts();
    let two_frames = 2 * (start - still.picture.pts().unwrap_or(start));
    if end - start >= two_frames.max(1) {
        let held = slate::hold(&mut video.encoders, &mut still, start, end)?;
        debug!(seq, held, "picture held to the end of the chunk");
    }
    video.last = Some(still.picture);
    Ok(())
}

/// The chunk's origin is its earliest timestamp over the streams we use: what the ingest calls
/// the chunk start (the first media tag of an FLV chunk, the start of a pushed HLS segment).
fn chunk_clock(source: &Source, pts_ms: i64) -> ChunkClock {
    let video = source
        .video
        .as_ref()
        .and_then(|v| v.start.map(|s| (s, v.time_base)));
    let audio = source
        .audio
        .as_ref()
        .and_then(|a| a.start.map(|s| (s, a.time_base)));
    let micros = Rational::new(1, 1_000_000);
    let (origin, base) = [video, audio]
        .into_iter()
        .flatten()
        .min_by_key(|(start, base)| rescale(*start, *base, micros))
        .unwrap_or((0, MILLIS));
    ChunkClock::new(origin, base, pts_ms)
}

fn init_ffmpeg() -> Result<(), MediaError> {
    static INIT: OnceLock<Result<(), String>> = OnceLock::new();
    INIT.get_or_init(|| {
        ffmpeg_next::init().map_err(|e| e.to_string())?;
        // FFmpeg logs to stderr on its own; keep it to errors so bad input does not flood it.
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
        Ok(())
    })
    .clone()
    .map_err(|e| MediaError::Ffmpeg(format!("initialising: {e}")))
}
