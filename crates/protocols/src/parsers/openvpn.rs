//! OpenVPN (UDP, and TCP with its 2-byte length framing): recognises the
//! client hard reset, then feeds the TLS handshake carried in
//! P_CONTROL_V1 packets (with or without a tls-auth HMAC) to a TLS parser,
//! so the session gets the TLS and certificate fields.

use super::tls::Tls;
use super::util::be16;
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus, Transport};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

const P_CONTROL_HARD_RESET_CLIENT_V2: u8 = 7;
const P_CONTROL_HARD_RESET_CLIENT_V3: u8 = 10;
const P_CONTROL_V1: u8 = 4;
/// Largest TCP framing buffer.
const MAX_BUF: usize = 64 * 1024;

/// Registers OpenVPN (client hard reset at the start of UDP or TCP data).
pub fn register(set: &mut ClassifierSet) {
    for op in [
        P_CONTROL_HARD_RESET_CLIENT_V2,
        P_CONTROL_HARD_RESET_CLIENT_V3,
    ] {
        set.add_udp("openvpn", 0, &[op << 3], ClassifyAction::Native(classify));
        set.add_tcp("openvpn", 2, &[op << 3], ClassifyAction::Native(classify));
    }
}

/// The control-packet header length before the message packet id, for
/// each tls-auth HMAC size tried (none, SHA-1, SHA-256, SHA-512).
const AUTH_SIZES: [usize; 4] = [0, 20 + 8, 32 + 8, 64 + 8];

fn classify(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    if dir != Direction::FromSource {
        return;
    }
    let tcp = cx.meta.transport == Transport::Tcp;
    let pkt = if tcp {
        match be16(data, 0) {
            Some(l) if usize::from(l) + 2 == data.len() => &data[2..],
            _ => return,
        }
    } else {
        data
    };
    // opcode, session id, [auth], ack count 0, message packet id.
    if !AUTH_SIZES
        .iter()
        .any(|a| pkt.len() == 9 + a + 1 + 4 && pkt[9 + a] == 0)
    {
        return;
    }
    if !cx.has_parser("openvpn") {
        cx.add_protocol("openvpn");
        cx.attach(Box::new(OpenVpn::new(tcp)));
    }
}

/// The TLS payload of a P_CONTROL_V1 packet.
fn control_payload(pkt: &[u8]) -> Option<(u32, &[u8])> {
    if pkt.first()? >> 3 != P_CONTROL_V1 {
        return None;
    }
    for auth in AUTH_SIZES {
        let at = 9 + auth;
        let Some(&acks) = pkt.get(at) else { continue };
        let mut p = at + 1 + usize::from(acks) * 4;
        if acks > 0 {
            p += 8;
        }
        let Some(id) = pkt.get(p..p + 4) else {
            continue;
        };
        let payload = &pkt[p + 4..];
        if payload.first() == Some(&0x16)
            || payload.first() == Some(&0x14)
            || payload.first() == Some(&0x17)
        {
            return Some((u32::from_be_bytes([id[0], id[1], id[2], id[3]]), payload));
        }
    }
    None
}

/// The OpenVPN parser of one session.
pub struct OpenVpn {
    tcp: bool,
    buf: [Vec<u8>; 2],
    next_id: [u32; 2],
    tls: Tls,
}

impl OpenVpn {
    fn new(tcp: bool) -> OpenVpn {
        OpenVpn {
            tcp,
            buf: [Vec::new(), Vec::new()],
            next_id: [0; 2],
            tls: Tls::embedded(),
        }
    }

    fn packet(&mut self, cx: &mut ParseContext<'_>, dir: Direction, pkt: &[u8]) {
        let d = dir.index();
        if let Some((id, payload)) = control_payload(pkt) {
            // Retransmissions repeat an id already seen.
            if id < self.next_id[d] {
                return;
            }
            self.next_id[d] = id.saturating_add(1);
            let _ = self.tls.parse(cx, dir, payload);
        }
    }
}

impl Parser for OpenVpn {
    fn name(&self) -> &'static str {
        "openvpn"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        if !self.tcp {
            self.packet(cx, dir, data);
            return ParserStatus::Continue;
        }
        let d = dir.index();
        if self.buf[d].len() + data.len() > MAX_BUF {
            return ParserStatus::Done;
        }
        self.buf[d].extend_from_slice(data);
        while let Some(l) = be16(&self.buf[d], 0) {
            let l = usize::from(l);
            if self.buf[d].len() < 2 + l {
                break;
            }
            let pkt: Vec<u8> = self.buf[d][2..2 + l].to_vec();
            self.buf[d].drain(..2 + l);
            self.packet(cx, dir, &pkt);
        }
        ParserStatus::Continue
    }
}

#[cfg(test)]
mod tests {
    use crate::parsers::testutil::Harness;

    #[test]
    fn reset_then_garbage() {
        let mut h = Harness::udp(1194);
        h.feed(0, b"\x38CLIENTID\x00\x00\x00\x00\x00");
        h.feed(0, b"\x20CLIENTID\x05\x00");
        h.feed(1, b"\x20SERVERID\x00\x00\x00\x00\x01\x16\x03\x03\xff\xff");
        h.finish();
        assert_eq!(h.json()["protocol"], serde_json::json!(["openvpn"]));
        let mut h = Harness::tcp(1194);
        h.feed(0, b"\x00\x0e\x38CLIENTID\x00\x00\x00\x00\x00");
        h.feed(0, b"\xff\xff\x20");
        h.finish();
    }
}
