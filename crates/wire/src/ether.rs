//! EtherType values moonwire decodes.

/// IPv4.
pub const IPV4: u16 = 0x0800;
/// ARP.
pub const ARP: u16 = 0x0806;
/// Transparent Ethernet bridging (Ethernet inside GRE).
pub const TEB: u16 = 0x6558;
/// Reverse ARP.
pub const RARP: u16 = 0x8035;
/// 802.1Q VLAN tag.
pub const VLAN: u16 = 0x8100;
/// IPv6.
pub const IPV6: u16 = 0x86dd;
/// PPP (in GRE).
pub const PPP: u16 = 0x880b;
/// MPLS unicast.
pub const MPLS: u16 = 0x8847;
/// MPLS multicast.
pub const MPLS_MC: u16 = 0x8848;
/// PPPoE discovery.
pub const PPPOE_DISC: u16 = 0x8863;
/// PPPoE session.
pub const PPPOE_SESS: u16 = 0x8864;
/// ERSPAN type II (in GRE).
pub const ERSPAN2: u16 = 0x88be;
/// 802.1ad service tag (QinQ outer).
pub const QINQ: u16 = 0x88a8;
/// ERSPAN type III (in GRE).
pub const ERSPAN3: u16 = 0x22eb;
/// Older QinQ tag value.
pub const QINQ_OLD: u16 = 0x9100;
/// LLDP.
pub const LLDP: u16 = 0x88cc;
