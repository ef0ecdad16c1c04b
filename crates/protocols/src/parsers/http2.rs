//! HTTP/2 (RFC 7540) over a reassembled TCP stream: frames per direction,
//! header blocks (HEADERS, PUSH_PROMISE and their CONTINUATIONs) decoded
//! with HPACK, DATA bodies hashed per stream, producing Arkime's `http.*`
//! fields as its HTTP/2 parser does.
//!
//! What goes where (as Arkime): `:method` → `http.method`, `:authority`
//! (without its port) → `http.host`, `:path` → `http.path` and the query
//! keys/values, `:status` → `http.statuscode`; every other header is a
//! request header in the client's direction and a response header in the
//! server's (so a server push's promised request headers count as response
//! headers), with the HTTP/1 parser's rules (`user-agent`, `host`,
//! `x-forwarded-for`, `[headers-http-*]`, `parseHTTPHeader*All`), and
//! cookies are read. `http.uri` and versions are not written for streams.
//! A stream direction's body (its DATA, padding removed) is hashed into
//! `http.md5`/`http.sha256` when that direction ends, with `http.bodymagic`
//! from its first bytes.
//!
//! Everything is bounded: a frame is buffered only when it must be read
//! whole (header blocks up to [`MAX_HEADER_BLOCK`], SETTINGS and RST_STREAM
//! up to [`MAX_CONTROL_FRAME`]); DATA and every other frame pass through
//! without being copied; at most [`MAX_STREAMS`] streams are tracked; the
//! HPACK tables are bounded (see the `hpack` module).

mod hpack;
mod huffman;

use sha2::{Digest, Sha256};

use super::http::{self, HttpSettings};
use super::{Out, magic, util};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};
use crate::md5_stream::Md5;
use hpack::{Decoder, HeaderList};

/// The client connection preface (RFC 7540 3.5).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Largest header block (a HEADERS or PUSH_PROMISE frame and its
/// CONTINUATIONs) read; a larger one ends header decoding for its
/// direction, since the HPACK tables cannot follow it.
pub const MAX_HEADER_BLOCK: usize = 64 * 1024;
/// Largest SETTINGS or RST_STREAM frame read (larger ones are skipped).
pub const MAX_CONTROL_FRAME: usize = 16 * 1024;
/// Most streams tracked at once (the oldest is dropped for a new one).
pub const MAX_STREAMS: usize = 32;

const FRAME_HEADER: usize = 9;

// Frame types.
const DATA: u8 = 0x0;
const HEADERS: u8 = 0x1;
const RST_STREAM: u8 = 0x3;
const SETTINGS: u8 = 0x4;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;

// Frame flags.
const END_STREAM: u8 = 0x1;
const ACK: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// `SETTINGS_HEADER_TABLE_SIZE`.
const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;

/// Registers the HTTP/2 classifier: the client preface's request line.
pub fn register(set: &mut ClassifierSet) {
    set.add_tcp("http2", 0, &PREFACE[..16], ClassifyAction::Native(classify));
}

fn classify(cx: &mut ClassifyContext<'_>, _data: &[u8], dir: Direction) {
    if cx.has_parser("http2") {
        return;
    }
    cx.add_protocol("http2");
    cx.attach(Box::new(Http2::new(&cx.settings.http, dir)));
}

/// A frame's 9-byte header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FrameHead {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

/// The frame header at the start of `b`, if it is all there.
fn frame_head(b: &[u8]) -> Option<FrameHead> {
    let h = b.get(..FRAME_HEADER)?;
    Some(FrameHead {
        len: util::be24(h, 0)? as usize,
        kind: h[3],
        flags: h[4],
        stream: util::be32(h, 5)? & 0x7fff_ffff,
    })
}

/// Whether a frame of this kind carries a header block fragment.
fn is_header_frame(kind: u8) -> bool {
    matches!(kind, HEADERS | PUSH_PROMISE | CONTINUATION)
}

/// The largest payload of this kind read whole; `None` for kinds that are
/// streamed (DATA) or skipped.
fn buffered_cap(kind: u8) -> Option<usize> {
    match kind {
        HEADERS | PUSH_PROMISE | CONTINUATION => Some(MAX_HEADER_BLOCK),
        SETTINGS | RST_STREAM => Some(MAX_CONTROL_FRAME),
        _ => None,
    }
}

/// Whether a DATA frame starts with a pad length byte.
fn data_padded(h: &FrameHead) -> bool {
    h.kind == DATA && h.flags & PADDED != 0 && h.len > 0
}

