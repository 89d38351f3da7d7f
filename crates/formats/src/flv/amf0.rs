//! The `onMetaData` script tag body, encoded in AMF0.

use bytes::{BufMut, Bytes, BytesMut};

/// One `onMetaData` property value.
#[derive(Debug, Clone, PartialEq)]
pub enum ScriptValue {
    /// AMF0 number.
    Number(f64),
    /// AMF0 boolean.
    Boolean(bool),
    /// AMF0 string.
    String(String),
}

const MARKER_NUMBER: u8 = 0x00;
const MARKER_BOOLEAN: u8 = 0x01;
const MARKER_STRING: u8 = 0x02;
const MARKER_ECMA_ARRAY: u8 = 0x08;
const MARKER_LONG_STRING: u8 = 0x0C;
const OBJECT_END: [u8; 3] = [0x00, 0x00, 0x09];

/// The body of an `onMetaData` script tag: the name, then the properties as an ECMA array
/// (what FLV writers, ffmpeg's included, produce). Properties whose name does not fit AMF0's
/// 16-bit length are skipped.
pub fn on_metadata(properties: &[(&str, ScriptValue)]) -> Bytes {
    let mut out = BytesMut::new();
    put_string(&mut out, "onMetaData");
    let kept: Vec<_> = properties
        .iter()
        .filter(|(name, _)| name.len() <= usize::from(u16::MAX))
        .collect();
    out.put_u8(MARKER_ECMA_ARRAY);
    out.put_u32(kept.len() as u32);
    for (name, value) in kept {
        out.put_u16(name.len() as u16);
        out.put_slice(name.as_bytes());
        match value {
            ScriptValue::Number(number) => {
                out.put_u8(MARKER_NUMBER);
                out.put_f64(*number);
            }
            ScriptValue::Boolean(flag) => {
                out.put_u8(MARKER_BOOLEAN);
                out.put_u8(u8::from(*flag));
            }
            ScriptValue::String(text) => put_string(&mut out, text),
        }
    }
    out.put_slice(&OBJECT_END);
    out.freeze()
}

fn put_string(out: &mut BytesMut, text: &str) {
    match u16::try_from(text.len()) {
        Ok(len) => {
            out.put_u8(MARKER_STRING);
            out.put_u16(len);
        }
        Err(_) => {
            out.put_u8(MARKER_LONG_STRING);
            out.put_u32(u32::try_from(text.len()).unwrap_or(u32::MAX));
        }
    }
    let len = text.len().min(u32::MAX as usize);
    out.put_slice(&text.as_bytes()[..len]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_name_and_ecma_array() {
        let body = on_metadata(&[
            ("width", ScriptValue::Number(640.0)),
            ("stereo", ScriptValue::Boolean(true)),
            ("encoder", ScriptValue::String("x".into())),
        ]);
        let mut expected = vec![0x02, 0x00, 0x0A];
        expected.extend_from_slice(b"onMetaData");
        expected.extend_from_slice(&[0x08, 0, 0, 0, 3]);
        expected.extend_from_slice(&[0, 5]);
        expected.extend_from_slice(b"width");
        expected.push(0x00);
        expected.extend_from_slice(&640.0f64.to_be_bytes());
        expected.extend_from_slice(&[0, 6]);
        expected.extend_from_slice(b"stereo");
        expected.extend_from_slice(&[0x01, 1]);
        expected.extend_from_slice(&[0, 7]);
        expected.extend_from_slice(b"encoder");
        expected.extend_from_slice(&[0x02, 0, 1, b'x']);
        expected.extend_from_slice(&[0, 0, 9]);
        assert_eq!(&body[..], &expected[..]);
    }
}
