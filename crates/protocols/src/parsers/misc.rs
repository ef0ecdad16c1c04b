//! Smaller protocols: line protocols (FTP, IRC, POP3, SSH banners),
//! binary request/response protocols (MySQL, PostgreSQL, TDS, Oracle,
//! Modbus, BGP, RDP, TFTP, STUN, BitTorrent, SIGTRAN, ...). Each is a
//! classifier and, where Arkime writes fields, a small parser; all share
//! [`Simple`], which buffers at most [`MAX_BUF`] bytes per direction.

use std::net::IpAddr;

use md5::{Digest, Md5};

use super::Out;
use super::util::{self, be16, be32, le16, le32};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus, Transport};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Most bytes buffered per direction by a simple parser.
pub const MAX_BUF: usize = 64 * 1024;

/// Per-session state shared by the simple parsers.
#[derive(Default)]
pub struct State {
    /// Buffered bytes per direction (framing across segments).
    pub buf: [Vec<u8>; 2],
    /// Messages seen per direction.
    pub count: [u32; 2],
    /// Protocol-specific flags.
    pub flags: u32,
    /// Which direction is the server (when learned from a banner).
    pub server: Option<usize>,
    /// Set by a handler when a new protocol starts (TLS after a request).
    pub reclassify: bool,
    /// Whether the session runs over TCP (a byte stream to frame).
    pub tcp: bool,
    /// The session's two addresses.
    pub ips: [Option<IpAddr>; 2],
    /// The session's two ports (source, destination).
    pub ports: [u16; 2],
}

/// A parser function: handles one chunk of one direction.
pub(crate) type Handler = fn(&mut Out<'_, '_>, &mut State, usize, &[u8]) -> ParserStatus;

/// A parser made of a handler and its state.
pub struct Simple {
    name: &'static str,
    handler: Handler,
    state: State,
}

impl Parser for Simple {
    fn name(&self) -> &'static str {
        self.name
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let mut o = super::out(cx);
        let r = (self.handler)(&mut o, &mut self.state, dir.index(), data);
        if self.state.reclassify {
            self.state.reclassify = false;
            cx.reclassify();
        }
        r
    }
}

fn attach(
    cx: &mut ClassifyContext<'_>,
    name: &'static str,
    proto: &str,
    handler: Handler,
    server: Option<usize>,
) {
    cx.add_protocol(proto);
    if !cx.has_parser(name) {
        cx.attach(Box::new(Simple {
            name,
            handler,
            state: State {
                server,
                tcp: cx.meta.transport == Transport::Tcp,
                ips: [cx.meta.src_ip, cx.meta.dst_ip],
                ports: [cx.meta.src_port, cx.meta.dst_port],
                ..State::default()
            },
        }));
    }
}

/// Registers the classifiers of the enabled small parsers.
pub fn register(set: &mut ClassifierSet, on: &dyn Fn(&str) -> bool) {
    let n = ClassifyAction::Native;
    if on("ssh") {
        set.add_tcp(
            "ssh",
            0,
            b"SSH-",
            n(|cx, _, _| attach(cx, "ssh", "ssh", ssh, None)),
        );
    }
    if on("ftp") {
        set.add_tcp("ftp", 0, b"220 ", n(classify_ftp));
        set.add_tcp("ftp", 0, b"220-", n(classify_ftp));
    }
    if on("irc") {
        for p in [&b"NICK "[..], b"USER ", b"CAP LS", b"CAP REQ", b":"] {
            set.add_tcp("irc", 0, p, n(classify_irc));
        }
    }
    if on("pop3") {
        set.add_tcp(
            "pop3",
            0,
            b"+OK ",
            n(|cx, _, _| {
                cx.add_protocol("pop3");
            }),
        );
    }
    if on("mysql") {
        set.add_tcp("mysql", 4, b"\x0a", n(classify_mysql));
    }
    if on("postgresql") {
        set.add_tcp(
            "postgresql",
            4,
            b"\x00\x03\x00\x00",
            n(|cx, d, dir| {
                if dir == Direction::FromSource && d.len() >= 8 {
                    attach(cx, "postgresql", "postgresql", postgres, None);
                }
            }),
        );
        set.add_tcp(
            "postgresql",
            0,
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
            n(|cx, _, _| {
                attach(cx, "postgresql", "postgresql", postgres, None);
            }),
        );
    }
    if on("tds") {
        for t in [&b"\x02\x00\x02\x00"[..], b"\x12\x01\x00", b"\x10\x01\x00"] {
            set.add_tcp("tds", 0, t, n(classify_tds));
        }
    }
    if on("oracle") {
        set.add_tcp(
            "oracle",
            4,
            b"\x01\x00\x00\x00",
            n(|cx, d, _| {
                if d.len() > 10 && be16(d, 0).is_some_and(|l| usize::from(l) == d.len()) {
                    attach(cx, "oracle", "oracle", oracle, None);
                }
            }),
        );
    }
    if on("bgp") {
        set.add_tcp(
            "bgp",
            0,
            &[0xff; 16],
            n(|cx, d, _| {
                if d.len() >= 19 {
                    attach(cx, "bgp", "bgp", bgp, None);
                }
            }),
        );
    }
    if on("modbus") {
        set.add_tcp_port(
            "modbus",
            502,
            n(|cx, d, _| {
                // The first data is exactly one message (MBAP header + PDU).
                if d.len() >= 7
                    && be16(d, 2) == Some(0)
                    && be16(d, 4).is_some_and(|l| usize::from(l) + 6 == d.len())
                {
                    attach(cx, "modbus", "modbus", modbus, None);
                }
            }),
        );
    }
    if on("rdp") {
        set.add_tcp(
            "rdp",
            0,
            b"\x03\x00",
            n(|cx, d, _| {
                // Port 102 carries ISO-on-TCP (S7comm), not RDP.
                let iso_tsap = cx.meta.src_port == 102 || cx.meta.dst_port == 102;
                if !iso_tsap
                    && d.len() > 11
                    && d[5] == 0xe0
                    && be16(d, 2).is_some_and(|l| usize::from(l) == d.len())
                {
                    attach(cx, "rdp", "rdp", rdp, None);
                }
            }),
        );
    }
    if on("bittorrent") {
        set.add_tcp(
            "bittorrent",
            0,
            b"\x13BitTorrent protocol",
            n(|cx, _, _| cx.add_protocol("bittorrent")),
        );
        set.add_tcp(
            "bittorrent",
            0,
            b"BSYNC\x00",
            n(|cx, _, _| cx.add_protocol("bittorrent")),
        );
        for p in [&b"d1:a"[..], b"d1:r", b"d1:q", b"d1:e"] {
            set.add_udp(
                "bittorrent",
                0,
                p,
                n(|cx, _, _| cx.add_protocol("bittorrent")),
            );
        }
    }
    if on("tftp") {
        set.add_udp_port(
            "tftp",
            69,
            n(|cx, d, dir| {
                if dir == Direction::FromSource
                    && d.len() > 4
                    && d[0] == 0
                    && matches!(d[1], 1 | 2)
                    && d.last() == Some(&0)
                {
                    attach(cx, "tftp", "tftp", tftp, None);
                }
            }),
        );
    }
    if on("stun") {
        set.add_udp_port("stun", 3478, n(stun_classify));
        set.add_tcp_port("stun", 3478, n(stun_classify));
        set.add_udp("stun", 4, b"\x21\x12\xa4\x42", n(stun_classify));
        set.add_tcp("stun", 4, b"\x21\x12\xa4\x42", n(stun_classify));
        set.add_udp("stun", 0, b"RSP/", n(|cx, _, _| cx.add_protocol("stun")));
    }
    if on("kafka") {
        set.add_tcp_port(
            "kafka",
            9092,
            n(|cx, d, dir| {
                if dir == Direction::FromSource
                    && d.len() >= 12
                    && be32(d, 0).is_some_and(|l| l as usize + 4 >= d.len())
                    && d[4] == 0
                {
                    cx.add_protocol("kafka");
                }
            }),
        );
    }
    if on("aerospike") {
        set.add_tcp(
            "aerospike",
            0,
            b"\x02\x01\x00\x00",
            n(|cx, _, _| cx.add_protocol("aerospike")),
        );
        set.add_tcp(
            "aerospike",
            0,
            b"\x02\x03",
            n(|cx, _, _| cx.add_protocol("aerospike")),
        );
    }
    if on("thrift") {
        set.add_tcp(
            "thrift",
            4,
            b"\x80\x01\x00\x01",
            n(|cx, _, _| {
                cx.add_protocol("thrift");
                cx.add_protocol("cassandra");
            }),
        );
    }
    if on("isakmp") {
        set.add_udp_port(
            "isakmp",
            500,
            n(|cx, d, _| {
                if d.len() >= 28 && matches!(d[17], 0x10 | 0x20) {
                    attach(cx, "isakmp", "isakmp", isakmp, None);
                }
            }),
        );
    }
    if on("radius") {
        for port in [1812, 1813, 1645, 1646] {
            set.add_udp_port(
                "radius",
                port,
                n(|cx, d, _| {
                    if d.len() >= 20
                        && (1..=5).contains(&d[0])
                        && be16(d, 2).is_some_and(|l| usize::from(l) <= d.len())
                    {
                        attach(cx, "radius", "radius", radius, None);
                    }
                }),
            );
        }
    }
    if on("diameter") {
        set.add_tcp_port("diameter", 3868, n(diameter_classify));
        set.add_udp_port("diameter", 3868, n(diameter_classify));
        set.add_tcp("diameter", 0, b"\x01", n(diameter_classify));
        set.add_udp("diameter", 0, b"\x01", n(diameter_classify));
    }
    if on("m3ua") {
        // Any SIGTRAN common header (version 1): management messages such
        // as ASP Up may come before the first DATA.
        set.add_udp("m3ua", 0, b"\x01\x00", n(sigtran_classify));
    }
    if on("bacnet") {
        set.add_udp_port(
            "bacnet",
            47808,
            n(|cx, d, _| {
                if d.len() >= 6
                    && d[0] == 0x81
                    && be16(d, 2).is_some_and(|l| usize::from(l) == d.len())
                {
                    attach(cx, "bacnet", "bacnet", bacnet, None);
                }
            }),
        );
    }
    if on("dhcp") {
        for port in [67, 68] {
            set.add_udp_port(
                "dhcp",
                port,
                n(|cx, d, _| {
                    if d.len() >= 240 && matches!(d[0], 1 | 2) {
                        attach(cx, "dhcp", "dhcp", dhcp, None);
                    }
                }),
            );
        }
        for port in [546, 547] {
            set.add_udp_port(
                "dhcpv6",
                port,
                n(|cx, d, _| {
                    if d.len() >= 4 && (1..=13).contains(&d[0]) {
                        attach(cx, "dhcpv6", "dhcpv6", dhcpv6, None);
                    }
                }),
            );
        }
    }
    if on("dnp3") {
        set.add_tcp(
            "dnp3",
            0,
            b"\x05\x64",
            n(|cx, _, _| attach(cx, "dnp3", "dnp3", dnp3, None)),
        );
        set.add_udp(
            "dnp3",
            0,
            b"\x05\x64",
            n(|cx, _, _| attach(cx, "dnp3", "dnp3", dnp3, None)),
        );
    }
    if on("dcerpc") {
        set.add_tcp(
            "dcerpc",
            0,
            b"\x05\x00\x0b",
            n(|cx, _, _| attach(cx, "dcerpc", "dcerpc", dcerpc, None)),
        );
    }
    if on("ldap") {
        set.add_tcp_port("ldap", 389, n(ldap_classify));
        set.add_tcp_port("ldap", 3268, n(ldap_classify));
    }
    if on("nbns") {
        set.add_udp_port(
            "nbns",
            137,
            n(|cx, d, _| {
                if d.len() >= 12 {
                    attach(cx, "nbns", "nbns", nbns, None);
                }
            }),
        );
    }
    if on("nbds") {
        set.add_udp_port("nbds", 138, n(nbds_classify));
    }
    if on("pana") {
        set.add_udp_port(
            "pana",
            716,
            n(|cx, d, _| {
                if d.len() >= 16 && d[0] == 0 && d[1] == 0 {
                    cx.add_protocol("pana");
                }
            }),
        );
    }
    if on("adb") {
        for p in [
            &b"CNXN"[..],
            b"AUTH",
            b"OPEN",
            b"OKAY",
            b"CLSE",
            b"WRTE",
            b"STLS",
        ] {
            set.add_tcp(
                "adb",
                0,
                p,
                n(|cx, d, _| {
                    // The magic field is the command's complement.
                    if d.len() >= 24 && le32(d, 20) == le32(d, 0).map(|c| !c) {
                        attach(cx, "adb", "adb", adb, None);
                    }
                }),
            );
        }
        set.add_tcp_port(
            "adb",
            5037,
            n(|cx, d, dir| {
                if dir == Direction::FromSource
                    && d.len() > 4
                    && d[..4].iter().all(u8::is_ascii_hexdigit)
                {
                    attach(cx, "adb", "adb", adb, None);
                }
            }),
        );
    }
    if on("synchrophasor") {
        set.add_tcp("synchrophasor", 0, b"\xaa", n(synchrophasor_classify));
        set.add_udp("synchrophasor", 0, b"\xaa", n(synchrophasor_classify));
    }
    if on("s7comm") {
        set.add_tcp_port(
            "s7comm",
            102,
            n(|cx, d, _| {
                // A COTP connection request; the S7 header tells the flavour.
                if d.len() > 5 && d[0] == 3 && d[5] == 0xe0 {
                    attach(cx, "s7comm", "s7comm", s7comm, None);
                }
            }),
        );
    }
}

