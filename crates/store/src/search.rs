//! Running queries: matching sessions, sorting, stored bodies, unique
//! values with counts.

use std::cmp::Ordering;
use std::net::Ipv6Addr;
use std::ops::Bound;
use std::sync::Arc;

use ahash::AHashMap;
use fields::{FieldId, FieldKind};
use serde_json::Value;
use tantivy::collector::{Collector, Count, SegmentCollector};
use tantivy::columnar::Cardinality;
use tantivy::query::{AllQuery, BooleanQuery, Occur, Query, RangeQuery};
use tantivy::schema::{Field, IndexRecordOption, Value as _};
use tantivy::{
    DocAddress, DocId, DocSet, Score, Searcher, SegmentOrdinal, SegmentReader, TERMINATED,
    TantivyDocument, TantivyError, Term,
};

use crate::compile::compile;
use crate::query::parse;
use crate::schema::{IndexType, IndexedField, StoreSchema};
use crate::time::format_ms;
use crate::{Store, StoreError};

/// Time bounds of a search (milliseconds since the epoch, inclusive). A
/// session is in range when it overlaps it: `lastPacket >= start` and
/// `firstPacket <= stop`, as Arkime's time filter does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    /// Earliest time.
    pub start_ms: Option<i64>,
    /// Latest time.
    pub stop_ms: Option<i64>,
}

/// A value read for sorting.
#[derive(Debug, Clone, PartialEq)]
pub enum SortKey {
    /// The document has no value (sorts last).
    Missing,
    /// Integer or date.
    Int(i64),
    /// Float.
    Float(f64),
    /// IP address.
    Ip(Ipv6Addr),
    /// String.
    Str(String),
}

impl SortKey {
    fn cmp_to(&self, other: &SortKey) -> Ordering {
        use SortKey::*;
        match (self, other) {
            (Missing, Missing) => Ordering::Equal,
            (Missing, _) => Ordering::Greater,
            (_, Missing) => Ordering::Less,
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Ip(a), Ip(b)) => a.cmp(b),
            (Str(a), Str(b)) => a.cmp(b),
            _ => Ordering::Equal,
        }
    }
}

/// A displayable value of a field in a session body.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputValue(pub String);

/// The sessions matching a search.
pub struct Hits {
    searcher: Searcher,
    schema: Arc<StoreSchema>,
    docs: Vec<DocAddress>,
}

impl std::fmt::Debug for Hits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hits")
            .field("len", &self.docs.len())
            .finish()
    }
}

/// Collects every match, in index order (segment, then document): a plain
/// vector per segment, no hashing.
struct AllDocs;

impl Collector for AllDocs {
    type Fruit = Vec<DocAddress>;
    type Child = SegmentDocs;

