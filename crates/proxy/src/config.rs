//! HAProxy configuration files: sections (`global`, `defaults`, `frontend`,
//! `backend`, `listen`), keywords, ACLs, rules and log-format strings.
//! Every error names `file:line`.

use std::collections::HashMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::sample::{
    Acl, AclScope, Cond, Expr, LogFormat, LuaNames, parse_acl, parse_cond, parse_expr,
};

/// A position in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loc {
    /// File name as given.
    pub file: Arc<str>,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// A configuration error at a position.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{loc}: {msg}")]
pub struct ConfigError {
    /// Where.
    pub loc: Loc,
    /// What.
    pub msg: String,
}

/// Names scripts registered, for checking references in rules.
pub trait ScriptNames: LuaNames {
    /// `core.register_action(name, {kind...})` with `kind` among http-req,
    /// http-res, tcp-req, tcp-res.
    fn has_action(&self, name: &str, kind: &str) -> bool;
    /// `core.register_service(name, "http"|"tcp")`.
    fn has_service(&self, name: &str, http: bool) -> bool;
    /// A global Lua function (seed-era `http-request lua fn`).
    fn has_function(&self, name: &str) -> bool;
}

impl ScriptNames for crate::sample::AnyLuaNames {
    fn has_action(&self, _: &str, _: &str) -> bool {
        true
    }
    fn has_service(&self, _: &str, _: bool) -> bool {
        true
    }
    fn has_function(&self, _: &str) -> bool {
        true
    }
}

/// Proxy mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// HTTP/1.1 parsing and rules.
    Http,
    /// Opaque TCP streams.
    Tcp,
}

/// The `timeout` settings.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeouts {
    /// `timeout connect`.
    pub connect: Option<Duration>,
    /// `timeout client`.
    pub client: Option<Duration>,
    /// `timeout server`.
    pub server: Option<Duration>,
    /// `timeout http-request`.
    pub http_request: Option<Duration>,
    /// `timeout http-keep-alive`.
    pub http_keep_alive: Option<Duration>,
}

/// Load-balancing algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Balance {
    /// Weighted round robin.
    RoundRobin,
    /// Fewest active connections.
    LeastConn,
    /// First usable server.
    First,
    /// Hash of the client address.
    Source,
}

/// A `server` line.
#[derive(Debug, Clone)]
pub struct Server {
    /// Name.
    pub name: String,
    /// Address.
    pub addr: SocketAddr,
    /// Address as written.
    pub addr_text: String,
    /// `check`.
    pub check: bool,
    /// `weight` (default 1).
    pub weight: u32,
    /// `inter` (check interval, default 2s).
    pub inter: Duration,
    /// Where declared.
    pub loc: Loc,
}

/// A `bind` line's addresses.
#[derive(Debug, Clone)]
pub struct Bind {
    /// Every address (port ranges expanded).
    pub addrs: Vec<SocketAddr>,
    /// Where declared.
    pub loc: Loc,
}

/// Native and Lua HTTP actions.
#[derive(Debug, Clone)]
pub enum HttpAction {
    /// `set-header NAME FMT`.
    SetHeader(String, LogFormat),
    /// `add-header NAME FMT`.
    AddHeader(String, LogFormat),
    /// `del-header NAME`.
    DelHeader(String),
    /// `replace-header NAME REGEX REPL`.
    ReplaceHeader(String, lua::Pcre, String),
    /// `replace-value NAME REGEX REPL`.
    ReplaceValue(String, lua::Pcre, String),
    /// `set-path FMT`.
    SetPath(LogFormat),
    /// `set-query FMT`.
    SetQuery(LogFormat),
    /// `set-uri FMT`.
    SetUri(LogFormat),
    /// `set-method FMT`.
    SetMethod(LogFormat),
    /// `set-var(scope.name) EXPR`.
    SetVar(String, Expr),
    /// `unset-var(scope.name)`.
    UnsetVar(String),
    /// `deny [deny_status N]`.
    Deny(u16),
    /// `allow`: stop evaluating rules.
    Allow,
    /// `return [status N] [content-type T] [string S | lf-string FMT]`.
    Return {
        /// Status.
        status: u16,
        /// Content type.
        content_type: Option<String>,
        /// Body.
        body: LogFormat,
    },
    /// `redirect location|prefix X [code N]`.
    Redirect {
        /// True for `prefix`.
        prefix: bool,
        /// Target.
        target: LogFormat,
        /// Status code.
        code: u16,
    },
    /// `set-status N [reason R]`.
    SetStatus(u16, Option<String>),
    /// `lua.NAME args...`.
    Lua(String, Vec<String>),
    /// Seed-era `lua FUNCTION`: a global function called with the TXN.
    LuaFn(String),
    /// `use-service lua.NAME`.
    UseService(String),
    /// `set-log-level LEVEL`.
    SetLogLevel(u8),
}

/// TCP content actions.
#[derive(Debug, Clone)]
pub enum TcpAction {
    /// `accept`.
    Accept,
    /// `reject`.
    Reject,
    /// `lua.NAME args...`.
    Lua(String, Vec<String>),
    /// `lua FUNCTION`.
    LuaFn(String),
    /// `use-service lua.NAME`.
    UseService(String),
    /// `set-var(scope.name) EXPR`.
    SetVar(String, Expr),
}

/// A rule: an action under an optional condition.
#[derive(Debug, Clone)]
pub struct Rule<A> {
    /// What to do.
    pub action: A,
    /// When.
    pub cond: Option<Cond>,
    /// Where declared.
    pub loc: Loc,
}

/// What a section is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SectionKind {
    /// `defaults`.
    Defaults,
    /// `frontend`.
    Frontend,
    /// `backend`.
    Backend,
    /// `listen` (both).
    Listen,
}

