//! Kerberos 5 (UDP datagrams and TCP with its 4-byte record length): the
//! realm, client and service principal names and offered encryption types
//! of AS/TGS requests, and the names and error code of KRB-ERROR replies.

use super::der::{self, Tlv};
use super::util::{self, be32};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus, Transport};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Largest TCP record buffered.
const MAX_BUF: usize = 64 * 1024;

/// `pvno [1] INTEGER 5`, found at a fixed offset of requests and errors.
const PVNO5: &[u8] = b"\x03\x02\x01\x05";

/// Registers the Kerberos classifiers (the protocol version after the
/// message's outer headers, at offsets depending on their length forms).
pub fn register(set: &mut ClassifierSet) {
    for at in [7, 9] {
        set.add_udp("krb5", at, PVNO5, ClassifyAction::Native(classify_udp));
    }
    for at in [11, 13] {
        set.add_tcp("krb5", at, PVNO5, ClassifyAction::Native(classify_tcp));
    }
}

/// Application tag numbers of the messages read.
const AS_REQ: u8 = 10;
const AS_REP: u8 = 11;
const TGS_REQ: u8 = 12;
const TGS_REP: u8 = 13;
const KRB_ERROR: u8 = 30;

/// The outer element of a message: (constructed, tag number, element).
fn outer(data: &[u8]) -> Option<(bool, u8, Tlv<'_>)> {
    let (t, _) = der::read_lenient(data)?;
    Some((t.tag & 0x20 != 0, t.tag & 0x1f, t))
}

fn classify_udp(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if cx.fields.has_protocol("krb5") || cx.has_parser("krb5") {
        return;
    }
    let Some((pc, tag, _)) = outer(data) else {
        return;
    };
    // The element must fit the datagram.
    if pc && matches!(tag, AS_REQ | TGS_REQ | KRB_ERROR) && der::read(data).is_some() {
        cx.attach(Box::new(Krb5 {
            tcp: false,
            buf: [Vec::new(), Vec::new()],
        }));
    }
}

fn classify_tcp(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if cx.has_parser("krb5") || data.len() < 5 || data[0] != 0 || data[1] != 0 {
        return;
    }
    if matches!(data[4], 0x6a | 0x6b | 0x6c | 0x6d | 0x7e) {
        cx.attach(Box::new(Krb5 {
            tcp: cx.meta.transport == Transport::Tcp,
            buf: [Vec::new(), Vec::new()],
        }));
    }
}

/// The Kerberos parser of one session.
pub struct Krb5 {
    tcp: bool,
    buf: [Vec<u8>; 2],
}

impl Parser for Krb5 {
    fn name(&self) -> &'static str {
        "krb5"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let mut o = super::out(cx);
        if !self.tcp {
            message(&mut o, data);
            return ParserStatus::Continue;
        }
        let buf = &mut self.buf[dir.index()];
        if buf.len() + data.len() > MAX_BUF {
            return ParserStatus::Done;
        }
        buf.extend_from_slice(data);
        while let Some(len) = be32(buf, 0) {
            let Some(end) = usize::try_from(len).ok().and_then(|l| l.checked_add(4)) else {
                return ParserStatus::Done;
            };
            if end > MAX_BUF {
                return ParserStatus::Done;
            }
            if buf.len() < end {
                break;
            }
            message(&mut o, &buf[4..end]);
            buf.drain(..end);
        }
        ParserStatus::Continue
    }
}

/// The children of a SEQUENCE element's contents (`data` holds the whole
/// SEQUENCE), at most `max`; none when it is not a SEQUENCE.
fn sequence(data: &[u8], max: usize) -> Vec<Tlv<'_>> {
    match der::read_lenient(data) {
        Some((t, _)) if t.tag == 0x30 => der::children_lenient(t.value).take(max).collect(),
        _ => Vec::new(),
    }
}

/// The contents of an explicitly tagged element's inner value (or of the
/// element itself when it is primitive).
fn inner<'a>(t: &Tlv<'a>) -> Option<&'a [u8]> {
    if t.tag & 0x20 == 0 {
        return Some(t.value);
    }
    der::read_lenient(t.value).map(|(i, _)| i.value)
}

/// A small non-negative INTEGER of a (tagged) element.
fn int(t: &Tlv<'_>) -> Option<u32> {
    let v = inner(t)?;
    if v.is_empty() || v.len() > 4 {
        return None;
    }
    Some(v.iter().fold(0u32, |a, &b| (a << 8) | u32::from(b)))
}

/// One message (without TCP framing).
fn message(o: &mut super::Out<'_, '_>, data: &[u8]) {
    let Some((true, tag, t)) = outer(data) else {
        return;
    };
    match tag {
        AS_REQ | TGS_REQ => request(o, t.value),
        AS_REP | TGS_REP => o.protocol("krb5"),
        KRB_ERROR => error(o, t.value),
        _ => {}
    }
}

