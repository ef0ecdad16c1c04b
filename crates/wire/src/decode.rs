//! One pass over a packet, from the link layer to the transport header.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use thiserror::Error;

use crate::bytes::{be16, be32, le16, le32, mac_at, u8_at};
use crate::{ether, ipproto};

/// How many VLAN tags a packet may carry before the rest are ignored.
pub const MAX_VLANS: usize = 4;
/// How many tunnel levels are remembered as outer addresses.
pub const MAX_OUTER: usize = 2;
/// Bound on layers walked, so nested tunnels cannot loop forever.
const MAX_LAYERS: usize = 24;

const VXLAN_PORT: u16 = 4789;
const GENEVE_PORT: u16 = 6081;
const VXLAN_GPE_PORT: u16 = 4790;
const GTPU_PORT: u16 = 2152;

/// What kind of problem stopped decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeErrorKind {
    /// The packet ends before a header does.
    Truncated,
    /// A header field is impossible (bad version, length too small, ...).
    Malformed,
    /// A layer moonwire does not decode (unknown link type, encrypted
    /// 802.11, ...).
    Unsupported,
}

/// A packet that could not be decoded, with the layer and offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("{kind:?} {layer} header at offset {offset}")]
pub struct DecodeError {
    /// What went wrong.
    pub kind: DecodeErrorKind,
    /// The header being decoded (e.g. "ipv4", "tcp").
    pub layer: &'static str,
    /// Byte offset of that header in the packet.
    pub offset: usize,
}

impl DecodeError {
    fn truncated(layer: &'static str, offset: usize) -> DecodeError {
        DecodeError {
            kind: DecodeErrorKind::Truncated,
            layer,
            offset,
        }
    }

    fn malformed(layer: &'static str, offset: usize) -> DecodeError {
        DecodeError {
            kind: DecodeErrorKind::Malformed,
            layer,
            offset,
        }
    }

    fn unsupported(layer: &'static str, offset: usize) -> DecodeError {
        DecodeError {
            kind: DecodeErrorKind::Unsupported,
            layer,
            offset,
        }
    }
}

/// Addresses of an enclosing (tunnel) layer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outer {
    /// Outer source IP.
    pub src_ip: Option<IpAddr>,
    /// Outer destination IP.
    pub dst_ip: Option<IpAddr>,
    /// Outer source MAC, when the tunnel carried Ethernet inside.
    pub src_mac: Option<[u8; 6]>,
    /// Outer destination MAC, when the tunnel carried Ethernet inside.
    pub dst_mac: Option<[u8; 6]>,
    /// The outer IP header's protocol number, when there was one.
    pub ip_protocol: Option<u8>,
    /// The outer IP header's TTL or hop limit, when there was one.
    pub ttl: Option<u8>,
}

/// The innermost IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport protocol (after IPv6 extension headers).
    pub proto: u8,
    /// TTL or hop limit.
    pub ttl: u8,
    /// TOS / traffic class byte (DSCP is the top six bits).
    pub tos: u8,
    /// Offset of the IP header in the packet.
    pub header_offset: usize,
    /// Length of the IP header including IPv6 extension headers.
    pub header_len: usize,
}

/// A fragment of an IP datagram (reassemble with [`crate::Defragmenter`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Datagram identification.
    pub id: u32,
    /// Byte offset of this fragment's data in the datagram.
    pub offset: u32,
    /// More fragments follow.
    pub more: bool,
    /// Offset of this fragment's data in the packet.
    pub data_offset: usize,
    /// Length of this fragment's data.
    pub data_len: usize,
}

/// TCP header facts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpInfo {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number.
    pub ack: u32,
    /// Flags: FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20,
    /// ECE 0x40, CWR 0x80, AE (ex-NS) 0x100.
    pub flags: u16,
    /// Window.
    pub window: u16,
}

impl TcpInfo {
    /// FIN flag.
    pub const FIN: u16 = 0x01;
    /// SYN flag.
    pub const SYN: u16 = 0x02;
    /// RST flag.
    pub const RST: u16 = 0x04;
    /// PSH flag.
    pub const PSH: u16 = 0x08;
    /// ACK flag.
    pub const ACK: u16 = 0x10;
    /// URG flag.
    pub const URG: u16 = 0x20;
    /// ECE flag.
    pub const ECE: u16 = 0x40;
    /// CWR flag.
    pub const CWR: u16 = 0x80;
    /// AE flag (formerly NS).
    pub const AE: u16 = 0x100;
}

/// ICMP / ICMPv6 type and code.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IcmpInfo {
    /// Message type.
    pub kind: u8,
    /// Code.
    pub code: u8,
    /// ICMPv6 rather than ICMPv4.
    pub v6: bool,
}

