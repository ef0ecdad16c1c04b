//! `MolochHttpService` / `ArkimeHttpService`: a small HTTP/1.1 client for
//! scripts.
//!
//! Each service has up to `maxConnections` worker threads, each keeping one
//! keep-alive connection, and accepts at most `maxRequests` requests in
//! flight (`request` returns false beyond that, as Arkime's does). Workers
//! never touch Lua: a finished response goes back over a channel to the
//! packet thread whose interpreter made the request, and the script's
//! callback runs there, between packets.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, unbounded};
use lua::mlua::{self, Lua, MetaMethod, UserData, UserDataMethods, Value};

use super::session::{Callback, PendingRequest, Shared};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a read or write may stall before the request fails.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest status or header line accepted.
const MAX_LINE: u64 = 16 * 1024;
/// Most headers accepted in one response.
const MAX_HEADERS: usize = 200;
/// Largest response body accepted.
const MAX_BODY: u64 = 64 << 20;
/// Upper bound on worker threads per service, whatever the script asks.
const MAX_WORKERS: usize = 64;

/// A finished request, for the packet thread that made it.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    /// The request id ([`Shared::new_request_id`]).
    pub id: u64,
    /// HTTP status, or 0 when no response could be had.
    pub code: i64,
    /// Response body (empty on failure).
    pub body: Vec<u8>,
}

/// One server of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    host: String,
    port: u16,
    /// Path prefix from the base URL, without a trailing `/`.
    base: String,
}

/// Parses Arkime's comma separated base URLs (`http://host:port`,
/// `host:port`, `http://host/prefix`).
pub(crate) fn parse_hostports(list: &str) -> Result<Vec<Endpoint>, String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let rest = if let Some(r) = item.strip_prefix("http://") {
            r
        } else if item.starts_with("https://") {
            return Err(format!(
                "{item}: https is not supported by MolochHttpService"
            ));
        } else if item.contains("://") {
            return Err(format!("{item}: only http:// URLs are supported"));
        } else {
            item
        };
        let (hostport, base) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = if let Some(h) = hostport.strip_prefix('[') {
            // [v6]:port
            let Some(end) = h.find(']') else {
                return Err(format!("{item}: bad IPv6 address"));
            };
            let port = match h[end + 1..].strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| format!("{item}: bad port"))?,
                None => 80,
            };
            (h[..end].to_string(), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (
                    h.to_string(),
                    p.parse().map_err(|_| format!("{item}: bad port"))?,
                ),
                None => (hostport.to_string(), 80),
            }
        };
        if host.is_empty() {
            return Err(format!("{item}: no host"));
        }
        out.push(Endpoint {
            host,
            port,
            base: base.to_string(),
        });
    }
    if out.is_empty() {
        return Err("no server given".into());
    }
    Ok(out)
}

struct Job {
    id: u64,
    method: String,
    path: String,
    body: Vec<u8>,
}

struct Conn {
    reader: BufReader<TcpStream>,
    endpoint: usize,
}

fn connect(ep: &Endpoint) -> std::io::Result<TcpStream> {
    let mut last = std::io::Error::other("no address");
    for addr in (ep.host.as_str(), ep.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(s) => {
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))?;
                s.set_nodelay(true)?;
                return Ok(s);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

fn read_line(r: &mut BufReader<TcpStream>, line: &mut Vec<u8>) -> std::io::Result<()> {
    line.clear();
    let n = (&mut *r).take(MAX_LINE).read_until(b'\n', line)?;
    if n == 0 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "connection closed",
        ));
    }
    if line.last() != Some(&b'\n') {
        return Err(bad("line too long"));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    Ok(())
}

