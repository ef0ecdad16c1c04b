//! moonwire's single field registry: Arkime's session fields as data.
//!
//! A field has an *expression name* (what users type in a query: `host.http`,
//! `ip.src`), a *database path* (where it lives in the session document:
//! `http.host`, `source.ip`), an Arkime *kind* (`termfield`, `integer`, `ip`,
//! ...), a friendly name, help text, a group and flags. Capture code looks up
//! a [`FieldId`] once at start-up and uses it per packet; the query parser
//! and the index schema read the same table, so an expression name, its
//! database path and its kind cannot disagree across the engine.
//!
//! The built-in table is `const` data; building a [`FieldRegistry`] only
//! fills two hash maps. The registry is `Send + Sync`: share it behind an
//! `Arc` and add `[custom-fields]` before sharing.

mod custom;
mod table;

use std::borrow::Cow;
use std::fmt;

use ahash::AHashMap;

pub use custom::CustomField;

/// Arkime's field kinds (the `kind` of `arkime_field_define` and of
/// `[custom-fields]`). They decide how values are indexed and compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// Exact string, case kept.
    Termfield,
    /// Exact string, stored lower-cased.
    Lotermfield,
    /// Exact string, stored upper-cased.
    Uptermfield,
    /// Free text, case kept.
    Textfield,
    /// Free text, stored lower-cased.
    Lotextfield,
    /// Free text, stored upper-cased.
    Uptextfield,
    /// Signed 64-bit integer.
    Integer,
    /// Floating point number.
    Float,
    /// IPv4 or IPv6 address (CIDR searches).
    Ip,
    /// Milliseconds since the epoch in the document; dates in queries.
    Date,
    /// An array of objects (`cert`, `dns`): not searchable itself, its
    /// members are fields of their own and its count is a field.
    Object,
}

impl FieldKind {
    /// Arkime's name for the kind, as written in `[custom-fields]`.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldKind::Termfield => "termfield",
            FieldKind::Lotermfield => "lotermfield",
            FieldKind::Uptermfield => "uptermfield",
            FieldKind::Textfield => "textfield",
            FieldKind::Lotextfield => "lotextfield",
            FieldKind::Uptextfield => "uptextfield",
            FieldKind::Integer => "integer",
            FieldKind::Float => "float",
            FieldKind::Ip => "ip",
            FieldKind::Date => "date",
            FieldKind::Object => "object",
        }
    }

    /// Parses Arkime's kind name (`seconds` is Arkime's date kind for
    /// second-resolution values and maps to [`FieldKind::Date`]).
    pub fn parse(s: &str) -> Option<FieldKind> {
        Some(match s {
            "termfield" => FieldKind::Termfield,
            "lotermfield" => FieldKind::Lotermfield,
            "uptermfield" => FieldKind::Uptermfield,
            "textfield" => FieldKind::Textfield,
            "lotextfield" => FieldKind::Lotextfield,
            "uptextfield" => FieldKind::Uptextfield,
            "integer" => FieldKind::Integer,
            "float" => FieldKind::Float,
            "ip" => FieldKind::Ip,
            "date" | "seconds" => FieldKind::Date,
            _ => return None,
        })
    }

    /// True for the string kinds (term and text).
    pub fn is_string(self) -> bool {
        matches!(
            self,
            FieldKind::Termfield
                | FieldKind::Lotermfield
                | FieldKind::Uptermfield
                | FieldKind::Textfield
                | FieldKind::Lotextfield
                | FieldKind::Uptextfield
        )
    }

    /// True for the kinds compared as numbers (`<`, `>=` are numeric).
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldKind::Integer | FieldKind::Float | FieldKind::Date
        )
    }

    /// The case a string kind normalises its values to.
    pub fn case(self) -> Case {
        match self {
            FieldKind::Lotermfield | FieldKind::Lotextfield => Case::Lower,
            FieldKind::Uptermfield | FieldKind::Uptextfield => Case::Upper,
            _ => Case::Keep,
        }
    }
}

impl fmt::Display for FieldKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Case normalisation of a string kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Case {
    /// Values are compared as written.
    Keep,
    /// Values (and query terms) are lower-cased.
    Lower,
    /// Values (and query terms) are upper-cased.
    Upper,
}

/// Field flags (a small bit set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FieldFlags(u16);

