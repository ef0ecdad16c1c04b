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
pub fn version_name(v: u16) -> String {
    match v {
        0x0002 => "SSLv2".into(),
        0x0300 => "SSLv3".into(),
        0x0301 => "TLSv1".into(),
        0x0302 => "TLSv1.1".into(),
        0x0303 => "TLSv1.2".into(),
        0x0304 => "TLSv1.3".into(),
        0xfeff => "DTLSv1.0".into(),
        0xfefd => "DTLSv1.2".into(),
        0xfefc => "DTLSv1.3".into(),
        v if v & 0xff00 == 0x7f00 => format!("TLSv1.3-draft-{}", v & 0xff),
        v => format!("0x{v:04x}"),
    }
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

fn join<T: std::fmt::Display>(v: impl Iterator<Item = T>, sep: &str) -> String {
    let mut s = String::new();
    for (i, x) in v.enumerate() {
        if i > 0 {
            s.push_str(sep);
        }
        s.push_str(&x.to_string());
    }
    s
}

/// JA3 string of a ClientHello.
pub fn ja3_string(ch: &ClientHello<'_>) -> String {
    format!(
        "{},{},{},{},{}",
        ch.version,
        join(ch.ciphers.iter().filter(|c| !is_grease(**c)), "-"),
        join(ch.extensions.iter().filter(|c| !is_grease(**c)), "-"),
        join(ch.groups.iter().filter(|c| !is_grease(**c)), "-"),
        join(ch.point_formats.iter(), "-"),
    )
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
    let ciphers: Vec<u16> = ch
        .ciphers
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let exts: Vec<u16> = ch
        .extensions
        .iter()
        .copied()
        .filter(|c| !is_grease(*c))
        .collect();
    let alpn = match ch.alpn.first() {
        Some(a) if !a.is_empty() => {
            let f = a[0];
            let l = a[a.len() - 1];
            if f.is_ascii_alphanumeric() && l.is_ascii_alphanumeric() {
                format!("{}{}", f as char, l as char)
            } else {
                let h = util::hex(&[f, l]);
                format!("{}{}", &h[..1], &h[3..])
            }
        }
        _ => "00".into(),
    };
    let a = format!(
        "{proto}{}{sni}{:02}{:02}{alpn}",
        ja4_version(ver),
        ciphers.len().min(99),
        exts.len().min(99)
    );
    let mut cs: Vec<String> = ciphers.iter().map(|c| format!("{c:04x}")).collect();
    cs.sort();
    let mut es: Vec<String> = exts
        .iter()
        .filter(|e| **e != 0 && **e != 16)
        .map(|e| format!("{e:04x}"))
        .collect();
    es.sort();
    let b_raw = cs.join(",");
    let mut c_raw = es.join(",");
    if !ch.sig_algs.is_empty() {
        c_raw.push('_');
        c_raw.push_str(&join(ch.sig_algs.iter().map(|s| format!("{s:04x}")), ","));
    }
    let h12 = |s: &str, empty: bool| {
        if empty {
            "000000000000".to_string()
        } else {
            util::hex(&Sha256::digest(s.as_bytes()))[..12].to_string()
        }
    };
    let ja4 = format!(
        "{a}_{}_{}",
        h12(&b_raw, cs.is_empty()),
        h12(&c_raw, es.is_empty())
    );
    let raw = format!("{a}_{b_raw}_{c_raw}");
    (ja4, raw)
}

/// Adds a ClientHello's fields.
pub(crate) fn client_hello_fields(
    o: &mut Out<'_, '_>,
    ch: &ClientHello<'_>,
    proto: char,
    ja3: bool,
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
    if ja3 {
        let s = ja3_string(ch);
        o.s("tls.ja3", &util::hex(&Md5::digest(s.as_bytes())));
        o.s("tls.ja3string", &s);
    }
    let (j, raw) = ja4(ch, proto);
    o.s("tls.ja4", &j);
    o.s("tls.ja4_r", &raw);
}

fn server_hello(o: &mut Out<'_, '_>, b: &[u8], ja3: bool) -> Option<()> {
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
    if ja3 {
        let s = format!(
            "{legacy},{cipher},{}",
            join(exts.iter().filter(|e| !is_grease(**e)), "-")
        );
        o.s("tls.ja3s", &util::hex(&Md5::digest(s.as_bytes())));
        o.s("tls.ja3sstring", &s);
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
        let ja3 = true;
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
                    client_hello_fields(&mut o, &ch, proto_char, !self.dtls && ja3);
                }
            }
            // Arkime reads DTLS client hellos only.
            2 if !self.dtls => {
                if let Some(p) = self.proto() {
                    o.protocol(p);
                }
                let _ = server_hello(&mut o, body, ja3);
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

    fn records(&mut self, cx: &mut ParseContext<'_>, d: usize) {
        let hdr = if self.dtls { 13 } else { 5 };
        loop {
            let buf = &self.rec[d];
            if buf.len() < hdr {
                return;
            }
            let ctype = buf[0];
            let len = usize::from(u16::from_be_bytes([buf[hdr - 2], buf[hdr - 1]]));
            if buf.len() < hdr + len {
                return;
            }
            let body: Vec<u8> = buf[hdr..hdr + len].to_vec();
            self.rec[d].drain(..hdr + len);
            match ctype {
                22 => {
                    if self.dtls {
                        // DTLS handshake header is 12 bytes; fragments
                        // of the first message only.
                        let mut at = 0;
                        while let (Some(&t), Some(l)) = (body.get(at), be24(&body, at + 1)) {
                            let frag_len = be24(&body, at + 9).unwrap_or(0) as usize;
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
                        return;
                    }
                    self.hs[d].extend_from_slice(&body);
                    loop {
                        let hs = &self.hs[d];
                        let (Some(&t), Some(l)) = (hs.first(), be24(hs, 1)) else {
                            break;
                        };
                        let l = l as usize;
                        if l > MAX_HANDSHAKE {
                            self.done[d] = true;
                            return;
                        }
                        if hs.len() < 4 + l {
                            break;
                        }
                        let msg: Vec<u8> = hs[4..4 + l].to_vec();
                        self.hs[d].drain(..4 + l);
                        self.handshake(cx, t, &msg);
                    }
                }
                20 | 23 => {
                    self.done[d] = true;
                    return;
                }
                21 | 24 => {}
                _ => {
                    self.done[d] = true;
                    return;
                }
            }
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
            self.rec[d].extend_from_slice(data);
            self.records(cx, d);
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
