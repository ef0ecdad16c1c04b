//! A small writer of JSON text: session documents are written straight
//! into one string instead of being built as a tree of maps first (that
//! tree cost more than all packet processing).

use std::net::IpAddr;

/// Writes one JSON object into a string.
pub(crate) struct ObjectWriter<'a> {
    buf: &'a mut String,
    first: bool,
}

pub(crate) use protocols::json_text::push_str;
use protocols::json_text::{push_hex, push_ip, push_mac};

impl<'a> ObjectWriter<'a> {
    /// Opens an object at the end of `buf`.
    pub fn new(buf: &'a mut String) -> ObjectWriter<'a> {
        buf.push('{');
        ObjectWriter { buf, first: true }
    }

    fn key(&mut self, k: &str) {
        if !self.first {
            self.buf.push(',');
        }
        self.first = false;
        // Keys are the program's own names: plain ASCII, nothing to escape.
        debug_assert!(!k.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\'));
        self.buf.push('"');
        self.buf.push_str(k);
        self.buf.push_str("\":");
    }

    /// `"k": n`.
    pub fn int(&mut self, k: &str, v: i64) {
        self.key(k);
        self.buf.push_str(itoa::Buffer::new().format(v));
    }

    /// `"k": n` for unsigned values.
    pub fn uint(&mut self, k: &str, v: u64) {
        self.key(k);
        self.buf.push_str(itoa::Buffer::new().format(v));
    }

    /// `"k": true|false`.
    pub fn boolean(&mut self, k: &str, v: bool) {
        self.key(k);
        self.buf.push_str(if v { "true" } else { "false" });
    }

    /// `"k": "s"`.
    pub fn string(&mut self, k: &str, v: &str) {
        self.key(k);
        push_str(self.buf, v);
    }

    /// `"k": [n, ...]`.
    pub fn ints<I: IntoIterator<Item = i64>>(&mut self, k: &str, v: I) {
        self.key(k);
        self.buf.push('[');
        let mut num = itoa::Buffer::new();
        for (i, x) in v.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            self.buf.push_str(num.format(x));
        }
        self.buf.push(']');
    }

    /// `"k": ["s", ...]`.
    pub fn strings<S: AsRef<str>, I: IntoIterator<Item = S>>(&mut self, k: &str, v: I) {
        self.key(k);
        self.buf.push('[');
        for (i, x) in v.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            push_str(self.buf, x.as_ref());
        }
        self.buf.push(']');
    }

    /// `"k": "a.b.c.d"`.
    pub fn ip(&mut self, k: &str, v: &IpAddr) {
        self.key(k);
        push_ip(self.buf, v);
    }

    /// `"k": ["a.b.c.d", ...]`.
    pub fn ips<'i, I: IntoIterator<Item = &'i IpAddr>>(&mut self, k: &str, v: I) {
        self.list(k, v, push_ip);
    }

    /// `"k": ["00:11:22:33:44:55", ...]`.
    pub fn macs<'m, I: IntoIterator<Item = &'m [u8; 6]>>(&mut self, k: &str, v: I) {
        self.list(k, v, push_mac);
    }

    /// `"k": "0a1b..."`: bytes as hex.
    pub fn hex(&mut self, k: &str, v: &[u8]) {
        self.key(k);
        self.buf.push('"');
        push_hex(self.buf, v);
        self.buf.push('"');
    }

    fn list<T, I: IntoIterator<Item = T>>(&mut self, k: &str, v: I, one: impl Fn(&mut String, T)) {
        self.key(k);
        self.buf.push('[');
        for (i, x) in v.into_iter().enumerate() {
            if i > 0 {
                self.buf.push(',');
            }
            one(self.buf, x);
        }
        self.buf.push(']');
    }

    /// Appends the members `write` produces (each as `,"k":v`) to this
    /// object, which must already have a member.
    pub fn members(&mut self, write: impl FnOnce(&mut String)) {
        debug_assert!(!self.first);
        write(self.buf);
    }

    /// `"k": <raw JSON text>`.
    pub fn raw(&mut self, k: &str, json: &str) {
        self.key(k);
        self.buf.push_str(json);
    }

    /// `"k": {...}`: the closure writes the inner object.
    pub fn object(&mut self, k: &str, f: impl FnOnce(&mut ObjectWriter<'_>)) {
        self.key(k);
        let mut inner = ObjectWriter::new(self.buf);
        f(&mut inner);
        inner.close();
    }

    /// Closes the object.
    pub fn close(self) {
        self.buf.push('}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json() {
        let mut s = String::new();
        let mut o = ObjectWriter::new(&mut s);
        o.int("a", -1);
        o.string("b", "q\"u\\o\nte\u{1}");
        o.object("c", |c| {
            c.ints("x", [1, 2]);
            c.strings("y", ["p"]);
            c.boolean("z", true);
        });
        o.raw("d", "[1]");
        o.close();
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["b"], "q\"u\\o\nte\u{1}");
        assert_eq!(v["c"]["x"][1], 2);
        assert_eq!(v["d"][0], 1);
    }
}
