//! moonwire's own decoders for the layers below the Lua protocols: frame,
//! Ethernet (with VLAN tags), Linux SLL, BSD loopback, raw IP, IPv4, IPv6,
//! UDP and TCP headers. Each step fills `pinfo` and, when a tree is built,
//! adds items laid out the way tshark shows them; the engine decides what
//! runs next (Lua tables first, then these decoders).

use crate::ctx::{Addr, COL_DST, COL_INFO, COL_PROTOCOL, COL_SRC, Ctx, port_type};
use crate::fields::{FType, FieldDef, FieldId, FieldKind, Registry, Value, ValueStrings, base};
use crate::tree::{NO_NODE, NodeId, ROOT};

/// Field ids of the built-in layers.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct BaseFields {
    pub frame: FieldId,
    pub frame_encap: FieldId,
    pub frame_time: FieldId,
    pub frame_epoch: FieldId,
    pub frame_delta: FieldId,
    pub frame_rel: FieldId,
    pub frame_number: FieldId,
    pub frame_len: FieldId,
    pub frame_cap_len: FieldId,
    pub frame_protocols: FieldId,
    pub eth: FieldId,
    pub eth_dst: FieldId,
    pub eth_src: FieldId,
    pub eth_addr: FieldId,
    pub eth_type: FieldId,
    pub vlan: FieldId,
    pub vlan_id: FieldId,
    pub vlan_etype: FieldId,
    pub sll: FieldId,
    pub ip: FieldId,
    pub ip_version: FieldId,
    pub ip_hdr_len: FieldId,
    pub ip_len: FieldId,
    pub ip_id: FieldId,
    pub ip_ttl: FieldId,
    pub ip_proto: FieldId,
    pub ip_checksum: FieldId,
    pub ip_src: FieldId,
    pub ip_dst: FieldId,
    pub ip_addr: FieldId,
    pub ipv6: FieldId,
    pub ipv6_plen: FieldId,
    pub ipv6_nxt: FieldId,
    pub ipv6_hlim: FieldId,
    pub ipv6_src: FieldId,
    pub ipv6_dst: FieldId,
    pub ipv6_addr: FieldId,
    pub udp: FieldId,
    pub udp_srcport: FieldId,
    pub udp_dstport: FieldId,
    pub udp_port: FieldId,
    pub udp_length: FieldId,
    pub udp_checksum: FieldId,
    pub udp_stream: FieldId,
    pub tcp: FieldId,
    pub tcp_srcport: FieldId,
    pub tcp_dstport: FieldId,
    pub tcp_port: FieldId,
    pub tcp_stream: FieldId,
    pub tcp_len: FieldId,
    pub tcp_seq: FieldId,
    pub tcp_ack: FieldId,
    pub tcp_hdr_len: FieldId,
    pub tcp_flags: FieldId,
    pub tcp_window: FieldId,
    pub tcp_checksum: FieldId,
    pub tcp_payload: FieldId,
    pub tcp_segment_data: FieldId,
    pub tcp_segments: FieldId,
    pub tcp_segment: FieldId,
    pub tcp_segment_count: FieldId,
    pub tcp_reassembled_length: FieldId,
    pub data: FieldId,
    pub data_data: FieldId,
    pub data_len: FieldId,
    pub lua_error: FieldId,
}

fn proto(reg: &mut Registry, abbrev: &str, name: &str) -> FieldId {
    reg.add(FieldDef::simple(
        abbrev,
        name,
        FType::Protocol,
        FieldKind::Protocol,
    ))
}

fn val(reg: &mut Registry, abbrev: &str, name: &str, t: FType) -> FieldId {
    reg.add(FieldDef::simple(abbrev, name, t, FieldKind::Value))
}