/// A `frontend`, `backend`, `listen` (or `defaults`) section.
#[derive(Debug, Clone)]
pub struct Section {
    /// Kind.
    pub kind: SectionKind,
    /// Name.
    pub name: String,
    /// Where it starts.
    pub loc: Loc,
    /// `mode`.
    pub mode: Mode,
    /// `bind` lines.
    pub binds: Vec<Bind>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// `default_backend`.
    pub default_backend: Option<(String, Loc)>,
    /// `use_backend NAME [cond]`.
    pub use_backends: Vec<Rule<String>>,
    /// Named ACLs.
    pub acls: HashMap<String, Vec<Acl>>,
    /// Servers.
    pub servers: Vec<Server>,
    /// Balance.
    pub balance: Balance,
    /// `http-request` rules.
    pub http_request: Vec<Rule<HttpAction>>,
    /// `http-response` rules.
    pub http_response: Vec<Rule<HttpAction>>,
    /// `tcp-request content` rules.
    pub tcp_request: Vec<Rule<TcpAction>>,
    /// `tcp-response content` rules.
    pub tcp_response: Vec<Rule<TcpAction>>,
    /// `tcp-request inspect-delay`.
    pub inspect_delay: Option<Duration>,
    /// `log-format` (or `option httplog`'s format).
    pub log_format: Option<LogFormat>,
    /// `log global` / any log line in the section.
    pub log: bool,
    /// `option forwardfor`.
    pub forwardfor: bool,
    /// `option http-buffer-request`.
    pub buffer_request: bool,
    /// `retries`.
    pub retries: u32,
}

impl AclScope for Section {
    fn acls(&self, name: &str) -> Option<&[Acl]> {
        self.acls.get(name).map(Vec::as_slice)
    }
}

impl Section {
    fn new(kind: SectionKind, name: &str, loc: Loc, defaults: Option<&Section>) -> Section {
        let mut s = Section {
            kind,
            name: name.to_string(),
            loc,
            mode: Mode::Tcp,
            binds: Vec::new(),
            timeouts: Timeouts::default(),
            default_backend: None,
            use_backends: Vec::new(),
            acls: HashMap::new(),
            servers: Vec::new(),
            balance: Balance::RoundRobin,
            http_request: Vec::new(),
            http_response: Vec::new(),
            tcp_request: Vec::new(),
            tcp_response: Vec::new(),
            inspect_delay: None,
            log_format: None,
            log: false,
            forwardfor: false,
            buffer_request: false,
            retries: 3,
        };
        if let Some(d) = defaults {
            s.mode = d.mode;
            s.timeouts = d.timeouts;
            s.balance = d.balance;
            s.log_format = d.log_format.clone();
            s.log = d.log;
            s.forwardfor = d.forwardfor;
            s.buffer_request = d.buffer_request;
            s.retries = d.retries;
            if kind != SectionKind::Backend {
                s.default_backend = d.default_backend.clone();
            }
        }
        s
    }

    /// Whether it accepts connections.
    pub fn is_frontend(&self) -> bool {
        matches!(self.kind, SectionKind::Frontend | SectionKind::Listen)
    }

    /// Whether it has servers to forward to.
    pub fn is_backend(&self) -> bool {
        matches!(self.kind, SectionKind::Backend | SectionKind::Listen)
    }
}

/// A file to load into Lua.
#[derive(Debug, Clone)]
pub struct LuaFile {
    /// Path.
    pub path: PathBuf,
    /// Extra arguments after the path (passed as `...` to the chunk).
    pub args: Vec<String>,
    /// `lua-load-per-thread` (else `lua-load`).
    pub per_thread: bool,
    /// Where declared.
    pub loc: Loc,
}

/// The `global` section.
#[derive(Debug, Clone)]
pub struct Global {
    /// `lua-load` and `lua-load-per-thread` in order.
    pub lua_files: Vec<LuaFile>,
    /// `lua-prepend-path` entries: (path pattern, is cpath).
    pub lua_prepend_path: Vec<(String, bool)>,
    /// `tune.lua.maxmem` in bytes (0: no cap).
    pub lua_maxmem: usize,
    /// `tune.lua.forced-yield` instructions.
    pub forced_yield: u32,
    /// `tune.lua.session-timeout`.
    pub session_timeout: Duration,
    /// `tune.lua.service-timeout`.
    pub service_timeout: Duration,
    /// `tune.lua.task-timeout` (None: unlimited).
    pub task_timeout: Option<Duration>,
    /// `tune.lua.burst-timeout`.
    pub burst_timeout: Duration,
    /// `tune.lua.openlibs`.
    pub openlibs: String,
    /// `nbthread`.
    pub nbthread: usize,
    /// `log stderr|stdout` present.
    pub log_stderr: bool,
    /// `tune.bufsize`.
    pub bufsize: usize,
    /// `maxconn`.
    pub maxconn: usize,
}

impl Default for Global {
    fn default() -> Self {
        Global {
            lua_files: Vec::new(),
            lua_prepend_path: Vec::new(),
            lua_maxmem: 0,
            forced_yield: 10_000,
            session_timeout: Duration::from_secs(4),
            service_timeout: Duration::from_secs(4),
            task_timeout: None,
            burst_timeout: Duration::from_millis(1000),
            openlibs: "all".to_string(),
            nbthread: 1,
            log_stderr: false,
            bufsize: 16384,
            maxconn: 100_000,
        }
    }
}

/// A parsed configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The `global` section.
    pub global: Global,
    /// Frontends, backends and listens in file order.
    pub sections: Vec<Section>,
    /// Warnings (keywords accepted but without effect here).
    pub warnings: Vec<String>,
    /// The files read.
    pub files: Vec<PathBuf>,
}

impl Config {
    /// A section by name that can serve as a backend.
    pub fn backend(&self, name: &str) -> Option<&Section> {
        self.sections
            .iter()
            .find(|s| s.is_backend() && s.name == name)
    }
}

