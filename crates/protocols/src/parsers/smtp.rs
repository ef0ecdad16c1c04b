//! SMTP and the email it carries: commands (HELO/EHLO, MAIL FROM, RCPT
//! TO, AUTH, STARTTLS), message headers (RFC 2047 subjects in any charset
//! `encoding_rs` knows), MIME attachments with their names, hashes and
//! magic, and the `smtp:*` tags.

use base64::Engine;
use md5::{Digest, Md5};
use sha2::Sha256;

use super::util::{self, find_nocase, trim};
use super::{Out, magic};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus, ProtocolConfig};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Longest line kept (longer lines are cut).
const MAX_LINE: usize = 16 * 1024;
/// Most MIME boundaries tracked.
const MAX_BOUNDARIES: usize = 32;

/// Registers the SMTP classifiers (client greeting or server banner).
pub fn register(set: &mut ClassifierSet) {
    for p in [
        &b"HELO "[..],
        b"EHLO ",
        b"helo ",
        b"ehlo ",
        b"220 ",
        b"220-",
    ] {
        set.add_tcp("smtp", 0, p, ClassifyAction::Native(classify));
    }
}

/// A streaming base64 decoder with GLib's rules: characters outside the
/// alphabet are skipped, `=` counts as a zero digit and drops the bytes it
/// pads, and a group may span calls.
#[derive(Debug, Default, Clone, Copy)]
struct B64Step {
    /// Digits in the current group.
    n: u8,
    /// The group's bits so far.
    bits: u32,
    /// The last two digits read were `=` (most recent first).
    pad: [bool; 2],
}

impl B64Step {
    fn decode(&mut self, input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len() / 4 * 3 + 3);
        // GLib carries only whether the last digit was `=` between calls.
        self.pad[1] = false;
        for &c in input {
            let v = match c {
                b'A'..=b'Z' => c - b'A',
                b'a'..=b'z' => c - b'a' + 26,
                b'0'..=b'9' => c - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => 0,
                _ => continue,
            };
            self.pad = [c == b'=', self.pad[0]];
            self.bits = (self.bits << 6) | u32::from(v);
            self.n += 1;
            if self.n == 4 {
                out.push((self.bits >> 16) as u8);
                if !self.pad[1] {
                    out.push((self.bits >> 8) as u8);
                }
                if !self.pad[0] {
                    out.push(self.bits as u8);
                }
                self.n = 0;
            }
        }
        out
    }
}

fn classify(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    let ok = data.len() >= 5
        && (data[..5].eq_ignore_ascii_case(b"HELO ")
            || data[..5].eq_ignore_ascii_case(b"EHLO ")
            || (data.starts_with(b"220") && memchr::memmem::find(data, b"SMTP").is_some()));
    if !ok || cx.has_parser("smtp") {
        return;
    }
    cx.add_protocol("smtp");
    let p = Smtp::new(cx.config);
    cx.attach(Box::new(p));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Cmd,
    AuthLogin,
    AuthPlain,
    Header,
    Data,
    Mime,
    MimeData,
    TlsOk,
    Ignore,
}

/// The SMTP parser of one session.
pub struct Smtp {
    state: [State; 2],
    line: [Vec<u8>; 2],
    /// A line ended with CR at the end of the last data: a LF starting the
    /// next data belongs to it.
    after_cr: [bool; 2],
    /// A header line waiting for possible continuation lines.
    header: [Vec<u8>; 2],
    need_status: [bool; 2],
    boundaries: Vec<Vec<u8>>,
    base64: [bool; 2],
    first_in_content: [bool; 2],
    b64buf: [Vec<u8>; 2],
    b64state: [B64Step; 2],
    md5: [Md5; 2],
    sha256: [Sha256; 2],
    header_all: bool,
    ip_headers: Vec<String>,
    custom_headers: Vec<String>,
    sha: bool,
    /// Body magic of parts (`magicMode` other than `none`).
    magic: bool,
    tls_next: bool,
    /// Bytes left of a BDAT chunk.
    bdat_left: [usize; 2],
}

