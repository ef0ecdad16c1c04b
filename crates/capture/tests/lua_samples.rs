//! Scripts in the spirit of Arkime's published Lua samples, run over
//! captures whose content is known: HTTP body entropy, credit-card
//! detection, SMB/DCE-RPC command names, a hash of request header names.

#[path = "lua/helpers.rs"]
mod helpers;

use helpers::{corpus, ok, post, script, strings, tags};
use protocols::ClassifierSet;

#[test]
fn entropy_of_http_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("entropy.pcap");
    let all_bytes: Vec<u8> = (0..512u32).map(|i| (i % 256) as u8).collect();
    let sixteen: Vec<u8> = (0..640u32)
        .map(|i| b"abcdefghijklmnop"[(i % 16) as usize])
        .collect();
    helpers::http_pcap(
        &pcap,
        &[
            (post("/zero", &[b'a'; 600]), ok(b"aaaa")),
            (post("/eight", &all_bytes), ok(&all_bytes)),
            (post("/four", &sixteen), ok(b"abcdefghijklmnop")),
        ],
    );
    let r = helpers::run(
        &[script("entropy.lua")],
        &[],
        helpers::mini_http_classifiers(),
        vec![pcap],
    );
    assert_eq!(r.lua().errors, 0, "{:?}", r.lua().error_sites);
    let ent = |port: u16| r.by_src_port(port)["http"]["entropy"].clone();
    assert_eq!(ent(40000), serde_json::json!([0]));
    assert_eq!(ent(40001), serde_json::json!([8]));
    assert_eq!(ent(40002), serde_json::json!([4]));
}

#[test]
fn credit_cards_in_http_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("cc.pcap");
    // Five valid numbers (Luhn and issuer format), spread over three
    // 1000-byte segments; the feed stops after the third.
    let mut five = Vec::new();
    for (i, n) in [
        "4111 1111 1111 1111",
        "5500-0000-0000-0004",
        "340000000000009",
        "6011000000000004",
        "4012888888881881",
    ]
    .iter()
    .enumerate()
    {
        five.extend_from_slice(format!("order {i}: card {n}; ").as_bytes());
        five.extend(std::iter::repeat_n(b'.', 500));
    }
    // One valid number, one that fails Luhn, one that passes Luhn but no
    // issuer format (starts with 9).
    let one = b"a 4111111111111111 b 4111111111111112 c 9999999999999995 d".to_vec();
    helpers::http_pcap(
        &pcap,
        &[
            (post("/five", &five), ok(b"done")),
            (post("/one", &one), ok(b"done")),
            (
                post("/none", b"no numbers here, only 1234 and 56"),
                ok(b"done"),
            ),
        ],
    );
    let r = helpers::run(
        &[script("creditcard.lua")],
        &[],
        helpers::mini_http_classifiers(),
        vec![pcap],
    );
    assert_eq!(r.lua().errors, 0, "{:?}", r.lua().error_sites);
    let five = r.by_src_port(40000);
    let t = tags(five);
    assert!(t.contains(&"possible-credit-card".into()) && t.contains(&"has-credit-cards".into()));
    assert_eq!(
        five["lua"]["number"],
        serde_json::json!([3]),
        "stopped after three"
    );
    let one = r.by_src_port(40001);
    let t = tags(one);
    assert!(t.contains(&"possible-credit-card".into()) && !t.contains(&"has-credit-cards".into()));
    assert_eq!(one["lua"]["number"], serde_json::json!([1]));
    let none = r.by_src_port(40002);
    assert!(!tags(none).iter().any(|t| t.contains("credit")));
    assert!(none["lua"]["number"].is_null());
}

#[test]
fn smb_and_dcerpc_command_names() {
    let (Some(smb), Some(dce)) = (
        corpus("smb-smbclient.pcap"),
        corpus("dcerpc_synthetic.pcap"),
    ) else {
        return;
    };
    let r = helpers::run(
        &[script("smb_dcerpc.lua")],
        &["packetThreads=2"],
        ClassifierSet::new(),
        vec![smb, dce],
    );
    assert_eq!(r.lua().errors, 0, "{:?}", r.lua().error_sites);
    let s = r.by_src_port(41823);
    assert!(strings(s, "protocol").contains(&"lua-smb".into()));
    let cmds = strings(s, "smblua.command");
    for want in [
        "NEGOTIATE",
        "SESSION_SETUP_ANDX",
        "TREE_CONNECT_ANDX",
        "ECHO",
        "TRANSACTION2",
    ] {
        assert!(cmds.contains(&want.to_string()), "{want} missing: {cmds:?}");
    }
    // Little-endian RPC on port 135: bind, bind_ack, request opnum 3 (the
    // capture's response overlaps the bind_ack by 20 bytes, so the stream
    // never holds a whole response PDU).
    let d = r.by_src_port(49152);
    assert!(strings(d, "protocol").contains(&"lua-dcerpc".into()));
    assert_eq!(
        strings(d, "dcerpclua.ptype"),
        ["bind", "bind_ack", "request"]
    );
    assert_eq!(d["dcerpclua"]["opnum"], serde_json::json!([3]));
    // Big-endian data representation: lengths read big-endian.
    let be = r.by_src_port(49154);
    assert_eq!(
        strings(be, "dcerpclua.ptype"),
        ["bind", "bind_ack", "bind_nak"]
    );
    // Alter context on the same connection.
    let alter = r.by_src_port(49155);
    assert!(strings(alter, "dcerpclua.ptype").contains(&"alter_context_resp".into()));
}

fn fnv1a64(s: &str) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

#[test]
fn hash_of_request_header_names() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = dir.path().join("hh.pcap");
    let req = b"GET /a HTTP/1.1\r\nHost: x\r\nX-Custom: 1\r\nAccept: */*\r\n\r\n".to_vec();
    helpers::http_pcap(&pcap, &[(req, ok(b"hi")), (post("/b", b"body"), ok(b"hi"))]);
    let r = helpers::run(
        &[script("header_hash.lua")],
        &[],
        helpers::mini_http_classifiers(),
        vec![pcap],
    );
    assert_eq!(r.lua().errors, 0, "{:?}", r.lua().error_sites);
    assert_eq!(
        strings(r.by_src_port(40000), "http.reqHeaderHash"),
        [fnv1a64("Host:X-Custom:Accept")]
    );
    assert_eq!(
        strings(r.by_src_port(40001), "http.reqHeaderHash"),
        [fnv1a64("Host:User-Agent:Content-Length")]
    );
}
