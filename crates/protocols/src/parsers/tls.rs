//! TLS over TCP and DTLS over UDP: versions, cipher, session ids, SNI,
//! JA3/JA3S/JA4 (with raw strings), certificates.

use md5::{Digest, Md5};
use sha2::Sha256;

use super::util::{self, be16, be24};
use super::{Out, der};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Largest handshake message reassembled (certificate chains).
const MAX_HANDSHAKE: usize = 256 * 1024;

/// Registers TLS (record header of a handshake) and DTLS classifiers.
pub fn register(set: &mut ClassifierSet) {
    for v in [0u8, 1, 2, 3, 4] {
        set.add_tcp(
            "tls",
            0,
            &[0x16, 0x03, v],
            ClassifyAction::Native(classify_tcp),
        );
    }
    set.add_tcp(
        "tls",
        0,
        &[0x16, 0x02, 0x00],
        ClassifyAction::Native(classify_tcp),
    );
    for v in [0xffu8, 0xfd, 0xfc] {
        set.add_udp(
            "dtls",
            0,
            &[0x16, 0xfe, v],
            ClassifyAction::Native(classify_udp),
        );
    }
    // OpenSSL's pre-RFC DTLS (record version 1.0 = 0x0100).
    set.add_udp(
        "dtls",
        0,
        &[0x16, 0x01, 0x00],
        ClassifyAction::Native(classify_udp),
    );
}

fn classify_tcp(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    // A handshake record whose first message is a Client/Server Hello.
    if data.len() < 6 || !matches!(data[5], 1 | 2) {
        return;
    }
    if !cx.has_parser("tls") {
        cx.attach(Box::new(Tls::new(false)));
    }
}

fn classify_udp(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if data.len() < 14 {
        return;
    }
    if !cx.has_parser("tls") {
        cx.attach(Box::new(Tls::new(true)));
    }
}

fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

/// Arkime's name of a TLS version.
pub fn version_name(v: u16) -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed(match v {
        0x0002 => "SSLv2",
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLSv1.1",
        0x0303 => "TLSv1.2",
        0x0304 => "TLSv1.3",
        0xfeff => "DTLSv1.0",
        0xfefd => "DTLSv1.2",
        0xfefc => "DTLSv1.3",
        v if v & 0xff00 == 0x7f00 => return format!("TLSv1.3-draft-{}", v & 0xff).into(),
        v => return format!("0x{v:04x}").into(),
    })
}

fn ja4_version(v: u16) -> &'static str {
    match v {
        0x0304 => "13",
        0x0303 => "12",
        0x0302 => "11",
        0x0301 => "10",
        0x0300 => "s3",
        0x0002 => "s2",
        0xfeff => "d1",
        0xfefd => "d2",
        0xfefc => "d3",
        _ => "00",
    }
}

/// IANA names of the cipher suites Arkime names.
pub fn cipher_name(c: u16) -> Option<&'static str> {
    Some(match c {
        0x0000 => "TLS_NULL_WITH_NULL_NULL",
        0x0001 => "TLS_RSA_WITH_NULL_MD5",
        0x0002 => "TLS_RSA_WITH_NULL_SHA",
        0x0004 => "TLS_RSA_WITH_RC4_128_MD5",
        0x0005 => "TLS_RSA_WITH_RC4_128_SHA",
        0x000a => "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        0x0016 => "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0x002f => "TLS_RSA_WITH_AES_128_CBC_SHA",
        0x0032 => "TLS_DHE_DSS_WITH_AES_128_CBC_SHA",
        0x0033 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA",
        0x0035 => "TLS_RSA_WITH_AES_256_CBC_SHA",
        0x0038 => "TLS_DHE_DSS_WITH_AES_256_CBC_SHA",
        0x0039 => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA",
        0x003c => "TLS_RSA_WITH_AES_128_CBC_SHA256",
        0x003d => "TLS_RSA_WITH_AES_256_CBC_SHA256",
        0x0067 => "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256",
        0x006b => "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256",
        0x0084 => "TLS_RSA_WITH_CAMELLIA_256_CBC_SHA",
        0x0041 => "TLS_RSA_WITH_CAMELLIA_128_CBC_SHA",
        0x009c => "TLS_RSA_WITH_AES_128_GCM_SHA256",
        0x009d => "TLS_RSA_WITH_AES_256_GCM_SHA384",
        0x009e => "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        0x009f => "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
        0x1301 => "TLS_AES_128_GCM_SHA256",
        0x1302 => "TLS_AES_256_GCM_SHA384",
        0x1303 => "TLS_CHACHA20_POLY1305_SHA256",
        0x1304 => "TLS_AES_128_CCM_SHA256",
        0x1305 => "TLS_AES_128_CCM_8_SHA256",
        0xc007 => "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        0xc009 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
        0xc00a => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
        0xc011 => "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        0xc012 => "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        0xc013 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        0xc014 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
        0xc023 => "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        0xc024 => "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384",
        0xc027 => "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        0xc028 => "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
        0xc02b => "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        0xc02c => "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
        0xc02f => "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        0xc030 => "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
        0xcca8 => "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        0xcca9 => "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
        0xccaa => "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
        _ => return None,
    })
}

