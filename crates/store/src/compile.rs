//! Turns a parsed expression into a tantivy query over the store's schema.
//!
//! Per field kind: strings take exact terms, wildcards and regexes (run on
//! the term dictionary); numbers and dates take exact values and ranges;
//! IPs take addresses, CIDR blocks and Arkime's short prefixes (`10.0` is
//! `10.0.0.0/16`). `!=` is "no value equals": a session without the field
//! matches. A multi-field expression (`ip`, `port`, `host`) is the union of
//! its fields.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::ops::Bound;

use fields::{Case, FieldKind};
use tantivy::Term;
use tantivy::query::{
    AllQuery, BooleanQuery, EmptyQuery, ExistsQuery, InvertedIndexRangeQuery, Occur, Query,
    RangeQuery, RegexQuery, TermQuery,
};
use tantivy::schema::IndexRecordOption;

use crate::query::{Expr, Op, QueryError, QueryErrorKind, Scalar, Value};
use crate::schema::{IndexType, IndexedField, StoreSchema, apply_case, parse_ip};
use crate::time::parse_date_ms;

type Q = Box<dyn Query>;

/// Compiles an expression.
pub fn compile(expr: &Expr, schema: &StoreSchema) -> Result<Q, QueryError> {
    Ok(match expr {
        Expr::And(..) => {
            let mut parts = Vec::new();
            flatten_and(expr, &mut parts);
            let mut clauses = Vec::with_capacity(parts.len());
            for p in parts {
                clauses.push((Occur::Must, compile(p, schema)?));
            }
            Box::new(BooleanQuery::new(clauses))
        }
        Expr::Or(..) => {
            let mut parts = Vec::new();
            flatten_or(expr, &mut parts);
            let mut clauses = Vec::with_capacity(parts.len());
            for p in parts {
                clauses.push((Occur::Should, compile(p, schema)?));
            }
            Box::new(BooleanQuery::new(clauses))
        }
        Expr::Not(e) => not(compile(e, schema)?),
        Expr::Compare {
            field,
            field_pos,
            op,
            value,
            value_pos,
        } => {
            let reg = schema.registry();
            let def = reg.def(*field);
            let name = def.expr.to_string();
            let bad = |reason: String, pos: usize| QueryError {
                kind: QueryErrorKind::BadValue {
                    field: name.clone(),
                    reason,
                },
                pos,
            };
            if def.kind == FieldKind::Object && *value != Value::Exists {
                return Err(bad(
                    format!("is a list of objects; search its count {name}.cnt or its members"),
                    *field_pos,
                ));
            }
            let targets = reg.expand(*field);
            if matches!(value, Value::Exists) {
                if !matches!(op, Op::Eq | Op::Ne) {
                    return Err(bad("EXISTS! needs == or !=".into(), *value_pos));
                }
                let clauses: Vec<(Occur, Q)> = targets
                    .iter()
                    .map(|id| {
                        let q: Q = match schema.indexed(*id) {
                            // A string exists where any of its terms is:
                            // every term is at least the empty string.
                            Some(f) if matches!(f.ty, IndexType::Str(_)) => {
                                Box::new(InvertedIndexRangeQuery::new(
                                    Bound::Included(Term::from_field_text(f.field, "")),
                                    Bound::Unbounded,
                                ))
                            }
                            // A number or IP exists where its column has a
                            // value.
                            Some(f) => Box::new(ExistsQuery::new(
                                schema.schema().get_field_name(f.field).to_string(),
                                false,
                            )),
                            // Arrays of objects (`dns`, `cert`) are listed
                            // in `_exists`.
                            None => term(Term::from_field_text(
                                schema.exists_field(),
                                &reg.def(*id).db,
                            )),
                        };
                        (Occur::Should, q)
                    })
                    .collect();
                let q: Q = Box::new(BooleanQuery::new(clauses));
                return Ok(if *op == Op::Ne { not(q) } else { q });
            }
            let mut clauses: Vec<(Occur, Q)> = Vec::new();
            for id in targets {
                let Some(f) = schema.indexed(id) else {
                    continue;
                };
                let positive = match op {
                    Op::Eq | Op::Ne => field_eq(&f, value, *value_pos, &bad)?,
                    _ => {
                        let Value::One(s) = value else {
                            return Err(bad(
                                format!("{} takes a single value", op.as_str()),
                                *value_pos,
                            ));
                        };
                        field_range(&f, *op, s, *value_pos, &bad)?
                    }
                };
                clauses.push((Occur::Should, positive));
            }
            let q: Q = if clauses.is_empty() {
                Box::new(EmptyQuery)
            } else {
                Box::new(BooleanQuery::new(clauses))
            };
            if *op == Op::Ne { not(q) } else { q }
        }
    })
}

fn flatten_and<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::And(a, b) => {
            flatten_and(a, out);
            flatten_and(b, out);
        }
        other => out.push(other),
    }
}

fn flatten_or<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::Or(a, b) => {
            flatten_or(a, out);
            flatten_or(b, out);
        }
        other => out.push(other),
    }
}

fn not(q: Q) -> Q {
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, Box::new(AllQuery)),
        (Occur::MustNot, q),
    ]))
}

