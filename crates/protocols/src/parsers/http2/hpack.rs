//! HPACK header decompression (RFC 7541) for one direction of an HTTP/2
//! connection: the static table, a dynamic table bounded by the size the
//! receiver allowed (and a hard maximum), integer and string literals with
//! Huffman decoding.
//!
//! A whole header block is decoded at once into a [`HeaderList`], whose
//! buffers are reused from block to block. Every representation is applied
//! to the dynamic table even when the list is full, so the table stays in
//! step with the sender's; after an error it no longer is, and the caller
//! stops decoding that direction.

use std::collections::VecDeque;

use super::huffman::{self, HuffmanError};

/// The dynamic table size both ends start with (RFC 7540 6.5.2).
pub const DEFAULT_TABLE_SIZE: usize = 4096;
/// Largest dynamic table kept, whatever the receiver allowed.
pub const HARD_MAX_TABLE_SIZE: usize = 64 * 1024;
/// Most decoded header bytes (names and values) kept per block.
pub const MAX_LIST_BYTES: usize = 64 * 1024;
/// Most headers kept per block.
pub const MAX_LIST_HEADERS: usize = 256;

/// The static table (RFC 7541 Appendix A); index 1 is the first entry.
const STATIC: [(&str, &str); 61] = [
    (":authority", ""),
    (":method", "GET"),
    (":method", "POST"),
    (":path", "/"),
    (":path", "/index.html"),
    (":scheme", "http"),
    (":scheme", "https"),
    (":status", "200"),
    (":status", "204"),
    (":status", "206"),
    (":status", "304"),
    (":status", "400"),
    (":status", "404"),
    (":status", "500"),
    ("accept-charset", ""),
    ("accept-encoding", "gzip, deflate"),
    ("accept-language", ""),
    ("accept-ranges", ""),
    ("accept", ""),
    ("access-control-allow-origin", ""),
    ("age", ""),
    ("allow", ""),
    ("authorization", ""),
    ("cache-control", ""),
    ("content-disposition", ""),
    ("content-encoding", ""),
    ("content-language", ""),
    ("content-length", ""),
    ("content-location", ""),
    ("content-range", ""),
    ("content-type", ""),
    ("cookie", ""),
    ("date", ""),
    ("etag", ""),
    ("expect", ""),
    ("expires", ""),
    ("from", ""),
    ("host", ""),
    ("if-match", ""),
    ("if-modified-since", ""),
    ("if-none-match", ""),
    ("if-range", ""),
    ("if-unmodified-since", ""),
    ("last-modified", ""),
    ("link", ""),
    ("location", ""),
    ("max-forwards", ""),
    ("proxy-authenticate", ""),
    ("proxy-authorization", ""),
    ("range", ""),
    ("referer", ""),
    ("refresh", ""),
    ("retry-after", ""),
    ("server", ""),
    ("set-cookie", ""),
    ("strict-transport-security", ""),
    ("transfer-encoding", ""),
    ("user-agent", ""),
    ("vary", ""),
    ("via", ""),
    ("www-authenticate", ""),
];

/// Why a header block does not decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// A representation runs past the end of the block.
    #[error("header block ends inside a representation")]
    Truncated,
    /// An integer does not fit in 32 bits (or uses too many bytes).
    #[error("integer too large")]
    IntegerOverflow,
    /// Index 0, or past the end of the tables.
    #[error("no table entry {0}")]
    BadIndex(usize),
    /// A size update above what the receiver allowed.
    #[error("dynamic table size update {0} above the allowed size")]
    TableSizeTooLarge(usize),
    /// A size update after the first header of a block.
    #[error("dynamic table size update after a header")]
    LateSizeUpdate,
    /// A Huffman string that does not decode.
    #[error("bad Huffman string: {0:?}")]
    Huffman(HuffmanError),
}