/// What a ClientHello says (borrowed).
#[derive(Debug, Default)]
pub struct ClientHello<'a> {
    /// Legacy version.
    pub version: u16,
    /// Session id.
    pub session_id: &'a [u8],
    /// Cipher suites in order.
    pub ciphers: Vec<u16>,
    /// Extension types in order.
    pub extensions: Vec<u16>,
    /// Supported groups.
    pub groups: Vec<u16>,
    /// EC point formats.
    pub point_formats: Vec<u8>,
    /// Server name.
    pub sni: Option<&'a [u8]>,
    /// ALPN protocols.
    pub alpn: Vec<&'a [u8]>,
    /// Signature algorithms in order.
    pub sig_algs: Vec<u16>,
    /// Supported versions.
    pub versions: Vec<u16>,
}

/// Parses a ClientHello body (after the 4-byte handshake header); `dtls`
/// skips the cookie.
pub fn client_hello(b: &[u8], dtls: bool) -> Option<ClientHello<'_>> {
    let mut ch = ClientHello {
        version: be16(b, 0)?,
        ..Default::default()
    };
    let mut at = 34;
    let sid_len = usize::from(*b.get(at)?);
    ch.session_id = b.get(at + 1..at + 1 + sid_len)?;
    at += 1 + sid_len;
    if dtls {
        let cookie = usize::from(*b.get(at)?);
        at += 1 + cookie;
    }
    let cs_len = usize::from(be16(b, at)?);
    let cs = b.get(at + 2..at + 2 + cs_len)?;
    ch.ciphers = cs
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]))
        .collect();
    at += 2 + cs_len;
    let comp = usize::from(*b.get(at)?);
    at += 1 + comp;
    let Some(ext_len) = be16(b, at) else {
        return Some(ch);
    };
    let exts = b.get(at + 2..(at + 2 + usize::from(ext_len)).min(b.len()))?;
    let mut e = 0;
    while e + 4 <= exts.len() {
        let t = be16(exts, e)?;
        let l = usize::from(be16(exts, e + 2)?);
        let Some(v) = exts.get(e + 4..e + 4 + l) else {
            break;
        };
        ch.extensions.push(t);
        match t {
            // server_name list: first host_name entry.
            0 if v.len() >= 5 && v[2] == 0 => {
                let n = usize::from(be16(v, 3)?);
                ch.sni = v.get(5..5 + n);
            }
            10 => {
                if let Some(l) = be16(v, 0) {
                    let list = v.get(2..2 + usize::from(l)).unwrap_or(&[]);
                    ch.groups = list
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                }
            }
            11 => {
                if let Some(&l) = v.first() {
                    ch.point_formats = v.get(1..1 + usize::from(l)).unwrap_or(&[]).to_vec();
                }
            }
            13 => {
                if let Some(l) = be16(v, 0) {
                    let list = v.get(2..2 + usize::from(l)).unwrap_or(&[]);
                    ch.sig_algs = list
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                }
            }
            16 => {
                let mut p = 2;
                while let Some(&n) = v.get(p) {
                    let Some(s) = v.get(p + 1..p + 1 + usize::from(n)) else {
                        break;
                    };
                    ch.alpn.push(s);
                    p += 1 + usize::from(n);
                }
            }
            43 => {
                if let Some(&l) = v.first() {
                    let list = v.get(1..1 + usize::from(l)).unwrap_or(&[]);
                    ch.versions = list
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                }
            }
            _ => {}
        }
        e += 4 + l;
    }
    Some(ch)
}

/// Appends numbers in decimal, `-` between them.
fn push_dec_list(s: &mut String, v: impl Iterator<Item = u64>) {
    for (i, x) in v.enumerate() {
        if i > 0 {
            s.push('-');
        }
        util::push_dec(s, x);
    }
}

