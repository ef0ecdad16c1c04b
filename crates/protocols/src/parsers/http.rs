//! HTTP/1.x: requests and responses per direction (pipelining, chunked and
//! content-length bodies, bodies until close, `100-continue`, `CONNECT`,
//! websocket upgrade), producing Arkime's `http.*` fields.
//!
//! The parser is streaming: header lines are collected in a bounded
//! per-direction buffer, bodies are hashed as they pass without being
//! copied (except the first `maxReqBody` bytes of request bodies).

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::md5_stream::Md5;

use super::util::{self, find_nocase, trim};
use super::{Out, magic};
use crate::Direction;
use crate::analyzer::{HttpEvent, ParseContext, Parser, ParserStatus, ProtocolConfig};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Longest header line or header block kept per direction.
const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Most headers kept per message.
const MAX_HEADERS: usize = 256;
/// Longest URL kept (Arkime truncates `http.uri` at 4096 and tags it).
const MAX_URL: usize = 4096;

/// Request methods and their counter field (`http.method-<METHOD>`).
const METHODS: &[(&str, &str)] = &[
    ("DELETE", "http.method-DELETE"),
    ("GET", "http.method-GET"),
    ("HEAD", "http.method-HEAD"),
    ("POST", "http.method-POST"),
    ("PUT", "http.method-PUT"),
    ("CONNECT", "http.method-CONNECT"),
    ("OPTIONS", "http.method-OPTIONS"),
    ("TRACE", "http.method-TRACE"),
    ("COPY", "http.method-COPY"),
    ("LOCK", "http.method-LOCK"),
    ("MKCOL", "http.method-MKCOL"),
    ("MOVE", "http.method-MOVE"),
    ("PROPFIND", "http.method-PROPFIND"),
    ("PROPPATCH", "http.method-PROPPATCH"),
    ("SEARCH", "http.method-SEARCH"),
    ("UNLOCK", "http.method-UNLOCK"),
    ("BIND", "http.method-BIND"),
    ("REBIND", "http.method-REBIND"),
    ("UNBIND", "http.method-UNBIND"),
    ("ACL", "http.method-ACL"),
    ("REPORT", "http.method-REPORT"),
    ("MKACTIVITY", "http.method-MKACTIVITY"),
    ("CHECKOUT", "http.method-CHECKOUT"),
    ("MERGE", "http.method-MERGE"),
    ("M-SEARCH", "http.method-M-SEARCH"),
    ("NOTIFY", "http.method-NOTIFY"),
    ("SUBSCRIBE", "http.method-SUBSCRIBE"),
    ("UNSUBSCRIBE", "http.method-UNSUBSCRIBE"),
    ("PATCH", "http.method-PATCH"),
    ("PURGE", "http.method-PURGE"),
    ("MKCALENDAR", "http.method-MKCALENDAR"),
    ("LINK", "http.method-LINK"),
    ("UNLINK", "http.method-UNLINK"),
];

/// Registers the HTTP classifiers: request methods and `HTTP/` at the
/// start of a direction.
pub fn register(set: &mut ClassifierSet) {
    for (m, _) in METHODS {
        set.add_tcp("http", 0, m.as_bytes(), ClassifyAction::Native(classify));
    }
    set.add_tcp("http", 0, b"HTTP/1.", ClassifyAction::Native(classify));
    // As Arkime: HTTP/2's preface is also read as a `PRI` request.
    set.add_tcp("http", 0, b"PRI", ClassifyAction::Native(classify));
    // HTTP over SCTP (RFC 4960 streams carry the same messages).
    for m in ["GET ", "POST ", "HEAD ", "PUT ", "HTTP/1."] {
        set.add_udp(
            "http",
            0,
            m.as_bytes(),
            ClassifyAction::Native(classify_sctp),
        );
    }
}

fn classify_sctp(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    if cx.meta.transport == crate::analyzer::Transport::Sctp {
        classify(cx, data, dir);
    }
}

fn classify(cx: &mut ClassifyContext<'_>, _data: &[u8], _dir: Direction) {
    if cx.has_parser("http") {
        return;
    }
    // As Arkime: the session is HTTP from the first bytes on.
    cx.add_protocol("http");
    cx.attach(Box::new(Http::with_settings(&cx.settings.http)));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for a request or status line.
    Start,
    /// Reading header lines.
    Headers,
    /// A body of known remaining length.
    Body(u64),
    /// A chunk size line.
    ChunkSize,
    /// Chunk data of remaining length.
    ChunkData(u64),
    /// The CRLF after chunk data.
    ChunkEnd,
    /// Trailer lines after the last chunk.
    Trailers,
    /// A body that lasts until the connection closes.
    UntilClose,
    /// Websocket frames after an upgrade.
    Websocket,
    /// Not HTTP any more (tunnel, garbage): ignore this direction.
    Dead,
}

/// One header of a message: name and value as ranges of
/// [`Message::hbuf`].
#[derive(Clone, Copy)]
struct Header {
    name: (u32, u32),
    value: (u32, u32),
}

/// One message being read. Kept per direction and reset between messages
/// so its buffers are reused.
#[derive(Default)]
struct Message {
    is_request: bool,
    /// One of [`METHODS`] (or `PRI`).
    method: &'static str,
    url: Vec<u8>,
    version: std::borrow::Cow<'static, str>,
    status: u16,
    /// Header names and values back to back (the last header's value is
    /// always at the end, so obsolete folding can extend it).
    hbuf: Vec<u8>,
    headers: Vec<Header>,
    in_body: bool,
    md5: Option<Md5>,
    sha256: Option<Sha256>,
    req_body: Vec<u8>,
}

impl Message {
    /// A fresh message, keeping the buffers' memory.
    fn reset(&mut self) {
        self.is_request = false;
        self.method = "";
        self.url.clear();
        self.version = std::borrow::Cow::Borrowed("");
        self.status = 0;
        self.clear_headers();
        self.in_body = false;
        self.md5 = None;
        self.sha256 = None;
        self.req_body.clear();
    }

