//! Field types, registered fields (header fields in Wireshark's terms) and
//! how their values are shown in `-V` labels and in `-T json`/`-T fields`.

use std::fmt::Write as _;

use ahash::AHashMap;

/// Field types, as Wireshark's `ftypes.*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FType {
    None,
    Protocol,
    Bool,
    U8,
    U16,
    U24,
    U32,
    U64,
    I8,
    I16,
    I24,
    I32,
    I64,
    Float,
    Double,
    AbsTime,
    RelTime,
    String,
    Stringz,
    Bytes,
    UBytes,
    Ipv4,
    Ipv6,
    Ether,
    Guid,
    FrameNum,
}

impl FType {
    /// The `ftypes.*` number used by the Lua API (Wireshark 4.0 order).
    pub fn code(self) -> u32 {
        use FType::*;
        match self {
            None => 0,
            Protocol => 1,
            Bool => 2,
            U8 => 4,
            U16 => 5,
            U24 => 6,
            U32 => 7,
            U64 => 11,
            I8 => 13,
            I16 => 14,
            I24 => 15,
            I32 => 16,
            I64 => 20,
            Float => 22,
            Double => 23,
            AbsTime => 24,
            RelTime => 25,
            String => 26,
            Stringz => 27,
            Bytes => 29,
            UBytes => 30,
            Ipv4 => 33,
            Ipv6 => 34,
            Ether => 28,
            Guid => 38,
            FrameNum => 37,
        }
    }

    /// Inverse of [`FType::code`].
    pub fn from_code(code: u32) -> Option<FType> {
        ALL.iter().copied().find(|t| t.code() == code)
    }

    /// Unsigned integer types (including frame numbers).
    pub fn is_uint(self) -> bool {
        matches!(
            self,
            FType::U8 | FType::U16 | FType::U24 | FType::U32 | FType::U64 | FType::FrameNum
        )
    }

    /// Signed integer types.
    pub fn is_int(self) -> bool {
        matches!(
            self,
            FType::I8 | FType::I16 | FType::I24 | FType::I32 | FType::I64
        )
    }

    /// Width in bytes of fixed-size integer types (for hex padding and
    /// bitmask display); 0 for others.
    pub fn int_width(self) -> u32 {
        match self {
            FType::U8 | FType::I8 => 1,
            FType::U16 | FType::I16 => 2,
            FType::U24 | FType::I24 => 3,
            FType::U32 | FType::I32 | FType::FrameNum => 4,
            FType::U64 | FType::I64 => 8,
            _ => 0,
        }
    }
}

const ALL: [FType; 26] = [
    FType::None,
    FType::Protocol,
    FType::Bool,
    FType::U8,
    FType::U16,
    FType::U24,
    FType::U32,
    FType::U64,
    FType::I8,
    FType::I16,
    FType::I24,
    FType::I32,
    FType::I64,
    FType::Float,
    FType::Double,
    FType::AbsTime,
    FType::RelTime,
    FType::String,
    FType::Stringz,
    FType::Bytes,
    FType::UBytes,
    FType::Ipv4,
    FType::Ipv6,
    FType::Ether,
    FType::Guid,
    FType::FrameNum,
];

/// `base.*` display bases.
pub mod base {
    /// No base (strings, bytes, booleans without width).
    pub const NONE: u32 = 0;
    /// Decimal.
    pub const DEC: u32 = 1;
    /// Hexadecimal.
    pub const HEX: u32 = 2;
    /// Octal.
    pub const OCT: u32 = 3;
    /// Decimal then hex in parentheses.
    pub const DEC_HEX: u32 = 4;
    /// Hex then decimal in parentheses.
    pub const HEX_DEC: u32 = 5;
}

/// A value-string table: numbers to names, a true/false pair, or ranges.
#[derive(Debug, Clone)]
pub enum ValueStrings {
    /// `{[1] = "Request", ...}`.
    Map(AHashMap<i64, String>),
    /// `{"Set", "Not set"}` for booleans.
    Tfs(String, String),
    /// `{{lo, hi, "name"}, ...}`.
    Ranges(Vec<(i64, i64, String)>),
}

impl ValueStrings {
    /// The name for a number, if any.
    pub fn lookup(&self, v: i64) -> Option<&str> {
        match self {
            ValueStrings::Map(m) => m.get(&v).map(String::as_str),
            ValueStrings::Ranges(r) => r
                .iter()
                .find(|(lo, hi, _)| *lo <= v && v <= *hi)
                .map(|(_, _, s)| s.as_str()),
            ValueStrings::Tfs(t, f) => Some(if v != 0 { t } else { f }),
        }
    }
}

