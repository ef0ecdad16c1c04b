//! IMAP: the mailbox a client selects (`email.folder`) and the sender,
//! recipients and subject of messages the server returns in FETCH
//! responses (`email.src`, `email.dst`, `email.subject`).
//!
//! Like Arkime, only header lines directly after a `* ... FETCH` line are
//! read (up to the first empty line or a line starting with `)`); bodies
//! and literals are not decoded.

use super::util::{self, find_nocase};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Longest line kept while waiting for its end; longer lines end parsing
/// with the tag `imap:line-too-long`.
pub const MAX_LINE: usize = 16 * 1024;

/// Registers the IMAP classifier (a server greeting `* OK ... IMAP ...`).
pub fn register(set: &mut ClassifierSet) {
    set.add_tcp("imap", 0, b"* OK ", ClassifyAction::Native(classify));
}

fn classify(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    if cx.fields.has_protocol("imap")
        || data.len() < 10
        || find_nocase(&data[5..], b"imap").is_none()
    {
        return;
    }
    cx.add_protocol("imap");
    cx.attach(Box::new(Imap::new(dir.index())));
}

/// The IMAP parser of one session.
pub struct Imap {
    server: usize,
    /// A partial line per direction.
    line: [Vec<u8>; 2],
    in_fetch: bool,
    in_headers: bool,
}

impl Imap {
    /// A parser for a session whose server speaks in direction `server`.
    pub fn new(server: usize) -> Imap {
        Imap {
            server,
            line: [Vec::new(), Vec::new()],
            in_fetch: false,
            in_headers: false,
        }
    }

    fn server_line(&mut self, o: &mut super::Out<'_, '_>, line: &[u8]) {
        if line.len() > 6 && line.starts_with(b"* ") {
            if find_nocase(line, b"fetch").is_some() {
                self.in_fetch = true;
                self.in_headers = true;
            }
        } else if self.in_fetch && line.first() == Some(&b')') {
            self.in_fetch = false;
            self.in_headers = false;
        } else if self.in_fetch && self.in_headers {
            if line.is_empty() {
                self.in_headers = false;
            } else {
                header(o, line);
            }
        }
    }
}

/// One header line of a fetched message.
fn header(o: &mut super::Out<'_, '_>, line: &[u8]) {
    let starts = |p: &[u8]| line.len() > p.len() && line[..p.len()].eq_ignore_ascii_case(p);
    if starts(b"From:") {
        addresses(o, "email.src", &line[5..]);
    } else if starts(b"To:") || starts(b"Cc:") {
        addresses(o, "email.dst", &line[3..]);
    } else if starts(b"Subject:") {
        let s = &line[8..];
        let at = s
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(s.len());
        o.s("email.subject", &util::text(&s[at..]));
    }
}