fn vs(pairs: &[(i64, &str)]) -> ValueStrings {
    ValueStrings::Map(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
}

const ETHERTYPES: [(i64, &str); 5] = [
    (0x0800, "IPv4"),
    (0x86dd, "IPv6"),
    (0x0806, "ARP"),
    (0x8100, "802.1Q Virtual LAN"),
    (0x88a8, "802.1ad Provider Bridge (Q-in-Q)"),
];

const IP_PROTOS: [(i64, &str); 6] = [
    (1, "ICMP"),
    (6, "TCP"),
    (17, "UDP"),
    (58, "ICMPv6"),
    (47, "GRE"),
    (132, "SCTP"),
];

impl BaseFields {
    /// Registers the built-in fields.
    pub fn register(r: &mut Registry) -> BaseFields {
        let mut f = BaseFields {
            frame: proto(r, "frame", "Frame"),
            ..BaseFields::default()
        };
        f.frame_encap = r.add(
            FieldDef::simple(
                "frame.encap_type",
                "Encapsulation type",
                FType::U16,
                FieldKind::Value,
            )
            .with_vs(vs(&[
                (1, "Ethernet"),
                (7, "Raw IP"),
                (25, "Linux cooked-mode capture v1"),
                (15, "NULL/Loopback"),
            ])),
        );
        f.frame_time = val(r, "frame.time", "Arrival Time", FType::AbsTime);
        f.frame_epoch = val(r, "frame.time_epoch", "Epoch Time", FType::RelTime);
        f.frame_delta = val(
            r,
            "frame.time_delta",
            "Time delta from previous captured frame",
            FType::RelTime,
        );
        f.frame_rel = val(
            r,
            "frame.time_relative",
            "Time since reference or first frame",
            FType::RelTime,
        );
        f.frame_number = val(r, "frame.number", "Frame Number", FType::U32);
        f.frame_len = val(r, "frame.len", "Frame Length", FType::U32);
        f.frame_cap_len = val(r, "frame.cap_len", "Capture Length", FType::U32);
        f.frame_protocols = val(r, "frame.protocols", "Protocols in frame", FType::String);
        f.eth = proto(r, "eth", "Ethernet II");
        f.eth_dst = val(r, "eth.dst", "Destination", FType::Ether);
        f.eth_src = val(r, "eth.src", "Source", FType::Ether);
        f.eth_addr = val(r, "eth.addr", "Address", FType::Ether);
        f.eth_type = r.add(
            FieldDef::simple("eth.type", "Type", FType::U16, FieldKind::Value)
                .with_base(base::HEX)
                .with_vs(vs(&ETHERTYPES)),
        );
        f.vlan = proto(r, "vlan", "802.1Q Virtual LAN");
        f.vlan_id = val(r, "vlan.id", "ID", FType::U16);
        f.vlan_etype = r.add(
            FieldDef::simple("vlan.etype", "Type", FType::U16, FieldKind::Value)
                .with_base(base::HEX)
                .with_vs(vs(&ETHERTYPES)),
        );
        f.sll = proto(r, "sll", "Linux cooked capture v1");
        f.ip = proto(r, "ip", "Internet Protocol Version 4");
        let mut ver = FieldDef::simple("ip.version", "Version", FType::U8, FieldKind::Value);
        ver.mask = 0xf0;
        f.ip_version = r.add(ver);
        f.ip_hdr_len = val(r, "ip.hdr_len", "Header Length", FType::U8);
        f.ip_len = val(r, "ip.len", "Total Length", FType::U16);
        f.ip_id = r.add(
            FieldDef::simple("ip.id", "Identification", FType::U16, FieldKind::Value)
                .with_base(base::HEX_DEC),
        );
        f.ip_ttl = val(r, "ip.ttl", "Time to Live", FType::U8);
        f.ip_proto = r.add(
            FieldDef::simple("ip.proto", "Protocol", FType::U8, FieldKind::Value)
                .with_vs(vs(&IP_PROTOS)),
        );
        f.ip_checksum = r.add(
            FieldDef::simple(
                "ip.checksum",
                "Header Checksum",
                FType::U16,
                FieldKind::Value,
            )
            .with_base(base::HEX),
        );
        f.ip_src = val(r, "ip.src", "Source Address", FType::Ipv4);
        f.ip_dst = val(r, "ip.dst", "Destination Address", FType::Ipv4);
        f.ip_addr = val(r, "ip.addr", "Source or Destination Address", FType::Ipv4);
        f.ipv6 = proto(r, "ipv6", "Internet Protocol Version 6");
        f.ipv6_plen = val(r, "ipv6.plen", "Payload Length", FType::U16);
        f.ipv6_nxt = r.add(
            FieldDef::simple("ipv6.nxt", "Next Header", FType::U8, FieldKind::Value)
                .with_vs(vs(&IP_PROTOS)),
        );
        f.ipv6_hlim = val(r, "ipv6.hlim", "Hop Limit", FType::U8);
        f.ipv6_src = val(r, "ipv6.src", "Source Address", FType::Ipv6);
        f.ipv6_dst = val(r, "ipv6.dst", "Destination Address", FType::Ipv6);
        f.ipv6_addr = val(r, "ipv6.addr", "Source or Destination Address", FType::Ipv6);
        f.udp = proto(r, "udp", "User Datagram Protocol");
        f.udp_srcport = val(r, "udp.srcport", "Source Port", FType::U16);
        f.udp_dstport = val(r, "udp.dstport", "Destination Port", FType::U16);
        f.udp_port = val(r, "udp.port", "Source or Destination Port", FType::U16);
        f.udp_length = val(r, "udp.length", "Length", FType::U16);
        f.udp_checksum = r.add(
            FieldDef::simple("udp.checksum", "Checksum", FType::U16, FieldKind::Value)
                .with_base(base::HEX),
        );
        f.udp_stream = val(r, "udp.stream", "Stream index", FType::U32);
        f.tcp = proto(r, "tcp", "Transmission Control Protocol");
        f.tcp_srcport = val(r, "tcp.srcport", "Source Port", FType::U16);
        f.tcp_dstport = val(r, "tcp.dstport", "Destination Port", FType::U16);
        f.tcp_port = val(r, "tcp.port", "Source or Destination Port", FType::U16);
        f.tcp_stream = val(r, "tcp.stream", "Stream index", FType::U32);
        f.tcp_len = val(r, "tcp.len", "TCP Segment Len", FType::U32);
        f.tcp_seq = val(r, "tcp.seq", "Sequence Number", FType::U32);
        f.tcp_ack = val(r, "tcp.ack", "Acknowledgment Number", FType::U32);
        f.tcp_hdr_len = val(r, "tcp.hdr_len", "Header Length", FType::U8);
        let mut flags = FieldDef::simple("tcp.flags", "Flags", FType::U16, FieldKind::Value)
            .with_base(base::HEX);
        flags.mask = 0x0fff;
        f.tcp_flags = r.add(flags);
        f.tcp_window = val(r, "tcp.window_size_value", "Window", FType::U16);
        f.tcp_checksum = r.add(
            FieldDef::simple("tcp.checksum", "Checksum", FType::U16, FieldKind::Value)
                .with_base(base::HEX),
        );
        f.tcp_payload = val(r, "tcp.payload", "TCP payload", FType::Bytes);
        f.tcp_segment_data = val(r, "tcp.segment_data", "TCP segment data", FType::Bytes);
        f.tcp_segments = r.add(FieldDef::simple(
            "tcp.segments",
            "Reassembled TCP Segments",
            FType::None,
            FieldKind::Value,
        ));
        f.tcp_segment = val(r, "tcp.segment", "Frame", FType::FrameNum);
        f.tcp_segment_count = val(r, "tcp.segment.count", "Segment count", FType::U32);
        f.tcp_reassembled_length = val(
            r,
            "tcp.reassembled.length",
            "Reassembled TCP length",
            FType::U32,
        );
        f.data = proto(r, "data", "Data");
        f.data_data = val(r, "data.data", "Data", FType::Bytes);
        f.data_len = val(r, "data.len", "Length", FType::U32);
        f.lua_error = r.add(FieldDef::simple(
            "_ws.lua.error.text",
            "Lua Error",
            FType::None,
            FieldKind::Text,
        ));
        f
    }
}

/// What the engine should run next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Payload of the given ethertype at `off..end` of the buffer.
    Ethertype(u16, u32, u32),
    /// Payload of the given IP protocol.
    IpProto(u8, u32, u32),
    /// Unrecognised bytes.
    Data(u32, u32),
}