impl Smtp {
    /// A parser with the settings it reads (`parseSMTPHeaderAll`,
    /// `smtpIpHeaders`, `[headers-email]`, `supportSha256`).
    pub fn new(config: &ProtocolConfig) -> Smtp {
        Smtp {
            state: [State::Cmd; 2],
            line: [Vec::new(), Vec::new()],
            after_cr: [false; 2],
            header: [Vec::new(), Vec::new()],
            need_status: [false; 2],
            boundaries: Vec::new(),
            base64: [false; 2],
            first_in_content: [false; 2],
            b64buf: [Vec::new(), Vec::new()],
            b64state: [B64Step::default(), B64Step::default()],
            md5: [Md5::new(), Md5::new()],
            sha256: [Sha256::new(), Sha256::new()],
            header_all: config.get_bool("parseSMTPHeaderAll", false),
            ip_headers: config
                .get("smtpIpHeaders")
                .unwrap_or("")
                .split(';')
                .map(|h| h.trim().trim_end_matches(':').to_ascii_lowercase())
                .filter(|h| !h.is_empty())
                .collect(),
            custom_headers: config
                .sections
                .get("headers-email")
                .map(|s| s.keys().map(|k| k.to_ascii_lowercase()).collect())
                .unwrap_or_default(),
            sha: config.get_bool("supportSha256", false),
            magic: magic::enabled(config),
            tls_next: false,
            bdat_left: [0; 2],
        }
    }

    fn command(&mut self, o: &mut Out<'_, '_>, d: usize, line: &[u8]) {
        let other = 1 - d;
        if self.need_status[other] {
            self.need_status[other] = false;
            let code: String = line
                .iter()
                .take_while(|c| c.is_ascii_digit())
                .map(|&c| c as char)
                .collect();
            let code: i64 = code.parse().unwrap_or(0);
            o.tag(&format!("smtp:statuscode:{code}"));
            return;
        }
        let starts = |p: &[u8]| line.len() >= p.len() && line[..p.len()].eq_ignore_ascii_case(p);
        if starts(b"MAIL FROM:") {
            o.s(
                "email.src",
                &util::text(remove_matching(&line[10..], b'<', b'>')),
            );
        } else if starts(b"RCPT TO:") {
            o.s(
                "email.dst",
                &util::text(remove_matching(&line[8..], b'<', b'>')),
            );
        } else if starts(b"DATA") {
            self.state[d] = State::Header;
        } else if starts(b"BDAT ") {
            // CHUNKING: the message follows as a counted chunk.
            let n: String = util::text(&line[5..])
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            if let Ok(n) = n.parse::<usize>()
                && n > 0
            {
                self.bdat_left[d] = n;
                if self.state[d] == State::Cmd {
                    self.state[d] = State::Header;
                }
            }
        } else if starts(b"HELO ") || starts(b"EHLO ") {
            o.s("email.smtp-hello", &util::text(trim(&line[5..])));
        } else if starts(b"AUTH LOGIN") {
            o.tag("smtp:authlogin");
            if line.len() > 11 {
                if let Ok(u) = base64::engine::general_purpose::STANDARD.decode(trim(&line[11..])) {
                    o.s("user", &util::text(&u));
                }
            } else {
                self.state[d] = State::AuthLogin;
            }
        } else if starts(b"AUTH PLAIN") {
            o.tag("smtp:authplain");
            if line.len() > 11 {
                auth_plain(o, &line[11..]);
            } else {
                self.state[d] = State::AuthPlain;
            }
        } else if starts(b"STARTTLS") {
            o.tag("smtp:starttls");
            self.state[d] = State::Ignore;
            self.state[other] = State::TlsOk;
        }
    }