impl FieldFlags {
    /// No flags.
    pub const NONE: FieldFlags = FieldFlags(0);
    /// Arkime writes a `<db>Cnt` count next to the field (`http.uriCnt`).
    pub const CNT: FieldFlags = FieldFlags(1);
    /// The count is written as `<db>-cnt` (ECS-style fields: `source.mac-cnt`).
    pub const CNT_DASH: FieldFlags = FieldFlags(2);
    /// Not a document field: an expression that searches other fields.
    pub const MULTI: FieldFlags = FieldFlags(4);
    /// Defined by `[custom-fields]` (or by a plugin/script at start-up).
    pub const CUSTOM: FieldFlags = FieldFlags(8);
    /// Arkime's `viewerOnly`: known to queries, never written by capture.
    pub const VIEWER_ONLY: FieldFlags = FieldFlags(16);
    /// Bookkeeping (`packetPos`, `_id`): stored, not meant for queries.
    pub const INTERNAL: FieldFlags = FieldFlags(32);
    /// Derived count field (`http.uri.cnt` → `http.uriCnt`).
    pub const COUNT: FieldFlags = FieldFlags(64);

    /// True when every flag of `other` is set.
    pub const fn contains(self, other: FieldFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    pub const fn union(self, other: FieldFlags) -> FieldFlags {
        FieldFlags(self.0 | other.0)
    }

    /// True when a count field is written next to the field.
    pub const fn has_count(self) -> bool {
        self.0 & (Self::CNT.0 | Self::CNT_DASH.0) != 0
    }
}

impl std::ops::BitOr for FieldFlags {
    type Output = FieldFlags;
    fn bitor(self, rhs: FieldFlags) -> FieldFlags {
        self.union(rhs)
    }
}

/// How a multi-field expression picks its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Multi {
    /// Every field whose category list holds this category (`ip` → all ip
    /// fields with category `ip`), as Arkime's `ipall`/`hostall` do.
    Category(&'static str),
    /// These expressions.
    Exprs(&'static [&'static str]),
}

/// One field definition.
#[derive(Debug, Clone)]
pub struct FieldDef {
    /// Expression name used in queries (`host.http`).
    pub expr: Cow<'static, str>,
    /// Path of the value in the session document (`http.host`); dotted
    /// segments are nested objects, arrays of objects are walked through.
    pub db: Cow<'static, str>,
    /// Arkime kind.
    pub kind: FieldKind,
    /// Short display name (column header).
    pub friendly: Cow<'static, str>,
    /// One-line help.
    pub help: Cow<'static, str>,
    /// Group (`general`, `http`, `dns`, ...), usually the protocol.
    pub group: Cow<'static, str>,
    /// Flags.
    pub flags: FieldFlags,
    /// Arkime categories (`ip`, `port`, `host`, `user`, `mac`, `url`, `md5`).
    pub category: Cow<'static, [&'static str]>,
    /// For [`FieldFlags::MULTI`] expressions: how the fields are chosen.
    pub multi: Option<Multi>,
}

impl FieldDef {
    /// A built-in definition (used by the `const` table).
    #[allow(clippy::too_many_arguments)]
    pub const fn builtin(
        group: &'static str,
        kind: FieldKind,
        expr: &'static str,
        friendly: &'static str,
        db: &'static str,
        help: &'static str,
        flags: FieldFlags,
        category: &'static [&'static str],
    ) -> FieldDef {
        FieldDef {
            expr: Cow::Borrowed(expr),
            db: Cow::Borrowed(db),
            kind,
            friendly: Cow::Borrowed(friendly),
            help: Cow::Borrowed(help),
            group: Cow::Borrowed(group),
            flags,
            category: Cow::Borrowed(category),
            multi: None,
        }
    }

    /// The database path of the count field written next to this one, if
    /// any (`http.uriCnt`, `source.mac-cnt`).
    pub fn count_db(&self) -> Option<String> {
        if self.flags.contains(FieldFlags::CNT_DASH) {
            Some(format!("{}-cnt", self.db))
        } else if self.flags.contains(FieldFlags::CNT) {
            Some(format!("{}Cnt", self.db))
        } else {
            None
        }
    }

    /// True for a multi-field expression (no document field of its own).
    pub fn is_multi(&self) -> bool {
        self.flags.contains(FieldFlags::MULTI)
    }

    /// True when the field has this category.
    pub fn has_category(&self, cat: &str) -> bool {
        self.category.contains(&cat)
    }
}

/// Index of a field in its registry; valid for that registry only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(u32);