/// The transport layer found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Transport {
    /// No transport (non-IP, fragment, or decoding stopped at IP).
    #[default]
    None,
    /// TCP.
    Tcp(TcpInfo),
    /// UDP.
    Udp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// SCTP.
    Sctp {
        /// Source port.
        src_port: u16,
        /// Destination port.
        dst_port: u16,
    },
    /// ICMP or ICMPv6.
    Icmp(IcmpInfo),
    /// ESP with its SPI.
    Esp {
        /// Security parameters index.
        spi: u32,
    },
    /// Any other IP protocol (IGMP, PIM, OSPF, ...).
    Other,
}

/// Everything decoded from one packet. Reused across packets: [`decode`]
/// resets it first, so the hot path allocates nothing.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// Link type the packet was decoded with.
    pub linktype: u32,
    /// The innermost EtherType (0 when the link layer has none).
    pub ethertype: u16,
    /// The EtherType of the first Ethernet header (before any tunnel),
    /// which Arkime reports as the session's; 0 without Ethernet framing.
    pub first_ethertype: u16,
    /// The innermost Ethernet header carried an 802.3 length (an LLC
    /// frame) rather than an EtherType.
    pub ieee8023: bool,
    /// Innermost Ethernet source MAC.
    pub src_mac: Option<[u8; 6]>,
    /// Innermost Ethernet destination MAC.
    pub dst_mac: Option<[u8; 6]>,
    /// 802.1Q VLAN ids, outermost first.
    pub vlans: [u16; MAX_VLANS],
    /// How many of `vlans` are set.
    pub vlan_count: u8,
    /// 802.1ad (QinQ service tag) id.
    pub dot1ad: Option<u16>,
    /// VXLAN/Geneve network identifier.
    pub vni: Option<u32>,
    /// MPLS labels seen.
    pub mpls_labels: u8,
    /// Encapsulations crossed, as [`Decoded::TUNNEL_GRE`] etc. bits.
    pub tunnels: u8,
    /// Tunnel outer layers, outermost first.
    pub outers: [Outer; MAX_OUTER],
    /// How many of `outers` are set.
    pub outer_count: u8,
    /// The innermost IP header, if any.
    pub network: Option<Network>,
    /// The transport layer.
    pub transport: Transport,
    /// Set when the innermost IP packet is a fragment.
    pub fragment: Option<Fragment>,
    /// Offset of the transport payload in the packet.
    pub payload_offset: usize,
    /// Length of the transport payload.
    pub payload_len: usize,
}

impl Decoded {
    /// GRE was crossed.
    pub const TUNNEL_GRE: u8 = 0x01;
    /// PPPoE was crossed.
    pub const TUNNEL_PPPOE: u8 = 0x02;
    /// MPLS was crossed.
    pub const TUNNEL_MPLS: u8 = 0x04;
    /// GTP-U was crossed.
    pub const TUNNEL_GTP: u8 = 0x08;
    /// VXLAN was crossed.
    pub const TUNNEL_VXLAN: u8 = 0x10;
    /// Geneve was crossed.
    pub const TUNNEL_GENEVE: u8 = 0x20;
    /// PPP (outside PPPoE and the PPP link types) was crossed.
    pub const TUNNEL_PPP: u8 = 0x40;
    /// VXLAN-GPE was crossed.
    pub const TUNNEL_VXLAN_GPE: u8 = 0x80;

    /// Arkime's protocol names of the encapsulations crossed.
    pub fn tunnel_names(&self) -> impl Iterator<Item = &'static str> + '_ {
        [
            (Self::TUNNEL_GRE, "gre"),
            (Self::TUNNEL_PPPOE, "pppoe"),
            (Self::TUNNEL_MPLS, "mpls"),
            (Self::TUNNEL_GTP, "gtp"),
            (Self::TUNNEL_VXLAN, "vxlan"),
            (Self::TUNNEL_GENEVE, "geneve"),
            (Self::TUNNEL_PPP, "ppp"),
            (Self::TUNNEL_VXLAN_GPE, "vxlan-gpe"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.tunnels & bit != 0)
        .map(|(_, name)| name)
    }

    fn reset(&mut self, linktype: u32) {
        *self = Decoded {
            linktype,
            ..Decoded::default()
        };
    }

    /// The VLAN ids present.
    pub fn vlan_ids(&self) -> &[u16] {
        &self.vlans[..usize::from(self.vlan_count)]
    }

    /// The tunnel outer layers present.
    pub fn outer_layers(&self) -> &[Outer] {
        &self.outers[..usize::from(self.outer_count)]
    }

    /// The payload bytes of `packet` (the slice this was decoded from).
    pub fn payload<'a>(&self, packet: &'a [u8]) -> &'a [u8] {
        packet
            .get(self.payload_offset..self.payload_offset + self.payload_len)
            .unwrap_or(&[])
    }

    /// Source and destination ports when the transport has them.
    pub fn ports(&self) -> Option<(u16, u16)> {
        match self.transport {
            Transport::Tcp(t) => Some((t.src_port, t.dst_port)),
            Transport::Udp { src_port, dst_port } | Transport::Sctp { src_port, dst_port } => {
                Some((src_port, dst_port))
            }
            _ => None,
        }
    }

    /// Moves the current addresses into an outer layer before decoding a
    /// tunnel's inner packet. `inner_ethernet` says whether the tunnel
    /// carries Ethernet, whose MACs then replace the current ones.
    fn enter_tunnel(&mut self, inner_ethernet: bool) {
        let outer = Outer {
            src_ip: self.network.map(|n| n.src),
            dst_ip: self.network.map(|n| n.dst),
            src_mac: if inner_ethernet { self.src_mac } else { None },
            dst_mac: if inner_ethernet { self.dst_mac } else { None },
            ip_protocol: self.network.map(|n| n.proto),
            ttl: self.network.map(|n| n.ttl),
        };
        if usize::from(self.outer_count) < MAX_OUTER {
            self.outers[usize::from(self.outer_count)] = outer;
            self.outer_count += 1;
        }
        if inner_ethernet {
            self.src_mac = None;
            self.dst_mac = None;
        }
        self.network = None;
        self.transport = Transport::None;
    }
}