    fn clear_headers(&mut self) {
        self.hbuf.clear();
        self.headers.clear();
    }

    fn push_header(&mut self, name: &[u8], value: &[u8]) {
        if self.headers.capacity() == 0 {
            // A typical header block, so it grows once or never.
            self.headers.reserve(8);
            self.hbuf.reserve(256);
        }
        let at = |b: &Vec<u8>| b.len() as u32;
        let n0 = at(&self.hbuf);
        self.hbuf.extend_from_slice(name);
        let n1 = at(&self.hbuf);
        self.hbuf.extend_from_slice(value);
        let v1 = at(&self.hbuf);
        self.headers.push(Header {
            name: (n0, n1),
            value: (n1, v1),
        });
    }

    /// Continues the last header's value (obsolete line folding).
    fn fold(&mut self, more: &[u8]) {
        if let Some(last) = self.headers.last_mut() {
            self.hbuf.push(b' ');
            self.hbuf.extend_from_slice(more);
            last.value.1 = self.hbuf.len() as u32;
        }
    }

    fn name(&self, h: &Header) -> &[u8] {
        &self.hbuf[h.name.0 as usize..h.name.1 as usize]
    }

    fn value(&self, h: &Header) -> &[u8] {
        &self.hbuf[h.value.0 as usize..h.value.1 as usize]
    }

    /// Headers as (name, value) in order.
    fn iter(&self) -> impl DoubleEndedIterator<Item = (&[u8], &[u8])> {
        self.headers.iter().map(|h| (self.name(h), self.value(h)))
    }

    /// The last value of a header (name compared without case).
    fn header(&self, n: &[u8]) -> Option<&[u8]> {
        self.iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(n))
            .map(|(_, v)| v)
    }
}

/// An HTTP version as text, without allocating for the usual ones.
fn version_text(v: &[u8]) -> std::borrow::Cow<'static, str> {
    match v {
        b"1.1" => "1.1".into(),
        b"1.0" => "1.0".into(),
        _ => util::text(v).into(),
    }
}

/// A header name as Arkime's fields hold it: lower case, into `out`.
pub(super) fn lower_name(name: &[u8], out: &mut String) {
    out.clear();
    match std::str::from_utf8(name) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(name)),
    }
    out.make_ascii_lowercase();
}

struct DirState {
    state: State,
    line: Vec<u8>,
    msg: Message,
    ws: WsDir,
}

impl Default for DirState {
    fn default() -> Self {
        DirState {
            state: State::Start,
            line: Vec::new(),
            msg: Message::default(),
            ws: WsDir::default(),
        }
    }
}

#[derive(Default)]
struct WsDir {
    buf: Vec<u8>,
}

/// The HTTP parser of one session.
pub struct Http {
    dirs: [DirState; 2],
    /// Methods of requests whose response has not been read (responses to
    /// HEAD and CONNECT have no body).
    pending: std::collections::VecDeque<&'static str>,
    settings: HttpSettings,
    websocket: bool,
    ws_frames: i64,
    ws_masked: i64,
    ws_bytes: i64,
    ws_text_samples: u32,
    /// A reused buffer for lower-cased header names.
    lname: String,
}

fn section_keys(config: &ProtocolConfig, name: &str) -> Vec<String> {
    config
        .sections
        .get(name)
        .map(|s| s.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default()
}

/// The settings an HTTP parser reads, resolved once per analyzer.
#[derive(Debug, Clone)]
pub(crate) struct HttpSettings {
    max_req_body: usize,
    sha256: bool,
    /// `parseQSValue`: query-string values too (keys always).
    qs_values: bool,
    /// `parseCookieValue`: cookie values too (names always).
    cookie_values: bool,
    /// Header names of `[headers-http-request]` / `[headers-http-response]`.
    req_headers: Arc<[String]>,
    res_headers: Arc<[String]>,
    /// `parseHTTPHeaderRequestAll` / `parseHTTPHeaderResponseAll`: every
    /// other header's name and value in `http.requestHeaderField/Value`
    /// (`http.responseHeaderField/Value`).
    all_req_headers: bool,
    all_res_headers: bool,
    /// `parseHTTPHeaderValueMaxLen`: longest value kept in those lists.
    header_value_max: usize,
    /// Body magic (`magicMode` other than `none`).
    magic: bool,
    /// `reqBodyOnlyUtf8`: request bodies that are not UTF-8 text are left
    /// out (else they are kept, as base64).
    req_body_only_utf8: bool,
}

impl HttpSettings {
    /// `maxReqBody`, `supportSha256`, `parseQSValue`, `parseCookieValue`
    /// and the header sections.
    pub(crate) fn new(config: &ProtocolConfig) -> HttpSettings {
        HttpSettings {
            max_req_body: config.get_int("maxReqBody", 256).clamp(0, 1 << 20) as usize,
            sha256: config.get_bool("supportSha256", false),
            qs_values: config.get_bool("parseQSValue", false),
            cookie_values: config.get_bool("parseCookieValue", false),
            req_headers: section_keys(config, "headers-http-request").into(),
            res_headers: section_keys(config, "headers-http-response").into(),
            all_req_headers: config.get_bool("parseHTTPHeaderRequestAll", false),
            all_res_headers: config.get_bool("parseHTTPHeaderResponseAll", false),
            header_value_max: config
                .get_int("parseHTTPHeaderValueMaxLen", 1024)
                .clamp(1, 2048) as usize,
            magic: super::magic::enabled(config),
            req_body_only_utf8: config.get_bool("reqBodyOnlyUtf8", true),
        }
    }

    /// `supportSha256`.
    pub(crate) fn sha256(&self) -> bool {
        self.sha256
    }

    /// Body magic wanted (`magicMode` is not `none`).
    pub(crate) fn magic(&self) -> bool {
        self.magic
    }

    /// `parseQSValue`.
    pub(crate) fn qs_values(&self) -> bool {
        self.qs_values
    }

    /// `parseCookieValue`.
    pub(crate) fn cookie_values(&self) -> bool {
        self.cookie_values
    }

    /// A value as the header value lists keep it: at most
    /// `parseHTTPHeaderValueMaxLen` bytes (cut at a character boundary).
    fn clip<'v>(&self, v: &'v str) -> &'v str {
        if v.len() <= self.header_value_max {
            return v;
        }
        let mut end = self.header_value_max;
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        &v[..end]
    }
}

