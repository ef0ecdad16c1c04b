//! Small byte helpers shared by the parsers.

/// Lower-case hexadecimal of bytes.
pub fn hex(b: &[u8]) -> String {
    const H: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(H[usize::from(x >> 4)] as char);
        s.push(H[usize::from(x & 15)] as char);
    }
    s
}

/// Appends the lower-case hexadecimal of bytes to `s`.
pub fn push_hex(s: &mut String, b: &[u8]) {
    const H: &[u8; 16] = b"0123456789abcdef";
    s.reserve(b.len() * 2);
    for &x in b {
        s.push(H[usize::from(x >> 4)] as char);
        s.push(H[usize::from(x & 15)] as char);
    }
}

/// Appends a value as four lower-case hexadecimal digits (`{:04x}`).
pub fn push_hex4(s: &mut String, v: u16) {
    push_hex(s, &v.to_be_bytes());
}

/// Appends an unsigned integer in decimal (no formatting machinery).
pub fn push_dec(s: &mut String, v: u64) {
    let mut b = itoa::Buffer::new();
    s.push_str(b.format(v));
}

/// Colon-separated lower-case hexadecimal (`aa:bb:cc`).
pub fn hex_colon(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        push_hex(&mut s, &[*x]);
    }
    s
}

/// Bytes as text: UTF-8 when valid, otherwise each byte as a Latin-1
/// character (never fails).
pub fn text(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => s.to_string(),
        Err(_) => b.iter().map(|&c| c as char).collect(),
    }
}

/// Bytes as text like [`text`], borrowed when they are valid UTF-8.
pub fn text_cow(b: &[u8]) -> std::borrow::Cow<'_, str> {
    match std::str::from_utf8(b) {
        Ok(s) => std::borrow::Cow::Borrowed(s),
        Err(_) => std::borrow::Cow::Owned(b.iter().map(|&c| c as char).collect()),
    }
}

/// Percent-decoding as GLib's `g_uri_unescape_segment`: `None` when an
/// escape is malformed or decodes to NUL.
pub fn uri_unescape(s: &[u8]) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let h = s.get(i + 1..i + 3)?;
            let v = (hexval(h[0])? << 4) | hexval(h[1])?;
            if v == 0 {
                return None;
            }
            out.push(v);
            i += 3;
        } else {
            out.push(s[i]);
            i += 1;
        }
    }
    Some(text(&out))
}

fn hexval(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Trims ASCII whitespace on both sides.
pub fn trim(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    &b[start..end.max(start)]
}

/// Case-insensitive search of `needle` in `hay`.
pub fn find_nocase(hay: &[u8], needle: &[u8]) -> Option<usize> {
    let (&first, _) = needle.split_first()?;
    if hay.len() < needle.len() {
        return None;
    }
    let last = hay.len() - needle.len();
    // Only positions holding the first byte (either case) are compared.
    memchr::memchr2_iter(
        first.to_ascii_lowercase(),
        first.to_ascii_uppercase(),
        &hay[..=last],
    )
    .find(|&i| hay[i..i + needle.len()].eq_ignore_ascii_case(needle))
}

/// Big-endian u16 at `at`.
pub fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Big-endian 24-bit value at `at`.
pub fn be24(b: &[u8], at: usize) -> Option<u32> {
    let s = b.get(at..at + 3)?;
    Some(u32::from(s[0]) << 16 | u32::from(s[1]) << 8 | u32::from(s[2]))
}

/// Big-endian u32 at `at`.
pub fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Little-endian u16 at `at`.
pub fn le16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Little-endian u32 at `at`.
pub fn le32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// A forward reader over bytes in the style of Arkime's `BSB`: reads past
/// the end set a sticky error, after which nothing remains and every read
/// returns zero, so a port of a C parser keeps its exact stopping points.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    err: bool,
}

impl<'a> Cursor<'a> {
    /// A reader at the start of `data`.
    pub fn new(data: &'a [u8]) -> Cursor<'a> {
        Cursor {
            data,
            pos: 0,
            err: false,
        }
    }
    /// Bytes left (0 after an error).
    pub fn remaining(&self) -> usize {
        if self.err {
            0
        } else {
            self.data.len() - self.pos
        }
    }
    /// Whether a read went past the end.
    pub fn is_err(&self) -> bool {
        self.err
    }
    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        if self.err {
            &[]
        } else {
            &self.data[self.pos..]
        }
    }
    /// Takes `n` bytes, or sets the error.
    pub fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.err || n > self.data.len() - self.pos {
            self.err = true;
            return None;
        }
        let s = &self.data[self.pos..self.pos + n];
        self.pos += n;
        Some(s)
    }
    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) {
        let _ = self.take(n);
    }
    /// One byte (0 on error).
    pub fn u8(&mut self) -> u8 {
        self.take(1).map_or(0, |b| b[0])
    }
    /// A big-endian u16 (0 on error).
    pub fn u16(&mut self) -> u16 {
        self.take(2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]))
    }
    /// A big-endian u32 (0 on error).
    pub fn u32(&mut self) -> u32 {
        self.take(4)
            .map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

/// A bounded per-direction buffer for parsers that need whole records:
/// appends until `max` bytes, then reports overflow.
#[derive(Debug, Default, Clone)]
pub struct Buf {
    data: Vec<u8>,
}

impl Buf {
    /// Appends `more`; false (and nothing kept) past `max` bytes.
    pub fn extend(&mut self, more: &[u8], max: usize) -> bool {
        if self.data.len() + more.len() > max {
            self.data.clear();
            return false;
        }
        self.data.extend_from_slice(more);
        true
    }
    /// The buffered bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
    /// Drops the first `n` bytes.
    pub fn consume(&mut self, n: usize) {
        let n = n.min(self.data.len());
        self.data.drain(..n);
    }
    /// Whether nothing is buffered.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
    /// Drops everything.
    pub fn clear(&mut self) {
        self.data.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_and_hex() {
        assert_eq!(uri_unescape(b"a%20b").as_deref(), Some("a b"));
        assert_eq!(uri_unescape(b"a%2"), None);
        assert_eq!(uri_unescape(b"%00"), None);
        assert_eq!(hex(&[0, 0xab]), "00ab");
        assert_eq!(hex_colon(&[1, 2]), "01:02");
        let mut s = String::new();
        push_hex4(&mut s, 0x0a1f);
        push_dec(&mut s, 1234);
        push_hex(&mut s, &[0xff]);
        assert_eq!(s, "0a1f1234ff");
        assert_eq!(text_cow(b"ab"), "ab");
        assert_eq!(text_cow(b"a\xe9"), "a\u{e9}");
        assert_eq!(trim(b"  x y \r\n"), b"x y");
        assert_eq!(trim(b"   "), b"");
        assert_eq!(find_nocase(b"xxPassWord=1", b"password="), Some(2));
        assert_eq!(be16(&[1], 0), None);
    }
}