#[derive(Debug, Clone, Copy)]
enum Next {
    Ethernet,
    EtherType(u16),
    Ip,
    Ipv4,
    Ipv6,
    Ppp,
    Done,
}

/// Decodes `packet` captured with `linktype` into `out`.
///
/// On error `out` holds whatever was decoded before the failing header.
pub fn decode(linktype: u32, packet: &[u8], out: &mut Decoded) -> Result<(), DecodeError> {
    out.reset(linktype);
    let (next, offset) = link_layer(linktype, packet, out)?;
    walk(packet, next, offset, out)
}

/// Decodes `packet` as starting at an IP header, keeping the link-layer
/// facts already in `out` (used for reassembled datagrams).
pub fn decode_ip(packet: &[u8], out: &mut Decoded) -> Result<(), DecodeError> {
    out.network = None;
    out.transport = Transport::None;
    out.fragment = None;
    out.payload_offset = 0;
    out.payload_len = 0;
    walk(packet, Next::Ip, 0, out)
}

fn link_layer(linktype: u32, d: &[u8], out: &mut Decoded) -> Result<(Next, usize), DecodeError> {
    use pcapio_linktypes::*;
    Ok(match linktype {
        ETHERNET => (Next::Ethernet, 0),
        RAW | RAW_OLD | RAW_OLD2 => (Next::Ip, 0),
        IPV4 => (Next::Ipv4, 0),
        IPV6 => (Next::Ipv6, 0),
        NULL => {
            let fam_le = le32(d, 0).ok_or(DecodeError::truncated("null", 0))?;
            let fam_be = be32(d, 0).ok_or(DecodeError::truncated("null", 0))?;
            let fam = if fam_le < 256 { fam_le } else { fam_be };
            match fam {
                2 => (Next::Ipv4, 4),
                24 | 28 | 30 => (Next::Ipv6, 4),
                _ => return Err(DecodeError::unsupported("null", 0)),
            }
        }
        LOOP => match be32(d, 0).ok_or(DecodeError::truncated("loop", 0))? {
            2 => (Next::Ipv4, 4),
            24 | 28 | 30 => (Next::Ipv6, 4),
            _ => return Err(DecodeError::unsupported("loop", 0)),
        },
        LINUX_SLL => {
            let proto = be16(d, 14).ok_or(DecodeError::truncated("sll", 0))?;
            (Next::EtherType(proto), 16)
        }
        LINUX_SLL2 => {
            let proto = be16(d, 0).ok_or(DecodeError::truncated("sll2", 0))?;
            if d.len() < 20 {
                return Err(DecodeError::truncated("sll2", 0));
            }
            (Next::EtherType(proto), 20)
        }
        NFLOG => nflog(d)?,
        PPP => (Next::Ppp, 0),
        PPP_WITH_DIR => (Next::Ppp, 1),
        FRELAY => frame_relay(d)?,
        IEEE802_11 => ieee80211(d, 0, out)?,
        IEEE802_11_RADIOTAP => {
            let len = usize::from(le16(d, 2).ok_or(DecodeError::truncated("radiotap", 0))?);
            if len < 8 {
                return Err(DecodeError::malformed("radiotap", 0));
            }
            ieee80211(d, len, out)?
        }
        _ => return Err(DecodeError::unsupported("link", 0)),
    })
}

/// Link-type numbers, kept here so `wire` does not depend on `pcapio`.
mod pcapio_linktypes {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const PPP: u32 = 9;
    pub const RAW_OLD: u32 = 12;
    pub const RAW_OLD2: u32 = 14;
    pub const RAW: u32 = 101;
    pub const IEEE802_11: u32 = 105;
    pub const FRELAY: u32 = 107;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IEEE802_11_RADIOTAP: u32 = 127;
    pub const PPP_WITH_DIR: u32 = 204;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const NFLOG: u32 = 239;
    pub const LINUX_SLL2: u32 = 276;
}