/// Decoded headers of one block: names and values back to back in one
/// buffer, reused between blocks.
#[derive(Debug, Default)]
pub struct HeaderList {
    buf: Vec<u8>,
    /// (name start, value start, value end) of each header in `buf`.
    spans: Vec<[u32; 3]>,
    /// Headers left out because the list was full.
    dropped: usize,
}

impl HeaderList {
    /// Empties the list, keeping its memory.
    pub fn clear(&mut self) {
        self.buf.clear();
        self.spans.clear();
        self.dropped = 0;
    }

    /// Headers as (name, value), in block order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.spans.iter().map(|&[n, v, e]| {
            (
                &self.buf[n as usize..v as usize],
                &self.buf[v as usize..e as usize],
            )
        })
    }

    /// Number of headers kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no header was kept.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Headers decoded but not kept (the list was full).
    #[cfg(test)]
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// End of the last kept header in `buf`.
    fn committed(&self) -> usize {
        self.spans.last().map_or(0, |s| s[2] as usize)
    }

    /// Keeps the header written at `buf[start..]` (name up to `name_end`),
    /// or drops it when the list is full.
    fn commit(&mut self, start: usize, name_end: usize) {
        if self.spans.len() >= MAX_LIST_HEADERS || self.buf.len() > MAX_LIST_BYTES {
            self.buf.truncate(start);
            self.dropped += 1;
            return;
        }
        self.spans
            .push([start as u32, name_end as u32, self.buf.len() as u32]);
    }
}

/// One dynamic table entry: name and value at `bytes[at..]`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    at: usize,
    name: usize,
    value: usize,
}

impl Entry {
    /// Its size as RFC 7541 4.1 counts it.
    fn size(&self) -> usize {
        self.name + self.value + 32
    }
}

/// The dynamic table: entries' bytes appended to one buffer, evicted from
/// its front, the buffer compacted once its evicted part is as large as
/// its live part (so it never holds more than about twice the table).
#[derive(Debug)]
struct DynamicTable {
    bytes: Vec<u8>,
    /// Bytes before `head` belong to evicted entries.
    head: usize,
    /// Oldest first.
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
}

impl DynamicTable {
    fn new(max: usize) -> DynamicTable {
        DynamicTable {
            bytes: Vec::new(),
            head: 0,
            entries: VecDeque::new(),
            size: 0,
            max,
        }
    }

    /// Entry `i`, 0 being the newest.
    fn get(&self, i: usize) -> Option<(&[u8], &[u8])> {
        let at = self.entries.len().checked_sub(i + 1)?;
        let e = self.entries.get(at)?;
        let v = e.at + e.name;
        Some((&self.bytes[e.at..v], &self.bytes[v..v + e.value]))
    }

    fn set_max(&mut self, max: usize) {
        self.max = max;
        self.evict_to(max);
    }

    fn evict_to(&mut self, limit: usize) {
        while self.size > limit {
            let Some(e) = self.entries.pop_front() else {
                break;
            };
            self.size -= e.size();
            self.head = e.at + e.name + e.value;
        }
        if self.entries.is_empty() {
            self.bytes.clear();
            self.head = 0;
            self.size = 0;
        }
    }

    fn insert(&mut self, name: &[u8], value: &[u8]) {
        let size = name.len() + value.len() + 32;
        if size > self.max {
            // An entry larger than the table empties it (RFC 7541 4.4).
            self.evict_to(0);
            return;
        }
        self.evict_to(self.max - size);
        if self.head > 0 && self.head * 2 >= self.bytes.len() {
            self.bytes.drain(..self.head);
            for e in self.entries.iter_mut() {
                e.at -= self.head;
            }
            self.head = 0;
        }
        let at = self.bytes.len();
        self.bytes.extend_from_slice(name);
        self.bytes.extend_from_slice(value);
        self.entries.push_back(Entry {
            at,
            name: name.len(),
            value: value.len(),
        });
        self.size += size;
    }
}