    fn header_line(&mut self, o: &mut Out<'_, '_>, line: &[u8]) {
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return;
        };
        let name = util::text(&line[..colon]).to_ascii_lowercase();
        let value = &line[colon + 1..];
        let v = trim_start(value);
        o.s("email.has-header", &name);
        match name.as_str() {
            "subject" => {
                if line.get(8) != Some(&b' ') {
                    o.tag("smtp:missing-subject-space");
                }
                o.s("email.subject", &decode_rfc2047(v));
            }
            "to" | "cc" => addresses(o, "email.dst", value),
            "from" => addresses(o, "email.src", value),
            "message-id" => {
                o.s(
                    "email.message-id",
                    &util::text(remove_matching(value, b'<', b'>')),
                );
            }
            "received" => received(o, value),
            "content-type" => {
                o.s("email.content-type", &util::text(v));
                self.add_boundary(v);
            }
            "user-agent" | "x-mailer" => {
                o.s("email.x-mailer", &util::text(v));
            }
            "mime-version" => {
                o.s("email.mime-version", &util::text(v));
            }
            _ => {
                if self.custom_headers.contains(&name) {
                    let expr = format!("email.{name}");
                    if let Some(id) = o.reg.lookup_expr(&expr) {
                        if o.reg.def(id).kind.is_numeric() {
                            let n: String = util::text(v)
                                .chars()
                                .take_while(|c| c.is_ascii_digit() || *c == '-')
                                .collect();
                            o.fields.add_int(id, n.parse().unwrap_or(0));
                        } else {
                            o.fields.add_string(o.reg, id, &util::text(v));
                        }
                    }
                    return;
                }
                if self.ip_headers.contains(&name) {
                    if let Some(ip) =
                        super::http_inet_addr(&util::text(trim(remove_matching(value, b'[', b']'))))
                    {
                        o.ip("ip.email", ip);
                    }
                    return;
                }
                if self.header_all {
                    o.push("email.header.field", &name);
                    o.push("email.has-header.value", &util::text(v));
                }
            }
        }
    }

    fn add_boundary(&mut self, v: &[u8]) {
        if let Some(at) = find_nocase(v, b"boundary=")
            && self.boundaries.len() < MAX_BOUNDARIES
        {
            let b = remove_matching(&v[at + 9..], b'"', b'"');
            self.boundaries.push(b.to_vec());
        }
    }

    fn end_part(&mut self, o: &mut Out<'_, '_>, d: usize) {
        if self.base64[d] {
            self.flush_b64(o, d);
            let md5 = std::mem::replace(&mut self.md5[d], Md5::new());
            o.s("email.md5", &util::hex(&md5.finalize()));
            let sha = std::mem::replace(&mut self.sha256[d], Sha256::new());
            if self.sha {
                o.s("email.sha256", &util::hex(&sha.finalize()));
            }
        }
        self.md5[d] = Md5::new();
        self.sha256[d] = Sha256::new();
        self.b64buf[d].clear();
        self.b64state[d] = B64Step::default();
        self.first_in_content[d] = true;
        self.base64[d] = false;
    }

    /// Decodes buffered base64 text into the part's hashes. Like GLib's
    /// `g_base64_decode_step` (which Arkime uses) the decoder keeps its
    /// state across lines and skips characters outside the alphabet.
    fn flush_b64(&mut self, o: &mut Out<'_, '_>, d: usize) {
        let buf = std::mem::take(&mut self.b64buf[d]);
        let dec = self.b64state[d].decode(&buf);
        self.md5[d].update(&dec);
        self.sha256[d].update(&dec);
        if self.first_in_content[d] && !dec.is_empty() {
            self.first_in_content[d] = false;
            if self.magic
                && let Some(m) = magic::basic(&dec)
            {
                o.s("email.bodymagic", m);
            }
        }
    }

    fn is_boundary(&self, line: &[u8]) -> bool {
        line.starts_with(b"--")
            && self
                .boundaries
                .iter()
                .any(|b| line.len() >= b.len() + 2 && &line[2..2 + b.len()] == b.as_slice())
    }

    fn line(&mut self, cx: &mut ParseContext<'_>, d: usize, line: &[u8]) {
        let mut o = super::out(cx);
        match self.state[d] {
            State::Cmd => self.command(&mut o, d, line),
            State::AuthLogin => {
                if let Ok(u) = base64::engine::general_purpose::STANDARD.decode(trim(line)) {
                    o.s("user", &util::text(&u));
                }
                self.state[d] = State::Cmd;
            }
            State::AuthPlain => {
                auth_plain(&mut o, line);
                self.state[d] = State::Cmd;
            }
            State::Header => {
                if line == b"." {
                    self.flush_header(&mut o, d);
                    self.need_status[d] = true;
                    self.state[d] = State::Cmd;
                } else if line.first().is_some_and(|&c| c == b' ' || c == b'\t')
                    && !self.header[d].is_empty()
                {
                    // The folding whitespace becomes one space; any more
                    // whitespace stays.
                    if self.header[d].len() < MAX_LINE {
                        self.header[d].push(b' ');
                        self.header[d].extend_from_slice(&line[1..]);
                    }
                } else {
                    self.flush_header(&mut o, d);
                    if line.is_empty() {
                        self.state[d] = State::Data;
                    } else {
                        self.header[d] = line.to_vec();
                    }
                }
            }
            State::Data | State::MimeData => {
                if line == b"." {
                    if self.state[d] == State::MimeData {
                        self.end_part(&mut o, d);
                    }
                    self.need_status[d] = true;
                    self.state[d] = State::Cmd;
                } else if self.is_boundary(line) {
                    self.end_part(&mut o, d);
                    self.state[d] = State::Mime;
                } else if self.state[d] == State::MimeData && self.base64[d] {
                    let l = trim(line);
                    if self.b64buf[d].len() + l.len() < MAX_LINE * 4 {
                        self.b64buf[d].extend_from_slice(l);
                    }
                    self.flush_b64(&mut o, d);
                }
                if self.state[d] != State::Cmd {
                    cx.body("smtp", line);
                }
            }
            State::Mime => {
                if line.is_empty() {
                    self.state[d] = State::MimeData;
                } else if line == b"." {
                    self.need_status[d] = true;
                    self.state[d] = State::Cmd;
                } else {
                    let starts =
                        |p: &[u8]| line.len() >= p.len() && line[..p.len()].eq_ignore_ascii_case(p);
                    if starts(b"content-type:") {
                        self.add_boundary(&line[13..]);
                    } else if starts(b"content-disposition:") {
                        if let Some(at) = find_nocase(line, b"filename=") {
                            let f = remove_matching(&line[at + 9..], b'"', b'"');
                            o.s("email.fn", &decode_rfc2047(f));
                        }
                    } else if starts(b"content-transfer-encoding:")
                        && find_nocase(&line[26..], b"base64").is_some()
                    {
                        self.base64[d] = true;
                    } else if line.first().is_some_and(|&c| c == b' ' || c == b'\t')
                        && let Some(at) = find_nocase(line, b"filename=")
                    {
                        let f = remove_matching(&line[at + 9..], b'"', b'"');
                        o.s("email.fn", &decode_rfc2047(f));
                    }
                }
            }
            State::TlsOk => {
                // The server's reply to STARTTLS; TLS follows.
                self.state[d] = State::Ignore;
                self.tls_next = true;
            }
            State::Ignore => {}
        }
    }

    fn flush_header(&mut self, o: &mut Out<'_, '_>, d: usize) {
        let h = std::mem::take(&mut self.header[d]);
        if !h.is_empty() {
            self.header_line(o, &h);
        }
    }
}