/// One header of a message as Arkime adds headers outside its HTTP/1
/// parser (HTTP/2): the name to `http.requestHeader` / `responseHeader`;
/// the value to the header's own field (`host`, `user-agent`,
/// `x-forwarded-for` in requests, `[headers-http-*]`), or else, when
/// `parseHTTPHeader*All` asks for it, name and value to the field/value
/// lists. `lname` is the lower-cased name.
pub(super) fn add_header(
    o: &mut Out<'_, '_>,
    settings: &HttpSettings,
    is_req: bool,
    lname: &str,
    value: &[u8],
) {
    let start = value
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(value.len());
    let v = util::text_cow(&value[start..]);
    let (configured, all) = if is_req {
        o.s("http.hasheader.src", lname);
        match lname {
            "host" => {
                o.s("host.http", &v);
                return;
            }
            "user-agent" => {
                o.s("http.user-agent", &v);
                return;
            }
            "x-forwarded-for" => {
                xff(o, &v);
                return;
            }
            _ => {}
        }
        (&settings.req_headers, settings.all_req_headers)
    } else {
        o.s("http.hasheader.dst", lname);
        (&settings.res_headers, settings.all_res_headers)
    };
    if configured.iter().any(|h| h == lname) {
        o.s_dyn(&format!("http.{lname}"), &v);
    } else if all && is_req {
        o.push("http.header.request.field", lname);
        o.push("http.hasheader.src.value", settings.clip(&v));
    } else if all {
        o.push("http.header.response.field", lname);
        o.push("http.hasheader.dst.value", settings.clip(&v));
    }
}

/// `X-Forwarded-For` addresses to `ip.xff` (a bad one tags the session).
fn xff(o: &mut Out<'_, '_>, value: &str) {
    for part in value.split(',') {
        match inet_addr(part.trim()) {
            Some(ip) => {
                o.ip("ip.xff", ip);
            }
            None => o.tag("http:bad-xff"),
        }
    }
}

impl Http {
    /// A parser with the settings it reads (`maxReqBody`, `supportSha256`).
    pub fn new(config: &ProtocolConfig) -> Http {
        Http::with_settings(&HttpSettings::new(config))
    }

    fn with_settings(s: &HttpSettings) -> Http {
        Http {
            dirs: [DirState::default(), DirState::default()],
            pending: Default::default(),
            settings: s.clone(),
            websocket: false,
            ws_frames: 0,
            ws_masked: 0,
            ws_bytes: 0,
            ws_text_samples: 0,
            lname: String::with_capacity(32),
        }
    }

