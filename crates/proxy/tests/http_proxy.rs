//! HTTP/1.1 reverse proxying: keep-alive, native rules, routing, errors,
//! smuggling and slow clients.

mod common;
use common::*;

use std::io::Write;
use std::sync::atomic::Ordering;

fn cfg(backend: std::net::SocketAddr, extra_fe: &str) -> String {
    format!(
        "global\n  log stderr local0\n\
         defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout connect 1s\n\
         frontend fe\n  bind 127.0.0.1:0\n  option httplog\n  log global\n{extra_fe}\n  default_backend be\n\
         backend be\n  server s1 {backend}\n"
    )
}

#[test]
fn forwards_with_keep_alive_on_both_sides() {
    let b = backend();
    let p = start(&cfg(b.addr, ""), &[]);
    let mut c = Client::connect(p.addr("fe"));
    for i in 0..5 {
        let r = c.get(&format!("/item/{i}?q=1"));
        assert_eq!(r.status, 200);
        assert!(
            r.body.starts_with(&format!("GET /item/{i}?q=1 HTTP/1.1")),
            "{}",
            r.body
        );
        assert_eq!(r.header("x-backend"), Some("yes"));
    }
    // POST with a body, then a chunked one, on the same connection.
    let r = c
        .request("POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        .unwrap();
    assert!(r.body.ends_with("\n\nhello"), "{}", r.body);
    let r = c
        .request("POST /c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        .unwrap();
    assert!(r.body.ends_with("\n\nabcde"), "{}", r.body);
    assert_eq!(b.hits.load(Ordering::SeqCst), 7);
    // One client connection, one pooled server connection.
    assert_eq!(b.conns.load(Ordering::SeqCst), 1);
    assert!(p.log_contains("fe be/s1"), "{:?}", p.logs());
}

#[test]
fn native_rules_headers_path_vars_return_redirect_deny() {
    let b = backend();
    let p = start(
        &cfg(
            b.addr,
            "  acl is_api path_beg /api\n  acl bad hdr(x-bad) -m found\n\
             http-request deny deny_status 429 if bad\n\
             http-request redirect location https://example.com/moved code 301 if { path /old }\n\
             http-request return status 201 content-type text/plain string made if { path -m end /ret }\n\
             http-request set-var(txn.p) path\n\
             http-request set-header X-Path %[var(txn.p),upper] if is_api\n\
             http-request add-header X-Src %[src]\n\
             http-request del-header X-Drop\n\
             http-request replace-header X-Rep (.*)-old \\1-new\n\
             http-request set-path /v2%[path] if is_api\n\
             http-response set-header X-Resp %[status]\n\
             http-response set-status 203 if { var(txn.p) -m beg /api }",
        ),
        &[],
    );
    let a = p.addr("fe");
    let r = get(a, "/api/x");
    assert_eq!(r.status, 203);
    assert!(r.body.starts_with("GET /v2/api/x HTTP/1.1"), "{}", r.body);
    assert!(r.body.contains("X-Path: /API/X"), "{}", r.body);
    assert!(r.body.contains("X-Src: 127.0.0.1"), "{}", r.body);
    assert_eq!(r.header("x-resp"), Some("200"));
    let r = Client::connect(a)
        .request("GET /h HTTP/1.1\r\nHost: t\r\nX-Drop: 1\r\nX-Rep: a-old\r\n\r\n")
        .unwrap();
    assert!(!r.body.contains("X-Drop"), "{}", r.body);
    assert!(r.body.contains("X-Rep: a-new"), "{}", r.body);
    let r = Client::connect(a)
        .request("GET / HTTP/1.1\r\nHost: t\r\nX-Bad: 1\r\n\r\n")
        .unwrap();
    assert_eq!(r.status, 429);
    let r = get(a, "/old");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("https://example.com/moved"));
    let r = get(a, "/x/ret");
    assert_eq!((r.status, r.body.as_str()), (201, "made"));
}

#[test]
fn use_backend_with_acls_and_balance() {
    let b1 = backend();
    let b2 = backend();
    let b3 = backend();
    let p = start(
        &format!(
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n\
             frontend fe\n  bind 127.0.0.1:0\n  acl v2 path_beg /v2\n  acl h hdr(host) -i -m end .example.com\n\
               use_backend two if v2 || h\n  default_backend one\n\
             backend one\n  server a {}\n\
             backend two\n  balance roundrobin\n  server b {}\n  server c {}\n",
            b1.addr, b2.addr, b3.addr
        ),
        &[],
    );
    let a = p.addr("fe");
    assert_eq!(get(a, "/x").status, 200);
    assert_eq!(b1.hits.load(Ordering::SeqCst), 1);
    for _ in 0..4 {
        assert_eq!(get(a, "/v2/x").status, 200);
    }
    assert_eq!(b2.hits.load(Ordering::SeqCst), 2);
    assert_eq!(b3.hits.load(Ordering::SeqCst), 2);
    let r = Client::connect(a)
        .request("GET / HTTP/1.1\r\nHost: WWW.EXAMPLE.COM\r\n\r\n")
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(b1.hits.load(Ordering::SeqCst), 1);
}

#[test]
fn dead_backend_gives_503_and_proxy_goes_on() {
    // A port that was just free: nothing listens there.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let p = start(&cfg(dead, ""), &[]);
    let a = p.addr("fe");
    assert_eq!(get(a, "/").status, 503);
    assert_eq!(get(a, "/again").status, 503);
}

#[test]
fn request_smuggling_attempts_get_400() {
    let b = backend();
    let p = start(&cfg(b.addr, ""), &[]);
    let a = p.addr("fe");
    let attacks = [
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.0\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 4\r\n\r\nabcd",
        "GET / HTTP/1.1\r\nHost: t\r\n folded: x\r\n\r\n",
    ];
    for raw in attacks {
        let mut c = Client::connect(a);
        let r = c.request(raw).expect("a response");
        assert_eq!(r.status, 400, "{raw:?}");
        assert!(c.closed(), "connection must close after 400");
    }
    assert_eq!(b.hits.load(Ordering::SeqCst), 0);
}

#[test]
fn oversized_headers_get_431() {
    let b = backend();
    let p = start(&cfg(b.addr, ""), &[]);
    let big = "x".repeat(20000);
    let r = Client::connect(p.addr("fe"))
        .request(&format!(
            "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {big}\r\n\r\n"
        ))
        .unwrap();
    assert_eq!(r.status, 431);
}

#[test]
fn slow_client_is_cut_by_http_request_timeout() {
    let b = backend();
    let p = start(
        &format!(
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n  timeout http-request 300ms\n\
             frontend fe\n  bind 127.0.0.1:0\n  default_backend be\nbackend be\n  server s {}\n",
            b.addr
        ),
        &[],
    );
    let mut c = Client::connect(p.addr("fe"));
    c.send_raw(b"GET / HTTP/1.1\r\nHost: t\r\n");
    // Never finish the head: the proxy answers 408 and closes.
    let r = c.read_response(false).expect("408");
    assert_eq!(r.status, 408);
    assert!(c.closed());
    // Other clients are unaffected.
    assert_eq!(get(p.addr("fe"), "/").status, 200);
}

#[test]
fn listen_section_tcp_mode_forwards_bytes() {
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ea = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in echo.incoming().take(2) {
            let mut s = s.unwrap();
            std::thread::spawn(move || {
                let mut r = s.try_clone().unwrap();
                let _ = std::io::copy(&mut r, &mut s);
            });
        }
    });
    let p = start(
        &format!(
            "listen t\n  mode tcp\n  bind 127.0.0.1:0\n  timeout client 5s\n  timeout server 5s\n  server e {ea}\n"
        ),
        &[],
    );
    let mut c = std::net::TcpStream::connect(p.addr("t")).unwrap();
    c.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    c.write_all(b"ping").unwrap();
    let mut buf = [0u8; 4];
    std::io::Read::read_exact(&mut c, &mut buf).unwrap();
    assert_eq!(&buf, b"ping");
}