/// Which kind of tree entry a field describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A value field (`ProtoField`).
    Value,
    /// A protocol (`Proto`), filterable by its name.
    Protocol,
    /// A text-only item.
    Text,
    /// An expert-info item.
    Expert,
}

/// Index of a registered field.
pub type FieldId = u32;

/// A registered field.
#[derive(Debug, Clone)]
pub struct FieldDef {
    /// Filter name (`foo.type`).
    pub abbrev: String,
    /// Display name (`Type`).
    pub name: String,
    /// Value type.
    pub ftype: FType,
    /// `base.*`, or for booleans the bit width of the containing field.
    pub base: u32,
    /// Optional names for values.
    pub vs: Option<ValueStrings>,
    /// Bit mask (0 = none).
    pub mask: u64,
    /// Description (blurb).
    pub descr: String,
    /// What the field is.
    pub kind: FieldKind,
}

/// Text item field id (always registered first).
pub const FIELD_TEXT: FieldId = 0;
/// Expert item field id.
pub const FIELD_EXPERT: FieldId = 1;
/// `_ws.malformed`, added hidden beside malformed-group expert items.
pub const FIELD_MALFORMED: FieldId = 2;

/// All registered fields, by id and by filter name.
#[derive(Debug)]
pub struct Registry {
    fields: Vec<FieldDef>,
    by_abbrev: AHashMap<String, Vec<FieldId>>,
}

impl Default for Registry {
    fn default() -> Self {
        let mut r = Registry {
            fields: Vec::new(),
            by_abbrev: AHashMap::new(),
        };
        r.add(FieldDef::simple(
            "_ws.lua.text",
            "Text",
            FType::None,
            FieldKind::Text,
        ));
        r.add(FieldDef::simple(
            "_ws.expert",
            "Expert Info",
            FType::None,
            FieldKind::Expert,
        ));
        r.add(FieldDef::simple(
            "_ws.malformed",
            "Malformed Packet",
            FType::Protocol,
            FieldKind::Protocol,
        ));
        r
    }
}

impl FieldDef {
    /// A field without base, value strings, mask or description.
    pub fn simple(abbrev: &str, name: &str, ftype: FType, kind: FieldKind) -> FieldDef {
        FieldDef {
            abbrev: abbrev.to_string(),
            name: name.to_string(),
            ftype,
            base: if ftype.is_uint() || ftype.is_int() {
                base::DEC
            } else {
                base::NONE
            },
            vs: None,
            mask: 0,
            descr: String::new(),
            kind,
        }
    }

    /// Same with a display base.
    pub fn with_base(mut self, b: u32) -> FieldDef {
        self.base = b;
        self
    }

    /// Same with a value-string table.
    pub fn with_vs(mut self, vs: ValueStrings) -> FieldDef {
        self.vs = Some(vs);
        self
    }
}

impl Registry {
    /// Registers a field and returns its id.
    pub fn add(&mut self, def: FieldDef) -> FieldId {
        let id = self.fields.len() as FieldId;
        self.by_abbrev
            .entry(def.abbrev.clone())
            .or_default()
            .push(id);
        self.fields.push(def);
        id
    }

    /// A field by id.
    #[inline]
    pub fn get(&self, id: FieldId) -> &FieldDef {
        &self.fields[id as usize]
    }

