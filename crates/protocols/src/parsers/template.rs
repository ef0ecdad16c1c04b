//! A template for a new parser: copy this file, rename the protocol, and
//! replace the message handling. It is compiled and tested, but not
//! registered by [`super::classifiers`] (the protocol is made up).
//!
//! The protocol: a line-based exchange where the server greets with
//! `+HELLO <software>` and the client names itself with `USER <name>`.
//! What a real parser needs is all here:
//!
//! 1. **Classification** ([`register`]): a byte pattern at an offset of a
//!    direction's first data (and/or a port) picks a native classify
//!    function, which checks a little more and attaches the parser.
//! 2. **Per-session state** ([`Example`]): one bounded buffer per
//!    direction for a partial line, nothing else.
//! 3. **Streaming** ([`Parser::parse`]): the data of each call is read in
//!    place; only an unfinished line is copied, and a line longer than
//!    [`MAX_LINE`] ends parsing with a tag instead of growing memory.
//! 4. **Fields**: values go through `super::Out` (field ids are looked
//!    up once per analyzer and then cached by the expression's address);
//!    strings from the wire become text with [`util::text`].
//! 5. **Never panic**: every index is checked; tests feed literal bytes
//!    cut at every position, and hostile input.

use super::util;
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Longest line kept while waiting for its end.
pub const MAX_LINE: usize = 4096;

/// Registers the classifier: the server's greeting at offset 0.
pub fn register(set: &mut ClassifierSet) {
    set.add_tcp("example", 0, b"+HELLO ", ClassifyAction::Native(classify));
}

fn classify(cx: &mut ClassifyContext<'_>, _data: &[u8], dir: Direction) {
    // One parser per session, whichever direction matched first.
    if cx.has_parser("example") {
        return;
    }
    cx.add_protocol("example");
    cx.attach(Box::new(Example::new(dir.index())));
}

/// The parser of one session.
pub struct Example {
    /// The direction the server speaks in (the one that greeted).
    server: usize,
    /// A partial line per direction.
    line: [Vec<u8>; 2],
}

impl Example {
    /// A parser for a session whose server speaks in direction `server`.
    pub fn new(server: usize) -> Example {
        Example {
            server,
            line: [Vec::new(), Vec::new()],
        }
    }

    /// One complete line (without its line end).
    fn line(&self, o: &mut super::Out<'_, '_>, d: usize, line: &[u8]) {
        if d == self.server {
            if let Some(software) = line.strip_prefix(b"+HELLO ") {
                o.tag(&format!("example:{}", util::text(util::trim(software))));
            }
        } else if let Some(name) = line.strip_prefix(b"USER ") {
            let name = util::trim(name);
            if !name.is_empty() {
                o.s("user", &util::text(name));
            }
        }
    }
}

impl Parser for Example {
    fn name(&self) -> &'static str {
        "example"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let d = dir.index();
        let mut o = super::out(cx);
        let mut rest = data;
        while let Some(nl) = memchr::memchr(b'\n', rest) {
            let piece = &rest[..nl];
            rest = &rest[nl + 1..];
            if self.line[d].is_empty() {
                // The common case: the whole line is in this data.
                self.line(&mut o, d, piece.strip_suffix(b"\r").unwrap_or(piece));
                continue;
            }
            if self.line[d].len() + piece.len() > MAX_LINE {
                o.tag("example:line-too-long");
                return ParserStatus::Done;
            }
            let mut line = std::mem::take(&mut self.line[d]);
            line.extend_from_slice(piece);
            self.line(&mut o, d, line.strip_suffix(b"\r").unwrap_or(&line));
            line.clear();
            // The buffer is kept (empty) for the next partial line.
            self.line[d] = line;
        }
        if self.line[d].len() + rest.len() > MAX_LINE {
            o.tag("example:line-too-long");
            return ParserStatus::Done;
        }
        self.line[d].extend_from_slice(rest);
        ParserStatus::Continue
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::testutil::Harness;
    use crate::analyzer::Analyzer;
    use crate::{ClassifierSet, ProtocolConfig, Transport};
    use fields::FieldRegistry;
    use serde_json::json;

    /// A session on a harness whose only classifier is the template's.
    fn session(server: &[&[u8]], client: &[&[u8]]) -> serde_json::Value {
        let mut h = Harness::new(Transport::Tcp, 7000, ProtocolConfig::default());
        let mut set = ClassifierSet::new();
        super::register(&mut set);
        h.analyzer = Analyzer::new(
            Arc::new(FieldRegistry::builtin()),
            Arc::new(set),
            Arc::new(ProtocolConfig::default()),
        );
        for s in server {
            h.feed(1, s);
        }
        for c in client {
            h.feed(0, c);
        }
        h.finish();
        h.json()
    }

    #[test]
    fn greeting_and_user() {
        let j = session(
            &[b"+HELLO exampled-1.0\r\n"],
            &[b"USER alice\r\nUSER  bob \r\n"],
        );
        assert_eq!(j["protocol"], json!(["example"]));
        assert_eq!(j["user"], json!(["alice", "bob"]));
        assert_eq!(j["tags"], json!(["example:exampled-1.0"]));
    }

    #[test]
    fn lines_cut_anywhere_give_the_same_fields() {
        let client = b"USER alice\r\nUSER carol\n";
        let whole = session(&[b"+HELLO x\r\n"], &[client]);
        for cut in 1..client.len() {
            let (a, b) = client.split_at(cut);
            assert_eq!(session(&[b"+HELLO x\r\n"], &[a, b]), whole, "cut at {cut}");
        }
    }

    #[test]
    fn other_traffic_and_hostile_lines() {
        // Not the greeting: no parser.
        let j = session(&[b"-ERR no\r\n"], &[b"USER alice\r\n"]);
        assert_eq!(j["protocol"], json!([]));
        assert!(j.get("user").is_none());
        // A line that never ends is not kept past MAX_LINE.
        let long = vec![b'A'; super::MAX_LINE + 1];
        let j = session(&[b"+HELLO x\r\n"], &[b"USER ", &long, b"\r\nUSER late\r\n"]);
        assert!(j.get("user").is_none(), "{j}");
        assert!(
            j["tags"]
                .as_array()
                .unwrap()
                .contains(&json!("example:line-too-long"))
        );
        // Binary garbage and empty names add nothing and do not panic.
        let j = session(
            &[b"+HELLO \xff\xfe\r\n"],
            &[b"USER \r\nUSER\r\n\x00\x01\x02"],
        );
        assert!(j.get("user").is_none(), "{j}");
    }
}
