//! Index documents straight from a session body's JSON text.
//!
//! The capture pipeline hands the store each body as text. Parsing it into
//! a `serde_json::Value` tree, walking the tree and serialising it again for
//! `_source` cost more than the indexing itself; here one streaming pass
//! over the text feeds the index values to the document, and the text is
//! stored as it came. The rules are those of [`StoreSchema::to_document`]
//! (which shares [`add_leaf`] with this module): a test checks both give
//! the same index document.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use tantivy::TantivyDocument;

use crate::schema::{IndexedField, StoreSchema, add_leaf};

/// A JSON scalar as the index sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Leaf<'a> {
    Str(&'a str),
    U64(u64),
    I64(i64),
    F64(f64),
    Bool(bool),
}

impl StoreSchema {
    /// Converts the JSON text of a session body into an index document,
    /// storing the text itself as `_source`. Fails when the text is not
    /// JSON.
    pub fn json_to_document(&self, text: &str) -> Result<TantivyDocument, serde_json::Error> {
        // The document holds the text (`_source`) and every indexed value:
        // reserving twice the text avoids growing (and copying) it twice
        // per body.
        let mut doc = TantivyDocument::with_capacity(2 * text.len() + 256);
        let mut path = String::with_capacity(64);
        let mut de = serde_json::Deserializer::from_str(text);
        Node {
            w: Walk {
                schema: self,
                path: &mut path,
                doc: &mut doc,
            },
            keyed: false,
        }
        .deserialize(&mut de)?;
        de.end()?;
        doc.add_text(self.source_field(), text);
        Ok(doc)
    }
}

/// The walk's state: where in the body we are and what has been found.
struct Walk<'s, 'p> {
    schema: &'s StoreSchema,
    path: &'p mut String,
    doc: &'p mut TantivyDocument,
}

impl<'s> Walk<'s, '_> {
    fn reborrow(&mut self) -> Walk<'s, '_> {
        Walk {
            schema: self.schema,
            path: self.path,
            doc: self.doc,
        }
    }

    fn field(&self) -> Option<IndexedField> {
        self.schema.indexed_db(self.path)
    }

    fn exists(&mut self) {
        self.doc
            .add_text(self.schema.exists_field(), self.path.as_str());
    }

    /// A scalar at the current path.
    fn scalar(&mut self, leaf: Leaf<'_>) {
        if let Some(f) = self.field() {
            add_leaf(self.doc, &f, leaf);
        }
    }
}

/// Any JSON value at the current path. `keyed`: the value belongs to an
/// object key (an array of objects there is a field of its own).
struct Node<'s, 'p> {
    w: Walk<'s, 'p>,
    keyed: bool,
}

impl<'de> DeserializeSeed<'de> for Node<'_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(mut self, v: bool) -> Result<(), E> {
        self.w.scalar(Leaf::Bool(v));
        Ok(())
    }
    fn visit_i64<E>(mut self, v: i64) -> Result<(), E> {
        self.w.scalar(Leaf::I64(v));
        Ok(())
    }
    fn visit_u64<E>(mut self, v: u64) -> Result<(), E> {
        self.w.scalar(Leaf::U64(v));
        Ok(())
    }
    fn visit_f64<E>(mut self, v: f64) -> Result<(), E> {
        self.w.scalar(Leaf::F64(v));
        Ok(())
    }
    fn visit_str<E>(mut self, v: &str) -> Result<(), E> {
        self.w.scalar(Leaf::Str(v));
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        loop {
            let len = self.w.path.len();
            if map.next_key_seed(Key(self.w.path))?.is_none() {
                return Ok(());
            }
            map.next_value_seed(Node {
                w: self.w.reborrow(),
                keyed: true,
            })?;
            self.w.path.truncate(len);
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        // The first element decides: objects are walked through (`dns`,
        // `cert`), anything else is a list of values of this path.
        let first = seq.next_element_seed(First {
            w: self.w.reborrow(),
            keyed: self.keyed,
        })?;
        match first {
            None => Ok(()),
            Some(FirstWas::Object) => {
                while seq
                    .next_element_seed(Node {
                        w: self.w.reborrow(),
                        keyed: false,
                    })?
                    .is_some()
                {}
                Ok(())
            }
            Some(FirstWas::Value(Some(field))) => {
                while seq
                    .next_element_seed(Values {
                        doc: self.w.doc,
                        field,
                    })?
                    .is_some()
                {}
                Ok(())
            }
            Some(FirstWas::Value(None)) => {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(())
            }
        }
    }
}

/// Appends `.key` (or `key` at the top) to the path.
struct Key<'p>(&'p mut String);

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, k: &str) -> Result<(), E> {
        if !self.0.is_empty() {
            self.0.push('.');
        }
        self.0.push_str(k);
        Ok(())
    }
}

/// What the first element of an array was.
enum FirstWas {
    /// An object: the array's members are walked through.
    Object,
    /// Anything else: the field of the path (if indexed).
    Value(Option<IndexedField>),
}

struct First<'s, 'p> {
    w: Walk<'s, 'p>,
    keyed: bool,
}

