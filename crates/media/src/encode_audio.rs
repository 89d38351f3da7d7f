//! The audio of a stream: AAC copied through, or encoded by one AAC encoder kept for the stream.
//!
//! A fresh AAC encoder per chunk would put encoder priming (silence) and a timestamp shift at
//! every chunk boundary. So AAC-LC is copied when the source carries it with its configuration
//! out of band (FLV, MP4), and everything else goes through one encoder, one resampler and one
//! sample FIFO that live as long as the stream: the samples that do not fill a whole AAC frame
//! at the end of a chunk, and those inside the encoder, come out with the next chunk, so an
//! encoded audio segment ends (and the next one starts) up to two AAC frames before the video
//! boundary. Small gaps in the source become silence and overlaps are cut: the encoded
//! timeline stays continuous and in sync with the video.
//!
//! Packets that would start before zero (the priming packet of a stream that starts at zero)
//! are dropped rather than shifting the timeline.

use ffmpeg_next::{
    ChannelLayout, Packet, Rational, codec, encoder,
    format::{Sample, sample::Type as SampleType},
    frame,
    software::resampling,
};
use tracing::debug;

use crate::{
    MediaError, decode::AudioInput, encode_video::drain_packets, error::ffmpeg,
    timeline::ChunkClock,
};

/// Sample rates AAC signals directly; other rates are resampled to 48 kHz.
const AAC_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];
const ENCODER_FORMAT: Sample = Sample::F32(SampleType::Planar);
/// Samples in one AAC-LC access unit.
const AAC_FRAME: i64 = 1024;

/// The audio of one chunk, ready to mux into every rendition.
pub(crate) struct ChunkAudio {
    /// pts = dts, in `time_base`, on the stream timeline.
    pub packets: Vec<Packet>,
    pub time_base: Rational,
    pub parameters: codec::Parameters,
    /// True when the source's AAC went through untouched.
    pub copied: bool,
}

/// Audio state of one stream, kept across its chunks.
pub(crate) struct AudioTrack {
    bitrate: u32,
    global_header: bool,
    /// Start of the next copied packet, in samples: copied timestamps are regular, not the
    /// millisecond-rounded ones of FLV.
    copy_next: Option<(u32, i64)>,
    encoder: Option<AacEncoder>,
    /// Rate and layout of the audio the stream carried last: what silence is made in.
    format: Option<(u32, ChannelLayout)>,
    /// Encodes silence for a stream whose AAC is copied (it has no encoder of its own).
    silence: Option<AacEncoder>,
    /// The copied AAC's parameters: silence in the same AAC configuration is muxed with them,
    /// so the init segment stays the same.
    copied_parameters: Option<codec::Parameters>,
}

/// How the current chunk's audio is handled, decided on its first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Copy,
    Encode,
}

/// Audio of the chunk being transcoded.
pub(crate) struct ChunkAudioState {
    mode: Option<Mode>,
    /// pts = dts, on the stream timeline, in the time base [`AudioTrack::chunk_track`] gives.
    pub packets: Vec<Packet>,
    pub decode_errors: u32,
}

impl AudioTrack {
    pub fn new(bitrate: u32, global_header: bool) -> Self {
        Self {
            bitrate,
            global_header,
            copy_next: None,
            encoder: None,
            format: None,
            silence: None,
            copied_parameters: None,
        }
    }

    /// Where copied audio continues (rate and next packet start, in samples), if it does.
    pub fn copy_continuity(&self) -> Option<(u32, i64)> {
        self.copy_next
    }

    /// Continues copied audio from where another transcoder of the stream left it.
    pub fn continue_copy_from(&mut self, next: Option<(u32, i64)>) {
        self.copy_next = next;
    }

    pub fn begin_chunk(&self) -> ChunkAudioState {
        ChunkAudioState {
            mode: None,
            packets: Vec::new(),
            decode_errors: 0,
        }
    }

    /// Takes one demuxed audio packet of the chunk.
    pub fn push(
        &mut self,
        chunk: &mut ChunkAudioState,
        input: &mut AudioInput,
        packet: Packet,
        clock: &ChunkClock,
    ) -> Result<(), MediaError> {
        let mode = *chunk.mode.get_or_insert_with(|| {
            let mode = if can_copy(input, packet.data().unwrap_or_default()) {
                Mode::Copy
            } else {
                Mode::Encode
            };
            debug!(?mode, codec = ?input.parameters.id(), "audio mode for chunk");
            mode
        });
        match mode {
            Mode::Copy => {
                self.copy(chunk, input, packet, clock);
                Ok(())
            }
            Mode::Encode => {
                if input.decoder.send_packet(&packet).is_err() {
                    chunk.decode_errors += 1;
                    return Ok(());
                }
                self.receive_frames(chunk, input, clock)
            }
        }
    }

