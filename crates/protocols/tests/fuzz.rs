//! Property tests: arbitrary bytes, alone or behind each classifier's
//! signature, never panic any parser, in either direction, over TCP, UDP
//! and SCTP, however the stream is cut.

use std::sync::Arc;

use proptest::prelude::*;
use protocols::fields::FieldRegistry;
use protocols::{Analyzer, AppSession, Direction, ProtocolConfig, SessionMeta, Transport};

/// First bytes that reach each parser.
const PREFIXES: &[&[u8]] = &[
    b"",
    b"GET / HTTP/1.1\r\n",
    b"HTTP/1.1 200 OK\r\n",
    b"\x16\x03\x01\x02\x00\x01",
    b"\x16\x03\x03\x00\x50\x02",
    b"\x16\xfe\xfd\x00\x00\x00\x00\x00\x00\x00\x00",
    b"EHLO x\r\n",
    b"220 x ESMTP\r\n",
    b"220 ftp\r\n",
    b"SSH-2.0-x\r\n",
    b"\x05\x01\x00",
    b"\x04\x01\x00\x50\x01\x02\x03\x04\x00",
    b"\x38CLIENTID\x00\x00\x00\x00\x00",
    b"\x05\x00\x0b\x03\x10\x00\x00\x00",
    b"\x01\x00\x00\x14\x80\x00\x01\x01",
    b"\x01\x00\x01\x01\x00\x00\x00\x20",
    b"CNXN\x01\x00\x00\x01\x00\x00\x04\x00",
    b"\x10\x1a\x00\x04MQTT\x04",
    b"\x05\x64\x05\xc0\x01\x00",
    b"\xaa\x31\x00\x20",
    b"\x03\x00\x00\x13\x0e\xe0",
    b"NICK x\r\n",
    b"\x00\x00\x00\x08\x04\xd2\x16\x2f",
    b"INVITE sip:x SIP/2.0\r\n",
    b"SIP/2.0 200 OK\r\nContent-Length: 5\r\n\r\n",
    b"* OK IMAP4rev1 ready\r\n* 1 FETCH (BODY[HEADER]\r\n",
    b"\x6a\x81\x90\x30\x81\x8d\xa1\x03\x02\x01\x05\xa2\x03\x02\x01\x0a",
    b"\x00\x00\x00\x90\x6a\x81\x8c\x30\x81\x89\xa1\x03\x02\x01\x05",
    b"\x00\x00\x00\x50\xffSMB\x73\x00\x00\x00\x00\x08\x01\xc8",
    b"\x00\x00\x00\x50\xfeSMB\x40\x00\x00\x00\x00\x00\x00\x00",
    b"\x11\x02\x00\x0c\xc0\xa8\x00\x01\x00\x8a\x00\xbb\x00\x00",
    b"\x00\x01\x00\x08\x21\x12\xa4\x42",
    b"\x00\x01\x00\x00\x00\x06\x01\x03",
    b"\x81\x0b\x00\x0c\x01\x20\xff\xff",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
    // The preface and a HEADERS frame header: what follows is read as HPACK.
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x20\x01\x04\x00\x00\x00\x01",
];

const PORTS: &[u16] = &[
    80, 443, 53, 25, 21, 22, 1080, 1194, 135, 3868, 2905, 5555, 1883, 20000, 4712, 3389, 6667,
    5432, 3306, 137, 5353, 69, 3478, 5060, 500, 1812, 502, 179, 389, 88, 143, 445, 138, 47808,
];

fn analyzer() -> Analyzer {
    let mut c = ProtocolConfig::default();
    for (k, v) in [
        ("maxReqBody", "64"),
        ("supportSha256", "true"),
        ("dnsOutputAnswers", "true"),
        ("parseSMTPHeaderAll", "true"),
    ] {
        c.settings.insert(k.into(), v.into());
    }
    let set = protocols::parsers::classifiers(&c);
    Analyzer::new(
        Arc::new(FieldRegistry::builtin()),
        Arc::new(set),
        Arc::new(c),
    )
}

fn meta(transport: Transport, port: u16) -> SessionMeta {
    SessionMeta {
        transport,
        src_ip: Some("10.0.0.1".parse().unwrap()),
        dst_ip: Some("10.0.0.2".parse().unwrap()),
        src_port: 40000,
        dst_port: port,
        ip_protocol: 6,
        first_ts_us: 1_600_000_000_000_000,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in 0..PREFIXES.len(),
        port in 0..PORTS.len(),
        transport in 0..3usize,
        body in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(1..64usize, 1..8),
        reply in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let mut a = analyzer();
        let t = [Transport::Tcp, Transport::Udp, Transport::Sctp][transport];
        let m = meta(t, PORTS[port]);
        let mut app = AppSession::new();
        let mut data = PREFIXES[prefix].to_vec();
        data.extend_from_slice(&body);
        let mut rest = &data[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = cuts[i % cuts.len()].min(rest.len());
            a.data(&mut app, &m, Direction::FromSource, &rest[..n]);
            a.data(&mut app, &m, Direction::FromDestination, &reply[..reply.len().min(n)]);
            rest = &rest[n..];
            i += 1;
        }
        let mut p = PREFIXES[(prefix + 1) % PREFIXES.len()].to_vec();
        p.extend_from_slice(&reply);
        a.data(&mut app, &m, Direction::FromDestination, &p);
        a.finish(&mut app, &m);
        let mut body = serde_json::Map::new();
        app.fields.write_json(a.registry(), &mut body);
        // The direct text writer yields the same document as the tree.
        let mut text = String::from("{\"x\":0");
        app.fields.write_json_members(a.registry(), &mut text);
        text.push('}');
        let mut parsed: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&text).expect("valid JSON");
        parsed.remove("x");
        prop_assert_eq!(parsed, body);
    }
}
