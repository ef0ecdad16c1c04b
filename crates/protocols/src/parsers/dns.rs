//! DNS over UDP and TCP (length framing): one `dns` object per query and
//! its response, with answers (`dnsOutputAnswers`), flags, opcode, status,
//! punycode hosts and the record types Arkime formats.

use std::net::IpAddr;

use std::borrow::Cow;

use serde_json::{Map, Value as Json, json};

use super::util::{self, be16, be32};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus, Transport};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Most DNS objects kept per session.
const MAX_OBJECTS: usize = 256;
/// Most records read per message.
const MAX_RECORDS: usize = 512;
/// Largest TCP DNS message (the length prefix is 16 bits).
const MAX_TCP: usize = 65535 + 2;

/// Registers DNS on port 53 (UDP and TCP) and multicast DNS on 5353.
pub fn register(set: &mut ClassifierSet) {
    set.add_udp_port("dns", 53, ClassifyAction::Native(classify_udp));
    set.add_tcp_port("dns", 53, ClassifyAction::Native(classify_tcp));
    set.add_udp_port("dns", 5353, ClassifyAction::Native(classify_mdns));
    set.add_udp_port("dns", 5355, ClassifyAction::Native(classify_llmnr));
}

fn looks_like_dns(d: &[u8]) -> bool {
    d.len() >= 12 && be16(d, 4).is_some_and(|q| q <= 16) && (d[2] >> 3) & 0x0f <= 6
}

fn classify_udp(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if looks_like_dns(data) && !cx.has_parser("dns") {
        cx.add_protocol("dns");
        cx.attach(Box::new(Dns::new(
            cx.settings.dns_output_answers,
            cx.settings.dns_record_all,
            false,
        )));
    }
}

fn classify_mdns(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if cx.meta.src_port == 53 || cx.meta.dst_port == 53 {
        return;
    }
    if looks_like_dns(data) && !cx.has_parser("dns") {
        cx.add_protocol("mdns");
        cx.attach(Box::new(Dns::new(
            cx.settings.dns_output_answers,
            cx.settings.dns_record_all,
            false,
        )));
    }
}

fn classify_llmnr(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if looks_like_dns(data) && !cx.has_parser("dns") {
        cx.add_protocol("llmnr");
        cx.attach(Box::new(Dns::new(
            cx.settings.dns_output_answers,
            cx.settings.dns_record_all,
            false,
        )));
    }
}

fn classify_tcp(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if data.len() >= 14 && looks_like_dns(&data[2..]) && !cx.has_parser("dns") {
        cx.add_protocol("dns");
        cx.attach(Box::new(Dns::new(
            cx.settings.dns_output_answers,
            cx.settings.dns_record_all,
            true,
        )));
    }
}

/// Reads a possibly compressed name at `at`; returns it (dotted, without
/// the final dot, empty for the root) and the offset after it.
pub fn name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut out = String::with_capacity(64);
    let mut end = None;
    let mut jumps = 0;
    loop {
        let len = *msg.get(at)?;
        match len & 0xc0 {
            0xc0 => {
                let ptr = usize::from(be16(msg, at)? & 0x3fff);
                if end.is_none() {
                    end = Some(at + 2);
                }
                jumps += 1;
                if jumps > 64 {
                    return None;
                }
                at = ptr;
            }
            0 => {
                if len == 0 {
                    return Some((out, end.unwrap_or(at + 1)));
                }
                let label = msg.get(at + 1..at + 1 + usize::from(len))?;
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(&util::text_cow(label));
                if out.len() > 1024 {
                    return None;
                }
                at += 1 + usize::from(len);
            }
            _ => return None,
        }
    }
}