    fn line_state(&mut self, cx: &mut ParseContext<'_>, d: usize, dir: Direction, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match self.dirs[d].state {
            State::Start => {
                if line.is_empty() {
                    return;
                }
                self.start_line(cx, d, dir, line);
            }
            State::Headers => {
                if line.is_empty() {
                    self.headers_complete(cx, d, dir);
                    return;
                }
                let msg = &mut self.dirs[d].msg;
                if (line[0] == b' ' || line[0] == b'\t') && !msg.headers.is_empty() {
                    // Obsolete folding continues the previous value.
                    msg.fold(trim(line));
                    return;
                }
                let Some(colon) = memchr::memchr(b':', line) else {
                    return;
                };
                if msg.headers.len() < MAX_HEADERS {
                    msg.push_header(trim(&line[..colon]), trim(&line[colon + 1..]));
                }
            }
            State::ChunkSize => {
                let hexpart = line.split(|&c| c == b';').next().unwrap_or(b"");
                // Not UTF-8 is not hexadecimal either.
                let s = std::str::from_utf8(trim(hexpart)).unwrap_or("-");
                match u64::from_str_radix(s, 16) {
                    Ok(0) => self.dirs[d].state = State::Trailers,
                    Ok(n) => self.dirs[d].state = State::ChunkData(n),
                    Err(_) => self.dirs[d].state = State::Dead,
                }
            }
            State::ChunkEnd => {
                self.dirs[d].state = State::ChunkSize;
            }
            State::Trailers if line.is_empty() => {
                self.message_complete(cx, d, dir);
            }
            _ => {}
        }
    }

    fn start_line(&mut self, cx: &mut ParseContext<'_>, d: usize, dir: Direction, line: &[u8]) {
        let msg = &mut self.dirs[d].msg;
        msg.reset();
        if line.starts_with(b"HTTP/") {
            let mut parts = line.splitn(3, |&c| c == b' ');
            let ver = parts.next().unwrap_or(b"");
            let code = parts.next().unwrap_or(b"");
            msg.version = version_text(&ver[5..]);
            let Ok(status) = std::str::from_utf8(code).unwrap_or("").parse::<u16>() else {
                self.dirs[d].state = State::Dead;
                return;
            };
            msg.status = status;
            cx.http_event(HttpEvent::MessageBegin, None, dir);
        } else {
            let mut parts = line.split(|&c| c == b' ').filter(|p| !p.is_empty());
            let method = parts.next().unwrap_or(b"");
            let url = parts.next().unwrap_or(b"");
            let ver = parts.next().unwrap_or(b"");
            let Some(method) = METHODS
                .iter()
                .map(|(m, _)| *m)
                .chain(["PRI"])
                .find(|m| m.as_bytes() == method)
            else {
                self.dirs[d].state = State::Dead;
                return;
            };
            if !ver.starts_with(b"HTTP/") {
                // A broken request line: the URL was seen before the
                // error, nothing else.
                if !url.is_empty() {
                    cx.fields
                        .add_str_expr(cx.registry, "http.uri", &util::text(url));
                }
                self.dirs[d].state = State::Dead;
                return;
            }
            msg.is_request = true;
            msg.method = method;
            msg.url.extend_from_slice(url);
            msg.version = version_text(ver.strip_prefix(b"HTTP/").unwrap_or(ver));
            cx.http_event(HttpEvent::MessageBegin, Some(method.as_bytes()), dir);
            cx.http_event(HttpEvent::Url, Some(url), dir);
        }
        self.dirs[d].state = State::Headers;
    }

    fn headers_complete(&mut self, cx: &mut ParseContext<'_>, d: usize, dir: Direction) {
        let msg = std::mem::take(&mut self.dirs[d].msg);
        if cx.wants_http(HttpEvent::HeaderFieldRaw)
            || cx.wants_http(HttpEvent::HeaderField)
            || cx.wants_http(HttpEvent::HeaderValue)
        {
            for (name, value) in msg.iter() {
                let lower = name.to_ascii_lowercase();
                cx.http_event(HttpEvent::HeaderFieldRaw, Some(name), dir);
                cx.http_event(HttpEvent::HeaderField, Some(&lower), dir);
                cx.http_event(HttpEvent::HeaderValue, Some(value), dir);
            }
        }
        {
            let mut o = super::out(cx);
            let mut lname = std::mem::take(&mut self.lname);
            if msg.is_request {
                self.request_fields(&mut o, &msg, &mut lname);
            } else {
                self.response_fields(&mut o, &msg, &mut lname);
            }
            self.lname = lname;
        }
        let configured = if msg.is_request {
            &self.settings.req_headers
        } else {
            &self.settings.res_headers
        };
        header_config_fields(cx, configured, &msg);
        cx.http_event(HttpEvent::HeadersComplete, None, dir);

        let header = |n: &str| msg.header(n.as_bytes());
        let chunked =
            header("transfer-encoding").is_some_and(|v| find_nocase(v, b"chunked").is_some());
        let length = header("content-length")
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        let next = if msg.is_request {
            self.pending.push_back(msg.method);
            if chunked {
                State::ChunkSize
            } else {
                match length {
                    Some(0) | None => State::Start,
                    Some(n) => State::Body(n),
                }
            }
        } else {
            let status = msg.status;
            let method = if (100..200).contains(&status) && status != 101 {
                None
            } else {
                self.pending.pop_front()
            };
            let method = method.unwrap_or("");
            if status == 101 {
                let upgrade =
                    header("upgrade").is_some_and(|v| find_nocase(v, b"websocket").is_some());
                if upgrade {
                    self.websocket = true;
                    cx.fields.add_protocol("websocket");
                    self.dirs[0].state = State::Websocket;
                    self.dirs[1].state = State::Websocket;
                    self.dirs[d].msg = msg;
                    return;
                }
                State::Dead
            } else if method == "CONNECT" && (200..300).contains(&status) {
                // A tunnel follows: not HTTP any more.
                self.dirs[0].state = State::Dead;
                State::Dead
            } else if method == "HEAD"
                || (100..200).contains(&status)
                || status == 204
                || status == 304
            {
                State::Start
            } else if chunked {
                State::ChunkSize
            } else {
                match length {
                    Some(0) => State::Start,
                    Some(n) => State::Body(n),
                    None => State::UntilClose,
                }
            }
        };
        let mut msg = msg;
        msg.clear_headers();
        self.dirs[d].msg = msg;
        self.dirs[d].state = next;
        if next == State::Start {
            self.message_complete(cx, d, dir);
        }
    }

    fn request_fields(&self, o: &mut Out<'_, '_>, msg: &Message, lname: &mut String) {
        o.protocol("http");
        o.s("http.method", msg.method);
        let upgrade = msg.iter().any(|(k, _)| k.eq_ignore_ascii_case(b"upgrade"));
        if !upgrade && let Some((_, counter)) = METHODS.iter().find(|(m, _)| *m == msg.method) {
            o.incr(counter);
        }
        o.s("http.version.src", &msg.version);
        let mut host: Option<String> = None;
        let mut cookie: Vec<u8> = Vec::new();
        for (name, value) in msg.iter() {
            lower_name(name, lname);
            let lname = lname.as_str();
            o.s("http.hasheader.src", lname);
            let vtext = util::text_cow(value);
            match lname {
                "host" => {
                    if host.is_none() {
                        host = Some(vtext.to_ascii_lowercase());
                    }
                    continue;
                }
                "user-agent" => {
                    o.s("http.user-agent", &vtext);
                    continue;
                }
                "x-forwarded-for" => {
                    xff(o, &vtext);
                    continue;
                }
                "cookie" => {
                    if !cookie.is_empty() {
                        cookie.extend_from_slice(b"; ");
                    }
                    cookie.extend_from_slice(value);
                }
                "authorization" => auth(o, value),
                _ => {}
            }
            if !self.settings.all_req_headers
                || self.settings.req_headers.iter().any(|h| h == lname)
            {
                continue;
            }
            o.push("http.header.request.field", lname);
            o.push("http.hasheader.src.value", self.settings.clip(&vtext));
        }
        cookies(o, &cookie, self.settings.cookie_values);
        let url = &msg.url[..msg.url.len().min(MAX_URL)];
        if msg.url.len() > MAX_URL {
            o.tag("http:url-truncated");
        }
        if url.iter().any(|&c| c < 32) {
            o.tag("http:control-char");
        }
        if let Some(h) = &host {
            o.s("host.http", h);
            if let Some(colon) = h.rfind(':')
                && !h.ends_with(']')
            {
                o.s("host.http", &h[..colon]);
            }
        }
        let (path, query) = match url.iter().position(|&c| c == b'?') {
            Some(q) => (&url[..q], Some(&url[q + 1..])),
            None => (url, None),
        };
        // Path and query fields come only with a Host header.
        if host.is_some() {
            o.s("http.uri.path", &util::text_cow(path));
            if let Some(q) = query {
                query_fields(o, q, self.settings.qs_values);
            }
        }
        let urltext = util::text_cow(url);
        let joined = |sep: &str, h: &str| {
            let mut s = String::with_capacity(h.len() + sep.len() + urltext.len());
            s.push_str(h);
            s.push_str(sep);
            s.push_str(&urltext);
            std::borrow::Cow::Owned(s)
        };
        let uri = match &host {
            Some(h) if url.first() == Some(&b'/') => joined("", h),
            Some(h) => match urltext.find(h.as_str()) {
                Some(at) if at <= 8 => urltext.clone(),
                _ if url.is_empty() => std::borrow::Cow::Borrowed(h.as_str()),
                _ => joined(";", h),
            },
            None => urltext.clone(),
        };
        if !uri.is_empty() {
            o.s("http.uri", &uri);
        }
    }

    fn response_fields(&self, o: &mut Out<'_, '_>, msg: &Message, lname: &mut String) {
        o.protocol("http");
        o.i("http.statuscode", i64::from(msg.status));
        o.s("http.version.dst", &msg.version);
        for (name, value) in msg.iter() {
            lower_name(name, lname);
            let lname = lname.as_str();
            o.s("http.hasheader.dst", lname);
            if !self.settings.all_res_headers
                || self.settings.res_headers.iter().any(|h| h == lname)
            {
                continue;
            }
            o.push("http.header.response.field", lname);
            o.push(
                "http.hasheader.dst.value",
                self.settings.clip(&util::text_cow(value)),
            );
        }
    }

    fn body(&mut self, cx: &mut ParseContext<'_>, d: usize, dir: Direction, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let sha = self.settings.sha256;
        let want_magic = self.settings.magic;
        let max_body = self.settings.max_req_body;
        let msg = &mut self.dirs[d].msg;
        if !msg.in_body {
            msg.in_body = true;
            msg.md5 = Some(Md5::new());
            if sha {
                msg.sha256 = Some(Sha256::new());
            }
            if has_password(data) {
                cx.fields.add_tag("http:password");
            }
            if want_magic && let Some(m) = magic::basic(data) {
                super::out(cx).s("http.bodymagic", m);
            }
        }
        if let Some(h) = msg.md5.as_mut() {
            h.update(data);
        }
        if let Some(h) = msg.sha256.as_mut() {
            h.update(data);
        }
        if d == 0 && msg.req_body.len() < max_body {
            let take = (max_body - msg.req_body.len()).min(data.len());
            msg.req_body.extend_from_slice(&data[..take]);
        }
        cx.http_event(HttpEvent::Body, Some(data), dir);
        cx.body("http", data);
    }

    fn message_complete(&mut self, cx: &mut ParseContext<'_>, d: usize, dir: Direction) {
        let msg = &mut self.dirs[d].msg;
        if msg.in_body {
            let mut o = super::out(cx);
            let mut hex = std::mem::take(&mut self.lname);
            if let Some(h) = msg.md5.take() {
                hex.clear();
                util::push_hex(&mut hex, &h.finalize());
                o.s("http.md5", &hex);
            }
            if let Some(h) = msg.sha256.take() {
                hex.clear();
                util::push_hex(&mut hex, &h.finalize());
                o.s("http.sha256", &hex);
            }
            self.lname = hex;
            if !msg.req_body.is_empty()
                && let Some(text) =
                    request_body_text(&msg.req_body, self.settings.req_body_only_utf8)
            {
                o.push("http.reqbody", &text);
            }
        }
        msg.reset();
        cx.http_event(HttpEvent::MessageComplete, None, dir);
        if self.dirs[d].state != State::Dead && self.dirs[d].state != State::Websocket {
            self.dirs[d].state = State::Start;
        }
    }

    fn websocket_data(&mut self, cx: &mut ParseContext<'_>, d: usize, data: &[u8]) {
        let ws = &mut self.dirs[d].ws;
        if !ws.buf.is_empty() || data.len() < 2 {
            if ws.buf.len() + data.len() > MAX_HEADER_BYTES {
                ws.buf.clear();
                self.dirs[d].state = State::Dead;
                return;
            }
            ws.buf.extend_from_slice(data);
        }
        let owned;
        let mut rest: &[u8] = if ws.buf.is_empty() {
            data
        } else {
            owned = std::mem::take(&mut ws.buf);
            &owned
        };
        loop {
            match ws_frame(rest) {
                WsFrame::Need => break,
                WsFrame::Bad => {
                    self.dirs[d].state = State::Dead;
                    return;
                }
                WsFrame::Frame {
                    opcode,
                    masked,
                    payload,
                    len,
                    total,
                } => {
                    self.ws_frames += 1;
                    if masked && d == 0 {
                        self.ws_masked += 1;
                    }
                    self.ws_bytes += len as i64;
                    let name = match opcode {
                        0 => "Continuation",
                        1 => "Text",
                        2 => "Binary",
                        8 => "Close",
                        9 => "Ping",
                        10 => "Pong",
                        _ => "Unknown",
                    };
                    let mut o = super::out(cx);
                    o.s("websocket.opcode", name);
                    if opcode == 1 && self.ws_text_samples < 4 {
                        self.ws_text_samples += 1;
                        let sample: Vec<u8> = payload.iter().take(256).copied().collect();
                        o.s("websocket.textSample", &util::text(&sample));
                    }
                    rest = &rest[total.min(rest.len())..];
                    if total > data.len() + MAX_HEADER_BYTES {
                        // A huge frame: skip the rest of its payload.
                        self.dirs[d].state = State::Dead;
                        return;
                    }
                }
            }
        }
        if !rest.is_empty() {
            let keep = rest.to_vec();
            self.dirs[d].ws.buf = keep;
        }
    }
}

