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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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

/// Hashed as five words, not field by field: the derived hash made nine
/// hasher calls (two of them length prefixes of the address arrays), and
/// every packet hashes its key at least once. Equal keys have equal words,
/// so this agrees with `Eq`.
impl std::hash::Hash for SessionKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let word = |a: &[u8; 16], half: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&a[half * 8..half * 8 + 8]);
            u64::from_ne_bytes(w)
        };
        state.write_u64(word(&self.addr_a, 0));
        state.write_u64(word(&self.addr_a, 1));
        state.write_u64(word(&self.addr_b, 0));
        state.write_u64(word(&self.addr_b, 1));
        state.write_u64(
            u64::from(self.kind as u8)
                | u64::from(self.discriminator) << 8
                | u64::from(self.port_a) << 24
                | u64::from(self.port_b) << 40,
        );
        state.write_u32(self.track);
    }
}

/// Maps any IP address onto 16 bytes (IPv4 as ::ffff:a.b.c.d).
pub fn ip_bytes(ip: IpAddr) -> [u8; 16] {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

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

    /// Which of `threads` packet threads owns this session.
    ///
    /// Uses Arkime's session hash over Arkime's session-id layout, so a
    /// session lands on the same packet thread number as in Arkime. That
    /// matters for compatibility: idle timeouts run on each packet
    /// thread's own clock, so which sessions share a thread decides when
    /// they expire.
    pub fn shard(&self, threads: usize) -> usize {
        if threads <= 1 {
            return 0;
        }
        (self.arkime_hash() % threads as u32) as usize
    }

    /// Arkime's hash of this session's id (MurmurHash1-style mixing of
    /// the id's little-endian 32-bit words, salt 0).
    pub fn arkime_hash(&self) -> u32 {
        let mut id = [0u8; 40];
        let len = self.arkime_id(&mut id);
        let mut h: u32 = 0;
        for w in id[..len].chunks_exact(4) {
            let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            h = h.wrapping_add(word).wrapping_mul(0xc6a4_a793);
            h ^= h >> 16;
        }
        h
    }

    /// Writes Arkime's session id bytes; returns their length.
    fn arkime_id(&self, buf: &mut [u8; 40]) -> usize {
        let v4 = |a: &[u8; 16]| a[..12] == [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];
        let symmetric = matches!(
            self.kind,
            SessionKind::Tcp
                | SessionKind::Udp
                | SessionKind::Icmp
                | SessionKind::Sctp
                | SessionKind::Esp
        );
        let track = self.track.to_le_bytes();
        if symmetric && v4(&self.addr_a) && v4(&self.addr_b) {
            buf[0] = 16;
            buf[1..4].copy_from_slice(&[0, track[0], track[1]]);
            // Arkime orders IPv4 addresses by their value as a native
            // (little-endian) load of the network-order bytes.
            let a = u32::from_le_bytes([
                self.addr_a[12],
                self.addr_a[13],
                self.addr_a[14],
                self.addr_a[15],
            ]);
            let b = u32::from_le_bytes([
                self.addr_b[12],
                self.addr_b[13],
                self.addr_b[14],
                self.addr_b[15],
            ]);
            let (first, fp, second, sp) = if a < b || (a == b && self.port_a < self.port_b) {
                (a, self.port_a, b, self.port_b)
            } else {
                (b, self.port_b, a, self.port_a)
            };
            buf[4..8].copy_from_slice(&first.to_le_bytes());
            buf[8..12].copy_from_slice(&second.to_le_bytes());
            buf[12..14].copy_from_slice(&fp.to_be_bytes());
            buf[14..16].copy_from_slice(&sp.to_be_bytes());
            return 16;
        }
        if symmetric {
            buf[0] = 40;
            buf[1..4].copy_from_slice(&[0, track[0], track[1]]);
            // Already ordered by memcmp, then port.
            buf[4..20].copy_from_slice(&self.addr_a);
            buf[20..36].copy_from_slice(&self.addr_b);
            buf[36..38].copy_from_slice(&self.port_a.to_be_bytes());
            buf[38..40].copy_from_slice(&self.port_b.to_be_bytes());
            return 40;
        }
        buf[0] = 40;
        buf[1] = self.kind as u8;
        buf[2..4].copy_from_slice(&self.discriminator.to_le_bytes());
        buf[4..20].copy_from_slice(&self.addr_a);
        buf[20..36].copy_from_slice(&self.addr_b);
        buf[36..40].copy_from_slice(&self.track.to_le_bytes());
        40
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
    fn arkime_hash_of_an_ipv4_session() {
        // Session id 10 00 00 00 | 0a 00 00 01 | 0a 00 00 02 | 04 d2 | 00 50
        // hashed as Arkime does (words 0x10, 0x0100000a, 0x0200000a, 0x500d204).
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let k = SessionKey::symmetric(SessionKind::Tcp, 0, b, 80, a, 1234, 6);
        let mut h: u32 = 0;
        for w in [0x10u32, 0x0100_000a, 0x0200_000a, 0x5000_d204] {
            h = h.wrapping_add(w).wrapping_mul(0xc6a4_a793);
            h ^= h >> 16;
        }
        assert_eq!(k.arkime_hash(), h);
        assert_eq!(k.shard(2), (h % 2) as usize);
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

    #[test]
    fn every_field_takes_part_in_the_hash() {
        use std::hash::{BuildHasher, BuildHasherDefault};
        let hash = |k: &SessionKey| {
            BuildHasherDefault::<std::collections::hash_map::DefaultHasher>::default().hash_one(k)
        };
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "2001:db8::2".parse().unwrap();
        let base = SessionKey::symmetric(SessionKind::Tcp, 3, a, 1234, b, 80, 6);
        assert_eq!(hash(&base), hash(&SessionKey { ..base }));
        let mut changed = Vec::new();
        let mut k = base;
        k.kind = SessionKind::Udp;
        changed.push(k);
        let mut k = base;
        k.track = 4;
        changed.push(k);
        let mut k = base;
        k.addr_a[15] ^= 1;
        changed.push(k);
        let mut k = base;
        k.addr_a[0] ^= 1;
        changed.push(k);
        let mut k = base;
        k.addr_b[15] ^= 1;
        changed.push(k);
        let mut k = base;
        k.addr_b[0] ^= 1;
        changed.push(k);
        let mut k = base;
        k.port_a += 1;
        changed.push(k);
        let mut k = base;
        k.port_b += 1;
        changed.push(k);
        let mut k = base;
        k.discriminator = 17;
        changed.push(k);
        for k in changed {
            assert_ne!(k, base);
            assert_ne!(hash(&k), hash(&base), "{k:?}");
        }
    }
}