/// The addresses of an address-list header value: the part inside `<>`
/// when there is one, else the text up to the next comma; a leading quoted
/// display name is skipped.
fn addresses(o: &mut super::Out<'_, '_>, field: &'static str, v: &[u8]) {
    let end = v.len();
    let mut i = 0;
    let stop = |c: u8| matches!(c, b',' | b'\r' | b'\n');
    while i < end {
        while i < end && v[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut start = i;
        if i < end && v[i] == b'"' {
            i += 1;
            while i < end && v[i] != b'"' {
                i += 1;
            }
            i = (i + 1).min(end);
            while i < end && v[i].is_ascii_whitespace() {
                i += 1;
            }
            start = i;
        }
        while i < end && v[i] != b'<' && !stop(v[i]) {
            i += 1;
        }
        if i < end && v[i] == b'<' {
            i += 1;
            start = i;
            while i < end && v[i] != b'>' {
                i += 1;
            }
        }
        if i > start {
            o.s(field, &util::text(&v[start..i]));
        }
        while i < end && !stop(v[i]) {
            i += 1;
        }
        if i < end {
            i += 1;
        }
    }
}

/// `SELECT`/`EXAMINE` of a client command line: the mailbox name.
fn folder(line: &[u8]) -> Option<&[u8]> {
    if line.len() <= 7 {
        return None;
    }
    let mut i = line
        .iter()
        .position(u8::is_ascii_whitespace)
        .unwrap_or(line.len());
    while i < line.len() && line[i].is_ascii_whitespace() {
        i += 1;
    }
    let cmd = &line[i..];
    let skip = if cmd.len() >= 7 && cmd[..7].eq_ignore_ascii_case(b"SELECT ") {
        7
    } else if cmd.len() >= 8 && cmd[..8].eq_ignore_ascii_case(b"EXAMINE ") {
        8
    } else {
        return None;
    };
    let mut name = &cmd[skip..];
    let at = name
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(name.len());
    name = &name[at..];
    let name = if let Some(q) = name.strip_prefix(b"\"") {
        &q[..memchr::memchr(b'"', q).unwrap_or(q.len())]
    } else {
        let end = name
            .iter()
            .rposition(|c| !c.is_ascii_whitespace())
            .map_or(0, |e| e + 1);
        &name[..end]
    };
    (!name.is_empty()).then_some(name)
}

impl Parser for Imap {
    fn name(&self) -> &'static str {
        "imap"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let d = dir.index();
        let mut o = super::out(cx);
        let mut rest = data;
        while !rest.is_empty() {
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                if self.line[d].len() + rest.len() > MAX_LINE {
                    o.tag("imap:line-too-long");
                    return ParserStatus::Done;
                }
                self.line[d].extend_from_slice(rest);
                return ParserStatus::Continue;
            };
            let piece = &rest[..nl];
            let piece = piece.strip_suffix(b"\r").unwrap_or(piece);
            rest = &rest[nl + 1..];
            if self.line[d].is_empty() {
                if d == self.server {
                    self.server_line(&mut o, piece);
                } else if let Some(f) = folder(piece) {
                    o.s("email.folder", &util::text(f));
                }
                continue;
            }
            // The end of a line started in earlier data; as in Arkime, only
            // server lines are read from such joined lines.
            if self.line[d].len() + piece.len() > MAX_LINE {
                o.tag("imap:line-too-long");
                return ParserStatus::Done;
            }
            let mut line = std::mem::take(&mut self.line[d]);
            line.extend_from_slice(piece);
            if d == self.server {
                self.server_line(&mut o, &line);
            }
            line.clear();
            self.line[d] = line;
        }
        ParserStatus::Continue
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::Harness;
    use serde_json::json;

    fn session(server: &[&[u8]], client: &[&[u8]]) -> serde_json::Value {
        let mut h = Harness::tcp(143);
        h.feed(1, b"* OK IMAP4rev1 server ready\r\n");
        for c in client {
            h.feed(0, c);
        }
        for s in server {
            h.feed(1, s);
        }
        h.json()
    }

    #[test]
    fn fetch_headers_and_folder() {
        let j = session(
            &[
                b"* 1 FETCH (BODY[HEADER] {120}\r\n",
                b"From: \"Bob, Jr\" <Bob@Example.com>\r\nTo: a@x.org, \"C\" <c@y.org>\r\n",
                b"Cc: d@z.org\r\nSubject:   Hello there\r\n\r\nFrom: body@not.read\r\n)\r\n",
                b"* 2 FETCH (FLAGS (\\Seen))\r\n)\r\nFrom: after@close.org\r\n",
            ],
            &[
                b"a1 LOGIN u p\r\n",
                b"a2 SELECT \"INBOX\"\r\n",
                b"a3 EXAMINE Sent  \r\n",
            ],
        );
        assert_eq!(j["protocol"], json!(["imap"]));
        assert_eq!(j["email"]["src"], json!(["bob@example.com"]));
        assert_eq!(j["email"]["dst"], json!(["a@x.org", "c@y.org", "d@z.org"]));
        assert_eq!(j["email"]["subject"], json!(["Hello there"]));
        assert_eq!(j["email"]["folder"], json!(["INBOX", "Sent"]));
    }

    #[test]
    fn lines_split_across_segments() {
        let j = session(
            &[b"* 3 FE", b"TCH (BODY[HEADER]\r\nSubj", b"ect: split\r\n"],
            &[],
        );
        assert_eq!(j["email"]["subject"], json!(["split"]));
    }

    #[test]
    fn greeting_must_name_imap() {
        let mut h = Harness::tcp(143);
        h.feed(1, b"* OK ready, nothing more\r\n");
        assert!(h.app.parser_names().is_empty());
    }

    #[test]
    fn endless_line_is_bounded() {
        let mut h = Harness::tcp(143);
        h.feed(1, b"* OK IMAP4 ready\r\n");
        let chunk = vec![b'x'; 4096];
        for _ in 0..5 {
            h.feed(1, &chunk);
        }
        assert!(h.app.parser_names().is_empty());
        assert_eq!(h.json()["tags"], json!(["imap:line-too-long"]));
    }

    #[test]
    fn hostile_headers_never_panic() {
        let j = session(
            &[
                b"* 1 FETCH\r\n",
                b"From:\"unterminated\r\nTo:<<<,,,>\r\nFrom: <\r\nSubject:\r\nTo:\"\"\r\n",
            ],
            &[b"x SELECT\r\n", b"x SELECT \"\r\n", b"SELECT \r\n"],
        );
        assert_eq!(j["protocol"], json!(["imap"]));
        assert!(j["email"]["folder"].is_null());
    }
}
