//! The per-thread proxy engine: HTTP and TCP sessions, rule evaluation,
//! backend selection, server connection pools and logging.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::config::{Balance, Config, HttpAction, Mode, Rule, Section, Server, TcpAction};
use crate::http::{self, Conn, Framing, HttpError};
use crate::lua_api::{AppletHttpOut, LuaWorker, OutPipe, Outcome, TcpClient};
use crate::sample::{Eval, LogFormat, LuaSampler};
use crate::shared::{ServerState, Shared};
use crate::txn::{Headers, Phase, ResHead, Termination, TxnHandle, TxnState, VarMap};

/// One generation of configuration on one thread: the config and the Lua
/// state built for it. Connections hold it until they end, so a reload
/// never pulls the state from under a running script.
pub struct Generation {
    /// The configuration.
    pub cfg: Arc<Config>,
    /// This thread's Lua interpreter.
    pub lua: LuaWorker,
    /// Server states per section then server index.
    servers: Vec<Vec<Arc<ServerState>>>,
    /// Round-robin position per section.
    rr: Vec<Cell<usize>>,
}

impl Generation {
    /// Wraps a configuration and its Lua state.
    pub fn new(cfg: Arc<Config>, lua: LuaWorker) -> Generation {
        let shared = lua.shared().clone();
        let servers = cfg
            .sections
            .iter()
            .map(|s| {
                s.servers
                    .iter()
                    .map(|srv| shared.server(&format!("{}/{}", s.name, srv.name)))
                    .collect()
            })
            .collect();
        let rr = (0..cfg.sections.len()).map(|_| Cell::new(0)).collect();
        Generation {
            cfg,
            lua,
            servers,
            rr,
        }
    }

    fn shared(&self) -> &Arc<Shared> {
        self.lua.shared()
    }

    fn eval<'a>(&'a self, txn: &'a TxnHandle) -> Eval<'a> {
        Eval {
            txn,
            lua: Some(&self.lua as &dyn LuaSampler),
        }
    }
}

/// Per-thread state that outlives reloads: idle server connections and
/// the stop signal.
#[derive(Default)]
pub struct ThreadCtl {
    /// Idle server connections with their read buffers (kept, so a
    /// request does not allocate a fresh one).
    /// Per server address; a backend has few servers, so a list scanned
    /// in place costs less than hashing the address twice per request.
    pool: RefCell<Vec<(SocketAddr, Vec<Conn>)>>,
    /// Set when the proxy is stopping: finish the current request, then close.
    pub stopping: Cell<bool>,
    /// Wakes idle keep-alive connections on stop.
    pub stop: tokio::sync::Notify,
    /// Connections open on this thread.
    pub active: Cell<usize>,
}

/// Idle connections kept per server and thread. It must cover the number
/// of requests in flight to one server: a smaller pool closes connections
/// that the next requests then open again (a connect and a close per
/// request once the client count exceeds it).
const POOL_MAX: usize = 1024;

impl ThreadCtl {
    fn take_idle(&self, addr: SocketAddr) -> Option<Conn> {
        let mut pool = self.pool.borrow_mut();
        let list = &mut pool.iter_mut().find(|(a, _)| *a == addr)?.1;
        while let Some(c) = list.pop() {
            // A connection the server closed meanwhile reads EOF at once.
            // (No system call unless the socket was reported readable.)
            let mut probe = [0u8; 1];
            match c.io.try_read(&mut probe) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Some(c),
                _ => continue,
            }
        }
        None
    }
    fn put_idle(&self, addr: SocketAddr, mut c: Conn) {
        if self.stopping.get() {
            return;
        }
        // A buffer grown by a large body is not kept for every idle socket.
        if c.buf.capacity() > 65536 {
            c.buf = Vec::new();
        }
        c.buf.clear();
        c.pos = 0;
        let mut pool = self.pool.borrow_mut();
        let i = match pool.iter().position(|(a, _)| *a == addr) {
            Some(i) => i,
            None => {
                pool.push((addr, Vec::new()));
                pool.len() - 1
            }
        };
        let list = &mut pool[i].1;
        if list.len() < POOL_MAX {
            list.push(c);
        }
    }
}

/// Runs one client connection to completion.
pub async fn handle_connection(
    g: Rc<Generation>,
    ctl: Rc<ThreadCtl>,
    fe: usize,
    sock: TcpStream,
    peer: SocketAddr,
) {
    let local = sock.local_addr().unwrap_or(peer);
    let _ = sock.set_nodelay(true);
    ctl.active.set(ctl.active.get() + 1);
    g.shared().current_conns.fetch_add(1, Ordering::Relaxed);
    let section = &g.cfg.sections[fe];
    match section.mode {
        Mode::Http => http_session(&g, &ctl, fe, sock, peer, local).await,
        Mode::Tcp => tcp_session(&g, &ctl, fe, sock, peer, local).await,
    }
    g.shared().current_conns.fetch_sub(1, Ordering::Relaxed);
    ctl.active.set(ctl.active.get() - 1);
}

enum Verdict {
    Continue,
    /// Stop evaluating the remaining rules of this list (`allow`).
    Allow,
    Reply {
        bytes: Vec<u8>,
        close: bool,
        status: u16,
    },
    Service(String),
    Close,
}

fn render(g: &Generation, lf: &LogFormat, txn: &TxnHandle) -> Vec<u8> {
    if let Some(l) = lf.literal() {
        return l.as_bytes().to_vec();
    }
    lf.render(&g.eval(txn), &|a| alias_value(a, txn, None), false)
        .unwrap_or_default()
}

fn cond_ok(
    g: &Generation,
    scope: &Section,
    cond: &Option<crate::sample::Cond>,
    txn: &TxnHandle,
) -> bool {
    match cond {
        None => true,
        Some(c) => match c.eval(scope, &g.eval(txn)) {
            Ok(v) => v,
            Err(e) => {
                g.shared()
                    .log(3, &format!("proxy {}: condition failed: {e}", scope.name));
                false
            }
        },
    }
}

