//! HTTP/1.1 on both sides: head parsing with `httparse`, message framing
//! (RFC 9112 §6), request-smuggling checks, and body forwarding.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::txn::{Headers, ReqHead, ResHead};

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Malformed message (→ 400).
    #[error("bad message: {0}")]
    Bad(String),
    /// Header section larger than the buffer (→ 431).
    #[error("header section too large")]
    TooLarge,
    /// The peer did not send in time (→ 408 / 504).
    #[error("timeout")]
    Timeout,
    /// The peer closed before a complete message.
    #[error("connection closed")]
    Closed,
    /// Socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    Empty,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// A socket with a read buffer.
pub struct Conn {
    /// The socket.
    pub io: TcpStream,
    /// Bytes read and not yet consumed start at `pos`.
    pub buf: Vec<u8>,
    /// Consumed prefix of `buf`.
    pub pos: usize,
    /// Inactivity timer shared by the reads and writes, see [`timed`].
    timer: Option<Pin<Box<Sleep>>>,
}

const MAX_HEADERS: usize = 128;

impl Conn {
    /// Wraps a socket.
    pub fn new(io: TcpStream) -> Conn {
        Conn {
            io,
            buf: Vec::with_capacity(4096),
            pos: 0,
            timer: None,
        }
    }

    /// Unconsumed bytes.
    pub fn pending(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Marks `n` pending bytes consumed.
    pub fn consume(&mut self, n: usize) {
        self.pos += n;
        if self.pos >= self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
    }

    /// Reads more bytes; Ok(0) at end of stream.
    pub async fn fill(&mut self, timeout: Option<Duration>) -> Result<usize, HttpError> {
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        } else if self.pos > 65536 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(8192);
        }
        // Reads into spare capacity: no zeroing of the buffer per read.
        let fut = self.io.read_buf(&mut self.buf);
        Ok(timed(&mut self.timer, timeout, fut).await??)
    }

    /// Writes all bytes, within `timeout`.
    pub async fn write_all(
        &mut self,
        data: &[u8],
        timeout: Option<Duration>,
    ) -> Result<(), HttpError> {
        let fut = self.io.write_all(data);
        Ok(timed(&mut self.timer, timeout, fut).await??)
    }
}

/// Runs `fut` with an inactivity timeout, like `tokio::time::timeout`, on
/// the connection's own timer. Registering a timer in tokio's wheel and
/// removing it again costs more than the read or write it guards, and a
/// busy connection would do it for every operation. The timer is instead
/// armed once and left in place: an operation only records its deadline,
/// and when the timer fires before the latest deadline it is re-armed for
/// it (once per timeout period, not once per operation). A deadline
/// earlier than the armed one moves the timer forward. Nothing is polled
/// or armed when `fut` completes at once.
async fn timed<F: Future>(
    timer: &mut Option<Pin<Box<Sleep>>>,
    timeout: Option<Duration>,
    fut: F,
) -> Result<F::Output, HttpError> {
    let Some(t) = timeout else {
        return Ok(fut.await);
    };
    let mut fut = std::pin::pin!(fut);
    let mut deadline = None;
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(v) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(v));
        }
        // The deadline counts from the first time the operation waits.
        let d = *deadline.get_or_insert_with(|| Instant::now() + t);
        let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(d)));
        if sleep.deadline() > d {
            sleep.as_mut().reset(d);
        }
        while sleep.as_mut().poll(cx).is_ready() {
            if Instant::now() >= d {
                return Poll::Ready(Err(HttpError::Timeout));
            }
            // Armed by an earlier operation: wait for this one's deadline.
            sleep.as_mut().reset(d);
        }
        Poll::Pending
    })
    .await
}