    fn for_segment(
        &self,
        segment_ord: SegmentOrdinal,
        _reader: &SegmentReader,
    ) -> tantivy::Result<SegmentDocs> {
        Ok(SegmentDocs {
            segment_ord,
            docs: Vec::new(),
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<Vec<DocAddress>>) -> tantivy::Result<Vec<DocAddress>> {
        let mut all = Vec::with_capacity(fruits.iter().map(Vec::len).sum());
        for f in fruits {
            all.extend(f);
        }
        // Usually in order already (then this is one linear pass).
        all.sort_unstable();
        Ok(all)
    }
}

struct SegmentDocs {
    segment_ord: SegmentOrdinal,
    docs: Vec<DocAddress>,
}

impl SegmentCollector for SegmentDocs {
    type Fruit = Vec<DocAddress>;

    fn collect(&mut self, doc: DocId, _score: Score) {
        self.docs.push(DocAddress::new(self.segment_ord, doc));
    }

    fn harvest(self) -> Vec<DocAddress> {
        self.docs
    }
}

impl Store {
    fn build_query(&self, expr: &str, time: TimeRange) -> Result<Box<dyn Query>, StoreError> {
        let schema = self.schema();
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        if !expr.trim().is_empty() {
            let ast = parse(expr, schema.registry())?;
            clauses.push((Occur::Must, compile(&ast, schema)?));
        }
        let field = |db: &str| schema.indexed_db(db).map(|f| f.field);
        if let (Some(start), Some(f)) = (time.start_ms, field("lastPacket")) {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Included(Term::from_field_i64(f, start)),
                    Bound::Unbounded,
                )),
            ));
        }
        if let (Some(stop), Some(f)) = (time.stop_ms, field("firstPacket")) {
            clauses.push((
                Occur::Must,
                Box::new(RangeQuery::new(
                    Bound::Unbounded,
                    Bound::Included(Term::from_field_i64(f, stop)),
                )),
            ));
        }
        Ok(if clauses.is_empty() {
            Box::new(AllQuery)
        } else {
            Box::new(BooleanQuery::new(clauses))
        })
    }

    /// Checks an expression without running it.
    pub fn check(&self, expr: &str) -> Result<(), StoreError> {
        self.build_query(expr, TimeRange::default()).map(|_| ())
    }

    /// The sessions matching an Arkime expression (empty: all sessions)
    /// within the time bounds, in index order.
    pub fn search(&self, expr: &str, time: TimeRange) -> Result<Hits, StoreError> {
        let q = self.build_query(expr, time)?;
        let searcher = self.reader()?.searcher();
        let docs = searcher.search(&*q, &AllDocs)?;
        Ok(Hits {
            searcher,
            schema: self.schema().clone(),
            docs,
        })
    }

    /// The number of matching sessions.
    pub fn count(&self, expr: &str, time: TimeRange) -> Result<u64, StoreError> {
        let q = self.build_query(expr, time)?;
        let searcher = self.reader()?.searcher();
        Ok(searcher.search(&*q, &Count)? as u64)
    }

    /// Resolves an expression name for output or sorting.
    pub fn field(&self, expr: &str) -> Result<FieldId, StoreError> {
        self.schema()
            .registry()
            .lookup_expr(expr)
            .ok_or_else(|| StoreError::Field(format!("unknown field {expr:?}")))
    }
}

fn ip_string(ip: Ipv6Addr) -> String {
    match ip.to_ipv4_mapped() {
        Some(v4) => v4.to_string(),
        None => ip.to_string(),
    }
}

