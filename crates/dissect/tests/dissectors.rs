//! Realistic Lua dissectors run over captures generated here: output
//! checked against expected trees, and against tshark when it is installed
//! (required when `CI` is set).

use std::path::{Path, PathBuf};
use std::process::Command;

use dissect::pcap::PcapWriter;
use dissect::synth::{flags, tcp_frame, udp_frame};
use dissect::{EngineOptions, Options, OutputFormat};

const A: [u8; 4] = [10, 0, 0, 1];
const B: [u8; 4] = [10, 0, 0, 2];

fn lua(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua")
        .join(name)
        .display()
        .to_string()
}

fn write_pcap(dir: &Path, name: &str, frames: &[Vec<u8>]) -> PathBuf {
    let path = dir.join(name);
    let f = std::fs::File::create(&path).unwrap();
    let mut w = PcapWriter::new(std::io::BufWriter::new(f), 1, 65_535).unwrap();
    for (i, fr) in frames.iter().enumerate() {
        let ts = (1_700_000_000 + i as i64) * 1_000_000 + 250_000 * (i as i64 % 4);
        w.write_packet(ts, fr.len() as u32, fr).unwrap();
    }
    w.into_inner().unwrap();
    path
}

fn pdu(op: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = ((payload.len() + 1) as u16).to_be_bytes().to_vec();
    v.push(op);
    v.extend_from_slice(payload);
    v
}

fn lenp_capture(dir: &Path) -> PathBuf {
    let p1 = pdu(1, b"hi");
    let p2 = pdu(2, b"payload-spanning-segments");
    let p3 = pdu(3, b"");
    let p4 = pdu(2, b"tail");
    let mut s1 = p1.clone();
    s1.extend_from_slice(&p2[..6]);
    let s2 = p2[6..20].to_vec();
    let mut s3 = p2[20..].to_vec();
    s3.extend_from_slice(&p3);
    s3.push(p4[0]); // half a length field: one more segment needed
    let s4 = p4[1..].to_vec();
    let mut seq = 1000u32;
    let mut frames = Vec::new();
    frames.push(tcp_frame(A, B, 40001, 7777, seq - 1, 0, flags::SYN, &[]));
    frames.push(tcp_frame(
        B,
        A,
        7777,
        40001,
        5000,
        seq,
        flags::SYN | flags::ACK,
        &[],
    ));
    for s in [&s1, &s2, &s3, &s4] {
        frames.push(tcp_frame(
            A,
            B,
            40001,
            7777,
            seq,
            5001,
            flags::ACK | flags::PSH,
            s,
        ));
        seq += s.len() as u32;
    }
    write_pcap(dir, "lenp.pcap", &frames)
}

fn stat_capture(dir: &Path) -> PathBuf {
    let mut ok = vec![
        0x31, 0x80, 0x00, 0, 0, 0, 7, 0xff, 0xf6, 200, 192, 168, 1, 9,
    ];
    ok.extend_from_slice(b"pump\0");
    ok.extend_from_slice(&[0xde, 0xad]);
    let failed = vec![0x12, 0x45, 0x00, 0, 0, 1, 0, 0x00, 0x15, 3, 10, 1, 2, 3];
    let short = vec![0x10, 0x00];
    let frames: Vec<Vec<u8>> = [ok, failed, short]
        .iter()
        .map(|d| udp_frame(A, B, 50000, 6000, d))
        .collect();
    write_pcap(dir, "stat.pcap", &frames)
}

fn heur_capture(dir: &Path) -> PathBuf {
    let mut m = b"MWH1".to_vec();
    m.push(2);
    m.extend_from_slice(&[0x0a, 0x01, 0x00, 0x0b, 0xff, 0xff]);
    let frames = vec![
        udp_frame(A, B, 41000, 12345, &m),
        udp_frame(A, B, 41000, 12345, b"not ours"),
        udp_frame(B, A, 23456, 41001, &m),
    ];
    write_pcap(dir, "heur.pcap", &frames)
}