/// Splits a line into words with HAProxy's quoting: `"..."` (with
/// backslash escapes), `'...'` (literal), `\x` escapes, `#` comments.
pub fn tokenize(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => break,
            ' ' | '\t' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some(n @ (' ' | '#' | '\\' | '"' | '\'')) => cur.push(n),
                    Some(n) => {
                        // Other escapes (`\1` back-references) stay as written.
                        cur.push('\\');
                        cur.push(n);
                    }
                    None => cur.push('\\'),
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => cur.push('\n'),
                            Some('r') => cur.push('\r'),
                            Some('t') => cur.push('\t'),
                            Some(n) => {
                                // Keep regex escapes like `\.` intact.
                                if !matches!(n, '"' | '\\' | '#' | '$' | '\'' | ' ') {
                                    cur.push('\\');
                                }
                                cur.push(n)
                            }
                            None => return Err("unterminated quote".into()),
                        },
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated double quote".into()),
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(ch) => cur.push(ch),
                        None => return Err("unterminated single quote".into()),
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Parses a time like `5s`, `500ms`, `2m` (default unit: milliseconds).
pub fn parse_time(text: &str) -> Result<Duration, String> {
    let idx = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(idx);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("invalid time value '{text}'"))?;
    Ok(match unit {
        "" | "ms" => Duration::from_millis(n),
        "us" => Duration::from_micros(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        "d" => Duration::from_secs(n * 86400),
        _ => return Err(format!("invalid time unit in '{text}'")),
    })
}

/// Parses a size like `1024`, `64k`, `256m`.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let idx = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (num, unit) = text.split_at(idx);
    let n: usize = num.parse().map_err(|_| format!("invalid size '{text}'"))?;
    Ok(match unit.to_ascii_lowercase().as_str() {
        "" => n,
        "k" => n << 10,
        "m" => n << 20,
        "g" => n << 30,
        _ => return Err(format!("invalid size unit in '{text}'")),
    })
}

/// Parses one `bind` address word: `:80`, `*:80`, `1.2.3.4:80-82`,
/// `:::80`, `[::1]:80`, `ipv6@:80`, `ipv4@1.2.3.4:80`.
pub fn parse_bind_addr(word: &str) -> Result<Vec<SocketAddr>, String> {
    let mut out = Vec::new();
    for part in word.split(',') {
        let (family6, rest) = if let Some(r) = part.strip_prefix("ipv6@") {
            (Some(true), r)
        } else if let Some(r) = part.strip_prefix("ipv4@") {
            (Some(false), r)
        } else {
            (None, part)
        };
        let colon = rest
            .rfind(':')
            .ok_or_else(|| format!("missing port in bind address '{part}'"))?;
        let (host, ports) = (&rest[..colon], &rest[colon + 1..]);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let ip: IpAddr = match host {
            "" | "*" => {
                if family6 == Some(true) {
                    IpAddr::V6(Ipv6Addr::UNSPECIFIED)
                } else {
                    IpAddr::V4(Ipv4Addr::UNSPECIFIED)
                }
            }
            h => match h.parse() {
                Ok(ip) => ip,
                Err(_) => (h, 0)
                    .to_socket_addrs()
                    .ok()
                    .and_then(|mut a| a.next())
                    .map(|a| a.ip())
                    .ok_or_else(|| format!("cannot resolve bind address '{h}'"))?,
            },
        };
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (a, b),
            None => (ports, ports),
        };
        let lo: u16 = lo
            .parse()
            .map_err(|_| format!("invalid port in '{part}'"))?;
        let hi: u16 = hi
            .parse()
            .map_err(|_| format!("invalid port in '{part}'"))?;
        if hi < lo || hi - lo > 1024 {
            return Err(format!("invalid port range in '{part}'"));
        }
        for p in lo..=hi {
            out.push(SocketAddr::new(ip, p));
        }
    }
    Ok(out)
}

/// Keywords HAProxy knows that have no effect here (accepted with a warning).
const IGNORED: &[&str] = &[
    "daemon",
    "user",
    "group",
    "chroot",
    "pidfile",
    "stats",
    "ca-base",
    "crt-base",
    "ssl-default-bind-ciphers",
    "ssl-default-bind-options",
    "ssl-default-bind-ciphersuites",
    "ssl-default-server-options",
    "ssl-default-server-ciphers",
    "tune.maxrewrite",
    "tune.ssl.default-dh-param",
    "description",
    "hash-type",
    "errorfile",
    "http-reuse",
    "cookie",
    "compression",
    "monitor-uri",
    "capture",
    "unique-id-format",
    "unique-id-header",
    "fullconn",
    "maxconn",
    "spread-checks",
    "master-worker",
    "node",
    "uid",
    "gid",
    "ulimit-n",
    "cpu-map",
    "hard-stop-after",
    "email-alert",
    "http-check",
    "default-server",
    "stick-table",
    "stick",
    "resolvers",
    "id",
    "dispatch",
    "grace",
    "rate-limit",
    "timeout",
];

/// Parses configuration files in order (several `-f`).
pub fn parse_files(paths: &[PathBuf], names: &dyn ScriptNames) -> Result<Config, ConfigError> {
    let mut texts = Vec::new();
    for p in paths {
        let text = std::fs::read_to_string(p).map_err(|e| ConfigError {
            loc: Loc {
                file: p.display().to_string().into(),
                line: 0,
            },
            msg: format!("cannot read configuration file: {e}"),
        })?;
        texts.push((p.clone(), text));
    }
    let refs: Vec<(&Path, &str)> = texts
        .iter()
        .map(|(p, t)| (p.as_path(), t.as_str()))
        .collect();
    parse_texts(&refs, names)
}

enum Cur {
    None,
    Global,
    Section(Box<Section>),
}

