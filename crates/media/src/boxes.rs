//! A minimal ISO BMFF box walker: enough to split fMP4 output and read sample entries.

/// One box: its four-character type, where it starts, and its payload (after the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Mp4Box<'a> {
    pub kind: [u8; 4],
    pub start: usize,
    pub end: usize,
    pub payload: &'a [u8],
}

/// Iterates the boxes laid end to end in `data`; stops at the first malformed header.
pub(crate) fn boxes(data: &[u8]) -> Boxes<'_> {
    Boxes {
        data,
        offset: 0,
        malformed: false,
    }
}

/// Iterator returned by [`boxes`].
pub(crate) struct Boxes<'a> {
    data: &'a [u8],
    offset: usize,
    malformed: bool,
}

impl Boxes<'_> {
    /// True when iteration stopped early on a header that does not fit.
    pub fn malformed(&self) -> bool {
        self.malformed
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Mp4Box<'a>;

    fn next(&mut self) -> Option<Mp4Box<'a>> {
        let rest = &self.data[self.offset..];
        if rest.is_empty() || self.malformed {
            return None;
        }
        let parsed = parse_header(rest);
        let Some((header_len, box_len, kind)) = parsed else {
            self.malformed = true;
            return None;
        };
        let start = self.offset;
        self.offset += box_len;
        Some(Mp4Box {
            kind,
            start,
            end: self.offset,
            payload: &rest[header_len..box_len],
        })
    }
}

/// Returns (header length, box length, type) when the whole box fits in `data`.
fn parse_header(data: &[u8]) -> Option<(usize, usize, [u8; 4])> {
    let size32 = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?);
    let kind: [u8; 4] = data.get(4..8)?.try_into().ok()?;
    let (header_len, box_len) = match size32 {
        0 => (8, data.len()),
        1 => {
            let size64 = u64::from_be_bytes(data.get(8..16)?.try_into().ok()?);
            (16, usize::try_from(size64).ok()?)
        }
        n => (8, usize::try_from(n).ok()?),
    };
    (box_len >= header_len && box_len <= data.len()).then_some((header_len, box_len, kind))
}

/// The payload of the first child box of type `kind` in `data`.
pub(crate) fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    boxes(data).find(|b| &b.kind == kind).map(|b| b.payload)
}

/// Follows a path of box types from `data`, e.g. `moov/trak`.
pub(crate) fn path<'a>(data: &'a [u8], kinds: &[&[u8; 4]]) -> Option<&'a [u8]> {
    kinds
        .iter()
        .try_fold(data, |inner, kind| child(inner, kind))
}

#[cfg(test)]
pub(crate) fn make_box(kind: &[u8; 4], payload: &[u8]) -> Vec<u8> {
    let mut out = u32::try_from(payload.len() + 8)
        .expect("test boxes are small")
        .to_be_bytes()
        .to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(payload);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_boxes_in_order() {
        let mut data = make_box(b"ftyp", b"isom");
        data.extend(make_box(b"moov", &make_box(b"trak", b"")));
        let kinds: Vec<[u8; 4]> = boxes(&data).map(|b| b.kind).collect();
        assert_eq!(kinds, vec![*b"ftyp", *b"moov"]);
        assert_eq!(path(&data, &[b"moov", b"trak"]), Some(&b""[..]));
    }

    #[test]
    fn large_size_and_to_end_boxes() {
        let mut data = vec![0, 0, 0, 1];
        data.extend_from_slice(b"mdat");
        data.extend_from_slice(&20u64.to_be_bytes());
        data.extend_from_slice(b"abcd");
        data.extend_from_slice(&[0, 0, 0, 0]);
        data.extend_from_slice(b"free");
        data.extend_from_slice(b"xyz");
        let all: Vec<Mp4Box> = boxes(&data).collect();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].payload, b"abcd");
        assert_eq!(all[1].payload, b"xyz");
    }

    #[test]
    fn truncated_boxes_stop_the_walk() {
        let mut data = make_box(b"ftyp", b"isom");
        data.extend_from_slice(&[0, 0, 1, 0, b'm', b'o', b'o', b'v']);
        let mut walk = boxes(&data);
        assert_eq!(walk.by_ref().count(), 1);
        assert!(walk.malformed());
        assert_eq!(boxes(&[0, 0, 0, 4, b'a', b'b', b'c', b'd']).count(), 0);
    }
}
