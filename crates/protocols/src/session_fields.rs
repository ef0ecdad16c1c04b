//! Field values of one session, with Arkime's set semantics: adding a value
//! already present does nothing, and fields with a count get `<db>Cnt`.

use std::net::IpAddr;

use fields::{Case, FieldFlags, FieldId, FieldKind, FieldRegistry};

use crate::json_text;
use serde_json::{Map, Value as Json};
use smallvec::SmallVec;

/// Where one string value sits in its session's text arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    at: u32,
    len: u32,
}

impl Span {
    fn range(self) -> std::ops::Range<usize> {
        self.at as usize..self.at as usize + self.len as usize
    }
}

/// One field's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Strings, in insertion order, distinct (or not, for the non-unique
    /// fields [`SessionFields::push_string`] fills); their text is in the
    /// session's arena, read with [`SessionFields::strings`].
    Strings(SmallVec<[Span; INLINE_VALUES]>),
    /// Integers, in insertion order, distinct.
    Ints(SmallVec<[i64; INLINE_VALUES]>),
    /// IP addresses, distinct.
    Ips(Vec<IpAddr>),
    /// Floats, distinct.
    Floats(Vec<f64>),
    /// Objects (DNS answers, certificates), in insertion order.
    Objects(Vec<Json>),
    /// Objects already written as compact JSON text (DNS transactions),
    /// in insertion order.
    ObjectTexts(Vec<String>),
    /// One value written as-is, not as an array (Arkime's single-value
    /// fields such as `mysql.version` or the `http.method-GET` counters).
    Scalar(Json),
}

impl Value {
    /// How many values a list holds (0 for a scalar).
    fn items(&self) -> usize {
        match self {
            Value::Strings(v) => v.len(),
            Value::Ints(v) => v.len(),
            Value::Ips(v) => v.len(),
            Value::Floats(v) => v.len(),
            Value::Objects(v) => v.len(),
            Value::ObjectTexts(v) => v.len(),
            Value::Scalar(_) => 0,
        }
    }
}

/// Values of registry fields for one session, plus its protocols and tags.
#[derive(Debug, Clone, Default)]
pub struct SessionFields {
    values: Vec<(FieldId, Value)>,
    /// The text of every string value, one after the other: a session's
    /// strings cost one growing allocation instead of one each (they are
    /// made on the packet thread and freed on the output thread).
    text: String,
    protocols: Vec<String>,
    tags: Vec<String>,
    /// Cap on values per field (Arkime's maxFieldValues-like bound).
    max_values: usize,
}

const DEFAULT_MAX_VALUES: usize = 4096;

/// Values a string or integer list holds without an allocation of its own:
/// most fields of a session have one or two.
const INLINE_VALUES: usize = 2;

/// Values a new list has room for: what its first push would grow it to
/// anyway, allocated at once instead of through the growth path.
const FIRST_VALUES: usize = 4;

/// Appends `s` cased as `kind` says to `text`.
fn push_cased(text: &mut String, kind: FieldKind, s: &str) {
    let start = text.len();
    match kind.case() {
        Case::Lower if s.is_ascii() => {
            text.push_str(s);
            text[start..].make_ascii_lowercase();
        }
        Case::Lower => text.push_str(&s.to_lowercase()),
        Case::Upper if s.is_ascii() => {
            text.push_str(s);
            text[start..].make_ascii_uppercase();
        }
        Case::Upper => text.push_str(&s.to_uppercase()),
        Case::Keep => text.push_str(s),
    }
}

/// Whether `list` (values already cased for `kind`, in `text`) holds what
/// `s` becomes once cased, decided without the cased copy; `None` when
/// deciding needs it (non-ASCII text to fold).
fn holds_cased(kind: FieldKind, text: &str, list: &[Span], s: &str) -> Option<bool> {
    let mut values = list.iter().map(|sp| &text[sp.range()]);
    match kind.case() {
        Case::Keep => Some(values.any(|x| x == s)),
        // ASCII folds to ASCII, so a stored non-ASCII value differs anyway.
        Case::Lower | Case::Upper if s.is_ascii() => {
            Some(values.any(|x| x.eq_ignore_ascii_case(s)))
        }
        _ => None,
    }
}