fn lua_outcome_http(txn: &TxnHandle, out: Outcome) -> Verdict {
    let mut st = txn.borrow_mut();
    let raw = std::mem::take(&mut st.res_chan.immediate);
    match out {
        Outcome::Continue => {
            if !raw.is_empty() {
                return Verdict::Reply {
                    bytes: raw,
                    close: true,
                    status: 200,
                };
            }
            if let Some(loc) = st.redirect.take() {
                return Verdict::Reply {
                    bytes: redirect_bytes(302, &loc),
                    close: false,
                    status: 302,
                };
            }
            Verdict::Continue
        }
        Outcome::Terminated(_) => {
            if !raw.is_empty() {
                return Verdict::Reply {
                    bytes: raw,
                    close: true,
                    status: 200,
                };
            }
            Verdict::Close
        }
        Outcome::Failed(_) => Verdict::Reply {
            bytes: http::error_response(500),
            close: true,
            status: 500,
        },
    }
}

fn redirect_bytes(code: u16, loc: &str) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {code} {}\r\ncontent-length: 0\r\nlocation: ",
        http::reason_phrase(code)
    )
    .into_bytes();
    out.extend(loc.bytes().filter(|b| *b != b'\r' && *b != b'\n'));
    out.extend_from_slice(b"\r\ncache-control: no-cache\r\n\r\n");
    out
}

async fn run_http_rules(
    g: &Generation,
    scope: &Section,
    rules: &[Rule<HttpAction>],
    txn: &TxnHandle,
    phase: Phase,
) -> Verdict {
    let kind = if phase == Phase::Request {
        "http-req"
    } else {
        "http-res"
    };
    for r in rules {
        if !cond_ok(g, scope, &r.cond, txn) {
            continue;
        }
        match &r.action {
            HttpAction::SetHeader(n, lf) => {
                let v = render(g, lf, txn);
                crate::lua_api::edit_headers(txn, phase == Phase::Response, |f| {
                    f.retain(|(x, _)| !x.eq_ignore_ascii_case(n));
                    f.push((n.clone(), v));
                });
            }
            HttpAction::AddHeader(n, lf) => {
                let v = render(g, lf, txn);
                crate::lua_api::edit_headers(txn, phase == Phase::Response, |f| {
                    f.push((n.clone(), v))
                });
            }
            HttpAction::DelHeader(n) => {
                crate::lua_api::edit_headers(txn, phase == Phase::Response, |f| {
                    f.retain(|(x, _)| !x.eq_ignore_ascii_case(n))
                });
            }
            HttpAction::ReplaceHeader(n, re, repl) | HttpAction::ReplaceValue(n, re, repl) => {
                let per_value = matches!(r.action, HttpAction::ReplaceValue(..));
                crate::lua_api::edit_headers(txn, phase == Phase::Response, |f| {
                    for (x, v) in f.iter_mut() {
                        if !x.eq_ignore_ascii_case(n) {
                            continue;
                        }
                        if per_value {
                            let parts: Vec<Vec<u8>> = v
                                .split(|b| *b == b',')
                                .map(|p| {
                                    crate::sample::regex_replace(
                                        re,
                                        crate::txn::trim(p),
                                        repl,
                                        false,
                                    )
                                })
                                .collect();
                            *v = parts.join(&b", "[..]);
                        } else {
                            *v = crate::sample::regex_replace(re, v, repl, false);
                        }
                    }
                });
            }
            HttpAction::SetPath(lf) => {
                let v = String::from_utf8_lossy(&render(g, lf, txn)).into_owned();
                txn.borrow_mut().req.set_path(&v);
            }
            HttpAction::SetQuery(lf) => {
                let v = String::from_utf8_lossy(&render(g, lf, txn)).into_owned();
                txn.borrow_mut().req.set_query(&v);
            }
            HttpAction::SetUri(lf) => {
                let v = String::from_utf8_lossy(&render(g, lf, txn)).into_owned();
                txn.borrow_mut().req.uri = v;
            }
            HttpAction::SetMethod(lf) => {
                let v = String::from_utf8_lossy(&render(g, lf, txn)).into_owned();
                txn.borrow_mut().req.method = v;
            }
            HttpAction::SetVar(name, expr) => {
                if let Ok(Some(v)) = expr.eval(&g.eval(txn)) {
                    txn.borrow_mut().set_var(name, v);
                }
            }
            HttpAction::UnsetVar(name) => {
                txn.borrow_mut().unset_var(name);
            }
            HttpAction::Deny(status) => {
                return Verdict::Reply {
                    bytes: http::error_response(*status),
                    close: true,
                    status: *status,
                };
            }
            HttpAction::Allow => return Verdict::Allow,
            HttpAction::Return {
                status,
                content_type,
                body,
            } => {
                let b = render(g, body, txn);
                let ct =
                    content_type
                        .as_deref()
                        .unwrap_or(if b.is_empty() { "" } else { "text/plain" });
                return Verdict::Reply {
                    bytes: http::simple_response(*status, ct, &b, true),
                    close: false,
                    status: *status,
                };
            }
            HttpAction::Redirect {
                prefix,
                target,
                code,
            } => {
                let mut loc = String::from_utf8_lossy(&render(g, target, txn)).into_owned();
                if *prefix {
                    let uri = txn.borrow().req.uri.clone();
                    loc = format!("{}{uri}", loc.trim_end_matches('/'));
                }
                return Verdict::Reply {
                    bytes: redirect_bytes(*code, &loc),
                    close: false,
                    status: *code,
                };
            }
            HttpAction::SetStatus(code, reason) => {
                let mut st = txn.borrow_mut();
                if let Some(res) = st.res.as_mut() {
                    res.status = *code;
                    res.reason = reason
                        .clone()
                        .unwrap_or_else(|| http::reason_phrase(*code).to_string());
                }
            }
            HttpAction::SetLogLevel(l) => txn.borrow_mut().loglevel = Some(*l),
            HttpAction::Lua(name, args) => {
                let out = g.lua.run_action(name, kind, txn, args).await;
                match lua_outcome_http(txn, out) {
                    Verdict::Continue => {}
                    v => return v,
                }
            }
            HttpAction::LuaFn(name) => {
                let out = g.lua.run_function(name, txn).await;
                match lua_outcome_http(txn, out) {
                    Verdict::Continue => {}
                    v => return v,
                }
            }
            HttpAction::UseService(name) => return Verdict::Service(name.clone()),
        }
    }
    Verdict::Continue
}