/// A KDC-REQ: pvno [1], msg-type [2], padata [3] OPTIONAL, req-body [4].
fn request(o: &mut super::Out<'_, '_>, data: &[u8]) {
    let seq = sequence(data, 5);
    if seq.len() < 3 {
        return;
    }
    let last = |t: &Tlv<'_>| t.value.last().copied();
    let tagged = |t: &Tlv<'_>, n: u8| t.tag & 0x20 != 0 && t.tag & 0x1f == n;
    if !tagged(&seq[0], 1) || last(&seq[0]) != Some(5) {
        return;
    }
    if !tagged(&seq[1], 2) || !matches!(last(&seq[1]), Some(AS_REQ | TGS_REQ)) {
        return;
    }
    o.protocol("krb5");
    if tagged(&seq[2], 4) {
        request_body(o, seq[2].value);
    } else if seq.len() == 4 && tagged(&seq[3], 4) {
        request_body(o, seq[3].value);
    }
}

/// Encryption type names (RFC 3961, 3962, 8009 numbers).
fn etype(n: u32) -> Option<&'static str> {
    Some(match n {
        1 => "des-cbc-crc",
        2 => "des-cbc-md4",
        3 => "des-cbc-md5",
        5 => "des3-cbc-md5",
        7 => "des3-cbc-sha1",
        16 => "des3-cbc-sha1-kd",
        17 => "aes128-cts-hmac-sha1-96",
        18 => "aes256-cts-hmac-sha1-96",
        19 => "aes128-cts-hmac-sha256-128",
        20 => "aes256-cts-hmac-sha384-192",
        23 => "rc4-hmac",
        24 => "rc4-hmac-exp",
        25 => "camellia128-cts-cmac",
        26 => "camellia256-cts-cmac",
        _ => return None,
    })
}

/// KDC-REQ-BODY: cname [1], realm [2], sname [3], etype [8].
fn request_body(o: &mut super::Out<'_, '_>, data: &[u8]) {
    let seq = sequence(data, 12);
    if seq.len() < 2 {
        return;
    }
    for t in &seq {
        match t.tag & 0x1f {
            1 => principal(o, "krb5.cname", t.value),
            2 => realm(o, t),
            3 => principal(o, "krb5.sname", t.value),
            8 => {
                for e in sequence(t.value, 20) {
                    if let Some(name) = int(&e).and_then(etype) {
                        o.s("krb5.etype", name);
                    }
                }
            }
            _ => {}
        }
    }
}

fn realm(o: &mut super::Out<'_, '_>, t: &Tlv<'_>) {
    if let Some(v) = inner(t).filter(|v| !v.is_empty()) {
        o.s("krb5.realm", &util::text(v));
    }
}

/// PrincipalName: name-type [0], name-string [1] SEQUENCE OF
/// GeneralString; one or two components (`a` or `a/b`).
fn principal(o: &mut super::Out<'_, '_>, field: &'static str, data: &[u8]) {
    let seq = sequence(data, 2);
    if seq.len() < 2 || seq[1].tag & 0x1f != 1 {
        return;
    }
    let names = sequence(seq[1].value, 2);
    match names.as_slice() {
        [a] => {
            if let Some(v) = inner(a).filter(|v| !v.is_empty()) {
                o.s(field, &util::text(v));
            }
        }
        [a, b] => {
            if let (Some(a), Some(b)) = (inner(a), inner(b)) {
                let mut v = a.to_vec();
                v.push(b'/');
                v.extend_from_slice(b);
                v.truncate(254);
                o.s(field, &util::text(&v));
            }
        }
        _ => {}
    }
}