/// Parsed UDP header.
#[derive(Debug, Clone, Copy)]
pub struct UdpInfo {
    /// Payload start.
    pub off: u32,
    /// Payload end.
    pub end: u32,
}

/// Parsed TCP header.
#[derive(Debug, Clone, Copy)]
pub struct TcpInfo {
    /// Payload start.
    pub off: u32,
    /// Payload end.
    pub end: u32,
    /// Raw sequence number.
    pub seq: u32,
    /// Flags (low 12 bits).
    pub flags: u16,
    /// Tree item of the TCP layer.
    pub node: NodeId,
}

#[inline]
fn be16(b: &[u8], o: usize) -> u16 {
    u16::from_be_bytes([b[o], b[o + 1]])
}

#[inline]
fn be32(b: &[u8], o: usize) -> u32 {
    u32::from_be_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

/// Text labels need the tree; skip the formatting when none is built.
fn tree_on(c: &Ctx, parent: NodeId) -> bool {
    c.build_tree && parent != NO_NODE
}

fn add(c: &mut Ctx, parent: NodeId, f: FieldId, v: Value, len: u32) -> NodeId {
    c.tree.add(parent, f, v, len)
}

fn add_hidden(c: &mut Ctx, parent: NodeId, f: FieldId, v: Value) {
    let n = c.tree.add(parent, f, v, 0);
    if let Some(n) = c.tree.node_mut(n) {
        n.hidden = true;
    }
}

fn add_generated(c: &mut Ctx, parent: NodeId, f: FieldId, v: Value) -> NodeId {
    let n = c.tree.add(parent, f, v, 0);
    if let Some(n) = c.tree.node_mut(n) {
        n.generated = true;
    }
    n
}

fn set_text(c: &mut Ctx, n: NodeId, s: String) {
    if let Some(n) = c.tree.node_mut(n) {
        n.text = Some(s);
    }
}

/// Sets the frame-level packet info and adds the frame tree.
pub fn frame(c: &mut Ctx, linktype: u32, first_ts: (i64, u32), prev_ts: (i64, u32)) {
    let p = &c.pinfo;
    let (sec, nsec, len, caplen, number) = (p.abs_sec, p.abs_nsec, p.len, p.caplen, p.number);
    let diff = |a: (i64, u32), b: (i64, u32)| -> (i64, u32) {
        let mut s = a.0 - b.0;
        let mut n = a.1 as i64 - b.1 as i64;
        if n < 0 {
            n += 1_000_000_000;
            s -= 1;
        }
        (s, n as u32)
    };
    let rel = diff((sec, nsec), first_ts);
    let delta = diff((sec, nsec), prev_ts);
    c.pinfo.rel_ts = rel.0 as f64 + rel.1 as f64 / 1e9;
    c.pinfo.delta_ts = delta.0 as f64 + delta.1 as f64 / 1e9;
    if !c.build_tree {
        return;
    }
    let f = c.base.clone();
    let n = add(c, ROOT, f.frame, Value::None, caplen);
    set_text(
        c,
        n,
        format!(
            "Frame {number}: {len} bytes on wire ({} bits), {caplen} bytes captured ({} bits)",
            len as u64 * 8,
            caplen as u64 * 8
        ),
    );
    let encap = match linktype {
        1 => 1,
        101 | 12 | 14 | 228 | 229 => 7,
        113 => 25,
        0 => 15,
        other => other,
    };
    add(c, n, f.frame_encap, Value::U(encap as u64), 0);
    add(c, n, f.frame_time, Value::Time(sec, nsec), 0);
    let e = add(c, n, f.frame_epoch, Value::Time(sec, nsec), 0);
    set_text(c, e, format!("Epoch Time: {sec}.{nsec:09} seconds"));
    add_generated(c, n, f.frame_delta, Value::Time(delta.0, delta.1));
    add_generated(c, n, f.frame_rel, Value::Time(rel.0, rel.1));
    add(c, n, f.frame_number, Value::U(number as u64), 0);
    let l = add(c, n, f.frame_len, Value::U(len as u64), 0);
    set_text(
        c,
        l,
        format!("Frame Length: {len} bytes ({} bits)", len as u64 * 8),
    );
    let l = add(c, n, f.frame_cap_len, Value::U(caplen as u64), 0);
    set_text(
        c,
        l,
        format!(
            "Capture Length: {caplen} bytes ({} bits)",
            caplen as u64 * 8
        ),
    );
    add_generated(c, n, f.frame_protocols, Value::Str(String::new()));
}

/// First step for a link type.
pub fn link(c: &mut Ctx, linktype: u32, buf: u32, end: u32) -> Step {
    match linktype {
        1 => eth(c, buf, 0, end, ROOT),
        101 | 12 | 14 => {
            let b = &c.bufs[buf as usize];
            match b.first().map(|x| x >> 4) {
                Some(4) => Step::Ethertype(0x0800, 0, end),
                Some(6) => Step::Ethertype(0x86dd, 0, end),
                _ => Step::Data(0, end),
            }
        }
        228 => Step::Ethertype(0x0800, 0, end),
        229 => Step::Ethertype(0x86dd, 0, end),
        113 => sll(c, buf, end),
        0 => {
            let b = &c.bufs[buf as usize];
            if end < 4 {
                return Step::Data(0, end);
            }
            let fam = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            let fam = if fam > 0xffff { fam.swap_bytes() } else { fam };
            match fam {
                2 => Step::Ethertype(0x0800, 4, end),
                24 | 28 | 30 => Step::Ethertype(0x86dd, 4, end),
                _ => Step::Data(4, end),
            }
        }
        _ => Step::Data(0, end),
    }
}

fn sll(c: &mut Ctx, buf: u32, end: u32) -> Step {
    if end < 16 {
        return Step::Data(0, end);
    }
    let et = be16(&c.bufs[buf as usize], 14);
    if tree_on(c, ROOT) {
        let f = c.base.sll;
        add(c, ROOT, f, Value::None, 16);
        c.layers.push("sll".into());
    }
    Step::Ethertype(et, 16, end)
}

/// Ethernet II header at `off`.
pub fn eth(c: &mut Ctx, buf: u32, off: u32, end: u32, parent: NodeId) -> Step {
    if end < off + 14 {
        return Step::Data(off, end);
    }
    let b = &c.bufs[buf as usize];
    let o = off as usize;
    let mut dst = [0u8; 6];
    let mut src = [0u8; 6];
    dst.copy_from_slice(&b[o..o + 6]);
    src.copy_from_slice(&b[o + 6..o + 12]);
    let et = be16(b, o + 12);
    c.pinfo.dl_src = Addr::Ether(src);
    c.pinfo.dl_dst = Addr::Ether(dst);
    c.pinfo.src = c.pinfo.dl_src;
    c.pinfo.dst = c.pinfo.dl_dst;
    if tree_on(c, parent) {
        let f = c.base.clone();
        c.layers.push("eth".into());
        c.layers.push("ethertype".into());
        let n = add(c, parent, f.eth, Value::None, 14);
        let (s, d) = (Addr::Ether(src), Addr::Ether(dst));
        set_text(c, n, format!("Ethernet II, Src: {s}, Dst: {d}"));
        add(c, n, f.eth_dst, Value::Ether(dst), 6);
        add(c, n, f.eth_src, Value::Ether(src), 6);
        add_hidden(c, n, f.eth_addr, Value::Ether(dst));
        add_hidden(c, n, f.eth_addr, Value::Ether(src));
        add(c, n, f.eth_type, Value::U(et as u64), 2);
    }
    Step::Ethertype(et, off + 14, end)
}

/// 802.1Q / 802.1ad tag at `off`.
pub fn vlan(c: &mut Ctx, buf: u32, off: u32, end: u32, parent: NodeId) -> Step {
    if end < off + 4 {
        return Step::Data(off, end);
    }
    let b = &c.bufs[buf as usize];
    let tci = be16(b, off as usize);
    let et = be16(b, off as usize + 2);
    if tree_on(c, parent) {
        let f = c.base.clone();
        c.layers.push("vlan".into());
        c.layers.push("ethertype".into());
        let n = add(c, parent, f.vlan, Value::None, 4);
        set_text(
            c,
            n,
            format!(
                "802.1Q Virtual LAN, PRI: {}, DEI: {}, ID: {}",
                tci >> 13,
                (tci >> 12) & 1,
                tci & 0x0fff
            ),
        );
        add(c, n, f.vlan_id, Value::U((tci & 0x0fff) as u64), 2);
        add(c, n, f.vlan_etype, Value::U(et as u64), 2);
    }
    Step::Ethertype(et, off + 4, end)
}

/// IPv4 header at `off`.
pub fn ipv4(c: &mut Ctx, buf: u32, off: u32, end: u32, parent: NodeId) -> Step {
    let b = &c.bufs[buf as usize];
    let o = off as usize;
    if end < off + 20 || b[o] >> 4 != 4 {
        return Step::Data(off, end);
    }
    let ihl = ((b[o] & 0x0f) as u32) * 4;
    let total = be16(b, o + 2) as u32;
    if ihl < 20 || end < off + ihl {
        return Step::Data(off, end);
    }
    let pend = if total >= ihl {
        (off + total).min(end)
    } else {
        end
    };
    let id = be16(b, o + 4);
    let frag = be16(b, o + 6);
    let ttl = b[o + 8];
    let proto = b[o + 9];
    let csum = be16(b, o + 10);
    let src = [b[o + 12], b[o + 13], b[o + 14], b[o + 15]];
    let dst = [b[o + 16], b[o + 17], b[o + 18], b[o + 19]];
    c.pinfo.net_src = Addr::V4(src);
    c.pinfo.net_dst = Addr::V4(dst);
    c.pinfo.src = c.pinfo.net_src;
    c.pinfo.dst = c.pinfo.net_dst;
    if tree_on(c, parent) {
        let f = c.base.clone();
        c.layers.push("ip".into());
        let n = add(c, parent, f.ip, Value::None, ihl);
        set_text(
            c,
            n,
            format!(
                "Internet Protocol Version 4, Src: {}, Dst: {}",
                Addr::V4(src),
                Addr::V4(dst)
            ),
        );
        let v = add(c, n, f.ip_version, Value::U(4), 1);
        if let Some(v) = c.tree.node_mut(v) {
            v.raw = 0x40;
        }
        let h = add(c, n, f.ip_hdr_len, Value::U(ihl as u64), 1);
        set_text(
            c,
            h,
            format!(
                ".... {:04b} = Header Length: {ihl} bytes ({})",
                ihl / 4,
                ihl / 4
            ),
        );
        add(c, n, f.ip_len, Value::U(total as u64), 2);
        add(c, n, f.ip_id, Value::U(id as u64), 2);
        add(c, n, f.ip_ttl, Value::U(ttl as u64), 1);
        add(c, n, f.ip_proto, Value::U(proto as u64), 1);
        let k = add(c, n, f.ip_checksum, Value::U(csum as u64), 2);
        set_text(
            c,
            k,
            format!("Header Checksum: 0x{csum:04x} [validation disabled]"),
        );
        add(c, n, f.ip_src, Value::Ipv4(src), 4);
        add(c, n, f.ip_dst, Value::Ipv4(dst), 4);
        add_hidden(c, n, f.ip_addr, Value::Ipv4(src));
        add_hidden(c, n, f.ip_addr, Value::Ipv4(dst));
    }
    // Fragments other than the first carry no transport header.
    if frag & 0x1fff != 0 {
        return Step::Data(off + ihl, pend);
    }
    Step::IpProto(proto, off + ihl, pend)
}

/// IPv6 header (and common extension headers) at `off`.
pub fn ipv6(c: &mut Ctx, buf: u32, off: u32, end: u32, parent: NodeId) -> Step {
    let b = &c.bufs[buf as usize];
    let o = off as usize;
    if end < off + 40 || b[o] >> 4 != 6 {
        return Step::Data(off, end);
    }
    let plen = be16(b, o + 4) as u32;
    let mut nxt = b[o + 6];
    let hlim = b[o + 7];
    let mut src = [0u8; 16];
    let mut dst = [0u8; 16];
    src.copy_from_slice(&b[o + 8..o + 24]);
    dst.copy_from_slice(&b[o + 24..o + 40]);
    let pend = (off + 40 + plen).min(end);
    let mut p = off + 40;
    // Hop-by-hop, routing, destination options: skip to the transport.
    while matches!(nxt, 0 | 43 | 60) && p + 8 <= pend {
        let hb = &c.bufs[buf as usize];
        let next = hb[p as usize];
        let l = (hb[p as usize + 1] as u32 + 1) * 8;
        nxt = next;
        p += l;
    }
    c.pinfo.net_src = Addr::V6(src);
    c.pinfo.net_dst = Addr::V6(dst);
    c.pinfo.src = c.pinfo.net_src;
    c.pinfo.dst = c.pinfo.net_dst;
    if tree_on(c, parent) {
        let f = c.base.clone();
        c.layers.push("ipv6".into());
        let n = add(c, parent, f.ipv6, Value::None, 40);
        set_text(
            c,
            n,
            format!(
                "Internet Protocol Version 6, Src: {}, Dst: {}",
                Addr::V6(src),
                Addr::V6(dst)
            ),
        );
        add(c, n, f.ipv6_plen, Value::U(plen as u64), 2);
        add(c, n, f.ipv6_nxt, Value::U(nxt as u64), 1);
        add(c, n, f.ipv6_hlim, Value::U(hlim as u64), 1);
        add(c, n, f.ipv6_src, Value::Ipv6(src), 16);
        add(c, n, f.ipv6_dst, Value::Ipv6(dst), 16);
        add_hidden(c, n, f.ipv6_addr, Value::Ipv6(src));
        add_hidden(c, n, f.ipv6_addr, Value::Ipv6(dst));
    }
    if p > pend {
        return Step::Data(pend, pend);
    }
    Step::IpProto(nxt, p, pend)
}

/// UDP header at `off`; the engine dispatches the payload.
pub fn udp(
    c: &mut Ctx,
    buf: u32,
    off: u32,
    end: u32,
    parent: NodeId,
    stream: u32,
) -> Option<UdpInfo> {
    let b = &c.bufs[buf as usize];
    let o = off as usize;
    if end < off + 8 {
        return None;
    }
    let sport = be16(b, o);
    let dport = be16(b, o + 2);
    let ulen = be16(b, o + 4) as u32;
    let csum = be16(b, o + 6);
    let pend = if ulen >= 8 {
        (off + ulen).min(end)
    } else {
        end
    };
    let p = &mut c.pinfo;
    p.src_port = sport as u32;
    p.dst_port = dport as u32;
    p.port_type = port_type::UDP;
    p.stream = stream;
    c.cols[COL_PROTOCOL].set("UDP");
    let plen = pend - (off + 8);
    if c.build_tree || c.want_cols {
        use std::fmt::Write as _;
        let info = &mut c.cols[COL_INFO];
        info.text.clear();
        let _ = write!(info.text, "{sport} → {dport} Len={plen}");
        info.set = true;
    }
    if tree_on(c, parent) {
        let f = c.base.clone();
        c.layers.push("udp".into());
        let node = add(c, parent, f.udp, Value::None, 8);
        set_text(
            c,
            node,
            format!("User Datagram Protocol, Src Port: {sport}, Dst Port: {dport}"),
        );
        add(c, node, f.udp_srcport, Value::U(sport as u64), 2);
        add(c, node, f.udp_dstport, Value::U(dport as u64), 2);
        add_hidden(c, node, f.udp_port, Value::U(sport as u64));
        add_hidden(c, node, f.udp_port, Value::U(dport as u64));
        add(c, node, f.udp_length, Value::U(ulen as u64), 2);
        add(c, node, f.udp_checksum, Value::U(csum as u64), 2);
        add_generated(c, node, f.udp_stream, Value::U(stream as u64));
        c.tree
            .add_text(node, format!("UDP payload ({plen} bytes)"), plen);
    }
    Some(UdpInfo {
        off: off + 8,
        end: pend,
    })
}

/// TCP flag names for the info column, in tshark's order.
fn flag_names(flags: u16) -> String {
    let names = [
        (0x100, "NS"),
        (0x080, "CWR"),
        (0x040, "ECE"),
        (0x020, "URG"),
        (0x010, "ACK"),
        (0x008, "PSH"),
        (0x004, "RST"),
        (0x002, "SYN"),
        (0x001, "FIN"),
    ];
    let mut v: Vec<&str> = Vec::new();
    // tshark lists SYN, FIN, RST, PSH, ACK, URG, ECE, CWR, NS
    for bit in [
        0x002, 0x001, 0x004, 0x008, 0x010, 0x020, 0x040, 0x080, 0x100,
    ] {
        if flags & bit != 0
            && let Some((_, n)) = names.iter().find(|(b, _)| *b == bit)
        {
            v.push(n);
        }
    }
    v.join(", ")
}

/// TCP header at `off`; relative numbers come from the engine's stream
/// state.
#[allow(clippy::too_many_arguments)]
pub fn tcp(
    c: &mut Ctx,
    buf: u32,
    off: u32,
    end: u32,
    parent: NodeId,
    stream: u32,
    rel: impl FnOnce(u32, u32, u16) -> (u32, u32),
) -> Option<TcpInfo> {
    let b = &c.bufs[buf as usize];
    let o = off as usize;
    if end < off + 20 {
        return None;
    }
    let sport = be16(b, o);
    let dport = be16(b, o + 2);
    let seq = be32(b, o + 4);
    let ack = be32(b, o + 8);
    let hl = ((b[o + 12] >> 4) as u32) * 4;
    let flags = be16(b, o + 12) & 0x0fff;
    let window = be16(b, o + 14);
    let csum = be16(b, o + 16);
    if hl < 20 || end < off + hl {
        return None;
    }
    let plen = end - off - hl;
    let p = &mut c.pinfo;
    p.src_port = sport as u32;
    p.dst_port = dport as u32;
    p.port_type = port_type::TCP;
    p.stream = stream;
    let (rseq, rack) = rel(seq, ack, flags);
    c.cols[COL_PROTOCOL].set("TCP");
    if c.build_tree || c.want_cols {
        use std::fmt::Write as _;
        let info = &mut c.cols[COL_INFO];
        info.text.clear();
        let _ = write!(
            info.text,
            "{sport} → {dport} [{}] Seq={rseq}{} Win={window} Len={plen}",
            flag_names(flags),
            if flags & 0x010 != 0 {
                format!(" Ack={rack}")
            } else {
                String::new()
            }
        );
        info.set = true;
    }
    let mut node = NO_NODE;
    if tree_on(c, parent) {
        let f = c.base.clone();
        c.layers.push("tcp".into());
        node = add(c, parent, f.tcp, Value::None, hl);
        set_text(
            c,
            node,
            format!(
                "Transmission Control Protocol, Src Port: {sport}, Dst Port: {dport}, Seq: {rseq}{}, Len: {plen}",
                if flags & 0x010 != 0 {
                    format!(", Ack: {rack}")
                } else {
                    String::new()
                }
            ),
        );
        add(c, node, f.tcp_srcport, Value::U(sport as u64), 2);
        add(c, node, f.tcp_dstport, Value::U(dport as u64), 2);
        add_hidden(c, node, f.tcp_port, Value::U(sport as u64));
        add_hidden(c, node, f.tcp_port, Value::U(dport as u64));
        add_generated(c, node, f.tcp_stream, Value::U(stream as u64));
        add_generated(c, node, f.tcp_len, Value::U(plen as u64));
        let s = add(c, node, f.tcp_seq, Value::U(rseq as u64), 4);
        set_text(
            c,
            s,
            format!("Sequence Number: {rseq}    (relative sequence number)"),
        );
        let a = add(c, node, f.tcp_ack, Value::U(rack as u64), 4);
        set_text(
            c,
            a,
            format!("Acknowledgment Number: {rack}    (relative ack number)"),
        );
        let h = add(c, node, f.tcp_hdr_len, Value::U(hl as u64), 1);
        set_text(
            c,
            h,
            format!(
                "{:04b} .... = Header Length: {hl} bytes ({})",
                hl / 4,
                hl / 4
            ),
        );
        let fl = add(c, node, f.tcp_flags, Value::U(flags as u64), 2);
        if let Some(n) = c.tree.node_mut(fl) {
            n.raw = flags as u64;
        }
        let fl_text = format!("Flags: 0x{flags:03x} ({})", flag_names(flags));
        set_text(c, fl, fl_text);
        add(c, node, f.tcp_window, Value::U(window as u64), 2);
        let k = add(c, node, f.tcp_checksum, Value::U(csum as u64), 2);
        set_text(c, k, format!("Checksum: 0x{csum:04x} [unverified]"));
    }
    Some(TcpInfo {
        off: off + hl,
        end,
        seq,
        flags,
        node,
    })
}

/// The `data` dissector: shows undecoded bytes.
pub fn data(c: &mut Ctx, buf: u32, off: u32, len: u32, parent: NodeId) {
    if !tree_on(c, parent) || len == 0 {
        return;
    }
    let f = c.base.clone();
    c.layers.push("data".into());
    let bytes = {
        let b = &c.bufs[buf as usize];
        let s = (off as usize).min(b.len());
        let e = ((off + len) as usize).min(b.len());
        b[s..e].to_vec()
    };
    let n = add(c, parent, f.data, Value::None, len);
    set_text(c, n, format!("Data ({len} bytes)"));
    add(c, n, f.data_data, Value::Bytes(bytes), len);
    let l = add_generated(c, n, f.data_len, Value::U(len as u64));
    let _ = l;
}

/// Fills the default source/destination columns.
pub fn finish_columns(c: &mut Ctx) {
    let (s, d) = (c.pinfo.src, c.pinfo.dst);
    use std::fmt::Write as _;
    // Written into the columns' own strings: no allocation per packet.
    if !c.cols[COL_SRC].set {
        let t = &mut c.cols[COL_SRC].text;
        t.clear();
        let _ = write!(t, "{s}");
    }
    if !c.cols[COL_DST].set {
        let t = &mut c.cols[COL_DST].text;
        t.clear();
        let _ = write!(t, "{d}");
    }
}