fn select_backend(g: &Generation, fe_idx: usize, txn: &TxnHandle) -> Option<usize> {
    let fe = &g.cfg.sections[fe_idx];
    for r in &fe.use_backends {
        if cond_ok(g, fe, &r.cond, txn) {
            return g
                .cfg
                .sections
                .iter()
                .position(|s| s.is_backend() && s.name == r.action);
        }
    }
    if let Some((name, _)) = &fe.default_backend {
        return g
            .cfg
            .sections
            .iter()
            .position(|s| s.is_backend() && &s.name == name);
    }
    if fe.is_backend() {
        return Some(fe_idx);
    }
    None
}

/// Orders the servers to try, first choice first (balance algorithm).
fn server_order(g: &Generation, be_idx: usize, src: SocketAddr) -> Vec<usize> {
    let be = &g.cfg.sections[be_idx];
    let states = &g.servers[be_idx];
    let usable: Vec<usize> = (0..be.servers.len())
        .filter(|i| be.servers[*i].weight > 0 && states[*i].up.load(Ordering::Relaxed))
        .collect();
    if usable.is_empty() {
        return usable;
    }
    let total: u64 = usable.iter().map(|i| be.servers[*i].weight as u64).sum();
    let pick_by_weight = |n: u64| -> usize {
        let mut n = n % total.max(1);
        for &i in &usable {
            let w = be.servers[i].weight as u64;
            if n < w {
                return i;
            }
            n -= w;
        }
        usable[0]
    };
    let first = match be.balance {
        Balance::RoundRobin => {
            let c = &g.rr[be_idx];
            c.set(c.get().wrapping_add(1));
            pick_by_weight(c.get() as u64)
        }
        Balance::LeastConn => *usable
            .iter()
            .min_by_key(|i| {
                states[**i].active.load(Ordering::Relaxed) * 256
                    / be.servers[**i].weight.max(1) as usize
            })
            .unwrap_or(&usable[0]),
        Balance::First => usable[0],
        Balance::Source => {
            let key = match src.ip() {
                std::net::IpAddr::V4(v) => v.octets().to_vec(),
                std::net::IpAddr::V6(v) => v.octets().to_vec(),
            };
            pick_by_weight(crate::sample::djb2(&key) as u64)
        }
    };
    let mut order = vec![first];
    order.extend(usable.iter().copied().filter(|i| *i != first));
    order
}

async fn connect_server(srv: &Server, timeout: Option<Duration>) -> std::io::Result<TcpStream> {
    let fut = TcpStream::connect(srv.addr);
    let s = match timeout {
        Some(t) => tokio::time::timeout(t, fut)
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timeout"))??,
        None => fut.await?,
    };
    let _ = s.set_nodelay(true);
    Ok(s)
}

struct Timing {
    start: Instant,
    head_done: Cell<Option<Instant>>,
}

/// Values of `%xx` log-format aliases.
fn alias_value(a: &str, txn: &TxnHandle, extra: Option<(&Timing, u64, u16)>) -> String {
    let st = txn.borrow();
    let (t, bytes, status) = match extra {
        Some((t, b, s)) => (Some(t), b, s),
        None => (None, 0, st.res.as_ref().map_or(0, |r| r.status)),
    };
    match a {
        "ci" => st.src.ip().to_string(),
        "cp" => st.src.port().to_string(),
        "fi" => st.dst.ip().to_string(),
        "fp" => st.dst.port().to_string(),
        "f" | "ft" => st.frontend.to_string(),
        "b" => st.backend.as_deref().unwrap_or("<NOSRV>").to_string(),
        "s" => st.server.as_deref().unwrap_or("<NOSRV>").to_string(),
        "ST" => status.to_string(),
        "r" => format!("{} {} HTTP/1.{}", st.req.method, st.req.uri, st.req.minor),
        "HM" => st.req.method.clone(),
        "HU" => st.req.uri.clone(),
        "HP" => st.req.path().to_string(),
        "HV" => format!("HTTP/1.{}", st.req.minor),
        "B" => bytes.to_string(),
        "Tt" | "Ta" => t.map_or(0, |t| t.start.elapsed().as_millis()).to_string(),
        "Tr" | "TR" => t
            .and_then(|t| {
                t.head_done
                    .get()
                    .map(|h| h.duration_since(t.start).as_millis())
            })
            .map_or("-1".to_string(), |v| v.to_string()),
        "t" | "T" => {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            haproxy_date(d.as_secs(), d.subsec_millis())
        }
        "pid" => std::process::id().to_string(),
        "ID" => String::new(),
        _ => "-".to_string(),
    }
}

/// `%t`: `23/Nov/2026:18:20:00.123` (UTC), as HAProxy writes it.
fn haproxy_date(secs: u64, ms: u32) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{day:02}/{}/{year}:{:02}:{:02}:{:02}.{ms:03}",
        MONTHS[(month - 1) as usize],
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

fn log_txn(g: &Generation, fe: &Section, txn: &TxnHandle, t: &Timing, bytes: u64, status: u16) {
    if !fe.log {
        return;
    }
    let Some(lf) = &fe.log_format else {
        return;
    };
    let line = lf
        .render(
            &g.eval(txn),
            &|a| alias_value(a, txn, Some((t, bytes, status))),
            true,
        )
        .unwrap_or_else(|e| e.into_bytes());
    let level = txn.borrow().loglevel.unwrap_or(6);
    g.shared().log(level, &String::from_utf8_lossy(&line));
}

