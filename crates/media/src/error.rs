//! The one error type of the crate.

/// Why a chunk could not be transcoded.
///
/// [`MediaError::Undecodable`] and [`MediaError::NoMedia`] are the broadcaster's fault: retrying the
/// same bytes gives the same answer, so a worker should record the chunk as bad and move on.
/// [`MediaError::Ffmpeg`] and [`MediaError::Io`] are ours and may be retried.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The bytes are not media FFmpeg can demux and decode (garbage, truncated, unknown codec).
    #[error("source chunk is undecodable: {reason}")]
    Undecodable {
        /// What was wrong, in words a broadcaster can act on.
        reason: String,
    },
    /// The container parsed but holds neither a video nor an audio stream.
    #[error("source chunk has no audio or video stream")]
    NoMedia,
    /// The ladder, the options or the call cannot work (empty ladder, zero bitrate, duplicate
    /// names, a negative chunk start).
    #[error("invalid transcoder configuration: {0}")]
    Config(String),
    /// FFmpeg failed while encoding or muxing a well-formed input.
    #[error("ffmpeg: {0}")]
    Ffmpeg(String),
    /// Reading the chunk or writing a temporary file failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

impl MediaError {
    /// True when the input itself is bad, so retrying cannot help.
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::Undecodable { .. } | Self::NoMedia)
    }

    pub(crate) fn undecodable(reason: impl Into<String>) -> Self {
        Self::Undecodable {
            reason: reason.into(),
        }
    }
}

/// Wraps an FFmpeg error with what we were doing, for `map_err`.
pub(crate) fn ffmpeg(doing: &'static str) -> impl FnOnce(ffmpeg_next::Error) -> MediaError {
    move |e| MediaError::Ffmpeg(format!("{doing}: {e}"))
}
