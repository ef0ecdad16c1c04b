//! Which session a decoded packet belongs to (or why it belongs to none).
//! Runs on the reader thread, which needs the key to pick the packet
//! thread.

use flow::{SessionKey, SessionKind};
use wire::{DecodeError, Decoded, Transport, ipproto};

use crate::config::{SessionIdTracking, Settings};
use crate::stats::DropReason;

/// EtherType of ARP, the discriminator of ARP sessions.
pub(crate) const ARP_ETHERTYPE: u16 = 0x0806;

/// Discriminator of DHCP transaction sessions.
pub(crate) const DHCP_DISCRIMINATOR: u16 = 67;

/// A key for a DHCP (BOOTP) message between ports 67 and 68: a digest of
/// the client hardware address.
pub(crate) fn dhcp_transaction(sport: u16, dport: u16, payload: &[u8]) -> Option<[u8; 4]> {
    let ports = (sport, dport);
    if !matches!(ports, (68, 67) | (67, 68) | (67, 67)) || payload.len() < 240 {
        return None;
    }
    if payload[236..240] != [99, 130, 83, 99] || !matches!(payload[0], 1 | 2) {
        return None;
    }
    // Arkime joins every exchange of one client: key by its hardware address.
    let mut id = [0u8; 4];
    let mac = &payload[28..34];
    for (i, b) in mac.iter().enumerate() {
        id[i % 4] ^= b.rotate_left(i as u32);
    }
    Some(id)
}

/// Discriminator of DHCPv6 transaction sessions.
pub(crate) const DHCPV6_DISCRIMINATOR: u16 = 547;

/// The transaction id of a DHCPv6 message between ports 546 and 547.
pub(crate) fn dhcpv6_transaction(sport: u16, dport: u16, payload: &[u8]) -> Option<[u8; 3]> {
    if !matches!((sport, dport), (546, 547) | (547, 546)) || payload.len() < 4 {
        return None;
    }
    if !(1..=13).contains(&payload[0]) {
        return None;
    }
    Some([payload[1], payload[2], payload[3]])
}

/// Whether a DHCPv6 message type is sent by servers.
pub(crate) fn dhcpv6_from_server(kind: u8) -> bool {
    matches!(kind, 2 | 7 | 10)
}

/// Discriminator of 802.2 XID sessions (no EtherType uses it).
pub(crate) const XID_DISCRIMINATOR: u16 = 1;

/// A MAC as a 16-byte key address; `n` keeps the two ends distinct.
fn mac16(m: Option<[u8; 6]>, n: usize) -> [u8; 16] {
    let mut out = [0u8; 16];
    if let Some(m) = m {
        out[..6].copy_from_slice(&m);
    }
    out[15] = n as u8;
    out
}

fn track(s: &Settings, d: &Decoded) -> u32 {
    match s.session_id_tracking {
        SessionIdTracking::None => 0,
        // Arkime separates sessions by the 802.1ad service tag; plain
        // 802.1Q tags often differ by direction and do not split sessions.
        SessionIdTracking::Vlan => d.dot1ad.map(u32::from).unwrap_or(0),
        SessionIdTracking::Vni => d.vni.unwrap_or(0),
    }
}

