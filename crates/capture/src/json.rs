//! A small writer of JSON text: session documents are written straight
//! into one string instead of being built as a tree of maps first (that
//! tree cost more than all packet processing).

use std::fmt::Write;

/// Writes one JSON object into a string.
pub(crate) struct ObjectWriter<'a> {
    buf: &'a mut String,
    first: bool,
}

/// Appends `s` as a JSON string literal.
pub(crate) fn push_str(buf: &mut String, s: &str) {
    buf.push('"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b >= 0x20 && b != b'"' && b != b'\\' {
            continue;
        }
        // Escapes are ASCII, so `i` is on a character boundary.
        buf.push_str(&s[start..i]);
        match b {
            b'"' => buf.push_str("\\\""),
            b'\\' => buf.push_str("\\\\"),
            b'\n' => buf.push_str("\\n"),
            b'\r' => buf.push_str("\\r"),
            b'\t' => buf.push_str("\\t"),
            _ => {
                let _ = write!(buf, "\\u{:04x}", b);
            }
        }
        start = i + 1;
    }
    buf.push_str(&s[start..]);
    buf.push('"');
}

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
        push_str(self.buf, k);
        self.buf.push(':');
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