/// RFC 3492 punycode decoding of one label (without `xn--`).
pub fn punycode_decode(input: &str) -> Option<String> {
    const BASE: u32 = 36;
    let (basic, ext) = match input.rfind('-') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => ("", input),
    };
    let mut out: Vec<char> = basic.chars().collect();
    if !basic.is_ascii() {
        return None;
    }
    let (mut n, mut i, mut bias) = (128u32, 0u32, 72u32);
    let mut it = ext.bytes().peekable();
    while it.peek().is_some() {
        let old_i = i;
        let mut w = 1u32;
        let mut k = BASE;
        loop {
            let c = it.next()?;
            let digit = match c {
                b'a'..=b'z' => u32::from(c - b'a'),
                b'A'..=b'Z' => u32::from(c - b'A'),
                b'0'..=b'9' => u32::from(c - b'0') + 26,
                _ => return None,
            };
            i = i.checked_add(digit.checked_mul(w)?)?;
            let t = if k <= bias {
                1
            } else if k >= bias + 26 {
                26
            } else {
                k - bias
            };
            if digit < t {
                break;
            }
            w = w.checked_mul(BASE - t)?;
            k += BASE;
        }
        let len = out.len() as u32 + 1;
        let mut delta = if old_i == 0 {
            (i - old_i) / 700
        } else {
            (i - old_i) / 2
        };
        delta += delta / len;
        let mut k2 = 0;
        while delta > ((BASE - 1) * 26) / 2 {
            delta /= BASE - 1;
            k2 += BASE;
        }
        bias = k2 + (BASE * delta) / (delta + 38);
        n = n.checked_add(i / len)?;
        i %= len;
        out.insert(i as usize, char::from_u32(n)?);
        i += 1;
        if out.len() > 256 {
            return None;
        }
    }
    Some(out.into_iter().collect())
}

/// A host name with `xn--` labels decoded; also whether any were.
fn unpuny(host: &str) -> (String, bool) {
    if !host.contains("xn--") {
        return (host.to_string(), false);
    }
    unpuny_labels(host)
}

fn unpuny_labels(host: &str) -> (String, bool) {
    let mut any = false;
    let labels: Vec<String> = host
        .split('.')
        .map(|l| match l.strip_prefix("xn--").and_then(punycode_decode) {
            Some(u) => {
                any = true;
                u
            }
            None => l.to_string(),
        })
        .collect();
    (labels.join("."), any)
}

fn type_name(t: u16) -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed(match t {
        1 => "A",
        2 => "NS",
        5 => "CNAME",
        6 => "SOA",
        12 => "PTR",
        13 => "HINFO",
        15 => "MX",
        16 => "TXT",
        28 => "AAAA",
        33 => "SRV",
        35 => "NAPTR",
        39 => "DNAME",
        41 => "OPT",
        43 => "DS",
        46 => "RRSIG",
        47 => "NSEC",
        48 => "DNSKEY",
        50 => "NSEC3",
        52 => "TLSA",
        64 => "SVCB",
        65 => "HTTPS",
        99 => "SPF",
        251 => "IXFR",
        252 => "AXFR",
        255 => "ANY",
        257 => "CAA",
        _ => return t.to_string().into(),
    })
}

fn class_name(c: u16) -> std::borrow::Cow<'static, str> {
    std::borrow::Cow::Borrowed(match c & 0x7fff {
        1 => "IN",
        3 => "CH",
        4 => "HS",
        254 => "NONE",
        255 => "ANY",
        c => return c.to_string().into(),
    })
}

fn opcode_name(o: u8) -> &'static str {
    match o {
        0 => "QUERY",
        1 => "IQUERY",
        2 => "STATUS",
        4 => "NOTIFY",
        5 => "UPDATE",
        _ => "UNKNOWN",
    }
}

fn rcode_name(r: u8) -> &'static str {
    match r {
        0 => "NOERROR",
        1 => "FORMERR",
        2 => "SERVFAIL",
        3 => "NXDOMAIN",
        4 => "NOTIMPL",
        5 => "REFUSED",
        6 => "YXDOMAIN",
        7 => "YXRRSET",
        8 => "NXRRSET",
        9 => "NOTAUTH",
        10 => "NOTZONE",
        _ => "UNKNOWN",
    }
}

fn expanded_v6(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() / 2 * 5);
    for (i, c) in b.chunks_exact(2).enumerate() {
        if i > 0 {
            s.push(':');
        }
        util::push_hex(&mut s, c);
    }
    s
}

/// Dotted decimal of an IPv4 address (as `Ipv4Addr`'s `Display`, without
/// the formatting machinery).
fn ipv4_text(a: [u8; 4]) -> String {
    let mut s = String::with_capacity(15);
    for (i, x) in a.iter().enumerate() {
        if i > 0 {
            s.push('.');
        }
        util::push_dec(&mut s, u64::from(*x));
    }
    s
}

fn root(n: String) -> String {
    if n.is_empty() { "<root>".into() } else { n }
}