/// Parses configuration texts (file name, contents).
pub fn parse_texts(
    files: &[(&Path, &str)],
    names: &dyn ScriptNames,
) -> Result<Config, ConfigError> {
    let mut cfg = Config {
        global: Global::default(),
        sections: Vec::new(),
        warnings: Vec::new(),
        files: files.iter().map(|(p, _)| p.to_path_buf()).collect(),
    };
    let mut defaults: Option<Section> = None;
    for (path, text) in files {
        let file: Arc<str> = path.display().to_string().into();
        let mut cur = Cur::None;
        for (i, raw) in text.lines().enumerate() {
            let loc = Loc {
                file: file.clone(),
                line: i + 1,
            };
            let err = |msg: String| ConfigError {
                loc: loc.clone(),
                msg,
            };
            let words = tokenize(raw).map_err(err)?;
            if words.is_empty() {
                continue;
            }
            let kw = words[0].as_str();
            let section_start = match kw {
                "global" => Some(None),
                "defaults" => Some(Some(SectionKind::Defaults)),
                "frontend" => Some(Some(SectionKind::Frontend)),
                "backend" => Some(Some(SectionKind::Backend)),
                "listen" => Some(Some(SectionKind::Listen)),
                _ => None,
            };
            if let Some(kind) = section_start {
                finish(
                    &mut cfg,
                    &mut defaults,
                    std::mem::replace(&mut cur, Cur::None),
                );
                cur = match kind {
                    None => Cur::Global,
                    Some(k) => {
                        let name = words.get(1).cloned().unwrap_or_default();
                        if name.is_empty() && k != SectionKind::Defaults {
                            return Err(err(format!("'{kw}' needs a name")));
                        }
                        if k != SectionKind::Defaults
                            && cfg.sections.iter().any(|s| {
                                s.name == name
                                    && (s.is_frontend() && k != SectionKind::Backend
                                        || s.is_backend() && k != SectionKind::Frontend)
                            })
                        {
                            return Err(err(format!(
                                "{kw} '{name}' has the same name as another proxy"
                            )));
                        }
                        Cur::Section(Box::new(Section::new(
                            k,
                            &name,
                            loc.clone(),
                            defaults.as_ref(),
                        )))
                    }
                };
                continue;
            }
            match &mut cur {
                Cur::None => return Err(err(format!("unknown keyword '{kw}' out of section"))),
                Cur::Global => global_kw(&mut cfg, &words, &loc).map_err(err)?,
                Cur::Section(sec) => {
                    section_kw(sec, &words, &loc, names, &mut cfg.warnings).map_err(err)?
                }
            }
        }
        finish(&mut cfg, &mut defaults, cur);
    }
    validate(&cfg, names)?;
    Ok(cfg)
}

fn finish(cfg: &mut Config, defaults: &mut Option<Section>, cur: Cur) {
    if let Cur::Section(s) = cur {
        if s.kind == SectionKind::Defaults {
            *defaults = Some(*s);
        } else {
            cfg.sections.push(*s);
        }
    }
}

fn arg<'a>(words: &'a [String], i: usize, what: &str) -> Result<&'a str, String> {
    words
        .get(i)
        .map(String::as_str)
        .ok_or_else(|| format!("'{}' expects {what}", words[0]))
}

fn global_kw(cfg: &mut Config, words: &[String], loc: &Loc) -> Result<(), String> {
    let g = &mut cfg.global;
    match words[0].as_str() {
        "lua-load" | "lua-load-per-thread" => {
            let path = arg(words, 1, "a file name")?;
            if std::fs::metadata(path).is_err() {
                return Err(format!("{}: cannot open Lua file '{path}'", words[0]));
            }
            g.lua_files.push(LuaFile {
                path: PathBuf::from(path),
                args: words[2..].to_vec(),
                per_thread: words[0] == "lua-load-per-thread",
                loc: loc.clone(),
            });
        }
        "lua-prepend-path" => {
            let p = arg(words, 1, "a path")?;
            let cpath = match words.get(2).map(String::as_str) {
                None | Some("path") => false,
                Some("cpath") => true,
                Some(o) => {
                    return Err(format!(
                        "lua-prepend-path: unknown type '{o}' (path or cpath)"
                    ));
                }
            };
            g.lua_prepend_path.push((p.to_string(), cpath));
        }
        "tune.lua.maxmem" => {
            // HAProxy's unit is megabytes.
            let v = arg(words, 1, "a size in megabytes")?;
            g.lua_maxmem = v
                .parse::<usize>()
                .map_err(|_| format!("tune.lua.maxmem: invalid value '{v}'"))?
                << 20;
        }
        "tune.lua.forced-yield" => {
            let v = arg(words, 1, "a number")?;
            g.forced_yield = v
                .parse()
                .map_err(|_| format!("tune.lua.forced-yield: invalid value '{v}'"))?;
            if g.forced_yield == 0 {
                return Err("tune.lua.forced-yield must be positive".into());
            }
        }
        "tune.lua.session-timeout" => g.session_timeout = parse_time(arg(words, 1, "a time")?)?,
        "tune.lua.service-timeout" => g.service_timeout = parse_time(arg(words, 1, "a time")?)?,
        "tune.lua.task-timeout" => g.task_timeout = Some(parse_time(arg(words, 1, "a time")?)?),
        "tune.lua.burst-timeout" => g.burst_timeout = parse_time(arg(words, 1, "a time")?)?,
        "tune.lua.openlibs" => {
            let v = words[1..].join(",");
            lua::LibSet::parse(&v).map_err(|e| e.to_string())?;
            g.openlibs = v;
        }
        "tune.bufsize" => {
            g.bufsize = parse_size(arg(words, 1, "a size")?)?;
            if g.bufsize < 1024 {
                return Err("tune.bufsize must be at least 1024".into());
            }
        }
        "nbthread" => {
            let v = arg(words, 1, "a number")?;
            g.nbthread = v
                .parse()
                .map_err(|_| format!("nbthread: invalid value '{v}'"))?;
            if g.nbthread == 0 || g.nbthread > 256 {
                return Err("nbthread must be between 1 and 256".into());
            }
        }
        "maxconn" => {
            let v = arg(words, 1, "a number")?;
            g.maxconn = v
                .parse()
                .map_err(|_| format!("maxconn: invalid value '{v}'"))?;
        }
        "log" => match arg(words, 1, "a target")? {
            "stderr" | "stdout" => g.log_stderr = true,
            t => cfg.warnings.push(format!(
                "{loc}: log target '{t}' is not supported; logs go to stderr"
            )),
        },
        kw if IGNORED.contains(&kw) || kw.starts_with("tune.") || kw.starts_with("ssl-") => {
            cfg.warnings
                .push(format!("{loc}: keyword '{kw}' has no effect in moonwire"));
        }
        kw => return Err(format!("unknown keyword '{kw}' in 'global' section")),
    }
    Ok(())
}