impl FieldId {
    /// The position in the registry (dense, from 0).
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// Errors of the registry.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FieldError {
    /// A `[custom-fields]` line without `=`.
    #[error("custom field line {line:?}: expected `expression=kind:...;db:...`")]
    BadLine {
        /// The line as given.
        line: String,
    },
    /// An empty or malformed expression name.
    #[error("custom field {expr:?}: invalid expression name")]
    BadExpr {
        /// The expression.
        expr: String,
    },
    /// A `key:value` item without `:`.
    #[error("custom field {expr:?}: item {item:?} is not `key:value`")]
    BadItem {
        /// The expression.
        expr: String,
        /// The offending item.
        item: String,
    },
    /// `kind:` missing.
    #[error("custom field {expr:?}: missing `kind:`")]
    MissingKind {
        /// The expression.
        expr: String,
    },
    /// `db:` missing.
    #[error("custom field {expr:?}: missing `db:`")]
    MissingDb {
        /// The expression.
        expr: String,
    },
    /// `kind:` not one of Arkime's kinds.
    #[error("custom field {expr:?}: unknown kind {kind:?}")]
    UnknownKind {
        /// The expression.
        expr: String,
        /// The kind as written.
        kind: String,
    },
    /// A boolean item (`count:`) that is not true/false.
    #[error("custom field {expr:?}: {key} must be true or false, not {value:?}")]
    BadBool {
        /// The expression.
        expr: String,
        /// The item key.
        key: String,
        /// The value as written.
        value: String,
    },
}

/// The field registry.
#[derive(Debug, Clone)]
pub struct FieldRegistry {
    defs: Vec<FieldDef>,
    by_expr: AHashMap<String, FieldId>,
    by_db: AHashMap<String, FieldId>,
    /// Each field's place in document order (see [`FieldRegistry::db_rank`]),
    /// computed on first use after the last insertion.
    db_rank: std::sync::OnceLock<Vec<u32>>,
}

impl Default for FieldRegistry {
    fn default() -> Self {
        Self::builtin()
    }
}

impl FieldRegistry {
    /// The registry of Arkime's built-in fields, their derived count fields
    /// and the multi-field expressions.
    pub fn builtin() -> FieldRegistry {
        let mut reg = FieldRegistry {
            defs: Vec::with_capacity(table::BUILTIN.len() * 2),
            by_expr: AHashMap::with_capacity(table::BUILTIN.len() * 2),
            by_db: AHashMap::with_capacity(table::BUILTIN.len() * 2),
            db_rank: std::sync::OnceLock::new(),
        };
        for def in table::BUILTIN {
            reg.insert(def.clone());
        }
        for (expr, friendly, help, kind, multi) in table::MULTI {
            reg.insert(FieldDef {
                expr: Cow::Borrowed(expr),
                db: Cow::Owned(String::new()),
                kind: *kind,
                friendly: Cow::Borrowed(friendly),
                help: Cow::Borrowed(help),
                group: Cow::Borrowed("general"),
                flags: FieldFlags::MULTI,
                category: Cow::Borrowed(&[]),
                multi: Some(multi.clone()),
            });
        }
        reg
    }

    /// Adds a definition and, when it has one, its count field. Returns
    /// the id of the definition.
    fn insert(&mut self, def: FieldDef) -> FieldId {
        self.db_rank = std::sync::OnceLock::new();
        let id = FieldId(self.defs.len() as u32);
        let count = def.count_db().map(|db| FieldDef {
            expr: Cow::Owned(format!("{}.cnt", def.expr)),
            db: Cow::Owned(db),
            kind: FieldKind::Integer,
            friendly: Cow::Owned(format!("{} Cnt", def.friendly)),
            help: Cow::Owned(format!("Unique number of {}", def.help)),
            group: def.group.clone(),
            flags: FieldFlags::COUNT
                | (if def.flags.contains(FieldFlags::CUSTOM) {
                    FieldFlags::CUSTOM
                } else {
                    FieldFlags::NONE
                }),
            category: Cow::Borrowed(&[]),
            multi: None,
        });
        self.by_expr.entry(def.expr.to_string()).or_insert(id);
        if !def.is_multi() {
            self.by_db.entry(def.db.to_string()).or_insert(id);
        }
        self.defs.push(def);
        if let Some(count) = count {
            let cid = FieldId(self.defs.len() as u32);
            self.by_expr.entry(count.expr.to_string()).or_insert(cid);
            self.by_db.entry(count.db.to_string()).or_insert(cid);
            self.defs.push(count);
        }
        id
    }