fn headers_of(h: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    h.iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

/// Reads a request head. `Ok(None)`: the client closed cleanly between
/// requests. `first_timeout` bounds the wait for the first byte (keep-alive
/// idle), `timeout` the whole head (slowloris).
pub async fn read_request(
    conn: &mut Conn,
    max: usize,
    first_timeout: Option<Duration>,
    timeout: Option<Duration>,
) -> Result<Option<ReqHead>, HttpError> {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        // Tolerate empty lines before a request (RFC 9112 §2.2).
        while conn.pending().starts_with(b"\r\n") {
            conn.consume(2);
        }
        if !conn.pending().is_empty() {
            let mut hdrs = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut req = httparse::Request::new(&mut hdrs);
            match req.parse(conn.pending()) {
                Ok(httparse::Status::Complete(n)) if n > max => return Err(HttpError::TooLarge),
                Ok(httparse::Status::Complete(n)) => {
                    let head = ReqHead {
                        method: req.method.unwrap_or("GET").to_string(),
                        uri: req.path.unwrap_or("/").to_string(),
                        minor: req.version.unwrap_or(1),
                        headers: headers_of(req.headers),
                    };
                    conn.consume(n);
                    return Ok(Some(head));
                }
                Ok(httparse::Status::Partial) => {
                    if conn.pending().len() >= max {
                        return Err(HttpError::TooLarge);
                    }
                }
                Err(httparse::Error::TooManyHeaders) => return Err(HttpError::TooLarge),
                Err(e) => return Err(HttpError::Bad(e.to_string())),
            }
        }
        let wait = if conn.pending().is_empty() {
            first_timeout.or(timeout)
        } else {
            deadline.map(|d| d.saturating_duration_since(tokio::time::Instant::now()))
        };
        let was_empty = conn.pending().is_empty();
        let n = conn.fill(wait).await?;
        if n == 0 {
            return if was_empty {
                Ok(None)
            } else {
                Err(HttpError::Closed)
            };
        }
    }
}

/// Reads a response head (skipping nothing: 1xx heads are returned too).
pub async fn read_response(
    conn: &mut Conn,
    max: usize,
    timeout: Option<Duration>,
) -> Result<ResHead, HttpError> {
    loop {
        if !conn.pending().is_empty() {
            let mut hdrs = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut res = httparse::Response::new(&mut hdrs);
            match res.parse(conn.pending()) {
                Ok(httparse::Status::Complete(n)) => {
                    let head = ResHead {
                        status: res.code.unwrap_or(502),
                        reason: res.reason.unwrap_or("").to_string(),
                        minor: res.version.unwrap_or(1),
                        headers: headers_of(res.headers),
                    };
                    conn.consume(n);
                    return Ok(head);
                }
                Ok(httparse::Status::Partial) => {
                    if conn.pending().len() >= max {
                        return Err(HttpError::TooLarge);
                    }
                }
                Err(e) => return Err(HttpError::Bad(e.to_string())),
            }
        }
        if conn.fill(timeout).await? == 0 {
            return Err(HttpError::Closed);
        }
    }
}

fn has_token<'a>(mut values: impl Iterator<Item = &'a [u8]>, token: &str) -> bool {
    values.any(|v| v.eq_ignore_ascii_case(token.as_bytes()))
}

/// Body framing of a request, rejecting what RFC 9112 §6.1/§6.3 calls
/// smuggling risks: both Transfer-Encoding and Content-Length, several
/// differing Content-Length values, a Transfer-Encoding that does not end
/// with `chunked`, Transfer-Encoding in HTTP/1.0, invalid lengths.
pub fn request_framing(h: &ReqHead) -> Result<Framing, HttpError> {
    let te: Vec<Vec<u8>> = h.values("transfer-encoding");
    let cl: Vec<Vec<u8>> = h.values("content-length");
    if !te.is_empty() {
        if !cl.is_empty() {
            return Err(HttpError::Bad(
                "both Transfer-Encoding and Content-Length".into(),
            ));
        }
        if h.minor == 0 {
            return Err(HttpError::Bad("Transfer-Encoding in HTTP/1.0".into()));
        }
        let last = te.iter().rev().find(|v| !v.is_empty());
        if !last.is_some_and(|v| v.eq_ignore_ascii_case(b"chunked")) {
            return Err(HttpError::Bad(
                "Transfer-Encoding does not end with chunked".into(),
            ));
        }
        if te
            .iter()
            .filter(|v| v.eq_ignore_ascii_case(b"chunked"))
            .count()
            > 1
        {
            return Err(HttpError::Bad("chunked applied twice".into()));
        }
        return Ok(Framing::Chunked);
    }
    match content_length(cl.iter().map(Vec::as_slice))? {
        Some(0) | None => Ok(Framing::Empty),
        Some(n) => Ok(Framing::Length(n)),
    }
}