/// The session key of a packet that decoded, or the reason it is dropped.
pub(crate) fn key_for(s: &Settings, d: &Decoded, packet: &[u8]) -> Result<SessionKey, DropReason> {
    let t = track(s, d);
    let Some(net) = d.network else {
        let llc = d.payload(packet);
        let xid = llc.len() >= 3 && (llc[2] | 0x10) == 0xbf;
        if d.ieee8023
            && !xid
            && let Some(o) = d.outer_layers().last()
            && let (Some(src), Some(dst)) = (o.src_ip, o.dst_ip)
        {
            // An LLC frame inside an IP tunnel (ERSPAN of CDP, ...): Arkime
            // keeps it as a corrupt-ip session of the tunnel's addresses.
            if !s.save_corrupt {
                return Err(DropReason::Corrupt);
            }
            return Ok(SessionKey::directional(
                SessionKind::CorruptIp,
                t,
                flow::ip_bytes(src),
                flow::ip_bytes(dst),
                0,
            ));
        }
        if d.ethertype != 0 && d.ethertype <= 1500 {
            // 802.3 with an LLC header: XID frames are their own protocol,
            // any other LLC payload is what Arkime calls corrupt.
            if xid {
                return Ok(SessionKey::directional(
                    SessionKind::UnknownEther,
                    t,
                    mac16(d.src_mac, 0),
                    mac16(d.dst_mac, 1),
                    XID_DISCRIMINATOR,
                ));
            }
            if !s.save_corrupt {
                return Err(DropReason::Corrupt);
            }
            return Ok(SessionKey::directional(
                SessionKind::CorruptEther,
                t,
                mac16(d.dst_mac, 0),
                mac16(d.src_mac, 1),
                0,
            ));
        }
        if !s.save_unknown && !matches!(d.ethertype, 0x0806 | 0x88cc) {
            return Err(DropReason::UnknownEtherType);
        }
        if d.ethertype == 0 {
            return Err(DropReason::UnknownEtherType);
        }
        if d.ethertype == ARP_ETHERTYPE
            && let Some(ip) =
                crate::arp::ArpMessage::parse(d.payload(packet)).and_then(|m| m.resolved_ip())
        {
            // A request and its reply share the address being resolved.
            let mut a = [0u8; 16];
            a[..4].copy_from_slice(&ip);
            return Ok(SessionKey::directional(
                SessionKind::UnknownEther,
                t,
                a,
                [0; 16],
                ARP_ETHERTYPE,
            ));
        }
        // LLDP advertisements from many neighbours form one session per
        // destination group address.
        let src = if d.ethertype == 0x88cc {
            mac16(None, 0)
        } else {
            mac16(d.src_mac, 0)
        };
        return Ok(SessionKey::directional(
            SessionKind::UnknownEther,
            t,
            src,
            mac16(d.dst_mac, 1),
            d.ethertype,
        ));
    };
    if d.fragment.is_some() {
        return Err(DropReason::Fragment);
    }
    let sym = |kind, sp, dp| {
        SessionKey::symmetric(kind, t, net.src, sp, net.dst, dp, u16::from(net.proto))
    };
    Ok(match d.transport {
        Transport::Tcp(tcp) => sym(SessionKind::Tcp, tcp.src_port, tcp.dst_port),
        Transport::Udp { src_port, dst_port } => {
            if let Some(xid) = dhcp_transaction(src_port, dst_port, d.payload(packet)) {
                // DHCP replies go to the offered address, not the asking one:
                // one session per transaction.
                let mut a = [0u8; 16];
                a[..4].copy_from_slice(&xid);
                return Ok(SessionKey::directional(
                    SessionKind::Udp,
                    t,
                    a,
                    [0; 16],
                    DHCP_DISCRIMINATOR,
                ));
            }
            if let Some(xid) = dhcpv6_transaction(src_port, dst_port, d.payload(packet)) {
                let mut a = [0u8; 16];
                a[..3].copy_from_slice(&xid);
                return Ok(SessionKey::directional(
                    SessionKind::Udp,
                    t,
                    a,
                    [0; 16],
                    DHCPV6_DISCRIMINATOR,
                ));
            }
            sym(SessionKind::Udp, src_port, dst_port)
        }
        Transport::Sctp { src_port, dst_port } => sym(SessionKind::Sctp, src_port, dst_port),
        Transport::Icmp(_) => sym(SessionKind::Icmp, 0, 0),
        Transport::Esp { .. } if s.track_esp => sym(SessionKind::Esp, 0, 0),
        // Arkime keeps all IGMP (and all PIM) traffic in one session.
        Transport::Other if matches!(net.proto, ipproto::IGMP | ipproto::PIM) => {
            SessionKey::directional(
                SessionKind::OtherIp,
                t,
                [0; 16],
                [0; 16],
                u16::from(net.proto),
            )
        }
        _ => {
            if !s.save_unknown {
                return Err(DropReason::UnknownIpProtocol);
            }
            SessionKey::directional(
                SessionKind::UnknownIp,
                t,
                flow::ip_bytes(net.src),
                flow::ip_bytes(net.dst),
                u16::from(net.proto),
            )
        }
    })
}

/// The session key of a packet that failed to decode, when corrupt packets
/// are kept as sessions (`saveUnknownPackets=corrupt`).
pub(crate) fn corrupt_key(s: &Settings, d: &Decoded, _err: &DecodeError) -> Option<SessionKey> {
    if !s.save_corrupt {
        return None;
    }
    let t = track(s, d);
    if let Some(net) = d.network {
        return Some(SessionKey::directional(
            SessionKind::CorruptIp,
            t,
            flow::ip_bytes(net.src),
            flow::ip_bytes(net.dst),
            0,
        ));
    }
    if d.src_mac.is_some() || d.dst_mac.is_some() {
        return Some(SessionKey::directional(
            SessionKind::CorruptEther,
            t,
            mac16(d.dst_mac, 0),
            mac16(d.src_mac, 1),
            0,
        ));
    }
    None
}