/// Error code names (RFC 4120).
fn error_name(n: u32) -> Option<&'static str> {
    Some(match n {
        0 => "KDC_ERR_NONE",
        1 => "KDC_ERR_NAME_EXP",
        2 => "KDC_ERR_SERVICE_EXP",
        3 => "KDC_ERR_BAD_PVNO",
        4 => "KDC_ERR_C_OLD_MAST_KVNO",
        5 => "KDC_ERR_S_OLD_MAST_KVNO",
        6 => "KDC_ERR_C_PRINCIPAL_UNKNOWN",
        7 => "KDC_ERR_S_PRINCIPAL_UNKNOWN",
        8 => "KDC_ERR_PRINCIPAL_NOT_UNIQUE",
        9 => "KDC_ERR_NULL_KEY",
        10 => "KDC_ERR_CANNOT_POSTDATE",
        11 => "KDC_ERR_NEVER_VALID",
        12 => "KDC_ERR_POLICY",
        13 => "KDC_ERR_BADOPTION",
        14 => "KDC_ERR_ETYPE_NOSUPP",
        15 => "KDC_ERR_SUMTYPE_NOSUPP",
        16 => "KDC_ERR_PADATA_TYPE_NOSUPP",
        17 => "KDC_ERR_TRTYPE_NOSUPP",
        18 => "KDC_ERR_CLIENT_REVOKED",
        19 => "KDC_ERR_SERVICE_REVOKED",
        20 => "KDC_ERR_TGT_REVOKED",
        21 => "KDC_ERR_CLIENT_NOTYET",
        22 => "KDC_ERR_SERVICE_NOTYET",
        23 => "KDC_ERR_KEY_EXPIRED",
        24 => "KDC_ERR_PREAUTH_FAILED",
        25 => "KDC_ERR_PREAUTH_REQUIRED",
        26 => "KDC_ERR_SERVER_NOMATCH",
        27 => "KDC_ERR_MUST_USE_USER2USER",
        28 => "KDC_ERR_PATH_NOT_ACCEPTED",
        29 => "KDC_ERR_SVC_UNAVAILABLE",
        31 => "KRB_AP_ERR_BAD_INTEGRITY",
        32 => "KRB_AP_ERR_TKT_EXPIRED",
        33 => "KRB_AP_ERR_TKT_NYV",
        34 => "KRB_AP_ERR_REPEAT",
        35 => "KRB_AP_ERR_NOT_US",
        36 => "KRB_AP_ERR_BADMATCH",
        37 => "KRB_AP_ERR_SKEW",
        38 => "KRB_AP_ERR_BADADDR",
        39 => "KRB_AP_ERR_BADVERSION",
        40 => "KRB_AP_ERR_MSG_TYPE",
        41 => "KRB_AP_ERR_MODIFIED",
        42 => "KRB_AP_ERR_BADORDER",
        44 => "KRB_AP_ERR_BADKEYVER",
        45 => "KRB_AP_ERR_NOKEY",
        46 => "KRB_AP_ERR_MUT_FAIL",
        47 => "KRB_AP_ERR_BADDIRECTION",
        48 => "KRB_AP_ERR_METHOD",
        49 => "KRB_AP_ERR_BADSEQ",
        50 => "KRB_AP_ERR_INAPP_CKSUM",
        51 => "KRB_AP_PATH_NOT_ACCEPTED",
        52 => "KRB_ERR_RESPONSE_TOO_BIG",
        60 => "KRB_ERR_GENERIC",
        61 => "KRB_ERR_FIELD_TOOLONG",
        62 => "KDC_ERROR_CLIENT_NOT_TRUSTED",
        63 => "KDC_ERROR_KDC_NOT_TRUSTED",
        64 => "KDC_ERROR_INVALID_SIG",
        65 => "KDC_ERR_KEY_TOO_WEAK",
        66 => "KDC_ERR_CERTIFICATE_MISMATCH",
        67 => "KRB_AP_ERR_NO_TGT",
        68 => "KDC_ERR_WRONG_REALM",
        69 => "KRB_AP_ERR_USER_TO_USER_REQUIRED",
        70 => "KDC_ERR_CANT_VERIFY_CERTIFICATE",
        71 => "KDC_ERR_INVALID_CERTIFICATE",
        72 => "KDC_ERR_REVOKED_CERTIFICATE",
        73 => "KDC_ERR_REVOCATION_STATUS_UNKNOWN",
        74 => "KDC_ERR_REVOCATION_STATUS_UNAVAILABLE",
        75 => "KDC_ERR_CLIENT_NAME_MISMATCH",
        76 => "KDC_ERR_KDC_NAME_MISMATCH",
        _ => return None,
    })
}