fn nflog(d: &[u8]) -> Result<(Next, usize), DecodeError> {
    let family = u8_at(d, 0).ok_or(DecodeError::truncated("nflog", 0))?;
    let mut off = 4;
    // TLVs in host (little-endian) order; NFULA_PAYLOAD (9) holds the packet.
    while off + 4 <= d.len() {
        let len = usize::from(le16(d, off).unwrap_or(0));
        let kind = le16(d, off + 2).unwrap_or(0);
        if len < 4 {
            return Err(DecodeError::malformed("nflog", off));
        }
        if kind == 9 {
            let next = match family {
                2 => Next::Ipv4,
                10 => Next::Ipv6,
                _ => Next::Ip,
            };
            return Ok((next, off + 4));
        }
        off += len.div_ceil(4) * 4;
    }
    Err(DecodeError::truncated("nflog", off))
}

fn frame_relay(d: &[u8]) -> Result<(Next, usize), DecodeError> {
    // Two-byte Q.922 address, then either a UI control byte with an NLPID
    // (RFC 2427) or, in Cisco's encapsulation, an EtherType.
    let control = u8_at(d, 2).ok_or(DecodeError::truncated("frame-relay", 0))?;
    if control == 0x03 {
        let mut off = 3;
        if u8_at(d, off) == Some(0x00) {
            off += 1; // padding before SNAP
        }
        return match u8_at(d, off).ok_or(DecodeError::truncated("frame-relay", off))? {
            0xcc => Ok((Next::Ipv4, off + 1)),
            0x8e => Ok((Next::Ipv6, off + 1)),
            0x80 => {
                let et = be16(d, off + 4).ok_or(DecodeError::truncated("frame-relay", off))?;
                Ok((Next::EtherType(et), off + 6))
            }
            _ => Err(DecodeError::unsupported("frame-relay", off)),
        };
    }
    let et = be16(d, 2).ok_or(DecodeError::truncated("frame-relay", 2))?;
    Ok((Next::EtherType(et), 4))
}

fn ieee80211(d: &[u8], start: usize, out: &mut Decoded) -> Result<(Next, usize), DecodeError> {
    let fc = le16(d, start).ok_or(DecodeError::truncated("802.11", start))?;
    let kind = (fc >> 2) & 0x3;
    let subtype = (fc >> 4) & 0xf;
    let flags = (fc >> 8) as u8;
    if kind != 2 {
        return Err(DecodeError::unsupported("802.11", start));
    }
    if flags & 0x40 != 0 {
        // Protected (encrypted) frame.
        return Err(DecodeError::unsupported("802.11", start));
    }
    let to_ds = flags & 0x01 != 0;
    let from_ds = flags & 0x02 != 0;
    let mut len = 24;
    if to_ds && from_ds {
        len += 6;
    }
    if subtype & 0x8 != 0 {
        len += 2; // QoS control
        if flags & 0x80 != 0 {
            len += 4; // HT control
        }
    }
    let a1 = mac_at(d, start + 4);
    let a2 = mac_at(d, start + 10);
    let a3 = mac_at(d, start + 16);
    out.dst_mac = if to_ds { a3 } else { a1 };
    out.src_mac = if from_ds && !to_ds { a3 } else { a2 };
    let llc = start + len;
    if subtype & 0x4 != 0 {
        // Null data frames carry nothing.
        return Err(DecodeError::unsupported("802.11", start));
    }
    match d.get(llc..llc + 8) {
        Some([0xaa, 0xaa, 0x03, 0, 0, 0, hi, lo]) => {
            Ok((Next::EtherType(u16::from_be_bytes([*hi, *lo])), llc + 8))
        }
        Some(_) => Err(DecodeError::unsupported("llc", llc)),
        None => Err(DecodeError::truncated("802.11", start)),
    }
}