fn env_pdu(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend_from_slice(&(body.len() as u16).to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn chain_capture(dir: &Path) -> PathBuf {
    let mut s1 = env_pdu(1, b"alice");
    s1.extend_from_slice(&env_pdu(2, &[0, 7, 0, 0, 1, 0]));
    let p3 = env_pdu(1, b"bob-the-builder");
    let mut s2 = p3[..8].to_vec();
    let s3_rest = p3[8..].to_vec();
    let mut s3 = s3_rest;
    s3.extend_from_slice(&env_pdu(9, b"??"));
    let _ = &mut s2;
    let mut seq = 1u32;
    let mut frames = Vec::new();
    for s in [&s1, &s2, &s3] {
        frames.push(tcp_frame(
            A,
            B,
            40100,
            8000,
            seq,
            1,
            flags::ACK | flags::PSH,
            s,
        ));
        seq += s.len() as u32;
    }
    write_pcap(dir, "chain.pcap", &frames)
}

fn rr_capture(dir: &Path, port: u16) -> PathBuf {
    let req = |id: u16, q: &str| {
        let mut v = vec![1];
        v.extend_from_slice(&id.to_be_bytes());
        v.extend_from_slice(q.as_bytes());
        udp_frame(A, B, 33000, port, &v)
    };
    let resp = |id: u16, st: u8| {
        let mut v = vec![2];
        v.extend_from_slice(&id.to_be_bytes());
        v.push(st);
        udp_frame(B, A, port, 33000, &v)
    };
    let frames = vec![
        req(1, "alpha"),
        req(2, "beta"),
        resp(1, 0),
        resp(2, 1),
        req(3, "gamma"),
    ];
    write_pcap(dir, &format!("rr{port}.pcap"), &frames)
}

fn run(pcap: &Path, script: &str, format: OutputFormat, two_pass: bool) -> String {
    let opts = Options {
        read: pcap.display().to_string(),
        engine: EngineOptions {
            scripts: vec![(lua(script), Vec::new())],
            ..EngineOptions::default()
        },
        two_pass,
        format,
        ..Options::default()
    };
    let mut out = Vec::new();
    let stats = dissect::run(&opts, &mut out).unwrap();
    assert_eq!(
        stats.lua_errors, 0,
        "unexpected Lua errors: {:?}",
        stats.first_errors
    );
    String::from_utf8(out).unwrap()
}

/// Top-level `-V` blocks whose first line starts with one of `heads`, per
/// packet.
fn text_blocks(out: &str, heads: &[&str]) -> Vec<Vec<String>> {
    let mut packets = Vec::new();
    // A packet starts at its "Frame N:" line (blank lines may also occur
    // inside a packet's text, e.g. in data shown as text).
    let mut split: Vec<String> = Vec::new();
    for line in out.lines() {
        if line.starts_with("Frame ") || split.is_empty() {
            split.push(String::new());
        }
        if let Some(last) = split.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    for pkt in split.iter().filter(|p| !p.trim().is_empty()) {
        let mut blocks = Vec::new();
        let mut cur: Option<String> = None;
        for line in pkt.lines() {
            if !line.starts_with(' ') {
                if let Some(b) = cur.take() {
                    blocks.push(b);
                }
                if heads.iter().any(|h| line.starts_with(h)) {
                    cur = Some(format!("{line}\n"));
                }
            } else if let Some(b) = cur.as_mut() {
                b.push_str(line);
                b.push('\n');
            }
        }
        if let Some(b) = cur {
            blocks.push(b);
        }
        packets.push(blocks);
    }
    packets
}

/// JSON layer objects of the given protocols, in order.
fn json_blocks(out: &str, protos: &[&str]) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut cur: Option<String> = None;
    for line in out.lines() {
        if let Some(b) = cur.as_mut() {
            b.push_str(line.trim_end_matches(','));
            b.push('\n');
            if line == "        }" || line == "        }," {
                blocks.push(cur.take().unwrap());
            }
            continue;
        }
        if protos
            .iter()
            .any(|p| line.starts_with(&format!("        \"{p}\": ")))
        {
            if line.ends_with('{') {
                cur = Some(format!("{line}\n"));
            } else {
                blocks.push(line.trim_end_matches(',').to_string());
            }
        }
    }
    blocks
}

fn tshark_available() -> bool {
    let ok = Command::new("tshark")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var_os("CI").is_some() {
            panic!("tshark is required in CI (see .ci/deps/dissect.sh)");
        }
        println!("skipped: tshark not installed");
    }
    ok
}

fn tshark(pcap: &Path, script: &str, extra: &[&str]) -> String {
    let out = Command::new("tshark")
        .args(["-n", "-r"])
        .arg(pcap)
        .arg("-X")
        .arg(format!("lua_script:{}", lua(script)))
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tshark failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn lenp_desegments_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = lenp_capture(dir.path());
    let out = run(&pcap, "lenproto.lua", OutputFormat::Verbose, false);
    let blocks = text_blocks(&out, &["Length Prefixed Protocol"]);
    assert_eq!(blocks.len(), 6);
    let n: Vec<usize> = blocks.iter().map(Vec::len).collect();
    // Frame 3 holds PDU 1, frame 5 completes PDU 2 and holds PDU 3,
    // frame 6 completes PDU 4.
    assert_eq!(n, vec![0, 0, 1, 0, 2, 1], "{out}");
    assert!(
        blocks[4][0].contains("Payload: payload-spanning-segments"),
        "{}",
        blocks[4][0]
    );
    assert!(blocks[4][1].starts_with("Length Prefixed Protocol, BYE"));
    assert!(blocks[5][0].contains("Payload: tail"));
    assert!(
        out.contains("[3 Reassembled TCP Segments (28 bytes): #3(6), #4(14), #5(8)]"),
        "{out}"
    );
    let summary = run(&pcap, "lenproto.lua", OutputFormat::Summary, false);
    let lines: Vec<&str> = summary.lines().collect();
    assert!(
        lines[3].contains("TCP") && lines[3].ends_with("[TCP segment of a reassembled PDU]"),
        "{summary}"
    );
    assert!(
        lines[4].contains("LENP") && lines[4].ends_with("LENP PDUs: 1"),
        "{summary}"
    );
}

#[test]
fn stat_value_strings_masks_experts() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = stat_capture(dir.path());
    let out = run(&pcap, "vsmask.lua", OutputFormat::Verbose, false);
    for want in [
        "    0011 .... = Version: 3",
        "    .... 0001 = Kind: Running (1)",
        "    Flags: 0x8000",
        "        1... .... .... .... = Urgent: True",
        "        .0.. .... .... .... = Ack: Not acknowledged",
        "        .... .000 .... .... = Priority: 0",
        "    Code: 0x00000007 (7)",
        "    Temperature: -10",
        "    Load: 200 (0xc8)",
        "    Origin: 192.168.1.9",
        "    Name: pump",
        "    Trailer: dead",
        "    .... 0010 = Kind: Failed (2)",
        "        [Expert Info (Warning/Response): Component failed with code 256]",
        "    [Expert Info (Error/Malformed): Report truncated]",
    ] {
        assert!(out.lines().any(|l| l == want), "missing {want:?} in\n{out}");
    }
    let fields = run(
        &pcap,
        "vsmask.lua",
        OutputFormat::Fields(vec![
            "frame.number".into(),
            "mwstat.kind".into(),
            "mwstat.code".into(),
            "mwstat.flags.ack".into(),
        ]),
        false,
    );
    assert_eq!(
        fields,
        "1\t1\t0x00000007\t0\n2\t2\t0x00000100\t1\n3\t\t\t\n"
    );
}