/// KRB-ERROR: error-code [6], crealm [7], cname [8], realm [9], sname [10].
fn error(o: &mut super::Out<'_, '_>, data: &[u8]) {
    let seq = sequence(data, 13);
    if seq.len() < 2 {
        return;
    }
    o.protocol("krb5");
    for t in &seq {
        match t.tag & 0x1f {
            6 => {
                if let Some(name) = int(t).and_then(error_name) {
                    o.s("krb5.error", name);
                }
            }
            7 | 9 => realm(o, t),
            8 => principal(o, "krb5.cname", t.value),
            10 => principal(o, "krb5.sname", t.value),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::Harness;
    use serde_json::json;

    /// DER of a tag and contents (short or long length form).
    fn tlv(tag: u8, v: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if v.len() < 128 {
            out.push(v.len() as u8);
        } else if v.len() < 256 {
            out.push(0x81);
            out.push(v.len() as u8);
        } else {
            out.push(0x82);
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
        }
        out.extend_from_slice(v);
        out
    }

    fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
        parts.concat()
    }

    fn principal(names: &[&str]) -> Vec<u8> {
        let strings: Vec<Vec<u8>> = names.iter().map(|n| tlv(0x1b, n.as_bytes())).collect();
        tlv(
            0x30,
            &cat(&[
                tlv(0xa0, &tlv(0x02, &[1])),
                tlv(0xa1, &tlv(0x30, &strings.concat())),
            ]),
        )
    }

    fn as_req() -> Vec<u8> {
        let etypes = cat(&[tlv(2, &[18]), tlv(2, &[17]), tlv(2, &[23]), tlv(2, &[99])]);
        let body = tlv(
            0x30,
            &cat(&[
                tlv(0xa0, &tlv(0x03, &[0, 0x40, 0x81, 0, 0x10])),
                tlv(0xa1, &principal(&["alice"])),
                tlv(0xa2, &tlv(0x1b, b"EXAMPLE.ORG")),
                tlv(0xa3, &principal(&["krbtgt", "EXAMPLE.ORG"])),
                tlv(0xa5, &tlv(0x18, b"20370913024805Z")),
                tlv(0xa6, &tlv(0x18, b"20370913024805Z")),
                tlv(0xa7, &tlv(0x02, &[1, 2, 3, 4])),
                tlv(0xa8, &tlv(0x30, &etypes)),
            ]),
        );
        tlv(
            0x6a,
            &tlv(
                0x30,
                &cat(&[
                    tlv(0xa1, &tlv(0x02, &[5])),
                    tlv(0xa2, &tlv(0x02, &[10])),
                    tlv(0xa3, &tlv(0x30, &[])),
                    tlv(0xa4, &body),
                ]),
            ),
        )
    }

    #[test]
    fn as_req_over_udp() {
        let mut h = Harness::udp(88);
        let req = as_req();
        h.feed(0, &req);
        let j = h.json();
        assert_eq!(j["protocol"], json!(["krb5"]));
        assert_eq!(j["krb5"]["cname"], json!(["alice"]));
        assert_eq!(j["krb5"]["sname"], json!(["krbtgt/EXAMPLE.ORG"]));
        assert_eq!(j["krb5"]["realm"], json!(["EXAMPLE.ORG"]));
        assert_eq!(
            j["krb5"]["etype"],
            json!([
                "aes256-cts-hmac-sha1-96",
                "aes128-cts-hmac-sha1-96",
                "rc4-hmac"
            ])
        );
    }

    #[test]
    fn error_over_tcp_split() {
        let err = tlv(
            0x7e,
            &tlv(
                0x30,
                &cat(&[
                    tlv(0xa0, &tlv(0x02, &[5])),
                    tlv(0xa1, &tlv(0x02, &[30])),
                    tlv(0xa6, &tlv(0x02, &[25])),
                    tlv(0xa9, &tlv(0x1b, b"R.ORG")),
                    tlv(0xaa, &principal(&["host", "a.r.org"])),
                    tlv(0xab, &tlv(0x1b, &[b'x'; 100])),
                ]),
            ),
        );
        let mut rec = (err.len() as u32).to_be_bytes().to_vec();
        rec.extend_from_slice(&err);
        let mut h = Harness::tcp(88);
        let req = as_req();
        let mut first = (req.len() as u32).to_be_bytes().to_vec();
        first.extend_from_slice(&req);
        h.feed(0, &first);
        h.feed(1, &rec[..7]);
        h.feed(1, &rec[7..]);
        let j = h.json();
        assert_eq!(j["krb5"]["error"], json!(["KDC_ERR_PREAUTH_REQUIRED"]));
        assert_eq!(j["krb5"]["realm"], json!(["EXAMPLE.ORG", "R.ORG"]));
        assert_eq!(
            j["krb5"]["sname"],
            json!(["krbtgt/EXAMPLE.ORG", "host/a.r.org"])
        );
    }

    #[test]
    fn truncated_and_hostile_messages() {
        let req = as_req();
        // Every truncation of a request: no panic, no protocol from a
        // datagram whose outer length runs past its end.
        for n in 0..req.len() {
            let mut h = Harness::udp(88);
            h.feed(0, &req[..n]);
            assert!(h.app.parser_names().is_empty() || n == req.len());
        }
        // A huge TCP record length gives up instead of buffering.
        let mut h = Harness::tcp(88);
        let mut first = (req.len() as u32).to_be_bytes().to_vec();
        first.extend_from_slice(&req);
        h.feed(0, &first);
        assert_eq!(h.app.parser_names(), vec!["krb5"]);
        let mut bad = vec![0x7f, 0xff, 0xff, 0xff];
        bad.extend_from_slice(&req);
        h.feed(0, &bad);
        assert!(h.app.parser_names().is_empty());
    }
}