/// The decoder of one direction.
#[derive(Debug)]
pub struct Decoder {
    table: DynamicTable,
    /// Largest size a size update may set: the receiver's
    /// `SETTINGS_HEADER_TABLE_SIZE`, at most [`HARD_MAX_TABLE_SIZE`].
    allowed: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder with the initial table size.
    pub fn new() -> Decoder {
        Decoder {
            table: DynamicTable::new(DEFAULT_TABLE_SIZE),
            allowed: DEFAULT_TABLE_SIZE,
        }
    }

    /// The receiver announced `SETTINGS_HEADER_TABLE_SIZE`.
    pub fn set_allowed(&mut self, size: u32) {
        self.allowed = (size as usize).min(HARD_MAX_TABLE_SIZE);
    }

    /// The dynamic table's current size and maximum.
    #[cfg(test)]
    pub fn table_size(&self) -> (usize, usize) {
        (self.table.size, self.table.max)
    }

    /// Decodes one complete header block, appending its headers to `out`
    /// (those decoded before an error stay there).
    pub fn decode(&mut self, block: &[u8], out: &mut HeaderList) -> Result<(), HpackError> {
        let mut at = 0;
        let mut seen_header = false;
        while at < block.len() {
            let r = self.representation(block, &mut at, out, &mut seen_header);
            if let Err(e) = r {
                let keep = out.committed();
                out.buf.truncate(keep);
                return Err(e);
            }
        }
        Ok(())
    }

    fn representation(
        &mut self,
        b: &[u8],
        at: &mut usize,
        out: &mut HeaderList,
        seen_header: &mut bool,
    ) -> Result<(), HpackError> {
        let c = b[*at];
        let start = out.buf.len();
        if c & 0x80 != 0 {
            // Indexed header field.
            let idx = integer(b, at, 7)?;
            let (n, v) = self.entry(idx)?;
            out.buf.extend_from_slice(n);
            let name_end = out.buf.len();
            out.buf.extend_from_slice(v);
            out.commit(start, name_end);
            *seen_header = true;
            return Ok(());
        }
        if c & 0xe0 == 0x20 {
            // Dynamic table size update.
            if *seen_header {
                return Err(HpackError::LateSizeUpdate);
            }
            let size = integer(b, at, 5)?;
            if size > self.allowed {
                return Err(HpackError::TableSizeTooLarge(size));
            }
            self.table.set_max(size);
            return Ok(());
        }
        // Literals: with incremental indexing (01), without (0000) or
        // never indexed (0001).
        let indexing = c & 0x40 != 0;
        let idx = integer(b, at, if indexing { 6 } else { 4 })?;
        if idx == 0 {
            string(b, at, &mut out.buf)?;
        } else {
            let (n, _) = self.entry(idx)?;
            out.buf.extend_from_slice(n);
        }
        let name_end = out.buf.len();
        string(b, at, &mut out.buf)?;
        if indexing {
            // The name may come from an entry this insert evicts, so the
            // entry is made from the list's copy.
            self.table
                .insert(&out.buf[start..name_end], &out.buf[name_end..]);
        }
        out.commit(start, name_end);
        *seen_header = true;
        Ok(())
    }

    fn entry(&self, idx: usize) -> Result<(&[u8], &[u8]), HpackError> {
        match idx {
            0 => Err(HpackError::BadIndex(0)),
            1..=61 => {
                let (n, v) = STATIC[idx - 1];
                Ok((n.as_bytes(), v.as_bytes()))
            }
            _ => self.table.get(idx - 62).ok_or(HpackError::BadIndex(idx)),
        }
    }
}