impl Hits {
    /// Number of matching sessions.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when nothing matched.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn indexed(&self, expr: &str) -> Result<(FieldId, IndexedField), StoreError> {
        let reg = self.schema.registry();
        let id = reg
            .lookup_expr(expr)
            .ok_or_else(|| StoreError::Field(format!("unknown field {expr:?}")))?;
        let f = self.schema.indexed(id).ok_or_else(|| {
            StoreError::Field(format!(
                "field {expr:?} is not indexed (no single value to use)"
            ))
        })?;
        Ok((id, f))
    }

    /// Sorts by a field's first value (sessions without it last); ties keep
    /// index order.
    pub fn sort_by(&mut self, expr: &str, descending: bool) -> Result<(), StoreError> {
        self.top_by(expr, descending, usize::MAX)
    }

    /// Keeps the first `n` sessions in the order of [`Self::sort_by`]
    /// without sorting the rest (a partial selection: `moonwire query`
    /// shows 100 sessions of a million without sorting the million).
    pub fn top_by(&mut self, expr: &str, descending: bool, n: usize) -> Result<(), StoreError> {
        let (_, f) = self.indexed(expr)?;
        if n == 0 {
            self.docs.clear();
            return Ok(());
        }
        let name = self.schema.schema().get_field_name(f.field).to_string();
        let cmp = |a: &(SortKey, DocAddress), b: &(SortKey, DocAddress)| {
            let o = a.0.cmp_to(&b.0);
            let o = if descending
                && !matches!((&a.0, &b.0), (SortKey::Missing, _) | (_, SortKey::Missing))
            {
                o.reverse()
            } else {
                o
            };
            o.then(a.1.cmp(&b.1))
        };
        let mut keyed: Vec<(SortKey, DocAddress)> = Vec::with_capacity(self.docs.len());
        let mut i = 0;
        while i < self.docs.len() {
            let seg = self.docs[i].segment_ord;
            let ff = self.searcher.segment_reader(seg).fast_fields();
            let mut j = i;
            macro_rules! each {
                ($get:expr) => {
                    while j < self.docs.len() && self.docs[j].segment_ord == seg {
                        let d = self.docs[j];
                        keyed.push(($get(d.doc_id), d));
                        j += 1;
                    }
                };
            }
            match f.ty {
                IndexType::I64 | IndexType::DateMs => {
                    let col = ff.i64(&name)?;
                    each!(|d| col.first(d).map_or(SortKey::Missing, SortKey::Int));
                }
                IndexType::F64 => {
                    let col = ff.f64(&name)?;
                    each!(|d| col.first(d).map_or(SortKey::Missing, SortKey::Float));
                }
                IndexType::Ip => {
                    let col = ff.ip_addr(&name)?;
                    each!(|d| col.first(d).map_or(SortKey::Missing, SortKey::Ip));
                }
                IndexType::Str(_) => {
                    let docs = self.docs[i..].iter().take_while(|d| d.segment_ord == seg);
                    let (first, terms) =
                        smallest_terms(self.searcher.segment_reader(seg), f.field, docs)?;
                    each!(|d: DocId| match first.get(d as usize) {
                        Some(&k) if (k as usize) < terms.len() => {
                            SortKey::Str(terms[k as usize].clone())
                        }
                        _ => SortKey::Missing,
                    });
                }
            }
            i = j;
        }
        if n < keyed.len() {
            keyed.select_nth_unstable_by(n - 1, cmp);
            keyed.truncate(n);
        }
        keyed.sort_unstable_by(cmp);
        self.docs = keyed.into_iter().map(|(_, d)| d).collect();
        Ok(())
    }

    /// Keeps the first `n` sessions.
    pub fn truncate(&mut self, n: usize) {
        self.docs.truncate(n);
    }

    /// The stored body of the i-th session.
    pub fn body(&self, i: usize) -> Result<Value, StoreError> {
        let addr = self.docs[i];
        let doc: TantivyDocument = self.searcher.doc(addr)?;
        let src = doc
            .get_first(self.schema.source_field())
            .and_then(|v| v.as_str())
            .ok_or_else(|| StoreError::Field("document without _source".into()))?;
        serde_json::from_str(src).map_err(|e| StoreError::Field(format!("stored body: {e}")))
    }

    /// Every matching session's body, in the current order.
    pub fn bodies(&self) -> impl Iterator<Item = Result<Value, StoreError>> + '_ {
        (0..self.docs.len()).map(|i| self.body(i))
    }

    /// Distinct values of a field among the matching sessions with the
    /// number of sessions holding each, most frequent first (Arkime's
    /// unique view). A multi-field expression counts each of its fields.
    pub fn unique(&self, expr: &str) -> Result<Vec<(String, u64)>, StoreError> {
        let reg = self.schema.registry().clone();
        let id = reg
            .lookup_expr(expr)
            .ok_or_else(|| StoreError::Field(format!("unknown field {expr:?}")))?;
        let mut totals: AHashMap<String, u64> = AHashMap::new();
        for target in reg.expand(id) {
            let Some(f) = self.schema.indexed(target) else {
                continue;
            };
            let kind = reg.def(target).kind;
            let name = self.schema.schema().get_field_name(f.field).to_string();
            let mut i = 0;
            while i < self.docs.len() {
                let seg = self.docs[i].segment_ord;
                let ff = self.searcher.segment_reader(seg).fast_fields();
                let start = i;
                while i < self.docs.len() && self.docs[i].segment_ord == seg {
                    i += 1;
                }
                let docs = self.docs[start..i].iter().map(|d| d.doc_id);
                match f.ty {
                    IndexType::Str(_) => {
                        let reader = self.searcher.segment_reader(seg);
                        count_terms(reader, f.field, docs, |term, n| {
                            let s = String::from_utf8_lossy(term).into_owned();
                            *totals.entry(s).or_default() += n;
                        })?;
                    }
                    IndexType::I64 | IndexType::DateMs => {
                        let col = ff.i64(&name)?;
                        for (v, n) in count_values(&col, docs, |v| v) {
                            let s = if kind == FieldKind::Date {
                                format_ms(v)
                            } else {
                                v.to_string()
                            };
                            *totals.entry(s).or_default() += n;
                        }
                    }
                    IndexType::F64 => {
                        let col = ff.f64(&name)?;
                        for (v, n) in count_values(&col, docs, f64::to_bits) {
                            *totals.entry(f64::from_bits(v).to_string()).or_default() += n;
                        }
                    }
                    IndexType::Ip => {
                        let col = ff.ip_addr(&name)?;
                        for (v, n) in count_values(&col, docs, |v| v) {
                            *totals.entry(ip_string(v)).or_default() += n;
                        }
                    }
                }
            }
        }
        let mut out: Vec<(String, u64)> = totals.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(out)
    }
}