fn term(t: Term) -> Q {
    Box::new(TermQuery::new(t, IndexRecordOption::Basic))
}

fn range(lo: Bound<Term>, hi: Bound<Term>) -> Q {
    Box::new(RangeQuery::new(lo, hi))
}

/// Converts a wildcard (`*`, `?`) into an anchored regex.
pub fn wildcard_to_regex(w: &str) -> String {
    let mut out = String::with_capacity(w.len() + 8);
    for c in w.chars() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            c if "\\.+()[]{}|^$#&~-".contains(c) => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

fn field_eq(
    f: &IndexedField,
    value: &Value,
    pos: usize,
    bad: &dyn Fn(String, usize) -> QueryError,
) -> Result<Q, QueryError> {
    match value {
        Value::Exists => unreachable!("handled by the caller"),
        Value::One(s) => scalar_eq(f, s, pos, bad),
        Value::List(items) => {
            let mut clauses = Vec::with_capacity(items.len());
            for (s, p) in items {
                clauses.push((Occur::Should, scalar_eq(f, s, *p, bad)?));
            }
            Ok(Box::new(BooleanQuery::new(clauses)))
        }
    }
}

fn scalar_eq(
    f: &IndexedField,
    s: &Scalar,
    pos: usize,
    bad: &dyn Fn(String, usize) -> QueryError,
) -> Result<Q, QueryError> {
    match f.ty {
        IndexType::Str(case) => {
            let regex = match s {
                Scalar::Regex(r) => Some(r.clone()),
                Scalar::Text { text, .. } if s.is_wildcard() => {
                    Some(wildcard_to_regex(&apply_case(case, text)))
                }
                Scalar::Text { text, .. } => {
                    return Ok(term(Term::from_field_text(
                        f.field,
                        &apply_case(case, text),
                    )));
                }
            };
            let regex = regex.unwrap_or_default();
            let regex = if case == Case::Keep {
                regex
            } else {
                // A case-normalised field holds only one case; let the
                // pattern's literal letters match it.
                format!("(?i){regex}")
            };
            RegexQuery::from_pattern(&regex, f.field)
                .map(|q| Box::new(q) as Q)
                .map_err(|e| bad(format!("bad regex: {e}"), pos))
        }
        IndexType::Ip => {
            let text = plain(s, "an IP address or CIDR", pos, bad)?;
            let (lo, hi) = ip_range(text)
                .ok_or_else(|| bad(format!("{text:?} is not an IP address or CIDR block"), pos))?;
            if lo == hi {
                Ok(term(Term::from_field_ip_addr(f.field, lo)))
            } else {
                Ok(range(
                    Bound::Included(Term::from_field_ip_addr(f.field, lo)),
                    Bound::Included(Term::from_field_ip_addr(f.field, hi)),
                ))
            }
        }
        IndexType::I64 => {
            let text = plain(s, "a number", pos, bad)?;
            if let Some((a, b)) = int_range(text) {
                return Ok(range(
                    Bound::Included(Term::from_field_i64(f.field, a)),
                    Bound::Included(Term::from_field_i64(f.field, b)),
                ));
            }
            let n = parse_int(text).ok_or_else(|| bad(format!("{text:?} is not a number"), pos))?;
            Ok(term(Term::from_field_i64(f.field, n)))
        }
        IndexType::F64 => {
            let text = plain(s, "a number", pos, bad)?;
            let x: f64 = text
                .parse()
                .map_err(|_| bad(format!("{text:?} is not a number"), pos))?;
            Ok(term(Term::from_field_f64(f.field, x)))
        }
        IndexType::DateMs => {
            let text = plain(s, "a date", pos, bad)?;
            let ms =
                parse_date_ms(text).ok_or_else(|| bad(format!("{text:?} is not a date"), pos))?;
            // Dates are compared at second resolution, as Arkime shows them.
            let lo = ms - ms.rem_euclid(1000);
            Ok(range(
                Bound::Included(Term::from_field_i64(f.field, lo)),
                Bound::Included(Term::from_field_i64(f.field, lo + 999)),
            ))
        }
    }
}

fn plain<'a>(
    s: &'a Scalar,
    what: &str,
    pos: usize,
    bad: &dyn Fn(String, usize) -> QueryError,
) -> Result<&'a str, QueryError> {
    match s {
        Scalar::Text { text, .. } if !s.is_wildcard() => Ok(text),
        Scalar::Text { .. } => Err(bad(
            format!("wildcards need a string field, not {what}"),
            pos,
        )),
        Scalar::Regex(_) => Err(bad(format!("regexes need a string field, not {what}"), pos)),
    }
}

fn parse_int(s: &str) -> Option<i64> {
    if let Some(h) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok();
    }
    s.parse().ok()
}

/// Arkime's integer ranges `80-90`.
fn int_range(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.get(1..)?.split_once('-')?;
    let a = parse_int(&s[..1 + a.len()])?;
    let b = parse_int(b)?;
    Some((a.min(b), a.max(b)))
}