#[test]
fn heuristic_dissector_claims_only_its_packets() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = heur_capture(dir.path());
    let out = run(&pcap, "heur.lua", OutputFormat::Verbose, false);
    let blocks = text_blocks(&out, &["Moonwire Heuristic Protocol", "Data ("]);
    assert!(blocks[0][0].starts_with("Moonwire Heuristic Protocol, 2 entries\n"));
    assert!(
        blocks[0][0].contains("    Entry 2\n        Id: 0x0b\n        Value: 65535\n"),
        "{}",
        blocks[0][0]
    );
    assert!(blocks[1][0].starts_with("Data (8 bytes)"));
    assert!(blocks[2][0].starts_with("Moonwire Heuristic Protocol"));
    let opts_filter = Options {
        read: pcap.display().to_string(),
        engine: EngineOptions {
            scripts: vec![(lua("heur.lua"), vec![])],
            ..EngineOptions::default()
        },
        format: OutputFormat::Fields(vec!["frame.number".into()]),
        filter: Some("mwh && mwh.count == 2 && !(udp.srcport == 23456)".into()),
        ..Options::default()
    };
    let mut o = Vec::new();
    dissect::run(&opts_filter, &mut o).unwrap();
    assert_eq!(String::from_utf8(o).unwrap(), "1\n");
}