/// Marks for [`smallest_terms`]: a document not asked about, and one asked
/// about whose value is not found yet.
const NOT_WANTED: u32 = u32::MAX;
const WANTED: u32 = u32::MAX - 1;

/// The smallest value of a string field of each of `docs` (of one
/// segment), read from the field's term dictionary and postings (strings
/// have no column): returns, per document id, an index into the returned
/// values (`>= values.len()` when the document has none). Terms are walked
/// in order, so a document's first term found is its smallest; the walk
/// stops once every document has one.
fn smallest_terms<'a>(
    reader: &SegmentReader,
    field: Field,
    docs: impl Iterator<Item = &'a DocAddress>,
) -> Result<(Vec<u32>, Vec<String>), StoreError> {
    let mut first = vec![NOT_WANTED; reader.max_doc() as usize];
    let mut left = 0usize;
    for d in docs {
        if let Some(slot) = first.get_mut(d.doc_id as usize) {
            left += usize::from(*slot == NOT_WANTED);
            *slot = WANTED;
        }
    }
    let mut values: Vec<String> = Vec::new();
    let inv = reader.inverted_index(field)?;
    let mut stream = inv.terms().stream().map_err(TantivyError::from)?;
    while left > 0 && stream.advance() {
        let mut postings = inv
            .read_postings_from_terminfo(stream.value(), IndexRecordOption::Basic)
            .map_err(TantivyError::from)?;
        let mut index = None;
        let mut d = postings.doc();
        while d != TERMINATED {
            if let Some(slot) = first.get_mut(d as usize)
                && *slot == WANTED
            {
                *slot = *index.get_or_insert_with(|| {
                    values.push(String::from_utf8_lossy(stream.key()).into_owned());
                    (values.len() - 1) as u32
                });
                left -= 1;
            }
            d = postings.advance();
        }
    }
    Ok((first, values))
}

