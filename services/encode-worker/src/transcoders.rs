//! One transcoder per live stream on this worker: its audio encoder and timeline carry across
//! chunks, whichever path (a chunk followed live, or one read from the store) makes the next.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use livecast_core::{Error, StreamId};
use livecast_media::{Ladder, StreamTranscoder, TranscodeOptions};

/// The transcoders of the streams this worker encodes.
pub(crate) struct Transcoders {
    ladder: Ladder,
    options: TranscodeOptions,
    streams: Mutex<HashMap<StreamId, Arc<Mutex<StreamTranscoder>>>>,
}

impl Transcoders {
    pub fn new(ladder: Ladder, options: TranscodeOptions) -> Self {
        Transcoders {
            ladder,
            options,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// The stream's transcoder, made when it has none.
    pub fn get(&self, stream: &StreamId) -> Result<Arc<Mutex<StreamTranscoder>>, Error> {
        let mut streams = self.streams();
        if let Some(existing) = streams.get(stream) {
            return Ok(existing.clone());
        }
        let transcoder =
            StreamTranscoder::new(self.ladder.clone(), self.options.clone()).map_err(|e| {
                Error::internal(format!("cannot build the transcoder: {e}")).with_source(e)
            })?;
        let transcoder = Arc::new(Mutex::new(transcoder));
        streams.insert(stream.clone(), transcoder.clone());
        Ok(transcoder)
    }

    /// Forgets the stream's transcoder: the stream ended, or its next chunk must start afresh
    /// (a reconnect may change the source's codecs or size; a chunk given in part moved the
    /// audio state on).
    pub fn remove(&self, stream: &StreamId) {
        self.streams().remove(stream);
    }

    fn streams(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<StreamId, Arc<Mutex<StreamTranscoder>>>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }
}