/// Sends one request on `conn` and reads its response: (status, body,
/// whether the connection may be reused).
fn exchange(conn: &mut Conn, ep: &Endpoint, job: &Job) -> std::io::Result<(i64, Vec<u8>, bool)> {
    let mut req = Vec::with_capacity(256 + job.body.len());
    let host = if ep.host.contains(':') {
        format!("[{}]", ep.host)
    } else {
        ep.host.clone()
    };
    write!(
        req,
        "{} {}{} HTTP/1.1\r\nHost: {}:{}\r\nContent-Length: {}\r\nConnection: keep-alive\r\n",
        job.method,
        ep.base,
        if job.path.starts_with('/') || job.path.is_empty() {
            job.path.clone()
        } else {
            format!("/{}", job.path)
        },
        host,
        ep.port,
        job.body.len()
    )?;
    if !job.body.is_empty() {
        req.extend_from_slice(b"Content-Type: application/json\r\n");
    }
    req.extend_from_slice(b"\r\n");
    req.extend_from_slice(&job.body);
    conn.reader.get_mut().write_all(&req)?;

    let mut line = Vec::new();
    loop {
        read_line(&mut conn.reader, &mut line)?;
        let status = String::from_utf8_lossy(&line).into_owned();
        let mut parts = status.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        if !version.starts_with("HTTP/1.") {
            return Err(bad("not an HTTP/1 response"));
        }
        let code: i64 = parts
            .next()
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| bad("bad status line"))?;
        let mut length: Option<u64> = None;
        let mut chunked = false;
        let mut keep = version == "HTTP/1.1";
        let mut headers = 0;
        loop {
            read_line(&mut conn.reader, &mut line)?;
            if line.is_empty() {
                break;
            }
            headers += 1;
            if headers > MAX_HEADERS {
                return Err(bad("too many headers"));
            }
            let h = String::from_utf8_lossy(&line);
            let Some((name, value)) = h.split_once(':') else {
                continue;
            };
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
            match name.as_str() {
                "content-length" => {
                    length = Some(value.parse().map_err(|_| bad("bad content-length"))?)
                }
                "transfer-encoding" => {
                    chunked = value.to_ascii_lowercase().contains("chunked");
                }
                "connection" => {
                    let v = value.to_ascii_lowercase();
                    if v.contains("close") {
                        keep = false;
                    } else if v.contains("keep-alive") {
                        keep = true;
                    }
                }
                _ => {}
            }
        }
        if (100..200).contains(&code) {
            // Interim response (100 Continue): the real one follows.
            continue;
        }
        let no_body = job.method.eq_ignore_ascii_case("HEAD") || code == 204 || code == 304;
        let mut body = Vec::new();
        if no_body {
        } else if chunked {
            loop {
                read_line(&mut conn.reader, &mut line)?;
                let text = String::from_utf8_lossy(&line);
                let size_hex = text.split(';').next().unwrap_or("").trim();
                let size = u64::from_str_radix(size_hex, 16).map_err(|_| bad("bad chunk size"))?;
                if size == 0 {
                    // Trailers up to the empty line.
                    loop {
                        read_line(&mut conn.reader, &mut line)?;
                        if line.is_empty() {
                            break;
                        }
                    }
                    break;
                }
                if body.len() as u64 + size > MAX_BODY {
                    return Err(bad("response body too large"));
                }
                let start = body.len();
                body.resize(start + size as usize, 0);
                conn.reader.read_exact(&mut body[start..])?;
                read_line(&mut conn.reader, &mut line)?;
            }
        } else if let Some(n) = length {
            if n > MAX_BODY {
                return Err(bad("response body too large"));
            }
            body.resize(n as usize, 0);
            conn.reader.read_exact(&mut body)?;
        } else {
            // Delimited by the end of the connection.
            (&mut conn.reader).take(MAX_BODY).read_to_end(&mut body)?;
            keep = false;
        }
        return Ok((code, body, keep));
    }
}

/// Runs one request, reusing `conn` and failing over to the next server
/// when a connection cannot be made.
fn perform(
    endpoints: &[Endpoint],
    conn: &mut Option<Conn>,
    next: &mut usize,
    job: &Job,
) -> (i64, Vec<u8>) {
    // One try per server plus one retry of a stale keep-alive connection.
    for _ in 0..=endpoints.len() {
        let reused = conn.is_some();
        if conn.is_none() {
            let at = *next % endpoints.len();
            match connect(&endpoints[at]) {
                Ok(s) => {
                    *conn = Some(Conn {
                        reader: BufReader::new(s),
                        endpoint: at,
                    })
                }
                Err(_) => {
                    *next += 1;
                    continue;
                }
            }
        }
        let Some(c) = conn.as_mut() else {
            continue;
        };
        let ep = &endpoints[c.endpoint];
        match exchange(c, ep, job) {
            Ok((code, body, keep)) => {
                if !keep {
                    *conn = None;
                }
                return (code, body);
            }
            Err(_) => {
                *conn = None;
                if !reused {
                    *next += 1;
                }
            }
        }
    }
    (0, Vec::new())
}