/// First bytes a session's text arena gets: most parsed sessions' strings
/// fit, so it rarely grows.
const FIRST_TEXT: usize = 512;

impl SessionFields {
    /// Empty values with the default bound per field.
    pub fn new() -> SessionFields {
        SessionFields {
            max_values: DEFAULT_MAX_VALUES,
            ..SessionFields::default()
        }
    }

    fn slot(&mut self, id: FieldId, empty: impl FnOnce() -> Value) -> &mut Value {
        let at = self.slot_index(id, empty);
        &mut self.values[at].1
    }

    /// The index of a field's entry in `values`, made with `empty` first
    /// if the field has none.
    fn slot_index(&mut self, id: FieldId, empty: impl FnOnce() -> Value) -> usize {
        match self.values.iter().position(|(f, _)| *f == id) {
            Some(i) => i,
            None => {
                if self.values.capacity() == 0 {
                    // A parsed session usually has a dozen or more fields:
                    // one allocation instead of growing 4, 8, 16.
                    self.values.reserve(16);
                }
                self.values.push((id, empty()));
                self.values.len() - 1
            }
        }
    }

    fn bound(&self) -> usize {
        if self.max_values == 0 {
            DEFAULT_MAX_VALUES
        } else {
            self.max_values
        }
    }

    /// Appends `value`, cased for `kind`, to the arena; `None` when the
    /// arena is full (4 GiB).
    fn push_text(&mut self, kind: FieldKind, value: &str) -> Option<Span> {
        if self.text.capacity() == 0 {
            self.text.reserve(FIRST_TEXT.max(value.len()));
        }
        let at = self.text.len();
        push_cased(&mut self.text, kind, value);
        match (u32::try_from(at), u32::try_from(self.text.len() - at)) {
            (Ok(at), Ok(len)) => Some(Span { at, len }),
            _ => {
                self.text.truncate(at);
                None
            }
        }
    }

    /// Adds a string (cased as the field's kind says); false when already
    /// present or the field is full.
    pub fn add_string(&mut self, reg: &FieldRegistry, id: FieldId, value: &str) -> bool {
        let kind = reg.def(id).kind;
        let bound = self.bound();
        let at = self.slot_index(id, || Value::Strings(SmallVec::new()));
        let Value::Strings(list) = &self.values[at].1 else {
            return false;
        };
        if list.len() >= bound {
            return false;
        }
        // Duplicates are common (hosts, user agents): found without making
        // the cased copy first.
        let folded = match holds_cased(kind, &self.text, list, value) {
            Some(true) => return false,
            Some(false) => false,
            None => true,
        };
        let Some(span) = self.push_text(kind, value) else {
            return false;
        };
        let Value::Strings(list) = &mut self.values[at].1 else {
            return false;
        };
        if folded {
            let new = &self.text[span.range()];
            if list.iter().any(|sp| &self.text[sp.range()] == new) {
                self.text.truncate(span.at as usize);
                return false;
            }
        }
        list.push(span);
        true
    }

    /// Adds an integer; false when already present or the field is full.
    pub fn add_int(&mut self, id: FieldId, value: i64) -> bool {
        let bound = self.bound();
        match self.slot(id, || Value::Ints(SmallVec::new())) {
            Value::Ints(list) => {
                if list.len() >= bound || list.contains(&value) {
                    return false;
                }
                list.push(value);
                true
            }
            _ => false,
        }
    }

    /// Adds an IP address; false when already present or the field is full.
    pub fn add_ip(&mut self, id: FieldId, value: IpAddr) -> bool {
        let bound = self.bound();
        match self.slot(id, || Value::Ips(Vec::with_capacity(FIRST_VALUES))) {
            Value::Ips(list) => {
                if list.len() >= bound || list.contains(&value) {
                    return false;
                }
                list.push(value);
                true
            }
            _ => false,
        }
    }

    /// Adds a float; false when already present or the field is full.
    pub fn add_float(&mut self, id: FieldId, value: f64) -> bool {
        let bound = self.bound();
        match self.slot(id, || Value::Floats(Vec::new())) {
            Value::Floats(list) => {
                if list.len() >= bound || list.contains(&value) {
                    return false;
                }
                list.push(value);
                true
            }
            _ => false,
        }
    }

