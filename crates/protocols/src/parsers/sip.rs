//! SIP over UDP (one message per datagram) and TCP (headers framed by the
//! empty line, bodies skipped by Content-Length): methods, status codes,
//! Call-ID, From, To, Via, Contact, User-Agent and the Digest user name.

use super::Out;
use super::util;
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus, Transport};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Most header bytes buffered per TCP direction; a longer header block
/// ends parsing with the tag `sip:headers-too-long`.
pub const MAX_HEADERS: usize = 8192;
/// TCP data chunks read before giving up on a session.
const MAX_CALLS: u32 = 200;

/// Registers the SIP classifiers: Arkime's, the status line and a few
/// requests to `sip:` URIs (a request to a `tel:` URI is not one of them,
/// so such a session is classified by its answer).
pub fn register(set: &mut ClassifierSet) {
    for p in [
        &b"SIP/2.0"[..],
        b"INVITE sip:",
        b"REGISTER sip:",
        b"NOTIFY sip:",
    ] {
        set.add_udp("sip", 0, p, ClassifyAction::Native(classify));
        set.add_tcp("sip", 0, p, ClassifyAction::Native(classify));
    }
    set.add_udp("sip", 0, b"OPTIONS sip:", ClassifyAction::Native(classify));
}

fn classify(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if cx.fields.has_protocol("sip") || data.len() < 12 {
        return;
    }
    if memchr::memmem::find(&data[..data.len().min(200)], b"SIP/2.0").is_none() {
        return;
    }
    cx.add_protocol("sip");
    cx.attach(Box::new(Sip {
        tcp: cx.meta.transport == Transport::Tcp,
        buf: [Vec::new(), Vec::new()],
        skip_body: [0; 2],
        calls: 0,
    }));
}

/// The SIP parser of one session.
pub struct Sip {
    tcp: bool,
    buf: [Vec<u8>; 2],
    /// Body bytes still to skip per direction (TCP).
    skip_body: [usize; 2],
    calls: u32,
}

const METHODS: &[&[u8]] = &[
    b"ACK",
    b"BYE",
    b"CANCEL",
    b"INVITE",
    b"INFO",
    b"MESSAGE",
    b"NOTIFY",
    b"OPTIONS",
    b"PRACK",
    b"REGISTER",
    b"REFER",
    b"SUBSCRIBE",
    b"UPDATE",
];

/// The next line (without CR LF or LF) and the bytes it used; `None` when
/// no line end is there.
fn next_line(b: &[u8]) -> Option<(&[u8], usize)> {
    let nl = memchr::memchr(b'\n', b)?;
    let line = &b[..nl];
    Some((line.strip_suffix(b"\r").unwrap_or(line), nl + 1))
}

/// The part of a Digest `Authorization` value in `username="..."`.
fn digest_user(v: &[u8]) -> Option<&[u8]> {
    let at = util::find_nocase(v, b"username=\"")? + 10;
    let rest = &v[at..];
    let end = memchr::memchr(b'"', rest)?;
    Some(&rest[..end])
}

/// The user of a `sip:`/`sips:` URI (before `@`, when there is one before
/// `>`, `;` or a space).
fn uri_user(v: &[u8]) -> Option<&[u8]> {
    let start = match util::find_nocase(v, b"sip:") {
        Some(i) => i + 4,
        None => util::find_nocase(v, b"sips:")? + 5,
    };
    let rest = &v[start..];
    for (i, &c) in rest.iter().enumerate() {
        match c {
            b'@' => return (i > 0).then_some(&rest[..i]),
            b'>' | b';' | b' ' => return None,
            _ => {}
        }
    }
    None
}

/// One header line; the Content-Length when it is one.
fn header(o: &mut Out<'_, '_>, line: &[u8]) -> Option<usize> {
    let colon = memchr::memchr(b':', line).filter(|&c| c > 0)?;
    let name = &line[..colon];
    let mut at = colon + 1;
    while at < line.len() && matches!(line[at], b' ' | b'\t') {
        at += 1;
    }
    if at >= line.len() {
        return None;
    }
    let value = &line[at..];
    let is = |long: &[u8], short: u8| {
        name.eq_ignore_ascii_case(long) || (name.len() == 1 && name[0].eq_ignore_ascii_case(&short))
    };
    let text = util::text(value);
    if is(b"Call-ID", b'i') {
        o.s("sip.callid", &text);
    } else if is(b"From", b'f') {
        o.s("sip.from", &text);
        if let Some(u) = uri_user(value) {
            o.s("sip.user", &util::text(u));
        }
    } else if is(b"To", b't') {
        o.s("sip.to", &text);
        if let Some(u) = uri_user(value) {
            o.s("sip.user", &util::text(u));
        }
    } else if name.eq_ignore_ascii_case(b"User-Agent") {
        o.s("sip.useragent", &text);
    } else if is(b"Via", b'v') {
        o.s("sip.via", &text);
    } else if is(b"Contact", b'm') {
        o.s("sip.contact", &text);
    } else if name.eq_ignore_ascii_case(b"Authorization") {
        if let Some(u) = digest_user(value) {
            o.s("sip.user", &util::text(u));
        }
    } else if is(b"Content-Length", b'l') {
        let digits: String = text.chars().take_while(char::is_ascii_digit).collect();
        return Some(digits.parse().unwrap_or(0));
    }
    None
}