fn worker(
    endpoints: Arc<Vec<Endpoint>>,
    jobs: Receiver<Job>,
    responses: Sender<HttpResponse>,
    in_flight: Arc<AtomicUsize>,
    start: usize,
) {
    let mut conn = None;
    let mut next = start;
    for job in jobs.iter() {
        let (code, body) = perform(&endpoints, &mut conn, &mut next, &job);
        in_flight.fetch_sub(1, Ordering::AcqRel);
        // The packet thread may have finished; then nobody wants it.
        let _ = responses.send(HttpResponse {
            id: job.id,
            code,
            body,
        });
    }
}

/// A `MolochHttpService` object.
pub(crate) struct HttpService {
    label: String,
    endpoints: Arc<Vec<Endpoint>>,
    jobs: Sender<Job>,
    jobs_rx: Receiver<Job>,
    in_flight: Arc<AtomicUsize>,
    workers: Cell<usize>,
    max_connections: usize,
    max_requests: usize,
    shared: Rc<Shared>,
}

impl HttpService {
    fn request(
        &self,
        lua: &Lua,
        method: String,
        path: String,
        body: Vec<u8>,
        callback: Value,
    ) -> mlua::Result<bool> {
        let callback = Callback::from_value(callback, "request")?.resolve(lua)?;
        let sh = &self.shared;
        if sh.discovery {
            return Ok(false);
        }
        if self.in_flight.load(Ordering::Acquire) >= self.max_requests {
            sh.http_rejected.set(sh.http_rejected.get() + 1);
            return Ok(false);
        }
        let busy = self.in_flight.fetch_add(1, Ordering::AcqRel) + 1;
        if self.workers.get() < self.max_connections.min(busy) {
            let (e, rx, tx, n) = (
                Arc::clone(&self.endpoints),
                self.jobs_rx.clone(),
                sh.responses.clone(),
                Arc::clone(&self.in_flight),
            );
            let start = self.workers.get();
            match std::thread::Builder::new()
                .name("mw-lua-http".into())
                .spawn(move || worker(e, rx, tx, n, start))
            {
                Ok(_) => self.workers.set(start + 1),
                Err(_) if self.workers.get() == 0 => {
                    self.in_flight.fetch_sub(1, Ordering::AcqRel);
                    return Ok(false);
                }
                Err(_) => {}
            }
        }
        let id = sh.new_request_id();
        sh.requests.borrow_mut().insert(
            id,
            PendingRequest {
                callback,
                serial: sh.bound_serial(),
            },
        );
        if self
            .jobs
            .send(Job {
                id,
                method,
                path,
                body,
            })
            .is_err()
        {
            sh.requests.borrow_mut().remove(&id);
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return Ok(false);
        }
        Ok(true)
    }
}

impl UserData for HttpService {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::ToString, |_, this, ()| {
            Ok(format!("MolochHttpService: {}", this.label))
        });
        methods.add_method(
            "request",
            |lua,
             this,
             (method, path, data, f): (
                mlua::LuaString,
                mlua::LuaString,
                mlua::LuaString,
                Value,
            )| {
                let method = method.to_str()?.to_string();
                if method.is_empty() || method.bytes().any(|b| !b.is_ascii_alphabetic()) {
                    return Err(mlua::Error::runtime(format!(
                        "request: bad method {method:?}"
                    )));
                }
                let path = path.to_str()?.to_string();
                if path
                    .bytes()
                    .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
                {
                    return Err(mlua::Error::runtime(
                        "request: the path must be encoded (no spaces or control characters)",
                    ));
                }
                this.request(lua, method, path, data.as_bytes().to_vec(), f)
            },
        );
    }
}