fn walk(d: &[u8], mut next: Next, mut off: usize, out: &mut Decoded) -> Result<(), DecodeError> {
    // `end` bounds the current layer (IP total length trims padding).
    let mut end = d.len();
    // Arkime records the EtherType only for Ethernet-framed packets.
    let mut ethernet = false;
    for _ in 0..MAX_LAYERS {
        if let Next::EtherType(et) = next
            && ethernet
            && !matches!(et, ether::VLAN | ether::QINQ | ether::QINQ_OLD)
        {
            out.ethertype = et;
            if out.first_ethertype == 0 {
                out.first_ethertype = et;
            }
        }
        next = match next {
            Next::Done => return Ok(()),
            Next::Ethernet => {
                if end < off + 14 {
                    return Err(DecodeError::truncated("ethernet", off));
                }
                ethernet = true;
                out.dst_mac = mac_at(d, off);
                out.src_mac = mac_at(d, off + 6);
                let et = be16(d, off + 12).ok_or(DecodeError::truncated("ethernet", off))?;
                off += 14;
                out.ieee8023 = et <= 1500;
                if et <= 1500 {
                    // 802.3 length: LLC, maybe SNAP.
                    match d.get(off..off + 8) {
                        Some([0xaa, 0xaa, 0x03, _, _, _, hi, lo]) => {
                            off += 8;
                            Next::EtherType(u16::from_be_bytes([*hi, *lo]))
                        }
                        _ => {
                            out.ethertype = et;
                            set_payload(out, off, end);
                            return Ok(());
                        }
                    }
                } else {
                    Next::EtherType(et)
                }
            }
            Next::EtherType(et) => match et {
                ether::VLAN => {
                    let tci = be16(d, off).ok_or(DecodeError::truncated("vlan", off))?;
                    if usize::from(out.vlan_count) < MAX_VLANS {
                        out.vlans[usize::from(out.vlan_count)] = tci & 0x0fff;
                        out.vlan_count += 1;
                    }
                    let inner = be16(d, off + 2).ok_or(DecodeError::truncated("vlan", off))?;
                    off += 4;
                    Next::EtherType(inner)
                }
                ether::QINQ | ether::QINQ_OLD => {
                    let tci = be16(d, off).ok_or(DecodeError::truncated("802.1ad", off))?;
                    out.dot1ad = Some(tci & 0x0fff);
                    let inner = be16(d, off + 2).ok_or(DecodeError::truncated("802.1ad", off))?;
                    off += 4;
                    Next::EtherType(inner)
                }
                ether::MPLS | ether::MPLS_MC => {
                    out.tunnels |= Decoded::TUNNEL_MPLS;
                    loop {
                        let label = be32(d, off).ok_or(DecodeError::truncated("mpls", off))?;
                        off += 4;
                        out.mpls_labels = out.mpls_labels.saturating_add(1);
                        if label & 0x100 != 0 {
                            break;
                        }
                        if out.mpls_labels > 16 {
                            return Err(DecodeError::malformed("mpls", off));
                        }
                    }
                    Next::Ip
                }
                ether::PPPOE_SESS => {
                    out.tunnels |= Decoded::TUNNEL_PPPOE;
                    if d.len() < off + 6 {
                        return Err(DecodeError::truncated("pppoe", off));
                    }
                    off += 6;
                    Next::Ppp
                }
                ether::IPV4 => Next::Ipv4,
                ether::IPV6 => Next::Ipv6,
                other => {
                    out.ethertype = other;
                    out.payload_offset = off.min(d.len());
                    out.payload_len = d.len() - out.payload_offset;
                    return Ok(());
                }
            },
            Next::Ppp => {
                if d.get(off..off + 2) == Some(&[0xff, 0x03]) {
                    off += 2;
                }
                let first = u8_at(d, off).ok_or(DecodeError::truncated("ppp", off))?;
                // Protocol field compression: an odd first byte is a 1-byte field.
                let (proto, len) = if first & 1 == 1 {
                    (u16::from(first), 1)
                } else {
                    (be16(d, off).ok_or(DecodeError::truncated("ppp", off))?, 2)
                };
                off += len;
                match proto {
                    0x0021 => Next::Ipv4,
                    0x0057 => Next::Ipv6,
                    _ => return Err(DecodeError::unsupported("ppp", off)),
                }
            }
            Next::Ip => match u8_at(d, off).map(|b| b >> 4) {
                Some(4) => Next::Ipv4,
                Some(6) => Next::Ipv6,
                Some(_) => return Err(DecodeError::malformed("ip", off)),
                None => return Err(DecodeError::truncated("ip", off)),
            },
            Next::Ipv4 => {
                let (n, e) = ipv4(d, off, end, out)?;
                end = e;
                off = n.0;
                n.1
            }
            Next::Ipv6 => {
                let (n, e) = ipv6(d, off, end, out)?;
                end = e;
                off = n.0;
                n.1
            }
        };
    }
    Err(DecodeError::malformed("nesting", off))
}

/// Decodes an IPv4 header and whatever it carries up to the next layer
/// to walk. Returns ((offset, next), end of this datagram).
fn ipv4(
    d: &[u8],
    off: usize,
    end: usize,
    out: &mut Decoded,
) -> Result<((usize, Next), usize), DecodeError> {
    let vihl = u8_at(d, off).ok_or(DecodeError::truncated("ipv4", off))?;
    if vihl >> 4 != 4 {
        return Err(DecodeError::malformed("ipv4", off));
    }
    let ihl = usize::from(vihl & 0x0f) * 4;
    if ihl < 20 {
        return Err(DecodeError::malformed("ipv4", off));
    }
    if end < off + ihl {
        return Err(DecodeError::truncated("ipv4", off));
    }
    let h = &d[off..off + ihl];
    let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
    if total < ihl {
        // Some stacks (TSO captures) write 0: trust the capture length.
        if total != 0 {
            return Err(DecodeError::malformed("ipv4", off));
        }
    }
    let dgram_end = if total == 0 {
        end
    } else {
        (off + total).min(end)
    };
    let id = u16::from_be_bytes([h[4], h[5]]);
    let frag = u16::from_be_bytes([h[6], h[7]]);
    let src = IpAddr::V4(Ipv4Addr::new(h[12], h[13], h[14], h[15]));
    let dst = IpAddr::V4(Ipv4Addr::new(h[16], h[17], h[18], h[19]));
    let proto = h[9];
    out.network = Some(Network {
        src,
        dst,
        proto,
        ttl: h[8],
        tos: h[1],
        header_offset: off,
        header_len: ihl,
    });
    out.transport = Transport::None;
    let body = off + ihl;
    let more = frag & 0x2000 != 0;
    let frag_off = u32::from(frag & 0x1fff) * 8;
    if more || frag_off != 0 {
        out.fragment = Some(Fragment {
            id: u32::from(id),
            offset: frag_off,
            more,
            data_offset: body,
            data_len: dgram_end.saturating_sub(body),
        });
        out.payload_offset = body;
        out.payload_len = dgram_end.saturating_sub(body);
        return Ok(((body, Next::Done), dgram_end));
    }
    let next = transport(d, proto, body, dgram_end, out)?;
    Ok((next, dgram_end))
}

