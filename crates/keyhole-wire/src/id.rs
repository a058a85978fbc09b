//! Ids in the text messages: 16 bytes written as 32 lowercase hex digits, and read back only
//! from exactly that, so each id has one spelling.

const HEX: &[u8; 16] = b"0123456789abcdef";

/// `id` as 32 lowercase hex digits.
pub(crate) fn encode(id: &[u8; 16]) -> String {
    let mut out = String::with_capacity(32);
    for b in id {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

/// The id `text` spells; `None` unless it is exactly 32 lowercase hex digits.
pub(crate) fn decode(text: &str) -> Option<[u8; 16]> {
    let bytes = text.as_bytes();
    if bytes.len() != 32 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 16];
    for (byte, pair) in out.iter_mut().zip(bytes.chunks_exact(2)) {
        *byte = nibble(pair[0])? << 4 | nibble(pair[1])?;
    }
    Some(out)
}