fn trim_start(b: &[u8]) -> &[u8] {
    let i = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    &b[i..]
}

/// Skips spaces and an opening `start`, and cuts at `stop`.
fn remove_matching(b: &[u8], start: u8, stop: u8) -> &[u8] {
    let mut b = trim_start(b);
    if b.first() == Some(&start) {
        b = &b[1..];
    }
    let end = b.iter().position(|&c| c == stop).unwrap_or(b.len());
    &b[..end]
}

fn auth_plain(o: &mut Out<'_, '_>, b64: &[u8]) {
    if let Ok(dec) = base64::engine::general_purpose::STANDARD.decode(trim(b64)) {
        let mut parts = dec.split(|&c| c == 0);
        let _authz = parts.next();
        if let (Some(user), Some(_pass)) = (parts.next(), parts.next()) {
            o.s("user", &util::text(user));
        }
    }
}

fn addresses(o: &mut Out<'_, '_>, expr: &'static str, v: &[u8]) {
    let mut i = 0;
    while i < v.len() {
        while i < v.len() && v[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut start = i;
        if i < v.len() && v[i] == b'"' {
            i += 1;
            while i < v.len() && v[i] != b'"' {
                i += 1;
            }
            i += 1;
            while i < v.len() && v[i].is_ascii_whitespace() {
                i += 1;
            }
            start = i.min(v.len());
        }
        while i < v.len() && v[i] != b'<' && v[i] != b',' {
            i += 1;
        }
        if i < v.len() && v[i] == b'<' {
            i += 1;
            start = i;
            while i < v.len() && v[i] != b'>' {
                i += 1;
            }
        }
        let end = i.min(v.len());
        if start <= end {
            o.s(expr, &util::text(&v[start..end]));
        }
        while i < v.len() && v[i] != b',' {
            i += 1;
        }
        i += 1;
    }
}

fn received(o: &mut Out<'_, '_>, v: &[u8]) {
    let mut i = 0;
    let host_at = |o: &mut Out<'_, '_>, i: &mut usize| {
        let mut start = *i;
        while *i < v.len() && v[*i] != b' ' && v[*i] != b')' {
            if v[*i] == b'@' {
                start = *i + 1;
            }
            *i += 1;
        }
        o.s("host.email", &util::text(&v[start..*i]));
    };
    while i < v.len() {
        if v.len() - i > 10 {
            if v[i..].starts_with(b"from ") && (i == 0 || v[i - 1] != b'-') {
                i += 5;
                while i < v.len() && v[i].is_ascii_whitespace() {
                    i += 1;
                }
                if v.get(i) == Some(&b'[') {
                    i += 1;
                    let s = i;
                    while i < v.len() && v[i] != b']' {
                        i += 1;
                    }
                    if let Some(ip) = super::http_inet_addr(&util::text(&v[s..i])) {
                        o.ip("ip.email", ip);
                    }
                    i += 1;
                    continue;
                }
                host_at(o, &mut i);
            } else if v[i..].starts_with(b"by ") {
                i += 3;
                while i < v.len() && v[i].is_ascii_whitespace() {
                    i += 1;
                }
                host_at(o, &mut i);
            }
        }
        if v.get(i) == Some(&b'[') {
            i += 1;
            let s = i;
            while i < v.len() && v[i] != b']' {
                i += 1;
            }
            if let Some(ip) = super::http_inet_addr(&util::text(&v[s..i])) {
                o.ip("ip.email", ip);
            }
            continue;
        }
        i += 1;
    }
}

fn convert(charset: &[u8], bytes: &[u8]) -> Option<String> {
    let enc = encoding_rs::Encoding::for_label(charset)?;
    let (s, _, _) = enc.decode(bytes);
    Some(s.into_owned())
}

fn plain(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => encoding_rs::WINDOWS_1252.decode(bytes).0.into_owned(),
    }
}