fn ipv6(
    d: &[u8],
    off: usize,
    end: usize,
    out: &mut Decoded,
) -> Result<((usize, Next), usize), DecodeError> {
    if end < off + 40 {
        return Err(DecodeError::truncated("ipv6", off));
    }
    let h = &d[off..off + 40];
    if h[0] >> 4 != 6 {
        return Err(DecodeError::malformed("ipv6", off));
    }
    let plen = usize::from(u16::from_be_bytes([h[4], h[5]]));
    let dgram_end = if plen == 0 {
        end
    } else {
        (off + 40 + plen).min(end)
    };
    let mut src = [0u8; 16];
    src.copy_from_slice(&h[8..24]);
    let mut dst = [0u8; 16];
    dst.copy_from_slice(&h[24..40]);
    let tclass = ((h[0] & 0x0f) << 4) | (h[1] >> 4);
    let mut proto = h[6];
    let hop_limit = h[7];
    let mut cur = off + 40;
    let mut fragment = None;
    // Extension headers, bounded by the datagram.
    for _ in 0..16 {
        match proto {
            ipproto::HOPOPTS | ipproto::ROUTING | ipproto::DSTOPTS | ipproto::MOBILITY => {
                let next = u8_at(d, cur).ok_or(DecodeError::truncated("ipv6-ext", cur))?;
                let len = (usize::from(u8_at(d, cur + 1).unwrap_or(0)) + 1) * 8;
                if cur + len > dgram_end {
                    return Err(DecodeError::truncated("ipv6-ext", cur));
                }
                proto = next;
                cur += len;
            }
            ipproto::FRAGMENT => {
                if cur + 8 > dgram_end {
                    return Err(DecodeError::truncated("ipv6-frag", cur));
                }
                let next = d[cur];
                let fo = u16::from_be_bytes([d[cur + 2], d[cur + 3]]);
                let id = u32::from_be_bytes([d[cur + 4], d[cur + 5], d[cur + 6], d[cur + 7]]);
                proto = next;
                cur += 8;
                let more = fo & 1 != 0;
                let offset = u32::from(fo >> 3) * 8;
                if more || offset != 0 {
                    fragment = Some(Fragment {
                        id,
                        offset,
                        more,
                        data_offset: cur,
                        data_len: dgram_end.saturating_sub(cur),
                    });
                }
                break;
            }
            _ => break,
        }
    }
    out.network = Some(Network {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        proto,
        ttl: hop_limit,
        tos: tclass,
        header_offset: off,
        header_len: cur - off,
    });
    out.transport = Transport::None;
    if let Some(f) = fragment {
        out.fragment = Some(f);
        out.payload_offset = cur;
        out.payload_len = dgram_end.saturating_sub(cur);
        return Ok(((cur, Next::Done), dgram_end));
    }
    let next = transport(d, proto, cur, dgram_end, out)?;
    Ok((next, dgram_end))
}

/// Records a VLAN id (an 802.1Q tag, or the original VLAN an ERSPAN
/// header reports); 0 means none.
fn push_vlan(out: &mut Decoded, vlan: u16) {
    if vlan != 0 && usize::from(out.vlan_count) < MAX_VLANS {
        out.vlans[usize::from(out.vlan_count)] = vlan;
        out.vlan_count += 1;
    }
}

fn set_payload(out: &mut Decoded, start: usize, end: usize) {
    out.payload_offset = start.min(end);
    out.payload_len = end.saturating_sub(start);
}

