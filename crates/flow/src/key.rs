//! Session identity.

use std::net::IpAddr;

/// Which table a session lives in; the same addresses under two kinds are
/// two sessions (as in Arkime, where each protocol family has its own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum SessionKind {
    /// TCP 5-tuple.
    Tcp = 0,
    /// UDP 5-tuple.
    Udp = 1,
    /// ICMP/ICMPv6 by address pair.
    Icmp = 2,
    /// SCTP 5-tuple.
    Sctp = 3,
    /// ESP by address pair.
    Esp = 4,
    /// Another IP protocol with a parser (IGMP, PIM, ...), by address pair.
    OtherIp = 5,
    /// An IP protocol nothing parses (directional).
    UnknownIp = 6,
    /// A non-IP EtherType (directional, by MACs and EtherType).
    UnknownEther = 7,
    /// An undecodable IP packet (directional, by addresses).
    CorruptIp = 8,
    /// An undecodable frame (directional, by MACs).
    CorruptEther = 9,
}

impl SessionKind {
    /// Number of kinds (for per-kind arrays).
    pub const COUNT: usize = 10;

    /// Index for per-kind arrays.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A session's identity: kind, VLAN/VNI tracking value, two endpoints and
/// a discriminator (IP protocol or EtherType).
///
/// Symmetric keys put the lower (address, port) first so both directions
/// of a conversation map to one key; directional keys keep packet order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    /// Table the session belongs to.
    pub kind: SessionKind,
    /// VLAN or VNI when `sessionIdTracking` asks for it, else 0.
    pub track: u32,
    /// First endpoint address (IPv4 as v4-mapped IPv6, or a MAC).
    pub addr_a: [u8; 16],
    /// Second endpoint address.
    pub addr_b: [u8; 16],
    /// First endpoint port.
    pub port_a: u16,
    /// Second endpoint port.
    pub port_b: u16,
    /// IP protocol or EtherType for the kinds keyed by them.
    pub discriminator: u16,
}

/// Maps any IP address onto 16 bytes (IPv4 as ::ffff:a.b.c.d).
pub fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// Fixed seeds: the shard of a session must not change between runs, so
/// outputs are reproducible.
const SEEDS: (u64, u64, u64, u64) = (
    0x6d6f_6f6e_7769_7265,
    0x7365_7373_696f_6e73,
    0x7061_636b_6574_7321,
    0x0123_4567_89ab_cdef,
);

impl SessionKey {
    /// A key that is the same for both directions of a conversation.
    pub fn symmetric(
        kind: SessionKind,
        track: u32,
        src: IpAddr,
        src_port: u16,
        dst: IpAddr,
        dst_port: u16,
        discriminator: u16,
    ) -> SessionKey {
        let a = ip_bytes(src);
        let b = ip_bytes(dst);
        let src_first = (a, src_port) <= (b, dst_port);
        let (addr_a, port_a, addr_b, port_b) = if src_first {
            (a, src_port, b, dst_port)
        } else {
            (b, dst_port, a, src_port)
        };
        SessionKey {
            kind,
            track,
            addr_a,
            addr_b,
            port_a,
            port_b,
            discriminator,
        }
    }

    /// A key that keeps the packet's direction (unknown/corrupt sessions).
    pub fn directional(
        kind: SessionKind,
        track: u32,
        src: [u8; 16],
        dst: [u8; 16],
        discriminator: u16,
    ) -> SessionKey {
        SessionKey {
            kind,
            track,
            addr_a: src,
            addr_b: dst,
            port_a: 0,
            port_b: 0,
            discriminator,
        }
    }

    /// A 64-bit hash independent of process and run.
    pub fn stable_hash(&self) -> u64 {
        let state = ahash::RandomState::with_seeds(SEEDS.0, SEEDS.1, SEEDS.2, SEEDS.3);
        state.hash_one(self)
    }

    /// Which of `threads` packet threads owns this session.
    pub fn shard(&self, threads: usize) -> usize {
        if threads <= 1 {
            return 0;
        }
        (self.stable_hash() % threads as u64) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symmetric_keys_match_both_directions() {
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let k1 = SessionKey::symmetric(SessionKind::Tcp, 0, a, 1234, b, 80, 6);
        let k2 = SessionKey::symmetric(SessionKind::Tcp, 0, b, 80, a, 1234, 6);
        assert_eq!(k1, k2);
        assert_eq!(k1.shard(2), k2.shard(2));
        let k3 = SessionKey::symmetric(SessionKind::Udp, 0, a, 1234, b, 80, 17);
        assert_ne!(k1, k3);
        let k4 = SessionKey::symmetric(SessionKind::Tcp, 5, a, 1234, b, 80, 6);
        assert_ne!(k1, k4);
    }

    #[test]
    fn same_address_orders_by_port() {
        let a: IpAddr = "::1".parse().unwrap();
        let k1 = SessionKey::symmetric(SessionKind::Udp, 0, a, 9, a, 7, 17);
        let k2 = SessionKey::symmetric(SessionKind::Udp, 0, a, 7, a, 9, 17);
        assert_eq!(k1, k2);
        assert_eq!(k1.port_a, 7);
    }

    #[test]
    fn directional_keys_differ_by_direction() {
        let k1 = SessionKey::directional(SessionKind::UnknownEther, 0, [1; 16], [2; 16], 0x88cc);
        let k2 = SessionKey::directional(SessionKind::UnknownEther, 0, [2; 16], [1; 16], 0x88cc);
        assert_ne!(k1, k2);
    }
}