fn q_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'=' => {
                if i + 2 < b.len() && b[i + 1] != b'\n' {
                    let h = util::text(&b[i + 1..i + 3]);
                    out.push(u8::from_str_radix(&h, 16).unwrap_or(0));
                    i += 3;
                    continue;
                }
                break;
            }
            b'_' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

/// Decodes RFC 2047 encoded words; text between words is kept (a single
/// space before an encoded word is dropped, as Arkime does).
pub fn decode_rfc2047(s: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let start_q = memchr::memmem::find(&s[i..], b"=?").map(|p| p + i);
        match start_q {
            Some(p) if p == i => {}
            _ => {
                let end = start_q.unwrap_or(s.len());
                let extra = usize::from(end == i + 1 && s[i] == b' ' && start_q.is_some());
                out.push_str(&plain(&s[i + extra..end]));
                i = end;
                continue;
            }
        }
        let Some(q1) = s[i + 2..]
            .iter()
            .position(|&c| c == b'?')
            .map(|p| p + i + 2)
        else {
            return plain(s);
        };
        let Some(endq) = s
            .get(q1 + 3..)
            .and_then(|r| memchr::memmem::find(r, b"?="))
            .map(|p| p + q1 + 3)
        else {
            return plain(s);
        };
        let charset = &s[i + 2..q1];
        let charset = charset.split(|&c| c == b'*').next().unwrap_or(charset);
        let text = &s[q1 + 3..endq];
        if !text.is_empty() {
            let raw = match s.get(q1 + 1) {
                Some(b'B' | b'b') => {
                    let t: Vec<u8> = text
                        .iter()
                        .copied()
                        .filter(|c| !c.is_ascii_whitespace())
                        .collect();
                    base64::engine::general_purpose::STANDARD
                        .decode(&t)
                        .or_else(|_| {
                            base64::engine::general_purpose::STANDARD_NO_PAD
                                .decode(t.split(|&c| c == b'=').next().unwrap_or(&t))
                        })
                        .ok()
                }
                Some(b'Q' | b'q') => Some(q_decode(text)),
                _ => None,
            };
            let Some(raw) = raw else { return plain(s) };
            match convert(charset, &raw) {
                Some(t) => out.push_str(&t),
                None => return plain(s),
            }
        }
        i = endq + 2;
    }
    out
}