/// Splits `words` at `if`/`unless` into (action words, condition).
fn split_cond(
    words: &[String],
    names: &dyn LuaNames,
) -> Result<(Vec<String>, Option<Cond>), String> {
    match words.iter().position(|w| w == "if" || w == "unless") {
        Some(i) => {
            if i + 1 >= words.len() {
                return Err(format!("missing condition after '{}'", words[i]));
            }
            let cond = parse_cond(words[i] == "unless", &words[i + 1..], names)?;
            Ok((words[..i].to_vec(), Some(cond)))
        }
        None => Ok((words.to_vec(), None)),
    }
}

fn var_name(word: &str, prefix: &str) -> Result<String, String> {
    let inner = word
        .strip_prefix(prefix)
        .and_then(|r| r.strip_prefix('('))
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| format!("expected {prefix}(scope.name)"))?;
    let inner = inner.split(',').next().unwrap_or("");
    match inner.split_once('.') {
        Some(("proc" | "sess" | "txn" | "req" | "res", n)) if !n.is_empty() => {
            Ok(inner.to_string())
        }
        _ => Err(format!(
            "invalid variable name '{inner}' (scope.name with scope proc, sess, txn, req or res)"
        )),
    }
}

fn parse_http_action(
    a: &[String],
    response: bool,
    names: &dyn ScriptNames,
) -> Result<HttpAction, String> {
    let kw = a.first().ok_or("missing action")?.as_str();
    let kind = if response { "http-res" } else { "http-req" };
    let lf =
        |i: usize| -> Result<LogFormat, String> { LogFormat::parse(arg(a, i, "a value")?, names) };
    Ok(match kw {
        "set-header" => HttpAction::SetHeader(arg(a, 1, "a header name")?.to_string(), lf(2)?),
        "add-header" => HttpAction::AddHeader(arg(a, 1, "a header name")?.to_string(), lf(2)?),
        "del-header" => HttpAction::DelHeader(arg(a, 1, "a header name")?.to_string()),
        "replace-header" | "replace-value" => {
            let name = arg(a, 1, "a header name")?.to_string();
            let re = lua::Pcre::new(arg(a, 2, "a regex")?).map_err(|e| e.to_string())?;
            let repl = arg(a, 3, "a replacement")?.to_string();
            if kw == "replace-header" {
                HttpAction::ReplaceHeader(name, re, repl)
            } else {
                HttpAction::ReplaceValue(name, re, repl)
            }
        }
        "set-path" if !response => HttpAction::SetPath(lf(1)?),
        "set-query" if !response => HttpAction::SetQuery(lf(1)?),
        "set-uri" if !response => HttpAction::SetUri(lf(1)?),
        "set-method" if !response => HttpAction::SetMethod(lf(1)?),
        k if k.starts_with("set-var(") => HttpAction::SetVar(
            var_name(k, "set-var")?,
            parse_expr(arg(a, 1, "an expression")?, names)?,
        ),
        k if k.starts_with("unset-var(") => HttpAction::UnsetVar(var_name(k, "unset-var")?),
        "deny" => {
            let mut status = 403;
            if a.get(1).map(String::as_str) == Some("deny_status") {
                status = arg(a, 2, "a status")?
                    .parse()
                    .map_err(|_| "invalid deny_status".to_string())?;
            }
            HttpAction::Deny(status)
        }
        "allow" => HttpAction::Allow,
        "return" => {
            let mut status = 200;
            let mut content_type = None;
            let mut body = LogFormat::default();
            let mut i = 1;
            while i < a.len() {
                match a[i].as_str() {
                    "status" => {
                        status = arg(a, i + 1, "a status")?
                            .parse()
                            .map_err(|_| "invalid status".to_string())?
                    }
                    "content-type" => {
                        content_type = Some(arg(a, i + 1, "a content type")?.to_string())
                    }
                    "string" => {
                        body = LogFormat {
                            parts: vec![crate::sample::FmtPart::Lit(
                                arg(a, i + 1, "a string")?.to_string(),
                            )],
                        }
                    }
                    "lf-string" => body = lf(i + 1)?,
                    o => return Err(format!("return: unknown option '{o}'")),
                }
                i += 2;
            }
            HttpAction::Return {
                status,
                content_type,
                body,
            }
        }
        "redirect" => {
            let prefix = match arg(a, 1, "location, prefix or scheme")? {
                "location" => false,
                "prefix" => true,
                o => {
                    return Err(format!(
                        "redirect: unsupported type '{o}' (location or prefix)"
                    ));
                }
            };
            let target = lf(2)?;
            let mut code = 302;
            let mut i = 3;
            while i < a.len() {
                if a[i] == "code" {
                    code = arg(a, i + 1, "a code")?
                        .parse()
                        .map_err(|_| "invalid redirect code".to_string())?;
                    i += 2;
                } else {
                    i += 1;
                }
            }
            HttpAction::Redirect {
                prefix,
                target,
                code,
            }
        }
        "set-status" if response => {
            let code: u16 = arg(a, 1, "a status")?
                .parse()
                .map_err(|_| "invalid status".to_string())?;
            if !(100..=999).contains(&code) {
                return Err("invalid status".into());
            }
            let reason = if a.get(2).map(String::as_str) == Some("reason") {
                Some(arg(a, 3, "a reason")?.to_string())
            } else {
                None
            };
            HttpAction::SetStatus(code, reason)
        }
        "set-log-level" => {
            let l = arg(a, 1, "a level")?;
            let lv = crate::shared::LEVELS
                .iter()
                .position(|x| *x == l)
                .ok_or_else(|| format!("unknown log level '{l}'"))?;
            HttpAction::SetLogLevel(lv as u8)
        }
        "lua" => {
            let f = arg(a, 1, "a function name")?;
            if !names.has_function(f) {
                return Err(format!("Lua function '{f}' not found"));
            }
            HttpAction::LuaFn(f.to_string())
        }
        "use-service" if !response => {
            let s = arg(a, 1, "a service name")?;
            let n = s
                .strip_prefix("lua.")
                .ok_or_else(|| format!("use-service: unknown service '{s}'"))?;
            if !names.has_service(n, true) {
                return Err(format!(
                    "use-service: Lua HTTP service 'lua.{n}' is not registered"
                ));
            }
            HttpAction::UseService(n.to_string())
        }
        k if k.starts_with("lua.") => {
            let n = &k[4..];
            if !names.has_action(n, kind) {
                return Err(format!("Lua action '{k}' is not registered for {kind}"));
            }
            HttpAction::Lua(n.to_string(), a[1..].to_vec())
        }
        k => {
            return Err(format!(
                "'{}' does not support action '{k}'",
                if response {
                    "http-response"
                } else {
                    "http-request"
                }
            ));
        }
    })
}