/// Appends numbers as four hex digits, `,` between them.
fn push_hex4_list(s: &mut String, v: &[u16]) {
    for (i, x) in v.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        util::push_hex4(s, *x);
    }
}

/// The non-GREASE values of a list, as numbers.
fn not_grease(v: &[u16]) -> impl Iterator<Item = u64> + '_ {
    v.iter().filter(|c| !is_grease(**c)).map(|&c| u64::from(c))
}

/// JA3 string of a ClientHello.
pub fn ja3_string(ch: &ClientHello<'_>) -> String {
    let mut s = String::with_capacity(
        8 + 6 * (ch.ciphers.len() + ch.extensions.len() + ch.groups.len())
            + 4 * ch.point_formats.len(),
    );
    util::push_dec(&mut s, u64::from(ch.version));
    s.push(',');
    push_dec_list(&mut s, not_grease(&ch.ciphers));
    s.push(',');
    push_dec_list(&mut s, not_grease(&ch.extensions));
    s.push(',');
    push_dec_list(&mut s, not_grease(&ch.groups));
    s.push(',');
    push_dec_list(&mut s, ch.point_formats.iter().map(|&p| u64::from(p)));
    s
}

/// JA4 and its raw form; `proto` is `t`, `q` or `d`.
pub fn ja4(ch: &ClientHello<'_>, proto: char) -> (String, String) {
    let ver = ch
        .versions
        .iter()
        .copied()
        .filter(|v| !is_grease(*v))
        .max()
        .unwrap_or(ch.version);
    let sni = if ch.sni.is_some() { 'd' } else { 'i' };
    // Sorting the numbers sorts their fixed-width hex forms the same way.
    let mut cs: Vec<u16> = ch
        .ciphers
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let mut es: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let two = |s: &mut String, n: usize| {
        let n = n.min(99) as u8;
        s.push(char::from(b'0' + n / 10));
        s.push(char::from(b'0' + n % 10));
    };
    let mut a = String::with_capacity(10);
    a.push(proto);
    a.push_str(ja4_version(ver));
    a.push(sni);
    two(&mut a, cs.len());
    two(&mut a, es.len());
    match ch.alpn.first() {
        Some(x) if !x.is_empty() => {
            let f = x[0];
            let l = x[x.len() - 1];
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                a.push(f as char);
                a.push(l as char);
            } else {
                // First hex digit of the first byte, last of the last.
                const H: &[u8; 16] = b"0123456789abcdef";
                a.push(H[usize::from(f >> 4)] as char);
                a.push(H[usize::from(l & 15)] as char);
            }
        }
        _ => a.push_str("00"),
    }
    cs.sort_unstable();
    es.retain(|e| *e != 0 && *e != 16);
    es.sort_unstable();
    let mut raw =
        String::with_capacity(a.len() + 2 + 5 * (cs.len() + es.len() + ch.sig_algs.len()));
    raw.push_str(&a);
    raw.push('_');
    let b_at = raw.len();
    push_hex4_list(&mut raw, &cs);
    let b_end = raw.len();
    raw.push('_');
    let c_at = raw.len();
    push_hex4_list(&mut raw, &es);
    if !ch.sig_algs.is_empty() {
        raw.push('_');
        push_hex4_list(&mut raw, &ch.sig_algs);
    }
    let mut ja4 = String::with_capacity(a.len() + 26);
    ja4.push_str(&a);
    for (part, empty) in [
        (&raw[b_at..b_end], cs.is_empty()),
        (&raw[c_at..], es.is_empty()),
    ] {
        ja4.push('_');
        if empty {
            ja4.push_str("000000000000");
        } else {
            util::push_hex(&mut ja4, &Sha256::digest(part.as_bytes())[..6]);
        }
    }
    (ja4, raw)
}

/// Which fingerprints a hello adds, from the settings: JA3 (not for
/// DTLS), the JA3/JA3S strings with `ja3Strings` and JA4's raw form with
/// `ja4Raw` (both off by default, as in Arkime).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fingerprints {
    pub ja3: bool,
    pub ja3_strings: bool,
    pub ja4_raw: bool,
}

impl Fingerprints {
    /// The settings' choice, with JA3 on or off.
    pub(crate) fn from_settings(s: &crate::analyzer::ParserSettings, ja3: bool) -> Fingerprints {
        Fingerprints {
            ja3,
            ja3_strings: s.ja3_strings,
            ja4_raw: s.ja4_raw,
        }
    }
}

