//! The index schema derived from the field registry, and the conversion of
//! an Arkime session body into an index document.
//!
//! Every registry field with a database path becomes one index field (named
//! after the path, `.` replaced by `:` so tantivy never reads the name as a
//! JSON path). Multi-valued JSON arrays give one indexed value per element,
//! so `http.uri == x` matches a session with several URIs. Two extra fields:
//! `_source` stores the original body for output, and `_exists` lists the
//! arrays of objects present in the body (`dns`, `cert`: `EXISTS!` on them;
//! `EXISTS!` on a number or IP asks its FAST column, on a string its term
//! dictionary).

use std::net::{IpAddr, Ipv6Addr};
use std::sync::Arc;

use ahash::AHashMap;
use fields::{Case, FieldFlags, FieldId, FieldKind, FieldRegistry};
use serde_json::Value;
use tantivy::TantivyDocument;

use crate::ingest::Leaf;
use tantivy::schema::{
    Field, IndexRecordOption, IpAddrOptions, NumericOptions, STORED, STRING, Schema,
    TextFieldIndexing, TextOptions,
};

/// Name of the stored field holding the original JSON body.
pub const SOURCE_FIELD: &str = "_source";
/// Name of the field listing the database paths present in a body.
pub const EXISTS_FIELD: &str = "_exists";

/// How a field's values are indexed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexType {
    /// Exact strings (raw tokenizer), with the kind's case normalisation.
    Str(Case),
    /// Signed integers.
    I64,
    /// Floats.
    F64,
    /// IP addresses (IPv4 mapped into IPv6).
    Ip,
    /// Dates as milliseconds since the epoch (i64).
    DateMs,
}

impl IndexType {
    /// The index type of a registry kind (`None` for object arrays).
    pub fn of(kind: FieldKind) -> Option<IndexType> {
        Some(match kind {
            k if k.is_string() => IndexType::Str(k.case()),
            FieldKind::Integer => IndexType::I64,
            FieldKind::Float => IndexType::F64,
            FieldKind::Ip => IndexType::Ip,
            FieldKind::Date => IndexType::DateMs,
            _ => return None,
        })
    }
}

/// One indexed registry field.
#[derive(Debug, Clone, Copy)]
pub struct IndexedField {
    /// The tantivy field.
    pub field: Field,
    /// The registry field.
    pub id: FieldId,
    /// How values are indexed.
    pub ty: IndexType,
}

/// The schema of a store and the mapping between registry and index.
#[derive(Debug, Clone)]
pub struct StoreSchema {
    registry: Arc<FieldRegistry>,
    schema: Schema,
    by_db: AHashMap<String, IndexedField>,
    by_id: AHashMap<FieldId, IndexedField>,
    source: Field,
    exists: Field,
}

/// Numeric fields that keep an inverted index besides their column.
const NUMBERS_WITH_TERMS: &[&str] = &["fileId", "source.port", "destination.port"];

/// Exact-string terms: document lists only (no frequencies, positions or
/// field norms).
fn raw_terms() -> TextOptions {
    STRING.set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer("raw")
            .set_index_option(IndexRecordOption::Basic)
            .set_fieldnorms(false),
    )
}

/// The tantivy field name of a database path.
pub fn index_name(db: &str) -> String {
    db.replace('.', ":")
}