    /// Appends an object (a DNS answer, a certificate) to an object field.
    pub fn add_object(&mut self, id: FieldId, value: Json) -> bool {
        let bound = self.bound();
        match self.slot(id, || Value::Objects(Vec::with_capacity(FIRST_VALUES))) {
            Value::Objects(list) if list.len() < bound => {
                list.push(value);
                true
            }
            _ => false,
        }
    }

    /// Appends an object given as compact JSON text (one `serde_json`
    /// would write) to an object field.
    pub fn add_object_text(&mut self, id: FieldId, text: String) -> bool {
        let bound = self.bound();
        match self.slot(id, || Value::ObjectTexts(Vec::with_capacity(FIRST_VALUES))) {
            Value::ObjectTexts(list) if list.len() < bound => {
                list.push(text);
                true
            }
            _ => false,
        }
    }

    /// Appends a string even when it is present already (Arkime's
    /// non-unique arrays such as `http.requestHeaderField`).
    pub fn push_string(&mut self, reg: &FieldRegistry, id: FieldId, value: &str) -> bool {
        let kind = reg.def(id).kind;
        let bound = self.bound();
        let at = self.slot_index(id, || Value::Strings(SmallVec::new()));
        if !matches!(&self.values[at].1, Value::Strings(list) if list.len() < bound) {
            return false;
        }
        let Some(span) = self.push_text(kind, value) else {
            return false;
        };
        if let Value::Strings(list) = &mut self.values[at].1 {
            list.push(span);
        }
        true
    }

    /// Sets a single-value field (written without an array); the first
    /// value wins, as in Arkime.
    pub fn set_scalar(&mut self, id: FieldId, value: Json) -> bool {
        if self.get(id).is_some() {
            return false;
        }
        self.values.push((id, Value::Scalar(value)));
        true
    }

    /// Adds `by` to a single-value integer counter field.
    pub fn incr(&mut self, id: FieldId, by: i64) {
        if let Value::Scalar(v) = self.slot(id, || Value::Scalar(Json::from(0))) {
            *v = Json::from(v.as_i64().unwrap_or(0) + by);
        }
    }

    /// Adds `by` to the counter field named by expression `expr`, if the
    /// registry has it.
    pub fn incr_expr(&mut self, reg: &FieldRegistry, expr: &str) {
        if let Some(id) = reg.lookup_expr(expr) {
            self.incr(id, 1);
        }
    }

    /// Adds a string to the field named by expression `expr`; false when the
    /// registry has no such field.
    pub fn add_str_expr(&mut self, reg: &FieldRegistry, expr: &str, value: &str) -> bool {
        match reg.lookup_expr(expr) {
            Some(id) => self.add_string(reg, id, value),
            None => false,
        }
    }

    /// Adds an integer to the field named by expression `expr`.
    pub fn add_int_expr(&mut self, reg: &FieldRegistry, expr: &str, value: i64) -> bool {
        match reg.lookup_expr(expr) {
            Some(id) => self.add_int(id, value),
            None => false,
        }
    }

    /// Adds an IP address to the field named by expression `expr`.
    pub fn add_ip_expr(&mut self, reg: &FieldRegistry, expr: &str, value: IpAddr) -> bool {
        match reg.lookup_expr(expr) {
            Some(id) => self.add_ip(id, value),
            None => false,
        }
    }

    /// Sets the single-value field named by expression `expr`.
    pub fn set_scalar_expr(&mut self, reg: &FieldRegistry, expr: &str, value: Json) -> bool {
        match reg.lookup_expr(expr) {
            Some(id) => self.set_scalar(id, value),
            None => false,
        }
    }

    /// Whether a field has any value.
    pub fn has(&self, id: FieldId) -> bool {
        self.get(id).is_some()
    }