/// The start line and headers of one message (up to the empty line or the
/// end of `b`); returns the Content-Length (0 when absent).
fn message(o: &mut Out<'_, '_>, b: &[u8]) -> usize {
    let mut rest = b;
    let mut first = true;
    let mut content_length = 0;
    while let Some((line, used)) = next_line(rest) {
        rest = &rest[used..];
        if line.is_empty() {
            break;
        }
        if first {
            first = false;
            if line.starts_with(b"SIP/2.0") {
                if line.len() >= 12 && line.starts_with(b"SIP/2.0 ") {
                    let code: String = util::text(&line[8..])
                        .chars()
                        .take_while(char::is_ascii_digit)
                        .collect();
                    if let Ok(c) = code.parse::<i64>()
                        && (100..700).contains(&c)
                    {
                        o.i("sip.statuscode", c);
                    }
                }
            } else if let Some(sp) = line.iter().take(20).position(|&c| c == b' ')
                && sp > 0
                && METHODS.contains(&&line[..sp])
                && line.len() >= sp + 10
                && memchr::memmem::find(line, b"SIP/2.0").is_some()
            {
                o.s("sip.method", &util::text(&line[..sp]));
            }
        } else if let Some(cl) = header(o, line) {
            content_length = cl;
        }
    }
    content_length
}

impl Sip {
    fn tcp_data(&mut self, o: &mut Out<'_, '_>, d: usize, mut data: &[u8]) -> ParserStatus {
        let skip = self.skip_body[d].min(data.len());
        self.skip_body[d] -= skip;
        data = &data[skip..];
        let room = MAX_HEADERS - self.buf[d].len();
        if data.len() > room {
            o.tag("sip:headers-too-long");
            return ParserStatus::Done;
        }
        self.buf[d].extend_from_slice(data);
        while self.buf[d].len() > 4 {
            let Some(end) = memchr::memmem::find(&self.buf[d], b"\r\n\r\n") else {
                if self.buf[d].len() >= MAX_HEADERS {
                    o.tag("sip:headers-too-long");
                    return ParserStatus::Done;
                }
                break;
            };
            let end = end + 4;
            let cl = message(o, &self.buf[d][..end]);
            self.buf[d].drain(..end);
            // The body (if any) is skipped, also when it continues in
            // later data.
            let now = cl.min(self.buf[d].len());
            self.buf[d].drain(..now);
            self.skip_body[d] = cl - now;
        }
        self.calls += 1;
        if self.calls > MAX_CALLS {
            return ParserStatus::Done;
        }
        ParserStatus::Continue
    }
}

impl Parser for Sip {
    fn name(&self) -> &'static str {
        "sip"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let d = dir.index();
        let mut o = super::out(cx);
        if self.tcp {
            return self.tcp_data(&mut o, d, data);
        }
        message(&mut o, data);
        ParserStatus::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::Harness;
    use serde_json::json;

    const REGISTER: &[u8] = b"REGISTER sip:ims.example SIP/2.0\r\nTo: <tel:1>\r\nFrom: <sip:alice@ims.example>;tag=a\r\nVia: SIP/2.0/UDP [fd00::1]:5060\r\nCall-ID: c1\r\nContent-Length: 0\r\n\r\n";

    #[test]
    fn tel_request_is_classified_by_its_answer() {
        let mut h = Harness::udp(5060);
        h.feed(0, b"SUBSCRIBE tel:+1 SIP/2.0\r\nTo: <tel:+1>\r\n\r\n");
        assert!(h.app.parser_names().is_empty());
        h.feed(1, b"SIP/2.0 405 Method Not Allowed\r\nCall-ID: c0\r\n\r\n");
        h.feed(0, b"MESSAGE tel:+7 SIP/2.0\r\nAuthorization: Digest username=\"bob@ims\",realm=\"r\"\r\nUser-Agent: UA/1\r\ni: c2\r\n\r\nbody");
        let j = h.json();
        assert_eq!(j["protocol"], json!(["sip"]));
        assert_eq!(j["sip"]["method"], json!(["MESSAGE"]));
        assert_eq!(j["sip"]["statuscode"], json!([405]));
        assert_eq!(j["sip"]["user"], json!(["bob@ims"]));
        assert_eq!(j["sip"]["callid"], json!(["c0", "c2"]));
        assert!(j["sip"]["to"].is_null());
    }

    #[test]
    fn tcp_framing_and_bodies() {
        let mut h = Harness::tcp(5060);
        h.feed(
            1,
            b"SIP/2.0 100 Trying\r\nContent-Length: 8\r\n\r\nBYE x SI",
        );
        h.feed(1, b"P/2.0\r\n");
        h.feed(0, &REGISTER[..30]);
        h.feed(0, &REGISTER[30..]);
        h.feed(0, b"ACK sip:x SIP/2.0\r\nl: 3\r\n\r\nabc");
        let j = h.json();
        assert_eq!(j["sip"]["method"], json!(["REGISTER", "ACK"]));
        assert_eq!(j["sip"]["statuscode"], json!([100]));
        assert_eq!(j["sip"]["user"], json!(["alice"]));
        assert_eq!(j["sip"]["via"], json!(["SIP/2.0/UDP [fd00::1]:5060"]));
    }

    #[test]
    fn hostile_input_is_bounded() {
        let mut h = Harness::tcp(5060);
        h.feed(0, REGISTER);
        h.feed(0, &vec![b'x'; super::MAX_HEADERS + 1]);
        assert!(h.app.parser_names().is_empty());
        assert_eq!(h.json()["tags"], json!(["sip:headers-too-long"]));
        let mut h = Harness::udp(5060);
        h.feed(0, REGISTER);
        for m in [
            &b"INVITE x SIP/2.0\r\n:\r\nFrom:\r\nTo: sip:@\r\nAuthorization: username=\"\r\n"[..],
            b"SIP/2.0 99999999999999999999 x\r\n",
            b"\r\n\r\n",
            b"",
        ] {
            h.feed(0, m);
        }
    }
}