/// How many bytes from a frame's start must be at hand before it can be
/// handled: the header, DATA's pad length, or a whole buffered frame.
fn wanted(b: &[u8]) -> usize {
    let Some(h) = frame_head(b) else {
        return FRAME_HEADER;
    };
    if data_padded(&h) {
        return FRAME_HEADER + 1;
    }
    match buffered_cap(h.kind) {
        Some(cap) if h.len <= cap => FRAME_HEADER + h.len,
        _ => FRAME_HEADER,
    }
}

/// The header block fragment of a HEADERS (`skip` 5 with PRIORITY) or
/// PUSH_PROMISE (`skip` 4, the promised stream) payload: pad length,
/// `skip` bytes and trailing padding removed. `None` when they do not fit.
fn fragment(flags: u8, p: &[u8], skip: usize) -> Option<&[u8]> {
    let (pad, p) = if flags & PADDED != 0 {
        let (&n, rest) = p.split_first()?;
        (usize::from(n), rest)
    } else {
        (0, p)
    };
    let p = p.get(..p.len().checked_sub(pad)?)?;
    p.get(skip..)
}

/// Body bytes the body magic is read from, at most.
const MAGIC_PREFIX: usize = 256;

/// A stream direction's body: hashes, and its first bytes until the body
/// magic is known (so that it does not depend on how frames were cut).
struct BodyHash {
    md5: Md5,
    sha256: Option<Sha256>,
    head: [u8; MAGIC_PREFIX],
    head_len: usize,
    magic_done: bool,
}

impl BodyHash {
    /// `magic`: whether the body's magic is wanted (`magicMode`).
    fn new(sha256: bool, magic: bool) -> BodyHash {
        BodyHash {
            md5: Md5::new(),
            sha256: sha256.then(Sha256::new),
            head: [0; MAGIC_PREFIX],
            head_len: 0,
            magic_done: !magic,
        }
    }

    fn update(&mut self, o: &mut Out<'_, '_>, bytes: &[u8]) {
        if !self.magic_done {
            if self.head_len == 0 && bytes.len() >= MAGIC_PREFIX {
                self.magic(o, bytes);
            } else {
                let take = (MAGIC_PREFIX - self.head_len).min(bytes.len());
                self.head[self.head_len..self.head_len + take].copy_from_slice(&bytes[..take]);
                self.head_len += take;
                if self.head_len == MAGIC_PREFIX {
                    let head = self.head;
                    self.magic(o, &head);
                }
            }
        }
        self.md5.update(bytes);
        if let Some(h) = self.sha256.as_mut() {
            h.update(bytes);
        }
    }

    fn magic(&mut self, o: &mut Out<'_, '_>, first: &[u8]) {
        self.magic_done = true;
        if let Some(m) = magic::basic(first) {
            o.s("http.bodymagic", m);
        }
    }

    /// The body ended: magic (if not yet known) and hashes.
    fn finish(mut self, o: &mut Out<'_, '_>, hex: &mut String) {
        if !self.magic_done {
            let head = self.head;
            self.magic(o, &head[..self.head_len]);
        }
        hex.clear();
        util::push_hex(hex, &self.md5.finalize());
        o.s("http.md5", hex);
        if let Some(h) = self.sha256 {
            hex.clear();
            util::push_hex(hex, &h.finalize());
            o.s("http.sha256", hex);
        }
    }
}

/// One tracked stream.
struct Stream {
    id: u32,
    /// Which directions ended the stream.
    ended: [bool; 2],
    /// Body hashes per direction, from the first DATA byte.
    body: [Option<BodyHash>; 2],
}

/// The DATA frame a direction is inside.
#[derive(Debug, Clone, Copy)]
struct DataRun {
    stream: u32,
    /// Body bytes left.
    body: usize,
    /// Padding bytes left after them.
    pad: usize,
    end: bool,
    /// Nothing of this frame's body was seen yet.
    first: bool,
}

/// Where a direction is between frames.
#[derive(Debug, Clone, Copy)]
enum Run {
    /// At a frame boundary.
    Frames,
    /// Inside a DATA frame.
    Data(DataRun),
    /// Inside a frame whose payload is not read.
    Skip(usize),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Headers,
    PushPromise,
}

/// A header block waiting for its CONTINUATION frames.
struct Block {
    open: bool,
    kind: BlockKind,
    stream: u32,
    end_stream: bool,
    bytes: Vec<u8>,
}

/// One direction of the connection.
struct Side {
    /// An incomplete frame (or its start), at most `FRAME_HEADER +
    /// MAX_HEADER_BLOCK` bytes.
    pending: Vec<u8>,
    run: Run,
    /// Preface bytes matched at the start of the direction (`None` once
    /// the direction is past it, or never had one).
    preface: Option<usize>,
    block: Block,
    hpack: Decoder,
    /// Whether header blocks are still decoded (false after an HPACK
    /// error, or a block that could not be followed).
    headers_ok: bool,
}