fn lines(
    st: &mut State,
    d: usize,
    data: &[u8],
    mut f: impl FnMut(&mut State, &[u8]) -> bool,
) -> ParserStatus {
    let mut buf = std::mem::take(&mut st.buf[d]);
    if buf.len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    buf.extend_from_slice(data);
    let mut start = 0;
    while let Some(nl) = memchr::memchr(b'\n', &buf[start..]) {
        let line = &buf[start..start + nl];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        start += nl + 1;
        if !f(st, line) {
            return ParserStatus::Done;
        }
    }
    buf.drain(..start);
    st.buf[d] = buf;
    ParserStatus::Continue
}

// ---------------------------------------------------------------- SSH

fn ssh(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if st.count[d] == 0 {
        if !data.starts_with(b"SSH-") {
            return ParserStatus::Continue;
        }
        let end = memchr::memchr(b'\n', data).unwrap_or(data.len());
        let v = &data[..end];
        let v = v.strip_suffix(b"\r").unwrap_or(v);
        o.s("ssh.ver", &util::text(v));
        st.count[d] = 1;
        let rest = data.get(end + 1..).unwrap_or(&[]);
        if rest.is_empty() {
            return ParserStatus::Continue;
        }
        return ssh_packets(o, st, d, rest);
    }
    ssh_packets(o, st, d, data)
}

fn ssh_packets(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if st.flags & (1 << d) != 0 {
        return if st.flags & 3 == 3 {
            ParserStatus::Done
        } else {
            ParserStatus::Continue
        };
    }
    if st.buf[d].len() + data.len() > MAX_BUF {
        st.flags |= 1 << d;
        return ParserStatus::Continue;
    }
    st.buf[d].extend_from_slice(data);
    loop {
        let b = &st.buf[d];
        let Some(len) = be32(b, 0) else { break };
        let len = len as usize;
        if !(2..=MAX_BUF).contains(&len) {
            st.flags |= 1 << d;
            break;
        }
        if b.len() < 4 + len {
            break;
        }
        let pad = usize::from(b[4]);
        let payload = b
            .get(5..(4 + len).saturating_sub(pad).max(5))
            .unwrap_or(&[])
            .to_vec();
        st.buf[d].drain(..4 + len);
        if d == 1 && matches!(payload.first(), Some(&31) | Some(&33)) {
            // KEX (EC)DH reply: the server's host key blob first.
            // (GEX uses 31 for its group message: only a key blob, which
            // starts with its algorithm name, counts.)
            if let Some(l) = be32(&payload, 1)
                && let Some(key) = payload.get(5..5 + l as usize)
                && let Some(al) = be32(key, 0)
                && let Some(alg) = key.get(4..4 + al as usize)
                && (alg.starts_with(b"ssh-")
                    || alg.starts_with(b"ecdsa-")
                    || alg.starts_with(b"rsa-"))
            {
                use base64::Engine;
                o.s(
                    "ssh.key",
                    &base64::engine::general_purpose::STANDARD.encode(key),
                );
                st.flags |= 1 << d;
                break;
            }
            continue;
        }
        if payload.first() == Some(&20) {
            // KEXINIT: cookie then ten name-lists.
            let mut at = 17;
            let mut lists = Vec::new();
            for _ in 0..10 {
                let Some(l) = be32(&payload, at) else { break };
                let Some(s) = payload.get(at + 4..at + 4 + l as usize) else {
                    break;
                };
                lists.push(util::text(s));
                at += 4 + l as usize;
            }
            if lists.len() == 10 {
                let (enc, mac, comp) = if d == 0 { (2, 4, 6) } else { (3, 5, 7) };
                let s = format!("{};{};{};{}", lists[0], lists[enc], lists[mac], lists[comp]);
                let h = util::hex(&Md5::digest(s.as_bytes()));
                o.s(
                    if d == 0 {
                        "ssh.hassh"
                    } else {
                        "ssh.hasshServer"
                    },
                    &h,
                );
            }
            // The client is done; the server's host key follows.
            if d == 0 {
                st.flags |= 1;
                break;
            }
        }
    }
    if st.flags & 3 == 3 {
        ParserStatus::Done
    } else {
        ParserStatus::Continue
    }
}

// ---------------------------------------------------------------- FTP

fn classify_ftp(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    for bad in [&b"LMTP"[..], b"SMTP", b" TLS"] {
        if memchr::memmem::find(data, bad).is_some() {
            return;
        }
    }
    attach(cx, "ftp", "ftp", ftp, Some(dir.index()));
}

fn ftp(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    let server = st.server == Some(d);
    let mut quit = false;
    let r = lines(st, d, data, |st, line| {
        if line.is_empty() {
            return true;
        }
        if server {
            if line.len() >= 4 && line[..3].iter().all(u8::is_ascii_digit) {
                let code = i64::from(line[0] - b'0') * 100
                    + i64::from(line[1] - b'0') * 10
                    + i64::from(line[2] - b'0');
                o.i("ftp.responseCode", code);
                if st.flags & 1 == 0 && code == 220 {
                    let msg = util::trim(&line[4..]);
                    let msg: &[u8] = {
                        let s = msg.iter().position(|&c| c != b'-').unwrap_or(msg.len());
                        let m = &msg[s..];
                        let e = m
                            .iter()
                            .rposition(|&c| c != b'-' && !c.is_ascii_whitespace())
                            .map_or(0, |e| e + 1);
                        &m[..e]
                    };
                    if !msg.is_empty() {
                        o.s("ftp.banner", &util::text(msg));
                        st.flags |= 1;
                    }
                }
            }
            return true;
        }
        let line = util::trim(line);
        let sp = line.iter().position(|&c| c == b' ').unwrap_or(line.len());
        let cmd = &line[..sp];
        if cmd.len() < 3 || cmd.len() > 8 || !cmd.iter().all(u8::is_ascii_alphabetic) {
            return true;
        }
        let cmd = util::text(cmd).to_ascii_uppercase();
        if matches!(cmd.as_str(), "HELO" | "EHLO" | "LHLO") {
            quit = true;
            return false;
        }
        o.s("ftp.command", &cmd);
        let arg = util::trim(line.get(sp + 1..).unwrap_or(&[]));
        if arg.is_empty() {
            return true;
        }
        match cmd.as_str() {
            "USER" => {
                o.s("user", &util::text(arg).to_lowercase());
            }
            "PASS" => o.tag("ftp:password"),
            "RETR" | "STOR" | "STOU" | "APPE" | "DELE" | "RNFR" | "RNTO" | "MKD" | "RMD"
            | "SIZE" | "MDTM" => {
                o.s("ftp.filename", &util::text(arg));
            }
            _ => {}
        }
        true
    });
    if quit {
        o.fields.remove_protocol("ftp");
    }
    r
}

// ---------------------------------------------------------------- IRC

fn classify_irc(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    // FTP and SMTP clients also start with USER; their servers spoke first.
    if (data.starts_with(b":") && dir == Direction::FromSource)
        || cx.has_parser("ftp")
        || cx.has_parser("smtp")
    {
        return;
    }
    attach(cx, "irc", "irc", irc, None);
}

fn irc(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if d != 0 {
        return ParserStatus::Continue;
    }
    lines(st, d, data, |_, line| {
        if let Some(n) = line.strip_prefix(b"NICK ") {
            o.s("irc.nick", &util::text(util::trim(n)));
        } else if let Some(c) = line.strip_prefix(b"JOIN ") {
            let c = c.split(|&b| b == b' ').next().unwrap_or(b"");
            for ch in c.split(|&b| b == b',') {
                if !ch.is_empty() {
                    o.s("irc.channel", &util::text(ch));
                }
            }
        }
        true
    })
}

// ---------------------------------------------------------------- MySQL

fn classify_mysql(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    // Server greeting: 3-byte length, sequence 0, protocol 10, version.
    if dir != Direction::FromDestination || data.len() < 10 || data[3] != 0 {
        return;
    }
    let len = usize::from(data[0]) | usize::from(data[1]) << 8 | usize::from(data[2]) << 16;
    if len + 4 != data.len() && len + 4 > data.len() {
        return;
    }
    let v = &data[5..];
    let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
    if end == 0 || !v[..end].iter().all(|c| c.is_ascii_graphic()) {
        return;
    }
    attach(cx, "mysql", "mysql", mysql, None);
}