    /// How the chunk's audio packets are muxed (parameters, time base), once its first packet
    /// decided between copying and encoding.
    pub fn chunk_track(
        &self,
        chunk: &ChunkAudioState,
        input: &AudioInput,
    ) -> Option<(codec::Parameters, Rational)> {
        match chunk.mode? {
            Mode::Copy => Some((
                input.parameters.clone(),
                Rational::new(1, input.decoder.rate() as i32),
            )),
            Mode::Encode => self.encoder.as_ref().map(|aac| {
                (
                    codec::Parameters::from(&aac.encoder),
                    Rational::new(1, aac.rate as i32),
                )
            }),
        }
    }

    /// Ends the chunk; `None` when it produced no audio.
    pub fn finish(
        &mut self,
        mut chunk: ChunkAudioState,
        input: &mut AudioInput,
        clock: &ChunkClock,
    ) -> Result<Option<ChunkAudio>, MediaError> {
        let audio = match chunk.mode {
            None => return Ok(None),
            Some(Mode::Copy) => {
                let rate = input.decoder.rate();
                self.copied_parameters = Some(input.parameters.clone());
                ChunkAudio {
                    packets: chunk.packets,
                    time_base: Rational::new(1, rate as i32),
                    parameters: input.parameters.clone(),
                    copied: true,
                }
            }
            Some(Mode::Encode) => {
                // The decoder is the chunk's; the encoder keeps what it holds for the next chunk.
                if input.decoder.send_eof().is_ok() {
                    self.receive_frames(&mut chunk, input, clock)?;
                }
                // Every packet may have failed to decode.
                let Some(aac) = self.encoder.as_ref() else {
                    return Ok(None);
                };
                ChunkAudio {
                    packets: chunk.packets,
                    time_base: Rational::new(1, aac.rate as i32),
                    parameters: codec::Parameters::from(&aac.encoder),
                    copied: false,
                }
            }
        };
        Ok((!audio.packets.is_empty()).then_some(audio))
    }

    /// Silence from `start_ms` for `duration_ms` in the stream's audio format, encoded by the
    /// stream's own encoder when it has one (so its timeline stays continuous); `None` when the
    /// stream has carried no audio.
    pub fn silence(
        &mut self,
        start_ms: i64,
        duration_ms: u32,
    ) -> Result<Option<ChunkAudio>, MediaError> {
        let Some((rate, layout)) = self.format else {
            return Ok(None);
        };
        let samples = |ms: i64| ms * i64::from(rate) / 1000;
        let (start, end) = (
            samples(start_ms),
            samples(start_ms + i64::from(duration_ms)),
        );
        let mut quiet = frame::Audio::new(ENCODER_FORMAT, AAC_FRAME as usize, layout);
        quiet.set_rate(rate);
        for channel in 0..layout.channels().max(1) as usize {
            quiet.plane_mut::<f32>(channel).fill(0.0);
        }
        // Silence for copied audio comes from an encoder of its own, whose last frames nobody
        // else pushes out.
        let copied = self.encoder.is_none();
        let (aac, parameters) = match (&mut self.encoder, &mut self.silence) {
            (Some(stream_encoder), _) => (stream_encoder, None),
            (None, Some(silence)) => (silence, self.copied_parameters.clone()),
            (None, slot @ None) => (
                slot.insert(AacEncoder::open(&quiet, self.bitrate, self.global_header)?),
                self.copied_parameters.clone(),
            ),
        };
        let mut packets = Vec::new();
        let mut pts = start;
        // An encoder gives its frames back a frame or two late. The silence encoder is fed
        // until what it gave back reaches the end, or the stream's audio would have a hole
        // where the slate ends and the copied audio takes over; the overlap with the next
        // piece of silence is cut there (the encoder's clock), with the next copied packets by
        // the player.
        let covered = |packets: &[Packet]| {
            packets
                .last()
                .and_then(Packet::pts)
                .map_or(i64::MIN, |last| last + AAC_FRAME)
        };
        while pts < end || (copied && covered(&packets) < end && pts < end + 4 * AAC_FRAME) {
            aac.push(&quiet, pts, &mut packets)?;
            pts += AAC_FRAME;
        }
        let audio = ChunkAudio {
            packets,
            time_base: Rational::new(1, aac.rate as i32),
            parameters: parameters.unwrap_or_else(|| codec::Parameters::from(&aac.encoder)),
            copied: false,
        };
        Ok((!audio.packets.is_empty()).then_some(audio))
    }