impl Side {
    fn new() -> Side {
        Side {
            pending: Vec::new(),
            run: Run::Frames,
            preface: Some(0),
            block: Block {
                open: false,
                kind: BlockKind::Headers,
                stream: 0,
                end_stream: false,
                bytes: Vec::new(),
            },
            hpack: Decoder::new(),
            headers_ok: true,
        }
    }

    /// The HPACK tables can no longer follow this direction. An open block
    /// stays open (without its bytes) so its stream's end is still seen.
    fn lose_headers(&mut self) {
        self.headers_ok = false;
        self.block.bytes = Vec::new();
    }

    /// The open block cannot go on (interrupted, or a stray CONTINUATION).
    fn break_block(&mut self) {
        self.block.open = false;
        self.lose_headers();
    }
}

/// The HTTP/2 parser of one session.
pub struct Http2 {
    sides: [Side; 2],
    /// The client's direction: where the preface was seen.
    client: usize,
    streams: Vec<Stream>,
    settings: HttpSettings,
    /// Decoded headers of the current block (memory reused).
    list: HeaderList,
    /// A reused buffer for lower-cased header names and hex digests.
    scratch: String,
}

impl Http2 {
    fn new(settings: &HttpSettings, client: Direction) -> Http2 {
        Http2 {
            sides: [Side::new(), Side::new()],
            client: client.index(),
            streams: Vec::new(),
            settings: settings.clone(),
            list: HeaderList::default(),
            scratch: String::new(),
        }
    }

