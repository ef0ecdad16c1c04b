//! Helpers of the Lua integration tests: run the real capture pipeline with
//! scripts from `tests/lua/`, custom fields and a collecting sink; build
//! synthetic HTTP captures; a minimal HTTP parser that drives `http_on` and
//! the body feed independently of the built-in HTTP parser.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use capture::{CaptureJob, CaptureReport, CollectSink, FileRegistry, Input, Stats};
use pcapgen::build::{self, flags};
use protocols::fields::FieldRegistry;
use protocols::{
    ClassifierSet, ClassifyAction, ClassifyContext, Direction, HttpEvent, ParseContext, Parser,
    ParserStatus,
};
use serde_json::Value;

/// Custom fields the test scripts write.
pub const CUSTOM_FIELDS: &[(&str, &str)] = &[
    ("lua.text", "kind:termfield;db:lua.text;count:true"),
    ("lua.number", "kind:integer;db:lua.number"),
    ("entropy.http", "kind:integer;db:http.entropy"),
    ("http_req_hdr_hash", "kind:termfield;db:http.reqHeaderHash"),
    ("smb.lua.command", "kind:termfield;db:smblua.command"),
    ("dcerpc.lua.ptype", "kind:termfield;db:dcerpclua.ptype"),
    ("dcerpc.lua.opnum", "kind:integer;db:dcerpclua.opnum"),
];

/// A corpus capture, or `None` (with a skip note) outside CI when the
/// corpus is not beside the repository.
pub fn corpus(name: &str) -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/arkime-compat/pcaps")
        .join(name);
    if p.is_file() {
        return Some(p);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "corpus capture {name} missing in CI"
    );
    eprintln!("skipped: corpus capture {name} not found");
    None
}

/// A script of the Lua test suite (`tests/lua/NAME`).
pub fn script(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/lua")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

/// Writes a script made by the test itself.
pub fn write_script(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// What a run produced.
pub struct Run {
    pub report: CaptureReport,
    pub docs: Vec<Value>,
}

impl Run {
    /// The Lua counters.
    pub fn lua(&self) -> &capture::lua::LuaReport {
        self.report.lua.as_ref().expect("scripts were loaded")
    }

    /// The document whose destination port is `port`.
    pub fn by_dst_port(&self, port: u16) -> &Value {
        self.docs
            .iter()
            .find(|d| d["destination"]["port"] == port)
            .unwrap_or_else(|| panic!("no document to port {port}"))
    }

    /// The document whose source port is `port`.
    pub fn by_src_port(&self, port: u16) -> &Value {
        self.docs
            .iter()
            .find(|d| d["source"]["port"] == port)
            .unwrap_or_else(|| panic!("no document from port {port}"))
    }
}

/// Tags of a document.
pub fn tags(doc: &Value) -> Vec<String> {
    doc["tags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Strings at a dotted db path.
pub fn strings(doc: &Value, path: &str) -> Vec<String> {
    let mut v = doc;
    for p in path.split('.') {
        v = &v[p];
    }
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), String::from))
                .collect()
        })
        .unwrap_or_default()
}

/// Runs a capture with scripts, overrides (`key=value`), the test custom
/// fields and extra classifiers.
pub fn run(
    scripts: &[String],
    overrides: &[&str],
    classifiers: ClassifierSet,
    inputs: Vec<PathBuf>,
) -> Run {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let (mut settings, _) = capture::load_settings(None, "test", &o).expect("settings");
    settings.lua_files = scripts.to_vec();
    let mut registry = FieldRegistry::builtin();
    for (expr, spec) in CUSTOM_FIELDS {
        registry.add_custom(expr, spec).expect("custom field");
    }
    let sink = CollectSink::new();
    let job = CaptureJob {
        settings,
        node: "test".into(),
        inputs: inputs.into_iter().map(Input::File).collect(),
        sink: Box::new(sink.clone()),
        stop: Arc::new(AtomicBool::new(false)),
        stats: Arc::new(Stats::default()),
        files: Arc::new(FileRegistry::default()),
        registry: Arc::new(registry),
        classifiers: Arc::new(classifiers),
        packet_store: None,
    };
    let report = capture::run(job).expect("capture runs");
    let docs = sink
        .documents()
        .iter()
        .map(|d| Value::Object(d.body().expect("valid JSON")))
        .collect();
    Run { report, docs }
}

/// Runs expecting the capture to refuse to start; returns the error text.
pub fn run_err(scripts: &[String], overrides: &[&str], input: PathBuf) -> String {
    let o: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    let (mut settings, _) = capture::load_settings(None, "test", &o).expect("settings");
    settings.lua_files = scripts.to_vec();
    let job = CaptureJob {
        settings,
        node: "test".into(),
        inputs: vec![Input::File(input)],
        sink: Box::new(CollectSink::new()),
        stop: Arc::new(AtomicBool::new(false)),
        stats: Arc::new(Stats::default()),
        files: Arc::new(FileRegistry::default()),
        registry: Arc::new(FieldRegistry::builtin()),
        classifiers: Arc::new(ClassifierSet::new()),
        packet_store: None,
    };
    match capture::run(job) {
        Ok(_) => panic!("capture should not start"),
        Err(e) => e.to_string(),
    }
}

const CM: [u8; 6] = [2, 0, 0, 0, 0, 1];
const SM: [u8; 6] = [2, 0, 0, 0, 0, 2];