impl StoreSchema {
    /// Builds the schema for a registry.
    pub fn new(registry: Arc<FieldRegistry>) -> StoreSchema {
        let mut b = Schema::builder();
        let mut pending = Vec::new();
        for (id, def) in registry.iter() {
            if def.is_multi() || def.db.is_empty() || def.flags.contains(FieldFlags::VIEWER_ONLY) {
                continue;
            }
            // `_id` is not in bodies; `packetPos`/`packetLen` are large
            // arrays only read back from `_source`.
            if def.db.starts_with('_') || def.db == "packetPos" || def.db == "packetLen" {
                continue;
            }
            let Some(ty) = IndexType::of(def.kind) else {
                continue;
            };
            let name = index_name(&def.db);
            // Numbers and IPs have a FAST column (ranges, `--sort`,
            // `--unique`); numbers are searched on their column (tantivy
            // scans it for ranges and for equality) and only those looked
            // up by value often, or deleted by (`fileId`), keep an
            // inverted index too. Strings have only their inverted index:
            // a string column would cost a second dictionary entry per
            // value at indexing, and `--sort`, `--unique` and `EXISTS!`
            // read the term dictionary and postings instead (see
            // `search`). No field norms (nothing is scored).
            let numeric = if NUMBERS_WITH_TERMS.contains(&&*def.db) {
                NumericOptions::default().set_indexed().set_fast()
            } else {
                NumericOptions::default().set_fast()
            };
            let field = match ty {
                IndexType::Str(_) => b.add_text_field(&name, raw_terms()),
                IndexType::I64 | IndexType::DateMs => b.add_i64_field(&name, numeric),
                IndexType::F64 => b.add_f64_field(&name, numeric),
                IndexType::Ip => {
                    b.add_ip_addr_field(&name, IpAddrOptions::default().set_indexed().set_fast())
                }
            };
            pending.push((def.db.to_string(), IndexedField { field, id, ty }));
        }
        let source = b.add_text_field(SOURCE_FIELD, TextOptions::default() | STORED);
        let exists = b.add_text_field(EXISTS_FIELD, raw_terms());
        let schema = b.build();
        let mut by_db = AHashMap::with_capacity(pending.len());
        let mut by_id = AHashMap::with_capacity(pending.len());
        for (db, f) in pending {
            by_id.insert(f.id, f);
            by_db.insert(db, f);
        }
        StoreSchema {
            registry,
            schema,
            by_db,
            by_id,
            source,
            exists,
        }
    }

    /// Maps this schema onto the schema of an existing index: fields are
    /// matched by name and type; registry fields the index lacks (a custom
    /// field added after the store was created) are not indexed there, so
    /// queries on them match nothing instead of failing.
    pub fn adapt(mut self, existing: &Schema) -> Result<StoreSchema, String> {
        let lookup = |name: &str| existing.get_field(name).ok();
        let want = self.schema.clone();
        let mut by_db = AHashMap::with_capacity(self.by_db.len());
        let mut by_id = AHashMap::with_capacity(self.by_id.len());
        for (db, f) in self.by_db.drain() {
            let name = want.get_field_name(f.field);
            let Some(old) = lookup(name) else { continue };
            if existing.get_field_entry(old).field_type().value_type()
                != want.get_field_entry(f.field).field_type().value_type()
            {
                continue;
            }
            let f = IndexedField { field: old, ..f };
            by_id.insert(f.id, f);
            by_db.insert(db, f);
        }
        self.source = lookup(SOURCE_FIELD).ok_or("index has no _source field")?;
        self.exists = lookup(EXISTS_FIELD).ok_or("index has no _exists field")?;
        self.by_db = by_db;
        self.by_id = by_id;
        self.schema = existing.clone();
        Ok(self)
    }

    /// The registry the schema was built from.
    pub fn registry(&self) -> &Arc<FieldRegistry> {
        &self.registry
    }

    /// The tantivy schema.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The indexed field of a registry field, if it is indexed.
    pub fn indexed(&self, id: FieldId) -> Option<IndexedField> {
        self.by_id.get(&id).copied()
    }

    /// The indexed field at a database path.
    pub fn indexed_db(&self, db: &str) -> Option<IndexedField> {
        self.by_db.get(db).copied()
    }

    /// The `_source` field.
    pub fn source_field(&self) -> Field {
        self.source
    }

    /// The `_exists` field.
    pub fn exists_field(&self) -> Field {
        self.exists
    }

    /// Converts a session body into an index document. Values that do not
    /// fit their field's kind (a non-numeric string in an integer field, a
    /// malformed IP) are left out of the index but kept in `_source`.
    pub fn to_document(&self, body: &Value) -> TantivyDocument {
        let mut doc = TantivyDocument::with_capacity(2048);
        let mut path = String::with_capacity(64);
        self.walk(body, &mut path, &mut doc);
        doc.add_text(self.source, body.to_string());
        doc
    }