    /// Skips the preface at the start of a direction (it may arrive in
    /// pieces); returns what follows it.
    fn preface<'d>(&mut self, d: usize, data: &'d [u8]) -> &'d [u8] {
        let Some(seen) = self.sides[d].preface else {
            return data;
        };
        let want = &PREFACE[seen..];
        let n = want.len().min(data.len());
        if data[..n] != want[..n] {
            // No preface (the server's direction), or not quite one: read
            // frames from here.
            self.sides[d].preface = None;
            return data;
        }
        if n == want.len() {
            self.sides[d].preface = None;
        } else {
            self.sides[d].preface = Some(seen + n);
        }
        &data[n..]
    }

    /// Reads complete frames from `input`, streaming DATA and skipped
    /// payloads; returns the bytes used (what is left is the start of a
    /// frame that needs more).
    fn frames(&mut self, cx: &mut ParseContext<'_>, d: usize, input: &[u8]) -> usize {
        let mut at = 0;
        loop {
            let rest = &input[at..];
            match self.sides[d].run {
                Run::Skip(n) => {
                    let t = n.min(rest.len());
                    at += t;
                    if t < n {
                        self.sides[d].run = Run::Skip(n - t);
                        return at;
                    }
                    self.sides[d].run = Run::Frames;
                }
                Run::Data(mut r) => {
                    let t = r.body.min(rest.len());
                    if t > 0 {
                        self.data(cx, d, &r, &rest[..t]);
                        r.first = false;
                        r.body -= t;
                        at += t;
                    }
                    let p = r.pad.min(input.len() - at);
                    r.pad -= p;
                    at += p;
                    if r.body > 0 || r.pad > 0 {
                        self.sides[d].run = Run::Data(r);
                        return at;
                    }
                    self.sides[d].run = Run::Frames;
                    if r.end {
                        self.end_stream(cx, d, r.stream);
                    }
                }
                Run::Frames => {
                    let Some(h) = frame_head(rest) else {
                        return at;
                    };
                    if self.sides[d].block.open && h.kind != CONTINUATION {
                        // A header block was interrupted: the sender's
                        // tables hold what was never decoded here.
                        self.sides[d].break_block();
                    }
                    if h.kind == DATA {
                        let mut payload = h.len;
                        let mut pad = 0;
                        if data_padded(&h) {
                            let Some(&n) = rest.get(FRAME_HEADER) else {
                                return at;
                            };
                            pad = usize::from(n);
                            payload -= 1;
                            at += 1;
                        }
                        at += FRAME_HEADER;
                        self.sides[d].run = if pad > payload {
                            Run::Skip(payload)
                        } else {
                            Run::Data(DataRun {
                                stream: h.stream,
                                body: payload - pad,
                                pad,
                                end: h.flags & END_STREAM != 0,
                                first: true,
                            })
                        };
                        continue;
                    }
                    match buffered_cap(h.kind) {
                        Some(cap) if h.len <= cap => {
                            let Some(payload) = rest.get(FRAME_HEADER..FRAME_HEADER + h.len) else {
                                return at;
                            };
                            at += FRAME_HEADER + h.len;
                            self.frame(cx, d, h, payload);
                        }
                        _ => {
                            if is_header_frame(h.kind) {
                                self.sides[d].lose_headers();
                            }
                            at += FRAME_HEADER;
                            self.sides[d].run = Run::Skip(h.len);
                        }
                    }
                }
            }
        }
    }

    /// A frame read whole.
    fn frame(&mut self, cx: &mut ParseContext<'_>, d: usize, h: FrameHead, p: &[u8]) {
        match h.kind {
            HEADERS => {
                let skip = if h.flags & PRIORITY != 0 { 5 } else { 0 };
                let Some(frag) = fragment(h.flags, p, skip) else {
                    self.sides[d].lose_headers();
                    return;
                };
                let end_stream = h.flags & END_STREAM != 0;
                self.block_start(cx, d, BlockKind::Headers, h, end_stream, frag);
            }
            PUSH_PROMISE => {
                let Some(frag) = fragment(h.flags, p, 4) else {
                    self.sides[d].lose_headers();
                    return;
                };
                self.block_start(cx, d, BlockKind::PushPromise, h, false, frag);
            }
            CONTINUATION => {
                let side = &mut self.sides[d];
                if !side.block.open || side.block.stream != h.stream {
                    side.break_block();
                    return;
                }
                if side.block.bytes.len() + p.len() > MAX_HEADER_BLOCK {
                    side.lose_headers();
                }
                if side.headers_ok {
                    side.block.bytes.extend_from_slice(p);
                }
                if h.flags & END_HEADERS != 0 {
                    side.block.open = false;
                    let bytes = std::mem::take(&mut side.block.bytes);
                    let (kind, stream, end) =
                        (side.block.kind, side.block.stream, side.block.end_stream);
                    self.header_block(cx, d, kind, stream, end, &bytes);
                    let mut bytes = bytes;
                    bytes.clear();
                    if self.sides[d].headers_ok {
                        self.sides[d].block.bytes = bytes;
                    }
                }
            }
            SETTINGS if h.flags & ACK == 0 => {
                for s in p.chunks_exact(6) {
                    let id = u16::from_be_bytes([s[0], s[1]]);
                    let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                    if id == SETTINGS_HEADER_TABLE_SIZE {
                        // It bounds the tables of what this side receives.
                        self.sides[1 - d].hpack.set_allowed(v);
                    }
                }
            }
            RST_STREAM => {
                self.streams.retain(|s| s.id != h.stream);
            }
            _ => {}
        }
    }

    fn block_start(
        &mut self,
        cx: &mut ParseContext<'_>,
        d: usize,
        kind: BlockKind,
        h: FrameHead,
        end_stream: bool,
        frag: &[u8],
    ) {
        if h.flags & END_HEADERS != 0 {
            self.header_block(cx, d, kind, h.stream, end_stream, frag);
            return;
        }
        let side = &mut self.sides[d];
        side.block.open = true;
        side.block.kind = kind;
        side.block.stream = h.stream;
        side.block.end_stream = end_stream;
        side.block.bytes.clear();
        if side.headers_ok {
            side.block.bytes.extend_from_slice(frag);
        }
    }

    /// A complete header block of `stream`.
    fn header_block(
        &mut self,
        cx: &mut ParseContext<'_>,
        d: usize,
        kind: BlockKind,
        stream: u32,
        end_stream: bool,
        block: &[u8],
    ) {
        if self.sides[d].headers_ok {
            self.list.clear();
            if self.sides[d].hpack.decode(block, &mut self.list).is_err() {
                self.sides[d].lose_headers();
            }
            self.emit_headers(cx, d);
        }
        self.open_stream(stream);
        // A push promise's END_STREAM bit is not defined.
        if end_stream && kind == BlockKind::Headers {
            self.end_stream(cx, d, stream);
        }
    }

    fn emit_headers(&mut self, cx: &mut ParseContext<'_>, d: usize) {
        let is_req = d == self.client;
        let mut o = super::out(cx);
        let mut lname = std::mem::take(&mut self.scratch);
        for (name, value) in self.list.iter() {
            header(&mut o, &self.settings, is_req, name, value, &mut lname);
        }
        self.scratch = lname;
    }

    /// Starts following `id` (stream 0 is the connection, not a stream).
    fn open_stream(&mut self, id: u32) {
        if id == 0 || self.streams.iter().any(|s| s.id == id) {
            return;
        }
        if self.streams.len() >= MAX_STREAMS {
            // Streams open in increasing order: the lowest is the oldest.
            if let Some(oldest) = (0..self.streams.len()).min_by_key(|&i| self.streams[i].id) {
                self.streams.swap_remove(oldest);
            }
        }
        if self.streams.capacity() == 0 {
            self.streams.reserve_exact(4);
        }
        self.streams.push(Stream {
            id,
            ended: [false; 2],
            body: [None, None],
        });
    }

    /// Body bytes of one DATA frame.
    fn data(&mut self, cx: &mut ParseContext<'_>, d: usize, run: &DataRun, bytes: &[u8]) {
        let sha = self.settings.sha256();
        let magic = self.settings.magic();
        let Some(s) = self.streams.iter_mut().find(|s| s.id == run.stream) else {
            if run.first {
                cx.fields.add_tag("http2:data-frame-after-close");
            }
            return;
        };
        let body = s.body[d].get_or_insert_with(|| BodyHash::new(sha, magic));
        body.update(&mut super::out(cx), bytes);
    }

    /// Direction `d` ended `stream`: its body's hashes are written, and a
    /// stream both sides ended is forgotten.
    fn end_stream(&mut self, cx: &mut ParseContext<'_>, d: usize, stream: u32) {
        let Some(at) = self.streams.iter().position(|s| s.id == stream) else {
            return;
        };
        let s = &mut self.streams[at];
        s.ended[d] = true;
        if let Some(body) = s.body[d].take() {
            body.finish(&mut super::out(cx), &mut self.scratch);
        }
        if s.ended == [true, true] {
            self.streams.swap_remove(at);
        }
    }

    /// Completes the buffered frame start with bytes from `data` and reads
    /// it once it is whole; returns what of `data` is left.
    fn pending<'d>(&mut self, cx: &mut ParseContext<'_>, d: usize, mut data: &'d [u8]) -> &'d [u8] {
        loop {
            let have = self.sides[d].pending.len();
            if have == 0 {
                return data;
            }
            let want = wanted(&self.sides[d].pending);
            if have < want {
                if data.is_empty() {
                    return data;
                }
                let take = (want - have).min(data.len());
                self.sides[d].pending.extend_from_slice(&data[..take]);
                data = &data[take..];
                continue;
            }
            let buf = std::mem::take(&mut self.sides[d].pending);
            let used = self.frames(cx, d, &buf);
            let mut buf = buf;
            // `wanted` and `frames` agree, so the whole start is used;
            // anything else would be kept for the next round.
            buf.drain(..used.max(1).min(buf.len()));
            self.sides[d].pending = buf;
        }
    }
}

