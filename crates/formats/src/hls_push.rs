//! HLS push, as `ffmpeg -f hls -method PUT` sends it: which files a broadcaster may put, and
//! what its media playlists say about the segments.

use livecast_core::Error;

/// What kind of file a push carries, by its extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushedFile {
    /// A media playlist (`.m3u8`).
    Playlist,
    /// An MPEG-TS segment (`.ts`).
    TsSegment,
    /// A fragmented MP4 media segment (`.m4s`).
    Fmp4Segment,
    /// A fragmented MP4 init segment (`.mp4`).
    Fmp4Init,
}

/// What a pushed media playlist says.
#[derive(Debug, PartialEq)]
pub struct PushedPlaylist {
    /// Segment file names with their durations in milliseconds, in order.
    pub segments: Vec<(String, u32)>,
    /// Whether `#EXT-X-ENDLIST` is present.
    pub ended: bool,
}

/// Whether `key` can be a stream key at all (checked before asking the catalogue).
pub fn plausible_key(key: &str) -> bool {
    (1..=128).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The kind of a pushed file, or an invalid-argument error naming what is wrong with its name.
pub fn classify(file: &str) -> Result<PushedFile, Error> {
    livecast_core::ids::validate_id("file name", file)?;
    let extension = file.rsplit_once('.').map(|(_, e)| e).unwrap_or_default();
    match extension {
        "m3u8" => Ok(PushedFile::Playlist),
        "ts" => Ok(PushedFile::TsSegment),
        "m4s" => Ok(PushedFile::Fmp4Segment),
        "mp4" => Ok(PushedFile::Fmp4Init),
        other => Err(Error::invalid(format!(
            "cannot ingest {file:?}: .{other} is not an HLS playlist (.m3u8) or segment (.ts, .m4s, .mp4)"
        ))),
    }
}

/// Reads a pushed media playlist; an error for text that is not one.
pub fn parse_playlist(text: &str) -> Result<PushedPlaylist, Error> {
    let mut lines = text.lines().map(str::trim);
    if lines.next() != Some("#EXTM3U") {
        return Err(Error::invalid("playlist does not start with #EXTM3U"));
    }
    let mut segments = Vec::new();
    let mut ended = false;
    let mut duration: Option<u32> = None;
    for line in lines {
        if let Some(value) = line.strip_prefix("#EXTINF:") {
            let seconds: f64 = value
                .split(',')
                .next()
                .and_then(|v| v.trim().parse().ok())
                .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 3600.0)
                .ok_or_else(|| Error::invalid(format!("bad #EXTINF line {line:?}")))?;
            duration = Some((seconds * 1000.0).round() as u32);
        } else if line == "#EXT-X-ENDLIST" {
            ended = true;
        } else if !line.is_empty() && !line.starts_with('#') {
            let name = line.split(['?', '#']).next().unwrap_or(line);
            let name = name.rsplit('/').next().unwrap_or(name);
            if let Some(duration) = duration.take() {
                segments.push((name.to_string(), duration));
            }
        }
    }
    Ok(PushedPlaylist { segments, ended })
}

#[cfg(test)]
mod tests {
    use super::*;
    use livecast_core::ErrorKind;
    use proptest::prelude::*;

    #[test]
    fn ffmpeg_playlists_are_read_in_order() {
        let text = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:4\n\
                    #EXTINF:2.002000,\nindex4.ts\n#EXTINF:1.500000,\nhttp://h/ingest/k/index5.ts?x=1\n\
                    #EXT-X-ENDLIST\n";
        let playlist = parse_playlist(text).unwrap();
        assert_eq!(
            playlist.segments,
            vec![("index4.ts".into(), 2002), ("index5.ts".into(), 1500)]
        );
        assert!(playlist.ended);
    }

    #[test]
    fn bad_playlists_and_names_are_client_errors() {
        assert!(parse_playlist("not a playlist").is_err());
        assert!(parse_playlist("#EXTM3U\n#EXTINF:abc,\nx.ts\n").is_err());
        assert!(parse_playlist("#EXTM3U\n#EXTINF:-1,\nx.ts\n").is_err());
        for bad in ["../index.m3u8", "a/b.ts", "clip.exe", "", ".ts"] {
            assert_eq!(
                classify(bad).unwrap_err().kind,
                ErrorKind::InvalidArgument,
                "{bad}"
            );
        }
        assert_eq!(classify("index12.ts").unwrap(), PushedFile::TsSegment);
        assert_eq!(classify("init.mp4").unwrap(), PushedFile::Fmp4Init);
        assert!(!plausible_key("../k") && !plausible_key("") && plausible_key("lck_abc"));
    }

    proptest! {
        #[test]
        fn playlist_parsing_never_panics(text in "\\PC{0,400}") {
            let _ = parse_playlist(&format!("#EXTM3U\n{text}"));
            let _ = parse_playlist(&text);
        }
    }
}