/// Counts, per term of a string field of one segment, how many of `docs`
/// hold it, from the term dictionary and postings (strings have no
/// column). When `docs` are all the segment's documents (and it has no
/// deletes), a term's document frequency is its count and no postings
/// are read.
fn count_terms(
    reader: &SegmentReader,
    field: Field,
    docs: impl Iterator<Item = DocId>,
    mut each: impl FnMut(&[u8], u64),
) -> Result<(), StoreError> {
    let max = reader.max_doc() as usize;
    let mut wanted = vec![false; max];
    let mut n = 0usize;
    for d in docs {
        if let Some(w) = wanted.get_mut(d as usize) {
            n += usize::from(!*w);
            *w = true;
        }
    }
    if n == 0 {
        return Ok(());
    }
    let all = n == max;
    let inv = reader.inverted_index(field)?;
    let mut stream = inv.terms().stream().map_err(TantivyError::from)?;
    while stream.advance() {
        let ti = stream.value();
        let count = if all {
            u64::from(ti.doc_freq)
        } else {
            let mut postings = inv
                .read_postings_from_terminfo(ti, IndexRecordOption::Basic)
                .map_err(TantivyError::from)?;
            let mut c = 0u64;
            let mut d = postings.doc();
            while d != TERMINATED {
                c += u64::from(wanted.get(d as usize).copied().unwrap_or(false));
                d = postings.advance();
            }
            c
        };
        if count > 0 {
            each(stream.key(), count);
        }
    }
    Ok(())
}

/// Counts, per distinct value of a column, the documents holding it (a
/// document counts once per value).
fn count_values<T, K>(
    col: &tantivy::columnar::Column<T>,
    docs: impl Iterator<Item = DocId>,
    key: impl Fn(T) -> K,
) -> AHashMap<K, u64>
where
    T: PartialOrd + Copy + std::fmt::Debug + Send + Sync + 'static,
    K: std::hash::Hash + Eq + Ord + Copy,
{
    let mut counts: AHashMap<K, u64> = AHashMap::new();
    if col.get_cardinality() == Cardinality::Multivalued {
        let mut seen: Vec<K> = Vec::new();
        for d in docs {
            seen.clear();
            seen.extend(col.values_for_doc(d).map(&key));
            seen.sort_unstable();
            seen.dedup();
            for &k in &seen {
                *counts.entry(k).or_default() += 1;
            }
        }
    } else {
        for d in docs {
            if let Some(v) = col.first(d) {
                *counts.entry(key(v)).or_default() += 1;
            }
        }
    }
    counts
}

/// The values of a database path in a body (arrays of objects walked
/// through), in document order.
pub fn values_at<'a>(body: &'a Value, db: &str) -> Vec<&'a Value> {
    let mut out = Vec::new();
    collect(body, db, &mut out);
    out
}

fn collect<'a>(v: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    if path.is_empty() {
        match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Null => {}
            other => out.push(other),
        }
        return;
    }
    match v {
        Value::Array(a) => {
            for x in a {
                collect(x, path, out);
            }
        }
        Value::Object(m) => {
            // Keys may themselves contain dots (`tcpflags.syn-ack` is
            // nested, `http.request-referer` is not): try every split.
            for (i, _) in path
                .match_indices('.')
                .chain(std::iter::once((path.len(), "")))
            {
                if let Some(child) = m.get(&path[..i]) {
                    let rest = if i < path.len() { &path[i + 1..] } else { "" };
                    collect(child, rest, out);
                }
            }
        }
        _ => {}
    }
}

