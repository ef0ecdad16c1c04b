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
use fields::FieldRegistry;

pub mod der;
pub mod dns;
pub mod http;
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
pub mod tls;
pub mod util;

pub(crate) use http::inet_addr as http_inet_addr;

/// Every built-in classifier, except those of parsers listed in the
/// `disableParsers` setting (names such as `http`, `dns`, `tls`, separated
/// by `;` or `,`; `all` turns every built-in parser off).
pub fn classifiers(config: &ProtocolConfig) -> ClassifierSet {
    let disabled: Vec<String> = config
        .get("disableParsers")
        .unwrap_or("")
        .split([';', ','])
        .map(|s| s.trim().trim_end_matches(".so").to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect();
    let on = |name: &str| !disabled.iter().any(|d| d == name || d == "all");
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
    misc::register(&mut set, &on);
    set
}

/// Field writing shared by classifiers and parsers.
pub(crate) struct Out<'a, 'b> {
    pub fields: &'a mut SessionFields,
    pub reg: &'b FieldRegistry,
}

impl Out<'_, '_> {
    pub fn s(&mut self, expr: &str, v: &str) -> bool {
        self.fields.add_str_expr(self.reg, expr, v)
    }
    pub fn i(&mut self, expr: &str, v: i64) -> bool {
        self.fields.add_int_expr(self.reg, expr, v)
    }
    pub fn ip(&mut self, expr: &str, v: std::net::IpAddr) -> bool {
        self.fields.add_ip_expr(self.reg, expr, v)
    }
    pub fn scalar(&mut self, expr: &str, v: serde_json::Value) -> bool {
        self.fields.set_scalar_expr(self.reg, expr, v)
    }
    pub fn push(&mut self, expr: &str, v: &str) -> bool {
        match self.reg.lookup_expr(expr) {
            Some(id) => self.fields.push_string(self.reg, id, v),
            None => false,
        }
    }
    pub fn object(&mut self, expr: &str, v: serde_json::Value) -> bool {
        match self.reg.lookup_expr(expr) {
            Some(id) => self.fields.add_object(id, v),
            None => false,
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
    }
}

#[cfg(test)]
pub(crate) mod testutil;
