//! `MolochHttpService` against HTTP servers the tests start on loopback:
//! answers delay the save until they arrive, keep-alive connections are
//! reused, `maxRequests` refuses requests, a server that never answers
//! makes the save give up after `luaOutstandingTimeout`, and an unreachable
//! one yields code 0.

#[path = "lua/helpers.rs"]
mod helpers;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use helpers::{corpus, strings, tags};
use protocols::ClassifierSet;

/// Serves `verdict:<path>|<body>` on keep-alive connections (or never
/// answers when `silent`), counting accepted connections. Every loop is
/// bounded; the threads end with their connections.
fn server(silent: bool, accepts: Arc<AtomicUsize>) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming().take(32) {
            let Ok(s) = s else { return };
            accepts.fetch_add(1, Ordering::SeqCst);
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut r = BufReader::new(s);
                for _ in 0..1000 {
                    let mut first = String::new();
                    if r.read_line(&mut first).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_err() {
                        return;
                    }
                    if silent {
                        // Hold the connection without answering.
                        let mut sink = Vec::new();
                        let _ = r.read_to_end(&mut sink);
                        return;
                    }
                    let path = first.split(' ').nth(1).unwrap_or("").to_string();
                    let reply = format!("verdict:{path}|{}", String::from_utf8_lossy(&body));
                    let out = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                    if r.get_mut().write_all(out.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

fn script(dir: &std::path::Path, port: u16, max_requests: u32) -> String {
    let text = std::fs::read_to_string(helpers::script("http_service.lua"))
        .unwrap()
        .replace("@PORT@", &port.to_string())
        .replace("@MAXREQ@", &max_requests.to_string());
    helpers::write_script(dir, "http_service.lua", &text)
}

#[test]
fn answers_arrive_before_the_save() {
    let (Some(tcp), Some(udp)) = (corpus("http-301-get.pcap"), corpus("dns-udp.pcap")) else {
        return;
    };
    let accepts = Arc::new(AtomicUsize::new(0));
    let port = server(false, Arc::clone(&accepts));
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), port, 100);
    let r = helpers::run(
        &[s],
        &["packetThreads=1"],
        ClassifierSet::new(),
        vec![tcp, udp],
    );
    let l = r.lua();
    assert_eq!(l.errors, 0, "{:?}", l.error_sites);
    let n = r.docs.len();
    assert!(n >= 3, "{n} sessions");
    // One GET per session and one POST for the HTTP session.
    assert_eq!(l.http_responses, n as u64 + 1);
    assert_eq!(
        l.http_failures + l.http_rejected + l.outstanding_timeouts,
        0
    );
    assert_eq!(l.delayed_saves, n as u64);
    for d in &r.docs {
        let t = tags(d);
        assert!(
            t.contains(&"lookup-200".into()) && t.contains(&"saved".into()),
            "{t:?}"
        );
        let src = d["source"]["ip"].as_str().unwrap();
        let port = d["source"]["port"].as_i64().unwrap();
        let text = strings(d, "lua.text");
        assert!(
            text.contains(&format!("lookup:verdict:/lookup?src={src}&port={port}|")),
            "{text:?}"
        );
    }
    let http = r.by_src_port(62341);
    assert!(tags(http).contains(&"post-200".into()));
    assert!(strings(http, "lua.text").contains(&"post:verdict:/note|192.30.252.130".into()));
    // maxConnections=2: keep-alive connections are reused.
    let a = accepts.load(Ordering::SeqCst);
    assert!((1..=2).contains(&a), "{a} connections");
}

#[test]
fn max_requests_and_outstanding_timeout() {
    let (Some(tcp), Some(udp)) = (corpus("http-301-get.pcap"), corpus("dns-udp.pcap")) else {
        return;
    };
    let accepts = Arc::new(AtomicUsize::new(0));
    let port = server(true, Arc::clone(&accepts));
    let dir = tempfile::tempdir().unwrap();
    // One request at a time: the POST made at classification never gets an
    // answer, so every later GET is refused, and the HTTP session is saved
    // when its wait times out.
    let s = script(dir.path(), port, 1);
    let r = helpers::run(
        &[s],
        &["packetThreads=1", "luaOutstandingTimeout=1"],
        ClassifierSet::new(),
        vec![tcp, udp],
    );
    let l = r.lua();
    assert_eq!(l.errors, 0, "{:?}", l.error_sites);
    let n = r.docs.len() as u64;
    assert_eq!(l.http_rejected, n);
    assert_eq!(l.delayed_saves, 1);
    assert_eq!(l.outstanding_timeouts, 1);
    assert_eq!(l.http_responses, 0);
    for d in &r.docs {
        let t = tags(d);
        assert!(
            t.contains(&"request-refused".into()) && t.contains(&"saved".into()),
            "{t:?}"
        );
        assert!(!t.iter().any(|t| t.starts_with("lookup-")), "{t:?}");
    }
}

#[test]
fn unreachable_server_answers_code_zero() {
    let Some(tcp) = corpus("http-301-get.pcap") else {
        return;
    };
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let s = script(dir.path(), port, 10);
    let r = helpers::run(&[s], &[], ClassifierSet::new(), vec![tcp]);
    let l = r.lua();
    assert_eq!(l.http_failures, 2);
    let t = tags(&r.docs[0]);
    assert!(
        t.contains(&"lookup-0".into()) && t.contains(&"post-0".into()),
        "{t:?}"
    );
}
