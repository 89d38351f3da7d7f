//! Muxing one rendition of one chunk as CMAF-style fragmented MP4: init + one media segment.
//!
//! Each chunk gets its own mp4 muxer writing to memory with `empty_moov` (the init segment
//! describes no samples, so it is the same for every chunk of a rendition) and `frag_custom`
//! (one `moof`+`mdat` for the whole chunk, written at the trailer). `frag_discont` with edit
//! lists off and negative-timestamp shifting off makes each track's `tfdt` the first packet's
//! timestamp: the stream-timeline position of the chunk, not zero. The output is then split at
//! the top level: everything up to the `moov` is the init segment, the fragments are the media
//! segment (the `mfra` index is not written).

use std::{
    io::Write,
    sync::{Arc, Mutex, PoisonError},
};

use bytes::Bytes;
use ffmpeg_next::{
    Dictionary, Packet, Rational, codec, encoder, format, format::context::StreamIo,
};

use crate::{MediaError, boxes::boxes, error::ffmpeg, timeline::rescale};

/// One track to mux: codec parameters and packets with timestamps in `time_base`.
pub(crate) struct Track<'a> {
    pub parameters: codec::Parameters,
    pub time_base: Rational,
    pub packets: &'a [Packet],
}

/// A rendition's init segment and media segment.
#[derive(Debug, Clone)]
pub(crate) struct Fragmented {
    pub init: Bytes,
    pub media: Bytes,
}

const MOVFLAGS: &str = "empty_moov+frag_custom+default_base_moof+frag_discont+skip_trailer";

/// Whether encoders must put their headers out of band for the mp4 muxer (they must, but the
/// muxer says so itself; asked before any encoder is opened).
pub(crate) fn mp4_wants_global_header() -> Result<bool, MediaError> {
    let io = StreamIo::from_write(std::io::sink()).map_err(ffmpeg("creating a null writer"))?;
    let output =
        format::output_to_stream(io, None, Some("mp4")).map_err(ffmpeg("finding the mp4 muxer"))?;
    Ok(output
        .format()
        .flags()
        .contains(format::Flags::GLOBAL_HEADER))
}

/// Muxes `tracks` (in that track order) into one init and one media segment.
pub(crate) fn fragment(tracks: &[Track]) -> Result<Fragmented, MediaError> {
    let sink = SharedBuffer::default();
    {
        let io =
            StreamIo::from_write(sink.clone()).map_err(ffmpeg("creating the output writer"))?;
        let mut output = format::output_to_stream(io, None, Some("mp4"))
            .map_err(ffmpeg("creating the mp4 muxer"))?;
        for track in tracks {
            let mut stream = output
                .add_stream(encoder::find(codec::Id::None))
                .map_err(ffmpeg("adding a stream"))?;
            stream.set_parameters(track.parameters.clone());
            stream.set_time_base(track.time_base);
        }

        let mut options = Dictionary::new();
        options.set("movflags", MOVFLAGS);
        options.set("use_editlist", "0");
        options.set("avoid_negative_ts", "disabled");
        let ignored: Vec<String> = output
            .write_header_with(options)
            .map_err(ffmpeg("writing the mp4 header"))?
            .iter()
            .map(|(key, _)| key.to_string())
            .collect();
        if !ignored.is_empty() {
            return Err(MediaError::Ffmpeg(format!(
                "the mp4 muxer ignored options {ignored:?}"
            )));
        }

        // Muxers may change the time bases in write_header: read them only now.
        let out_bases: Vec<Rational> = output.streams().map(|s| s.time_base()).collect();
        for (index, track, packet) in interleave(tracks) {
            let mut packet = packet.clone();
            packet.rescale_ts(track.time_base, out_bases[index]);
            packet.set_stream(index);
            packet.set_position(-1);
            packet
                .write_interleaved(&mut output)
                .map_err(ffmpeg("writing a packet"))?;
        }
        output
            .write_trailer()
            .map_err(ffmpeg("writing the mp4 trailer"))?;
    }
    split(&sink.take())
}

/// Packets of all tracks in decode-time order (ties: track order).
fn interleave<'a>(tracks: &'a [Track<'a>]) -> Vec<(usize, &'a Track<'a>, &'a Packet)> {
    let micros = Rational::new(1, 1_000_000);
    let mut all: Vec<(i64, usize, &Track, &Packet)> = tracks
        .iter()
        .enumerate()
        .flat_map(|(index, track)| {
            track.packets.iter().map(move |packet| {
                let dts = packet.dts().or(packet.pts()).unwrap_or(0);
                (rescale(dts, track.time_base, micros), index, track, packet)
            })
        })
        .collect();
    all.sort_by_key(|(time, index, ..)| (*time, *index));
    all.into_iter()
        .map(|(_, index, track, packet)| (index, track, packet))
        .collect()
}

/// Splits muxer output into the init segment (through `moov`) and the media segment.
pub(crate) fn split(data: &[u8]) -> Result<Fragmented, MediaError> {
    let mut walk = boxes(data);
    let mut init_end = None;
    let mut media = Vec::with_capacity(data.len());
    let mut saw_moof = false;
    for b in walk.by_ref() {
        match &b.kind {
            b"moov" => init_end = Some(b.end),
            b"mfra" => {}
            _ if init_end.is_none() => {}
            kind => {
                saw_moof |= kind == b"moof";
                media.extend_from_slice(&data[b.start..b.end]);
            }
        }
    }
    let bad = |what: &str| MediaError::Ffmpeg(format!("muxer output {what}"));
    if walk.malformed() {
        return Err(bad("has a truncated box"));
    }
    let init_end = init_end.ok_or_else(|| bad("has no moov"))?;
    if !saw_moof {
        return Err(bad("has no fragment"));
    }
    Ok(Fragmented {
        init: Bytes::copy_from_slice(&data[..init_end]),
        media: Bytes::from(media),
    })
}

/// A writer the muxer owns while we keep a handle to read the bytes back.
#[derive(Clone, Default)]
struct SharedBuffer(Arc<Mutex<Vec<u8>>>);

impl SharedBuffer {
    fn take(&self) -> Vec<u8> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Write for SharedBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::make_box;

    #[test]
    fn splits_init_from_media() {
        let mut data = make_box(b"ftyp", b"iso5");
        data.extend(make_box(b"moov", b"tracks"));
        data.extend(make_box(b"moof", b"fragment"));
        data.extend(make_box(b"mdat", b"samples"));
        data.extend(make_box(b"mfra", b"index"));
        let split = split(&data).expect("split");
        assert_eq!(split.init.len(), 12 + 14);
        assert_eq!(&split.media[4..8], b"moof");
        assert_eq!(split.media.len(), 16 + 15);
    }

    #[test]
    fn refuses_output_without_moov_or_fragment() {
        assert!(split(&make_box(b"moof", b"")).is_err());
        let mut data = make_box(b"ftyp", b"iso5");
        data.extend(make_box(b"moov", b""));
        assert!(split(&data).is_err());
        data.extend_from_slice(&[0, 0, 0, 99, b'm', b'o', b'o', b'f']);
        assert!(split(&data).is_err());
    }
}