#[test]
fn chained_table_and_tcp_pdus() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = chain_capture(dir.path());
    let out = run(&pcap, "chain.lua", OutputFormat::Verbose, false);
    let blocks = text_blocks(&out, &["Envelope", "Data ("]);
    assert_eq!(blocks[0].len(), 4, "{out}");
    assert_eq!(blocks[0][1], "Envelope Login\n    User: alice\n");
    assert_eq!(
        blocks[0][3],
        "Envelope Metric\n    Metric Id: 7\n    Metric Value: 256\n"
    );
    assert!(blocks[1].is_empty());
    assert_eq!(blocks[2][1], "Envelope Login\n    User: bob-the-builder\n");
    assert!(
        blocks[2][3].starts_with("Data (2 bytes)"),
        "{:?}",
        blocks[2]
    );
}

fn lua_tree(out: &str, head: &str) -> Vec<String> {
    text_blocks(out, &[head])
        .into_iter()
        .map(|b| b.concat())
        .collect()
}

#[test]
fn request_response_two_passes_with_conversation_module() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = rr_capture(dir.path(), 5300);
    let two = lua_tree(
        &run(&pcap, "rr.lua", OutputFormat::Verbose, true),
        "Request Response Protocol",
    );
    let expected = [
        "Request Response Protocol\n    Kind: Request (1)\n    Transaction Id: 0x0001\n    Query: alpha\n    [Response In: 3]\n",
        "Request Response Protocol\n    Kind: Request (1)\n    Transaction Id: 0x0002\n    Query: beta\n    [Response In: 4]\n",
        "Request Response Protocol\n    Kind: Response (2)\n    Transaction Id: 0x0001\n    Status: OK (0)\n    [Request In: 1]\n    [Response Time: 2.500000000 seconds]\n",
        "Request Response Protocol\n    Kind: Response (2)\n    Transaction Id: 0x0002\n    Status: Not found (1)\n    [Request In: 2]\n    [Response Time: 2.500000000 seconds]\n",
        "Request Response Protocol\n    Kind: Request (1)\n    Transaction Id: 0x0003\n    Query: gamma\n",
    ];
    assert_eq!(two, expected);
    // One pass: requests cannot know their responses yet.
    let one = lua_tree(
        &run(&pcap, "rr.lua", OutputFormat::Verbose, false),
        "Request Response Protocol",
    );
    assert!(!one[0].contains("Response In"));
    assert_eq!(one[2], expected[2]);
    let json = run(&pcap, "rr.lua", OutputFormat::Json, true);
    assert!(json.contains("\"rrp.response_in\": \"3\""), "{json}");
    assert!(json.contains("\"rrp.time\": \"2.500000000\""));
}

