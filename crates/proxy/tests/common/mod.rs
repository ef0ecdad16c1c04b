//! Test harness: a backend HTTP server, a raw HTTP/1.1 client and a proxy
//! started from configuration text, all on loopback with ports picked by
//! the OS.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proxy::{ProxyOptions, Running};

/// How long any test socket read may block.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A backend that answers every request with 200 and a body describing
/// the request it received (request line, headers, body), keeping
/// connections alive.
pub struct Backend {
    pub addr: SocketAddr,
    pub hits: Arc<AtomicUsize>,
    pub conns: Arc<AtomicUsize>,
}

pub fn backend() -> Backend {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let conns = Arc::new(AtomicUsize::new(0));
    let (h, c) = (hits.clone(), conns.clone());
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(s) = s else { return };
            c.fetch_add(1, Ordering::SeqCst);
            let h = h.clone();
            std::thread::spawn(move || serve_backend(s, h));
        }
    });
    Backend { addr, hits, conns }
}

fn serve_backend(s: TcpStream, hits: Arc<AtomicUsize>) {
    s.set_read_timeout(Some(IO_TIMEOUT)).ok();
    let mut r = BufReader::new(s.try_clone().unwrap());
    let mut w = s;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut headers = Vec::new();
        let mut len = 0usize;
        let mut chunked = false;
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end().to_string();
            if h.is_empty() {
                break;
            }
            let lower = h.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
            headers.push(h);
        }
        let mut body = vec![0u8; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        if chunked {
            loop {
                let mut sz = String::new();
                r.read_line(&mut sz).ok();
                let n = usize::from_str_radix(sz.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0u8; n + 2];
                r.read_exact(&mut chunk).ok();
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        hits.fetch_add(1, Ordering::SeqCst);
        let mut out = format!("{}\n", line.trim_end());
        for h in &headers {
            out.push_str(h);
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&String::from_utf8_lossy(&body));
        let resp = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-backend: yes\r\ncontent-length: {}\r\n\r\n{}",
            out.len(),
            out
        );
        if w.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}

/// A parsed response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A client connection (keep-alive capable).
pub struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        }
    }

    /// The socket itself (for byte-level reads).
    pub fn raw_stream(&mut self) -> TcpStream {
        self.w.try_clone().unwrap()
    }

    pub fn send_raw(&mut self, raw: &[u8]) {
        self.w.write_all(raw).unwrap();
    }

    /// Sends `raw` and reads one response; None when the connection closed.
    pub fn request(&mut self, raw: &str) -> Option<Response> {
        if self.w.write_all(raw.as_bytes()).is_err() {
            return None;
        }
        self.read_response(raw.starts_with("HEAD "))
    }

    pub fn get(&mut self, path: &str) -> Response {
        self.request(&format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"))
            .expect("response")
    }

    pub fn read_response(&mut self, head: bool) -> Option<Response> {
        let mut line = String::new();
        if self.r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        let status: u16 = line.split_whitespace().nth(1)?.parse().ok()?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.r.read_line(&mut h).ok()?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            let (n, v) = h.split_once(':')?;
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let mut resp = Response {
            status,
            headers,
            body: String::new(),
        };
        if status == 100 {
            return self.read_response(head);
        }
        if head || status == 204 || status == 304 {
            return Some(resp);
        }
        if let Some(len) = resp.header("content-length") {
            let mut b = vec![0u8; len.parse().ok()?];
            self.r.read_exact(&mut b).ok()?;
            resp.body = String::from_utf8_lossy(&b).into_owned();
        } else if resp
            .header("transfer-encoding")
            .is_some_and(|t| t.contains("chunked"))
        {
            loop {
                let mut sz = String::new();
                self.r.read_line(&mut sz).ok()?;
                let n = usize::from_str_radix(sz.trim(), 16).ok()?;
                let mut c = vec![0u8; n + 2];
                self.r.read_exact(&mut c).ok()?;
                if n == 0 {
                    break;
                }
                resp.body.push_str(&String::from_utf8_lossy(&c[..n]));
            }
        } else {
            let mut b = Vec::new();
            self.r.read_to_end(&mut b).ok()?;
            resp.body = String::from_utf8_lossy(&b).into_owned();
        }
        Some(resp)
    }

    /// Whether the server closed the connection (EOF within the timeout).
    pub fn closed(&mut self) -> bool {
        let mut b = [0u8; 1];
        matches!(self.r.read(&mut b), Ok(0) | Err(_))
    }

    /// Everything until the peer closes.
    pub fn read_all(&mut self) -> String {
        let mut b = Vec::new();
        let _ = self.r.read_to_end(&mut b);
        String::from_utf8_lossy(&b).into_owned()
    }
}

/// One GET on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Client::connect(addr).get(path)
}

/// A running proxy with its temporary directory and collected logs.
pub struct Proxy {
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
    pub logs: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    /// The first address of frontend `name`.
    pub fn addr(&self, name: &str) -> SocketAddr {
        self.running
            .as_ref()
            .unwrap()
            .local_addrs()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, a)| *a)
            .unwrap_or_else(|| panic!("no frontend {name}"))
    }

    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    pub fn log_contains(&self, needle: &str) -> bool {
        self.logs().iter().any(|l| l.contains(needle))
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}

/// Writes `files` (name, contents) into a temp dir, replaces `{dir}` in
/// the configuration and in the files, and starts the proxy.
pub fn try_start(cfg: &str, files: &[(&str, &str)]) -> Result<Proxy, proxy::ProxyError> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text.replace("{dir}", &d)).unwrap();
    }
    let cfg_path = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg_path, cfg.replace("{dir}", &d)).unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let l = logs.clone();
    let running = Running::start(ProxyOptions {
        files: vec![cfg_path],
        log: Arc::new(move |_lvl, msg: &str| l.lock().unwrap().push(msg.to_string())),
        grace: Duration::from_secs(5),
    })?;
    Ok(Proxy {
        running: Some(running),
        dir,
        logs,
    })
}

pub fn start(cfg: &str, files: &[(&str, &str)]) -> Proxy {
    match try_start(cfg, files) {
        Ok(p) => p,
        Err(e) => panic!("proxy failed to start: {e}"),
    }
}

/// A one-shot TCP "gate": accepts one connection, waits until `open` is
/// called, then sends `line\n`. Lets a test hold a Lua Socket call
/// suspended for as long as it wants without any timing.
pub struct Gate {
    pub addr: SocketAddr,
    tx: std::sync::mpsc::Sender<()>,
    /// Set once a client connected.
    pub connected: Arc<std::sync::atomic::AtomicBool>,
}

impl Gate {
    pub fn new(line: &'static str) -> Gate {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let connected = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let c = connected.clone();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = l.accept() {
                c.store(true, Ordering::SeqCst);
                let _ = rx.recv_timeout(IO_TIMEOUT);
                let _ = s.write_all(format!("{line}\n").as_bytes());
                let mut sink = [0u8; 64];
                s.set_read_timeout(Some(Duration::from_secs(1))).ok();
                let _ = s.read(&mut sink);
            }
        });
        Gate {
            addr,
            tx,
            connected,
        }
    }
    pub fn open(&self) {
        let _ = self.tx.send(());
    }
}

/// Polls `f` up to `tries` times, 20 ms apart (bounded wait for
/// asynchronous effects such as tasks).
pub fn eventually(tries: usize, mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..tries {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