async fn write_client(client: &mut Conn, data: &[u8], timeout: Option<Duration>) -> bool {
    client.write_all(data, timeout).await.is_ok()
}

#[allow(clippy::too_many_lines)]
async fn http_session(
    g: &Rc<Generation>,
    ctl: &ThreadCtl,
    fe_idx: usize,
    sock: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
) {
    let fe = &g.cfg.sections[fe_idx];
    let bufsize = g.cfg.global.bufsize;
    let mut client = Conn::new(sock);
    let sess: Rc<RefCell<VarMap>> = Rc::default();
    let fe_name: Arc<str> = fe.name.as_str().into();
    let client_to = fe.timeouts.client;
    let head_to = fe.timeouts.http_request.or(client_to);
    let mut first = true;
    loop {
        let idle = if first {
            head_to
        } else {
            fe.timeouts.http_keep_alive.or(head_to)
        };
        // On stop, idle keep-alive connections close; a new connection
        // still gets its first request served (it may be on the wire).
        if ctl.stopping.get() && client.pending().is_empty() && !first {
            return;
        }
        let head = tokio::select! {
            r = http::read_request(&mut client, bufsize, idle, head_to) => r,
            _ = ctl.stop.notified(), if client.pending().is_empty() && !first => return,
        };
        let timing = Timing {
            start: Instant::now(),
            head_done: Cell::new(None),
        };
        let head = match head {
            Ok(Some(h)) => h,
            Ok(None) => return,
            Err(e) => {
                let status = match e {
                    HttpError::TooLarge => 431,
                    HttpError::Bad(_) => 400,
                    HttpError::Timeout if !client.pending().is_empty() || first => 408,
                    _ => return,
                };
                if status == 408 && client.pending().is_empty() && !first {
                    return;
                }
                let _ = write_client(&mut client, &http::error_response(status), client_to).await;
                g.shared().log(
                    6,
                    &format!("{}: {peer} request rejected with {status}: {e}", fe.name),
                );
                return;
            }
        };
        first = false;
        g.shared().total_requests.fetch_add(1, Ordering::Relaxed);
        let framing = match http::request_framing(&head) {
            Ok(f) => f,
            Err(e) => {
                let _ = write_client(&mut client, &http::error_response(400), client_to).await;
                g.shared().log(
                    4,
                    &format!("{}: {peer} request rejected with 400: {e}", fe.name),
                );
                return;
            }
        };
        let mut keep = http::request_keep_alive(&head);
        let client_minor = head.minor;
        let method = head.method.clone();
        let txn: TxnHandle = Rc::new(RefCell::new(TxnState::new(
            peer,
            local,
            true,
            sess.clone(),
            g.shared().clone(),
            fe_name.clone(),
        )));
        let expects_continue = head
            .values("expect")
            .iter()
            .any(|v| v.eq_ignore_ascii_case(b"100-continue"));
        txn.borrow_mut().req = head;
        let _release = ReleaseOnDrop(txn.clone());
        if expects_continue && framing != Framing::Empty {
            txn.borrow_mut().req.remove("expect");
            if !write_client(&mut client, b"HTTP/1.1 100 Continue\r\n\r\n", client_to).await {
                return;
            }
        }
        // Small bodies are buffered so rules and scripts can read them
        // (`req.body`, `AppletHTTP:receive`).
        let mut body_buffered = framing == Framing::Empty;
        if let Framing::Length(n) = framing
            && n as usize <= bufsize
        {
            match http::read_body(&mut client, framing, bufsize, client_to).await {
                Ok(b) => {
                    let mut st = txn.borrow_mut();
                    st.req_body = b;
                    st.req_body_complete = true;
                    body_buffered = true;
                }
                Err(_) => return,
            }
        } else if framing == Framing::Empty {
            txn.borrow_mut().req_body_complete = true;
        }

        // Request rules: frontend, then backend.
        let mut verdict = run_http_rules(g, fe, &fe.http_request, &txn, Phase::Request).await;
        let mut be_idx = None;
        if matches!(verdict, Verdict::Continue | Verdict::Allow) {
            be_idx = select_backend(g, fe_idx, &txn);
            if let Some(b) = be_idx {
                let be = &g.cfg.sections[b];
                txn.borrow_mut().backend = Some(be.name.as_str().into());
                if b != fe_idx {
                    verdict = run_http_rules(g, be, &be.http_request, &txn, Phase::Request).await;
                }
            }
        }
        let (status, bytes, close) = match verdict {
            Verdict::Reply {
                bytes,
                close,
                status,
            } => {
                // The unread body (if any) makes keep-alive impossible.
                let close = close || !body_buffered || !keep;
                let mut out = bytes;
                if close {
                    out = force_close(out);
                }
                let ok = write_client(&mut client, &out, client_to).await;
                (status, out.len() as u64, close || !ok)
            }
            Verdict::Close => {
                log_txn(g, fe, &txn, &timing, 0, 0);
                return;
            }
            Verdict::Service(name) => {
                {
                    // Logged like HAProxy: the frontend and `<lua.NAME>`.
                    let mut st = txn.borrow_mut();
                    st.backend = Some(fe_name.clone());
                    st.server = Some(format!("<lua.{name}>").into());
                }
                let r = http_service(
                    g,
                    &mut client,
                    &txn,
                    &name,
                    framing,
                    body_buffered,
                    keep,
                    client_minor,
                    bufsize,
                    client_to,
                )
                .await;
                match r {
                    Some((status, bytes, ka)) => (status, bytes, !ka),
                    None => (0, 0, true),
                }
            }
            Verdict::Continue | Verdict::Allow => match be_idx {
                None => {
                    let out = http::error_response(503);
                    let _ = write_client(&mut client, &out, client_to).await;
                    (503, out.len() as u64, true)
                }
                Some(b) => {
                    let r = forward_http(
                        g,
                        ctl,
                        fe_idx,
                        b,
                        &mut client,
                        &txn,
                        framing,
                        body_buffered,
                        keep,
                        client_minor,
                        &method,
                        &timing,
                    )
                    .await;
                    keep = r.2;
                    (r.0, r.1, !keep)
                }
            },
        };
        log_txn(g, fe, &txn, &timing, bytes, status);
        if close || !keep || ctl.stopping.get() {
            let _ = client.io.shutdown().await;
            return;
        }
    }
}