    fn copy(
        &mut self,
        chunk: &mut ChunkAudioState,
        input: &AudioInput,
        mut packet: Packet,
        clock: &ChunkClock,
    ) {
        let rate = input.decoder.rate();
        let layout = ChannelLayout::default(i32::from(input.decoder.channels()));
        self.format = Some((rate, layout));
        let Some(ts) = packet.pts().or(packet.dts()) else {
            return;
        };
        let mut pts = clock.map(ts, input.time_base, Rational::new(1, rate as i32));
        if let Some((next_rate, next)) = self.copy_next
            && next_rate == rate
            && (pts - next).abs() <= AAC_FRAME / 2
        {
            pts = next;
        }
        self.copy_next = Some((rate, pts + AAC_FRAME));
        if pts < 0 {
            return;
        }
        packet.set_pts(Some(pts));
        packet.set_dts(Some(pts));
        packet.set_duration(AAC_FRAME);
        chunk.packets.push(packet);
    }

    fn receive_frames(
        &mut self,
        chunk: &mut ChunkAudioState,
        input: &mut AudioInput,
        clock: &ChunkClock,
    ) -> Result<(), MediaError> {
        let mut decoded = frame::Audio::empty();
        while input.decoder.receive_frame(&mut decoded).is_ok() {
            if decoded.channel_layout().is_empty() {
                decoded.set_channel_layout(ChannelLayout::default(i32::from(decoded.channels())));
            }
            if self.encoder.is_none() {
                self.encoder = Some(AacEncoder::open(
                    &decoded,
                    self.bitrate,
                    self.global_header,
                )?);
            }
            let aac = self.encoder.as_mut().expect("opened above");
            self.format = Some((aac.rate, aac.layout));
            let Some(ts) = decoded.timestamp().or(decoded.pts()) else {
                continue;
            };
            let pts = clock.map(ts, input.time_base, Rational::new(1, aac.rate as i32));
            aac.push(&decoded, pts, &mut chunk.packets)?;
        }
        Ok(())
    }
}

/// AAC-LC in mono or stereo at a rate AAC signals, with its AudioSpecificConfig out of band:
/// ADTS (MPEG-TS) would need a bitstream filter before an empty moov can describe it.
fn can_copy(input: &AudioInput, first_packet: &[u8]) -> bool {
    let adts = first_packet.len() >= 2 && first_packet[0] == 0xff && first_packet[1] & 0xf0 == 0xf0;
    input.parameters.id() == codec::Id::AAC
        && input.decoder.profile() == codec::Profile::AAC(codec::profile::AAC::Low)
        && (1..=2).contains(&input.decoder.channels())
        && AAC_RATES.contains(&input.decoder.rate())
        && !adts
}

/// The stream's AAC encoder with its resampler and FIFO.
struct AacEncoder {
    encoder: encoder::Audio,
    rate: u32,
    layout: ChannelLayout,
    frame_size: usize,
    /// pts of the next frame sent to the encoder, in samples.
    next_pts: Option<i64>,
    resampler: Option<((Sample, ChannelLayout, u32), resampling::Context)>,
    /// Samples waiting for a whole encoder frame, one Vec per channel.
    fifo: Vec<Vec<f32>>,
}

impl AacEncoder {
    fn open(first: &frame::Audio, bitrate: u32, global_header: bool) -> Result<Self, MediaError> {
        let rate = if AAC_RATES.contains(&first.rate()) {
            first.rate()
        } else {
            48_000
        };
        let layout = if first.channels() >= 2 {
            ChannelLayout::STEREO
        } else {
            ChannelLayout::MONO
        };
        let codec = encoder::find(codec::Id::AAC)
            .ok_or_else(|| MediaError::Ffmpeg("this FFmpeg has no AAC encoder".into()))?;
        let mut audio = codec::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(ffmpeg("allocating the AAC encoder"))?;
        audio.set_rate(rate as i32);
        audio.set_channel_layout(layout);
        audio.set_format(ENCODER_FORMAT);
        audio.set_bit_rate(bitrate as usize);
        audio.set_time_base(Rational::new(1, rate as i32));
        if global_header {
            audio.set_flags(codec::Flags::GLOBAL_HEADER);
        }
        let encoder = audio
            .open_as(codec)
            .map_err(ffmpeg("opening the AAC encoder"))?;
        let frame_size = usize::try_from(encoder.frame_size()).unwrap_or(0).max(1);
        debug!(
            rate,
            channels = layout.channels(),
            "opened the stream's aac encoder"
        );
        Ok(Self {
            encoder,
            rate,
            layout,
            frame_size,
            next_pts: None,
            resampler: None,
            fifo: vec![Vec::new(); layout.channels() as usize],
        })
    }