/// Adds one decoded header of a block to the fields.
fn header(
    o: &mut Out<'_, '_>,
    settings: &HttpSettings,
    is_req: bool,
    name: &[u8],
    value: &[u8],
    lname: &mut String,
) {
    if let Some(pseudo) = name.strip_prefix(b":") {
        match pseudo {
            b"method" => {
                o.s("http.method", &util::text_cow(value));
            }
            b"authority" => {
                let h = util::text_cow(value);
                let host = match h.rfind(':') {
                    Some(c) if !h.ends_with(']') => &h[..c],
                    _ => &h[..],
                };
                o.s("host.http", host);
            }
            b"path" => {
                let (path, query) = match memchr::memchr(b'?', value) {
                    Some(q) => (&value[..q], Some(&value[q + 1..])),
                    None => (value, None),
                };
                o.s("http.uri.path", &util::text_cow(path));
                if let Some(q) = query {
                    http::query_fields(o, q, settings.qs_values());
                }
            }
            b"status" => {
                let digits = value.iter().take_while(|c| c.is_ascii_digit()).count();
                let code = std::str::from_utf8(&value[..digits.min(9)])
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok());
                if let Some(code) = code {
                    o.i("http.statuscode", code);
                }
            }
            _ => {}
        }
        return;
    }
    http::lower_name(name, lname);
    http::add_header(o, settings, is_req, lname, value);
    if lname == "cookie" {
        http::cookies(o, value, settings.cookie_values());
    }
}

impl Parser for Http2 {
    fn name(&self) -> &'static str {
        "http2"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let d = dir.index();
        let data = self.preface(d, data);
        let data = self.pending(cx, d, data);
        let used = self.frames(cx, d, data);
        // Only the start of one frame is left (bounded by `wanted`).
        self.sides[d].pending.extend_from_slice(&data[used..]);
        ParserStatus::Continue
    }
}

#[cfg(test)]
mod tests;