/// Releases a transaction's state when its request ends, however it ends
/// (see [`TxnState::release`]).
struct ReleaseOnDrop(TxnHandle);

impl Drop for ReleaseOnDrop {
    fn drop(&mut self) {
        if let Ok(mut st) = self.0.try_borrow_mut() {
            st.release();
        }
    }
}

/// Makes a prepared response close the connection.
fn force_close(mut out: Vec<u8>) -> Vec<u8> {
    if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&out[..end]).to_ascii_lowercase();
        if !head.contains("\r\nconnection: close") {
            out.splice(end + 2..end + 2, b"connection: close\r\n".iter().copied());
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
async fn http_service(
    g: &Generation,
    client: &mut Conn,
    txn: &TxnHandle,
    name: &str,
    framing: Framing,
    body_buffered: bool,
    keep: bool,
    client_minor: u8,
    bufsize: usize,
    client_to: Option<Duration>,
) -> Option<(u16, u64, bool)> {
    let body = if body_buffered {
        txn.borrow().req_body.clone()
    } else {
        match http::read_body(client, framing, bufsize.max(1 << 24), client_to).await {
            Ok(b) => b,
            Err(_) => {
                let _ = client
                    .write_all(&http::error_response(413), client_to)
                    .await;
                return None;
            }
        }
    };
    let pipe = Rc::new(OutPipe::default());
    let out = Rc::new(RefCell::new(AppletHttpOut {
        status: 200,
        req_body: body,
        tx: Some(pipe.clone()),
        flush_at: bufsize,
        client_minor,
        keep,
        head_request: method_is_head(txn),
        ..Default::default()
    }));
    // The service and the writer of what it streams run side by side.
    let service = async {
        let o = g.lua.run_http_service(name, txn, out.clone()).await;
        out.borrow_mut().tx = None;
        pipe.close();
        o
    };
    let writer = async {
        let mut ok = true;
        let mut bytes = 0u64;
        while let Some(b) = pipe.recv().await {
            if ok {
                ok = client.write_all(&b, client_to).await.is_ok();
                bytes += b.len() as u64;
            }
        }
        (ok, bytes)
    };
    let (outcome, (write_ok, streamed_bytes)) = tokio::join!(service, writer);
    let mut o = std::mem::take(&mut *out.borrow_mut());
    if o.head_sent {
        // Streaming already started: finish the body, or cut the
        // connection if the service failed half way.
        let failed = matches!(outcome, Outcome::Failed(_));
        let rest = if failed {
            Vec::new()
        } else {
            o.take_stream_bytes(true)
        };
        let ok = write_ok && !failed && client.write_all(&rest, client_to).await.is_ok();
        let length_ok =
            o.chunked || o.declared_len().is_none_or(|n| n == o.streamed) || o.head_request;
        txn.borrow_mut().res = Some(o.res_head());
        return Some((
            o.status,
            streamed_bytes + rest.len() as u64,
            ok && o.keep && length_ok && !o.until_close,
        ));
    }
    if let Outcome::Failed(_) = outcome {
        let resp = http::error_response(500);
        let _ = client.write_all(&resp, client_to).await;
        return Some((500, resp.len() as u64, false));
    }
    let mut res = ResHead {
        status: o.status,
        reason: o.reason.take().unwrap_or_default(),
        minor: 1,
        headers: std::mem::take(&mut o.headers),
    };
    let has_len = res.get_all("content-length").next().is_some();
    let chunked = res
        .values("transfer-encoding")
        .iter()
        .any(|v| v.eq_ignore_ascii_case(b"chunked"));
    let mut body = std::mem::take(&mut o.body);
    let mut ka = keep;
    if chunked {
        // The service promised chunks; the buffered body is sent as one.
        res.remove("transfer-encoding");
        res.add("content-length", body.len().to_string().as_bytes());
    } else if !has_len {
        res.add("content-length", body.len().to_string().as_bytes());
    } else if res
        .values("content-length")
        .first()
        .and_then(|v| std::str::from_utf8(v).ok()?.parse::<usize>().ok())
        != Some(body.len())
    {
        // A declared length that does not match the body: close after it.
        ka = false;
    }
    if method_is_head(txn) {
        body.clear();
    }
    let mut buf = Vec::with_capacity(256 + body.len());
    http::write_response_head(&mut buf, &res, client_minor, ka);
    buf.extend_from_slice(&body);
    let ok = client.write_all(&buf, client_to).await.is_ok();
    txn.borrow_mut().res = Some(res);
    Some((o.status, buf.len() as u64, ka && ok))
}

fn method_is_head(txn: &TxnHandle) -> bool {
    txn.borrow().req.method == "HEAD"
}

/// Forwards one request to the backend and the response back. Returns
/// (status, bytes sent to the client, whether the client connection stays).
#[allow(clippy::too_many_arguments)]
async fn forward_http(
    g: &Generation,
    ctl: &ThreadCtl,
    fe_idx: usize,
    be_idx: usize,
    client: &mut Conn,
    txn: &TxnHandle,
    framing: Framing,
    body_buffered: bool,
    keep: bool,
    client_minor: u8,
    method: &str,
    timing: &Timing,
) -> (u16, u64, bool) {
    let fe = &g.cfg.sections[fe_idx];
    let be = &g.cfg.sections[be_idx];
    let client_to = fe.timeouts.client;
    let server_to = be.timeouts.server;
    let bufsize = g.cfg.global.bufsize;
    if be.forwardfor {
        let ip = txn.borrow().src.ip().to_string();
        txn.borrow_mut().req.add("x-forwarded-for", ip.as_bytes());
    }
    let mut head_bytes = Vec::with_capacity(512);
    {
        // Rules and scripts may have touched the framing fields: the
        // server must see exactly the framing the body is sent with.
        let mut st = txn.borrow_mut();
        let blen = st.req_body.len();
        let (want_cl, want_te) = match framing {
            _ if body_buffered && blen > 0 => (Some(blen as u64), false),
            Framing::Length(n) => (Some(n), false),
            Framing::Chunked => (None, true),
            _ => (None, false),
        };
        let cur_te = st.req.value_iter("transfer-encoding").next().is_some();
        let cl_ok = {
            let mut cur_cl = st.req.value_iter("content-length");
            match (want_cl, cur_cl.next(), cur_cl.next()) {
                (Some(n), Some(v), None) => v == n.to_string().as_bytes(),
                (None, None, _) => true,
                _ => false,
            }
        };
        if !cl_ok || cur_te != want_te {
            st.req.remove("content-length");
            st.req.remove("transfer-encoding");
            if let Some(n) = want_cl {
                st.req.add("content-length", n.to_string().as_bytes());
            }
            if want_te {
                st.req.add("transfer-encoding", b"chunked");
            }
        }
        let st = &*st;
        http::write_request_head(&mut head_bytes, &st.req);
        if body_buffered {
            head_bytes.extend_from_slice(&st.req_body);
        }
    }
    let order = server_order(g, be_idx, txn.borrow().src);
    let attempts = (be.retries as usize + 1).min(order.len().max(1));
    let mut server: Option<(usize, Conn, bool)> = None;
    for &si in order.iter().take(attempts.max(1)) {
        let srv = &be.servers[si];
        if let Some(c) = ctl.take_idle(srv.addr) {
            server = Some((si, c, true));
            break;
        }
        match connect_server(srv, be.timeouts.connect).await {
            Ok(s) => {
                server = Some((si, Conn::new(s), false));
                break;
            }
            Err(e) => g
                .shared()
                .log(4, &format!("{}/{}: connect failed: {e}", be.name, srv.name)),
        }
    }
    let Some((mut si, mut sconn, mut reused)) = server else {
        let out = http::error_response(503);
        let _ = client.write_all(&out, client_to).await;
        return (503, out.len() as u64, false);
    };
    let state = g.servers[be_idx][si].clone();
    state.active.fetch_add(1, Ordering::Relaxed);
    struct Dec(Arc<ServerState>);
    impl Drop for Dec {
        fn drop(&mut self) {
            self.0.active.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let _dec = Dec(state);
    let result: Result<(u16, u64, bool), (u16, String)> = async {
        // Send the head (and buffered body); a reused connection the server
        // closed meanwhile is retried once on a fresh one.
        let mut res;
        loop {
            let sent = sconn.write_all(&head_bytes, server_to).await;
            let r = match sent {
                Ok(()) if !body_buffered => {
                    http::forward_body(client, &mut sconn.io, framing, client_to, server_to)
                        .await
                        .map_err(|e| (400, format!("request body: {e}")))?;
                    http::read_response(&mut sconn, bufsize, server_to).await
                }
                Ok(()) => http::read_response(&mut sconn, bufsize, server_to).await,
                Err(e) => Err(e),
            };
            match r {
                Ok(h) => {
                    res = h;
                    break;
                }
                Err(HttpError::Closed | HttpError::Io(_)) if reused && body_buffered => {
                    reused = false;
                    let srv = &be.servers[si];
                    sconn = Conn::new(
                        connect_server(srv, be.timeouts.connect)
                            .await
                            .map_err(|e| (503, e.to_string()))?,
                    );
                }
                Err(HttpError::Timeout) => return Err((504, "server timeout".to_string())),
                Err(e) => return Err((502, format!("server response: {e}"))),
            }
        }
        // Interim 1xx responses are relayed; 101 is not supported.
        while (100..200).contains(&res.status) {
            if res.status == 101 {
                return Err((502, "protocol upgrade is not supported".into()));
            }
            let mut b = Vec::new();
            http::write_response_head(&mut b, &res, client_minor, true);
            client
                .write_all(&b, client_to)
                .await
                .map_err(|e| (0, e.to_string()))?;
            res = http::read_response(&mut sconn, bufsize, server_to)
                .await
                .map_err(|e| (502, e.to_string()))?;
        }
        timing.head_done.set(Some(Instant::now()));
        let srv_keep = http::response_keep_alive(&res);
        let rframing = http::response_framing(method, &res).map_err(|e| (502, e.to_string()))?;
        {
            let mut st = txn.borrow_mut();
            st.server = Some(be.servers[si].name.as_str().into());
            st.res = Some(res);
            st.phase = Phase::Response;
        }
        // Response rules: backend first, then frontend.
        let mut verdict = run_http_rules(g, be, &be.http_response, txn, Phase::Response).await;
        if be_idx != fe_idx && matches!(verdict, Verdict::Continue | Verdict::Allow) {
            verdict = run_http_rules(g, fe, &fe.http_response, txn, Phase::Response).await;
        }
        match verdict {
            Verdict::Continue | Verdict::Allow | Verdict::Service(_) => {}
            Verdict::Reply { bytes, status, .. } => {
                let status = if status == 403 { 502 } else { status };
                let out = if status == 502 {
                    http::error_response(502)
                } else {
                    force_close(bytes)
                };
                client
                    .write_all(&out, client_to)
                    .await
                    .map_err(|e| (0, e.to_string()))?;
                return Ok((status, out.len() as u64, false));
            }
            Verdict::Close => return Ok((0, 0, false)),
        }
        let ka = keep && rframing != Framing::Close && !ctl.stopping.get();
        let mut out = Vec::with_capacity(512);
        let res_status = {
            let st = txn.borrow();
            let empty = ResHead::default();
            let res = st.res.as_ref().unwrap_or(&empty);
            http::write_response_head(&mut out, res, client_minor, ka);
            res.status
        };
        // Small bodies already received go out with the head in one write.
        if let Framing::Length(n) = rframing
            && sconn.pending().len() as u64 >= n
        {
            out.extend_from_slice(&sconn.pending()[..n as usize]);
            sconn.consume(n as usize);
            client
                .write_all(&out, client_to)
                .await
                .map_err(|e| (0, e.to_string()))?;
            if srv_keep && sconn.pending().is_empty() {
                ctl.put_idle(be.servers[si].addr, sconn);
            }
            return Ok((res_status, out.len() as u64 + n, ka));
        }
        client
            .write_all(&out, client_to)
            .await
            .map_err(|e| (0, e.to_string()))?;
        let sent = http::forward_body(&mut sconn, &mut client.io, rframing, server_to, client_to)
            .await
            .map_err(|e| (0, format!("response body: {e}")))?;
        if srv_keep && rframing != Framing::Close && sconn.pending().is_empty() {
            ctl.put_idle(be.servers[si].addr, sconn);
        }
        Ok((res_status, out.len() as u64 + sent, ka))
    }
    .await;
    let _ = &mut si;
    match result {
        Ok(r) => r,
        Err((0, _)) => (0, 0, false),
        Err((status, msg)) => {
            g.shared()
                .log(4, &format!("{}/{}: {msg}", be.name, be.servers[si].name));
            let out = http::error_response(status);
            let _ = client.write_all(&out, client_to).await;
            (status, out.len() as u64, false)
        }
    }
}

// ---------------------------------------------------------------- TCP

enum TcpVerdict {
    Continue,
    Close,
    Service(String),
}

async fn run_tcp_rules(
    g: &Generation,
    scope: &Section,
    rules: &[Rule<TcpAction>],
    txn: &TxnHandle,
    kind: &str,
) -> TcpVerdict {
    for r in rules {
        if !cond_ok(g, scope, &r.cond, txn) {
            continue;
        }
        let out = match &r.action {
            TcpAction::Accept => return TcpVerdict::Continue,
            TcpAction::Reject => return TcpVerdict::Close,
            TcpAction::UseService(n) => return TcpVerdict::Service(n.clone()),
            TcpAction::SetVar(name, expr) => {
                if let Ok(Some(v)) = expr.eval(&g.eval(txn)) {
                    txn.borrow_mut().set_var(name, v);
                }
                continue;
            }
            TcpAction::Lua(name, args) => g.lua.run_action(name, kind, txn, args).await,
            TcpAction::LuaFn(name) => g.lua.run_function(name, txn).await,
        };
        match out {
            Outcome::Continue => {}
            Outcome::Terminated(_) | Outcome::Failed(_) => return TcpVerdict::Close,
        }
    }
    TcpVerdict::Continue
}

async fn tcp_session(
    g: &Rc<Generation>,
    _ctl: &ThreadCtl,
    fe_idx: usize,
    sock: TcpStream,
    peer: SocketAddr,
    local: SocketAddr,
) {
    let fe = &g.cfg.sections[fe_idx];
    let client_to = fe.timeouts.client;
    let mut client = Conn::new(sock);
    let txn: TxnHandle = Rc::new(RefCell::new(TxnState::new(
        peer,
        local,
        false,
        Rc::default(),
        g.shared().clone(),
        fe.name.as_str().into(),
    )));
    g.shared().total_requests.fetch_add(1, Ordering::Relaxed);
    let timing = Timing {
        start: Instant::now(),
        head_done: Cell::new(None),
    };
    let _release = ReleaseOnDrop(txn.clone());
    if !fe.tcp_request.is_empty()
        && let Some(delay) = fe.inspect_delay
    {
        // Wait (bounded) for the first client data so content rules see it.
        match client.fill(Some(delay)).await {
            Ok(0) => txn.borrow_mut().req_chan.shut = true,
            Ok(_) | Err(HttpError::Timeout) => {}
            Err(_) => return,
        }
    }
    let flush = |txn: &TxnHandle| std::mem::take(&mut txn.borrow_mut().res_chan.immediate);
    {
        let data = client.pending().to_vec();
        client.consume(data.len());
        txn.borrow_mut().req_chan.buf = data;
    }
    let verdict = run_tcp_rules(g, fe, &fe.tcp_request, &txn, "tcp-req").await;
    let pending_out = flush(&txn);
    if !pending_out.is_empty() && client.write_all(&pending_out, client_to).await.is_err() {
        return;
    }
    let terminated = txn.borrow().terminate;
    match verdict {
        TcpVerdict::Close => {
            // `txn:done()` sends what the response channel holds first.
            if terminated == Some(Termination::Done) {
                let rest = txn.borrow_mut().res_chan.take_all();
                let _ = client.write_all(&rest, client_to).await;
            }
            let _ = client.io.shutdown().await;
            log_txn(g, fe, &txn, &timing, pending_out.len() as u64, 0);
            return;
        }
        TcpVerdict::Service(name) => {
            // Unconsumed request bytes go back in front of the socket buffer.
            let back = txn.borrow_mut().req_chan.take_all();
            if !back.is_empty() {
                let rest = client.pending().to_vec();
                client.buf = back;
                client.buf.extend_from_slice(&rest);
                client.pos = 0;
            }
            let io = Rc::new(RefCell::new(TcpClient {
                conn: Some(client),
                timeout: client_to,
            }));
            let out = g.lua.run_tcp_service(&name, &txn, io.clone()).await;
            let conn = io.borrow_mut().conn.take();
            if let Some(mut c) = conn {
                let _ = c.io.shutdown().await;
            }
            let _ = out;
            log_txn(g, fe, &txn, &timing, 0, 0);
            return;
        }
        TcpVerdict::Continue => {}
    }
    let Some(be_idx) = select_backend(g, fe_idx, &txn) else {
        let _ = client.io.shutdown().await;
        return;
    };
    let be = &g.cfg.sections[be_idx];
    txn.borrow_mut().backend = Some(be.name.as_str().into());
    let order = server_order(g, be_idx, peer);
    let mut server = None;
    for &si in order.iter().take(be.retries as usize + 1) {
        match connect_server(&be.servers[si], be.timeouts.connect).await {
            Ok(s) => {
                server = Some((si, s));
                break;
            }
            Err(e) => g.shared().log(
                4,
                &format!("{}/{}: connect failed: {e}", be.name, be.servers[si].name),
            ),
        }
    }
    let Some((si, mut srv)) = server else {
        let _ = client.io.shutdown().await;
        log_txn(g, fe, &txn, &timing, 0, 503);
        return;
    };
    txn.borrow_mut().server = Some(be.servers[si].name.as_str().into());
    let first = txn.borrow_mut().req_chan.take_all();
    if !first.is_empty() && srv.write_all(&first).await.is_err() {
        return;
    }
    let rest = client.pending().to_vec();
    client.consume(rest.len());
    if !rest.is_empty() && srv.write_all(&rest).await.is_err() {
        return;
    }
    let server_to = be.timeouts.server;
    let (mut cr, mut cw) = client.io.into_split();
    let (mut sr, mut sw) = srv.into_split();
    // Client to server runs on its own while the response side may first
    // go through tcp-response content rules.
    let up = tokio::task::spawn_local(async move { pump(&mut cr, &mut sw, client_to).await });
    let res_rules: Vec<Rule<TcpAction>> = be
        .tcp_response
        .iter()
        .chain(if be_idx != fe_idx {
            fe.tcp_response.iter()
        } else {
            [].iter()
        })
        .cloned()
        .collect();
    let mut sent = 0u64;
    if !res_rules.is_empty() {
        let mut buf = vec![0u8; 16384];
        let n = match server_to {
            Some(t) => tokio::time::timeout(t, sr.read(&mut buf))
                .await
                .unwrap_or(Ok(0)),
            None => sr.read(&mut buf).await,
        }
        .unwrap_or(0);
        {
            let mut st = txn.borrow_mut();
            st.res_chan.buf = buf[..n].to_vec();
            st.res_chan.shut = n == 0;
            st.phase = Phase::Response;
        }
        let v = run_tcp_rules(g, be, &res_rules, &txn, "tcp-res").await;
        let mut out = flush(&txn);
        out.extend(txn.borrow_mut().res_chan.take_all());
        if !out.is_empty() && cw.write_all(&out).await.is_err() {
            up.abort();
            return;
        }
        sent += out.len() as u64;
        if matches!(v, TcpVerdict::Close) || n == 0 {
            let _ = cw.shutdown().await;
            up.abort();
            log_txn(g, fe, &txn, &timing, sent, 0);
            return;
        }
    }
    sent += pump(&mut sr, &mut cw, server_to).await;
    let _ = up.await;
    log_txn(g, fe, &txn, &timing, sent, 0);
}

/// Copies one direction until EOF, error or idle timeout, then shuts the
/// write side down; returns bytes copied.
async fn pump(
    r: &mut tokio::net::tcp::OwnedReadHalf,
    w: &mut tokio::net::tcp::OwnedWriteHalf,
    to: Option<Duration>,
) -> u64 {
    let mut buf = vec![0u8; 16384];
    let mut total = 0;
    loop {
        let n = match to {
            Some(t) => match tokio::time::timeout(t, r.read(&mut buf)).await {
                Ok(Ok(n)) => n,
                _ => 0,
            },
            None => r.read(&mut buf).await.unwrap_or(0),
        };
        if n == 0 || w.write_all(&buf[..n]).await.is_err() {
            let _ = w.shutdown().await;
            return total;
        }
        total += n as u64;
    }
}

/// Periodic TCP connect checks for servers with `check`.
pub async fn health_checks(g: Rc<Generation>) {
    let mut checks = Vec::new();
    for (bi, s) in g.cfg.sections.iter().enumerate() {
        for (si, srv) in s.servers.iter().enumerate() {
            if srv.check {
                checks.push((bi, si));
            }
        }
    }
    if checks.is_empty() {
        return;
    }
    loop {
        for &(bi, si) in &checks {
            let s = &g.cfg.sections[bi];
            let srv = &s.servers[si];
            let to = s
                .timeouts
                .connect
                .unwrap_or(Duration::from_secs(2))
                .min(srv.inter);
            let up = connect_server(srv, Some(to)).await.is_ok();
            let state = &g.servers[bi][si];
            if state.up.swap(up, Ordering::Relaxed) != up {
                g.shared().log(
                    if up { 5 } else { 1 },
                    &format!(
                        "Server {}/{} is {}",
                        s.name,
                        srv.name,
                        if up { "UP" } else { "DOWN" }
                    ),
                );
            }
        }
        let inter = checks
            .iter()
            .map(|&(b, s)| g.cfg.sections[b].servers[s].inter)
            .min()
            .unwrap_or(Duration::from_secs(2));
        tokio::time::sleep(inter).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn haproxy_date_format() {
        assert_eq!(super::haproxy_date(0, 5), "01/Jan/1970:00:00:00.005");
        assert_eq!(
            super::haproxy_date(1_795_457_971, 123),
            "23/Nov/2026:18:19:31.123"
        );
        assert_eq!(
            super::haproxy_date(951_782_400, 0),
            "29/Feb/2000:00:00:00.000"
        );
    }
}