fn parse_tcp_action(
    a: &[String],
    response: bool,
    names: &dyn ScriptNames,
) -> Result<TcpAction, String> {
    let kw = a.first().ok_or("missing action")?.as_str();
    let kind = if response { "tcp-res" } else { "tcp-req" };
    Ok(match kw {
        "accept" => TcpAction::Accept,
        "reject" => TcpAction::Reject,
        "lua" => {
            let f = arg(a, 1, "a function name")?;
            if !names.has_function(f) {
                return Err(format!("Lua function '{f}' not found"));
            }
            TcpAction::LuaFn(f.to_string())
        }
        "use-service" if !response => {
            let s = arg(a, 1, "a service name")?;
            let n = s
                .strip_prefix("lua.")
                .ok_or_else(|| format!("use-service: unknown service '{s}'"))?;
            if !names.has_service(n, false) {
                return Err(format!(
                    "use-service: Lua TCP service 'lua.{n}' is not registered"
                ));
            }
            TcpAction::UseService(n.to_string())
        }
        k if k.starts_with("set-var(") => TcpAction::SetVar(
            var_name(k, "set-var")?,
            parse_expr(arg(a, 1, "an expression")?, names)?,
        ),
        k if k.starts_with("lua.") => {
            let n = &k[4..];
            if !names.has_action(n, kind) {
                return Err(format!("Lua action '{k}' is not registered for {kind}"));
            }
            TcpAction::Lua(n.to_string(), a[1..].to_vec())
        }
        k => return Err(format!("unsupported tcp content action '{k}'")),
    })
}

const HTTPLOG: &str = "%ci:%cp [%t] %ft %b/%s %Tr/%Tt %ST %B %r";
const TCPLOG: &str = "%ci:%cp [%t] %ft %b/%s %Tt %B";