impl<'de> DeserializeSeed<'de> for First<'_, '_> {
    type Value = FirstWas;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<FirstWas, D::Error> {
        d.deserialize_any(self)
    }
}

impl First<'_, '_> {
    fn leaf(self, leaf: Leaf<'_>) -> FirstWas {
        let f = self.w.field();
        if let Some(f) = f {
            add_leaf(self.w.doc, &f, leaf);
        }
        FirstWas::Value(f)
    }
}

impl<'de> Visitor<'de> for First<'_, '_> {
    type Value = FirstWas;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<FirstWas, E> {
        Ok(self.leaf(Leaf::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<FirstWas, E> {
        Ok(self.leaf(Leaf::I64(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<FirstWas, E> {
        Ok(self.leaf(Leaf::U64(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<FirstWas, E> {
        Ok(self.leaf(Leaf::F64(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<FirstWas, E> {
        Ok(self.leaf(Leaf::Str(v)))
    }
    fn visit_unit<E>(self) -> Result<FirstWas, E> {
        Ok(FirstWas::Value(self.w.field()))
    }
    fn visit_none<E>(self) -> Result<FirstWas, E> {
        Ok(FirstWas::Value(self.w.field()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FirstWas, A::Error> {
        // A nested list is no value of the path.
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(FirstWas::Value(self.w.field()))
    }
    fn visit_map<A: MapAccess<'de>>(mut self, map: A) -> Result<FirstWas, A::Error> {
        if self.keyed {
            self.w.exists();
        }
        Node {
            w: self.w,
            keyed: false,
        }
        .visit_map(map)?;
        Ok(FirstWas::Object)
    }
}

/// One element of a list of values of an indexed field (nested lists and
/// objects give it none).
struct Values<'p> {
    doc: &'p mut TantivyDocument,
    field: IndexedField,
}

impl<'de> DeserializeSeed<'de> for Values<'_> {
    type Value = bool;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Values<'_> {
    type Value = bool;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<bool, E> {
        Ok(add_leaf(self.doc, &self.field, Leaf::Bool(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<bool, E> {
        Ok(add_leaf(self.doc, &self.field, Leaf::I64(v)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<bool, E> {
        Ok(add_leaf(self.doc, &self.field, Leaf::U64(v)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<bool, E> {
        Ok(add_leaf(self.doc, &self.field, Leaf::F64(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<bool, E> {
        Ok(add_leaf(self.doc, &self.field, Leaf::Str(v)))
    }
    fn visit_unit<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_none<E>(self) -> Result<bool, E> {
        Ok(false)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(false)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use fields::FieldRegistry;
    use tantivy::Document as _;

    use super::*;

    fn values(schema: &StoreSchema, doc: &TantivyDocument) -> Vec<String> {
        let mut out: Vec<String> = doc
            .to_named_doc(schema.schema())
            .0
            .into_iter()
            .filter(|(name, _)| name != "_source")
            .flat_map(|(name, vals)| vals.into_iter().map(move |v| format!("{name} {v:?}")))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn streaming_matches_the_parsed_tree_on_odd_bodies() {
        let schema = StoreSchema::new(Arc::new(FieldRegistry::builtin()));
        let text = r#"{
            "source": {"ip": "10.0.0.1", "port": "1234", "bytes": 18446744073709551615},
            "destination": {"ip": "not an ip", "port": 80.7, "packets": true},
            "http": {"host": ["A.example", 42, 1.5, null, ["nested"], {"x": 1}],
                     "statuscode": [200, "404", "x"], "method": []},
            "dns": [{"host": ["a.com"], "status": "NOERROR"}, {"host": ["B.com"]}, "stray"],
            "cert": [],
            "tags": [null, "t1"],
            "protocol": [["tcp"], "udp"],
            "node": null,
            "unknown": {"deep": [1, 2, {"x": "y"}]}
        }"#;
        let body: serde_json::Value = serde_json::from_str(text).unwrap();
        let streamed = schema.json_to_document(text).unwrap();
        let got = values(&schema, &streamed);
        assert_eq!(got, values(&schema, &schema.to_document(&body)));
        // A few values that must be there, so the comparison is not empty.
        let has = |s: &str| got.iter().any(|v| v.starts_with(s));
        assert!(has("http:host"));
        assert!(has("dns:host"));
        assert!(has("source:port"));
        assert!(got.iter().any(|v| v.contains("\"dns\"")), "{got:?}");
        assert_eq!(
            streamed.get_first(schema.source_field()).and_then(|v| {
                use tantivy::schema::Value as _;
                v.as_str().map(str::to_string)
            }),
            Some(text.to_string())
        );
    }

    #[test]
    fn text_that_is_not_json_is_refused() {
        let schema = StoreSchema::new(Arc::new(FieldRegistry::builtin()));
        assert!(schema.json_to_document("{\"node\": \"a\"").is_err());
        assert!(
            schema
                .json_to_document("{\"node\": \"a\"} trailing")
                .is_err()
        );
        assert!(schema.json_to_document("{\"node\": \"a\"}").is_ok());
    }
}