enum WsFrame {
    Need,
    Bad,
    Frame {
        opcode: u8,
        masked: bool,
        payload: Vec<u8>,
        len: u64,
        total: usize,
    },
}

/// Reads one websocket frame; `payload` is the unmasked start of the
/// payload (at most 256 bytes).
fn ws_frame(b: &[u8]) -> WsFrame {
    if b.len() < 2 {
        return WsFrame::Need;
    }
    let opcode = b[0] & 0x0f;
    if b[0] & 0x70 != 0 {
        return WsFrame::Bad;
    }
    let masked = b[1] & 0x80 != 0;
    let mut len = u64::from(b[1] & 0x7f);
    let mut at = 2usize;
    if len == 126 {
        let Some(l) = util::be16(b, 2) else {
            return WsFrame::Need;
        };
        len = u64::from(l);
        at = 4;
    } else if len == 127 {
        let Some(s) = b.get(2..10) else {
            return WsFrame::Need;
        };
        len = u64::from_be_bytes(s.try_into().unwrap_or([0; 8]));
        at = 10;
    }
    let mask = if masked {
        let Some(m) = b.get(at..at + 4) else {
            return WsFrame::Need;
        };
        at += 4;
        [m[0], m[1], m[2], m[3]]
    } else {
        [0; 4]
    };
    let Ok(plen) = usize::try_from(len) else {
        return WsFrame::Bad;
    };
    if plen > MAX_HEADER_BYTES {
        return WsFrame::Bad;
    }
    let total = at + plen;
    if b.len() < total {
        return WsFrame::Need;
    }
    let payload = b[at..at + plen.min(256)]
        .iter()
        .enumerate()
        .map(|(i, &c)| c ^ mask[i % 4])
        .collect();
    WsFrame::Frame {
        opcode,
        masked,
        payload,
        len,
        total,
    }
}

