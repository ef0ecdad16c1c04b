//! `[custom-fields]` definitions: Arkime's `expr=kind:...;db:...` syntax.
//!
//! Items are `key:value` separated by `;`. Known keys: `kind` (required),
//! `db` (required), `count`, `friendly`, `help`, `group`, `category`
//! (comma separated), `viewerOnly`. Other keys Arkime knows (`shortcut`,
//! `transform`, `noFacet`, `fieldECS`, ...) only matter to its viewer and
//! are accepted and ignored.

use std::borrow::Cow;

use crate::{FieldDef, FieldError, FieldFlags, FieldId, FieldKind, FieldRegistry};

/// Outcome of adding a custom field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomField {
    /// A new field was defined.
    Added(FieldId),
    /// The expression or its db path already existed; the definition was
    /// ignored (Arkime never lets a config change a built-in field).
    Existing(FieldId),
}

impl CustomField {
    /// The field's id either way.
    pub fn id(self) -> FieldId {
        match self {
            CustomField::Added(id) | CustomField::Existing(id) => id,
        }
    }
}

fn parse_bool(expr: &str, key: &str, v: &str) -> Result<bool, FieldError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(FieldError::BadBool {
            expr: expr.to_string(),
            key: key.to_string(),
            value: v.to_string(),
        }),
    }
}

fn leak_categories(list: &str) -> Cow<'static, [&'static str]> {
    // Categories come from a small closed set; intern the known ones so the
    // common case allocates nothing, and leak the rest (defined once at
    // start-up, bounded by the config file's size).
    const KNOWN: &[&str] = &[
        "ip", "port", "host", "user", "mac", "url", "md5", "sha256", "asn", "country", "rir",
    ];
    let v: Vec<&'static str> = list
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(|c| match KNOWN.iter().find(|k| **k == c) {
            Some(k) => *k,
            None => &*Box::leak(c.to_string().into_boxed_str()),
        })
        .collect();
    Cow::Owned(v)
}

pub(crate) fn add(
    reg: &mut FieldRegistry,
    expr: &str,
    spec: &str,
) -> Result<CustomField, FieldError> {
    let expr = expr.trim();
    if expr.is_empty()
        || !expr
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
    {
        return Err(FieldError::BadExpr {
            expr: expr.to_string(),
        });
    }
    let mut kind = None;
    let mut db = None;
    let mut count = false;
    let mut viewer_only = false;
    let mut friendly = None;
    let mut help = None;
    let mut group = None;
    let mut category: Cow<'static, [&'static str]> = Cow::Borrowed(&[]);
    for item in spec.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once(':') else {
            return Err(FieldError::BadItem {
                expr: expr.to_string(),
                item: item.to_string(),
            });
        };
        let v = v.trim();
        match k.trim() {
            "kind" => {
                kind = Some(FieldKind::parse(v).ok_or_else(|| FieldError::UnknownKind {
                    expr: expr.to_string(),
                    kind: v.to_string(),
                })?)
            }
            "db" => db = Some(v.to_string()),
            "count" => count = parse_bool(expr, "count", v)?,
            "viewerOnly" => viewer_only = parse_bool(expr, "viewerOnly", v)?,
            "friendly" => friendly = Some(v.to_string()),
            "help" => help = Some(v.to_string()),
            "group" => group = Some(v.to_string()),
            "category" => category = leak_categories(v),
            _ => {}
        }
    }
    // An existing expression wins even over a malformed redefinition's
    // other items, but the redefinition must still parse (typos surface).
    if let Some(id) = reg.lookup_expr(expr) {
        return Ok(CustomField::Existing(id));
    }
    let kind = kind.ok_or_else(|| FieldError::MissingKind {
        expr: expr.to_string(),
    })?;
    let db = db.ok_or_else(|| FieldError::MissingDb {
        expr: expr.to_string(),
    })?;
    // Arkime ignores a custom field whose db path belongs to a built-in
    // (its test config redefines `network.vlan.id` as `kind:integer` this
    // way and expects no change).
    if let Some(other) = reg.by_db(&db) {
        return Ok(CustomField::Existing(other));
    }
    let mut flags = FieldFlags::CUSTOM;
    if count {
        flags = flags | FieldFlags::CNT;
    }
    if viewer_only {
        flags = flags | FieldFlags::VIEWER_ONLY;
    }
    let group = group.unwrap_or_else(|| expr.split('.').next().unwrap_or(expr).to_string());
    let def = FieldDef {
        expr: Cow::Owned(expr.to_string()),
        db: Cow::Owned(db),
        kind,
        friendly: Cow::Owned(friendly.unwrap_or_else(|| expr.to_string())),
        help: Cow::Owned(help.unwrap_or_else(|| expr.to_string())),
        group: Cow::Owned(group),
        flags,
        category,
        multi: None,
    };
    Ok(CustomField::Added(reg.insert(def)))
}