    fn walk(&self, v: &Value, path: &mut String, doc: &mut TantivyDocument) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    if let Value::Array(a) = child
                        && a.first().is_some_and(Value::is_object)
                    {
                        // An array of objects (`dns`, `cert`) exists as a
                        // field of its own; its members are walked through.
                        doc.add_text(self.exists, path.as_str());
                    }
                    self.walk(child, path, doc);
                    path.truncate(len);
                }
            }
            Value::Array(a) => {
                if a.first().is_some_and(Value::is_object) {
                    for x in a {
                        self.walk(x, path, doc);
                    }
                } else if let Some(f) = self.by_db.get(path.as_str()) {
                    for x in a {
                        add_value(doc, f, x);
                    }
                }
            }
            scalar => {
                if let Some(f) = self.by_db.get(path.as_str()) {
                    add_value(doc, f, scalar);
                }
            }
        }
    }
}

/// Normalises a string for a kind's case.
pub fn apply_case(case: Case, s: &str) -> std::borrow::Cow<'_, str> {
    match case {
        Case::Keep => s.into(),
        Case::Lower if s.bytes().any(|b| b.is_ascii_uppercase()) || !s.is_ascii() => {
            s.to_lowercase().into()
        }
        Case::Upper if s.bytes().any(|b| b.is_ascii_lowercase()) || !s.is_ascii() => {
            s.to_uppercase().into()
        }
        _ => s.into(),
    }
}

/// Parses an IP address as the index stores it (IPv4 mapped into IPv6).
pub fn parse_ip(s: &str) -> Option<Ipv6Addr> {
    match s.trim().parse::<IpAddr>().ok()? {
        IpAddr::V4(v4) => Some(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => Some(v6),
    }
}

fn add_value(doc: &mut TantivyDocument, f: &IndexedField, v: &Value) -> bool {
    let leaf = match v {
        Value::String(s) => Leaf::Str(s),
        Value::Bool(b) => Leaf::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
            (Some(u), _, _) => Leaf::U64(u),
            (_, Some(i), _) => Leaf::I64(i),
            (_, _, Some(x)) => Leaf::F64(x),
            _ => return false,
        },
        _ => return false,
    };
    add_leaf(doc, f, leaf)
}

/// Adds one scalar of a body to a field; `false` when it does not fit the
/// field's kind (it then stays only in `_source`).
pub(crate) fn add_leaf(doc: &mut TantivyDocument, f: &IndexedField, v: Leaf<'_>) -> bool {
    match f.ty {
        IndexType::Str(case) => match v {
            Leaf::Str(s) => doc.add_text(f.field, apply_case(case, s)),
            Leaf::U64(u) => doc.add_text(f.field, u.to_string()),
            Leaf::I64(i) => doc.add_text(f.field, i.to_string()),
            Leaf::F64(x) => match serde_json::Number::from_f64(x) {
                // The text serde_json gives the number, as the body shows it.
                Some(n) => doc.add_text(f.field, n.to_string()),
                None => return false,
            },
            Leaf::Bool(b) => doc.add_text(f.field, if b { "true" } else { "false" }),
        },
        IndexType::I64 | IndexType::DateMs => {
            let n = match v {
                Leaf::I64(i) => i,
                Leaf::U64(u) => i64::try_from(u).unwrap_or(i64::MAX),
                Leaf::F64(x) if x.is_finite() => x as i64,
                Leaf::F64(_) => return false,
                Leaf::Str(s) => match s.trim().parse::<i64>() {
                    Ok(i) => i,
                    Err(_) => return false,
                },
                Leaf::Bool(b) => b as i64,
            };
            doc.add_i64(f.field, n);
        }
        IndexType::F64 => {
            let x = match v {
                Leaf::F64(x) => x,
                Leaf::U64(u) => u as f64,
                Leaf::I64(i) => i as f64,
                Leaf::Str(s) => match s.trim().parse::<f64>() {
                    Ok(x) => x,
                    Err(_) => return false,
                },
                Leaf::Bool(_) => return false,
            };
            doc.add_f64(f.field, x);
        }
        IndexType::Ip => {
            let Leaf::Str(s) = v else { return false };
            let Some(ip) = parse_ip(s) else { return false };
            doc.add_ip_addr(f.field, ip);
        }
    }
    true
}