fn field_range(
    f: &IndexedField,
    op: Op,
    s: &Scalar,
    pos: usize,
    bad: &dyn Fn(String, usize) -> QueryError,
) -> Result<Q, QueryError> {
    let t = match f.ty {
        IndexType::I64 => {
            let text = plain(s, "a number", pos, bad)?;
            let n = parse_int(text).ok_or_else(|| bad(format!("{text:?} is not a number"), pos))?;
            Term::from_field_i64(f.field, n)
        }
        IndexType::F64 => {
            let text = plain(s, "a number", pos, bad)?;
            let x: f64 = text
                .parse()
                .map_err(|_| bad(format!("{text:?} is not a number"), pos))?;
            Term::from_field_f64(f.field, x)
        }
        IndexType::DateMs => {
            let text = plain(s, "a date", pos, bad)?;
            let ms =
                parse_date_ms(text).ok_or_else(|| bad(format!("{text:?} is not a date"), pos))?;
            Term::from_field_i64(f.field, ms)
        }
        IndexType::Ip => {
            let text = plain(s, "an IP address", pos, bad)?;
            let ip =
                parse_ip(text).ok_or_else(|| bad(format!("{text:?} is not an IP address"), pos))?;
            Term::from_field_ip_addr(f.field, ip)
        }
        IndexType::Str(case) => {
            let text = plain(s, "a string", pos, bad)?;
            Term::from_field_text(f.field, &apply_case(case, text))
        }
    };
    let (lo, hi) = match op {
        Op::Lt => (Bound::Unbounded, Bound::Excluded(t)),
        Op::Le => (Bound::Unbounded, Bound::Included(t)),
        Op::Gt => (Bound::Excluded(t), Bound::Unbounded),
        Op::Ge => (Bound::Included(t), Bound::Unbounded),
        Op::Eq | Op::Ne => unreachable!("equality is handled by field_eq"),
    };
    Ok(range(lo, hi))
}

/// The inclusive address range of an IP, a CIDR block or an Arkime IPv4
/// prefix (`10.0` = `10.0.0.0/16`, `10.0.0.` likewise).
pub fn ip_range(s: &str) -> Option<(Ipv6Addr, Ipv6Addr)> {
    let s = s.trim();
    if let Some((addr, bits)) = s.split_once('/') {
        let bits: u32 = bits.parse().ok()?;
        if let Ok(v4) = addr.parse::<Ipv4Addr>() {
            if bits > 32 {
                return None;
            }
            return Some(v4_block(u32::from(v4), bits));
        }
        let v6: Ipv6Addr = addr.parse().ok()?;
        if bits > 128 {
            return None;
        }
        let n = u128::from(v6);
        let mask = if bits == 0 {
            0
        } else {
            u128::MAX << (128 - bits)
        };
        return Some((Ipv6Addr::from(n & mask), Ipv6Addr::from(n | !mask)));
    }
    if let Some(ip) = parse_ip(s) {
        return Some((ip, ip));
    }
    // Arkime's short IPv4 forms: 1 to 3 octets, optionally ending in '.'.
    let trimmed = s.strip_suffix('.').unwrap_or(s);
    let parts: Vec<&str> = trimmed.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    let mut n: u32 = 0;
    for (i, p) in parts.iter().enumerate() {
        let o: u8 = p.parse().ok()?;
        n |= u32::from(o) << (24 - 8 * i);
    }
    Some(v4_block(n, 8 * parts.len() as u32))
}

fn v4_block(n: u32, bits: u32) -> (Ipv6Addr, Ipv6Addr) {
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    (
        Ipv4Addr::from(n & mask).to_ipv6_mapped(),
        Ipv4Addr::from(n | !mask).to_ipv6_mapped(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_ranges() {
        let v4 = |s: &str| s.parse::<Ipv4Addr>().unwrap().to_ipv6_mapped();
        assert_eq!(
            ip_range("10.0.0.0/8"),
            Some((v4("10.0.0.0"), v4("10.255.255.255")))
        );
        assert_eq!(ip_range("10.1"), Some((v4("10.1.0.0"), v4("10.1.255.255"))));
        assert_eq!(
            ip_range("10.1.2."),
            Some((v4("10.1.2.0"), v4("10.1.2.255")))
        );
        assert_eq!(ip_range("1.2.3.4"), Some((v4("1.2.3.4"), v4("1.2.3.4"))));
        let (lo, hi) = ip_range("fe80::/16").unwrap();
        assert_eq!(lo, "fe80::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            hi,
            "fe80:ffff:ffff:ffff:ffff:ffff:ffff:ffff"
                .parse::<Ipv6Addr>()
                .unwrap()
        );
        assert_eq!(ip_range("10.0.0.0/33"), None);
        assert_eq!(ip_range("example.com"), None);
    }

    #[test]
    fn wildcards() {
        assert_eq!(wildcard_to_regex("*.example.com"), ".*\\.example\\.com");
        assert_eq!(wildcard_to_regex("a?c"), "a.c");
        assert_eq!(int_range("80-90"), Some((80, 90)));
        assert_eq!(int_range("-5"), None);
        assert_eq!(int_range("-5--1"), Some((-5, -1)));
    }
}