    /// The strings of a string field, in order (`None` when the field has
    /// no values or holds another kind).
    pub fn strings(&self, id: FieldId) -> Option<impl ExactSizeIterator<Item = &str> + '_> {
        match self.get(id)? {
            Value::Strings(list) => Some(list.iter().map(|sp| &self.text[sp.range()])),
            _ => None,
        }
    }

    /// The values of a field (string values are read with
    /// [`SessionFields::strings`]).
    pub fn get(&self, id: FieldId) -> Option<&Value> {
        self.values.iter().find(|(f, _)| *f == id).map(|(_, v)| v)
    }

    /// Adds an application protocol name; false when already present.
    pub fn add_protocol(&mut self, name: &str) -> bool {
        if self.protocols.iter().any(|p| p == name) {
            return false;
        }
        if self.protocols.capacity() == 0 {
            self.protocols.reserve_exact(FIRST_VALUES);
        }
        self.protocols.push(name.to_string());
        true
    }

    /// Removes an application protocol (a parser that finds it guessed
    /// wrong).
    pub fn remove_protocol(&mut self, name: &str) {
        self.protocols.retain(|p| p != name);
    }

    /// Whether a protocol was added.
    pub fn has_protocol(&self, name: &str) -> bool {
        self.protocols.iter().any(|p| p == name)
    }

    /// Protocols added.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Adds a tag; false when already present.
    pub fn add_tag(&mut self, tag: &str) -> bool {
        if self.tags.iter().any(|t| t == tag) {
            return false;
        }
        self.tags.push(tag.to_string());
        true
    }

    /// Tags added.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Whether no field has a value.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Drops every value (a new session segment).
    pub fn clear(&mut self) {
        self.values.clear();
        self.text.clear();
    }

    /// Writes every field at its db path (dotted paths are nested objects)
    /// with its count next to it when the field has one.
    pub fn write_json(&self, reg: &FieldRegistry, body: &mut Map<String, Json>) {
        for (id, value) in &self.values {
            let def = reg.def(*id);
            let (json, n) = match value {
                Value::Strings(v) => (
                    Json::from(
                        v.iter()
                            .map(|sp| self.text[sp.range()].to_string())
                            .collect::<Vec<_>>(),
                    ),
                    v.len(),
                ),
                Value::Ints(v) => (Json::from(v.to_vec()), v.len()),
                Value::Ips(v) => (
                    Json::from(v.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
                    v.len(),
                ),
                Value::Floats(v) => (Json::from(v.clone()), v.len()),
                Value::Objects(v) => (Json::Array(v.clone()), v.len()),
                Value::ObjectTexts(v) => (
                    Json::Array(
                        v.iter()
                            .map(|t| serde_json::from_str(t).unwrap_or(Json::Null))
                            .collect(),
                    ),
                    v.len(),
                ),
                Value::Scalar(v) => {
                    insert_path(body, &def.db, v.clone());
                    continue;
                }
            };
            if n == 0 {
                continue;
            }
            insert_path(body, &def.db, json);
            if let Some(count) = def.count_db() {
                insert_path(body, &count, Json::from(n));
            }
        }
    }
}

impl SessionFields {
    /// Appends every field as members of a JSON object that is open at the
    /// end of `buf` and already has a member (each member is written as
    /// `,"key":value`). Produces the same document as [`write_json`]
    /// (dotted db paths become nested objects, counts sit beside their
    /// field) without building a `serde_json` tree.
    ///
    /// [`write_json`]: SessionFields::write_json
    pub fn write_json_members(&self, reg: &FieldRegistry, buf: &mut String) {
        let mut order: Vec<(u32, &str, usize)> = Vec::with_capacity(self.values.len());
        for (i, (id, value)) in self.values.iter().enumerate() {
            if value.items() > 0 || matches!(value, Value::Scalar(_)) {
                order.push((reg.db_rank(*id), reg.def(*id).db.as_ref(), i));
            }
        }
        // Segment by segment, so a parent's members end up next to each
        // other (the registry's rank encodes that order).
        order.sort_unstable_by_key(|o| o.0);
        // A path that is also another path's parent (or appears twice) is
        // resolved by the tree builder's last-one-wins rule.
        let clash = order.windows(2).any(|w| {
            let (a, b) = (w[0].1, w[1].1);
            a == b || (b.len() > a.len() && b.starts_with(a) && b.as_bytes()[a.len()] == b'.')
        });
        if clash {
            let mut m = Map::new();
            self.write_json(reg, &mut m);
            for (k, v) in &m {
                buf.push(',');
                json_text::push_str(buf, k);
                buf.push(':');
                buf.push_str(&v.to_string());
            }
            return;
        }
        // Open nested objects, outermost first, with "a member was written".
        let mut open: Vec<(&str, bool)> = Vec::new();
        for (_, path, i) in order {
            let (id, value) = &self.values[i];
            let (parents, leaf) = match path.rsplit_once('.') {
                Some((p, l)) => (Some(p), l),
                None => (None, path),
            };
            let mut depth = 0;
            if let Some(p) = parents {
                for (d, seg) in p.split('.').enumerate() {
                    if d < open.len() && open[d].0 == seg {
                        depth = d + 1;
                        continue;
                    }
                    close_to(buf, &mut open, d);
                    member_key(buf, &mut open, seg);
                    buf.push('{');
                    open.push((seg, false));
                    depth = d + 1;
                }
            }
            close_to(buf, &mut open, depth);
            member_key(buf, &mut open, leaf);
            let n = write_value(buf, &self.text, value);
            let def = reg.def(*id);
            let suffix = if def.flags.contains(FieldFlags::CNT_DASH) {
                "-cnt"
            } else if def.flags.contains(FieldFlags::CNT) {
                "Cnt"
            } else {
                ""
            };
            if let (Some(n), false) = (n, suffix.is_empty()) {
                separator(buf, &mut open);
                buf.push('"');
                json_text::push_str_body(buf, leaf);
                buf.push_str(suffix);
                buf.push_str("\":");
                buf.push_str(itoa::Buffer::new().format(n));
            }
        }
        close_to(buf, &mut open, 0);
    }
}