/// Decodes the transport header at `off` (bounded by `end`); returns the
/// next layer to walk when it is a tunnel.
fn transport(
    d: &[u8],
    proto: u8,
    off: usize,
    end: usize,
    out: &mut Decoded,
) -> Result<(usize, Next), DecodeError> {
    match proto {
        ipproto::TCP => {
            if end < off + 20 {
                return Err(DecodeError::truncated("tcp", off));
            }
            let h = &d[off..off + 20];
            let doff = usize::from(h[12] >> 4) * 4;
            if doff < 20 {
                return Err(DecodeError::malformed("tcp", off));
            }
            if end < off + doff {
                return Err(DecodeError::truncated("tcp", off));
            }
            out.transport = Transport::Tcp(TcpInfo {
                src_port: u16::from_be_bytes([h[0], h[1]]),
                dst_port: u16::from_be_bytes([h[2], h[3]]),
                seq: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                ack: u32::from_be_bytes([h[8], h[9], h[10], h[11]]),
                flags: u16::from(h[13]) | (u16::from(h[12] & 0x01) << 8),
                window: u16::from_be_bytes([h[14], h[15]]),
            });
            set_payload(out, off + doff, end);
            Ok((off, Next::Done))
        }
        ipproto::UDP => {
            if end < off + 8 {
                return Err(DecodeError::truncated("udp", off));
            }
            let sport = be16(d, off).unwrap_or(0);
            let dport = be16(d, off + 2).unwrap_or(0);
            let ulen = usize::from(be16(d, off + 4).unwrap_or(0));
            let uend = if ulen >= 8 {
                (off + ulen).min(end)
            } else {
                end
            };
            out.transport = Transport::Udp {
                src_port: sport,
                dst_port: dport,
            };
            set_payload(out, off + 8, uend);
            let body = off + 8;
            if let Some(next) = udp_tunnel(d, sport, dport, body, uend, out) {
                return Ok(next);
            }
            Ok((off, Next::Done))
        }
        ipproto::SCTP => {
            if end < off + 12 {
                return Err(DecodeError::truncated("sctp", off));
            }
            out.transport = Transport::Sctp {
                src_port: be16(d, off).unwrap_or(0),
                dst_port: be16(d, off + 2).unwrap_or(0),
            };
            set_payload(out, off + 12, end);
            Ok((off, Next::Done))
        }
        ipproto::ICMP | ipproto::ICMPV6 => {
            if end < off + 2 {
                return Err(DecodeError::truncated("icmp", off));
            }
            out.transport = Transport::Icmp(IcmpInfo {
                kind: d[off],
                code: d[off + 1],
                v6: proto == ipproto::ICMPV6,
            });
            set_payload(out, off, end);
            Ok((off, Next::Done))
        }
        ipproto::ESP => {
            let spi = be32(d, off).ok_or(DecodeError::truncated("esp", off))?;
            out.transport = Transport::Esp { spi };
            set_payload(out, off, end);
            Ok((off, Next::Done))
        }
        ipproto::AH => {
            let next = u8_at(d, off).ok_or(DecodeError::truncated("ah", off))?;
            let len = (usize::from(u8_at(d, off + 1).unwrap_or(0)) + 2) * 4;
            if end < off + len {
                return Err(DecodeError::truncated("ah", off));
            }
            // The session keeps protocol 51 and its payload starts at the
            // AH header, as in Arkime.
            let r = transport(d, next, off + len, end, out);
            if matches!(out.transport, Transport::Esp { .. }) {
                set_payload(out, off, end);
            }
            r
        }
        ipproto::IPIP => {
            out.enter_tunnel(false);
            Ok((off, Next::Ipv4))
        }
        ipproto::IPV6 => {
            out.enter_tunnel(false);
            Ok((off, Next::Ipv6))
        }
        ipproto::GRE => gre(d, off, end, out),
        _ => {
            out.transport = Transport::Other;
            set_payload(out, off, end);
            Ok((off, Next::Done))
        }
    }
}

fn gre(d: &[u8], off: usize, end: usize, out: &mut Decoded) -> Result<(usize, Next), DecodeError> {
    out.tunnels |= Decoded::TUNNEL_GRE;
    let flags = be16(d, off).ok_or(DecodeError::truncated("gre", off))?;
    let proto = be16(d, off + 2).ok_or(DecodeError::truncated("gre", off))?;
    let version = flags & 0x7;
    let mut len = 4;
    if flags & 0x8000 != 0 {
        len += 4; // checksum + reserved
    }
    if flags & 0x4000 != 0 && version == 0 {
        // Source routing (RFC 1701) is obsolete; treat as plain GRE.
        out.transport = Transport::Other;
        set_payload(out, off, end);
        return Ok((off, Next::Done));
    }
    if flags & 0x2000 != 0 {
        len += 4; // key (or PPTP payload length + call id)
    }
    let has_seq = flags & 0x1000 != 0;
    if has_seq {
        len += 4;
    }
    if version == 1 && flags & 0x0080 != 0 {
        len += 4; // PPTP acknowledgement
    }
    let mut body = off + len;
    if end < body {
        return Err(DecodeError::truncated("gre", off));
    }
    let next = match proto {
        ether::IPV4 => {
            out.enter_tunnel(false);
            Next::Ipv4
        }
        ether::IPV6 => {
            out.enter_tunnel(false);
            Next::Ipv6
        }
        ether::TEB => {
            out.enter_tunnel(true);
            Next::Ethernet
        }
        ether::PPP => {
            out.enter_tunnel(false);
            out.tunnels |= Decoded::TUNNEL_PPP;
            Next::Ppp
        }
        ether::ERSPAN2 => {
            // Type I has no sequence number and no ERSPAN header.
            if has_seq {
                let vlan = be16(d, body).ok_or(DecodeError::truncated("erspan", body))? & 0x0fff;
                push_vlan(out, vlan);
                body += 8;
            }
            out.enter_tunnel(true);
            Next::Ethernet
        }
        ether::ERSPAN3 => {
            let vlan = be16(d, body).ok_or(DecodeError::truncated("erspan", body))? & 0x0fff;
            push_vlan(out, vlan);
            let flags_byte = u8_at(d, body + 11).ok_or(DecodeError::truncated("erspan", body))?;
            body += 12;
            if flags_byte & 0x01 != 0 {
                body += 8; // platform-specific subheader
            }
            out.enter_tunnel(true);
            Next::Ethernet
        }
        _ => {
            out.transport = Transport::Other;
            set_payload(out, off, end);
            return Ok((off, Next::Done));
        }
    };
    Ok((body, next))
}