/// Formats one field of a body for display: values joined with `,`; dates
/// (milliseconds) as UTC times.
pub fn display_field(body: &Value, db: &str, kind: FieldKind) -> String {
    let vals = values_at(body, db);
    let mut out = String::new();
    for (i, v) in vals.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        match (kind, v) {
            (FieldKind::Date, Value::Number(n)) if n.as_i64().is_some() => {
                out.push_str(&format_ms(n.as_i64().unwrap_or_default()))
            }
            (_, Value::String(s)) => out.push_str(s),
            (_, other) => out.push_str(&other.to_string()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_at_walks_objects_and_arrays() {
        let body = serde_json::json!({
            "source": {"ip": "10.0.0.1"},
            "dns": [{"host": ["a.com", "b.com"]}, {"host": ["c.com"]}],
            "http": {"request-referer": ["x"]},
        });
        assert_eq!(
            values_at(&body, "source.ip"),
            vec![&Value::from("10.0.0.1")]
        );
        assert_eq!(values_at(&body, "dns.host").len(), 3);
        assert_eq!(values_at(&body, "http.request-referer").len(), 1);
        assert!(values_at(&body, "nope").is_empty());
        assert_eq!(
            display_field(&body, "dns.host", FieldKind::Lotermfield),
            "a.com,b.com,c.com"
        );
    }

    /// Strings have no column: `--sort`, `--unique` and `EXISTS!` read
    /// terms and postings. Checked against the bodies, over several
    /// segments, with multi-valued and missing values, for a subset of
    /// the sessions (postings) and for all of them (document frequencies).
    #[test]
    fn string_sort_unique_and_exists_come_from_the_terms() {
        use crate::{Store, WriterOptions};
        use fields::FieldRegistry;
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open_or_create(tmp.path(), Arc::new(FieldRegistry::builtin())).unwrap();
        let w = store.writer(WriterOptions::default()).unwrap();
        let mut bodies = Vec::new();
        for i in 0..60u64 {
            let mut b = serde_json::json!({
                "node": format!("n{i}"),
                "source": {"port": i},
                "destination": {"port": if i % 2 == 0 { 80 } else { 443 }},
            });
            // Hosts: none for every fifth, one or two (out of order) else.
            if i % 5 != 0 {
                let hosts: Vec<String> = if i % 3 == 0 {
                    vec![format!("z{}.example", i % 7), format!("a{}.example", i % 4)]
                } else {
                    vec![format!("m{}.example", i % 6)]
                };
                b["http"] = serde_json::json!({ "host": hosts });
            }
            w.add_json(b.to_string()).unwrap();
            bodies.push(b);
            if i % 20 == 19 {
                w.commit().unwrap();
            }
        }
        w.finish().unwrap();
        let hosts = |b: &Value| -> Vec<String> {
            b["http"]["host"]
                .as_array()
                .map(|a| a.iter().map(|h| h.as_str().unwrap().to_string()).collect())
                .unwrap_or_default()
        };
        let all = TimeRange::default();
        assert!(store.index().searchable_segments().unwrap().len() >= 2);

        for (expr, pick) in [
            ("", (|_: u64| true) as fn(u64) -> bool),
            ("port.dst == 80", |i| i % 2 == 0),
        ] {
            let picked: Vec<&Value> = (0..60u64)
                .filter(|&i| pick(i))
                .map(|i| &bodies[i as usize])
                .collect();
            // --unique host.http
            let hits = store.search(expr, all).unwrap();
            let got = hits.unique("host.http").unwrap();
            let mut want: AHashMap<String, u64> = AHashMap::new();
            for b in &picked {
                for h in hosts(b) {
                    *want.entry(h).or_default() += 1;
                }
            }
            let got_map: AHashMap<String, u64> = got.iter().cloned().collect();
            assert_eq!(got_map, want, "unique host.http where {expr:?}");
            assert!(!want.is_empty());
            // --sort host.http: the smallest host, sessions without one last.
            let mut hits = store.search(expr, all).unwrap();
            hits.sort_by("host.http", false).unwrap();
            let got: Vec<Option<String>> = hits
                .bodies()
                .map(|b| hosts(&b.unwrap()).into_iter().min())
                .collect();
            let mut want: Vec<Option<String>> =
                picked.iter().map(|b| hosts(b).into_iter().min()).collect();
            want.sort_by(|a, b| match (a, b) {
                (None, None) => Ordering::Equal,
                (None, _) => Ordering::Greater,
                (_, None) => Ordering::Less,
                (a, b) => a.cmp(b),
            });
            assert_eq!(got, want, "sort by host.http where {expr:?}");
        }
        // EXISTS! on a string.
        let with = bodies.iter().filter(|b| !hosts(b).is_empty()).count() as u64;
        assert_eq!(store.count("host.http == EXISTS!", all).unwrap(), with);
        assert_eq!(store.count("host.http != EXISTS!", all).unwrap(), 60 - with);
    }
}