    /// Every field registered under a filter name.
    pub fn lookup(&self, abbrev: &str) -> &[FieldId] {
        self.by_abbrev.get(abbrev).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A field's value in a tree item.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value (text items, `none` fields).
    None,
    /// Unsigned integers and frame numbers (already masked and shifted).
    U(u64),
    /// Signed integers.
    I(i64),
    /// Booleans: the raw (masked) value, non-zero meaning true.
    Bool(u64),
    /// Floating point.
    F(f64),
    /// Strings.
    Str(String),
    /// Byte strings.
    Bytes(Vec<u8>),
    /// IPv4 address.
    Ipv4([u8; 4]),
    /// IPv6 address.
    Ipv6([u8; 16]),
    /// Ethernet address.
    Ether([u8; 6]),
    /// Absolute or relative time.
    Time(i64, u32),
    /// GUID bytes in display order.
    Guid([u8; 16]),
}

/// Formats like C's `%.{prec}g` (what Wireshark uses for floats).
pub fn fmt_g(v: f64, prec: usize) -> String {
    if v.is_nan() {
        return "nan".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let prec = prec.max(1);
    let e = format!("{:.*e}", prec - 1, v);
    let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = trim_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{:.*}", decimals, v)).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// IPv6 text form (RFC 5952: longest zero run compressed).
pub fn ipv6_string(a: &[u8; 16]) -> String {
    std::net::Ipv6Addr::from(*a).to_string()
}

/// `aa:bb:cc:dd:ee:ff`.
pub fn ether_string(a: &[u8; 6]) -> String {
    let mut s = String::with_capacity(17);
    for (i, b) in a.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Hex digits with an optional separator.
pub fn hex_string(b: &[u8], sep: Option<char>) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0
            && let Some(c) = sep
        {
            s.push(c);
        }
        let _ = write!(s, "{x:02x}");
    }
    s
}

/// Printable form of a string value, escaping control characters the way
/// Wireshark's `format_text` does.
pub fn escape_text(s: &str) -> String {
    if !s.chars().any(|c| c.is_control()) {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0b' => out.push_str("\\v"),
            '\x0c' => out.push_str("\\f"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// `Nov 14, 2023 22:13:20.123456000 UTC` (tshark's absolute time layout).
pub fn abs_time_string(secs: i64, nanos: u32) -> String {
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil(days);
    format!(
        "{} {:2}, {} {:02}:{:02}:{:02}.{:09} UTC",
        MONTHS[(m - 1) as usize],
        d,
        y,
        sod / 3600,
        (sod / 60) % 60,
        sod % 60,
        nanos
    )
}

/// `1.500000000` style seconds.
pub fn rel_time_string(secs: i64, nanos: u32) -> String {
    if secs < 0 {
        format!("-{}.{:09}", -secs, nanos)
    } else {
        format!("{secs}.{nanos:09}")
    }
}

fn uint_repr(def: &FieldDef, v: u64, hex_width: usize) -> String {
    match def.base {
        base::HEX => format!("0x{v:0hex_width$x}"),
        base::OCT => {
            if v == 0 {
                "0".into()
            } else {
                format!("0{v:o}")
            }
        }
        base::DEC_HEX => format!("{v} (0x{v:0hex_width$x})"),
        base::HEX_DEC => format!("0x{v:0hex_width$x} ({v})"),
        _ => v.to_string(),
    }
}

fn hex_width(def: &FieldDef) -> usize {
    let w = def.ftype.int_width() as usize * 2;
    if def.mask != 0 {
        // A masked field is padded to the width of the mask's significant
        // bits once shifted, as Wireshark does.
        let bits = 64 - (def.mask >> def.mask.trailing_zeros()).leading_zeros() as usize;
        return bits.div_ceil(4).max(1);
    }
    w.max(1)
}

/// The value part of a `-V` label (`Request (1)`, `0x0005`, `hello`).
pub fn display_value(def: &FieldDef, v: &Value) -> String {
    match v {
        Value::None => String::new(),
        Value::U(u) => {
            let w = hex_width(def);
            if let Some(vs) = &def.vs {
                let name = vs.lookup(*u as i64).unwrap_or("Unknown");
                let num = match def.base {
                    base::HEX | base::HEX_DEC => format!("0x{u:0w$x}"),
                    _ => u.to_string(),
                };
                format!("{name} ({num})")
            } else {
                uint_repr(def, *u, w)
            }
        }
        Value::I(i) => {
            if let Some(vs) = &def.vs {
                format!("{} ({i})", vs.lookup(*i).unwrap_or("Unknown"))
            } else {
                match def.base {
                    base::HEX | base::HEX_DEC | base::DEC_HEX | base::OCT => {
                        let bits = def.ftype.int_width() * 8;
                        let u = if bits >= 64 {
                            *i as u64
                        } else {
                            (*i as u64) & ((1u64 << bits) - 1)
                        };
                        uint_repr(def, u, hex_width(def))
                    }
                    _ => i.to_string(),
                }
            }
        }
        Value::Bool(b) => match &def.vs {
            Some(ValueStrings::Tfs(t, f)) => (if *b != 0 { t } else { f }).clone(),
            _ => (if *b != 0 { "True" } else { "False" }).to_string(),
        },
        Value::F(f) => {
            let s = if def.ftype == FType::Float {
                fmt_g(*f, 6)
            } else {
                fmt_g(*f, 15)
            };
            match &def.vs {
                Some(vs) => format!("{} ({s})", vs.lookup(*f as i64).unwrap_or("Unknown")),
                None => s,
            }
        }
        Value::Str(s) => escape_text(s),
        Value::Bytes(b) => {
            if b.is_empty() {
                "<MISSING>".into()
            } else {
                hex_string(b, None)
            }
        }
        Value::Ipv4(a) => format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3]),
        Value::Ipv6(a) => ipv6_string(a),
        Value::Ether(a) => ether_string(a),
        Value::Time(s, n) => {
            if def.ftype == FType::RelTime {
                format!("{} seconds", rel_time_string(*s, *n))
            } else {
                abs_time_string(*s, *n)
            }
        }
        Value::Guid(g) => guid_string(g),
    }
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
pub fn guid_string(g: &[u8; 16]) -> String {
    format!(
        "{}-{}-{}-{}-{}",
        hex_string(&g[0..4], None),
        hex_string(&g[4..6], None),
        hex_string(&g[6..8], None),
        hex_string(&g[8..10], None),
        hex_string(&g[10..16], None)
    )
}

/// The value as `-T json` / `-T fields` / display filters show it.
pub fn field_value(def: &FieldDef, v: &Value) -> String {
    match v {
        Value::None => String::new(),
        Value::U(u) => match def.base {
            base::HEX | base::HEX_DEC => {
                format!(
                    "0x{u:0w$x}",
                    w = (def.ftype.int_width() as usize * 2).max(1)
                )
            }
            _ => u.to_string(),
        },
        Value::I(i) => i.to_string(),
        Value::Bool(b) => (if *b != 0 { "1" } else { "0" }).into(),
        Value::F(f) => {
            if def.ftype == FType::Float {
                fmt_g(*f, 6)
            } else {
                fmt_g(*f, 15)
            }
        }
        Value::Str(s) => s.clone(),
        Value::Bytes(b) => hex_string(b, Some(':')),
        Value::Time(s, n) => {
            if def.ftype == FType::RelTime {
                rel_time_string(*s, *n)
            } else {
                abs_time_string(*s, *n)
            }
        }
        _ => display_value(def, v),
    }
}

/// The bit picture that prefixes a masked field's label (`.... ..01 = `).
pub fn bitfield_prefix(def: &FieldDef, raw: u64) -> String {
    let width = match def.ftype {
        FType::Bool => {
            if def.base > 0 && def.base <= 64 {
                def.base
            } else {
                64 - def.mask.leading_zeros()
            }
        }
        _ => def.ftype.int_width() * 8,
    };
    let mut s = String::with_capacity(width as usize * 2);
    for i in 0..width {
        let bit = 1u64 << (width - 1 - i);
        if i > 0 && i % 4 == 0 {
            s.push(' ');
        }
        if def.mask & bit != 0 {
            s.push(if raw & bit != 0 { '1' } else { '0' });
        } else {
            s.push('.');
        }
    }
    s.push_str(" = ");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format_matches_c() {
        assert_eq!(fmt_g(1.401_298_464e-45, 6), "1.4013e-45");
        assert_eq!(
            fmt_g(7.301_798_897_399_33e-304, 15),
            "7.30179889739933e-304"
        );
        assert_eq!(fmt_g(1.5, 6), "1.5");
        assert_eq!(fmt_g(100.0, 6), "100");
        assert_eq!(fmt_g(1234567.0, 6), "1.23457e+06");
    }

    #[test]
    fn uint_labels() {
        let vs = ValueStrings::Map([(1, "Request".to_string())].into_iter().collect());
        let d = FieldDef::simple("f", "F", FType::U8, FieldKind::Value).with_vs(vs.clone());
        assert_eq!(display_value(&d, &Value::U(1)), "Request (1)");
        assert_eq!(display_value(&d, &Value::U(3)), "Unknown (3)");
        let h = d.clone().with_base(base::HEX);
        assert_eq!(display_value(&h, &Value::U(1)), "Request (0x01)");
        let dh = FieldDef::simple("f", "F", FType::U16, FieldKind::Value).with_base(base::DEC_HEX);
        assert_eq!(display_value(&dh, &Value::U(5)), "5 (0x0005)");
        assert_eq!(field_value(&dh, &Value::U(5)), "5");
        let o = FieldDef::simple("f", "F", FType::U8, FieldKind::Value).with_base(base::OCT);
        assert_eq!(display_value(&o, &Value::U(5)), "05");
    }

    #[test]
    fn bitfields() {
        let mut d = FieldDef::simple("f", "F", FType::U8, FieldKind::Value).with_base(base::HEX);
        d.mask = 0xf0;
        assert_eq!(bitfield_prefix(&d, 0xff), "1111 .... = ");
        assert_eq!(field_value(&d, &Value::U(0xf)), "0x0f");
        assert_eq!(display_value(&d, &Value::U(0xf)), "0xf");
        let mut b = FieldDef::simple("b", "B", FType::Bool, FieldKind::Value);
        b.base = 8;
        b.mask = 0x80;
        assert_eq!(bitfield_prefix(&b, 0x80), "1... .... = ");
    }

    #[test]
    fn times() {
        assert_eq!(
            abs_time_string(1_700_000_000, 123_456_000),
            "Nov 14, 2023 22:13:20.123456000 UTC"
        );
        assert_eq!(rel_time_string(1, 500_000_000), "1.500000000");
    }
}
