//! RFC 6381 `CODECS` strings, read from what the encoders actually produced.
//!
//! The strings come from the sample entries of an fMP4 init segment: the `avcC` record the
//! muxer copied from the H.264 encoder's extradata (profile, constraint flags and level of the
//! SPS) and the AudioSpecificConfig in `esds` (AAC object type). Guessing them from the settings
//! would drift the day an encoder picks another level.

use crate::boxes::{self, child, path};

/// `avc1.PPCCLL` from an `avcC` record (AVCDecoderConfigurationRecord).
pub fn avc1_from_avcc(avcc: &[u8]) -> Option<String> {
    match avcc {
        [1, profile, constraints, level, ..] => {
            Some(format!("avc1.{profile:02x}{constraints:02x}{level:02x}"))
        }
        _ => None,
    }
}

/// `mp4a.40.N` (N = AAC audio object type) or `mp4a.OO` from an `esds` box payload.
pub fn mp4a_from_esds(esds: &[u8]) -> Option<String> {
    // A full box: version and flags first.
    let es = find_descriptor(esds.get(4..)?, 0x03)?;
    let flags = *es.get(2)?;
    let mut at = 3;
    if flags & 0x80 != 0 {
        at += 2;
    }
    if flags & 0x40 != 0 {
        at += 1 + usize::from(*es.get(at)?);
    }
    if flags & 0x20 != 0 {
        at += 2;
    }
    let config = find_descriptor(es.get(at..)?, 0x04)?;
    let object_type_indication = *config.first()?;
    if object_type_indication != 0x40 {
        return Some(format!("mp4a.{object_type_indication:02x}"));
    }
    let specific = find_descriptor(config.get(13..)?, 0x05)?;
    let first = *specific.first()?;
    let mut audio_object_type = first >> 3;
    if audio_object_type == 31 {
        let second = *specific.get(1)?;
        audio_object_type = 32 + (((first & 0x07) << 3) | (second >> 5));
    }
    Some(format!("mp4a.40.{audio_object_type}"))
}

/// The CODECS value for an init segment: one entry per track, in track order, comma-separated.
pub fn from_init_segment(init: &[u8]) -> Option<String> {
    let moov = child(init, b"moov")?;
    let mut codecs = Vec::new();
    for trak in boxes::boxes(moov).filter(|b| &b.kind == b"trak") {
        let stsd = path(trak.payload, &[b"mdia", b"minf", b"stbl", b"stsd"])?;
        // Version, flags and entry count, then the sample entries.
        let entry = boxes::boxes(stsd.get(8..)?).next()?;
        let codec = match &entry.kind {
            b"avc1" | b"avc3" => {
                let name = String::from_utf8_lossy(&entry.kind).into_owned();
                let avcc = child(entry.payload.get(78..)?, b"avcC")?;
                avc1_from_avcc(avcc).map(|c| c.replacen("avc1", &name, 1))?
            }
            b"mp4a" => mp4a_from_esds(child(entry.payload.get(28..)?, b"esds")?)?,
            _ => return None,
        };
        codecs.push(codec);
    }
    (!codecs.is_empty()).then(|| codecs.join(","))
}