/// An integer with an N-bit prefix (RFC 7541 5.1), at most 32 bits.
fn integer(b: &[u8], at: &mut usize, prefix: u32) -> Result<usize, HpackError> {
    let mask = ((1u16 << prefix) - 1) as u8;
    let first = b.get(*at).ok_or(HpackError::Truncated)? & mask;
    *at += 1;
    if first < mask {
        return Ok(usize::from(first));
    }
    let mut v = u64::from(mask);
    let mut shift = 0u32;
    loop {
        let c = *b.get(*at).ok_or(HpackError::Truncated)?;
        *at += 1;
        v += u64::from(c & 0x7f) << shift;
        if c & 0x80 == 0 {
            break;
        }
        shift += 7;
        if shift > 28 {
            return Err(HpackError::IntegerOverflow);
        }
    }
    u32::try_from(v)
        .map(|v| v as usize)
        .map_err(|_| HpackError::IntegerOverflow)
}

/// A string literal (RFC 7541 5.2), appended to `out`.
fn string(b: &[u8], at: &mut usize, out: &mut Vec<u8>) -> Result<(), HpackError> {
    let huffman = b.get(*at).ok_or(HpackError::Truncated)? & 0x80 != 0;
    let len = integer(b, at, 7)?;
    let s = b
        .get(*at..at.saturating_add(len))
        .ok_or(HpackError::Truncated)?;
    *at += len;
    if huffman {
        huffman::decode(s, out).map_err(HpackError::Huffman)
    } else {
        out.extend_from_slice(s);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(list: &HeaderList) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| {
                (
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    /// Decodes `block` with `d`, checks the headers and the table size.
    fn check(d: &mut Decoder, block: &[u8], want: &[(&str, &str)], size: usize) {
        let mut list = HeaderList::default();
        d.decode(block, &mut list).unwrap();
        assert_eq!(headers(&list), pairs(want));
        assert_eq!(d.table_size().0, size);
    }

    fn dynamic(d: &Decoder) -> Vec<(String, String)> {
        (0..d.table.entries.len())
            .map(|i| {
                let (n, v) = d.table.get(i).unwrap();
                (
                    String::from_utf8(n.to_vec()).unwrap(),
                    String::from_utf8(v.to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn integers() {
        // RFC 7541 C.1: 10 in a 5-bit prefix, 1337 in a 5-bit prefix, 42
        // at an octet boundary.
        for (bytes, prefix, want) in [
            (&[0x0a][..], 5, 10),
            (&[0x1f, 0x9a, 0x0a], 5, 1337),
            (&[0x2a], 8, 42),
        ] {
            let mut at = 0;
            assert_eq!(integer(bytes, &mut at, prefix), Ok(want));
            assert_eq!(at, bytes.len());
        }
        // Past the end, and too large.
        let mut at = 0;
        assert_eq!(
            integer(&[0x1f, 0x80], &mut at, 5),
            Err(HpackError::Truncated)
        );
        let mut at = 0;
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], &mut at, 5),
            Err(HpackError::IntegerOverflow)
        );
        let mut at = 0;
        assert_eq!(
            integer(&[0x1f, 0xff, 0xff, 0xff, 0xff, 0x7f], &mut at, 5),
            Err(HpackError::IntegerOverflow)
        );
    }

    #[test]
    fn literal_representations() {
        // RFC 7541 C.2.1 - C.2.4.
        let mut d = Decoder::new();
        let mut block = vec![0x40, 0x0a];
        block.extend_from_slice(b"custom-key");
        block.push(0x0d);
        block.extend_from_slice(b"custom-header");
        check(&mut d, &block, &[("custom-key", "custom-header")], 55);
        let mut block = vec![0x04, 0x0c];
        block.extend_from_slice(b"/sample/path");
        check(&mut d, &block, &[(":path", "/sample/path")], 55);
        let mut block = vec![0x10, 0x08];
        block.extend_from_slice(b"password");
        block.push(0x06);
        block.extend_from_slice(b"secret");
        check(&mut d, &block, &[("password", "secret")], 55);
        check(&mut d, &[0x82], &[(":method", "GET")], 55);
    }

    /// RFC 7541 C.3 / C.4: three requests on one connection, so later
    /// ones refer to entries the earlier ones added.
    fn requests(r1: &[u8], r2: &[u8], r3: &[u8]) {
        let mut d = Decoder::new();
        let first = [
            (":method", "GET"),
            (":scheme", "http"),
            (":path", "/"),
            (":authority", "www.example.com"),
        ];
        check(&mut d, r1, &first, 57);
        let mut second = first.to_vec();
        second.push(("cache-control", "no-cache"));
        check(&mut d, r2, &second, 110);
        check(
            &mut d,
            r3,
            &[
                (":method", "GET"),
                (":scheme", "https"),
                (":path", "/index.html"),
                (":authority", "www.example.com"),
                ("custom-key", "custom-value"),
            ],
            164,
        );
        assert_eq!(
            dynamic(&d),
            pairs(&[
                ("custom-key", "custom-value"),
                ("cache-control", "no-cache"),
                (":authority", "www.example.com"),
            ])
        );
    }

    #[test]
    fn requests_without_huffman() {
        requests(
            b"\x82\x86\x84\x41\x0fwww.example.com",
            b"\x82\x86\x84\xbe\x58\x08no-cache",
            b"\x82\x87\x85\xbf\x40\x0acustom-key\x0ccustom-value",
        );
    }

    #[test]
    fn requests_with_huffman() {
        requests(
            &[
                0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab,
                0x90, 0xf4, 0xff,
            ],
            &[
                0x82, 0x86, 0x84, 0xbe, 0x58, 0x86, 0xa8, 0xeb, 0x10, 0x64, 0x9c, 0xbf,
            ],
            &[
                0x82, 0x87, 0x85, 0xbf, 0x40, 0x88, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xa9, 0x7d, 0x7f,
                0x89, 0x25, 0xa8, 0x49, 0xe9, 0x5b, 0xb8, 0xe8, 0xb4, 0xbf,
            ],
        );
    }

    /// RFC 7541 C.5 / C.6: responses with a 256-byte table, so entries are
    /// evicted.
    fn responses(r1: &[u8], r2: &[u8], r3: &[u8]) {
        let mut d = Decoder::new();
        d.table.set_max(256);
        let date1 = "Mon, 21 Oct 2013 20:13:21 GMT";
        let loc = "https://www.example.com";
        check(
            &mut d,
            r1,
            &[
                (":status", "302"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", loc),
            ],
            222,
        );
        check(
            &mut d,
            r2,
            &[
                (":status", "307"),
                ("cache-control", "private"),
                ("date", date1),
                ("location", loc),
            ],
            222,
        );
        assert_eq!(
            dynamic(&d),
            pairs(&[
                (":status", "307"),
                ("location", loc),
                ("date", date1),
                ("cache-control", "private"),
            ])
        );
        let cookie = "foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1";
        check(
            &mut d,
            r3,
            &[
                (":status", "200"),
                ("cache-control", "private"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
                ("location", loc),
                ("content-encoding", "gzip"),
                ("set-cookie", cookie),
            ],
            215,
        );
        assert_eq!(
            dynamic(&d),
            pairs(&[
                ("set-cookie", cookie),
                ("content-encoding", "gzip"),
                ("date", "Mon, 21 Oct 2013 20:13:22 GMT"),
            ])
        );
    }

    #[test]
    fn responses_without_huffman_evict() {
        let mut r1 = b"\x48\x03302\x58\x07private\x61\x1dMon, 21 Oct 2013 20:13:21 GMT".to_vec();
        r1.extend_from_slice(b"\x6e\x17https://www.example.com");
        let r2 = b"\x48\x03307\xc1\xc0\xbf";
        let mut r3 = b"\x88\xc1\x61\x1dMon, 21 Oct 2013 20:13:22 GMT\xc0\x5a\x04gzip".to_vec();
        r3.extend_from_slice(b"\x77\x38foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1");
        responses(&r1, r2, &r3);
    }

    #[test]
    fn responses_with_huffman_evict() {
        let r1 = [
            0x48, 0x82, 0x64, 0x02, 0x58, 0x85, 0xae, 0xc3, 0x77, 0x1a, 0x4b, 0x61, 0x96, 0xd0,
            0x7a, 0xbe, 0x94, 0x10, 0x54, 0xd4, 0x44, 0xa8, 0x20, 0x05, 0x95, 0x04, 0x0b, 0x81,
            0x66, 0xe0, 0x82, 0xa6, 0x2d, 0x1b, 0xff, 0x6e, 0x91, 0x9d, 0x29, 0xad, 0x17, 0x18,
            0x63, 0xc7, 0x8f, 0x0b, 0x97, 0xc8, 0xe9, 0xae, 0x82, 0xae, 0x43, 0xd3,
        ];
        let r2 = [0x48, 0x83, 0x64, 0x0e, 0xff, 0xc1, 0xc0, 0xbf];
        let r3 = [
            0x88, 0xc1, 0x61, 0x96, 0xd0, 0x7a, 0xbe, 0x94, 0x10, 0x54, 0xd4, 0x44, 0xa8, 0x20,
            0x05, 0x95, 0x04, 0x0b, 0x81, 0x66, 0xe0, 0x84, 0xa6, 0x2d, 0x1b, 0xff, 0xc0, 0x5a,
            0x83, 0x9b, 0xd9, 0xab, 0x77, 0xad, 0x94, 0xe7, 0x82, 0x1d, 0xd7, 0xf2, 0xe6, 0xc7,
            0xb3, 0x35, 0xdf, 0xdf, 0xcd, 0x5b, 0x39, 0x60, 0xd5, 0xaf, 0x27, 0x08, 0x7f, 0x36,
            0x72, 0xc1, 0xab, 0x27, 0x0f, 0xb5, 0x29, 0x1f, 0x95, 0x87, 0x31, 0x60, 0x65, 0xc0,
            0x03, 0xed, 0x4e, 0xe5, 0xb1, 0x06, 0x3d, 0x50, 0x07,
        ];
        responses(&r1, &r2, &r3);
    }

    #[test]
    fn size_updates() {
        let mut d = Decoder::new();
        // Fill the table, then shrink it to nothing and grow it back.
        check(&mut d, b"\x40\x01a\x01b", &[("a", "b")], 34);
        check(&mut d, b"\x20\x3f\xe1\x1f\x82", &[(":method", "GET")], 0);
        assert_eq!(d.table_size(), (0, 4096));
        assert!(dynamic(&d).is_empty());
        // Above what the receiver allowed: an error, the table unchanged.
        let mut list = HeaderList::default();
        assert_eq!(
            d.decode(b"\x3f\xe2\x1f", &mut list),
            Err(HpackError::TableSizeTooLarge(4097))
        );
        assert_eq!(d.table_size(), (0, 4096));
        // The receiver's SETTINGS allow more, up to the hard maximum.
        d.set_allowed(8192);
        check(&mut d, b"\x3f\xe1\x3f", &[], 0);
        assert_eq!(d.table_size(), (0, 8192));
        d.set_allowed(u32::MAX);
        assert_eq!(d.allowed, HARD_MAX_TABLE_SIZE);
        // A size update after a header.
        assert_eq!(
            d.decode(b"\x82\x20", &mut list),
            Err(HpackError::LateSizeUpdate)
        );
    }

    #[test]
    fn entry_larger_than_table_empties_it() {
        let mut d = Decoder::new();
        d.table.set_max(64);
        check(&mut d, b"\x40\x01a\x01b", &[("a", "b")], 34);
        let mut block = vec![0x40, 0x01, b'c', 0x20];
        block.extend_from_slice(&[b'x'; 32]);
        check(&mut d, &block, &[("c", &"x".repeat(32))], 0);
        // Indexing a name from the entry being evicted still copies it.
        check(&mut d, b"\x40\x01a\x01b", &[("a", "b")], 34);
        check(&mut d, b"\x7e\x01c", &[("a", "c")], 34);
        assert_eq!(dynamic(&d), pairs(&[("a", "c")]));
    }

    #[test]
    fn table_buffer_stays_bounded() {
        let mut d = Decoder::new();
        let mut list = HeaderList::default();
        for i in 0..10_000u32 {
            let v = format!("value-{i}");
            let mut block = vec![0x40, 0x04];
            block.extend_from_slice(b"name");
            block.push(v.len() as u8);
            block.extend_from_slice(v.as_bytes());
            list.clear();
            d.decode(&block, &mut list).unwrap();
            assert!(d.table.size <= 4096);
            assert!(d.table.bytes.len() <= 2 * 4096);
        }
        // The newest entry is index 62.
        list.clear();
        d.decode(&[0xbe], &mut list).unwrap();
        assert_eq!(headers(&list), pairs(&[("name", "value-9999")]));
    }

    #[test]
    fn hostile_blocks() {
        for (block, err) in [
            (&b"\x80"[..], HpackError::BadIndex(0)),
            (b"\xbe", HpackError::BadIndex(62)),
            (b"\xff\xff\xff\xff\xff\x0f", HpackError::IntegerOverflow),
            (b"\x40\x05ab", HpackError::Truncated),
            (b"\x40\x7f\xff\xff\xff\x0f", HpackError::Truncated),
            (b"\x40", HpackError::Truncated),
            (b"\x00\x01a", HpackError::Truncated),
            (
                b"\x00\x81\xff\x00",
                HpackError::Huffman(HuffmanError::BadPadding),
            ),
            (
                b"\x00\x84\xff\xff\xff\xff\x00",
                HpackError::Huffman(HuffmanError::Eos),
            ),
        ] {
            let mut d = Decoder::new();
            let mut list = HeaderList::default();
            assert_eq!(d.decode(block, &mut list), Err(err), "{block:?}");
            assert!(list.is_empty());
        }
        // Headers before the error are kept; the partial one is not.
        let mut d = Decoder::new();
        let mut list = HeaderList::default();
        assert!(d.decode(b"\x82\x40\x01a\x05b", &mut list).is_err());
        assert_eq!(headers(&list), pairs(&[(":method", "GET")]));
        assert_eq!(list.buf.len(), ":methodGET".len());
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_blocks_keep_the_table_consistent(
            blocks in proptest::collection::vec(
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                1..8,
            ),
            allowed in 0u32..200_000,
        ) {
            let mut d = Decoder::new();
            d.set_allowed(allowed);
            let mut list = HeaderList::default();
            for b in blocks {
                list.clear();
                let _ = d.decode(&b, &mut list);
                let t = &d.table;
                let live: usize = t.entries.iter().map(|e| e.name + e.value).sum();
                let size: usize = t.entries.iter().map(Entry::size).sum();
                proptest::prop_assert_eq!(t.size, size);
                proptest::prop_assert!(t.size <= t.max);
                proptest::prop_assert!(t.max <= HARD_MAX_TABLE_SIZE.max(DEFAULT_TABLE_SIZE));
                proptest::prop_assert_eq!(t.bytes.len() - t.head, live);
                for (n, v) in list.iter() {
                    proptest::prop_assert!(n.len() + v.len() <= list.buf.len());
                }
            }
        }
    }

    #[test]
    fn full_list_still_updates_the_table() {
        let mut d = Decoder::new();
        let mut list = HeaderList::default();
        let mut block = vec![0x82; MAX_LIST_HEADERS];
        block.extend_from_slice(b"\x40\x01a\x01b");
        d.decode(&block, &mut list).unwrap();
        assert_eq!(list.len(), MAX_LIST_HEADERS);
        assert_eq!(list.dropped(), 1);
        assert_eq!(dynamic(&d), pairs(&[("a", "b")]));
    }
}