impl Parser for Smtp {
    fn name(&self) -> &'static str {
        "smtp"
    }

    fn parse(
        &mut self,
        cx: &mut ParseContext<'_>,
        dir: Direction,
        mut data: &[u8],
    ) -> ParserStatus {
        let d = dir.index();
        if self.after_cr[d] && !data.is_empty() {
            self.after_cr[d] = false;
            if data[0] == b'\n' {
                data = &data[1..];
                self.bdat_left[d] = self.bdat_left[d].saturating_sub(1);
            }
        }
        while !data.is_empty() {
            if self.state[d] == State::Ignore {
                break;
            }
            // As in Arkime, a line ends at CR (and a LF right after it is
            // skipped); a bare LF is part of the line.
            let Some(cr) = memchr::memchr(b'\r', data) else {
                if self.line[d].len() + data.len() <= MAX_LINE {
                    self.line[d].extend_from_slice(data);
                }
                break;
            };
            let mut line = std::mem::take(&mut self.line[d]);
            if line.len() + cr <= MAX_LINE {
                line.extend_from_slice(&data[..cr]);
            }
            let mut used = cr + 1;
            match data.get(cr + 1) {
                Some(b'\n') => used += 1,
                Some(_) => {}
                None => self.after_cr[d] = true,
            }
            data = &data[used..];
            let l = line.clone();
            let in_bdat = self.bdat_left[d] > 0 && self.state[d] != State::Cmd;
            self.line(cx, d, &l);
            if in_bdat {
                self.bdat_left[d] = self.bdat_left[d].saturating_sub(line.len() + used - cr);
                if self.bdat_left[d] == 0 {
                    let mut o = super::out(cx);
                    self.flush_header(&mut o, d);
                    if self.state[d] == State::MimeData {
                        self.end_part(&mut o, d);
                    }
                    // Arkime tags the status after DATA only.
                    self.state[d] = State::Cmd;
                }
            }
            line.clear();
            self.line[d] = line;
        }
        if self.tls_next {
            // STARTTLS answered: what follows is classified afresh (TLS).
            cx.reclassify();
            return ParserStatus::Done;
        }
        if self.state == [State::Ignore, State::Ignore] {
            return ParserStatus::Done;
        }
        ParserStatus::Continue
    }

    fn finish(&mut self, cx: &mut ParseContext<'_>) {
        let mut o = super::out(cx);
        for d in 0..2 {
            self.flush_header(&mut o, d);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::testutil::Harness;

    #[test]
    fn rfc2047_charsets() {
        assert_eq!(
            decode_rfc2047(b"=?iso-8859-1?B?dGVzdCDlIOkg7iD4IPw=?="),
            "test å é î ø ü"
        );
        assert_eq!(decode_rfc2047(b"=?utf-8?Q?caf=C3=A9_x?="), "café x");
        assert_eq!(decode_rfc2047(b"plain"), "plain");
        assert_eq!(decode_rfc2047(b"=?bad"), "=?bad");
        assert_eq!(decode_rfc2047(b"=?x?B?"), "=?x?B?");
        assert_eq!(decode_rfc2047(b"=?gb2312?B?suLK1A==?="), "测试");
    }

    #[test]
    fn parse_smtp_false_leaves_smtp_unparsed() {
        let run = |v: Option<&str>| {
            let mut h = Harness::with_setting(crate::Transport::Tcp, 25, "parseSMTP", v);
            h.feed(1, b"220 mx ESMTP ready\r\n");
            h.feed(0, b"EHLO c\r\nMAIL FROM:<a@x.org>\r\n");
            h.finish();
            h.json()
        };
        assert_eq!(run(None)["protocol"], serde_json::json!(["smtp"]));
        assert_eq!(
            run(Some("true"))["email"]["src"],
            serde_json::json!(["a@x.org"])
        );
        let off = run(Some("false"));
        assert_eq!(off["protocol"], serde_json::json!([]), "{off}");
        assert!(off.get("email").is_none(), "{off}");
    }

    #[test]
    fn attachment_magic_follows_magic_mode() {
        let run = |mode: &str| {
            let mut h = Harness::with_setting(crate::Transport::Tcp, 25, "magicMode", Some(mode));
            h.feed(1, b"220 mx ESMTP ready\r\n");
            h.feed(
                0,
                b"EHLO c\r\nMAIL FROM:<a@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n",
            );
            h.feed(0, b"Content-Type: multipart/mixed; boundary=\"BB\"\r\n\r\n--BB\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlhAQABAA==\r\n--BB--\r\n.\r\n");
            h.finish();
            h.json()
        };
        assert_eq!(
            run("basic")["email"]["bodyMagic"],
            serde_json::json!(["image/gif"])
        );
        let none = run("none");
        assert!(none["email"].get("bodyMagic").is_none(), "{none}");
        assert_eq!(none["email"]["md5"], run("basic")["email"]["md5"]);
    }

    #[test]
    fn session_with_attachment() {
        let mut h = Harness::tcp(25);
        h.feed(1, b"220 mx ESMTP ready\r\n");
        h.feed(
            0,
            b"EHLO client.example\r\nMAIL FROM:<A@x.org>\r\nRCPT TO:<b@y.org>\r\nDATA\r\n",
        );
        h.feed(0, b"From: \"A\" <a@x.org>\r\nSubject: =?utf-8?B?aGk=?=\r\nContent-Type: multipart/mixed; boundary=\"BB\"\r\nX-Other: v\r\n\r\n--BB\r\nContent-Disposition: attachment; filename=\"f.txt\"\r\nContent-Transfer-Encoding: base64\r\n\r\naGVsbG8=\r\n--BB--\r\n.\r\n");
        h.feed(1, b"250 ok\r\n");
        h.finish();
        let j = h.json();
        assert_eq!(j["email"]["src"], serde_json::json!(["a@x.org"]));
        assert_eq!(j["email"]["subject"], serde_json::json!(["hi"]));
        assert_eq!(j["email"]["filename"], serde_json::json!(["f.txt"]));
        assert_eq!(
            j["email"]["md5"],
            serde_json::json!(["5d41402abc4b2a76b9719d911017c592"])
        );
        assert!(
            j["tags"]
                .as_array()
                .unwrap()
                .contains(&serde_json::json!("smtp:statuscode:250"))
        );
    }

    #[test]
    fn base64_state_spans_lines() {
        let mut b = B64Step::default();
        let mut out = b.decode(b"aGV");
        out.extend(b.decode(b"s!bG8=\r"));
        assert_eq!(out, b"hello");
        assert_eq!(B64Step::default().decode(b"YQ=="), b"a");
        assert_eq!(B64Step::default().decode(b"Y Q = ="), b"a");
        assert!(B64Step::default().decode(b"\xff\x00-").is_empty());
    }

    #[test]
    fn lines_end_at_cr() {
        // A CR split from its LF still ends the line; a bare LF does not,
        // so ".\n" does not end the message and no status is tagged.
        let mut h = Harness::tcp(25);
        h.feed(0, b"EHLO a\r");
        h.feed(0, b"\nDATA\r\nSubject: one\r\n\r\nbody\r\n.\n\n");
        h.feed(1, b"220 mx\r\n250 ok\r\n");
        let j = h.json();
        assert_eq!(j["email"]["smtpHello"], serde_json::json!(["a"]));
        assert_eq!(j["email"]["subject"], serde_json::json!(["one"]));
        assert!(j["tags"].as_array().unwrap().is_empty());
        h.feed(0, b"\r\n.\r\n");
        h.feed(1, b"250 queued\r\n");
        assert_eq!(h.json()["tags"], serde_json::json!(["smtp:statuscode:250"]));
    }

    #[test]
    fn hostile() {
        let mut h = Harness::tcp(25);
        h.feed(
            0,
            b"HELO x\r\nDATA\r\nContent-Type: x; boundary=\r\n\r\n--\r\n",
        );
        h.feed(0, &vec![b'a'; 100_000]);
        h.feed(0, b"\r\n=?\r\nSubject: =?utf-8?Q?=\r\n.\r\n");
        h.finish();
    }
}