    /// The field's place when document members are ordered by database
    /// name segment by segment (byte order, with `.` below every other
    /// byte), so that a parent's members come out next to each other.
    /// Sorting by rank is one integer compare instead of a string walk.
    pub fn db_rank(&self, id: FieldId) -> u32 {
        let ranks = self.db_rank.get_or_init(|| {
            let dot_first = |b: u8| if b == b'.' { 0 } else { b };
            let mut ids: Vec<usize> = (0..self.defs.len()).collect();
            ids.sort_by(|&a, &b| {
                let (a, b) = (&self.defs[a].db, &self.defs[b].db);
                a.bytes().map(dot_first).cmp(b.bytes().map(dot_first))
            });
            let mut ranks = vec![0u32; ids.len()];
            for (rank, id) in ids.into_iter().enumerate() {
                ranks[id] = rank as u32;
            }
            ranks
        });
        ranks.get(id.index()).copied().unwrap_or(u32::MAX)
    }

    /// The field with this expression name (exact match first, then
    /// ASCII-case-insensitive as Arkime's viewer lower-cases expressions).
    pub fn lookup_expr(&self, expr: &str) -> Option<FieldId> {
        if let Some(id) = self.by_expr.get(expr) {
            return Some(*id);
        }
        if expr.bytes().any(|b| b.is_ascii_uppercase()) {
            return self.by_expr.get(&expr.to_ascii_lowercase()).copied();
        }
        None
    }

    /// The field stored at this database path (`http.host`).
    pub fn by_db(&self, db: &str) -> Option<FieldId> {
        self.by_db.get(db).copied()
    }

    /// The definition of a field. Panics on an id from another registry
    /// (ids are only made by this registry).
    pub fn def(&self, id: FieldId) -> &FieldDef {
        &self.defs[id.index()]
    }

    /// The definition of a field, if the id is in range.
    pub fn get(&self, id: FieldId) -> Option<&FieldDef> {
        self.defs.get(id.index())
    }

    /// Number of definitions (including count fields and multi-field
    /// expressions).
    pub fn len(&self) -> usize {
        self.defs.len()
    }

    /// True when the registry has no field (never for [`Self::builtin`]).
    pub fn is_empty(&self) -> bool {
        self.defs.is_empty()
    }

    /// Every definition with its id, in table order.
    pub fn iter(&self) -> impl Iterator<Item = (FieldId, &FieldDef)> {
        self.defs
            .iter()
            .enumerate()
            .map(|(i, d)| (FieldId(i as u32), d))
    }

    /// The count field of a field (`http.uri` → `http.uri.cnt`).
    pub fn count_field(&self, id: FieldId) -> Option<FieldId> {
        let db = self.get(id)?.count_db()?;
        self.by_db(&db)
    }

    /// The concrete fields an expression searches: itself for a document
    /// field, the chosen fields for a multi-field expression (`ip` → every
    /// field with category `ip`).
    pub fn expand(&self, id: FieldId) -> Vec<FieldId> {
        let def = self.def(id);
        match &def.multi {
            None => vec![id],
            Some(Multi::Category(cat)) => self
                .iter()
                .filter(|(_, d)| !d.is_multi() && d.has_category(cat))
                .map(|(i, _)| i)
                .collect(),
            Some(Multi::Exprs(exprs)) => exprs.iter().filter_map(|e| self.lookup_expr(e)).collect(),
        }
    }

    /// Adds one `[custom-fields]` definition: `expr` and the value
    /// `kind:integer;count:true;friendly:...;db:...;help:...`.
    ///
    /// As in Arkime, a definition for an expression that already exists is
    /// ignored (a config cannot change a built-in field's type): the result
    /// is [`CustomField::Existing`].
    pub fn add_custom(&mut self, expr: &str, spec: &str) -> Result<CustomField, FieldError> {
        custom::add(self, expr, spec)
    }

    /// Adds one `[custom-fields]` line `expr=spec`.
    pub fn add_custom_line(&mut self, line: &str) -> Result<CustomField, FieldError> {
        let Some((expr, spec)) = line.split_once('=') else {
            return Err(FieldError::BadLine {
                line: line.to_string(),
            });
        };
        self.add_custom(expr.trim(), spec.trim())
    }
}

#[cfg(test)]
mod tests;