#[test]
fn ipv6_bind_and_port_ranges() {
    let b = backend();
    let Ok(p) = try_start(
        &format!(
            "defaults\n  mode http\n  timeout client 5s\n\
             frontend fe\n  bind [::1]:0\n  default_backend be\nbackend be\n  server s {}\n",
            b.addr
        ),
        &[],
    ) else {
        eprintln!("skipped: IPv6 loopback not available");
        return;
    };
    let a = p.addr("fe");
    assert!(a.is_ipv6());
    assert_eq!(get(a, "/").status, 200);
}

#[test]
fn converters_in_headers_redirect_prefix_and_source_balance() {
    let b1 = backend();
    let b2 = backend();
    let p = start(
        &format!(
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 5s\n\
             frontend fe\n  bind 127.0.0.1:0\n\
               http-request redirect prefix https://new.example code 308 if {{ path_beg /moved }}\n\
               http-request set-header X-C1 %[req.hdr(x-in),lower,base64,b64dec,hex]\n\
               http-request set-header X-C2 %[req.hdr(x-in),djb2]/%[req.hdr(x-in),sdbm]/%[req.hdr(x-in),wt6]/%[req.hdr(x-in),crc32]\n\
               http-request set-header X-C3 %[req.hdr(x-in),json]|%[url_param(u),url_dec]|%[req.hdr(x-in),bytes(1,2)]\n\
               http-request set-header X-C4 %[req.hdr(x-words),word(2,/)]|%[req.hdr(x-words),field(3,/)]|%[req.hdr(x-in),regsub(b,X,g)]\n\
               http-request set-header X-C5 %[str(5),add(3),mul(2)]|%[src,ipmask(8)]|%[req.hdr(x-in),length]|%[base]\n\
               default_backend be\n\
             backend be\n  balance source\n  server a {}\n  server b {}\n",
            b1.addr, b2.addr
        ),
        &[],
    );
    let a = p.addr("fe");
    let r = Client::connect(a)
        .request("GET /c?u=a%20b%2F HTTP/1.1\r\nHost: h\r\nX-In: aBb\"\r\nX-Words: /x//y/z\r\n\r\n")
        .unwrap();
    let body = r.body;
    let djb2 = "aBb\""
        .bytes()
        .fold(5381u32, |h, c| h.wrapping_mul(33).wrapping_add(c as u32));
    assert!(body.contains("X-C1: 61626222\n"), "{body}");
    assert!(body.contains(&format!("X-C2: {djb2}/")), "{body}");
    assert!(body.contains("X-C3: aBb\\\"|a b/|Bb\n"), "{body}");
    assert!(body.contains("X-C4: y||aBX\"\n"), "{body}");
    assert!(body.contains("X-C5: 16|127.0.0.0|4|h/c\n"), "{body}");
    let r = get(a, "/moved/x?y=1");
    assert_eq!(
        (r.status, r.header("location")),
        (308, Some("https://new.example/moved/x?y=1"))
    );
    // Same source address: always the same server.
    for _ in 0..6 {
        get(a, "/s");
    }
    let (h1, h2) = (
        b1.hits.load(Ordering::SeqCst),
        b2.hits.load(Ordering::SeqCst),
    );
    assert!(h1 == 7 && h2 == 0 || h1 == 0 && h2 == 7, "{h1} {h2}");
}