/// Adds the values of headers listed in `[headers-http-request]` /
/// `[headers-http-response]` to their `http.<name>` fields.
fn header_config_fields(cx: &mut ParseContext<'_>, configured: &[String], msg: &Message) {
    if configured.is_empty() {
        return;
    }
    for (name, value) in msg.iter() {
        let lname = String::from_utf8_lossy(name).to_ascii_lowercase();
        if configured.contains(&lname) {
            let mut o = super::out(cx);
            o.s_dyn(&format!("http.{lname}"), &util::text(value));
        }
    }
}

/// An IPv6 address, or an IPv4 address as C's `inet_addr` reads it
/// (octal with a leading 0, hex with 0x); 0.0.0.0 and 255.255.255.255 are
/// refused as Arkime refuses them.
pub(crate) fn inet_addr(s: &str) -> Option<std::net::IpAddr> {
    if s.contains(':') {
        return s.parse().ok();
    }
    let mut parts = [0u32; 4];
    let mut n = 0;
    for p in s.split('.') {
        if n == 4 || p.is_empty() {
            return None;
        }
        let v = if let Some(h) = p.strip_prefix("0x").or_else(|| p.strip_prefix("0X")) {
            u32::from_str_radix(h, 16).ok()?
        } else if p.len() > 1 && p.starts_with('0') {
            u32::from_str_radix(&p[1..], 8).ok()?
        } else {
            p.parse().ok()?
        };
        parts[n] = v;
        n += 1;
    }
    let v = match n {
        4 if parts.iter().all(|&p| p <= 255) => {
            parts[0] << 24 | parts[1] << 16 | parts[2] << 8 | parts[3]
        }
        1 => parts[0],
        _ => return None,
    };
    if v == 0 || v == u32::MAX {
        return None;
    }
    Some(std::net::IpAddr::V4(v.into()))
}

fn auth(o: &mut Out<'_, '_>, value: &[u8]) {
    let v = trim(value);
    let Some(sp) = v.iter().position(|&c| c == b' ') else {
        return;
    };
    let kind = util::text(&v[..sp]).to_ascii_lowercase();
    o.s("http.authtype", &kind);
    let rest = trim(&v[sp..]);
    if kind == "basic" {
        if rest.starts_with(b"token=") {
            return;
        }
        use base64::Engine;
        if let Ok(dec) = base64::engine::general_purpose::STANDARD.decode(rest) {
            let user = dec.split(|&c| c == b':').next().unwrap_or(b"");
            o.s("http.user", &util::text(user));
        }
    } else if kind == "digest" {
        let Some(at) = find_nocase(rest, b"username") else {
            return;
        };
        let mut s = trim(&rest[at + 8..]);
        if s.first() != Some(&b'=') {
            return;
        }
        s = trim(&s[1..]);
        let user = if s.first() == Some(&b'"') {
            let s = &s[1..];
            &s[..s.iter().position(|&c| c == b'"').unwrap_or(s.len())]
        } else {
            &s[..s.iter().position(|&c| c == b',').unwrap_or(s.len())]
        };
        o.s("http.user", &util::text(user));
    }
}

pub(super) fn cookies(o: &mut Out<'_, '_>, cookie: &[u8], values: bool) {
    for part in cookie.split(|&c| c == b';') {
        let part = trim(part);
        let Some(eq) = part.iter().position(|&c| c == b'=') else {
            continue;
        };
        let key = &part[..eq];
        if !key.is_empty() {
            o.s("http.cookie.key", &util::text(key));
        }
        let val = trim(&part[eq + 1..]);
        if values && !val.is_empty() {
            o.s("http.cookie.value", &util::text(val));
        }
    }
}

pub(super) fn query_fields(o: &mut Out<'_, '_>, q: &[u8], values: bool) {
    for part in q.split(|&c| c == b'&') {
        if part.is_empty() {
            continue;
        }
        let (k, v) = match part.iter().position(|&c| c == b'=') {
            Some(eq) => (&part[..eq], Some(&part[eq + 1..])),
            None => (part, None),
        };
        if !k.is_empty() {
            let key = util::uri_unescape(k).unwrap_or_else(|| util::text(k));
            o.s("http.uri.key", &key);
        }
        if let Some(v) = v
            && values
            && !v.is_empty()
        {
            let val = util::uri_unescape(v).unwrap_or_else(|| util::text(v));
            o.s("http.uri.value", &val);
        }
    }
}