/// Type bitmap names of NSEC/NSEC3.
fn bitmap(mut b: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while b.len() >= 2 {
        let (win, len) = (u16::from(b[0]), usize::from(b[1]));
        let Some(bits) = b.get(2..2 + len) else { break };
        for (i, byte) in bits.iter().enumerate() {
            for bit in 0..8 {
                if byte & (0x80 >> bit) != 0 {
                    out.push(type_name(win * 256 + (i as u16) * 8 + bit).into_owned());
                }
            }
        }
        b = &b[2 + len..];
    }
    out
}

fn svc_params(mut p: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    while p.len() >= 4 {
        let key = be16(p, 0).unwrap_or(0);
        let len = usize::from(be16(p, 2).unwrap_or(0));
        let Some(v) = p.get(4..4 + len) else { break };
        let s = match key {
            0 => format!(
                "mandatory={}",
                v.chunks_exact(2)
                    .map(|c| type_name(u16::from_be_bytes([c[0], c[1]])))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            1 => {
                let mut ids = Vec::new();
                let mut a = 0;
                while let Some(&l) = v.get(a) {
                    let Some(id) = v.get(a + 1..a + 1 + usize::from(l)) else {
                        break;
                    };
                    ids.push(util::text(id));
                    a += 1 + usize::from(l);
                }
                format!("alpn={}", ids.join(","))
            }
            2 => "no-default-alpn".into(),
            3 => format!("port={}", be16(v, 0).unwrap_or(0)),
            4 => format!(
                "ipv4hint={}",
                v.chunks_exact(4)
                    .map(|c| std::net::Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            5 => {
                use base64::Engine;
                format!(
                    "ech={}",
                    base64::engine::general_purpose::STANDARD.encode(v)
                )
            }
            6 => format!(
                "ipv6hint={}",
                v.chunks_exact(16)
                    .map(|c| {
                        let a: [u8; 16] = c.try_into().unwrap_or([0; 16]);
                        std::net::Ipv6Addr::from(a).to_string()
                    })
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            k => format!("key{k}"),
        };
        out.push(s);
        p = &p[4 + len..];
    }
    out
}

/// One DNS transaction being built.
struct Txn {
    id: u16,
    qname: String,
    qtype: u16,
    opcode: &'static str,
    /// `queryHost`.
    query_host: String,
    /// `qt` and `qc`, when the message had a question.
    question: Option<(Cow<'static, str>, Cow<'static, str>)>,
    /// `status` of the last response.
    status: Option<&'static str>,
    /// `headerFlags` of the last response that had any.
    header_flags: Option<([&'static str; 6], usize)>,
    hosts: Vec<String>,
    ips: Vec<String>,
    ns_hosts: Vec<String>,
    ns_ips: Vec<String>,
    mx_hosts: Vec<String>,
    puny: Vec<String>,
    answers: Vec<Json>,
    responded: bool,
}

impl Txn {
    /// Adds a host name (already lower-cased, `xn--` labels decoded; the
    /// encoded name goes to `puny`).
    fn add_lower_host(&mut self, lower: &str) {
        if lower.is_empty() {
            return;
        }
        if !lower.contains("xn--") {
            if !self.hosts.iter().any(|h| h == lower) {
                self.hosts.push(lower.to_string());
            }
            return;
        }
        let (u, was) = unpuny(lower);
        if was && !self.puny.iter().any(|p| p == lower) {
            self.puny.push(lower.to_string());
        }
        if !self.hosts.contains(&u) {
            self.hosts.push(u);
        }
    }

    /// The transaction's `dns` object as JSON text, exactly as
    /// `serde_json` writes the object (members in key order), without
    /// building the object: its keys and values were a dozen or more
    /// allocations per transaction.
    fn text(&self) -> String {
        // A transaction's object is a few hundred bytes: one allocation
        // instead of growing from 8 bytes.
        let mut w = ObjectText {
            buf: Vec::with_capacity(384),
        };
        if self.responded {
            if !self.answers.is_empty() {
                w.key("answers");
                w.buf.push(b'[');
                for (i, a) in self.answers.iter().enumerate() {
                    if i > 0 {
                        w.buf.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut w.buf, a);
                }
                w.buf.push(b']');
            }
            w.key("answersCnt");
            w.num(self.answers.len() as u64);
        }
        if let Some((flags, n)) = &self.header_flags {
            w.key("headerFlags");
            w.strs(&flags[..*n]);
        }
        w.list("host", "hostCnt", &self.hosts);
        w.list("ip", "ipCnt", &self.ips);
        w.list("mailserverHost", "mailserverHostCnt", &self.mx_hosts);
        w.list("nameserverHost", "nameserverHostCnt", &self.ns_hosts);
        w.list("nameserverIp", "nameserverIpCnt", &self.ns_ips);
        w.key("opcode");
        w.str(self.opcode);
        w.list("puny", "punyCnt", &self.puny);
        if let Some((qt, qc)) = &self.question {
            w.key("qc");
            w.str(qc);
            w.key("qt");
            w.str(qt);
        }
        w.key("queryHost");
        w.str(&self.query_host);
        if let Some(status) = self.status {
            w.key("status");
            w.str(status);
        }
        w.finish()
    }
}

/// A JSON object written member by member; the caller gives the members
/// in key order. Strings go through `serde_json`'s own escaping, so the
/// text is what `serde_json` writes for the same object.
struct ObjectText {
    buf: Vec<u8>,
}

impl ObjectText {
    /// A member's key: one of this module's names, which need no escaping.
    fn key(&mut self, k: &'static str) {
        self.buf.push(if self.buf.is_empty() { b'{' } else { b',' });
        self.buf.push(b'"');
        self.buf.extend_from_slice(k.as_bytes());
        self.buf.extend_from_slice(b"\":");
    }

    fn str(&mut self, s: &str) {
        let _ = serde_json::to_writer(&mut self.buf, s);
    }

    fn num(&mut self, n: u64) {
        self.buf
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    fn strs<S: AsRef<str>>(&mut self, v: &[S]) {
        self.buf.push(b'[');
        for (i, s) in v.iter().enumerate() {
            if i > 0 {
                self.buf.push(b',');
            }
            self.str(s.as_ref());
        }
        self.buf.push(b']');
    }

    /// A non-empty list and its count.
    fn list(&mut self, k: &'static str, count: &'static str, v: &[String]) {
        if !v.is_empty() {
            self.key(k);
            self.strs(v);
            self.key(count);
            self.num(v.len() as u64);
        }
    }

    fn finish(mut self) -> String {
        if self.buf.is_empty() {
            self.buf.push(b'{');
        }
        self.buf.push(b'}');
        // serde_json writes UTF-8 only.
        String::from_utf8(self.buf)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }
}

fn push_unique(v: &mut Vec<String>, s: String) {
    if !v.contains(&s) {
        v.push(s);
    }
}

/// The DNS parser of one session.
pub struct Dns {
    answers: bool,
    /// `parseDNSRecordAll`: authority and additional records too (always
    /// for UPDATE, whose prerequisites and updates sit there).
    record_all: bool,
    tcp: bool,
    buf: [Vec<u8>; 2],
    txns: Vec<Txn>,
}

impl Dns {
    fn new(answers: bool, record_all: bool, tcp: bool) -> Dns {
        Dns {
            answers,
            record_all,
            tcp,
            buf: [Vec::new(), Vec::new()],
            txns: Vec::new(),
        }
    }

    fn message(&mut self, m: &[u8]) -> Option<()> {
        if m.len() < 12 {
            return None;
        }
        let id = be16(m, 0)?;
        let flags = be16(m, 2)?;
        let qr = flags & 0x8000 != 0;
        let opcode = ((flags >> 11) & 0x0f) as u8;
        let rcode = (flags & 0x0f) as u8;
        let qd = usize::from(be16(m, 4)?);
        let an = usize::from(be16(m, 6)?);
        // As in Arkime, authority and additional records are read only
        // with parseDNSRecordAll, or for UPDATE.
        let (ns, ar) = if self.record_all || opcode == 5 {
            (usize::from(be16(m, 8)?), usize::from(be16(m, 10)?))
        } else {
            (0, 0)
        };
        let mut at = 12;
        let mut qname = None;
        let mut qtype = 0;
        let mut qclass = 0;
        for i in 0..qd.min(16) {
            let (n, next) = name(m, at)?;
            let t = be16(m, next)?;
            let c = be16(m, next + 2)?;
            at = next + 4;
            if i == 0 {
                qname = Some(n);
                qtype = t;
                qclass = c;
            }
        }
        let key_name = qname.as_deref().unwrap_or_default().to_lowercase();
        let idx = match self
            .txns
            .iter()
            .position(|t| t.id == id && t.qname == key_name && t.qtype == qtype)
        {
            Some(i) => i,
            None => {
                if self.txns.len() >= MAX_OBJECTS {
                    return None;
                }
                let mut t = Txn {
                    id,
                    qname: key_name.clone(),
                    qtype,
                    opcode: opcode_name(opcode),
                    query_host: String::new(),
                    question: None,
                    status: None,
                    header_flags: None,
                    hosts: Vec::new(),
                    ips: Vec::new(),
                    ns_hosts: Vec::new(),
                    ns_ips: Vec::new(),
                    mx_hosts: Vec::new(),
                    puny: Vec::new(),
                    answers: Vec::new(),
                    responded: false,
                };
                match &qname {
                    Some(_) => {
                        // key_name is the query name lower-cased.
                        let (u, _) = unpuny(&key_name);
                        t.query_host = root(u);
                        t.question = Some((type_name(qtype), class_name(qclass)));
                        t.add_lower_host(&key_name);
                    }
                    None => {
                        t.query_host = "<root>".into();
                    }
                }
                self.txns.push(t);
                self.txns.len() - 1
            }
        };
        if !qr {
            return Some(());
        }
        let t = &mut self.txns[idx];
        t.responded = true;
        t.status = Some(rcode_name(rcode));
        let mut hf = [""; 6];
        let mut nf = 0;
        for (bit, n) in [
            (0x0400, "AA"),
            (0x0200, "TC"),
            (0x0100, "RD"),
            (0x0080, "RA"),
            (0x0020, "AD"),
            (0x0010, "CD"),
        ] {
            if flags & bit != 0 {
                hf[nf] = n;
                nf += 1;
            }
        }
        if nf > 0 {
            t.header_flags = Some((hf, nf));
        }
        let total = (an + ns + ar).min(MAX_RECORDS);
        for i in 0..total {
            let section = if i < an {
                0
            } else if i < an + ns {
                1
            } else {
                2
            };
            let (rname, next) = name(m, at)?;
            let rtype = be16(m, next)?;
            let rclass = be16(m, next + 2)?;
            let ttl = be32(m, next + 4)?;
            let rdlen = usize::from(be16(m, next + 8)?);
            let rstart = next + 10;
            let rd = m.get(rstart..rstart + rdlen)?;
            at = rstart + rdlen;
            if rtype == 41 {
                continue;
            }
            // The answer object is built only when answers are output;
            // the transaction's host and ip lists are kept either way.
            let answers = self.answers;
            let mut a = Map::new();
            if answers {
                let (uname, _) = unpuny(&rname.to_lowercase());
                a.insert("class".into(), json!(class_name(rclass)));
                a.insert("name".into(), json!(root(uname)));
                a.insert("ttl".into(), json!(ttl));
                a.insert("type".into(), json!(type_name(rtype)));
            }
            match rtype {
                1 if rd.len() == 4 => {
                    let ip = ipv4_text([rd[0], rd[1], rd[2], rd[3]]);
                    if answers {
                        a.insert("ip".into(), json!(ip));
                    }
                    if section == 0 {
                        push_unique(&mut t.ips, ip);
                    } else if section == 2 {
                        push_unique(&mut t.ns_ips, ip);
                    }
                }
                28 if rd.len() == 16 => {
                    let b: [u8; 16] = rd.try_into().unwrap_or([0; 16]);
                    let ip = IpAddr::V6(b.into());
                    if answers {
                        a.insert("ip".into(), json!(ip.to_string()));
                    }
                    if section == 0 {
                        push_unique(&mut t.ips, expanded_v6(rd));
                    } else if section == 2 {
                        push_unique(&mut t.ns_ips, expanded_v6(rd));
                    }
                }
                2 => {
                    if let Some((n, _)) = name(m, rstart) {
                        let (u, _) = unpuny(&n.to_lowercase());
                        if answers {
                            a.insert("nameserver".into(), json!(u));
                        }
                        push_unique(&mut t.ns_hosts, u);
                    }
                }
                5 => {
                    if let Some((n, _)) = name(m, rstart) {
                        let lower = n.to_lowercase();
                        if answers {
                            let (u, _) = unpuny(&lower);
                            a.insert("cname".into(), json!(u));
                        }
                        t.add_lower_host(&lower);
                    }
                }
                15 => {
                    if let (Some(p), Some((n, _))) = (be16(rd, 0), name(m, rstart + 2)) {
                        let (u, _) = unpuny(&n.to_lowercase());
                        if answers {
                            a.insert("mx".into(), json!(u));
                            a.insert("priority".into(), json!(p));
                        }
                        push_unique(&mut t.mx_hosts, u);
                    }
                }
                // The rest only describe the answer.
                _ if !answers => {}
                16 => {
                    let mut parts = Vec::new();
                    let mut p = 0;
                    while let Some(&l) = rd.get(p) {
                        let Some(s) = rd.get(p + 1..p + 1 + usize::from(l)) else {
                            break;
                        };
                        parts.push(util::text(s));
                        p += 1 + usize::from(l);
                    }
                    a.insert("txt".into(), json!(parts.join("")));
                }
                43 if rd.len() >= 4 => {
                    let hexd = util::hex(&rd[4..]).to_uppercase();
                    a.insert(
                        "ds".into(),
                        json!(format!(
                            "DS {} {} {} {}",
                            be16(rd, 0).unwrap_or(0),
                            rd[2],
                            rd[3],
                            hexd
                        )),
                    );
                }
                46 if rd.len() >= 18 => {
                    // Arkime drops a signature whose signer is the root.
                    let signer = name(m, rstart + 18).map(|(n, _)| n).unwrap_or_default();
                    if signer.is_empty() {
                        continue;
                    }
                    a.insert(
                        "rrsig".into(),
                        json!(format!(
                            "RRSIG {} {} {} {} {} {} {} {}",
                            type_name(be16(rd, 0).unwrap_or(0)),
                            rd[2],
                            rd[3],
                            be32(rd, 4).unwrap_or(0),
                            be32(rd, 8).unwrap_or(0),
                            be32(rd, 12).unwrap_or(0),
                            be16(rd, 16).unwrap_or(0),
                            signer
                        )),
                    );
                }
                47 => {
                    if let Some((n, next)) = name(m, rstart) {
                        let bits = bitmap(m.get(next..rstart + rdlen).unwrap_or(&[]));
                        let mut s = format!("NSEC {}", root(n));
                        for b in bits {
                            s.push(' ');
                            s.push_str(&b);
                        }
                        a.insert("nsec".into(), json!(s));
                    }
                }
                64 | 65 if rd.len() >= 3 => {
                    if let Some((target, next)) = name(m, rstart + 2) {
                        let target = if target.is_empty() {
                            ".".to_string()
                        } else {
                            target
                        };
                        let mut s = format!(
                            "{} {} {}",
                            type_name(rtype),
                            be16(rd, 0).unwrap_or(0),
                            target
                        );
                        for p in svc_params(m.get(next..rstart + rdlen).unwrap_or(&[])) {
                            s.push(' ');
                            s.push_str(&p);
                        }
                        a.insert(if rtype == 65 { "https" } else { "svcb" }.into(), json!(s));
                    }
                }
                _ => {}
            }
            if answers {
                t.answers.push(Json::Object(a));
            }
        }
        Some(())
    }
}

impl Parser for Dns {
    fn name(&self) -> &'static str {
        "dns"
    }

    fn parse(&mut self, _cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        if !self.tcp {
            let _ = self.message(data);
            return ParserStatus::Continue;
        }
        let d = dir.index();
        if self.buf[d].len() + data.len() > MAX_TCP {
            return ParserStatus::Done;
        }
        self.buf[d].extend_from_slice(data);
        while let Some(len) = be16(&self.buf[d], 0) {
            let len = usize::from(len);
            if self.buf[d].len() < 2 + len {
                break;
            }
            let msg: Vec<u8> = self.buf[d][2..2 + len].to_vec();
            self.buf[d].drain(..2 + len);
            let _ = self.message(&msg);
        }
        ParserStatus::Continue
    }

    fn finish(&mut self, cx: &mut ParseContext<'_>) {
        let _ = cx.meta.transport == Transport::Tcp;
        let mut o = super::out(cx);
        for t in std::mem::take(&mut self.txns) {
            o.object_text("dns", t.text());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parsers::testutil::Harness;

    fn query() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x03www\x07example\x03com\x00\x00\x01\x00\x01");
        q
    }

    #[test]
    fn query_and_answer() {
        let mut h = Harness::udp(53);
        h.feed(0, &query());
        let mut r = query();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
        h.feed(1, &r);
        h.finish();
        let j = h.json();
        let o = &j["dns"][0];
        assert_eq!(o["queryHost"], json!("www.example.com"));
        assert_eq!(o["ip"], json!(["1.2.3.4"]));
        assert_eq!(o["answersCnt"], json!(1));
        assert_eq!(o["headerFlags"], json!(["RD", "RA"]));
        assert_eq!(j["dnsCnt"], json!(1));
    }

    /// Authority and additional records count only with
    /// `parseDNSRecordAll` (Arkime's default is to skip them).
    #[test]
    fn authority_and_additional_records_follow_parse_dns_record_all() {
        let mut r = query();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1; // one answer
        r[9] = 1; // one authority record
        r[11] = 1; // one additional record
        r.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 1, 2, 3, 4]);
        // NS ns1.example.com, then its address.
        r.extend_from_slice(&[
            0xc0, 16, 0, 2, 0, 1, 0, 0, 0, 60, 0, 6, 3, b'n', b's', b'1', 0xc0, 16,
        ]);
        r.extend_from_slice(&[0xc0, 16, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 5, 6, 7, 8]);
        let run = |all: Option<&str>| {
            let mut h = Harness::with_setting(Transport::Udp, 53, "parseDNSRecordAll", all);
            h.feed(0, &query());
            h.feed(1, &r);
            h.finish();
            h.json()["dns"][0].clone()
        };
        let all = run(Some("true"));
        assert_eq!(all["ip"], json!(["1.2.3.4"]));
        assert_eq!(all["nameserverHost"], json!(["ns1.example.com"]));
        assert_eq!(all["nameserverIp"], json!(["5.6.7.8"]));
        for skipped in [run(None), run(Some("false"))] {
            assert_eq!(skipped["ip"], json!(["1.2.3.4"]));
            assert!(skipped.get("nameserverHost").is_none(), "{skipped}");
            assert!(skipped.get("nameserverIp").is_none(), "{skipped}");
        }
    }

    #[test]
    fn transaction_text_is_what_serde_json_writes() {
        let mut t = Txn {
            id: 1,
            qname: "a".into(),
            qtype: 1,
            opcode: "QUERY",
            query_host: "q\u{8}\"x\\.example".into(),
            question: Some((type_name(1), class_name(1))),
            status: Some("NOERROR"),
            header_flags: Some((["RD", "RA", "", "", "", ""], 2)),
            hosts: vec!["h\u{c}\n\u{1}é".into(), "b".into()],
            ips: vec!["1.2.3.4".into()],
            ns_hosts: vec!["ns".into()],
            ns_ips: vec!["5.6.7.8".into()],
            mx_hosts: vec!["mx".into()],
            puny: vec!["xn--p".into()],
            answers: vec![json!({"type": "A", "ttl": 60, "class": "IN"})],
            responded: true,
        };
        let text = t.text();
        let parsed: Json = serde_json::from_str(&text).unwrap();
        // Parsing sorts the members: the same text back means the members
        // were in order and escaped as serde_json escapes them.
        assert_eq!(parsed.to_string(), text);
        assert_eq!(parsed["hostCnt"], json!(2));
        assert_eq!(parsed["answersCnt"], json!(1));
        // A query without a response or question.
        t.responded = false;
        t.question = None;
        t.status = None;
        t.header_flags = None;
        t.hosts.clear();
        let text = t.text();
        let parsed: Json = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed.to_string(), text);
        assert!(parsed.get("answersCnt").is_none() && parsed.get("qt").is_none());
    }

    #[test]
    fn address_text() {
        for a in [[0, 0, 0, 0], [1, 2, 3, 4], [255, 10, 100, 9]] {
            assert_eq!(ipv4_text(a), std::net::Ipv4Addr::from(a).to_string());
        }
        assert_eq!(expanded_v6(&[0, 1, 0xab, 0xcd]), "0001:abcd");
    }

    #[test]
    fn punycode() {
        assert_eq!(punycode_decode("80a0adav").as_deref(), Some("уаноо"));
        assert_eq!(punycode_decode("zzzzzzzzzzzzzzzzzzzz"), None);
    }

    #[test]
    fn pointer_loops_and_truncation() {
        let mut m = vec![0, 1, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 1, 0xff, 0xff]);
        assert!(name(&m, 12).is_none());
        let mut h = Harness::udp(53);
        h.feed(0, &m);
        for n in 0..query().len() {
            h.feed(0, &query()[..n]);
        }
        h.finish();
        let mut h = Harness::tcp(53);
        h.feed(0, &[0xff, 0xff, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        h.finish();
    }
}