fn section_kw(
    s: &mut Section,
    words: &[String],
    loc: &Loc,
    names: &dyn ScriptNames,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let kw = words[0].as_str();
    let is_fe = s.is_frontend() || s.kind == SectionKind::Defaults;
    let is_be = s.is_backend() || s.kind == SectionKind::Defaults;
    let only = |ok: bool| -> Result<(), String> {
        if ok {
            Ok(())
        } else {
            Err(format!("'{kw}' is not allowed in a {:?} section", s.kind).to_lowercase())
        }
    };
    match kw {
        "mode" => {
            s.mode = match arg(words, 1, "http or tcp")? {
                "http" => Mode::Http,
                "tcp" => Mode::Tcp,
                m => return Err(format!("unknown mode '{m}' (http or tcp)")),
            }
        }
        "bind" => {
            only(s.is_frontend())?;
            let addrs = parse_bind_addr(arg(words, 1, "an address")?)?;
            for opt in &words[2..] {
                if opt == "ssl" || opt == "crt" {
                    return Err("bind: TLS termination ('ssl') is not supported".into());
                }
            }
            s.binds.push(Bind {
                addrs,
                loc: loc.clone(),
            });
        }
        "timeout" => {
            let which = arg(words, 1, "a timeout name")?;
            let v = Some(parse_time(arg(words, 2, "a time")?)?);
            match which {
                "connect" => s.timeouts.connect = v,
                "client" => s.timeouts.client = v,
                "server" => s.timeouts.server = v,
                "http-request" => s.timeouts.http_request = v,
                "http-keep-alive" => s.timeouts.http_keep_alive = v,
                "queue" | "tunnel" | "check" | "client-fin" | "server-fin" | "tarpit" => warnings
                    .push(format!(
                        "{loc}: 'timeout {which}' has no effect in moonwire"
                    )),
                o => return Err(format!("unknown timeout '{o}'")),
            }
        }
        "default_backend" => {
            only(is_fe)?;
            s.default_backend = Some((arg(words, 1, "a backend name")?.to_string(), loc.clone()));
        }
        "use_backend" => {
            only(is_fe)?;
            let (a, cond) = split_cond(&words[1..], names)?;
            let name = a
                .first()
                .ok_or("use_backend expects a backend name")?
                .clone();
            s.use_backends.push(Rule {
                action: name,
                cond,
                loc: loc.clone(),
            });
        }
        "acl" => {
            let name = arg(words, 1, "a name")?.to_string();
            let acl = parse_acl(&words[2..], names)?;
            s.acls.entry(name).or_default().push(acl);
        }
        "server" => {
            only(is_be && s.kind != SectionKind::Defaults)?;
            let name = arg(words, 1, "a name")?.to_string();
            let addr_text = arg(words, 2, "an address")?.to_string();
            let addr = addr_text
                .trim_start_matches("ipv4@")
                .trim_start_matches("ipv6@")
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    format!("server '{name}': cannot resolve address '{addr_text}' (host:port)")
                })?;
            let mut server = Server {
                name,
                addr,
                addr_text,
                check: false,
                weight: 1,
                inter: Duration::from_secs(2),
                loc: loc.clone(),
            };
            let mut i = 3;
            while i < words.len() {
                match words[i].as_str() {
                    "check" => server.check = true,
                    "weight" => {
                        i += 1;
                        server.weight = arg(words, i, "a weight")?
                            .parse()
                            .map_err(|_| "invalid weight".to_string())?;
                        if server.weight > 256 {
                            return Err("weight must be between 0 and 256".into());
                        }
                    }
                    "inter" => {
                        i += 1;
                        server.inter = parse_time(arg(words, i, "a time")?)?;
                    }
                    "maxconn" | "rise" | "fall" | "port" | "slowstart" | "id" | "cookie" => i += 1,
                    "ssl" => return Err("server: TLS to servers ('ssl') is not supported".into()),
                    _ => {}
                }
                i += 1;
            }
            s.servers.push(server);
        }
        "balance" => {
            only(is_be)?;
            s.balance = match arg(words, 1, "an algorithm")? {
                "roundrobin" | "static-rr" => Balance::RoundRobin,
                "leastconn" => Balance::LeastConn,
                "first" => Balance::First,
                "source" => Balance::Source,
                a => return Err(format!("unsupported balance algorithm '{a}'")),
            }
        }
        "http-request" | "http-response" => {
            let response = kw == "http-response";
            let (a, cond) = split_cond(&words[1..], names)?;
            let action = parse_http_action(&a, response, names)?;
            let rule = Rule {
                action,
                cond,
                loc: loc.clone(),
            };
            if response {
                s.http_response.push(rule);
            } else {
                s.http_request.push(rule);
            }
        }
        "tcp-request" | "tcp-response" => {
            let response = kw == "tcp-response";
            match arg(words, 1, "content, connection or inspect-delay")? {
                "inspect-delay" => {
                    s.inspect_delay = Some(parse_time(arg(words, 2, "a time")?)?);
                }
                "content" | "connection" | "session" => {
                    let (a, cond) = split_cond(&words[2..], names)?;
                    let action = parse_tcp_action(&a, response, names)?;
                    let rule = Rule {
                        action,
                        cond,
                        loc: loc.clone(),
                    };
                    if response {
                        s.tcp_response.push(rule);
                    } else {
                        s.tcp_request.push(rule);
                    }
                }
                o => return Err(format!("{kw}: unknown keyword '{o}'")),
            }
        }
        "log-format" => {
            let text = words[1..].join(" ");
            s.log_format = Some(LogFormat::parse(&text, names)?);
            s.log = true;
        }
        "log" => {
            s.log = true;
        }
        "no" => {
            if words.get(1).map(String::as_str) == Some("log") {
                s.log = false;
            }
        }
        "option" => match arg(words, 1, "an option")? {
            "httplog" => {
                s.log_format = Some(LogFormat::parse(HTTPLOG, names)?);
            }
            "tcplog" => {
                s.log_format = Some(LogFormat::parse(TCPLOG, names)?);
            }
            "forwardfor" => s.forwardfor = true,
            "http-buffer-request" => s.buffer_request = true,
            "dontlognull"
            | "http-keep-alive"
            | "http-server-close"
            | "httpclose"
            | "redispatch"
            | "tcpka"
            | "clitcpka"
            | "srvtcpka"
            | "http-no-delay"
            | "splice-auto"
            | "log-separate-errors"
            | "abortonclose"
            | "http-pretend-keepalive"
            | "allbackups"
            | "httpchk"
            | "tcp-check"
            | "log-health-checks"
            | "dontlog-normal"
            | "nolinger"
            | "socket-stats"
            | "independent-streams" => {}
            o => return Err(format!("unknown option '{o}'")),
        },
        "retries" => {
            s.retries = arg(words, 1, "a number")?
                .parse()
                .map_err(|_| "invalid retries".to_string())?
        }
        k if IGNORED.contains(&k) => {
            warnings.push(format!("{loc}: keyword '{k}' has no effect in moonwire"))
        }
        k => {
            return Err(format!(
                "unknown keyword '{k}' in '{}' section",
                format!("{:?}", s.kind).to_lowercase()
            ));
        }
    }
    Ok(())
}