/// Adds a ClientHello's fields.
pub(crate) fn client_hello_fields(
    o: &mut Out<'_, '_>,
    ch: &ClientHello<'_>,
    proto: char,
    fp: Fingerprints,
) {
    if let Some(sni) = ch.sni {
        o.s("host.http", &util::text(sni));
    }
    if ch.extensions.contains(&0xfe0d) {
        o.tag("tls:has_ech");
    }
    if !ch.session_id.is_empty() {
        o.s("tls.sessionid.src", &util::hex(ch.session_id));
    }
    if fp.ja3 {
        let s = ja3_string(ch);
        o.s("tls.ja3", &util::hex(&Md5::digest(s.as_bytes())));
        if fp.ja3_strings {
            o.s("tls.ja3string", &s);
        }
    }
    let (j, raw) = ja4(ch, proto);
    o.s("tls.ja4", &j);
    if fp.ja4_raw {
        o.s("tls.ja4_r", &raw);
    }
}

fn server_hello(o: &mut Out<'_, '_>, b: &[u8], fp: Fingerprints) -> Option<()> {
    let legacy = be16(b, 0)?;
    // TLS 1.3 drafts before 22 had no session id or compression method.
    let early_draft = legacy & 0xff00 == 0x7f00 && (legacy & 0xff) < 22;
    let (sid, mut at) = if early_draft {
        (&b[0..0], 34)
    } else {
        let sid_len = usize::from(*b.get(34)?);
        (b.get(35..35 + sid_len)?, 35 + sid_len)
    };
    let cipher = be16(b, at)?;
    at += if early_draft { 2 } else { 3 };
    let mut exts = Vec::new();
    let mut version = legacy;
    if let Some(el) = be16(b, at) {
        let list = b
            .get(at + 2..(at + 2 + usize::from(el)).min(b.len()))
            .unwrap_or(&[]);
        let mut e = 0;
        while e + 4 <= list.len() {
            let t = be16(list, e)?;
            let l = usize::from(be16(list, e + 2)?);
            if t == 43 && l == 2 {
                version = be16(list, e + 4)?;
            }
            exts.push(t);
            e += 4 + l;
        }
    }
    o.s("tls.version", &version_name(version));
    match cipher_name(cipher) {
        Some(n) => o.s("tls.cipher", n),
        None => o.s("tls.cipher", &format!("{cipher:04X}")),
    };
    if !sid.is_empty() {
        o.s("tls.sessionid.dst", &util::hex(sid));
    }
    if fp.ja3 {
        let mut s = String::with_capacity(16 + 6 * exts.len());
        util::push_dec(&mut s, u64::from(legacy));
        s.push(',');
        util::push_dec(&mut s, u64::from(cipher));
        s.push(',');
        push_dec_list(&mut s, not_grease(&exts));
        o.s("tls.ja3s", &util::hex(&Md5::digest(s.as_bytes())));
        if fp.ja3_strings {
            o.s("tls.ja3sstring", &s);
        }
    }
    Some(())
}

/// The TLS/DTLS parser of one session.
pub struct Tls {
    dtls: bool,
    rec: [Vec<u8>; 2],
    hs: [Vec<u8>; 2],
    done: [bool; 2],
    certs_done: bool,
    /// Inside another protocol (OpenVPN): no `tls` protocol of its own.
    embedded: bool,
}

impl Tls {
    fn new(dtls: bool) -> Tls {
        Tls {
            dtls,
            rec: [Vec::new(), Vec::new()],
            hs: [Vec::new(), Vec::new()],
            done: [false; 2],
            certs_done: false,
            embedded: false,
        }
    }

    /// A TLS parser fed by another parser (the session keeps that
    /// protocol's name).
    pub(crate) fn embedded() -> Tls {
        Tls {
            embedded: true,
            ..Tls::new(false)
        }
    }