fn content_length<'a>(cl: impl Iterator<Item = &'a [u8]>) -> Result<Option<u64>, HttpError> {
    let mut val: Option<u64> = None;
    for v in cl {
        if v.is_empty() || v.len() > 18 || !v.iter().all(u8::is_ascii_digit) {
            return Err(HttpError::Bad("invalid Content-Length".into()));
        }
        let n: u64 = std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| HttpError::Bad("invalid Content-Length".into()))?;
        if val.is_some_and(|p| p != n) {
            return Err(HttpError::Bad("conflicting Content-Length values".into()));
        }
        val = Some(n);
    }
    Ok(val)
}

/// Body framing of a response to `method`.
pub fn response_framing(method: &str, h: &ResHead) -> Result<Framing, HttpError> {
    if method == "HEAD" || (100..200).contains(&h.status) || h.status == 204 || h.status == 304 {
        return Ok(Framing::Empty);
    }
    if h.get_all("transfer-encoding").next().is_some() {
        let last = h
            .value_iter("transfer-encoding")
            .filter(|v| !v.is_empty())
            .last();
        return Ok(
            if last.is_some_and(|v| v.eq_ignore_ascii_case(b"chunked")) && h.minor == 1 {
                Framing::Chunked
            } else {
                Framing::Close
            },
        );
    }
    match content_length(h.value_iter("content-length"))? {
        Some(0) => Ok(Framing::Empty),
        Some(n) => Ok(Framing::Length(n)),
        None => Ok(Framing::Close),
    }
}

/// Whether the client wants the connection kept open after this request.
pub fn request_keep_alive(h: &ReqHead) -> bool {
    let conn = h.value_iter("connection");
    if h.minor == 0 {
        has_token(conn, "keep-alive")
    } else {
        !has_token(conn, "close")
    }
}

/// Whether the server keeps the connection after this response.
pub fn response_keep_alive(h: &ResHead) -> bool {
    let conn = h.value_iter("connection");
    if h.minor == 0 {
        has_token(conn, "keep-alive")
    } else {
        !has_token(conn, "close")
    }
}

/// Hop-by-hop fields never forwarded as is (RFC 9110 §7.6.1).
const HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
];

/// Decides which fields are hop-by-hop: the standard ones, and those the
/// message's own `Connection` field names. The `Connection` tokens are
/// looked up once per head (not once per field) and kept on the stack.
struct HopFilter<'a, H: Headers> {
    h: &'a H,
    named: [&'a [u8]; 4],
    count: usize,
    /// More tokens than `named` holds: look them up per field.
    many: bool,
}

