//! Box-level primitives both ways: writing boxes and big-endian fields, and walking boxes
//! and reading fields with every access bounds-checked.

use super::Mp4Error;

/// Run-length encodes `values` as (count, value) pairs, as stts and ctts store them.
pub(super) fn runs(values: &[u32]) -> Vec<(u32, u32)> {
    let mut out: Vec<(u32, u32)> = Vec::new();
    for &v in values {
        match out.last_mut() {
            // Counts stay below MAX_SAMPLES, which write checked.
            Some((n, value)) if *value == v => *n = n.saturating_add(1),
            _ => out.push((1, v)),
        }
    }
    out
}

pub(super) fn count(len: usize) -> Result<u32, Mp4Error> {
    u32::try_from(len).map_err(|_| Mp4Error::TooLarge("table"))
}

pub(super) fn rescale(ticks: u64, from: u32, to: u32) -> Result<u64, Mp4Error> {
    if from == 0 {
        return Err(Mp4Error::Malformed("zero timescale"));
    }
    let scaled = u128::from(ticks) * u128::from(to) / u128::from(from);
    u64::try_from(scaled).map_err(|_| Mp4Error::Malformed("timestamp out of range"))
}

/// Appends a box of type `kind` whose body `body` writes, then fills in its size.
pub(super) fn boxed(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    let start = out.len();
    out.u32(0);
    out.extend_from_slice(kind);
    body(out)?;
    let size = u32::try_from(out.len() - start).map_err(|_| Mp4Error::TooLarge("box"))?;
    if let Some(field) = out.get_mut(start..start + 4) {
        field.copy_from_slice(&size.to_be_bytes());
    }
    Ok(())
}

/// A "full box": one version byte and 24 bits of flags before the body.
pub(super) fn full_box(
    out: &mut Vec<u8>,
    kind: &[u8; 4],
    version: u8,
    flags: u32,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), Mp4Error>,
) -> Result<(), Mp4Error> {
    boxed(out, kind, |o| {
        o.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        body(o)
    })
}

/// Big-endian field writers.
pub(super) trait Put {
    fn u8(&mut self, v: u8);
    fn u16(&mut self, v: u16);
    fn u32(&mut self, v: u32);
    fn u64(&mut self, v: u64);
    fn zeros(&mut self, n: usize);
}

impl Put for Vec<u8> {
    fn u8(&mut self, v: u8) {
        self.push(v);
    }
    fn u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn zeros(&mut self, n: usize) {
        self.resize(self.len() + n, 0);
    }
}

/// Reads a table's entry count and returns it with a cursor over exactly its entries,
/// refusing a count the box cannot hold before anything is allocated for it.
pub(super) fn table<'a>(
    c: &mut Cursor<'a>,
    entry_len: usize,
    what: &'static str,
) -> Result<(usize, Cursor<'a>), Mp4Error> {
    let entries = usize::try_from(c.u32(what)?).map_err(|_| Mp4Error::Truncated(what))?;
    let len = entries
        .checked_mul(entry_len)
        .ok_or(Mp4Error::Truncated(what))?;
    Ok((entries, Cursor::new(c.bytes(len, what)?)))
}

/// The body of the first child box of type `kind` in `parent`'s body, if any.
pub(super) fn child<'a>(
    parent: &'a [u8],
    kind: &'static str,
) -> Result<Option<&'a [u8]>, Mp4Error> {
    for b in Boxes::new(parent) {
        let b = b?;
        if b.kind.as_slice() == kind.as_bytes() {
            return Ok(Some(b.body));
        }
    }
    Ok(None)
}

pub(super) fn require<'a>(parent: &'a [u8], kind: &'static str) -> Result<&'a [u8], Mp4Error> {
    child(parent, kind)?.ok_or(Mp4Error::MissingBox(kind))
}

/// One box: its type and its body (after the header).
pub(super) struct Mp4Box<'a> {
    pub(super) kind: [u8; 4],
    pub(super) body: &'a [u8],
}

/// The boxes in a container's body, in order. After an error it yields nothing more.
pub(super) struct Boxes<'a> {
    rest: &'a [u8],
}

impl<'a> Boxes<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        Self { rest: body }
    }

    pub(super) fn split(data: &'a [u8]) -> Result<(Mp4Box<'a>, &'a [u8]), Mp4Error> {
        let mut c = Cursor::new(data);
        let size = c.u32("box header")?;
        let kind = c.array::<4>("box header")?;
        let size = match size {
            // Size 0: the box runs to the end of its container (the file, at the top level).
            0 => data.len(),
            1 => usize::try_from(c.u64("box header")?).unwrap_or(usize::MAX),
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        if &kind == b"uuid" {
            c.skip(16, "box header")?; // extended type
        }
        if size < c.pos {
            return Err(Mp4Error::Malformed("box smaller than its header"));
        }
        let body = data
            .get(c.pos..size)
            .ok_or(Mp4Error::Malformed("box overruns its container"))?;
        let rest = data.get(size..).unwrap_or_default();
        Ok((Mp4Box { kind, body }, rest))
    }
}

impl<'a> Iterator for Boxes<'a> {
    type Item = Result<Mp4Box<'a>, Mp4Error>;

    fn next(&mut self) -> Option<Self::Item> {
        // Some QuickTime writers end a container with a 32-bit zero terminator.
        if self.rest.is_empty() || self.rest == [0; 4] {
            return None;
        }
        match Self::split(self.rest) {
            Ok((b, rest)) => {
                self.rest = rest;
                Some(Ok(b))
            }
            Err(e) => {
                self.rest = &[];
                Some(Err(e))
            }
        }
    }
}

/// Big-endian field reader over a slice; every read is bounds-checked and names what it read
/// in its error.
pub(super) struct Cursor<'a> {
    data: &'a [u8],
    pub(super) pos: usize,
}

impl<'a> Cursor<'a> {
    pub(super) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    pub(super) fn rest(&self) -> &'a [u8] {
        self.data.get(self.pos..).unwrap_or_default()
    }

    pub(super) fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], Mp4Error> {
        let end = self.pos.checked_add(n).ok_or(Mp4Error::Truncated(what))?;
        let bytes = self
            .data
            .get(self.pos..end)
            .ok_or(Mp4Error::Truncated(what))?;
        self.pos = end;
        Ok(bytes)
    }

    pub(super) fn skip(&mut self, n: usize, what: &'static str) -> Result<(), Mp4Error> {
        self.bytes(n, what).map(|_| ())
    }

    pub(super) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], Mp4Error> {
        self.bytes(N, what)?
            .try_into()
            .map_err(|_| Mp4Error::Truncated(what))
    }

    pub(super) fn u8(&mut self, what: &'static str) -> Result<u8, Mp4Error> {
        Ok(u8::from_be_bytes(self.array(what)?))
    }

    pub(super) fn u16(&mut self, what: &'static str) -> Result<u16, Mp4Error> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(super) fn u32(&mut self, what: &'static str) -> Result<u32, Mp4Error> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(super) fn u64(&mut self, what: &'static str) -> Result<u64, Mp4Error> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
}
