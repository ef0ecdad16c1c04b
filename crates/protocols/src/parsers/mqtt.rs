//! MQTT 3.1, 3.1.1 and 5.0: packet types, the CONNECT's version, flags,
//! client id, will topic and user, CONNACK codes, topics and QoS of
//! PUBLISH packets and topic filters of (UN)SUBSCRIBE packets.
//!
//! Packets are read whole from a buffer of [`MAX_BUF`] bytes per
//! direction, except PUBLISH payloads, which are skipped without being
//! buffered; a packet that can never fit ends parsing with the tag
//! `mqtt:message-too-long`.

use super::Out;
use super::util::{self, be16};
use crate::Direction;
use crate::analyzer::{ParseContext, Parser, ParserStatus};
use crate::classify::{ClassifierSet, ClassifyAction, ClassifyContext};

/// Bytes buffered per direction (Arkime's parser buffer).
pub const MAX_BUF: usize = 8192;

/// Registers the MQTT classifier (a CONNECT packet).
pub fn register(set: &mut ClassifierSet) {
    set.add_tcp("mqtt", 0, b"\x10", ClassifyAction::Native(classify));
}

/// A variable-length integer at the start of `b`: (value, bytes used);
/// `Err(true)` when malformed (four continuation bytes), `Err(false)` when
/// more bytes are needed.
fn varint(b: &[u8]) -> Result<(usize, usize), bool> {
    let mut v = 0usize;
    for i in 0..4 {
        let Some(&c) = b.get(i) else {
            return Err(false);
        };
        v |= usize::from(c & 0x7f) << (7 * i);
        if c & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(true)
}

fn classify(cx: &mut ClassifyContext<'_>, data: &[u8], _dir: Direction) {
    if cx.fields.has_protocol("mqtt") || data.len() < 10 || data[0] & 0xf0 != 0x10 {
        return;
    }
    let Ok((_, n)) = varint(&data[1..]) else {
        return;
    };
    let Some(name) = string(data, 1 + n) else {
        return;
    };
    if name.0 != b"MQTT" && name.0 != b"MQIsdp" {
        return;
    }
    cx.add_protocol("mqtt");
    cx.attach(Box::new(Mqtt::default()));
}

/// A length-prefixed string at `at`: (bytes, offset after it).
fn string(b: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let l = usize::from(be16(b, at)?);
    Some((b.get(at + 2..at + 2 + l)?, at + 2 + l))
}

/// The MQTT parser of one session.
#[derive(Debug, Default)]
pub struct Mqtt {
    buf: [Vec<u8>; 2],
    /// Bytes of a skipped PUBLISH payload still to come, per direction.
    skipping: [usize; 2],
    /// Protocol level of the CONNECT (5: properties in SUBSCRIBE).
    version: u8,
}

const TYPES: [&str; 16] = [
    "Reserved",
    "CONNECT",
    "CONNACK",
    "PUBLISH",
    "PUBACK",
    "PUBREC",
    "PUBREL",
    "PUBCOMP",
    "SUBSCRIBE",
    "SUBACK",
    "UNSUBSCRIBE",
    "UNSUBACK",
    "PINGREQ",
    "PINGRESP",
    "DISCONNECT",
    "AUTH",
];

impl Mqtt {
    fn connect(&mut self, o: &mut Out<'_, '_>, b: &[u8]) {
        let Some((name, mut at)) = string(b, 0) else {
            return;
        };
        if name != b"MQTT" && name != b"MQIsdp" {
            return;
        }
        let Some(&level) = b.get(at) else { return };
        o.s(
            "mqtt.version",
            match level {
                3 => "3.1",
                4 => "3.1.1",
                5 => "5.0",
                _ => "unknown",
            },
        );
        self.version = level;
        let Some(&flags) = b.get(at + 1) else { return };
        let will = flags & 0x04 != 0;
        if will {
            o.s("mqtt.flags", "hasWill");
            let qos = (flags >> 3) & 3;
            if qos <= 2 {
                o.i("mqtt.qos", i64::from(qos));
            }
            if flags & 0x20 != 0 {
                o.s("mqtt.flags", "willRetain");
            }
        }
        if flags & 0x02 != 0 {
            o.s("mqtt.flags", "cleanSession");
        }
        if flags & 0x40 != 0 {
            o.s("mqtt.flags", "hasPassword");
        }
        at += 4;
        if level == 5 {
            let Ok((props, n)) = varint(b.get(at..).unwrap_or(&[])) else {
                return;
            };
            at += n + props;
        }
        let Some((cid, next)) = string(b, at) else {
            return;
        };
        if !cid.is_empty() {
            o.s("mqtt.clientId", &util::text(cid));
        }
        at = next;
        if will {
            if level == 5 {
                let Ok((props, n)) = varint(b.get(at..).unwrap_or(&[])) else {
                    return;
                };
                at += n + props;
            }
            let Some((topic, next)) = string(b, at) else {
                return;
            };
            if !topic.is_empty() {
                o.s("mqtt.willTopic", &util::text(topic));
            }
            let Some(l) = be16(b, next) else { return };
            at = next + 2 + usize::from(l);
        }
        if flags & 0x80 != 0
            && let Some((user, _)) = string(b, at)
            && !user.is_empty()
        {
            o.s("user", &util::text(user).to_ascii_lowercase());
        }
    }

    /// Topic filters of a (UN)SUBSCRIBE (their options are not read).
    fn subscribe(&self, o: &mut Out<'_, '_>, b: &[u8], options: bool) {
        let mut at = 2;
        if self.version == 5 {
            let Ok((props, n)) = varint(b.get(at..).unwrap_or(&[])) else {
                return;
            };
            at += n + props;
        }
        while b.len() > at + 2 {
            let Some((topic, next)) = string(b, at) else {
                break;
            };
            if !topic.is_empty() {
                o.s("mqtt.topic", &util::text(topic));
            }
            // SUBSCRIBE filters are followed by an options byte.
            at = next + usize::from(options);
        }
    }

    /// Reads direction `d`'s buffer; `None` when parsing should stop.
    fn run(&mut self, o: &mut Out<'_, '_>, d: usize, truncated: bool) -> Option<()> {
        let mut buf = std::mem::take(&mut self.buf[d]);
        let mut at = 0;
        let result = loop {
            let b = &buf[at..];
            if b.len() < 2 {
                break Some(());
            }
            let (len, n) = match varint(&b[1..]) {
                Ok(v) => v,
                Err(true) => {
                    o.tag("mqtt:bad-varint");
                    break None;
                }
                Err(false) => break Some(()),
            };
            let kind = usize::from(b[0] >> 4);
            let flags = b[0] & 0x0f;
            o.s("mqtt.type", TYPES[kind]);
            let body = &b[1 + n..];
            if kind == 3 {
                // PUBLISH: the topic (and packet id) is needed, the payload
                // is skipped even when it exceeds the buffer.
                let qos = (flags >> 1) & 3;
                let Some(tl) = be16(body, 0) else {
                    if truncated {
                        o.tag("mqtt:message-too-long");
                        break None;
                    }
                    break Some(());
                };
                let head = 2 + usize::from(tl) + if qos > 0 { 2 } else { 0 };
                if head > len || head > MAX_BUF {
                    o.tag("mqtt:bad-publish");
                    break None;
                }
                if body.len() < head {
                    if truncated {
                        o.tag("mqtt:message-too-long");
                        break None;
                    }
                    break Some(());
                }
                if tl > 0 {
                    o.s("mqtt.topic", &util::text(&body[2..2 + usize::from(tl)]));
                }
                o.i("mqtt.qos", i64::from(qos));
                let total = 1 + n + len;
                if total > b.len() {
                    self.skipping[d] = total - b.len();
                    at = buf.len();
                } else {
                    at += total;
                }
                continue;
            }
            if len > MAX_BUF {
                o.tag("mqtt:message-too-long");
                break None;
            }
            if body.len() < len {
                if truncated {
                    o.tag("mqtt:message-too-long");
                    break None;
                }
                break Some(());
            }
            let body = &body[..len];
            match kind {
                1 => self.connect(o, body),
                2 => {
                    if let Some(&code) = body.get(1) {
                        o.i("mqtt.connackCode", i64::from(code));
                    }
                }
                8 | 10 => self.subscribe(o, body, kind == 8),
                _ => {}
            }
            at += 1 + n + len;
        };
        if result.is_some() {
            buf.drain(..at);
            self.buf[d] = buf;
        }
        result
    }
}

impl Parser for Mqtt {
    fn name(&self) -> &'static str {
        "mqtt"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let d = dir.index();
        let skip = self.skipping[d].min(data.len());
        self.skipping[d] -= skip;
        let data = &data[skip..];
        // Like Arkime's fixed buffer, keep what fits and remember the cut.
        let room = MAX_BUF - self.buf[d].len();
        let truncated = data.len() > room;
        self.buf[d].extend_from_slice(&data[..data.len().min(room)]);
        let mut o = super::out(cx);
        match self.run(&mut o, d, truncated) {
            Some(()) => ParserStatus::Continue,
            None => ParserStatus::Done,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::Harness;
    use serde_json::json;

    fn connect(level: u8, flags: u8, tail: &[u8]) -> Vec<u8> {
        let mut b = vec![0, 4, b'M', b'Q', b'T', b'T', level, flags, 0, 60];
        if level == 5 {
            b.push(0);
        }
        b.extend_from_slice(tail);
        let mut m = vec![0x10, b.len() as u8];
        m.extend_from_slice(&b);
        m
    }

    fn s(v: &str) -> Vec<u8> {
        let mut b = (v.len() as u16).to_be_bytes().to_vec();
        b.extend_from_slice(v.as_bytes());
        b
    }

    #[test]
    fn v5_session() {
        let mut h = Harness::tcp(1883);
        let tail = [s("dev-1"), s("Modern_User"), s("pw")].concat();
        h.feed(0, &connect(5, 0xc2, &tail));
        h.feed(1, &[0x20, 3, 0, 0, 0]);
        // SUBSCRIBE with a property block, two filters with options.
        let mut sub = vec![0, 7, 3, 0x0b, 0x01, 0x00];
        sub.extend_from_slice(&s("a/#"));
        sub.push(2);
        sub.extend_from_slice(&s("b/+"));
        sub.push(1);
        let mut m = vec![0x82, sub.len() as u8];
        m.extend_from_slice(&sub);
        // PUBLISH QoS 1 split across segments.
        let mut p = s("t/1");
        p.extend_from_slice(&[0, 9, b'x', b'y']);
        let mut pm = vec![0x32, p.len() as u8];
        pm.extend_from_slice(&p);
        m.extend_from_slice(&pm[..4]);
        h.feed(0, &m);
        h.feed(0, &pm[4..]);
        let j = h.json();
        assert_eq!(j["protocol"], json!(["mqtt"]));
        assert_eq!(j["mqtt"]["version"], json!(["5.0"]));
        assert_eq!(j["mqtt"]["clientId"], json!(["dev-1"]));
        assert_eq!(j["mqtt"]["flags"], json!(["cleanSession", "hasPassword"]));
        assert_eq!(j["user"], json!(["modern_user"]));
        assert_eq!(j["mqtt"]["topic"], json!(["a/#", "b/+", "t/1"]));
        assert_eq!(j["mqtt"]["qos"], json!([1]));
        assert_eq!(j["mqtt"]["connackCode"], json!([0]));
        assert_eq!(
            j["mqtt"]["type"],
            json!(["CONNECT", "CONNACK", "SUBSCRIBE", "PUBLISH"])
        );
    }

    #[test]
    fn unsubscribe_filters_have_no_options() {
        let mut h = Harness::tcp(1883);
        h.feed(0, &connect(4, 0x02, &s("c")));
        let mut u = vec![0, 5];
        u.extend_from_slice(&s("u/first"));
        u.extend_from_slice(&s("u/second"));
        let mut m = vec![0xa2, u.len() as u8];
        m.extend_from_slice(&u);
        h.feed(0, &m);
        assert_eq!(h.json()["mqtt"]["topic"], json!(["u/first", "u/second"]));
    }

    #[test]
    fn large_publish_payload_is_skipped() {
        let mut h = Harness::tcp(1883);
        h.feed(0, &connect(4, 0x02, &s("c")));
        let payload = 10_000usize;
        let mut p = vec![
            0x30,
            0x80 | ((payload + 5) & 0x7f) as u8,
            ((payload + 5) >> 7) as u8,
        ];
        p.extend_from_slice(&s("big"));
        h.feed(0, &p);
        for n in [4000, 4000, 2000] {
            h.feed(0, &vec![b'z'; n]);
        }
        h.feed(0, &[0xc0, 0]);
        let j = h.json();
        assert_eq!(j["mqtt"]["topic"], json!(["big"]));
        assert_eq!(j["mqtt"]["type"], json!(["CONNECT", "PUBLISH", "PINGREQ"]));
        assert!(j["tags"].as_array().unwrap().is_empty());
    }

    #[test]
    fn oversized_and_malformed() {
        // A topic that can never fit the buffer.
        let mut h = Harness::tcp(1883);
        h.feed(0, &connect(4, 0x02, &s("c")));
        let topic = vec![b't'; 8190];
        let mut p = vec![0x30, 0x80, 0x40];
        p.extend_from_slice(&(topic.len() as u16).to_be_bytes());
        p.extend_from_slice(&topic);
        h.feed(0, &p[..4096]);
        h.feed(0, &p[4096..]);
        assert_eq!(h.json()["tags"], json!(["mqtt:message-too-long"]));
        assert!(h.app.parser_names().is_empty());
        // A length of five continuation bytes.
        let mut h = Harness::tcp(1883);
        h.feed(0, &connect(4, 0x02, &s("c")));
        h.feed(0, &[0x82, 0xff, 0xff, 0xff, 0xff, 0x01]);
        assert_eq!(h.json()["tags"], json!(["mqtt:bad-varint"]));
        // A SUBSCRIBE longer than the buffer.
        let mut h = Harness::tcp(1883);
        h.feed(0, &connect(4, 0x02, &s("c")));
        h.feed(0, &[0x82, 0xff, 0xff, 0x03, 0, 1]);
        assert_eq!(h.json()["tags"], json!(["mqtt:message-too-long"]));
        // Truncated CONNECT fields never panic.
        let full = connect(5, 0xee, &[s("id"), s("w")].concat());
        for n in 10..full.len() {
            let mut h = Harness::tcp(1883);
            let mut m = full[..n].to_vec();
            m[1] = (n - 2) as u8;
            h.feed(0, &m);
        }
    }
}