impl<'a, H: Headers> HopFilter<'a, H> {
    fn new(h: &'a H) -> HopFilter<'a, H> {
        let mut f = HopFilter {
            h,
            named: [&[]; 4],
            count: 0,
            many: false,
        };
        for t in h.value_iter("connection") {
            if f.count == f.named.len() {
                f.many = true;
                break;
            }
            f.named[f.count] = t;
            f.count += 1;
        }
        f
    }

    fn is_hop(&self, name: &str) -> bool {
        if HOP.iter().any(|x| name.eq_ignore_ascii_case(x)) {
            return true;
        }
        let named = |e: &[u8]| e.eq_ignore_ascii_case(name.as_bytes());
        if self.many {
            self.h.value_iter("connection").any(named)
        } else {
            self.named[..self.count].iter().any(|e| named(e))
        }
    }
}

/// Serialises a request head for the server (HTTP/1.1, keep-alive).
pub fn write_request_head(out: &mut Vec<u8>, h: &ReqHead) {
    out.extend_from_slice(h.method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(h.uri.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    let hop = HopFilter::new(h);
    for (n, v) in &h.headers {
        if hop.is_hop(n) {
            continue;
        }
        push_field(out, n, v);
    }
    out.extend_from_slice(b"\r\n");
}

/// Serialises a response head for the client; `keep_alive` says whether
/// the connection stays open (adds `connection: close` otherwise).
pub fn write_response_head(out: &mut Vec<u8>, h: &ResHead, client_minor: u8, keep_alive: bool) {
    out.extend_from_slice(if client_minor == 0 {
        b"HTTP/1.0 "
    } else {
        b"HTTP/1.1 "
    });
    push_status(out, h.status);
    out.push(b' ');
    let reason = if h.reason.is_empty() {
        reason_phrase(h.status)
    } else {
        h.reason.as_str()
    };
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    let hop = HopFilter::new(h);
    for (n, v) in &h.headers {
        if hop.is_hop(n) {
            continue;
        }
        push_field(out, n, v);
    }
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    } else if client_minor == 0 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn push_status(out: &mut Vec<u8>, status: u16) {
    if (100..1000).contains(&status) {
        out.extend_from_slice(&[
            b'0' + (status / 100) as u8,
            b'0' + (status / 10 % 10) as u8,
            b'0' + (status % 10) as u8,
        ]);
    } else {
        out.extend_from_slice(status.to_string().as_bytes());
    }
}

fn push_field(out: &mut Vec<u8>, n: &str, v: &[u8]) {
    out.extend_from_slice(n.as_bytes());
    out.extend_from_slice(b": ");
    // Never let a value (set by a script) inject a line break. Values
    // without one (nearly all) are copied in one go.
    let start = out.len();
    out.extend_from_slice(v);
    if v.iter().any(|b| *b == b'\r' || *b == b'\n') {
        for b in &mut out[start..] {
            if *b == b'\r' || *b == b'\n' {
                *b = b' ';
            }
        }
    }
    out.extend_from_slice(b"\r\n");
}

/// The standard reason phrase for a status.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

/// A complete response HAProxy-style (`deny`, errors, `return`).
pub fn simple_response(status: u16, content_type: &str, body: &[u8], keep_alive: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason_phrase(status)).as_bytes());
    if !body.is_empty() || status >= 200 {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    if !content_type.is_empty() {
        out.extend_from_slice(format!("content-type: {content_type}\r\n").as_bytes());
    }
    out.extend_from_slice(b"cache-control: no-cache\r\n");
    if !keep_alive {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// HAProxy's error page for a status.
pub fn error_response(status: u16) -> Vec<u8> {
    let body = format!(
        "<html><body><h1>{status} {}</h1>\n</body></html>\n",
        reason_phrase(status)
    );
    simple_response(status, "text/html", body.as_bytes(), false)
}

/// Reads a whole body (at most `max` bytes) and returns it de-chunked.
pub async fn read_body(
    conn: &mut Conn,
    framing: Framing,
    max: usize,
    timeout: Option<Duration>,
) -> Result<Vec<u8>, HttpError> {
    let mut out = Vec::new();
    match framing {
        Framing::Empty => {}
        Framing::Length(n) => {
            if n as usize > max {
                return Err(HttpError::TooLarge);
            }
            while (conn.pending().len() as u64) < n {
                if conn.fill(timeout).await? == 0 {
                    return Err(HttpError::Closed);
                }
            }
            out.extend_from_slice(&conn.pending()[..n as usize]);
            conn.consume(n as usize);
        }
        Framing::Chunked => {
            let mut sink = BodySink::Buffer(&mut out, max);
            forward_chunked(conn, &mut sink, timeout).await?;
        }
        Framing::Close => loop {
            out.extend_from_slice(conn.pending());
            let n = conn.pending().len();
            conn.consume(n);
            if out.len() > max {
                return Err(HttpError::TooLarge);
            }
            if conn.fill(timeout).await? == 0 {
                break;
            }
        },
    }
    Ok(out)
}

/// Where a forwarded body goes.
pub enum BodySink<'a> {
    /// Raw bytes to a socket (framing kept).
    Socket(&'a mut TcpStream, Option<Duration>),
    /// De-chunked into a buffer with a cap.
    Buffer(&'a mut Vec<u8>, usize),
}

impl BodySink<'_> {
    async fn raw(&mut self, data: &[u8]) -> Result<(), HttpError> {
        match self {
            BodySink::Socket(s, t) => {
                let fut = s.write_all(data);
                match t {
                    Some(t) => tokio::time::timeout(*t, fut)
                        .await
                        .map_err(|_| HttpError::Timeout)??,
                    None => fut.await?,
                }
            }
            BodySink::Buffer(..) => {}
        }
        Ok(())
    }
    fn data(&mut self, data: &[u8]) -> Result<(), HttpError> {
        if let BodySink::Buffer(b, max) = self {
            if b.len() + data.len() > *max {
                return Err(HttpError::TooLarge);
            }
            b.extend_from_slice(data);
        }
        Ok(())
    }
}

async fn forward_chunked(
    conn: &mut Conn,
    sink: &mut BodySink<'_>,
    timeout: Option<Duration>,
) -> Result<(), HttpError> {
    loop {
        // Chunk-size line.
        let (size, n) = loop {
            match httparse::parse_chunk_size(conn.pending()) {
                Ok(httparse::Status::Complete((n, size))) => break (size, n),
                Ok(httparse::Status::Partial) => {
                    if conn.pending().len() > 1024 {
                        return Err(HttpError::Bad("chunk size line too long".into()));
                    }
                    if conn.fill(timeout).await? == 0 {
                        return Err(HttpError::Closed);
                    }
                }
                Err(_) => return Err(HttpError::Bad("invalid chunk size".into())),
            }
        };
        let line = conn.pending()[..n].to_vec();
        sink.raw(&line).await?;
        conn.consume(n);
        if size == 0 {
            // Trailer section, ends with an empty line.
            loop {
                let p = conn.pending();
                if let Some(i) = p.windows(2).position(|w| w == b"\r\n") {
                    let line = p[..i + 2].to_vec();
                    conn.consume(i + 2);
                    sink.raw(&line).await?;
                    if i == 0 {
                        return Ok(());
                    }
                } else {
                    if p.len() > 8192 {
                        return Err(HttpError::Bad("trailer too long".into()));
                    }
                    if conn.fill(timeout).await? == 0 {
                        return Err(HttpError::Closed);
                    }
                }
            }
        }
        let mut left = size;
        while left > 0 {
            if conn.pending().is_empty() && conn.fill(timeout).await? == 0 {
                return Err(HttpError::Closed);
            }
            let take = (conn.pending().len() as u64).min(left) as usize;
            let chunk = conn.pending()[..take].to_vec();
            sink.raw(&chunk).await?;
            sink.data(&chunk)?;
            conn.consume(take);
            left -= take as u64;
        }
        while conn.pending().len() < 2 {
            if conn.fill(timeout).await? == 0 {
                return Err(HttpError::Closed);
            }
        }
        if &conn.pending()[..2] != b"\r\n" {
            return Err(HttpError::Bad("missing CRLF after chunk".into()));
        }
        conn.consume(2);
        sink.raw(b"\r\n").await?;
    }
}

/// Forwards a body from `src` to `dst` keeping its framing; returns bytes
/// of payload moved.
pub async fn forward_body(
    src: &mut Conn,
    dst: &mut TcpStream,
    framing: Framing,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
) -> Result<u64, HttpError> {
    let mut sink = BodySink::Socket(dst, write_timeout);
    match framing {
        Framing::Empty => Ok(0),
        Framing::Length(n) => {
            let mut left = n;
            while left > 0 {
                if src.pending().is_empty() && src.fill(read_timeout).await? == 0 {
                    return Err(HttpError::Closed);
                }
                let take = (src.pending().len() as u64).min(left) as usize;
                let chunk = src.pending()[..take].to_vec();
                sink.raw(&chunk).await?;
                src.consume(take);
                left -= take as u64;
            }
            Ok(n)
        }
        Framing::Chunked => {
            forward_chunked(src, &mut sink, read_timeout).await?;
            Ok(0)
        }
        Framing::Close => {
            let mut total = 0u64;
            loop {
                if !src.pending().is_empty() {
                    let chunk = src.pending().to_vec();
                    sink.raw(&chunk).await?;
                    total += chunk.len() as u64;
                    src.consume(chunk.len());
                }
                if src.fill(read_timeout).await? == 0 {
                    return Ok(total);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn timer_armed_for_a_later_deadline_still_fires_at_an_earlier_one() {
        rt().block_on(async {
            let mut timer = None;
            // A first operation arms the timer 10 s ahead and completes.
            let long = Some(Duration::from_secs(10));
            let r = timed(
                &mut timer,
                long,
                tokio::time::sleep(Duration::from_millis(5)),
            )
            .await;
            assert!(r.is_ok());
            // A stuck operation with a short timeout must not wait 10 s.
            let t0 = std::time::Instant::now();
            let short = Some(Duration::from_millis(50));
            let r = timed(&mut timer, short, std::future::pending::<()>()).await;
            assert!(matches!(r, Err(HttpError::Timeout)));
            assert!(t0.elapsed() < Duration::from_secs(5));
        });
    }

    #[test]
    fn timer_armed_for_an_earlier_deadline_does_not_cut_a_later_operation() {
        rt().block_on(async {
            let mut timer = None;
            // Arms the timer 30 ms ahead, then completes.
            let short = Some(Duration::from_millis(30));
            let r = timed(
                &mut timer,
                short,
                tokio::time::sleep(Duration::from_millis(1)),
            )
            .await;
            assert!(r.is_ok());
            // The old deadline passes while this operation waits; its own
            // deadline (2 s) is far away, so it completes.
            let long = Some(Duration::from_secs(2));
            let r = timed(
                &mut timer,
                long,
                tokio::time::sleep(Duration::from_millis(150)),
            )
            .await;
            assert!(r.is_ok());
            // And it still times out at its own deadline.
            let r = timed(&mut timer, short, std::future::pending::<()>()).await;
            assert!(matches!(r, Err(HttpError::Timeout)));
        });
    }

    fn req(headers: &[(&str, &str)], minor: u8) -> ReqHead {
        ReqHead {
            method: "POST".into(),
            uri: "/".into(),
            minor,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn smuggling_is_rejected() {
        assert!(
            request_framing(&req(
                &[("Content-Length", "5"), ("Transfer-Encoding", "chunked")],
                1
            ))
            .is_err()
        );
        assert!(
            request_framing(&req(&[("Content-Length", "5"), ("Content-Length", "6")], 1)).is_err()
        );
        assert!(request_framing(&req(&[("Content-Length", "5, 6")], 1)).is_err());
        assert!(request_framing(&req(&[("Content-Length", "+5")], 1)).is_err());
        assert!(request_framing(&req(&[("Transfer-Encoding", "chunked, gzip")], 1)).is_err());
        assert!(request_framing(&req(&[("Transfer-Encoding", "chunked")], 0)).is_err());
        assert!(
            request_framing(&req(
                &[
                    ("Transfer-Encoding", "chunked"),
                    ("Transfer-Encoding", "chunked")
                ],
                1
            ))
            .is_err()
        );
        assert_eq!(
            request_framing(&req(&[("Content-Length", "5"), ("content-length", "5")], 1)).unwrap(),
            Framing::Length(5)
        );
        assert_eq!(
            request_framing(&req(&[("Transfer-Encoding", "gzip, chunked")], 1)).unwrap(),
            Framing::Chunked
        );
        assert_eq!(request_framing(&req(&[], 1)).unwrap(), Framing::Empty);
    }

    #[test]
    fn keep_alive_rules() {
        assert!(request_keep_alive(&req(&[], 1)));
        assert!(!request_keep_alive(&req(&[("Connection", "close")], 1)));
        assert!(!request_keep_alive(&req(&[], 0)));
        assert!(request_keep_alive(&req(&[("Connection", "Keep-Alive")], 0)));
    }

    #[test]
    fn head_serialisation_drops_hop_by_hop() {
        let mut out = Vec::new();
        write_request_head(
            &mut out,
            &req(
                &[
                    ("Connection", "close, X-Foo"),
                    ("X-Foo", "1"),
                    ("Host", "h"),
                ],
                1,
            ),
        );
        assert_eq!(out, b"POST / HTTP/1.1\r\nHost: h\r\n\r\n".to_vec());
    }
}
