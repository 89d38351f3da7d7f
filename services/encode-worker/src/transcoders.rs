//! One transcoder per live stream on this worker, and how far behind real time it runs: its
//! audio encoder and timeline carry across chunks, whichever path (a chunk followed live, or one
//! read from the store) makes the next, and so does the number of top rungs it leaves out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livecast_core::{Error, StreamId};
use livecast_media::{Ladder, StreamTranscoder, TranscodeOptions};

use crate::load::Load;
use crate::metrics;

struct Stream {
    transcoder: Arc<Mutex<StreamTranscoder>>,
    load: Load,
    /// The video rungs fitted to the stream, as last seen: the transcoder is busy with the
    /// next chunk more often than not when a chunk's lag comes in.
    rungs: usize,
}

/// The transcoders of the streams this worker encodes.
pub(crate) struct Transcoders {
    ladder: Ladder,
    options: TranscodeOptions,
    streams: Mutex<HashMap<StreamId, Stream>>,
}

impl Transcoders {
    pub fn new(ladder: Ladder, options: TranscodeOptions) -> Self {
        Transcoders {
            ladder,
            options,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// The names of the ladder's video rungs, as configured.
    pub fn ladder_rungs(&self) -> Vec<String> {
        self.ladder
            .rungs
            .iter()
            .map(|rung| rung.name.clone())
            .collect()
    }

    /// The stream's transcoder, made when it has none.
    pub fn get(&self, stream: &StreamId) -> Result<Arc<Mutex<StreamTranscoder>>, Error> {
        let mut streams = self.streams();
        if let Some(existing) = streams.get(stream) {
            return Ok(existing.transcoder.clone());
        }
        let transcoder =
            StreamTranscoder::new(self.ladder.clone(), self.options.clone()).map_err(|e| {
                Error::internal(format!("cannot build the transcoder: {e}")).with_source(e)
            })?;
        let transcoder = Arc::new(Mutex::new(transcoder));
        let part_target = Duration::from_millis(u64::from(self.options.part_target_ms));
        let entry = Stream {
            transcoder: transcoder.clone(),
            load: Load::new(part_target),
            rungs: 0,
        };
        streams.insert(stream.clone(), entry);
        Ok(transcoder)
    }

    /// The stream's transcoder, set to leave out as many top rungs as its pace asks (none when
    /// `paced` is false: a standby makes every rung).
    pub fn for_next_chunk(
        &self,
        stream: &StreamId,
        paced: bool,
    ) -> Result<Arc<Mutex<StreamTranscoder>>, Error> {
        let transcoder = self.get(stream)?;
        let shed = match paced {
            true => self.streams().get(stream).map_or(0, |s| s.load.shed()),
            false => 0,
        };
        transcoder
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .shed_top_rungs(shed);
        Ok(transcoder)
    }

    /// Chunk `seq` of `stream` was made `lag` behind real time: paces the chunks to come.
    pub fn chunk_made(&self, stream: &StreamId, seq: u64, lag: Duration) {
        let mut streams = self.streams();
        let Some(entry) = streams.get_mut(stream) else {
            return;
        };
        if let Ok(transcoder) = entry.transcoder.try_lock() {
            entry.rungs = transcoder.video_rungs().len();
        }
        tracing::debug!(stream_id = %stream, seq, lag_ms = lag.as_millis() as u64, "chunk made");
        if let Some(shed) = entry.load.chunk_made(lag, entry.rungs) {
            let direction = if shed { "shed" } else { "restored" };
            metrics::shed_change(direction);
            tracing::info!(stream_id = %stream, seq, lag_ms = lag.as_millis() as u64,
                top_rungs_left_out = entry.load.shed(), "encoding {direction} a top rung");
        }
    }

    /// Forgets the stream's transcoder: the stream ended, or its next chunk must start afresh
    /// (a reconnect may change the source's codecs or size; a chunk given in part moved the
    /// audio state on).
    pub fn remove(&self, stream: &StreamId) {
        self.streams().remove(stream);
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Stream>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}
