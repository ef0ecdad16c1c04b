//! SOCKS 4/4a/5: the requested destination (`socks.ip`/`host`/`port`),
//! the user, then the tunneled protocol is classified afresh.

use super::util::{self, be16};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Registers the SOCKS classifiers (client hellos of versions 4 and 5).
pub fn register(set: &mut ClassifierSet) {
    set.add_tcp("socks", 0, &[4, 1], ClassifyAction::Native(classify4));
    set.add_tcp("socks", 0, &[4, 2], ClassifyAction::Native(classify4));
    set.add_tcp("socks", 0, &[5], ClassifyAction::Native(classify5));
}

fn classify4(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    // VN CD DSTPORT DSTIP USERID NUL
    if dir != Direction::FromSource || data.len() < 9 || data.last() != Some(&0) {
        return;
    }
    if !cx.has_parser("socks") {
        cx.attach(Box::new(Socks::new(4)));
    }
}

fn classify5(cx: &mut ClassifyContext<'_>, data: &[u8], dir: Direction) {
    // VER NMETHODS METHODS...
    if dir != Direction::FromSource
        || data.len() < 3
        || usize::from(data[1]) + 2 != data.len()
        || data[1] == 0
    {
        return;
    }
    if !cx.has_parser("socks") {
        cx.attach(Box::new(Socks::new(5)));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// v4: request sent, waiting for the reply. v5: methods sent.
    Start,
    /// v5: waiting for the method choice.
    Method,
    /// v5: username/password sent.
    Auth,
    /// v5: connect request sent.
    Request,
}

/// The SOCKS parser of one session.
pub struct Socks {
    version: u8,
    step: Step,
    method: u8,
    granted: bool,
}

impl Socks {
    fn new(version: u8) -> Socks {
        Socks {
            version,
            step: Step::Start,
            method: 0xff,
            granted: false,
        }
    }
}

fn addr(o: &mut super::Out<'_, '_>, atyp: u8, b: &[u8]) -> Option<usize> {
    match atyp {
        1 => {
            let ip: [u8; 4] = b.get(..4)?.try_into().ok()?;
            o.scalar("ip.socks", std::net::Ipv4Addr::from(ip).to_string().into());
            o.scalar("port.socks", be16(b, 4)?.into());
            Some(6)
        }
        3 => {
            let n = usize::from(*b.first()?);
            let host = b.get(1..1 + n)?;
            o.scalar("host.socks", util::text(host).to_lowercase().into());
            o.scalar("port.socks", be16(b, 1 + n)?.into());
            Some(3 + n)
        }
        4 => {
            let ip: [u8; 16] = b.get(..16)?.try_into().ok()?;
            o.scalar("ip.socks", std::net::Ipv6Addr::from(ip).to_string().into());
            o.scalar("port.socks", be16(b, 16)?.into());
            Some(18)
        }
        _ => None,
    }
}

impl Parser for Socks {
    fn name(&self) -> &'static str {
        "socks"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let client = dir == Direction::FromSource;
        let mut o = super::out(cx);
        if self.version == 4 {
            if client && self.step == Step::Start {
                let Some(port) = be16(data, 2) else {
                    return ParserStatus::Done;
                };
                let ip = [data[4], data[5], data[6], data[7]];
                let rest = &data[8..];
                let uend = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
                if uend > 0 {
                    o.s("user", &util::text(&rest[..uend]));
                }
                if ip[0] == 0 && ip[1] == 0 && ip[2] == 0 && ip[3] != 0 {
                    // SOCKS 4a: the host name follows the user.
                    let h = rest.get(uend + 1..).unwrap_or(&[]);
                    let hend = h.iter().position(|&c| c == 0).unwrap_or(h.len());
                    o.scalar("host.socks", util::text(&h[..hend]).to_lowercase().into());
                } else {
                    o.scalar("ip.socks", std::net::Ipv4Addr::from(ip).to_string().into());
                }
                o.scalar("port.socks", port.into());
                self.step = Step::Request;
                return ParserStatus::Continue;
            }
            if !client && data.len() >= 8 && data[0] == 0 {
                if data[1] == 0x5a {
                    o.protocol("socks");
                    cx.reclassify();
                }
                return ParserStatus::Done;
            }
            return ParserStatus::Continue;
        }
        match (self.step, client) {
            (Step::Start, true) => {
                self.step = Step::Method;
            }
            (Step::Method, false) => {
                if data.len() < 2 || data[0] != 5 {
                    return ParserStatus::Done;
                }
                self.method = data[1];
                self.step = if self.method == 2 {
                    Step::Auth
                } else {
                    Step::Request
                };
            }
            (Step::Auth, true) => {
                // RFC 1929: VER ULEN UNAME PLEN PASSWD
                if data.first() == Some(&1)
                    && let Some(&n) = data.get(1)
                    && let Some(u) = data.get(2..2 + usize::from(n))
                {
                    o.s("user", &util::text(u));
                    self.step = Step::Request;
                    return ParserStatus::Continue;
                }
                if data.first() == Some(&5) {
                    return self.request(cx, data);
                }
            }
            (Step::Auth, false) => {}
            (Step::Request, true) => return self.request(cx, data),
            (Step::Request, false) if data.len() >= 2 && data[0] == 5 => {
                if data[1] == 0 && self.granted {
                    o.protocol("socks");
                    cx.reclassify();
                }
                return ParserStatus::Done;
            }
            _ => {}
        }
        ParserStatus::Continue
    }
}

impl Socks {
    fn request(&mut self, cx: &mut ParseContext<'_>, data: &[u8]) -> ParserStatus {
        // VER CMD RSV ATYP DST.ADDR DST.PORT
        if data.len() < 7 || data[0] != 5 {
            return ParserStatus::Done;
        }
        let mut o = super::out(cx);
        if addr(&mut o, data[3], &data[4..]).is_some() {
            self.granted = true;
        }
        self.step = Step::Request;
        ParserStatus::Continue
    }
}

#[cfg(test)]
mod tests {
    use crate::parsers::testutil::Harness;

    #[test]
    fn socks5_domain_then_http() {
        let mut h = Harness::tcp(1080);
        h.feed(0, &[5, 1, 0]);
        h.feed(1, &[5, 0]);
        let mut req = vec![5, 1, 0, 3, 3];
        req.extend_from_slice(b"a.b");
        req.extend_from_slice(&[0, 80]);
        h.feed(0, &req);
        h.feed(1, &[5, 0, 0, 1, 1, 2, 3, 4, 0, 80]);
        h.feed(0, b"GET / HTTP/1.1\r\nHost: a.b\r\n\r\n");
        let j = h.json();
        assert_eq!(j["socks"]["host"], serde_json::json!("a.b"));
        assert_eq!(j["socks"]["port"], serde_json::json!(80));
        assert_eq!(j["protocol"], serde_json::json!(["socks", "http"]));
    }

    #[test]
    fn truncated() {
        for input in [
            &[5u8, 1][..],
            &[4, 1, 0],
            &[4, 1, 0, 80, 0, 0, 0, 1, 0],
            &[5, 1, 0, 5, 0xff],
        ] {
            let mut h = Harness::tcp(1080);
            h.feed(0, input);
            h.feed(1, &[5, 2]);
            h.feed(0, &[1, 200, 1]);
            h.feed(1, &[5]);
            h.finish();
        }
    }
}
