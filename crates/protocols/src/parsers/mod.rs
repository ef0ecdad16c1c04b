//! The built-in protocol parsers and their classifiers.
//!
//! Every protocol is one module with the same shape (see [`crate::Parser`]):
//! pure functions that read borrowed bytes, a per-session state machine
//! that implements [`crate::Parser`], and code that turns what was read
//! into registry fields. [`classifiers`] registers every module's
//! classifiers, leaving out the ones named in `disableParsers`.

use crate::SessionFields;
use crate::analyzer::ProtocolConfig;
use crate::classify::ClassifierSet;
use fields::{FieldId, FieldRegistry};

pub mod der;
pub mod dns;
pub mod http;
pub mod http2;
pub mod imap;
pub mod krb5;
pub mod magic;
pub mod misc;
pub mod mqtt;
pub mod openvpn;
pub mod quic;
pub mod sip;
pub mod smb;
pub mod smtp;
pub mod socks;
pub mod template;
pub mod tls;
pub mod util;

pub(crate) use http::inet_addr as http_inet_addr;

/// Every built-in classifier, except those of parsers listed in the
/// `disableParsers` setting (names such as `http`, `dns`, `tls`, separated
/// by `;` or `,`; `all` turns every built-in parser off), and SMTP's or
/// SMB's when `parseSMTP` / `parseSMB` is false.
pub fn classifiers(config: &ProtocolConfig) -> ClassifierSet {
    let disabled: Vec<String> = config
        .get("disableParsers")
        .unwrap_or("")
        .split([';', ','])
        .map(|s| s.trim().trim_end_matches(".so").to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    // Arkime's parseSMTP / parseSMB (on by default) leave those parsers'
    // classifiers out when false.
    let off_by_setting = |name: &str| match name {
        "smtp" => !config.get_bool("parseSMTP", true),
        "smb" => !config.get_bool("parseSMB", true),
        _ => false,
    };
    let on =
        |name: &str| !off_by_setting(name) && !disabled.iter().any(|d| d == name || d == "all");
    let mut set = ClassifierSet::new();
    if on("http") {
        http::register(&mut set);
    }
    if on("dns") {
        dns::register(&mut set);
    }
    if on("tls") {
        tls::register(&mut set);
    }
    if on("smtp") {
        smtp::register(&mut set);
    }
    if on("quic") {
        quic::register(&mut set);
    }
    if on("openvpn") {
        openvpn::register(&mut set);
    }
    if on("socks") {
        socks::register(&mut set);
    }
    if on("imap") {
        imap::register(&mut set);
    }
    if on("krb5") {
        krb5::register(&mut set);
    }
    if on("smb") {
        smb::register(&mut set);
    }
    if on("mqtt") {
        mqtt::register(&mut set);
    }
    if on("sip") {
        sip::register(&mut set);
    }
    if on("http2") {
        http2::register(&mut set);
    }
    misc::register(&mut set, &on);
    set
}

/// Registry lookups of field expressions, remembered per analyzer and
/// keyed by the address of a `'static` expression: a parser names its
/// fields with literals, so the same address always means the same text
/// and a hit costs a multiply and a few compares instead of hashing the
/// name. Two ways per set (direct-mapped, two literals of one message's
/// fields that shared a slot evicted each other at every header); a miss
/// only costs a fresh lookup.
pub(crate) struct ExprIds {
    slots: Box<[(usize, usize, Option<FieldId>)]>,
}

/// Slots, in sets of two.
const EXPR_SLOTS: usize = 1024;

impl Default for ExprIds {
    fn default() -> Self {
        ExprIds {
            slots: vec![(0, 0, None); EXPR_SLOTS].into_boxed_slice(),
        }
    }
}

impl ExprIds {
    /// The field of `expr` in `reg` (the registry must stay the same for
    /// the life of this memo: an analyzer's registry does).
    pub fn get(&mut self, reg: &FieldRegistry, expr: &'static str) -> Option<FieldId> {
        let addr = expr.as_ptr() as usize;
        let set = (addr.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % (EXPR_SLOTS / 2);
        let at = set * 2;
        let key = (addr, expr.len());
        let first = self.slots[at];
        if (first.0, first.1) == key {
            return first.2;
        }
        let second = self.slots[at + 1];
        if (second.0, second.1) == key {
            return second.2;
        }
        // The newest lookup takes the first way; the one it displaces
        // moves to the second.
        let id = reg.lookup_expr(expr);
        self.slots[at + 1] = first;
        self.slots[at] = (addr, expr.len(), id);
        id
    }
}

/// Field writing shared by classifiers and parsers.
pub(crate) struct Out<'a, 'b> {
    pub fields: &'a mut SessionFields,
    pub reg: &'b FieldRegistry,
    pub ids: &'a mut ExprIds,
}

impl Out<'_, '_> {
    fn id(&mut self, expr: &'static str) -> Option<FieldId> {
        self.ids.get(self.reg, expr)
    }
    pub fn s(&mut self, expr: &'static str, v: &str) -> bool {
        match self.id(expr) {
            Some(id) => self.fields.add_string(self.reg, id, v),
            None => false,
        }
    }
    /// [`Out::s`] for a field name built at run time.
    pub fn s_dyn(&mut self, expr: &str, v: &str) -> bool {
        self.fields.add_str_expr(self.reg, expr, v)
    }
    pub fn i(&mut self, expr: &'static str, v: i64) -> bool {
        match self.id(expr) {
            Some(id) => self.fields.add_int(id, v),
            None => false,
        }
    }
    /// [`Out::i`] for a field name built at run time.
    pub fn i_dyn(&mut self, expr: &str, v: i64) -> bool {
        self.fields.add_int_expr(self.reg, expr, v)
    }
    pub fn ip(&mut self, expr: &'static str, v: std::net::IpAddr) -> bool {
        match self.id(expr) {
            Some(id) => self.fields.add_ip(id, v),
            None => false,
        }
    }
    /// [`Out::ip`] for a field name built at run time.
    pub fn ip_dyn(&mut self, expr: &str, v: std::net::IpAddr) -> bool {
        self.fields.add_ip_expr(self.reg, expr, v)
    }
    pub fn scalar(&mut self, expr: &'static str, v: serde_json::Value) -> bool {
        match self.id(expr) {
            Some(id) => self.fields.set_scalar(id, v),
            None => false,
        }
    }
    pub fn push(&mut self, expr: &'static str, v: &str) -> bool {
        match self.id(expr) {
            Some(id) => self.fields.push_string(self.reg, id, v),
            None => false,
        }
    }
    pub fn object(&mut self, expr: &'static str, v: serde_json::Value) -> bool {
        match self.id(expr) {
            Some(id) => self.fields.add_object(id, v),
            None => false,
        }
    }
    /// Appends an object given as JSON text to an object field.
    pub fn object_text(&mut self, expr: &'static str, v: String) -> bool {
        match self.id(expr) {
            Some(id) => self.fields.add_object_text(id, v),
            None => false,
        }
    }
    /// Adds one to a counter field.
    pub fn incr(&mut self, expr: &'static str) {
        if let Some(id) = self.id(expr) {
            self.fields.incr(id, 1);
        }
    }
    pub fn protocol(&mut self, p: &str) {
        self.fields.add_protocol(p);
    }
    pub fn tag(&mut self, t: &str) {
        self.fields.add_tag(t);
    }
}

/// Field writer of a parse context.
pub(crate) fn out<'a, 'b>(cx: &'a mut crate::ParseContext<'b>) -> Out<'a, 'b> {
    Out {
        fields: cx.fields,
        reg: cx.registry,
        ids: cx.ids,
    }
}

#[cfg(test)]
pub(crate) mod testutil;