#[test]
fn request_response_with_conversation_class() {
    let dir = tempfile::tempdir().unwrap();
    let pcap = rr_capture(dir.path(), 5301);
    let two = lua_tree(
        &run(&pcap, "rrconv.lua", OutputFormat::Verbose, true),
        "Request Response Conv",
    );
    assert_eq!(two.len(), 5);
    assert_eq!(
        two[2],
        "Request Response Conv\n    Transaction Id: 0x0001\n    [Request In: 1]\n    [Requests in conversation: 3]\n"
    );
    assert!(two[0].ends_with("[Requests in conversation: 3]\n"));
    let one = lua_tree(
        &run(&pcap, "rrconv.lua", OutputFormat::Verbose, false),
        "Request Response Conv",
    );
    assert!(
        one[0].ends_with("[Requests in conversation: 1]\n"),
        "{}",
        one[0]
    );
}

#[test]
fn cross_check_with_tshark() {
    if !tshark_available() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(PathBuf, &str, Vec<&str>, Vec<&str>)> = vec![
        (
            lenp_capture(dir.path()),
            "lenproto.lua",
            vec!["Length Prefixed Protocol"],
            vec!["lenp"],
        ),
        (
            stat_capture(dir.path()),
            "vsmask.lua",
            vec!["Status Report Protocol"],
            vec!["mwstat"],
        ),
        (
            heur_capture(dir.path()),
            "heur.lua",
            vec!["Moonwire Heuristic Protocol"],
            vec!["mwh"],
        ),
        (
            chain_capture(dir.path()),
            "chain.lua",
            vec!["Envelope"],
            vec!["env", "envlogin", "envmetric"],
        ),
    ];
    for (pcap, script, heads, protos) in cases {
        for two in [false, true] {
            let mut extra = vec!["-V"];
            if two {
                extra.push("-2");
            }
            let ts = text_blocks(&tshark(&pcap, script, &extra), &heads);
            let mw = text_blocks(&run(&pcap, script, OutputFormat::Verbose, two), &heads);
            assert_eq!(mw, ts, "{script} -V (two pass: {two}) differs from tshark");
        }
        // Summary lines: every column of every packet.
        for two in [false, true] {
            let extra: &[&str] = if two { &["-2"] } else { &[] };
            let ts = tshark(&pcap, script, extra);
            let mw = run(&pcap, script, OutputFormat::Summary, two);
            assert_eq!(
                mw, ts,
                "{script} summary (two pass: {two}) differs from tshark"
            );
        }
        let ts = json_blocks(&tshark(&pcap, script, &["-T", "json"]), &protos);
        let mw = json_blocks(&run(&pcap, script, OutputFormat::Json, false), &protos);
        assert!(!mw.is_empty());
        assert_eq!(mw, ts, "{script} -T json differs from tshark");
    }
}

#[test]
fn readme_example_works_as_documented() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md"))
            .unwrap();
    // The example in the README's dissector section.
    let section = readme.find("## Wireshark Lua dissectors").unwrap();
    let start = section + readme[section..].find("```lua\n").unwrap() + 7;
    let end = start + readme[start..].find("```").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("rr.lua");
    std::fs::write(&script, &readme[start..end]).unwrap();
    let pcap = rr_capture(dir.path(), 5300);
    let run_with = |format: OutputFormat, filter: &str| {
        let opts = Options {
            read: pcap.display().to_string(),
            engine: EngineOptions {
                scripts: vec![(script.display().to_string(), vec![])],
                ..EngineOptions::default()
            },
            two_pass: true,
            format,
            filter: Some(filter.to_string()),
            ..Options::default()
        };
        let mut out = Vec::new();
        let stats = dissect::run(&opts, &mut out).unwrap();
        assert_eq!(stats.lua_errors, 0, "{:?}", stats.first_errors);
        String::from_utf8(out).unwrap()
    };
    let v = run_with(OutputFormat::Verbose, "rrp.kind==1");
    assert!(v.contains(
        "Request Response Protocol\n    Kind: Request (1)\n    Transaction Id: 0x0001\n    [Response In: 3]\n"
    ), "{v}");
    let f = run_with(
        OutputFormat::Fields(vec!["frame.number".into(), "rrp.request_in".into()]),
        "rrp.kind == 2",
    );
    assert_eq!(f, "3\t1\n4\t2\n");
}