/// Closes open objects until `depth` remain.
fn close_to(buf: &mut String, open: &mut Vec<(&str, bool)>, depth: usize) {
    while open.len() > depth {
        open.pop();
        buf.push('}');
    }
}

/// The comma before a member of the innermost open object (the document
/// itself always has members already).
fn separator(buf: &mut String, open: &mut [(&str, bool)]) {
    match open.last_mut() {
        Some((_, written)) if !*written => *written = true,
        _ => buf.push(','),
    }
}

fn member_key(buf: &mut String, open: &mut [(&str, bool)], key: &str) {
    separator(buf, open);
    json_text::push_str(buf, key);
    buf.push(':');
}

/// Writes a value; returns the count to write beside it (None for
/// scalars, which have no count).
fn write_value(buf: &mut String, text: &str, value: &Value) -> Option<usize> {
    fn list<T>(buf: &mut String, v: &[T], mut one: impl FnMut(&mut String, &T)) -> Option<usize> {
        buf.push('[');
        for (i, x) in v.iter().enumerate() {
            if i > 0 {
                buf.push(',');
            }
            one(buf, x);
        }
        buf.push(']');
        Some(v.len())
    }
    match value {
        Value::Strings(v) => list(buf, v, |b, sp| json_text::push_str(b, &text[sp.range()])),
        Value::Ints(v) => {
            let mut num = itoa::Buffer::new();
            list(buf, v, |b, x| b.push_str(num.format(*x)))
        }
        Value::Ips(v) => list(buf, v, json_text::push_ip),
        Value::Floats(v) => list(buf, v, |b, x| b.push_str(&Json::from(*x).to_string())),
        Value::Objects(v) => list(buf, v, |b, x| b.push_str(&x.to_string())),
        Value::ObjectTexts(v) => list(buf, v, |b, x| b.push_str(x)),
        Value::Scalar(v) => {
            buf.push_str(&v.to_string());
            None
        }
    }
}

