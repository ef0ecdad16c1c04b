//! Community ID flow hashes (version 1, seed 0), as Arkime writes them in
//! `network.community_id`.

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

fn ip_octets(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v) => v.octets().to_vec(),
        IpAddr::V6(v) => v.octets().to_vec(),
    }
}

fn hash(a: &[u8], b: &[u8], proto: u8, pa: u16, pb: u16) -> String {
    let mut h = Sha1::new();
    h.update(0u16.to_be_bytes());
    h.update(a);
    h.update(b);
    h.update([proto, 0]);
    h.update(pa.to_be_bytes());
    h.update(pb.to_be_bytes());
    format!(
        "1:{}",
        base64::engine::general_purpose::STANDARD.encode(h.finalize())
    )
}

/// The ID of a port-based flow (TCP, UDP, SCTP; ESP with ports 0).
pub fn flow(src: IpAddr, dst: IpAddr, proto: u8, sport: u16, dport: u16) -> String {
    let (a, b) = (ip_octets(src), ip_octets(dst));
    if (&a, sport) <= (&b, dport) {
        hash(&a, &b, proto, sport, dport)
    } else {
        hash(&b, &a, proto, dport, sport)
    }
}

/// The ID of an ICMP or ICMPv6 flow from its first message's type/code.
pub fn icmp(src: IpAddr, dst: IpAddr, proto: u8, kind: u8, code: u8, v6: bool) -> String {
    let counterpart = if v6 {
        match kind {
            128 => Some(129),
            129 => Some(128),
            130 => Some(131),
            131 => Some(130),
            133 => Some(134),
            134 => Some(133),
            135 => Some(136),
            136 => Some(135),
            139 => Some(140),
            140 => Some(139),
            144 => Some(145),
            145 => Some(145),
            _ => None,
        }
    } else {
        match kind {
            0 => Some(8),
            8 => Some(0),
            9 => Some(10),
            10 => Some(9),
            13 => Some(14),
            14 => Some(13),
            15 => Some(16),
            16 => Some(15),
            17 => Some(18),
            18 => Some(17),
            _ => None,
        }
    };
    let (p1, p2) = (u16::from(kind), u16::from(counterpart.unwrap_or(code)));
    let (a, b) = (ip_octets(src), ip_octets(dst));
    let keep = match a.cmp(&b) {
        std::cmp::Ordering::Less => true,
        std::cmp::Ordering::Greater => false,
        std::cmp::Ordering::Equal => p1 <= p2,
    };
    if keep {
        hash(&a, &b, proto, p1, p2)
    } else {
        hash(&b, &a, proto, p2, p1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values from the Community ID specification's reference outputs.
    #[test]
    fn reference_values() {
        let a: IpAddr = "128.232.110.120".parse().unwrap();
        let b: IpAddr = "66.35.250.204".parse().unwrap();
        assert_eq!(flow(a, b, 6, 34855, 80), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        assert_eq!(flow(b, a, 6, 80, 34855), "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
        let c: IpAddr = "192.168.0.89".parse().unwrap();
        let d: IpAddr = "192.168.0.1".parse().unwrap();
        assert_eq!(icmp(c, d, 1, 8, 0, false), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
        assert_eq!(icmp(d, c, 1, 0, 0, false), "1:X0snYXpgwiv9TZtqg64sgzUn6Dk=");
    }
}