    /// Queues one decoded frame whose first sample is at `pts` (samples, stream timeline) and
    /// encodes every whole frame the FIFO holds.
    fn push(
        &mut self,
        decoded: &frame::Audio,
        pts: i64,
        out: &mut Vec<Packet>,
    ) -> Result<(), MediaError> {
        let pending = self.fifo[0].len() as i64;
        let rate = i64::from(self.rate);
        let mut skip = 0;
        match self.next_pts.map(|next| pts - (next + pending)) {
            // A jump of a second or more is a discontinuity (reconnect, edited source): the
            // encoder's clock restarts there.
            None => self.next_pts = Some(pts - pending),
            Some(offset) if offset.abs() >= rate => {
                debug!(offset, "audio timeline jump; re-anchoring");
                self.next_pts = Some(pts - pending);
            }
            // Smaller gaps (a frame lost at a chunk boundary) become silence and overlaps are
            // cut, so the audio stays continuous and in sync. 5 ms is timestamp rounding.
            Some(gap) if gap > rate / 200 => {
                for queue in &mut self.fifo {
                    queue.resize(queue.len() + gap as usize, 0.0);
                }
            }
            Some(overlap) if overlap < -rate / 200 => skip = (-overlap) as usize,
            Some(_) => {}
        }
        self.append(decoded, skip)?;
        while self.fifo[0].len() >= self.frame_size {
            let mut frame = frame::Audio::new(ENCODER_FORMAT, self.frame_size, self.layout);
            frame.set_rate(self.rate);
            for (channel, queue) in self.fifo.iter_mut().enumerate() {
                frame.plane_mut::<f32>(channel)[..self.frame_size]
                    .copy_from_slice(&queue[..self.frame_size]);
                queue.drain(..self.frame_size);
            }
            let next = self.next_pts.unwrap_or(0);
            frame.set_pts(Some(next));
            self.next_pts = Some(next + self.frame_size as i64);
            self.encoder
                .send_frame(&frame)
                .map_err(ffmpeg("sending samples to the AAC encoder"))?;
            let mut packets = Vec::new();
            drain_packets(&mut self.encoder, &mut packets)?;
            for mut packet in packets {
                // Only the priming packet of a stream starting at zero lands before zero.
                if packet.pts().is_none_or(|p| p < 0) {
                    continue;
                }
                packet.set_dts(packet.pts());
                if packet.duration() <= 0 {
                    packet.set_duration(self.frame_size as i64);
                }
                out.push(packet);
            }
        }
        Ok(())
    }

    /// Converts `decoded` to the encoder's format, rate and layout and appends it to the FIFO,
    /// less its first `skip` samples.
    fn append(&mut self, decoded: &frame::Audio, skip: usize) -> Result<(), MediaError> {
        let source = (decoded.format(), decoded.channel_layout(), decoded.rate());
        if source == (ENCODER_FORMAT, self.layout, self.rate) {
            let samples = decoded.samples();
            for (channel, queue) in self.fifo.iter_mut().enumerate() {
                queue.extend_from_slice(&decoded.plane::<f32>(channel)[skip.min(samples)..samples]);
            }
            return Ok(());
        }
        if self
            .resampler
            .as_ref()
            .is_none_or(|(key, _)| *key != source)
        {
            let context = resampling::Context::get(
                source.0,
                source.1,
                source.2,
                ENCODER_FORMAT,
                self.layout,
                self.rate,
            )
            .map_err(ffmpeg("creating a resampler"))?;
            self.resampler = Some((source, context));
        }
        let (_, resampler) = self.resampler.as_mut().expect("set above");
        let capacity = decoded.samples() * self.rate as usize / source.2.max(1) as usize + 256;
        let mut converted = frame::Audio::new(ENCODER_FORMAT, capacity, self.layout);
        converted.set_rate(self.rate);
        resampler
            .run(decoded, &mut converted)
            .map_err(ffmpeg("resampling audio"))?;
        for (channel, queue) in self.fifo.iter_mut().enumerate() {
            let samples = converted.samples();
            queue.extend_from_slice(&converted.plane::<f32>(channel)[skip.min(samples)..samples]);
        }
        Ok(())
    }
}