/// Installs `MolochHttpService` / `ArkimeHttpService`.
pub(crate) fn install(lua: &Lua, shared: &Rc<Shared>) -> mlua::Result<()> {
    let t = lua.create_table()?;
    let sh = Rc::clone(shared);
    t.set(
        "new",
        lua.create_function(move |_, (hosts, max_conns, max_reqs): (String, i64, i64)| {
            let endpoints = parse_hostports(&hosts)
                .map_err(|e| mlua::Error::runtime(format!("MolochHttpService.new: {e}")))?;
            if max_conns < 1 || max_reqs < 1 {
                return Err(mlua::Error::runtime(
                    "MolochHttpService.new: maxConnections and maxRequests must be at least 1",
                ));
            }
            let (jobs, jobs_rx) = unbounded();
            Ok(HttpService {
                label: hosts,
                endpoints: Arc::new(endpoints),
                jobs,
                jobs_rx,
                in_flight: Arc::new(AtomicUsize::new(0)),
                workers: Cell::new(0),
                max_connections: (max_conns as usize).min(MAX_WORKERS),
                max_requests: max_reqs as usize,
                shared: Rc::clone(&sh),
            })
        })?,
    )?;
    lua.globals().set("MolochHttpService", t.clone())?;
    lua.globals().set("ArkimeHttpService", t)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn hostports() {
        let e = parse_hostports("http://127.0.0.1:9200, example.com:81,http://h/pre/,[::1]:8080")
            .unwrap();
        assert_eq!(e[0].host, "127.0.0.1");
        assert_eq!(e[0].port, 9200);
        assert_eq!(e[1].port, 81);
        assert_eq!((e[2].port, e[2].base.as_str()), (80, "/pre"));
        assert_eq!((e[3].host.as_str(), e[3].port), ("::1", 8080));
        assert!(parse_hostports("https://x").is_err());
        assert!(parse_hostports("").is_err());
        assert!(parse_hostports("h:notaport").is_err());
    }

    /// A loopback server answering every request on a connection, first
    /// with a length, then chunked; it counts accepted connections.
    fn server(accepts: Arc<AtomicUsize>) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming().take(4) {
                let Ok(s) = s else { return };
                accepts.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut r = BufReader::new(s);
                    for n in 0..10 {
                        let mut first = String::new();
                        if r.read_line(&mut first).unwrap_or(0) == 0 {
                            return;
                        }
                        let mut len = 0usize;
                        loop {
                            let mut h = String::new();
                            r.read_line(&mut h).unwrap();
                            if h.trim().is_empty() {
                                break;
                            }
                            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:")
                            {
                                len = v.trim().parse().unwrap();
                            }
                        }
                        let mut body = vec![0; len];
                        r.read_exact(&mut body).unwrap();
                        let path = first.split(' ').nth(1).unwrap().to_string();
                        let reply = format!("{path}|{}", String::from_utf8_lossy(&body));
                        let out = if n % 2 == 0 {
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{reply}",
                                reply.len()
                            )
                        } else {
                            format!(
                                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{reply}\r\n0\r\n\r\n",
                                reply.len()
                            )
                        };
                        r.get_mut().write_all(out.as_bytes()).unwrap();
                    }
                });
            }
        });
        port
    }

    #[test]
    fn keep_alive_and_framing() {
        let accepts = Arc::new(AtomicUsize::new(0));
        let port = server(Arc::clone(&accepts));
        let eps = parse_hostports(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut conn = None;
        let mut next = 0;
        let job = |id, body: &str| Job {
            id,
            method: "POST".into(),
            path: format!("/q{id}"),
            body: body.as_bytes().to_vec(),
        };
        assert_eq!(
            perform(&eps, &mut conn, &mut next, &job(1, "a")),
            (200, b"/q1|a".to_vec())
        );
        assert_eq!(
            perform(&eps, &mut conn, &mut next, &job(2, "")),
            (201, b"/q2|".to_vec())
        );
        assert_eq!(
            perform(&eps, &mut conn, &mut next, &job(3, "xyz")),
            (200, b"/q3|xyz".to_vec())
        );
        assert_eq!(
            accepts.load(Ordering::SeqCst),
            1,
            "one keep-alive connection"
        );
    }

    #[test]
    fn unreachable_server_gives_code_zero() {
        // Bind then drop to get a port nobody listens on.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let eps = parse_hostports(&format!("127.0.0.1:{port}")).unwrap();
        let mut conn = None;
        let mut next = 0;
        let job = Job {
            id: 1,
            method: "GET".into(),
            path: "/".into(),
            body: Vec::new(),
        };
        assert_eq!(perform(&eps, &mut conn, &mut next, &job), (0, Vec::new()));
    }
}