fn validate(cfg: &Config, _names: &dyn ScriptNames) -> Result<(), ConfigError> {
    for s in &cfg.sections {
        let check_acls = |cond: &Option<Cond>, loc: &Loc| -> Result<(), ConfigError> {
            if let Some(c) = cond {
                for n in c.names() {
                    if !s.acls.contains_key(n) && !crate::sample::PREDEFINED_ACLS.contains(&n) {
                        return Err(ConfigError {
                            loc: loc.clone(),
                            msg: format!("no such ACL : '{n}'"),
                        });
                    }
                }
            }
            Ok(())
        };
        for r in &s.http_request {
            check_acls(&r.cond, &r.loc)?;
        }
        for r in &s.http_response {
            check_acls(&r.cond, &r.loc)?;
        }
        for r in &s.tcp_request {
            check_acls(&r.cond, &r.loc)?;
        }
        for r in &s.tcp_response {
            check_acls(&r.cond, &r.loc)?;
        }
        for r in &s.use_backends {
            check_acls(&r.cond, &r.loc)?;
            if cfg.backend(&r.action).is_none() {
                return Err(ConfigError {
                    loc: r.loc.clone(),
                    msg: format!("unable to find required use_backend: '{}'", r.action),
                });
            }
        }
        if s.is_frontend() {
            if let Some((b, loc)) = &s.default_backend
                && cfg.backend(b).is_none()
            {
                return Err(ConfigError {
                    loc: loc.clone(),
                    msg: format!("unable to find required default_backend: '{b}'"),
                });
            }
            if s.binds.is_empty() {
                return Err(ConfigError {
                    loc: s.loc.clone(),
                    msg: format!("proxy '{}' has no 'bind' directive", s.name),
                });
            }
        }
        for r in s.http_request.iter().chain(s.http_response.iter()) {
            if s.mode != Mode::Http {
                return Err(ConfigError {
                    loc: r.loc.clone(),
                    msg: format!("http rules need 'mode http' in proxy '{}'", s.name),
                });
            }
        }
    }
    if !cfg.sections.iter().any(|s| s.is_frontend()) {
        return Err(ConfigError {
            loc: Loc {
                file: cfg
                    .files
                    .first()
                    .map(|f| f.display().to_string())
                    .unwrap_or_default()
                    .into(),
                line: 0,
            },
            msg: "configuration has no frontend or listen section".into(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sample::AnyLuaNames;

    fn parse(text: &str) -> Result<Config, ConfigError> {
        parse_texts(&[(Path::new("t.cfg"), text)], &AnyLuaNames)
    }

    #[test]
    fn tokenizer() {
        assert_eq!(
            tokenize("  a \"b c\" 'd\\e' f\\ g # x").unwrap(),
            vec!["a", "b c", "d\\e", "f g"]
        );
        assert_eq!(tokenize("x \"a\\.b\"").unwrap(), vec!["x", "a\\.b"]);
        assert!(tokenize("a \"b").is_err());
    }

    #[test]
    fn binds() {
        assert_eq!(
            parse_bind_addr(":80").unwrap(),
            vec!["0.0.0.0:80".parse().unwrap()]
        );
        assert_eq!(
            parse_bind_addr(":::80").unwrap(),
            vec!["[::]:80".parse().unwrap()]
        );
        assert_eq!(
            parse_bind_addr("[::1]:8080").unwrap(),
            vec!["[::1]:8080".parse().unwrap()]
        );
        assert_eq!(
            parse_bind_addr("ipv6@:81").unwrap(),
            vec!["[::]:81".parse().unwrap()]
        );
        assert_eq!(parse_bind_addr("127.0.0.1:10-12").unwrap().len(), 3);
        assert!(parse_bind_addr("127.0.0.1").is_err());
    }

    #[test]
    fn full_config() {
        let cfg = parse(
            "global\n  nbthread 2\n  tune.lua.maxmem 16\n  log stderr local0\n\
             defaults\n  mode http\n  timeout client 5s\n  timeout connect 500ms\n\
             frontend fe\n  bind 127.0.0.1:8080\n  acl api path_beg /api\n  acl h hdr(host) -i -m end .example.com\n\
               http-request set-header X-A %[src] if api\n  http-request deny deny_status 429 if { req.hdr_cnt(x) gt 0 } !api\n\
               use_backend be2 if api || h\n  default_backend be\n\
             backend be\n  balance leastconn\n  server s1 127.0.0.1:9000 check weight 3\n\
             backend be2\n  server s1 127.0.0.1:9001\n",
        );
        let cfg = match cfg {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        };
        assert_eq!(cfg.global.nbthread, 2);
        assert_eq!(cfg.global.lua_maxmem, 16 << 20);
        let fe = &cfg.sections[0];
        assert_eq!(fe.mode, Mode::Http);
        assert_eq!(fe.timeouts.client, Some(Duration::from_secs(5)));
        assert_eq!(fe.http_request.len(), 2);
        assert_eq!(cfg.backend("be").unwrap().servers[0].weight, 3);
        assert_eq!(cfg.backend("be").unwrap().balance, Balance::LeastConn);
    }

    #[test]
    fn errors_name_file_and_line() {
        let e = parse("frontend fe\n  bind :80\n  frobnicate yes\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.cfg:3: unknown keyword 'frobnicate' in 'frontend' section"
        );
        let e = parse("frontend fe\n  bind :80\n  default_backend nope\n").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("t.cfg:3: unable to find required default_backend"),
            "{e}"
        );
        let e = parse("frontend fe\n  mode http\n  bind :80\n  http-request deny if missing\n")
            .unwrap_err();
        assert!(e.to_string().starts_with("t.cfg:4: no such ACL"), "{e}");
        let e = parse("global\n  lua-load /nonexistent.lua\n").unwrap_err();
        assert!(e.to_string().starts_with("t.cfg:2:"), "{e}");
        let e =
            parse("frontend fe\n  mode http\n  bind :80\n  http-request set-header X %[nope]\n")
                .unwrap_err();
        assert!(
            e.to_string()
                .contains("t.cfg:4: unknown sample fetch 'nope'"),
            "{e}"
        );
    }

    #[test]
    fn several_files_are_read_in_order() {
        let cfg = parse_texts(
            &[
                (
                    Path::new("a.cfg"),
                    "defaults\n  mode http\nfrontend fe\n  bind :80\n  default_backend be\n",
                ),
                (Path::new("b.cfg"), "backend be\n  server s 127.0.0.1:1\n"),
            ],
            &AnyLuaNames,
        )
        .unwrap();
        assert_eq!(cfg.sections.len(), 2);
        assert_eq!(cfg.backend("be").unwrap().mode, Mode::Http);
        let e = parse_texts(
            &[
                (Path::new("a.cfg"), "frontend fe\n  bind :80\n"),
                (Path::new("b.cfg"), "\n\nbogus\n"),
            ],
            &AnyLuaNames,
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "b.cfg:3: unknown keyword 'bogus' out of section"
        );
    }
}