/// Recognises VXLAN, Geneve and GTP-U by port and header shape; returns
/// the inner layer when the payload is a tunnel.
fn udp_tunnel(
    d: &[u8],
    sport: u16,
    dport: u16,
    body: usize,
    end: usize,
    out: &mut Decoded,
) -> Option<(usize, Next)> {
    let h = d.get(body..end)?;
    // VXLAN: the I flag alone, reserved bytes zero, and an inner Ethernet
    // frame carrying something we know; otherwise it is ordinary UDP that
    // happens to use the port.
    let inner_type = |at: usize| h.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let known = |t: Option<u16>| {
        matches!(
            t,
            Some(ether::IPV4 | ether::IPV6 | ether::ARP | ether::VLAN | ether::QINQ | ether::MPLS)
        )
    };
    if dport == VXLAN_PORT
        && h.len() >= 8 + 14
        && h[0] == 0x08
        && h[1..4] == [0, 0, 0]
        && h[7] == 0
        && known(inner_type(8 + 12))
    {
        let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
        out.enter_tunnel(true);
        out.vni = Some(vni);
        out.tunnels |= Decoded::TUNNEL_VXLAN;
        return Some((body + 8, Next::Ethernet));
    }
    if dport == VXLAN_GPE_PORT && h.len() >= 8 + 20 && h[0] & 0x0c == 0x0c {
        let next = match h[3] {
            1 => Next::Ipv4,
            2 => Next::Ipv6,
            3 => Next::Ethernet,
            _ => return None,
        };
        out.enter_tunnel(matches!(next, Next::Ethernet));
        out.vni = Some(u32::from_be_bytes([0, h[4], h[5], h[6]]));
        out.tunnels |= Decoded::TUNNEL_VXLAN_GPE;
        return Some((body + 8, next));
    }
    if dport == GENEVE_PORT && h.len() >= 8 && h[0] >> 6 == 0 && h[7] == 0 {
        let opt_len = usize::from(h[0] & 0x3f) * 4;
        let proto = u16::from_be_bytes([h[2], h[3]]);
        let vni = u32::from_be_bytes([0, h[4], h[5], h[6]]);
        let inner = body + 8 + opt_len;
        if inner > end {
            return None;
        }
        let next = match proto {
            ether::TEB => Next::Ethernet,
            ether::IPV4 => Next::Ipv4,
            ether::IPV6 => Next::Ipv6,
            _ => return None,
        };
        out.enter_tunnel(matches!(next, Next::Ethernet));
        out.vni = Some(vni);
        out.tunnels |= Decoded::TUNNEL_GENEVE;
        return Some((inner, next));
    }
    if (dport == GTPU_PORT || sport == GTPU_PORT) && h.len() >= 8 {
        let flags = h[0];
        // Version 1, protocol type GTP, message type G-PDU (user data).
        if flags >> 5 != 1 || flags & 0x10 == 0 || h[1] != 0xff {
            return None;
        }
        let mut inner = body + 8;
        if flags & 0x07 != 0 {
            inner += 4;
            let mut ext = *d.get(inner - 1)?;
            let mut guard = 0;
            while ext != 0 && guard < 8 {
                let len = usize::from(*d.get(inner)?) * 4;
                if len == 0 {
                    return None;
                }
                inner += len;
                ext = *d.get(inner - 1)?;
                guard += 1;
            }
        }
        let version = d.get(inner)? >> 4;
        if inner >= end || (version != 4 && version != 6) {
            return None;
        }
        out.enter_tunnel(false);
        out.tunnels |= Decoded::TUNNEL_GTP;
        return Some((inner, Next::Ip));
    }
    None
}
