//! ARP messages as session fields (`arp.ip`, `arp.mac`, `arp.opcode`).
//!
//! ARP sessions are keyed by the address being resolved (see `keying`);
//! each message adds its opcode, that address, and, for a reply, the
//! hardware address it resolves to.

use std::net::{IpAddr, Ipv4Addr};

use protocols::SessionFields;
use protocols::fields::FieldRegistry;

/// The facts of one Ethernet/IPv4 ARP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArpMessage {
    /// 1 request, 2 reply.
    pub opcode: u16,
    pub sender_mac: [u8; 6],
    pub sender_ip: [u8; 4],
    pub target_mac: [u8; 6],
    pub target_ip: [u8; 4],
}

impl ArpMessage {
    /// Reads an ARP message for IPv4 over Ethernet (hardware length 6,
    /// protocol length 4); anything else is `None`.
    pub fn parse(b: &[u8]) -> Option<ArpMessage> {
        if b.len() < 28 || b[4] != 6 || b[5] != 4 {
            return None;
        }
        let mac = |at: usize| -> [u8; 6] {
            let mut m = [0u8; 6];
            m.copy_from_slice(&b[at..at + 6]);
            m
        };
        let ip = |at: usize| -> [u8; 4] { [b[at], b[at + 1], b[at + 2], b[at + 3]] };
        Some(ArpMessage {
            opcode: u16::from_be_bytes([b[6], b[7]]),
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// The address the exchange is about: a request's target, a reply's
    /// sender.
    pub fn resolved_ip(&self) -> Option<[u8; 4]> {
        match self.opcode {
            1 => Some(self.target_ip),
            2 => Some(self.sender_ip),
            _ => None,
        }
    }

    /// The hardware address the message tells: a reply's sender, or a
    /// request's target when it is filled in.
    fn resolved_mac(&self) -> Option<[u8; 6]> {
        match self.opcode {
            2 => Some(self.sender_mac),
            1 if self.target_mac != [0; 6] && self.target_mac != [0xff; 6] => Some(self.target_mac),
            _ => None,
        }
    }
}

/// Adds one ARP message's fields to a session.
pub(crate) fn add_fields(fields: &mut SessionFields, reg: &FieldRegistry, payload: &[u8]) {
    let Some(m) = ArpMessage::parse(payload) else {
        return;
    };
    let mut buf = itoa::Buffer::new();
    fields.add_str_expr(reg, "arp.opcode", buf.format(m.opcode));
    if let Some(ip) = m.resolved_ip() {
        fields.add_ip_expr(reg, "arp.ip", IpAddr::V4(Ipv4Addr::from(ip)));
    }
    if let Some(mac) = m.resolved_mac() {
        fields.add_str_expr(reg, "arp.mac", &mac_string(&mac));
    }
}

/// Lower-case colon-separated MAC, as Arkime writes it.
fn mac_string(m: &[u8; 6]) -> String {
    let mut s = String::with_capacity(17);
    for (i, b) in m.iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        protocols::json_text::push_hex(&mut s, std::slice::from_ref(b));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// who-has 10.10.10.1 tell 10.10.10.2 (from cloudshark-arp.pcap).
    const REQUEST: &str = "0001080006040001001a6b6c0ccc0a0a0a020000000000000a0a0a01";
    /// 10.10.10.1 is-at 00:1d:09:f0:92:ab.
    const REPLY: &str = "0001080006040002001d09f092ab0a0a0a01001a6b6c0ccc0a0a0a02";

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    fn json(fields: &SessionFields, reg: &FieldRegistry) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        fields.write_json(reg, &mut m);
        serde_json::Value::Object(m)
    }

    #[test]
    fn request_and_reply_resolve_the_same_address() {
        let q = ArpMessage::parse(&unhex(REQUEST)).expect("request");
        let r = ArpMessage::parse(&unhex(REPLY)).expect("reply");
        assert_eq!(q.resolved_ip(), Some([10, 10, 10, 1]));
        assert_eq!(r.resolved_ip(), Some([10, 10, 10, 1]));
        assert_eq!(q.resolved_mac(), None);
        assert_eq!(r.resolved_mac(), Some([0x00, 0x1d, 0x09, 0xf0, 0x92, 0xab]));
    }

    #[test]
    fn fields_of_an_exchange() {
        let reg = FieldRegistry::builtin();
        let mut f = SessionFields::new();
        add_fields(&mut f, &reg, &unhex(REQUEST));
        add_fields(&mut f, &reg, &unhex(REPLY));
        let doc = json(&f, &reg);
        let arp = &doc["arp"];
        assert_eq!(arp["ip"], serde_json::json!(["10.10.10.1"]));
        assert_eq!(arp["mac"], serde_json::json!(["00:1d:09:f0:92:ab"]));
        assert_eq!(arp["opcode"], serde_json::json!(["1", "2"]));
        assert_eq!(arp["opcodeCnt"], serde_json::json!(2));
    }

    #[test]
    fn short_or_non_ipv4_messages_add_nothing() {
        let reg = FieldRegistry::builtin();
        let mut f = SessionFields::new();
        let req = unhex(REQUEST);
        add_fields(&mut f, &reg, &req[..27]);
        let mut other = req.clone();
        other[5] = 16; // IPv6-sized protocol addresses
        add_fields(&mut f, &reg, &other);
        assert!(f.is_empty());
    }
}