    fn proto(&self) -> Option<&'static str> {
        match (self.embedded, self.dtls) {
            (true, _) => None,
            (false, true) => Some("dtls"),
            (false, false) => Some("tls"),
        }
    }

    fn handshake(&mut self, cx: &mut ParseContext<'_>, msg_type: u8, body: &[u8]) {
        let hello = Fingerprints::from_settings(cx.settings, !self.dtls);
        let server = Fingerprints { ja3: true, ..hello };
        let now = cx.meta_first_secs();
        // JA4's transport letter: QUIC-style 'q' for TLS carried over UDP.
        let proto_char = if self.dtls {
            'd'
        } else if cx.meta.transport == crate::analyzer::Transport::Udp {
            'q'
        } else {
            't'
        };
        let mut o = super::out(cx);
        match msg_type {
            1 => {
                if let Some(ch) = client_hello(body, self.dtls) {
                    if let Some(p) = self.proto() {
                        o.protocol(p);
                    }
                    client_hello_fields(&mut o, &ch, proto_char, hello);
                }
            }
            // Arkime reads DTLS client hellos only.
            2 if !self.dtls => {
                if let Some(p) = self.proto() {
                    o.protocol(p);
                }
                let _ = server_hello(&mut o, body, server);
            }
            11 if !self.certs_done => {
                self.certs_done = true;
                let Some(total) = be24(body, 0) else { return };
                let list = body
                    .get(3..(3 + total as usize).min(body.len()))
                    .unwrap_or(&[]);
                let mut ders = Vec::new();
                let mut at = 0;
                while let Some(l) = be24(list, at) {
                    let Some(der) = list.get(at + 3..at + 3 + l as usize) else {
                        break;
                    };
                    ders.push(der);
                    at += 3 + l as usize;
                }
                let n = ders.len();
                for der in ders {
                    if let Some(info) = der::certificate(der, now, n) {
                        o.object("cert", info.object);
                        // Arkime tags TLS certificates only.
                        if !self.dtls {
                            for t in info.tags {
                                o.tag(t);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Reads the complete records at the start of `buf` and returns how
    /// many bytes they took.
    fn records(&mut self, cx: &mut ParseContext<'_>, d: usize, buf: &[u8]) -> usize {
        let hdr = if self.dtls { 13 } else { 5 };
        let mut used = 0;
        loop {
            let rest = &buf[used..];
            if rest.len() < hdr {
                return used;
            }
            let ctype = rest[0];
            if !self.dtls && !matches!(ctype, 21 | 22 | 24) {
                // ChangeCipherSpec, application data or not TLS: nothing
                // more to read in this direction, so no need to wait for
                // the whole record (a DTLS datagram has it anyway).
                self.done[d] = true;
                return used;
            }
            let len = usize::from(u16::from_be_bytes([rest[hdr - 2], rest[hdr - 1]]));
            if rest.len() < hdr + len {
                return used;
            }
            let body = &rest[hdr..hdr + len];
            used += hdr + len;
            match ctype {
                22 => {
                    if self.dtls {
                        // DTLS handshake header is 12 bytes; fragments
                        // of the first message only.
                        let mut at = 0;
                        while let (Some(&t), Some(l)) = (body.get(at), be24(body, at + 1)) {
                            let frag_len = be24(body, at + 9).unwrap_or(0) as usize;
                            let frag = body.get(at + 12..at + 12 + frag_len).unwrap_or(&[]);
                            if frag_len as u32 == l {
                                self.handshake(cx, t, frag);
                            }
                            at += 12 + frag_len;
                        }
                        continue;
                    }
                    if self.hs[d].len() + body.len() > MAX_HANDSHAKE {
                        self.done[d] = true;
                        return used;
                    }
                    // Whole messages are read in place; only a partial one
                    // is kept for the next record.
                    let complete = if self.hs[d].is_empty() {
                        let n = self.messages(cx, d, body);
                        if let Some(n) = n {
                            self.hs[d].extend_from_slice(&body[n..]);
                        }
                        n.is_some()
                    } else {
                        let mut hs = std::mem::take(&mut self.hs[d]);
                        hs.extend_from_slice(body);
                        let n = self.messages(cx, d, &hs);
                        if let Some(n) = n {
                            hs.drain(..n);
                        }
                        self.hs[d] = hs;
                        n.is_some()
                    };
                    if !complete {
                        return used;
                    }
                }
                21 | 24 => {}
                _ => {
                    self.done[d] = true;
                    return used;
                }
            }
        }
    }

    /// Reads the complete handshake messages at the start of `hs`: how many
    /// bytes they took, or `None` when the direction is done (a message
    /// too large).
    fn messages(&mut self, cx: &mut ParseContext<'_>, d: usize, hs: &[u8]) -> Option<usize> {
        let mut at = 0;
        loop {
            let rest = &hs[at..];
            let (Some(&t), Some(l)) = (rest.first(), be24(rest, 1)) else {
                return Some(at);
            };
            let l = l as usize;
            if l > MAX_HANDSHAKE {
                self.done[d] = true;
                return None;
            }
            if rest.len() < 4 + l {
                return Some(at);
            }
            self.handshake(cx, t, &rest[4..4 + l]);
            at += 4 + l;
        }
    }
}

impl Parser for Tls {
    fn name(&self) -> &'static str {
        "tls"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let d = dir.index();
        if self.done[d] {
            return if self.done[0] && self.done[1] {
                ParserStatus::Done
            } else {
                ParserStatus::Continue
            };
        }
        if self.dtls {
            self.rec[d].clear();
        }
        if self.rec[d].len() + data.len() > MAX_HANDSHAKE {
            self.done[d] = true;
        } else {
            if self.rec[d].is_empty() {
                // Records are read in place; what is left waits for more.
                let used = self.records(cx, d, data);
                if !self.done[d] {
                    self.rec[d].extend_from_slice(&data[used..]);
                }
            } else {
                let mut buf = std::mem::take(&mut self.rec[d]);
                buf.extend_from_slice(data);
                let used = self.records(cx, d, &buf);
                buf.drain(..used);
                if self.done[d] {
                    buf = Vec::new();
                }
                self.rec[d] = buf;
            }
            if self.dtls {
                self.rec[d].clear();
            }
        }
        if self.done[0] && self.done[1] {
            ParserStatus::Done
        } else {
            ParserStatus::Continue
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::parsers::testutil::Harness;

    fn hello() -> Vec<u8> {
        let mut body = vec![0x03, 0x03];
        body.extend_from_slice(&[0u8; 32]);
        body.push(0); // session id
        body.extend_from_slice(&[0, 4, 0x0a, 0x0a, 0x13, 0x01]);
        body.extend_from_slice(&[1, 0]);
        let mut exts = Vec::new();
        let name = b"example.com";
        let mut sni = vec![0, (name.len() + 3) as u8, 0, 0, name.len() as u8];
        sni.extend_from_slice(name);
        exts.extend_from_slice(&[0, 0, 0, sni.len() as u8]);
        exts.extend_from_slice(&sni);
        exts.extend_from_slice(&[0, 10, 0, 4, 0, 2, 0, 29]);
        body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
        body.extend_from_slice(&exts);
        let mut hs = vec![1, 0, 0, body.len() as u8];
        hs.extend_from_slice(&body);
        let mut rec = vec![0x16, 0x03, 0x01, 0, hs.len() as u8];
        rec.extend_from_slice(&hs);
        rec
    }

    #[test]
    fn client_hello_ja3_ja4_sni() {
        let mut h = Harness::tcp(443);
        let rec = hello();
        for c in rec.chunks(7) {
            h.feed(0, c);
        }
        let j = h.json();
        assert_eq!(j["http"]["host"], serde_json::json!(["example.com"]));
        assert_eq!(
            j["tls"]["ja3string"],
            serde_json::json!(["771,4865,0-10,29,"])
        );
        assert!(j["tls"]["ja4"][0].as_str().unwrap().starts_with("t12d0102"));
        assert_eq!(j["protocol"], serde_json::json!(["tls"]));
    }

    #[test]
    fn fingerprint_strings_only_when_asked_for() {
        let mut h = Harness::tcp_defaults(443);
        h.feed(0, &hello());
        let j = h.json();
        assert_eq!(j["tls"]["ja3"].as_array().map(Vec::len), Some(1), "{j}");
        assert_eq!(j["tls"]["ja4"].as_array().map(Vec::len), Some(1), "{j}");
        assert!(j["tls"].get("ja3string").is_none(), "{j}");
        assert!(j["tls"].get("ja4_r").is_none(), "{j}");
        // ja3Strings / ja4Raw turn them on (Harness::tcp).
        let mut h = Harness::tcp(443);
        h.feed(0, &hello());
        let j = h.json();
        assert!(
            j["tls"]["ja4_r"][0]
                .as_str()
                .is_some_and(|r| r.starts_with("t12d010200_")),
            "{j}"
        );
    }

    #[test]
    fn truncated_and_hostile() {
        let rec = hello();
        for n in 0..rec.len() {
            let mut h = Harness::tcp(443);
            h.feed(0, &rec[..n]);
            h.finish();
        }
        let mut h = Harness::tcp(443);
        h.feed(0, &[0x16, 0x03, 0x01, 0xff, 0xff, 0x0b, 0xff, 0xff, 0xff]);
        h.feed(1, &[0x16, 0x03, 0x01, 0x00, 0x04, 0x0b, 0xff, 0xff, 0xff]);
        let mut h = Harness::udp(443);
        h.feed(
            0,
            &[
                0x16, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 0xff, 0xff,
            ],
        );
    }
}