/// Writes one TCP session per (request, response) pair, client port
/// 40000 + index, server 10.0.0.2:80, with handshake and FINs. Payloads
/// are cut into 1000-byte segments.
pub fn http_pcap(path: &Path, exchanges: &[(Vec<u8>, Vec<u8>)]) {
    let mut w = pcapio::PcapWriter::new(std::fs::File::create(path).unwrap(), 1, 65535).unwrap();
    let c = [10, 0, 0, 1];
    let s = [10, 0, 0, 2];
    let mut ts = 1_700_000_000_000_000i64;
    for (i, (req, resp)) in exchanges.iter().enumerate() {
        let cp = 40000 + i as u16;
        let mut pkt = |from_client: bool, seq: u32, ack: u32, f: u8, payload: &[u8]| {
            let frame = if from_client {
                build::ethernet(
                    CM,
                    SM,
                    0x0800,
                    &build::ipv4(c, s, 6, 64, 1, &build::tcp(cp, 80, seq, ack, f, payload)),
                )
            } else {
                build::ethernet(
                    SM,
                    CM,
                    0x0800,
                    &build::ipv4(s, c, 6, 60, 1, &build::tcp(80, cp, seq, ack, f, payload)),
                )
            };
            ts += 1000;
            w.write_packet(ts, frame.len() as u32, &frame).unwrap();
        };
        let (mut cs, mut ss) = (1000u32, 5000u32);
        pkt(true, cs, 0, flags::SYN, b"");
        pkt(false, ss, cs + 1, flags::SYN | flags::ACK, b"");
        cs += 1;
        ss += 1;
        pkt(true, cs, ss, flags::ACK, b"");
        for chunk in req.chunks(1000) {
            pkt(true, cs, ss, flags::PSH | flags::ACK, chunk);
            cs += chunk.len() as u32;
        }
        for chunk in resp.chunks(1000) {
            pkt(false, ss, cs, flags::PSH | flags::ACK, chunk);
            ss += chunk.len() as u32;
        }
        pkt(true, cs, ss, flags::FIN | flags::ACK, b"");
        pkt(false, ss, cs + 1, flags::FIN | flags::ACK, b"");
        pkt(true, cs + 1, ss + 1, flags::ACK, b"");
    }
    w.into_inner().unwrap();
}

/// An HTTP/1.1 POST with a body.
pub fn post(path: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "POST {path} HTTP/1.1\r\nHost: example.com\r\nUser-Agent: test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// An HTTP/1.1 response with a body.
pub fn ok(body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

/// A minimal HTTP/1 parser (Content-Length bodies only) that reports every
/// `http_on` event and the "http" body feed, as the built-in parser does.
#[derive(Default)]
struct MiniHttp {
    buf: [Vec<u8>; 2],
    body_left: [Option<usize>; 2],
}

impl Parser for MiniHttp {
    fn name(&self) -> &'static str {
        "mini-http"
    }

    fn parse(&mut self, cx: &mut ParseContext<'_>, dir: Direction, data: &[u8]) -> ParserStatus {
        let d = dir.index();
        self.buf[d].extend_from_slice(data);
        loop {
            match self.body_left[d] {
                None => {
                    let buf = &self.buf[d];
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        return ParserStatus::Continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    self.buf[d].drain(..end + 4);
                    let mut lines = head.split("\r\n");
                    let first = lines.next().unwrap_or("");
                    let mut parts = first.split(' ');
                    if dir == Direction::FromSource {
                        let method = parts.next().unwrap_or("");
                        cx.http_event(HttpEvent::MessageBegin, Some(method.as_bytes()), dir);
                        cx.http_event(
                            HttpEvent::Url,
                            Some(parts.next().unwrap_or("").as_bytes()),
                            dir,
                        );
                    } else {
                        cx.http_event(HttpEvent::MessageBegin, None, dir);
                    }
                    let mut len = 0;
                    for l in lines {
                        let Some((n, v)) = l.split_once(':') else {
                            continue;
                        };
                        let v = v.trim();
                        cx.http_event(HttpEvent::HeaderFieldRaw, Some(n.as_bytes()), dir);
                        cx.http_event(
                            HttpEvent::HeaderField,
                            Some(n.to_ascii_lowercase().as_bytes()),
                            dir,
                        );
                        cx.http_event(HttpEvent::HeaderValue, Some(v.as_bytes()), dir);
                        if n.eq_ignore_ascii_case("content-length") {
                            len = v.parse().unwrap_or(0);
                        }
                    }
                    cx.http_event(HttpEvent::HeadersComplete, None, dir);
                    self.body_left[d] = Some(len);
                }
                Some(0) => {
                    cx.http_event(HttpEvent::MessageComplete, None, dir);
                    self.body_left[d] = None;
                }
                Some(left) => {
                    if self.buf[d].is_empty() {
                        return ParserStatus::Continue;
                    }
                    let n = left.min(self.buf[d].len());
                    let piece: Vec<u8> = self.buf[d].drain(..n).collect();
                    cx.http_event(HttpEvent::Body, Some(&piece), dir);
                    cx.body("http", &piece);
                    self.body_left[d] = Some(left - n);
                }
            }
        }
    }
}

fn mini_http(cx: &mut ClassifyContext<'_>, _data: &[u8], _dir: Direction) {
    cx.add_protocol("mini-http");
    cx.attach(Box::new(MiniHttp::default()));
}

/// Classifiers with the mini HTTP parser on requests starting with GET or
/// POST.
pub fn mini_http_classifiers() -> ClassifierSet {
    let mut set = ClassifierSet::new();
    set.add_tcp("mini-http", 0, b"GET ", ClassifyAction::Native(mini_http));
    set.add_tcp("mini-http", 0, b"POST ", ClassifyAction::Native(mini_http));
    set
}