/// Whether a body holds `password=`, `passwd=` or `pass=` (any case).
/// `=` is rarer than `p`, so the scan looks for it and checks before it.
fn has_password(data: &[u8]) -> bool {
    memchr::memchr_iter(b'=', data).any(|e| {
        let before = &data[..e];
        let ends = |s: &[u8]| {
            before.len() >= s.len() && before[before.len() - s.len()..].eq_ignore_ascii_case(s)
        };
        ends(b"pass") || ends(b"passwd") || ends(b"password")
    })
}

/// A request body as its field holds it: the text when it is UTF-8
/// without NUL bytes (GLib's `g_utf8_validate`, which Arkime uses); other
/// bodies are left out when `only_utf8` (`reqBodyOnlyUtf8`, Arkime's
/// default), else kept as base64 (documents are UTF-8 JSON).
fn request_body_text(b: &[u8], only_utf8: bool) -> Option<String> {
    match std::str::from_utf8(b) {
        Ok(s) if !s.contains('\0') => Some(s.to_string()),
        _ if only_utf8 => None,
        _ => {
            use base64::Engine;
            Some(base64::engine::general_purpose::STANDARD.encode(b))
        }
    }
}

impl Parser for Http {
    fn name(&self) -> &'static str {
        "http"
    }

    fn parse(
        &mut self,
        cx: &mut ParseContext<'_>,
        dir: Direction,
        mut data: &[u8],
    ) -> ParserStatus {
        let d = dir.index();
        while !data.is_empty() {
            match self.dirs[d].state {
                State::Dead => break,
                State::Websocket => {
                    self.websocket_data(cx, d, data);
                    break;
                }
                State::Body(n) => {
                    let take = (n.min(data.len() as u64)) as usize;
                    self.body(cx, d, dir, &data[..take]);
                    data = &data[take..];
                    let left = n - take as u64;
                    if left == 0 {
                        self.dirs[d].state = State::Start;
                        self.message_complete(cx, d, dir);
                    } else {
                        self.dirs[d].state = State::Body(left);
                    }
                }
                State::ChunkData(n) => {
                    let take = (n.min(data.len() as u64)) as usize;
                    self.body(cx, d, dir, &data[..take]);
                    data = &data[take..];
                    let left = n - take as u64;
                    self.dirs[d].state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                }
                State::UntilClose => {
                    self.body(cx, d, dir, data);
                    break;
                }
                _ => {
                    let Some(nl) = memchr::memchr(b'\n', data) else {
                        let line = &mut self.dirs[d].line;
                        if line.len() + data.len() > MAX_HEADER_BYTES {
                            self.dirs[d].state = State::Dead;
                        } else {
                            line.extend_from_slice(data);
                        }
                        break;
                    };
                    let piece = &data[..nl];
                    data = &data[nl + 1..];
                    if self.dirs[d].line.is_empty() {
                        self.line_state(cx, d, dir, piece);
                    } else {
                        let mut line = std::mem::take(&mut self.dirs[d].line);
                        if line.len() + piece.len() > MAX_HEADER_BYTES {
                            self.dirs[d].state = State::Dead;
                            break;
                        }
                        line.extend_from_slice(piece);
                        self.line_state(cx, d, dir, &line);
                        line.clear();
                        if self.dirs[d].line.is_empty() {
                            self.dirs[d].line = line;
                        }
                    }
                }
            }
        }
        if self.dirs[0].state == State::Dead && self.dirs[1].state == State::Dead {
            return ParserStatus::Done;
        }
        ParserStatus::Continue
    }

    fn finish(&mut self, cx: &mut ParseContext<'_>) {
        for d in 0..2 {
            if self.dirs[d].state == State::UntilClose {
                self.message_complete(cx, d, Direction::from_index(d));
            }
        }
        if self.websocket && self.ws_frames > 0 {
            let mut o = super::out(cx);
            o.scalar("websocket.frameCnt", self.ws_frames.into());
            o.scalar("websocket.maskedFromClient", self.ws_masked.into());
            o.scalar("websocket.payloadBytes", self.ws_bytes.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parsers::testutil::Harness;

    /// `magicMode=none` leaves body magic out; any other mode uses the
    /// basic table. Hashes do not depend on it.
    #[test]
    fn magic_mode_none_turns_body_magic_off() {
        let run = |mode: Option<&str>| {
            let mut h = Harness::with_setting(crate::Transport::Tcp, 80, "magicMode", mode);
            h.feed(0, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            h.feed(
                1,
                b"HTTP/1.1 200 OK\r\nContent-Length: 14\r\n\r\n<html><body/>\n",
            );
            h.finish();
            h.json()
        };
        for mode in [None, Some("basic"), Some("both"), Some("libmagic")] {
            let j = run(mode);
            assert_eq!(
                j["http"]["bodyMagic"],
                serde_json::json!(["text/html"]),
                "{mode:?} {j}"
            );
        }
        let j = run(Some("none"));
        assert!(j["http"].get("bodyMagic").is_none(), "{j}");
        assert_eq!(j["http"]["md5"], run(None)["http"]["md5"]);
    }

    #[test]
    fn get_with_response() {
        let mut h = Harness::tcp(80);
        h.feed(0, b"GET /a/b?x=1&y=%41&z HTTP/1.1\r\nHost: Example.com:8080\r\nUser-Agent: t\r\nCookie: a=1; b=\r\n\r\n");
        h.feed(1, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
        h.finish();
        let j = h.json();
        assert_eq!(
            j["http"]["uri"],
            serde_json::json!(["example.com:8080/a/b?x=1&y=%41&z"])
        );
        assert_eq!(
            j["http"]["host"],
            serde_json::json!(["example.com:8080", "example.com"])
        );
        assert_eq!(j["http"]["key"], serde_json::json!(["x", "y", "z"]));
        assert_eq!(j["http"]["value"], serde_json::json!(["1", "A"]));
        assert_eq!(j["http"]["cookieKey"], serde_json::json!(["a", "b"]));
        assert_eq!(j["http"]["statuscode"], serde_json::json!([200]));
        assert_eq!(
            j["http"]["md5"],
            serde_json::json!(["5d41402abc4b2a76b9719d911017c592"])
        );
        assert_eq!(j["http"]["method-GET"], serde_json::json!(1));
    }

    #[test]
    fn query_and_cookie_values_only_when_asked_for() {
        let req = b"GET /a?x=1&y=2 HTTP/1.1\r\nHost: h\r\nCookie: a=1; b=2\r\n\r\n";
        let mut h = Harness::tcp_defaults(80);
        h.feed(0, req);
        h.finish();
        let j = h.json();
        assert_eq!(j["http"]["key"], serde_json::json!(["x", "y"]));
        assert_eq!(j["http"]["cookieKey"], serde_json::json!(["a", "b"]));
        assert!(j["http"].get("value").is_none(), "{j}");
        assert!(j["http"].get("cookieValue").is_none(), "{j}");
        // parseQSValue / parseCookieValue turn them on (Harness::tcp).
        let mut h = Harness::tcp(80);
        h.feed(0, req);
        h.finish();
        let j = h.json();
        assert_eq!(j["http"]["value"], serde_json::json!(["1", "2"]));
        assert_eq!(j["http"]["cookieValue"], serde_json::json!(["1", "2"]));
    }

    #[test]
    fn header_lists_follow_their_settings() {
        let long = "v".repeat(1500);
        let req = format!("GET / HTTP/1.1\r\nHost: h\r\nAccept: */*\r\nX-Long: {long}\r\n\r\n");
        let res = b"HTTP/1.1 204 No Content\r\nServer: s\r\n\r\n";
        // Off by default (Arkime's defaults): only the header names.
        let mut h = Harness::tcp_defaults(80);
        h.feed(0, req.as_bytes());
        h.feed(1, res);
        h.finish();
        let j = h.json();
        assert_eq!(
            j["http"]["requestHeader"],
            serde_json::json!(["host", "accept", "x-long"])
        );
        assert_eq!(j["http"]["responseHeader"], serde_json::json!(["server"]));
        for k in [
            "requestHeaderField",
            "requestHeaderValue",
            "responseHeaderField",
        ] {
            assert!(j["http"].get(k).is_none(), "{k}: {j}");
        }
        // On: names and values, values cut at parseHTTPHeaderValueMaxLen.
        let mut h = Harness::tcp(80);
        h.feed(0, req.as_bytes());
        h.feed(1, res);
        h.finish();
        let j = h.json();
        assert_eq!(
            j["http"]["requestHeaderField"],
            serde_json::json!(["accept", "x-long"])
        );
        assert_eq!(
            j["http"]["requestHeaderValue"],
            serde_json::json!(["*/*", "v".repeat(1024)])
        );
        assert_eq!(j["http"]["responseHeaderValue"], serde_json::json!(["s"]));
    }

    #[test]
    fn chunked_split_and_auth() {
        let mut h = Harness::tcp(80);
        let req = b"POST / HTTP/1.1\r\nAuthorization: Basic dXNlcjpwYXNz\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        // The first data is classified; the rest arrives in small pieces.
        h.feed(0, &req[..16]);
        for c in req[16..].chunks(3) {
            h.feed(0, c);
        }
        h.finish();
        let j = h.json();
        assert_eq!(j["http"]["user"], serde_json::json!(["user"]));
        assert_eq!(
            j["http"]["md5"],
            serde_json::json!(["5d41402abc4b2a76b9719d911017c592"])
        );
        assert_eq!(j["http"]["requestBody"], serde_json::json!(["hello"]));
    }

    /// As Arkime (`reqBodyOnlyUtf8`, on by default), a request body that
    /// is not UTF-8 text is left out; with it off it is kept as base64.
    #[test]
    fn binary_request_bodies_follow_req_body_only_utf8() {
        let run = |only: Option<&str>, body: &[u8]| {
            let mut h = Harness::with_setting(crate::Transport::Tcp, 80, "reqBodyOnlyUtf8", only);
            let mut req =
                format!("POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
            req.extend_from_slice(body);
            h.feed(0, &req);
            h.finish();
            h.json()["http"]["requestBody"].clone()
        };
        let binary = b"\x00\xffbin";
        assert_eq!(run(None, binary), serde_json::Value::Null);
        assert_eq!(run(Some("true"), binary), serde_json::Value::Null);
        assert_eq!(run(Some("false"), binary), serde_json::json!(["AP9iaW4="]));
        assert_eq!(run(None, b"a=1&b=2"), serde_json::json!(["a=1&b=2"]));
    }

    #[test]
    fn password_scan_and_folded_headers() {
        for (body, tagged) in [
            (&b"user=a&PassWord=x"[..], true),
            (b"passwd=", true),
            (b"x pass=1", true),
            (b"pass word=1 pas=2 =pass", false),
            (b"=", false),
        ] {
            assert_eq!(super::has_password(body), tagged, "{body:?}");
        }
        let mut h = Harness::tcp(80);
        h.feed(
            0,
            b"GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: a\r\n  b\r\n\r\n",
        );
        h.finish();
        let j = h.json();
        assert_eq!(j["http"]["useragent"], serde_json::json!(["a b"]));
        assert_eq!(
            j["http"]["requestHeader"],
            serde_json::json!(["host", "user-agent"])
        );
    }

    #[test]
    fn hostile_inputs_do_not_panic() {
        for input in [
            &b"GET"[..],
            b"GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\nx",
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n",
            b"HTTP/1.1 abc\r\n",
            b"HTTP/1.1 101 x\r\nUpgrade: websocket\r\n\r\n\x81\x7f\xff\xff\xff\xff\xff\xff\xff\xff",
            b"\r\n\r\n\r\n",
        ] {
            let mut h = Harness::tcp(80);
            h.feed(0, input);
            h.feed(1, input);
            h.finish();
        }
        let mut h = Harness::tcp(80);
        h.feed(0, b"GET / HTTP/1.1\r\nX: ");
        h.feed(0, &vec![b'a'; 100_000]);
        h.finish();
    }
}