fn mysql(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    st.count[d] += 1;
    if d == 1 && st.count[1] == 1 && data.len() > 5 {
        let v = &data[5..];
        let end = v.iter().position(|&c| c == 0).unwrap_or(v.len());
        o.scalar("mysql.ver", util::text(&v[..end]).into());
        return ParserStatus::Continue;
    }
    if d == 0 && st.count[0] == 1 {
        // Handshake response 41: caps(4) max(4) charset(1) filler(23) user\0
        if data.len() > 36 {
            let caps = le32(data, 4).unwrap_or(0);
            if caps & 0x0800 != 0 && data.len() <= 36 {
                return ParserStatus::Done;
            }
            let u = &data[36..];
            let end = u.iter().position(|&c| c == 0).unwrap_or(u.len());
            if end > 0 {
                o.scalar("mysql.user", util::text(&u[..end]).to_lowercase().into());
            }
        } else if data.len() >= 8 {
            // SSL request: TLS follows.
            st.reclassify = true;
        }
        return ParserStatus::Done;
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- PostgreSQL

fn postgres(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if d != 0 {
        return ParserStatus::Continue;
    }
    let mut data = data;
    if data.starts_with(b"\x00\x00\x00\x08\x04\xd2\x16\x2f") {
        data = &data[8..];
        if data.is_empty() {
            return ParserStatus::Continue;
        }
    }
    st.count[0] += 1;
    if data.len() >= 8 && be32(data, 4) == Some(0x0003_0000) {
        let mut parts = data[8..].split(|&c| c == 0);
        while let (Some(k), Some(v)) = (parts.next(), parts.next()) {
            if k.is_empty() {
                break;
            }
            let field = match k {
                b"user" => "postgresql.user",
                b"database" => "postgresql.db",
                b"application_name" => "postgresql.app",
                _ => continue,
            };
            o.scalar(field, util::text(v).into());
        }
        return ParserStatus::Done;
    }
    if st.count[0] > 2 {
        return ParserStatus::Done;
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- TDS

fn classify_tds(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    if dir != Direction::FromSource || data.len() < 8 {
        return;
    }
    attach(cx, "tds", "tds", tds, None);
}

fn tds(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if d != 0 {
        return ParserStatus::Continue;
    }
    st.count[0] += 1;
    match data.first() {
        // TDS 4/5 login: user name field at offset 8+30, length byte at 8+30.
        Some(2) if data.len() > 8 + 61 => {
            let user = &data[8 + 31..8 + 61];
            let n = usize::from(data[8 + 61]).min(30);
            let user = &user[..n.min(user.len())];
            if !user.is_empty() {
                o.s("user", &util::text(user));
            }
            ParserStatus::Done
        }
        // TDS 7 login7: offsets table after 36 bytes of header.
        Some(0x10) if data.len() > 8 + 48 => {
            let l = &data[8..];
            if let (Some(off), Some(len)) = (le16(l, 40), le16(l, 42)) {
                let (off, len) = (usize::from(off), usize::from(len) * 2);
                if let Some(u) = l.get(off..off + len) {
                    let u16s: Vec<u16> = u
                        .chunks_exact(2)
                        .map(|c| u16::from_le_bytes([c[0], c[1]]))
                        .collect();
                    let s = String::from_utf16_lossy(&u16s);
                    if !s.is_empty() {
                        o.s("user", &s);
                    }
                }
            }
            ParserStatus::Done
        }
        _ if st.count[0] > 4 => ParserStatus::Done,
        _ => ParserStatus::Continue,
    }
}

// ---------------------------------------------------------------- Oracle

fn oracle(o: &mut Out<'_, '_>, _st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if d != 0 || data.len() < 26 {
        return ParserStatus::Continue;
    }
    // TNS CONNECT: connect data offset/length at 26/24.
    let (Some(clen), Some(coff)) = (be16(data, 24), be16(data, 26)) else {
        return ParserStatus::Done;
    };
    let Some(cd) = data.get(usize::from(coff)..usize::from(coff) + usize::from(clen)) else {
        return ParserStatus::Done;
    };
    let cd = util::text(cd);
    let find = |key: &str| -> Option<String> {
        let lower = cd.to_ascii_lowercase();
        let at = lower.find(&format!("({key}="))?;
        let rest = &cd[at + key.len() + 2..];
        let end = rest.find(')')?;
        Some(rest[..end].to_string())
    };
    if let Some(h) = find("host") {
        o.scalar("oracle.host", h.to_lowercase().into());
    }
    if let Some(u) = find("user") {
        o.scalar("oracle.user", u.to_lowercase().into());
    }
    if let Some(s) = find("service_name").or_else(|| find("sid")) {
        o.scalar("oracle.service", s.to_lowercase().into());
    }
    ParserStatus::Done
}

// ---------------------------------------------------------------- BGP

fn bgp(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if st.buf[d].len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    st.buf[d].extend_from_slice(data);
    loop {
        let b = &st.buf[d];
        if b.len() < 19 {
            break;
        }
        if b[..16] != [0xff; 16] {
            return ParserStatus::Done;
        }
        let len = usize::from(be16(b, 16).unwrap_or(0));
        if len < 19 {
            return ParserStatus::Done;
        }
        if b.len() < len {
            break;
        }
        let name = match b[18] {
            1 => "OPEN",
            2 => "UPDATE",
            3 => "NOTIFICATION",
            4 => "KEEPALIVE",
            5 => "ROUTE-REFRESH",
            _ => "UNKNOWN",
        };
        o.s("bgp.type", name);
        st.buf[d].drain(..len);
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- Modbus

fn modbus(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if st.buf[d].len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    st.count[d] = st.count[d].saturating_add(1);
    st.buf[d].extend_from_slice(data);
    // MBAP header: transaction id, protocol id (0), length (unit id + PDU).
    while st.buf[d].len() >= 7 {
        let b = &st.buf[d];
        let len = usize::from(be16(b, 4).unwrap_or(0));
        if be16(b, 2) != Some(0) || !(2..=255).contains(&len) {
            return ParserStatus::Done;
        }
        if b.len() < 6 + len {
            break;
        }
        let tid = i64::from(be16(b, 0).unwrap_or(0));
        let unit = b[6];
        let func = b[7];
        // Requests carry the transaction and function; responses only
        // report exceptions (function code with the high bit set). What
        // is sent from the server port is a response, whichever side
        // opened the connection.
        let response = if st.ports[0] == 502 && st.ports[1] != 502 {
            d == 0
        } else {
            d == 1
        };
        if response && func & 0x80 != 0 {
            o.i("modbus.exccode", i64::from(b.get(8).copied().unwrap_or(0)));
        }
        if !response {
            o.i("modbus.transactionid", tid);
            o.i("modbus.funccode", i64::from(func));
        }
        // Unit and protocol ids come from the first data of each direction.
        if st.count[d] == 1 {
            o.scalar("modbus.unitid", unit.into());
            o.scalar("modbus.protocolid", 0.into());
        }
        st.buf[d].drain(..6 + len);
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- RDP

fn rdp(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    st.count[d] += 1;
    if data.len() < 11 {
        return ParserStatus::Done;
    }
    let body = &data[11..];
    if d == 0 && data[5] == 0xe0 {
        let mut rest = body;
        if let Some(at) = memchr::memmem::find(rest, b"Cookie: mstshash=") {
            let c = &rest[at + 17..];
            let end = memchr::memmem::find(c, b"\r\n").unwrap_or(c.len());
            o.s("user", &util::text(&c[..end]));
            rest = c.get(end + 2..).unwrap_or(&[]);
        } else if let Some(end) = memchr::memmem::find(rest, b"\r\n") {
            rest = &rest[end + 2..];
        }
        if rest.len() >= 8 && rest[0] == 1 {
            let p = le32(rest, 4).unwrap_or(0);
            for n in rdp_protocols(p) {
                o.s("rdp.requestedProtocols", n);
            }
        }
    } else if d == 1 && data[5] == 0xd0 {
        if body.len() >= 8 && body[0] == 2 {
            let p = le32(body, 4).unwrap_or(0);
            let name = match p {
                0 => "rdp",
                1 => "ssl",
                2 | 3 => "hybrid",
                4 => "rdstls",
                8..=11 => "hybrid_ex",
                _ => "unknown",
            };
            o.s("rdp.selectedProtocol", name);
        }
        return ParserStatus::Done;
    }
    ParserStatus::Continue
}

fn rdp_protocols(p: u32) -> Vec<&'static str> {
    let mut v = Vec::new();
    if p == 0 {
        v.push("rdp");
    }
    if p & 1 != 0 {
        v.push("ssl");
    }
    if p & 2 != 0 {
        v.push("hybrid");
    }
    if p & 4 != 0 {
        v.push("rdstls");
    }
    if p & 8 != 0 {
        v.push("hybrid_ex");
    }
    v
}

// ---------------------------------------------------------------- TFTP

fn tftp(o: &mut Out<'_, '_>, _st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if d != 0 || data.len() < 4 {
        return ParserStatus::Done;
    }
    let op = match data[1] {
        1 => "rrq",
        2 => "wrq",
        _ => return ParserStatus::Done,
    };
    o.s("tftp.opcode", op);
    let f = &data[2..];
    let end = f.iter().position(|&c| c == 0).unwrap_or(f.len());
    o.s("tftp.filename", &util::text(&f[..end]));
    ParserStatus::Done
}

// ---------------------------------------------------------------- STUN

fn stun_classify(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if data.len() >= 20
        && data[0] & 0xc0 == 0
        && be16(data, 2).is_some_and(|l| {
            usize::from(l) + 20 <= data.len() || cx.meta.transport == Transport::Tcp
        })
    {
        attach(cx, "stun", "stun", stun, None);
    } else if data.starts_with(b"RSP/") {
        cx.add_protocol("stun");
    }
}

fn stun(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if !st.tcp {
        return stun_message(o, st, data);
    }
    // Over TCP messages are framed by their length field.
    if st.buf[d].len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    st.buf[d].extend_from_slice(data);
    while st.buf[d].len() >= 20 {
        let len = 20 + usize::from(be16(&st.buf[d], 2).unwrap_or(0));
        if st.buf[d].len() < len {
            break;
        }
        let msg: Vec<u8> = st.buf[d].drain(..len).collect();
        stun_message(o, st, &msg);
    }
    ParserStatus::Continue
}

const STUN_COOKIE: u32 = 0x2112_a442;

/// One STUN/TURN message: its type and the attributes Arkime indexes.
fn stun_message(o: &mut Out<'_, '_>, st: &State, data: &[u8]) -> ParserStatus {
    if data.len() < 20 {
        return ParserStatus::Done;
    }
    let t = be16(data, 0).unwrap_or(0);
    let len = usize::from(be16(data, 2).unwrap_or(0));
    let cookie = be32(data, 4).unwrap_or(0);
    // Classic STUN (no cookie) must fill the datagram exactly.
    if (cookie != STUN_COOKIE && len + 20 != data.len()) || len + 20 > data.len() {
        return ParserStatus::Done;
    }
    let txn = &data[8..20];
    // Method bits and class bits (C1 = 0x0100, C0 = 0x0010) of the type.
    let method = (t & 0x000f) | ((t & 0x00e0) >> 1) | ((t & 0x3e00) >> 2);
    let class = ((t & 0x0100) >> 7) | ((t & 0x0010) >> 4);
    let mname = match method {
        0x001 => Some("Binding"),
        0x003 => Some("Allocate"),
        0x004 => Some("Refresh"),
        0x006 => Some("Send"),
        0x007 => Some("Data"),
        0x008 => Some("CreatePermission"),
        0x009 => Some("ChannelBind"),
        0x00a => Some("Connect"),
        0x00b => Some("ConnectionBind"),
        0x00c => Some("ConnectionAttempt"),
        0x080 => Some("GooglePing"),
        _ => None,
    };
    if let Some(m) = mname {
        let cname = ["Request", "Indication", "Response", "Error"][usize::from(class & 3)];
        o.s("stun.type", &format!("{m} {cname}"));
    }
    let attrs = &data[20..20 + len];
    let mut at = 0;
    while at + 4 <= attrs.len() {
        let at_type = be16(attrs, at).unwrap_or(0);
        let l = usize::from(be16(attrs, at + 2).unwrap_or(0));
        let Some(v) = attrs.get(at + 4..at + 4 + l) else {
            break;
        };
        match at_type {
            0x0001 => stun_address(o, st, v, None, "mapped"),
            0x0020 | 0x8020 => stun_address(o, st, v, Some(txn), "xor-mapped"),
            0x0016 => stun_address(o, st, v, Some(txn), "xor-relayed"),
            0x0012 => stun_address(o, st, v, Some(txn), "xor-peer"),
            // Text attributes end at a NUL, as C strings do.
            0x0006 if (1..513).contains(&l) => {
                o.s("stun.username", &util::text(until_nul(v)));
            }
            0x0014 if (1..763).contains(&l) => {
                o.s("stun.realm", &util::text(until_nul(v)));
            }
            0x8022 if (1..763).contains(&l) => {
                o.s("stun.software", &util::text(until_nul(v)));
            }
            0x0009 if v.len() >= 4 => {
                o.i("stun.error", i64::from(v[2]) * 100 + i64::from(v[3]));
            }
            _ => {}
        }
        at += 4 + l.div_ceil(4) * 4;
    }
    ParserStatus::Continue
}

/// A (XOR-)address attribute into `stun.<name>-ip`/`-port`. The mapped
/// address of a NAT differs from both of the session's addresses.
fn stun_address(o: &mut Out<'_, '_>, st: &State, v: &[u8], xor: Option<&[u8]>, name: &str) {
    if v.len() < 8 {
        return;
    }
    let family = v[1];
    let mut port = be16(v, 2).unwrap_or(0);
    if xor.is_some() {
        port ^= (STUN_COOKIE >> 16) as u16;
    }
    o.i_dyn(&format!("stun.{name}-port"), i64::from(port));
    let ip = match family {
        1 => {
            let mut ip = be32(v, 4).unwrap_or(0);
            if xor.is_some() {
                ip ^= STUN_COOKIE;
            }
            IpAddr::V4(ip.into())
        }
        2 if v.len() >= 20 => {
            let mut ip: [u8; 16] = match v[4..20].try_into() {
                Ok(ip) => ip,
                Err(_) => return,
            };
            if let Some(txn) = xor {
                let mut key = STUN_COOKIE.to_be_bytes().to_vec();
                key.extend_from_slice(txn);
                for (b, k) in ip.iter_mut().zip(key) {
                    *b ^= k;
                }
            }
            IpAddr::V6(ip.into())
        }
        _ => return,
    };
    o.ip_dyn(&format!("stun.{name}-ip"), ip);
    if name == "xor-mapped" && !st.ips.contains(&Some(ip)) {
        o.tag("stun:nat-discovered");
    }
}

/// The bytes before the first NUL.
fn until_nul(v: &[u8]) -> &[u8] {
    &v[..memchr::memchr(0, v).unwrap_or(v.len())]
}

// ---------------------------------------------------------------- ISAKMP

fn isakmp(o: &mut Out<'_, '_>, _st: &mut State, _d: usize, data: &[u8]) -> ParserStatus {
    if data.len() < 28 {
        return ParserStatus::Continue;
    }
    let ispi = &data[..8];
    let rspi = &data[8..16];
    o.s("isakmp.initiatorSpi", &util::hex(ispi));
    if rspi.iter().any(|&b| b != 0) {
        o.s("isakmp.responderSpi", &util::hex(rspi));
    }
    let ver = data[17];
    o.s("isakmp.version", &format!("{}.{}", ver >> 4, ver & 0xf));
    let ex = match data[18] {
        2 => "identity-protection",
        4 => "aggressive",
        5 => "informational",
        32 => "quick-mode",
        34 => "ike-sa-init",
        35 => "ike-auth",
        36 => "create-child-sa",
        37 => "informational",
        _ => "unknown",
    };
    o.s("isakmp.exchangeType", ex);
    if data[19] & 1 != 0 {
        // Encrypted payloads.
        return ParserStatus::Continue;
    }
    let mut next = data[16];
    let mut at = 28;
    while next != 0 && at + 4 <= data.len() {
        let l = usize::from(be16(data, at + 2).unwrap_or(0));
        if l < 4 {
            break;
        }
        let Some(p) = data.get(at + 4..at + l) else {
            break;
        };
        match next {
            13 => {
                let v = util::hex(p);
                let name = match v.as_str() {
                    "afcad71368a1f1c96b8696fc77570100" => "dpd".to_string(),
                    _ if v.starts_with("4048b7d56ebce88525e7de7f00d6c2d3") => "ikev2".to_string(),
                    _ => v,
                };
                o.s("isakmp.vendorId", &name);
            }
            1 if ver >> 4 == 1 => isakmp_sa(o, p),
            _ => {}
        }
        next = data[at];
        at += l;
    }
    ParserStatus::Continue
}

fn isakmp_sa(o: &mut Out<'_, '_>, p: &[u8]) {
    // DOI(4) situation(4) then proposal payloads, each with transforms.
    let Some(prop) = p.get(8..) else { return };
    let Some(&nspi) = prop.get(6) else { return };
    let mut at = 8 + usize::from(nspi);
    while at + 8 <= prop.len() {
        let tl = usize::from(be16(prop, at + 2).unwrap_or(0));
        if tl < 8 {
            break;
        }
        let Some(t) = prop.get(at + 8..at + tl) else {
            break;
        };
        let mut a = 0;
        while a + 4 <= t.len() {
            let ty = be16(t, a).unwrap_or(0);
            let (af, len) = (ty & 0x8000 != 0, usize::from(be16(t, a + 2).unwrap_or(0)));
            if af {
                let v = len as u16;
                match ty & 0x7fff {
                    1 => {
                        o.s(
                            "isakmp.encryption",
                            match v {
                                1 => "des-cbc",
                                5 => "3des-cbc",
                                7 => "aes-cbc",
                                _ => "unknown",
                            },
                        );
                    }
                    2 => {
                        o.s(
                            "isakmp.hash",
                            match v {
                                1 => "md5",
                                2 => "sha",
                                4 => "sha2-256",
                                5 => "sha2-384",
                                6 => "sha2-512",
                                _ => "unknown",
                            },
                        );
                    }
                    3 => {
                        o.s(
                            "isakmp.authMethod",
                            match v {
                                1 => "psk",
                                3 => "rsa-sig",
                                _ => "unknown",
                            },
                        );
                    }
                    4 => {
                        o.s(
                            "isakmp.dhGroup",
                            match v {
                                1 => "modp768",
                                2 => "modp1024",
                                5 => "modp1536",
                                14 => "modp2048",
                                19 => "ecp256",
                                20 => "ecp384",
                                21 => "ecp521",
                                _ => "unknown",
                            },
                        );
                    }
                    _ => {}
                }
                a += 4;
            } else {
                a += 4 + len;
            }
        }
        at += tl;
    }
}

// ---------------------------------------------------------------- RADIUS

fn radius(o: &mut Out<'_, '_>, _st: &mut State, _d: usize, data: &[u8]) -> ParserStatus {
    if data.len() < 20 {
        return ParserStatus::Continue;
    }
    let name = match data[0] {
        1 => "access-request",
        2 => "access-accept",
        3 => "access-reject",
        4 => "accounting-request",
        5 => "accounting-response",
        11 => "access-challenge",
        _ => "unknown",
    };
    o.s("radius.msgType", name);
    let len = usize::from(be16(data, 2).unwrap_or(0)).min(data.len());
    let mut at = 20;
    while at + 2 <= len {
        let t = data[at];
        let l = usize::from(data[at + 1]);
        if l < 2 {
            break;
        }
        let Some(v) = data.get(at + 2..at + l) else {
            break;
        };
        match t {
            1 => {
                o.s("radius.user", &util::text(v));
            }
            4 if v.len() == 4 => {
                o.ip(
                    "radius.nas-ip",
                    std::net::IpAddr::V4([v[0], v[1], v[2], v[3]].into()),
                );
            }
            5 if v.len() == 4 => {
                o.i("radius.nas-port", i64::from(be32(v, 0).unwrap_or(0)));
            }
            8 if v.len() == 4 => {
                o.ip(
                    "radius.framed-ip",
                    std::net::IpAddr::V4([v[0], v[1], v[2], v[3]].into()),
                );
            }
            31 => {
                let s: String = util::text(v)
                    .to_lowercase()
                    .chars()
                    .filter(char::is_ascii_hexdigit)
                    .collect();
                if s.len() == 12 {
                    let parts: Vec<&str> = (0..6).map(|i| &s[i * 2..i * 2 + 2]).collect();
                    o.s("radius.mac", &parts.join(":"));
                }
            }
            _ => {}
        }
        at += l;
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- LDAP

fn ldap_classify(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    if dir == Direction::FromSource && data.first() == Some(&0x30) {
        attach(cx, "ldap", "ldap", ldap, None);
    }
}

fn ldap(o: &mut Out<'_, '_>, _st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if d != 0 {
        return ParserStatus::Continue;
    }
    let mut rest = data;
    while let Some((msg, next)) = super::der::read(rest) {
        rest = next;
        let mut it = super::der::children(msg.value);
        let _id = it.next();
        let Some(op) = it.next() else { continue };
        if op.tag == 0x60 {
            // BindRequest: version, name, authentication choice.
            let mut b = super::der::children(op.value);
            let _v = b.next();
            if let Some(name) = b.next() {
                let n = util::text(name.value);
                o.s("ldap.bindname", if n.is_empty() { "<ROOT>" } else { &n });
            }
            if let Some(auth) = b.next() {
                let kind = match auth.tag {
                    0x80 if auth.value.is_empty() => "none",
                    0x80 => "simple",
                    _ => "sasl",
                };
                o.s("ldap.authtype", kind);
            }
        }
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- Synchrophasor

fn synchrophasor_classify(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    let udp = cx.meta.transport != Transport::Tcp;
    if data.len() < 16 || (udp && (cx.meta.src_port == 53 || cx.meta.dst_port == 53)) {
        return;
    }
    let version = data[1] & 0x0f;
    let size = usize::from(be16(data, 2).unwrap_or(0));
    if (1..=2).contains(&version)
        && (data[1] >> 4) & 7 <= 5
        && size >= 16
        && (!udp || size <= data.len())
    {
        attach(cx, "synchrophasor", "synchrophasor", synchrophasor, None);
    }
}

// ---------------------------------------------------------------- DCE/RPC

/// Well-known DCE/RPC interface UUIDs and their names.
const DCERPC_INTERFACES: &[(&str, &str)] = &[
    ("e3514235-4b06-11d1-ab04-00c04fc2dcd2", "drsuapi"),
    ("12345778-1234-abcd-ef00-0123456789ac", "samr"),
    ("12345778-1234-abcd-ef00-0123456789ab", "lsarpc"),
    ("12345678-1234-abcd-ef00-01234567cffb", "netlogon"),
    ("12345678-1234-abcd-ef00-0123456789ab", "spoolss"),
    ("367abb81-9844-35f1-ad32-98f038001003", "svcctl"),
    ("4b324fc8-1670-01d3-1278-5a47bf6ee188", "srvsvc"),
    ("1ff70682-0a51-30e8-076d-740be8cee98b", "atsvc"),
    ("338cd001-2244-31f1-aaaa-900038001003", "winreg"),
    ("c681d488-d850-11d0-8c52-00c04fd90f7e", "efsrpc"),
    ("df1941c5-fe89-4e79-bf10-463657acf44d", "efsr"),
    ("6bffd098-a112-3610-9833-46c3f87e345a", "wkssvc"),
    ("3919286a-b10c-11d0-9ba8-00c04fd92ef5", "dssetup"),
    ("e1af8308-5d1f-11c9-91a4-08002b14a0fa", "epmapper"),
    ("86d35949-83c9-4044-b424-db363231fd0c", "itaskscheduler"),
    ("00000131-0000-0000-c000-000000000046", "iremunknown"),
    ("00000134-0000-0000-c000-000000000046", "iremunknown2"),
    ("000001a0-0000-0000-c000-000000000046", "isystemactivator"),
    ("afa8bd80-7d8a-11c9-bef4-08002b102989", "mgmt"),
    ("99fcfec4-5260-101b-bbcb-00aa0021347a", "ioxidresolver"),
    ("4d9f4ab8-7d1c-11cf-861e-0020af6e7c57", "isystemactivator"),
];

fn dcerpc_uuid(b: &[u8], le: bool) -> Option<String> {
    let b = b.get(..16)?;
    let (a, x, y) = if le {
        (le32(b, 0)?, le16(b, 4)?, le16(b, 6)?)
    } else {
        (be32(b, 0)?, be16(b, 4)?, be16(b, 6)?)
    };
    Some(format!(
        "{:08x}-{:04x}-{:04x}-{}-{}",
        a,
        x,
        y,
        util::hex(&b[8..10]),
        util::hex(&b[10..16])
    ))
}

fn dcerpc(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if st.buf[d].len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    st.buf[d].extend_from_slice(data);
    loop {
        let b = &st.buf[d];
        if b.len() < 16 {
            break;
        }
        let le = b[4] & 0x10 != 0;
        let rd16 = |at: usize| if le { le16(b, at) } else { be16(b, at) };
        let frag = usize::from(rd16(8).unwrap_or(0));
        // A fragment length that cannot be right drops what is buffered
        // (the next data may start a fragment again).
        if !(16..=8192).contains(&frag) {
            o.tag("dcerpc:bad-fraglen");
            st.buf[d].clear();
            break;
        }
        if b.len() < frag {
            break;
        }
        let ptype = b[2];
        let name = match ptype {
            0 => "request",
            1 => "ping",
            2 => "response",
            3 => "fault",
            4 => "working",
            5 => "nocall",
            6 => "reject",
            7 => "ack",
            8 => "cl-cancel",
            9 => "fack",
            10 => "cancel-ack",
            11 => "bind",
            12 => "bind-ack",
            13 => "bind-nak",
            14 => "alter-context",
            15 => "alter-context-resp",
            16 => "auth3",
            17 => "shutdown",
            18 => "co-cancel",
            19 => "orphaned",
            _ => "unknown",
        };
        o.s("dcerpc.msgType", name);
        let body = &b[16..frag];
        match ptype {
            11 | 14 => {
                let n = body.get(8).copied().unwrap_or(0);
                let mut at = 12;
                for _ in 0..n.min(16) {
                    let Some(uuid) = body.get(at + 4..at + 20).and_then(|u| dcerpc_uuid(u, le))
                    else {
                        break;
                    };
                    let ver = if le {
                        le16(body, at + 20)
                    } else {
                        be16(body, at + 20)
                    }
                    .unwrap_or(0);
                    let ntrans = usize::from(body.get(at + 2).copied().unwrap_or(0));
                    o.s("dcerpc.uuid", &uuid);
                    o.s("dcerpc.version", &ver.to_string());
                    if let Some((_, name)) = DCERPC_INTERFACES.iter().find(|(u, _)| *u == uuid) {
                        o.s("dcerpc.interface", name);
                        o.protocol(name);
                    }
                    at += 24 + ntrans * 20;
                }
            }
            0 => {
                if let Some(op) = if le { le16(body, 6) } else { be16(body, 6) } {
                    o.i("dcerpc.opnum", i64::from(op));
                }
            }
            _ => {}
        }
        st.buf[d].drain(..frag);
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- Diameter

fn diameter_classify(cx: &mut ClassifyContext<'_>, d: &[u8], _dir: Direction) {
    // By content only over TCP and SCTP; UDP needs the Diameter port.
    let port = cx.meta.src_port == 3868 || cx.meta.dst_port == 3868;
    if cx.meta.transport == Transport::Udp && !port {
        return;
    }
    // Version 1, a length that fits, reserved command flag bits clear.
    if d.len() >= 20
        && d[0] == 1
        && util::be24(d, 1).is_some_and(|l| l as usize >= 20 && l % 4 == 0)
        && d[4] & 0x0f == 0
    {
        attach(cx, "diameter", "diameter", diameter, None);
    }
}

fn diameter_cmd(code: u32) -> Option<&'static str> {
    Some(match code {
        257 => "Capabilities-Exchange",
        258 => "Re-Auth",
        265 => "AA",
        268 => "Diameter-EAP",
        271 => "Accounting",
        272 => "Credit-Control",
        274 => "Abort-Session",
        275 => "Session-Termination",
        280 => "Device-Watchdog",
        282 => "Disconnect-Peer",
        300 => "User-Authorization",
        301 => "Server-Assignment",
        302 => "Location-Info",
        303 => "Multimedia-Auth",
        304 => "Registration-Termination",
        305 => "Push-Profile",
        306 => "User-Data",
        307 => "Profile-Update",
        308 => "Subscribe-Notifications",
        309 => "Push-Notification",
        316 => "Update-Location",
        317 => "Cancel-Location",
        318 => "Authentication-Information",
        319 => "Insert-Subscriber-Data",
        320 => "Delete-Subscriber-Data",
        321 => "Purge-UE",
        322 => "Reset",
        323 => "Notify",
        _ => return None,
    })
}

fn diameter_app(id: u32) -> Option<&'static str> {
    Some(match id {
        0 => "Common",
        1 => "NASREQ",
        2 => "Mobile-IPv4",
        3 => "Base-Accounting",
        4 => "Credit-Control",
        5 => "EAP",
        6 => "SIP",
        16777216 => "3GPP-Cx",
        16777217 => "3GPP-Sh",
        16777236 => "3GPP-Rx",
        16777238 => "3GPP-Gx",
        16777251 => "3GPP-S6a",
        16777252 => "3GPP-S13",
        16777267 => "3GPP-S9",
        16777272 => "3GPP-S6b",
        4294967295 => "Relay",
        _ => return None,
    })
}

fn diameter(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if st.buf[d].len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    st.buf[d].extend_from_slice(data);
    loop {
        let b = &st.buf[d];
        if b.len() < 20 {
            break;
        }
        if b[0] != 1 {
            return ParserStatus::Done;
        }
        let len = util::be24(b, 1).unwrap_or(0) as usize;
        if len < 20 {
            return ParserStatus::Done;
        }
        if b.len() < len {
            break;
        }
        let flags = b[4];
        let cmd = util::be24(b, 5).unwrap_or(0);
        let app = be32(b, 8).unwrap_or(0);
        let kind = if flags & 0x80 != 0 {
            "Request"
        } else {
            "Answer"
        };
        match diameter_cmd(cmd) {
            Some(n) => o.s("diameter.cmd", &format!("{n}-{kind} ({cmd})")),
            None => o.s("diameter.cmd", &format!("Unknown-{kind} ({cmd})")),
        };
        match diameter_app(app) {
            Some(n) => o.s("diameter.app", &format!("{n} ({app})")),
            None => o.s("diameter.app", &format!("Unknown ({app})")),
        };
        let mut at = 20;
        while at + 8 <= len {
            let code = be32(b, at).unwrap_or(0);
            let aflags = b[at + 4];
            let alen = util::be24(b, at + 5).unwrap_or(0) as usize;
            if alen < 8 {
                break;
            }
            let hdr = if aflags & 0x80 != 0 { 12 } else { 8 };
            let Some(v) = b.get(at + hdr..at + alen) else {
                break;
            };
            let field = match code {
                263 => Some("diameter.sessionId"),
                264 => Some("diameter.originHost"),
                296 => Some("diameter.originRealm"),
                293 => Some("diameter.destHost"),
                283 => Some("diameter.destRealm"),
                1 => Some("diameter.user"),
                _ => None,
            };
            if let Some(f) = field {
                o.s(f, &util::text(v));
            } else if code == 268 && v.len() == 4 {
                o.i("diameter.resultCode", i64::from(be32(v, 0).unwrap_or(0)));
            }
            at += alen.div_ceil(4) * 4;
        }
        st.buf[d].drain(..len);
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- ADB

/// ADB state flags.
const ADB_SYNC: u32 = 1;
const ADB_SHELL2: u32 = 2;
const ADB_TLS: u32 = 4;
const ADB_SMART: u32 = 8;

fn adb_service(o: &mut Out<'_, '_>, st: &mut State, svc: &[u8]) {
    let svc = svc.strip_suffix(b"\0").unwrap_or(svc);
    let end = svc
        .iter()
        .position(|&c| c == b':' || c == b',')
        .unwrap_or(svc.len());
    let name = util::text(&svc[..end]);
    o.s("adb.service", &name);
    match name.as_str() {
        "sync" => {
            st.flags |= ADB_SYNC;
            o.tag("adb:sync");
        }
        "shell" if svc[end..].starts_with(b",v2") => {
            st.flags |= ADB_SHELL2;
            o.tag("adb:shell-v2");
        }
        _ => {}
    }
    let mut rest = svc.get(end + 1..).unwrap_or(&[]);
    if name == "host" {
        // host:forward:LOCAL;REMOTE (smart socket requests)
        rest = rest.strip_prefix(b"forward:").map_or(&[][..], |r| r);
        if rest.is_empty() {
            return;
        }
        adb_forward(o, "forward", rest);
        return;
    }
    if name == "forward" {
        adb_forward(o, "forward", rest);
    } else if name == "reverse"
        && let Some(r) = rest.strip_prefix(b"forward:")
    {
        adb_forward(o, "reverse", r);
    }
}

fn adb_forward(o: &mut Out<'_, '_>, dir: &str, spec: &[u8]) {
    let Some(semi) = spec.iter().position(|&c| c == b';') else {
        return;
    };
    o.s("adb.forward.direction", dir);
    o.s("adb.forward.local", &util::text(&spec[..semi]));
    o.s("adb.forward.remote", &util::text(&spec[semi + 1..]));
}

fn adb_sync_ops(o: &mut Out<'_, '_>, mut p: &[u8]) {
    while p.len() >= 8 {
        let id = &p[..4];
        let len = le32(p, 4).unwrap_or(0) as usize;
        if !id.iter().all(u8::is_ascii_uppercase) {
            return;
        }
        o.s("adb.sync.operation", &util::text(id));
        let carries_len = !matches!(id, b"DONE" | b"OKAY" | b"QUIT");
        let body_len = if carries_len { len } else { 0 };
        let Some(body) = p.get(8..8 + body_len) else {
            return;
        };
        if matches!(id, b"STAT" | b"LIST" | b"SEND" | b"RECV") {
            let path = body.split(|&c| c == b',').next().unwrap_or(body);
            o.s("adb.sync.path", &util::text(path));
        }
        p = &p[8 + body_len..];
    }
}

fn adb_shell2(o: &mut Out<'_, '_>, mut p: &[u8]) {
    while p.len() >= 5 {
        let id = p[0];
        let len = le32(p, 1).unwrap_or(0) as usize;
        let Some(body) = p.get(5..5 + len) else {
            return;
        };
        if id == 3
            && let Some(&code) = body.first()
        {
            o.s("adb.shell.exitcode", &code.to_string());
        }
        p = &p[5 + len..];
    }
}

fn adb(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if st.flags & ADB_TLS != 0 {
        return ParserStatus::Done;
    }
    if st.flags & ADB_SMART != 0
        || (st.count[0] + st.count[1] == 0
            && data.len() >= 4
            && data[..4].iter().all(u8::is_ascii_hexdigit))
    {
        // The host-side smart socket protocol: 4 hex digits of length, text.
        st.flags |= ADB_SMART;
        if d == 0
            && let Some(len) = std::str::from_utf8(&data[..4.min(data.len())])
                .ok()
                .and_then(|h| usize::from_str_radix(h, 16).ok())
            && let Some(req) = data.get(4..4 + len)
        {
            adb_service(o, st, req);
        }
        return ParserStatus::Continue;
    }
    if st.buf[d].len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    st.buf[d].extend_from_slice(data);
    loop {
        let b = &st.buf[d];
        if b.len() < 24 {
            break;
        }
        let cmd = &b[..4];
        if !cmd.iter().all(u8::is_ascii_uppercase) || le32(b, 20) != le32(b, 0).map(|c| !c) {
            return ParserStatus::Done;
        }
        let a0 = le32(b, 4).unwrap_or(0);
        let a1 = le32(b, 8).unwrap_or(0);
        let n = le32(b, 12).unwrap_or(0) as usize;
        if n > MAX_BUF {
            return ParserStatus::Done;
        }
        if b.len() < 24 + n {
            break;
        }
        let cmd = util::text(cmd).to_ascii_lowercase();
        let payload = b[24..24 + n].to_vec();
        st.buf[d].drain(..24 + n);
        st.count[d] += 1;
        o.s("adb.command", &cmd);
        match cmd.as_str() {
            "cnxn" => {
                o.s("adb.version", &format!("0x{a0:08x}"));
                o.s("adb.maxpayload", &a1.to_string());
                let mut parts = payload.split(|&c| c == b':');
                if let Some(t) = parts.next() {
                    o.s("adb.systemtype", &util::text(t));
                }
                if let Some(serial) = parts.next()
                    && !serial.is_empty()
                {
                    o.s("adb.serial", &util::text(serial));
                }
            }
            "auth" => {
                let t = match a0 {
                    1 => "token",
                    2 => "signature",
                    3 => "rsapublickey",
                    _ => "unknown",
                };
                o.s("adb.authtype", t);
            }
            "open" => {
                o.s("adb.streamid", &a0.to_string());
                adb_service(o, st, &payload);
            }
            "okay" | "clse" | "wrte" => {
                o.s("adb.streamid", &format!("{a0}-{a1}"));
                if cmd == "wrte" {
                    if st.flags & ADB_SYNC != 0 {
                        adb_sync_ops(o, &payload);
                    }
                    if st.flags & ADB_SHELL2 != 0 && d == 1 {
                        adb_shell2(o, &payload);
                    }
                }
            }
            "stls" => {
                o.tag("adb:tls");
                if st.count[0] > 0 && st.count[1] > 0 && d == 1 {
                    o.tag("adb:tls-encrypted");
                    st.flags |= ADB_TLS;
                    st.reclassify = true;
                    return ParserStatus::Done;
                }
            }
            _ => {}
        }
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- SIGTRAN (M3UA / M2UA, SCCP, TCAP, CAMEL)

fn sigtran_classify(cx: &mut ClassifyContext<'_>, d: &[u8], _dir: Direction) {
    if cx.meta.transport == Transport::Sctp && d.len() >= 8 && d[0] == 1 && d[1] == 0 {
        // The protocol (m2ua or m3ua) is named by the first DATA message.
        if !cx.has_parser("sigtran") {
            cx.attach(Box::new(Simple {
                name: "sigtran",
                handler: sigtran,
                state: State::default(),
            }));
        }
    }
}

fn sigtran(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    // A message longer than its chunk continues in the next chunks (SCTP
    // fragments of one user message).
    if st.buf[d].len() + data.len() > MAX_BUF {
        st.buf[d].clear();
        return ParserStatus::Continue;
    }
    st.buf[d].extend_from_slice(data);
    while st.buf[d].len() >= 8 {
        let b = &st.buf[d];
        if b[0] != 1 {
            st.buf[d].clear();
            break;
        }
        let len = be32(b, 4).unwrap_or(0) as usize;
        if len < 8 {
            st.buf[d].clear();
            break;
        }
        if b.len() < len {
            break;
        }
        let msg: Vec<u8> = st.buf[d].drain(..len).collect();
        sigtran_message(o, &msg);
    }
    ParserStatus::Continue
}

/// One M3UA (transfer DATA) or M2UA (MAUP DATA) message.
fn sigtran_message(o: &mut Out<'_, '_>, data: &[u8]) {
    let (class, kind) = (data[2], data[3]);
    if kind != 1 || !matches!(class, 1 | 6) {
        return;
    }
    o.protocol(if class == 1 { "m3ua" } else { "m2ua" });
    let mut at = 8;
    while at + 4 <= data.len() {
        let tag = be16(data, at).unwrap_or(0);
        let l = usize::from(be16(data, at + 2).unwrap_or(0));
        if l < 4 {
            break;
        }
        let Some(v) = data.get(at + 4..at + l) else {
            break;
        };
        match (class, tag) {
            // M3UA Protocol Data: OPC, DPC, SI, NI, MP, SLS, user data.
            (1, 0x0210) if v.len() >= 12 => {
                mtp3_user(o, v[8], &v[12..]);
                return;
            }
            // Older M3UA drafts and M2UA Protocol Data 1: an MTP3 message
            // (SIO, routing label, user data).
            (1, 0x0002) | (6, 0x0300) if v.len() >= 5 => {
                mtp3_user(o, v[0] & 0x0f, &v[5..]);
                return;
            }
            // M2UA Protocol Data 2: a priority octet, then MTP3.
            (6, 0x0301) if v.len() >= 6 => {
                mtp3_user(o, v[1] & 0x0f, &v[6..]);
                return;
            }
            _ => {}
        }
        at += l.div_ceil(4) * 4;
    }
}

fn mtp3_user(o: &mut Out<'_, '_>, si: u8, data: &[u8]) {
    o.i("m3ua.si", i64::from(si));
    match si {
        3 => sccp(o, data),
        4 => o.protocol("tup"),
        5 => o.protocol("isup"),
        _ => {}
    }
}

/// The point code of an SCCP party address (ITU: AI, then PC if bit 0).
fn sccp_pc(addr: &[u8]) -> Option<u16> {
    let ai = *addr.first()?;
    if ai & 0x01 == 0 {
        return None;
    }
    Some(le16(addr, 1)? & 0x3fff)
}

fn sccp(o: &mut Out<'_, '_>, d: &[u8]) {
    // UDT (9) / XUDT (17): type, class, pointers to called, calling, data.
    if d.len() < 5 || !matches!(d[0], 9 | 17) {
        return;
    }
    o.protocol("sccp");
    let ptr = |i: usize| -> Option<&[u8]> {
        let p = i + usize::from(*d.get(i)?);
        let l = usize::from(*d.get(p)?);
        d.get(p + 1..p + 1 + l)
    };
    let (called_i, calling_i, data_i) = (2, 3, 4);
    if let Some(pc) = ptr(called_i).and_then(sccp_pc) {
        o.i("sccp.dst", i64::from(pc));
    }
    if let Some(pc) = ptr(calling_i).and_then(sccp_pc) {
        o.i("sccp.src", i64::from(pc));
    }
    if let Some(user) = ptr(data_i) {
        tcap(o, user);
    }
}

fn camel_op(op: i64) -> &'static str {
    match op {
        0 => "initialDP",
        16 => "assistRequestInstructions",
        17 => "establishTemporaryConnection",
        18 => "disconnectForwardConnection",
        19 => "connectToResource",
        20 => "connect",
        22 => "releaseCall",
        23 => "requestReportBCSMEvent",
        24 => "eventReportBCSM",
        31 => "continue",
        33 => "resetTimer",
        34 => "furnishChargingInformation",
        35 => "applyCharging",
        36 => "applyChargingReport",
        44 => "callInformationReport",
        45 => "callInformationRequest",
        46 => "sendChargingInformation",
        47 => "playAnnouncement",
        48 => "promptAndCollectUserInformation",
        49 => "specializedResourceReport",
        53 => "cancel",
        55 => "activityTest",
        _ => "unknown",
    }
}

/// BCD digits of an ISUP-style number (two header octets, filler F).
fn isup_digits(b: &[u8]) -> String {
    let mut s = String::new();
    for &x in b.iter().skip(2) {
        for nib in [x & 0x0f, x >> 4] {
            if nib == 0x0f {
                return s;
            }
            s.push(char::from_digit(u32::from(nib), 16).unwrap_or('?'));
        }
    }
    s
}

fn tcap(o: &mut Out<'_, '_>, d: &[u8]) {
    use super::der::{children_lenient as children, read_lenient};
    let Some((msg, _)) = read_lenient(d) else {
        return;
    };
    // Begin/Continue/End/Unidirectional: find the component portion.
    let camel = memchr::memmem::find(msg.value, &[0x04, 0x00, 0x00, 0x01, 0x00]).is_some();
    for part in children(msg.value) {
        if part.tag != 0x6c {
            continue;
        }
        for comp in children(part.value) {
            if comp.tag != 0xa1 {
                continue;
            }
            let mut it = children(comp.value);
            let _invoke_id = it.next();
            let Some(op) = it.next() else { continue };
            if op.tag != 0x02 || op.value.is_empty() || op.value.len() > 4 {
                continue;
            }
            let code = op.value.iter().fold(0i64, |a, &b| (a << 8) | i64::from(b));
            o.i("tcap.opcode", code);
            if camel {
                o.protocol("camel");
                o.s("camel.op", camel_op(code));
                if let Some(arg) = it.next() {
                    for f in children(arg.value) {
                        if f.tag == 0x83 {
                            o.s("camel.calling", &isup_digits(f.value));
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- NBNS

/// A NetBIOS first-level encoded name (32 letters) without its suffix
/// byte and padding.
fn nbns_name(label: &[u8]) -> Option<String> {
    if label.len() != 32 {
        return None;
    }
    let raw: Vec<u8> = label
        .chunks_exact(2)
        .map(|c| (c[0].wrapping_sub(b'A') << 4) | (c[1].wrapping_sub(b'A') & 0x0f))
        .collect();
    let name: String = raw[..15]
        .iter()
        .filter(|c| c.is_ascii_graphic() || **c == b' ')
        .map(|&c| c as char)
        .collect();
    Some(name.trim_end().to_string())
}

fn nbns(o: &mut Out<'_, '_>, _st: &mut State, _d: usize, m: &[u8]) -> ParserStatus {
    if m.len() < 12 {
        return ParserStatus::Continue;
    }
    let counts =
        [be16(m, 4), be16(m, 6), be16(m, 8), be16(m, 10)].map(|c| usize::from(c.unwrap_or(0)));
    let mut at = 12;
    let total = (counts[0] + counts[1] + counts[2] + counts[3]).min(64);
    for i in 0..total {
        let Some((n, next)) = super::dns::name(m, at) else {
            break;
        };
        let label = n.split('.').next().unwrap_or("");
        let name = nbns_name(label.as_bytes());
        let Some(t) = be16(m, next) else { break };
        if let Some(name) = &name
            && !name.is_empty()
        {
            o.s("host.nbns", name);
            o.s("nbns.name", name);
            o.s("nbns.query.host", name);
        }
        if i < counts[0] {
            o.s(
                "nbns.query.type",
                if t == 0x20 {
                    "NB"
                } else if t == 0x21 {
                    "NBSTAT"
                } else {
                    "UNKNOWN"
                },
            );
            at = next + 4;
            continue;
        }
        let Some(rdlen) = be16(m, next + 8) else {
            break;
        };
        let rd_at = next + 10;
        let Some(rd) = m.get(rd_at..rd_at + usize::from(rdlen)) else {
            break;
        };
        if t == 0x20 {
            for entry in rd.chunks_exact(6) {
                o.ip(
                    "ip.nbns",
                    IpAddr::V4([entry[2], entry[3], entry[4], entry[5]].into()),
                );
            }
        }
        at = rd_at + usize::from(rdlen);
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- NBDS

/// The end of an encoded NetBIOS name (length 32 label and scope labels).
fn netbios_name_end(b: &[u8], mut at: usize) -> Option<usize> {
    if *b.get(at)? != 0x20 {
        return None;
    }
    at += 33;
    loop {
        let l = usize::from(*b.get(at)?);
        at += 1;
        if l == 0 {
            return Some(at);
        }
        at += l;
    }
}

/// A NetBIOS datagram (direct unique/group or broadcast, RFC 1002 4.4.2):
/// `nbds`, and `smb` when the user data is an SMB (browser mailslot)
/// message.
fn nbds_classify(cx: &mut ClassifyContext<'_>, d: &[u8], _dir: Direction) {
    if d.len() < 14 || !(0x10..=0x12).contains(&d[0]) {
        return;
    }
    cx.add_protocol("nbds");
    let user = netbios_name_end(d, 14).and_then(|at| netbios_name_end(d, at));
    if user.is_some_and(|at| d.get(at..at + 4) == Some(b"\xffSMB")) {
        cx.add_protocol("smb");
    }
}

// ---------------------------------------------------------------- DNP3

fn dnp3_func(f: u8) -> &'static str {
    match f {
        0 => "Confirm",
        1 => "Read",
        2 => "Write",
        3 => "Select",
        4 => "Operate",
        5 => "DirectOperate",
        6 => "DirectOperateNoAck",
        7 => "ImmediateFreeze",
        13 => "ColdRestart",
        14 => "WarmRestart",
        20 => "EnableUnsolicited",
        21 => "DisableUnsolicited",
        23 => "DelayMeasurement",
        129 => "Response",
        130 => "UnsolicitedResponse",
        _ => "Unknown",
    }
}

fn dnp3(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if st.buf[d].len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    st.buf[d].extend_from_slice(data);
    loop {
        let b = &st.buf[d];
        if b.len() < 10 {
            break;
        }
        if b[0] != 0x05 || b[1] != 0x64 || b[2] < 5 {
            return ParserStatus::Done;
        }
        // Length counts ctrl+dst+src (5) and user data; each 16 data bytes
        // carry a 2-byte CRC.
        let user = usize::from(b[2]) - 5;
        let total = 10 + user + user.div_ceil(16) * 2;
        if b.len() < total {
            break;
        }
        o.i("dnp3.dst", i64::from(le16(b, 4).unwrap_or(0)));
        o.i("dnp3.src", i64::from(le16(b, 6).unwrap_or(0)));
        // First data block: transport header, application control, function.
        if user >= 3 {
            let f = b[12];
            o.i("dnp3.func", i64::from(f));
            o.s("dnp3.funcName", dnp3_func(f));
        }
        st.buf[d].drain(..total);
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- Synchrophasor (IEEE C37.118)

fn synchrophasor(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if !st.tcp {
        if data.len() < 16 || data[0] != 0xaa {
            return ParserStatus::Done;
        }
        synchrophasor_frame(o, data);
        return ParserStatus::Continue;
    }
    if st.buf[d].len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    st.buf[d].extend_from_slice(data);
    while st.buf[d].len() >= 16 {
        let b = &st.buf[d];
        if b[0] != 0xaa {
            // Lost sync: resume at the next sync byte.
            match memchr::memchr(0xaa, &b[1..]) {
                Some(i) => {
                    st.buf[d].drain(..=i);
                    continue;
                }
                None => return ParserStatus::Done,
            }
        }
        let size = usize::from(be16(b, 2).unwrap_or(0));
        if size < 16 {
            st.buf[d].drain(..1);
            continue;
        }
        if size > b.len() {
            break;
        }
        let f: Vec<u8> = st.buf[d].drain(..size).collect();
        synchrophasor_frame(o, &f);
    }
    ParserStatus::Continue
}

/// One C37.118 frame: its type and stream id; commands; the PMU station
/// names, PMU count and data rate of configuration frames.
fn synchrophasor_frame(o: &mut Out<'_, '_>, f: &[u8]) {
    let mut c = util::Cursor::new(f);
    if f.len() < 16 || c.u8() != 0xaa {
        return;
    }
    let kind = (c.u8() >> 4) & 7;
    let names = ["data", "header", "cfg1", "cfg2", "command", "cfg3"];
    if let Some(n) = names.get(usize::from(kind)) {
        o.s("synchrophasor.frameType", n);
    }
    let size = i64::from(c.u16());
    o.i("synchrophasor.idcode", i64::from(c.u16()));
    c.skip(8);
    // The payload between the header and the checksum must be there.
    let payload = size - 16;
    if payload <= 0 || (c.remaining() as i64) < payload + 2 {
        return;
    }
    match kind {
        4 if payload >= 2 => {
            o.i("synchrophasor.cmd", i64::from(c.u16()));
        }
        2 | 3 | 5 => {
            let cfg3 = kind == 5;
            if cfg3 && payload >= 6 {
                c.skip(2);
            }
            if c.remaining() < 6 {
                return;
            }
            c.skip(4);
            let num = c.u16();
            o.i("synchrophasor.numPMU", i64::from(num));
            for _ in 0..num {
                if c.is_err() {
                    break;
                }
                if cfg3 {
                    if c.remaining() < 1 {
                        break;
                    }
                    let l = usize::from(c.u8());
                    if c.remaining() < l {
                        break;
                    }
                    if let Some(name) = c.take(l) {
                        o.s("synchrophasor.station", &util::text(until_nul(name)));
                    }
                } else {
                    let Some(name) = c.take(16) else { break };
                    let end = name.iter().rposition(|&b| b != b' ').map_or(0, |e| e + 1);
                    if end > 0 {
                        o.s(
                            "synchrophasor.station",
                            &util::text(until_nul(&name[..end])),
                        );
                    }
                }
                c.skip(if cfg3 { 20 } else { 4 });
                if c.remaining() < 6 {
                    break;
                }
                let (ph, an, dg) = (
                    usize::from(c.u16()),
                    usize::from(c.u16()),
                    usize::from(c.u16()),
                );
                if cfg3 {
                    // Length-prefixed names: one per phasor and analog,
                    // sixteen per digital status word.
                    for _ in 0..ph + an + 16 * dg {
                        if c.is_err() {
                            break;
                        }
                        let l = usize::from(c.u8());
                        c.skip(l);
                    }
                    // PHSCALE (12 each), ANSCALE (8), DIGUNIT (4), then
                    // latitude, longitude, elevation, service class,
                    // window and group delay.
                    c.skip(12 * ph + 8 * an + 4 * dg);
                    c.skip(21);
                } else {
                    c.skip(16 * ph + 16 * an + 256 * dg);
                    c.skip(4 * ph + 4 * an + 4 * dg);
                }
                c.skip(4);
            }
            if !c.is_err() && c.remaining() >= 2 {
                o.i("synchrophasor.dataRate", i64::from(c.u16()));
            }
        }
        _ => {}
    }
}

// ---------------------------------------------------------------- BACnet/IP

fn bacnet_service(confirmed: bool, s: u8) -> &'static str {
    if confirmed {
        match s {
            0 => "acknowledge-alarm",
            1 => "confirmed-cov-notification",
            2 => "confirmed-event-notification",
            3 => "get-alarm-summary",
            4 => "get-enrollment-summary",
            5 => "subscribe-cov",
            6 => "atomic-read-file",
            7 => "atomic-write-file",
            8 => "add-list-element",
            9 => "remove-list-element",
            10 => "create-object",
            11 => "delete-object",
            12 => "read-property",
            13 => "read-property-conditional",
            14 => "read-property-multiple",
            15 => "write-property",
            16 => "write-property-multiple",
            17 => "device-communication-control",
            18 => "confirmed-private-transfer",
            19 => "confirmed-text-message",
            20 => "reinitialize-device",
            21 => "vt-open",
            22 => "vt-close",
            23 => "vt-data",
            26 => "read-range",
            28 => "subscribe-cov-property",
            29 => "get-event-information",
            _ => "unknown",
        }
    } else {
        match s {
            0 => "i-am",
            1 => "i-have",
            2 => "unconfirmed-cov-notification",
            3 => "unconfirmed-event-notification",
            4 => "unconfirmed-private-transfer",
            5 => "unconfirmed-text-message",
            6 => "time-synchronization",
            7 => "who-has",
            8 => "who-is",
            9 => "utc-time-synchronization",
            10 => "write-group",
            _ => "unknown",
        }
    }
}

/// The first character string in BACnet-encoded tags (application tag 7,
/// or context tag `ctx`), without its character-set byte.
/// The first character string found scanning tag bytes (application tag 7
/// or context tag 7), as Arkime scans: byte by byte, without skipping the
/// values of other tags; the first byte of the value is the character set.
fn bacnet_string(b: &[u8]) -> Option<String> {
    let mut c = util::Cursor::new(b);
    while c.remaining() >= 3 {
        let tag = c.u8();
        if tag & 0xf8 != 0x70 && tag & 0xf8 != 0x38 {
            continue;
        }
        let len = match tag & 7 {
            5 => match c.u8() {
                254 if c.remaining() >= 2 => usize::from(c.u16()),
                255 if c.remaining() >= 4 => c.u32() as usize,
                254 | 255 => return None,
                l => usize::from(l),
            },
            l @ 0..=4 => usize::from(l),
            _ => continue,
        };
        if len < 1 || c.remaining() < len {
            return None;
        }
        c.skip(1);
        let s = c.take(len - 1)?;
        return (!s.is_empty()).then(|| util::text(until_nul(s)));
    }
    None
}

fn bacnet(o: &mut Out<'_, '_>, _st: &mut State, _d: usize, data: &[u8]) -> ParserStatus {
    if data.len() < 4 || data[0] != 0x81 {
        return ParserStatus::Continue;
    }
    let func = match data[1] {
        0x00 => "bvlc-result",
        0x01 => "write-bdt",
        0x02 => "read-bdt",
        0x03 => "read-bdt-ack",
        0x04 => "forwarded-npdu",
        0x05 => "register-foreign-device",
        0x06 => "read-fdt",
        0x07 => "read-fdt-ack",
        0x08 => "delete-fdt-entry",
        0x09 => "distribute-broadcast-to-network",
        0x0a => "original-unicast",
        0x0b => "original-broadcast",
        0x0c => "secure-bvll",
        _ => "unknown",
    };
    o.s("bacnet.function", func);
    let mut at = if data[1] == 0x04 { 10 } else { 4 };
    // NPDU: version, control, optional destination/source, hop count.
    // Some senders put the APDU straight after the BVLC header.
    let has_npdu = data.get(at) == Some(&1);
    let Some(&ctrl) = data.get(at + 1) else {
        return ParserStatus::Continue;
    };
    let ctrl = if has_npdu { ctrl } else { 0 };
    at += if has_npdu { 2 } else { 0 };
    if ctrl & 0x20 != 0 {
        let Some(&dlen) = data.get(at + 2) else {
            return ParserStatus::Continue;
        };
        at += 3 + usize::from(dlen);
    }
    if ctrl & 0x08 != 0 {
        let Some(&slen) = data.get(at + 2) else {
            return ParserStatus::Continue;
        };
        at += 3 + usize::from(slen);
    }
    if ctrl & 0x20 != 0 {
        at += 1;
    }
    if ctrl & 0x80 != 0 {
        return ParserStatus::Continue;
    }
    let Some(apdu) = data.get(at..) else {
        return ParserStatus::Continue;
    };
    let Some(&first) = apdu.first() else {
        return ParserStatus::Continue;
    };
    let kind = first >> 4;
    let name = match kind {
        0 => "confirmed-request",
        1 => "unconfirmed-request",
        2 => "simple-ack",
        3 => "complex-ack",
        4 => "segment-ack",
        5 => "error",
        6 => "reject",
        7 => "abort",
        _ => "unknown",
    };
    o.s("bacnet.apduType", name);
    let segmented = first & 0x08 != 0;
    let (svc_at, confirmed) = match kind {
        0 => (if segmented { 5 } else { 3 }, true),
        1 => (1, false),
        2 | 5 => (2, true),
        3 => (if segmented { 4 } else { 2 }, true),
        _ => return ParserStatus::Continue,
    };
    let Some(&svc) = apdu.get(svc_at) else {
        return ParserStatus::Continue;
    };
    o.s("bacnet.service", bacnet_service(confirmed, svc));
    let args = apdu.get(svc_at + 1..).unwrap_or(&[]);
    // I-Am, I-Have and Who-Has; ReadProperty(Multiple) acknowledgements.
    let name = match (kind, svc) {
        (1, 0 | 1 | 7) | (3, 12 | 14) => bacnet_string(args),
        _ => None,
    };
    if let Some(n) = name {
        o.s("bacnet.objectName", &n);
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- DHCP / DHCPv6

fn dhcp(o: &mut Out<'_, '_>, _st: &mut State, _d: usize, m: &[u8]) -> ParserStatus {
    // op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr,
    // giaddr, chaddr(16), sname(64), file(128), magic cookie, options.
    if m.len() < 240 || be32(m, 236) != Some(0x6382_5363) {
        return ParserStatus::Continue;
    }
    o.s("dhcp.id", &format!("{:x}", be32(m, 4).unwrap_or(0)));
    if m[1] == 1 && m[2] == 6 {
        o.s("dhcp.mac", &util::hex_colon(&m[28..34]));
    }
    let mut at = 240;
    while at < m.len() {
        let code = m[at];
        if code == 255 {
            break;
        }
        if code == 0 {
            at += 1;
            continue;
        }
        let Some(&l) = m.get(at + 1) else { break };
        let Some(v) = m.get(at + 2..at + 2 + usize::from(l)) else {
            break;
        };
        match code {
            53 if !v.is_empty() => {
                let t = match v[0] {
                    1 => "DISCOVER",
                    2 => "OFFER",
                    3 => "REQUEST",
                    4 => "DECLINE",
                    5 => "ACK",
                    6 => "NAK",
                    7 => "RELEASE",
                    8 => "INFORM",
                    _ => "UNKNOWN",
                };
                o.s("dhcp.type", t);
            }
            50 if v.len() == 4 => {
                o.ip(
                    "dhcp.request-ip",
                    IpAddr::V4([v[0], v[1], v[2], v[3]].into()),
                );
            }
            _ => {}
        }
        at += 2 + usize::from(l);
    }
    ParserStatus::Continue
}

fn dhcpv6(o: &mut Out<'_, '_>, _st: &mut State, _d: usize, m: &[u8]) -> ParserStatus {
    if m.len() < 4 {
        return ParserStatus::Continue;
    }
    let t = match m[0] {
        1 => "SOLICIT",
        2 => "ADVERTISE",
        3 => "REQUEST",
        4 => "CONFIRM",
        5 => "RENEW",
        6 => "REBIND",
        7 => "REPLY",
        8 => "RELEASE",
        9 => "DECLINE",
        10 => "RECONFIGURE",
        11 => "INFORMATION-REQUEST",
        12 => "RELAY-FORW",
        13 => "RELAY-REPL",
        _ => "UNKNOWN",
    };
    o.s("dhcp.type", t);
    if m[0] < 12 {
        o.s("dhcp.id", &format!("{:x}", util::be24(m, 1).unwrap_or(0)));
    }
    ParserStatus::Continue
}

// ---------------------------------------------------------------- S7comm (ISO-on-TCP)

fn s7_func(f: u8) -> &'static str {
    match f {
        0x00 => "CPU services",
        0x04 => "Read Var",
        0x05 => "Write Var",
        0x1a => "Request download",
        0x1b => "Download block",
        0x1c => "Download ended",
        0x1d => "Start upload",
        0x1e => "Upload",
        0x1f => "End upload",
        0x28 => "PLC Control",
        0x29 => "PLC Stop",
        0xf0 => "Setup communication",
        _ => "Unknown",
    }
}

fn s7comm(o: &mut Out<'_, '_>, st: &mut State, d: usize, data: &[u8]) -> ParserStatus {
    if st.buf[d].len() + data.len() > MAX_BUF {
        return ParserStatus::Done;
    }
    st.buf[d].extend_from_slice(data);
    loop {
        let b = &st.buf[d];
        if b.len() < 4 {
            break;
        }
        if b[0] != 3 {
            return ParserStatus::Done;
        }
        let len = usize::from(be16(b, 2).unwrap_or(0));
        if len < 7 {
            return ParserStatus::Done;
        }
        if b.len() < len {
            break;
        }
        let tpdu = b[4..len].to_vec();
        st.buf[d].drain(..len);
        // COTP data TPDU: length, 0xf0, EOT/number; then the S7 PDU.
        if tpdu.len() < 3 || tpdu[1] != 0xf0 {
            continue;
        }
        let s = &tpdu[1 + usize::from(tpdu[0])..];
        match s.first() {
            Some(0x32) if s.len() >= 10 => {
                let rosctr = s[1];
                o.s("s7comm.rosctr", &rosctr.to_string());
                o.s("s7comm.pduref", &be16(s, 4).unwrap_or(0).to_string());
                let mut at = 10;
                if matches!(rosctr, 2 | 3) {
                    let (Some(&class), Some(&code)) = (s.get(10), s.get(11)) else {
                        continue;
                    };
                    if class != 0 || code != 0 {
                        o.i("s7comm.errorClass", i64::from(class));
                        o.i("s7comm.errorCode", i64::from(code));
                    }
                    at = 12;
                }
                let plen = usize::from(be16(s, 6).unwrap_or(0));
                if plen == 0 {
                    continue;
                }
                let Some(&func) = s.get(at) else { continue };
                o.s("s7comm.func", &func.to_string());
                o.s("s7comm.funcName", s7_func(func));
            }
            Some(0x72) if s.len() >= 6 => {
                if st.flags & 1 == 0 {
                    st.flags |= 1;
                    o.fields.remove_protocol("s7comm");
                    o.protocol("s7comm-plus");
                }
                let skip = usize::from(s[4]);
                if let Some(&op) = s.get(5 + skip) {
                    o.s("s7comm.opcode", &op.to_string());
                }
            }
            _ => {}
        }
    }
    ParserStatus::Continue
}

#[cfg(test)]
mod tests {
    use crate::parsers::testutil::Harness;

    #[test]
    fn ftp_fields() {
        let mut h = Harness::tcp(21);
        h.feed(1, b"220 Welcome.\r\n");
        h.feed(0, b"USER Anon\r\nPASS x\r\nRETR a.txt\r\n");
        h.feed(1, b"331 ok\r\n");
        let j = h.json();
        assert_eq!(j["ftp"]["banner"], serde_json::json!(["Welcome."]));
        assert_eq!(j["user"], serde_json::json!(["anon"]));
        assert_eq!(
            j["ftp"]["command"],
            serde_json::json!(["USER", "PASS", "RETR"])
        );
        assert_eq!(j["tags"], serde_json::json!(["ftp:password"]));
    }

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// SCCP UDT carrying a TCAP Begin with a CAMEL InitialDP (calling
    /// party 1111111111).
    const SCCP_CAMEL: &str = "090003070b044364000a044314000a4e62504804123456786b262824060700118605010101a019601780020780a109060704000001003201be062804060251016c1ca11a02011002010030128007911111111111f18307911111111111f10000";

    fn sctp() -> Harness {
        let mut h = Harness::tcp(2905);
        h.meta.transport = crate::analyzer::Transport::Sctp;
        h.meta.ip_protocol = 132;
        h
    }

    #[test]
    fn m3ua_after_asp_up_and_fragmented() {
        let mut h = sctp();
        h.feed(0, &hex("0100030100000008"));
        h.feed(1, &hex("0100030400000008"));
        assert!(h.json()["protocol"].as_array().unwrap().is_empty());
        let pd = format!("00000258000001f403000000{SCCP_CAMEL}");
        let msg = format!(
            "01000101{:08x}0210{:04x}{pd}",
            12 + pd.len() / 2,
            4 + pd.len() / 2
        );
        let m = hex(&msg);
        // One message in two chunks.
        h.feed(0, &m[..40]);
        h.feed(0, &m[40..]);
        let j = h.json();
        assert_eq!(j["protocol"], serde_json::json!(["m3ua", "sccp", "camel"]));
        assert_eq!(j["m3ua"]["si"], serde_json::json!([3]));
        assert_eq!(j["camel"]["calling"], serde_json::json!(["111111111"]));
        assert_eq!(j["sccp"]["dst"], serde_json::json!([100]));
    }

    #[test]
    fn m2ua_protocol_data_2_and_old_m3ua_tag() {
        let mtp3 = format!("8314006400{SCCP_CAMEL}");
        let mut h = sctp();
        let m2ua = format!(
            "01000601{:08x}0301{:04x}3f{mtp3}",
            13 + mtp3.len() / 2,
            5 + mtp3.len() / 2
        );
        h.feed(0, &hex(&m2ua));
        let j = h.json();
        assert_eq!(j["protocol"], serde_json::json!(["m2ua", "sccp", "camel"]));
        let mut h = sctp();
        let m3ua = format!(
            "01000101{:08x}0002{:04x}{mtp3}",
            12 + mtp3.len() / 2,
            4 + mtp3.len() / 2
        );
        h.feed(0, &hex(&m3ua));
        assert_eq!(h.json()["m3ua"]["si"], serde_json::json!([3]));
        // A length past the end waits (bounded), garbage is dropped.
        let mut h = sctp();
        h.feed(0, &hex("01000101ffffffff0210"));
        h.feed(0, &vec![0xab; super::MAX_BUF]);
        h.feed(0, &hex("0100010100000004"));
        assert!(h.json()["m3ua"].is_null());
    }

    #[test]
    fn modbus_roles_follow_the_server_port() {
        // Client to port 502: a request, then an exception response.
        let mut h = Harness::tcp(502);
        h.feed(0, &hex("0000000000060a0800040000"));
        h.feed(1, &hex("0000000000030a880b"));
        let j = h.json();
        assert_eq!(j["modbus"]["funccode"], serde_json::json!([8]));
        assert_eq!(j["modbus"]["transactionid"], serde_json::json!([0]));
        assert_eq!(j["modbus"]["exccode"], serde_json::json!([11]));
        assert_eq!(j["modbus"]["unitid"], serde_json::json!(10));
        // The side that opened the connection is the server (port 502):
        // what it sends are responses.
        let mut h = Harness::tcp(40001);
        h.meta.src_port = 502;
        h.feed(0, &hex("0001000000040a810600"));
        h.feed(0, &hex("0001000000040a810500"));
        let j = h.json();
        assert_eq!(j["modbus"]["exccode"], serde_json::json!([6, 5]));
        assert!(j["modbus"]["funccode"].is_null());
        // Lengths outside 2..=255 end parsing.
        let mut h = Harness::tcp(502);
        h.feed(0, &hex("0000000000060a0800040000"));
        h.feed(0, &hex("000000000fff0a08"));
        assert!(h.app.parser_names().is_empty());
    }

    #[test]
    fn dcerpc_bad_fraglen_resyncs() {
        let mut h = Harness::tcp(135);
        let req = hex(
            "05000003100000002c000000010000006400000000000300000000000000000000000000000000000000000000",
        );
        let rsp = hex(
            "05000203100000002c000000010000003200000000000000000000000000000000000000000000000000000000",
        );
        h.feed(
            0,
            &hex("05000b03100000001c00000001000000b810b8100000000000000000"),
        );
        // The tail of a segment that overlapped earlier data.
        h.feed(1, &rsp[20..]);
        h.feed(0, &req);
        h.feed(1, &rsp);
        let j = h.json();
        assert_eq!(j["tags"], serde_json::json!(["dcerpc:bad-fraglen"]));
        assert_eq!(
            j["dcerpc"]["msgType"],
            serde_json::json!(["bind", "request", "response"])
        );
        assert_eq!(j["dcerpc"]["opnum"], serde_json::json!([3]));
    }

    #[test]
    fn binary_protocols_survive_garbage() {
        let inputs: [&[u8]; 8] = [
            b"SSH-2.0-x\r\n\x00\x00\x00\x0c\x0a\x14",
            b"\x10\xff\xff\xff\xff\x7f\x00\x04MQTT",
            &[0xff; 20],
            b"\x03\x00\x00\x0b\x06\xe0\x00\x00\x00\x00\x00",
            b"\x00\x01a",
            b"\x00\x00\x00\x08\x04\xd2\x16\x2f\x00\x00\x00\x09\x00\x03\x00\x00",
            b"\x30\x84\xff\xff\xff\xff",
            b"INVITE sip:x SIP/2.0\r\nVia: \r\n",
        ];
        for input in inputs {
            for port in [
                22u16, 1883, 179, 3389, 69, 5432, 389, 5060, 502, 1812, 500, 3478,
            ] {
                let mut h = Harness::tcp(port);
                h.feed(0, input);
                h.feed(1, input);
                h.finish();
                let mut h = Harness::udp(port);
                h.feed(0, input);
                h.feed(1, input);
                h.finish();
            }
        }
    }
}