/// Puts `value` at a dotted path, creating objects on the way.
pub(crate) fn insert_path(body: &mut Map<String, Json>, path: &str, value: Json) {
    let mut parts = path.split('.').peekable();
    let mut cur = body;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            cur.insert(part.to_string(), value);
            return;
        }
        let next = cur
            .entry(part.to_string())
            .or_insert_with(|| Json::Object(Map::new()));
        if !next.is_object() {
            *next = Json::Object(Map::new());
        }
        match next {
            Json::Object(m) => cur = m,
            _ => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_semantics_counts_and_paths() {
        let reg = FieldRegistry::builtin();
        let uri = reg.lookup_expr("http.uri").unwrap();
        let host = reg.lookup_expr("host.http").unwrap();
        let mut f = SessionFields::new();
        assert!(f.add_string(&reg, uri, "/a"));
        assert!(!f.add_string(&reg, uri, "/a"));
        assert!(f.add_string(&reg, uri, "/b"));
        assert!(f.add_string(&reg, host, "Example.COM"));
        // Duplicates once cased, on the ASCII fast path and the general one.
        assert!(!f.add_string(&reg, host, "example.com"));
        assert!(!f.add_string(&reg, host, "EXAMPLE.com"));
        assert!(f.add_string(&reg, host, "ÉCOLE.fr"));
        assert!(!f.add_string(&reg, host, "école.FR"));
        // http.uri keeps its case: "/A" is another value.
        assert!(f.add_string(&reg, uri, "/A"));
        let mut body = Map::new();
        f.write_json(&reg, &mut body);
        let http = body["http"].as_object().unwrap();
        assert_eq!(http["uri"], serde_json::json!(["/a", "/b", "/A"]));
        assert_eq!(http["uriCnt"], serde_json::json!(3));
        // host.http is a lower-cased term field.
        assert_eq!(http["host"], serde_json::json!(["example.com", "école.fr"]));
    }

    #[test]
    fn strings_share_one_arena_and_duplicates_leave_nothing_in_it() {
        let reg = FieldRegistry::builtin();
        let host = reg.lookup_expr("host.http").unwrap();
        let field = reg.lookup_expr("http.header.request.field").unwrap();
        let mut f = SessionFields::new();
        assert!(f.add_string(&reg, host, "A.example"));
        assert!(f.add_string(&reg, host, "ÉCOLE.fr"));
        let used = f.text.len();
        // Rejected on the ASCII path (no copy made) and after folding
        // non-ASCII text (the copy is taken back).
        assert!(!f.add_string(&reg, host, "a.EXAMPLE"));
        assert!(!f.add_string(&reg, host, "école.FR"));
        assert_eq!(f.text.len(), used);
        // Non-unique fields keep every value, in order.
        for v in ["accept", "host", "accept"] {
            assert!(f.push_string(&reg, field, v));
        }
        let hosts: Vec<&str> = f.strings(host).unwrap().collect();
        assert_eq!(hosts, ["a.example", "école.fr"]);
        let fields: Vec<&str> = f.strings(field).unwrap().collect();
        assert_eq!(fields, ["accept", "host", "accept"]);
        // Values of other kinds are not strings.
        let status = reg.lookup_expr("http.statuscode").unwrap();
        f.add_int(status, 200);
        assert!(f.strings(status).is_none());
        // A new segment starts with an empty arena.
        f.clear();
        assert!(f.strings(host).is_none());
        assert_eq!(f.text.len(), 0);
        assert!(f.add_string(&reg, host, "b.example"));
        assert_eq!(f.strings(host).unwrap().collect::<Vec<_>>(), ["b.example"]);
    }

    fn members(f: &SessionFields, reg: &FieldRegistry) -> Map<String, Json> {
        let mut text = String::from("{\"x\":0");
        f.write_json_members(reg, &mut text);
        text.push('}');
        let mut m: Map<String, Json> = serde_json::from_str(&text).unwrap();
        m.remove("x");
        m
    }

    #[test]
    fn text_writer_matches_the_tree() {
        let reg = FieldRegistry::builtin();
        let mut f = SessionFields::new();
        assert_eq!(members(&f, &reg), Map::new());
        f.add_str_expr(&reg, "http.uri", "/a\"b");
        f.add_str_expr(&reg, "host.http", "h.example");
        f.add_int_expr(&reg, "http.statuscode", 200);
        f.add_ip_expr(&reg, "ip.dns", "10.1.2.3".parse().unwrap());
        f.add_ip_expr(&reg, "ip.dns", "2001:db8::1".parse().unwrap());
        f.add_str_expr(&reg, "dns.host", "x.example");
        f.set_scalar_expr(&reg, "http.method-GET", serde_json::json!(3));
        f.add_str_expr(&reg, "tls.ja3", "abc");
        let mut tree = Map::new();
        f.write_json(&reg, &mut tree);
        assert!(tree.len() >= 3, "{tree:?}");
        assert_eq!(members(&f, &reg), tree);
    }
}