#[test]
fn pipelined_requests_and_http10_keep_alive() {
    let b = backend();
    let p = start(&cfg(b.addr, ""), &[]);
    let mut c = Client::connect(p.addr("fe"));
    c.send_raw(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: t\r\n\r\n");
    assert!(c.read_response(false).unwrap().body.starts_with("GET /1 "));
    assert!(c.read_response(false).unwrap().body.starts_with("GET /2 "));
    let r = c.read_response(true).unwrap();
    assert_eq!(r.status, 200);
    let r = c
        .request("GET /4 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    assert_eq!(r.header("connection"), Some("keep-alive"));
    let r = c.request("GET /5 HTTP/1.0\r\n\r\n").unwrap();
    assert!(r.body.starts_with("GET /5 "));
    assert!(c.closed());
}

#[test]
fn silent_server_gives_504_and_bad_server_502() {
    // One server accepts and never answers, the other answers garbage.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sa = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut keep = Vec::new();
        for s in silent.incoming().take(2) {
            keep.push(s);
        }
        std::thread::sleep(IO_TIMEOUT);
    });
    let bad = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let ba = bad.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in bad.incoming().take(2) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 1024];
            let _ = std::io::Read::read(&mut s, &mut buf);
            let _ = s.write_all(b"NOT HTTP AT ALL\r\n\r\n");
        }
    });
    let p = start(
        &format!(
            "defaults\n  mode http\n  timeout client 5s\n  timeout server 300ms\n\
             frontend fe\n  bind 127.0.0.1:0\n  use_backend bad if {{ path /bad }}\n  default_backend silent\n\
             backend silent\n  server s {sa}\nbackend bad\n  server b {ba}\n"
        ),
        &[],
    );
    assert_eq!(get(p.addr("fe"), "/").status, 504);
    assert_eq!(get(p.addr("fe"), "/bad").status, 502);
}
