//! Field values of one session, with Arkime's set semantics: adding a value
//! already present does nothing, and fields with a count get `<db>Cnt`.

use std::net::IpAddr;

use fields::{Case, FieldId, FieldKind, FieldRegistry};
use serde_json::{Map, Value as Json};

/// One field's values.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Strings, in insertion order, distinct.
    Strings(Vec<String>),
    /// Integers, in insertion order, distinct.
    Ints(Vec<i64>),
    /// IP addresses, distinct.
    Ips(Vec<IpAddr>),
    /// Floats, distinct.
    Floats(Vec<f64>),
    /// Objects (DNS answers, certificates), in insertion order.
    Objects(Vec<Json>),
}

/// Values of registry fields for one session, plus its protocols and tags.
#[derive(Debug, Clone, Default)]
pub struct SessionFields {
    values: Vec<(FieldId, Value)>,
    protocols: Vec<String>,
    tags: Vec<String>,
    /// Cap on values per field (Arkime's maxFieldValues-like bound).
    max_values: usize,
}

const DEFAULT_MAX_VALUES: usize = 4096;

fn cased(kind: FieldKind, s: &str) -> String {
    match kind.case() {
        Case::Lower => s.to_lowercase(),
        Case::Upper => s.to_uppercase(),
        Case::Keep => s.to_string(),
    }
}

impl SessionFields {
    /// Empty values with the default bound per field.
    pub fn new() -> SessionFields {
        SessionFields {
            max_values: DEFAULT_MAX_VALUES,
            ..SessionFields::default()
        }
    }

    fn slot(&mut self, id: FieldId, empty: impl FnOnce() -> Value) -> &mut Value {
        let at = match self.values.iter().position(|(f, _)| *f == id) {
            Some(i) => i,
            None => {
                self.values.push((id, empty()));
                self.values.len() - 1
            }
        };
        &mut self.values[at].1
    }

    fn bound(&self) -> usize {
        if self.max_values == 0 {
            DEFAULT_MAX_VALUES
        } else {
            self.max_values
        }
    }

    /// Adds a string (cased as the field's kind says); false when already
    /// present or the field is full.
    pub fn add_string(&mut self, reg: &FieldRegistry, id: FieldId, value: &str) -> bool {
        let kind = reg.def(id).kind;
        let v = cased(kind, value);
        let bound = self.bound();
        match self.slot(id, || Value::Strings(Vec::new())) {
            Value::Strings(list) => {
                if list.len() >= bound || list.contains(&v) {
                    return false;
                }
                list.push(v);
                true
            }
            _ => false,
        }
    }

    /// Adds an integer; false when already present or the field is full.
    pub fn add_int(&mut self, id: FieldId, value: i64) -> bool {
        let bound = self.bound();
        match self.slot(id, || Value::Ints(Vec::new())) {
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
        match self.slot(id, || Value::Ips(Vec::new())) {
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
        match self.slot(id, || Value::Objects(Vec::new())) {
            Value::Objects(list) if list.len() < bound => {
                list.push(value);
                true
            }
            _ => false,
        }
    }

    /// The values of a field.
    pub fn get(&self, id: FieldId) -> Option<&Value> {
        self.values.iter().find(|(f, _)| *f == id).map(|(_, v)| v)
    }

    /// Adds an application protocol name; false when already present.
    pub fn add_protocol(&mut self, name: &str) -> bool {
        if self.protocols.iter().any(|p| p == name) {
            return false;
        }
        self.protocols.push(name.to_string());
        true
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
    }

    /// Writes every field at its db path (dotted paths are nested objects)
    /// with its count next to it when the field has one.
    pub fn write_json(&self, reg: &FieldRegistry, body: &mut Map<String, Json>) {
        for (id, value) in &self.values {
            let def = reg.def(*id);
            let (json, n) = match value {
                Value::Strings(v) => (Json::from(v.clone()), v.len()),
                Value::Ints(v) => (Json::from(v.clone()), v.len()),
                Value::Ips(v) => (
                    Json::from(v.iter().map(|i| i.to_string()).collect::<Vec<_>>()),
                    v.len(),
                ),
                Value::Floats(v) => (Json::from(v.clone()), v.len()),
                Value::Objects(v) => (Json::Array(v.clone()), v.len()),
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
        let mut body = Map::new();
        f.write_json(&reg, &mut body);
        let http = body["http"].as_object().unwrap();
        assert_eq!(http["uri"], serde_json::json!(["/a", "/b"]));
        assert_eq!(http["uriCnt"], serde_json::json!(2));
        // host.http is a lower-cased term field.
        assert_eq!(http["host"], serde_json::json!(["example.com"]));
    }
}