/// Finds descriptor `tag` among the descriptors in `data` and returns its body.
fn find_descriptor(mut data: &[u8], tag: u8) -> Option<&[u8]> {
    while let Some((&this_tag, rest)) = data.split_first() {
        let mut len = 0usize;
        let mut used = 0;
        loop {
            let byte = *rest.get(used)?;
            used += 1;
            len = (len << 7) | usize::from(byte & 0x7f);
            if byte & 0x80 == 0 || used == 4 {
                break;
            }
        }
        let body = rest.get(used..used + len)?;
        if this_tag == tag {
            return Some(body);
        }
        data = &rest[used + len..];
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boxes::make_box;

    /// An esds payload as FFmpeg writes it for AAC-LC stereo 48 kHz (ASC 0x11 0x90).
    fn esds_payload(asc: &[u8], oti: u8) -> Vec<u8> {
        let mut decoder_config = vec![oti, 0x15, 0, 0, 0, 0, 1, 0xf4, 0, 0, 1, 0xf4, 0];
        decoder_config.push(0x05);
        decoder_config.extend([0x80, 0x80, 0x80, u8::try_from(asc.len()).unwrap()]);
        decoder_config.extend_from_slice(asc);
        let mut es = vec![0, 1, 0, 0x04, u8::try_from(decoder_config.len()).unwrap()];
        es.extend(decoder_config);
        es.extend([0x06, 1, 2]);
        let mut out = vec![0, 0, 0, 0, 0x03, u8::try_from(es.len()).unwrap()];
        out.extend(es);
        out
    }

    #[test]
    fn avc1_uses_profile_constraints_and_level() {
        assert_eq!(
            avc1_from_avcc(&[1, 0x64, 0x00, 0x1f, 0xff]).as_deref(),
            Some("avc1.64001f")
        );
        assert_eq!(
            avc1_from_avcc(&[1, 0x42, 0xc0, 0x1e]).as_deref(),
            Some("avc1.42c01e")
        );
        assert_eq!(avc1_from_avcc(&[0, 0x64, 0, 0x1f]), None);
        assert_eq!(avc1_from_avcc(&[1, 0x64]), None);
    }

    #[test]
    fn mp4a_reads_the_audio_object_type() {
        assert_eq!(
            mp4a_from_esds(&esds_payload(&[0x11, 0x90], 0x40)).as_deref(),
            Some("mp4a.40.2")
        );
        // HE-AAC signalled explicitly: object type 5.
        assert_eq!(
            mp4a_from_esds(&esds_payload(&[0x2b, 0x92], 0x40)).as_deref(),
            Some("mp4a.40.5")
        );
        // Escaped object type: 31 then 6 bits (32 + 10 = 42, USAC).
        assert_eq!(
            mp4a_from_esds(&esds_payload(&[0xf9, 0x40], 0x40)).as_deref(),
            Some("mp4a.40.42")
        );
        assert_eq!(
            mp4a_from_esds(&esds_payload(&[], 0x6b)).as_deref(),
            Some("mp4a.6b")
        );
        assert_eq!(mp4a_from_esds(&[0, 0, 0, 0, 0x03, 0x40]), None);
        assert_eq!(mp4a_from_esds(&[]), None);
    }

    #[test]
    fn reads_every_track_of_an_init_segment() {
        let avc1_entry = {
            let mut payload = vec![0u8; 78];
            payload.extend(make_box(b"avcC", &[1, 0x64, 0, 0x1f, 0xff, 0xe1]));
            make_box(b"avc1", &payload)
        };
        let mp4a_entry = {
            let mut payload = vec![0u8; 28];
            payload.extend(make_box(b"esds", &esds_payload(&[0x11, 0x90], 0x40)));
            make_box(b"mp4a", &payload)
        };
        let trak = |entry: Vec<u8>| {
            let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
            stsd.extend(entry);
            let stbl = make_box(b"stbl", &make_box(b"stsd", &stsd));
            make_box(b"trak", &make_box(b"mdia", &make_box(b"minf", &stbl)))
        };
        let mut moov = make_box(b"mvhd", &[0; 100]);
        moov.extend(trak(avc1_entry));
        moov.extend(trak(mp4a_entry));
        let mut init = make_box(b"ftyp", b"isom\0\0\0\0");
        init.extend(make_box(b"moov", &moov));
        assert_eq!(
            from_init_segment(&init).as_deref(),
            Some("avc1.64001f,mp4a.40.2")
        );
        assert_eq!(from_init_segment(b"garbage"), None);
    }
}

#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Muxer output is ours, but a parser must still never panic on any bytes.
        #[test]
        fn parsers_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = from_init_segment(&data);
            let _ = mp4a_from_esds(&data);
            let _ = avc1_from_avcc(&data);
            let _ = crate::mux::split(&data);
            let _ = crate::encode_video::parse_x264_options(&data);
        }

        #[test]
        fn avc1_strings_are_three_hex_bytes(profile: u8, constraints: u8, level: u8) {
            let codec = avc1_from_avcc(&[1, profile, constraints, level]).expect("valid record");
            prop_assert_eq!(codec.len(), "avc1.".len() + 6);
            prop_assert_eq!(u8::from_str_radix(&codec[5..7], 16).ok(), Some(profile));
            prop_assert_eq!(u8::from_str_radix(&codec[9..11], 16).ok(), Some(level));
        }
    }
}
