//! Samples: HAProxy's fetch-then-convert expressions (`req.hdr(host),lower`),
//! their evaluation against a transaction, ACLs, conditions and log-format
//! strings.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::map::{MatchMethod, Pattern};
use crate::txn::{Headers, Phase, TxnHandle};

/// A sample value.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    /// Bytes (strings).
    Str(Vec<u8>),
    /// Integer.
    Int(i64),
    /// Boolean.
    Bool(bool),
    /// Address.
    Ip(IpAddr),
}

impl Sample {
    /// The value as bytes.
    pub fn as_bytes(&self) -> Cow<'_, [u8]> {
        match self {
            Sample::Str(s) => Cow::Borrowed(s),
            Sample::Int(i) => Cow::Owned(i.to_string().into_bytes()),
            Sample::Bool(b) => Cow::Owned(if *b { b"1".to_vec() } else { b"0".to_vec() }),
            Sample::Ip(ip) => Cow::Owned(ip.to_string().into_bytes()),
        }
    }
    /// The value as an integer (strings are parsed, bad ones give 0).
    pub fn as_int(&self) -> i64 {
        match self {
            Sample::Int(i) => *i,
            Sample::Bool(b) => *b as i64,
            Sample::Str(s) => std::str::from_utf8(s)
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .unwrap_or(0),
            Sample::Ip(_) => 0,
        }
    }
    /// The value as a boolean.
    pub fn as_bool(&self) -> bool {
        match self {
            Sample::Bool(b) => *b,
            Sample::Int(i) => *i != 0,
            Sample::Str(s) => !s.is_empty(),
            Sample::Ip(_) => true,
        }
    }
}

/// Calls into Lua for `lua.*` fetches and converters.
pub trait LuaSampler {
    /// Runs a registered fetch.
    fn lua_fetch(
        &self,
        name: &str,
        txn: &TxnHandle,
        args: &[String],
    ) -> Result<Option<Sample>, String>;
    /// Runs a registered converter.
    fn lua_convert(
        &self,
        name: &str,
        input: Sample,
        args: &[String],
    ) -> Result<Option<Sample>, String>;
}

/// Native sample fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum FetchKind {
    Src,
    Dst,
    SrcPort,
    DstPort,
    Method,
    Path,
    Url,
    Query,
    Base,
    ReqHdr,
    ReqFhdr,
    ReqHdrCnt,
    ResHdr,
    ResFhdr,
    ResHdrCnt,
    /// `hdr`: request headers in request rules, response headers after.
    Hdr,
    HdrCnt,
    Status,
    ReqBody,
    ReqBodyLen,
    ReqVer,
    SslFc,
    Var,
    Str,
    Int,
    Bool,
    AlwaysTrue,
    AlwaysFalse,
    Env,
    Date,
    Rand,
    UrlParam,
    ReqCook,
    FeName,
    BeName,
    SrvName,
    ReqLen,
    Lua,
}

/// Every native fetch name and the fetch it means.
pub const FETCH_NAMES: &[(&str, FetchKind)] = &[
    ("src", FetchKind::Src),
    ("dst", FetchKind::Dst),
    ("src_port", FetchKind::SrcPort),
    ("dst_port", FetchKind::DstPort),
    ("method", FetchKind::Method),
    ("path", FetchKind::Path),
    ("url", FetchKind::Url),
    ("query", FetchKind::Query),
    ("base", FetchKind::Base),
    ("req.hdr", FetchKind::ReqHdr),
    ("req.fhdr", FetchKind::ReqFhdr),
    ("fhdr", FetchKind::ReqFhdr),
    ("req.hdr_cnt", FetchKind::ReqHdrCnt),
    ("res.hdr", FetchKind::ResHdr),
    ("shdr", FetchKind::ResHdr),
    ("res.fhdr", FetchKind::ResFhdr),
    ("res.hdr_cnt", FetchKind::ResHdrCnt),
    ("hdr", FetchKind::Hdr),
    ("hdr_cnt", FetchKind::HdrCnt),
    ("status", FetchKind::Status),
    ("req.body", FetchKind::ReqBody),
    ("req.body_len", FetchKind::ReqBodyLen),
    ("req.ver", FetchKind::ReqVer),
    ("req_ver", FetchKind::ReqVer),
    ("ssl_fc", FetchKind::SslFc),
    ("var", FetchKind::Var),
    ("str", FetchKind::Str),
    ("int", FetchKind::Int),
    ("bool", FetchKind::Bool),
    ("always_true", FetchKind::AlwaysTrue),
    ("always_false", FetchKind::AlwaysFalse),
    ("env", FetchKind::Env),
    ("date", FetchKind::Date),
    ("rand", FetchKind::Rand),
    ("url_param", FetchKind::UrlParam),
    ("urlp", FetchKind::UrlParam),
    ("req.cook", FetchKind::ReqCook),
    ("cook", FetchKind::ReqCook),
    ("fe_name", FetchKind::FeName),
    ("be_name", FetchKind::BeName),
    ("srv_name", FetchKind::SrvName),
    ("req.len", FetchKind::ReqLen),
    ("req_len", FetchKind::ReqLen),
];

/// Looks a fetch up by its configuration name, or by its Lua name
/// (dots written as underscores, `txn.f:req_hdr("host")`).
pub fn fetch_by_name(name: &str) -> Option<FetchKind> {
    FETCH_NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .or_else(|| {
            FETCH_NAMES
                .iter()
                .find(|(n, _)| n.replace('.', "_") == name)
        })
        .map(|(_, k)| *k)
}

/// A fetch with its arguments.
#[derive(Debug, Clone)]
pub struct Fetch {
    /// Which fetch.
    pub kind: FetchKind,
    /// The Lua fetch name for `lua.*`.
    pub name: String,
    /// Arguments as written.
    pub args: Vec<String>,
}

/// Native converters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum ConvKind {
    Lower,
    Upper,
    Base64,
    B64Dec,
    Hex,
    Crc32,
    Djb2,
    Sdbm,
    Wt6,
    Json,
    UrlDec,
    Bytes,
    Field,
    Word,
    Regsub,
    Length,
    Map(MatchMethod),
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Ipmask,
    Concat,
    Lua,
}

/// Every native converter name.
pub const CONV_NAMES: &[(&str, ConvKind)] = &[
    ("lower", ConvKind::Lower),
    ("upper", ConvKind::Upper),
    ("base64", ConvKind::Base64),
    ("b64dec", ConvKind::B64Dec),
    ("hex", ConvKind::Hex),
    ("crc32", ConvKind::Crc32),
    ("djb2", ConvKind::Djb2),
    ("sdbm", ConvKind::Sdbm),
    ("wt6", ConvKind::Wt6),
    ("json", ConvKind::Json),
    ("url_dec", ConvKind::UrlDec),
    ("bytes", ConvKind::Bytes),
    ("field", ConvKind::Field),
    ("word", ConvKind::Word),
    ("regsub", ConvKind::Regsub),
    ("length", ConvKind::Length),
    ("map", ConvKind::Map(MatchMethod::Str)),
    ("map_str", ConvKind::Map(MatchMethod::Str)),
    ("map_beg", ConvKind::Map(MatchMethod::Beg)),
    ("map_end", ConvKind::Map(MatchMethod::End)),
    ("map_sub", ConvKind::Map(MatchMethod::Sub)),
    ("map_dir", ConvKind::Map(MatchMethod::Dir)),
    ("map_dom", ConvKind::Map(MatchMethod::Dom)),
    ("map_reg", ConvKind::Map(MatchMethod::Reg)),
    ("map_ip", ConvKind::Map(MatchMethod::Ip)),
    ("map_int", ConvKind::Map(MatchMethod::Int)),
    ("add", ConvKind::Add),
    ("sub", ConvKind::Sub),
    ("mul", ConvKind::Mul),
    ("div", ConvKind::Div),
    ("mod", ConvKind::Mod),
    ("ipmask", ConvKind::Ipmask),
    ("concat", ConvKind::Concat),
];

/// Looks a converter up by name.
pub fn conv_by_name(name: &str) -> Option<ConvKind> {
    CONV_NAMES.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// A converter with its arguments (regsub's pattern is compiled once).
#[derive(Debug, Clone)]
pub struct Conv {
    /// Which converter.
    pub kind: ConvKind,
    /// Lua converter name for `lua.*`.
    pub name: String,
    /// Arguments as written.
    pub args: Vec<String>,
    /// Compiled regex for `regsub`.
    pub re: Option<lua::Pcre>,
}

/// A fetch followed by converters.
#[derive(Debug, Clone)]
pub struct Expr {
    /// The fetch.
    pub fetch: Fetch,
    /// The converters, applied in order.
    pub convs: Vec<Conv>,
}

/// Splits `name(args)` at top-level commas, honouring parentheses and quotes.
fn split_top(s: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    for c in s.chars() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            cur.push(c);
            continue;
        }
        match c {
            '"' | '\'' => {
                quote = Some(c);
                cur.push(c);
            }
            '(' => {
                depth += 1;
                cur.push(c);
            }
            ')' => {
                depth -= 1;
                cur.push(c);
            }
            c if c == sep && depth == 0 => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

fn unquote(s: &str) -> String {
    let t = s.trim();
    if t.len() >= 2
        && ((t.starts_with('"') && t.ends_with('"')) || (t.starts_with('\'') && t.ends_with('\'')))
    {
        t[1..t.len() - 1].to_string()
    } else {
        t.to_string()
    }
}

fn name_and_args(part: &str) -> Result<(String, Vec<String>), String> {
    let part = part.trim();
    match part.find('(') {
        Some(i) => {
            if !part.ends_with(')') {
                return Err(format!("missing ')' in '{part}'"));
            }
            let inner = &part[i + 1..part.len() - 1];
            let args = if inner.trim().is_empty() {
                Vec::new()
            } else {
                split_top(inner, ',').iter().map(|a| unquote(a)).collect()
            };
            Ok((part[..i].to_string(), args))
        }
        None => Ok((part.to_string(), Vec::new())),
    }
}

/// What `lua.*` names exist; the parser checks references against it.
pub trait LuaNames {
    /// Whether a fetch `name` (without `lua.`) is registered.
    fn has_fetch(&self, name: &str) -> bool;
    /// Whether a converter is registered.
    fn has_converter(&self, name: &str) -> bool;
}

/// Accepts every Lua name (when no Lua is loaded yet).
pub struct AnyLuaNames;

impl LuaNames for AnyLuaNames {
    fn has_fetch(&self, _: &str) -> bool {
        true
    }
    fn has_converter(&self, _: &str) -> bool {
        true
    }
}

/// Parses `fetch(args),conv(args),...`.
pub fn parse_expr(text: &str, names: &dyn LuaNames) -> Result<Expr, String> {
    let parts = split_top(text, ',');
    let (fname, fargs) = name_and_args(&parts[0])?;
    let fetch = if let Some(lname) = fname.strip_prefix("lua.") {
        if !names.has_fetch(lname) {
            return Err(format!(
                "unknown Lua sample fetch 'lua.{lname}' (not registered by core.register_fetches)"
            ));
        }
        Fetch {
            kind: FetchKind::Lua,
            name: lname.to_string(),
            args: fargs,
        }
    } else {
        let kind =
            fetch_by_name(&fname).ok_or_else(|| format!("unknown sample fetch '{fname}'"))?;
        Fetch {
            kind,
            name: fname,
            args: fargs,
        }
    };
    let mut convs = Vec::new();
    for p in &parts[1..] {
        let (cname, cargs) = name_and_args(p)?;
        let conv = if let Some(lname) = cname.strip_prefix("lua.") {
            if !names.has_converter(lname) {
                return Err(format!(
                    "unknown Lua converter 'lua.{lname}' (not registered by core.register_converters)"
                ));
            }
            Conv {
                kind: ConvKind::Lua,
                name: lname.to_string(),
                args: cargs,
                re: None,
            }
        } else {
            let kind =
                conv_by_name(&cname).ok_or_else(|| format!("unknown converter '{cname}'"))?;
            let re = if kind == ConvKind::Regsub {
                let pat = cargs.first().ok_or("regsub needs a regex argument")?;
                let ci = cargs.get(2).is_some_and(|f| f.contains('i'));
                let pat = if ci {
                    format!("(?i){pat}")
                } else {
                    pat.clone()
                };
                Some(lua::Pcre::new(&pat).map_err(|e| e.to_string())?)
            } else {
                None
            };
            Conv {
                kind,
                name: cname,
                args: cargs,
                re,
            }
        };
        convs.push(conv);
    }
    Ok(Expr { fetch, convs })
}

/// Evaluation context: the transaction and the Lua state for `lua.*`.
pub struct Eval<'a> {
    /// The transaction.
    pub txn: &'a TxnHandle,
    /// The Lua state of this thread, if any.
    pub lua: Option<&'a dyn LuaSampler>,
}

impl Expr {
    /// Evaluates the expression; `Ok(None)` when the sample does not exist.
    pub fn eval(&self, ev: &Eval<'_>) -> Result<Option<Sample>, String> {
        let Some(mut s) = run_fetch(&self.fetch, ev)? else {
            return Ok(None);
        };
        for c in &self.convs {
            match run_conv(c, s, ev)? {
                Some(v) => s = v,
                None => return Ok(None),
            }
        }
        Ok(Some(s))
    }

    /// Every value of a multi-valued fetch (all header occurrences), for ACLs.
    pub fn eval_all(&self, ev: &Eval<'_>) -> Result<Vec<Sample>, String> {
        let multi = matches!(
            self.fetch.kind,
            FetchKind::ReqHdr | FetchKind::ResHdr | FetchKind::Hdr
        ) && self.fetch.args.len() == 1;
        if !multi {
            return Ok(self.eval(ev)?.into_iter().collect());
        }
        let vals = {
            let st = ev.txn.borrow();
            let name = &self.fetch.args[0];
            let use_res = match self.fetch.kind {
                FetchKind::ResHdr => true,
                FetchKind::Hdr => st.phase == Phase::Response && st.res.is_some(),
                _ => false,
            };
            if use_res {
                st.res.as_ref().map(|r| r.values(name)).unwrap_or_default()
            } else {
                st.req.values(name)
            }
        };
        let mut out = Vec::new();
        'v: for v in vals {
            let mut s = Sample::Str(v);
            for c in &self.convs {
                match run_conv(c, s, ev)? {
                    Some(x) => s = x,
                    None => continue 'v,
                }
            }
            out.push(s);
        }
        Ok(out)
    }
}

fn occurrence(vals: Vec<Vec<u8>>, occ: Option<&String>) -> Option<Vec<u8>> {
    let n: i64 = occ.and_then(|o| o.parse().ok()).unwrap_or(-1);
    if n < 0 {
        let idx = vals.len() as i64 + n;
        if idx < 0 {
            return None;
        }
        vals.into_iter().nth(idx as usize)
    } else if n == 0 {
        vals.into_iter().last()
    } else {
        vals.into_iter().nth(n as usize - 1)
    }
}

fn run_fetch(f: &Fetch, ev: &Eval<'_>) -> Result<Option<Sample>, String> {
    use FetchKind as K;
    if f.kind == K::Lua {
        let lua = ev
            .lua
            .ok_or_else(|| format!("lua.{}: no Lua state", f.name))?;
        return lua.lua_fetch(&f.name, ev.txn, &f.args);
    }
    let st = ev.txn.borrow();
    let arg0 = f.args.first();
    let s = |v: &str| Some(Sample::Str(v.as_bytes().to_vec()));
    Ok(match f.kind {
        K::Src => Some(Sample::Ip(st.src.ip())),
        K::Dst => Some(Sample::Ip(st.dst.ip())),
        K::SrcPort => Some(Sample::Int(st.src.port() as i64)),
        K::DstPort => Some(Sample::Int(st.dst.port() as i64)),
        K::Method if st.http => s(&st.req.method),
        K::Path if st.http => s(st.req.path()),
        K::Url if st.http => s(&st.req.uri),
        K::Query if st.http => st.req.query().and_then(s),
        K::Base if st.http => {
            let host = st
                .req
                .get_all("host")
                .next()
                .map(|h| h.to_vec())
                .unwrap_or_default();
            let mut v = host;
            v.extend_from_slice(st.req.path().as_bytes());
            Some(Sample::Str(v))
        }
        K::ReqHdr | K::ReqFhdr | K::Hdr | K::ResHdr | K::ResFhdr if st.http => {
            let use_res = match f.kind {
                K::ResHdr | K::ResFhdr => true,
                K::Hdr => st.phase == Phase::Response && st.res.is_some(),
                _ => false,
            };
            let full = matches!(f.kind, K::ReqFhdr | K::ResFhdr);
            let Some(name) = arg0 else {
                // Without a name: the whole header block.
                let fields = if use_res {
                    st.res
                        .as_ref()
                        .map(|r| r.headers.clone())
                        .unwrap_or_default()
                } else {
                    st.req.headers.clone()
                };
                let mut v = Vec::new();
                for (n, val) in fields {
                    v.extend_from_slice(n.as_bytes());
                    v.extend_from_slice(b": ");
                    v.extend_from_slice(&val);
                    v.extend_from_slice(b"\r\n");
                }
                return Ok(Some(Sample::Str(v)));
            };
            let vals: Vec<Vec<u8>> = if use_res {
                match &st.res {
                    Some(r) if full => r.get_all(name).map(|v| v.to_vec()).collect(),
                    Some(r) => r.values(name),
                    None => Vec::new(),
                }
            } else if full {
                st.req.get_all(name).map(|v| v.to_vec()).collect()
            } else {
                st.req.values(name)
            };
            occurrence(vals, f.args.get(1)).map(Sample::Str)
        }
        K::ReqHdrCnt | K::HdrCnt | K::ResHdrCnt if st.http => {
            let use_res =
                f.kind == K::ResHdrCnt || (f.kind == K::HdrCnt && st.phase == Phase::Response);
            let n = match (use_res, arg0) {
                (true, Some(name)) => st.res.as_ref().map_or(0, |r| r.values(name).len()),
                (true, None) => st.res.as_ref().map_or(0, |r| r.headers.len()),
                (false, Some(name)) => st.req.values(name).len(),
                (false, None) => st.req.headers.len(),
            };
            Some(Sample::Int(n as i64))
        }
        K::Status => st.res.as_ref().map(|r| Sample::Int(r.status as i64)),
        K::ReqBody if st.http => {
            if st.req_body_complete || !st.req_body.is_empty() {
                Some(Sample::Str(st.req_body.clone()))
            } else {
                None
            }
        }
        K::ReqBodyLen if st.http => Some(Sample::Int(st.req_body.len() as i64)),
        K::ReqVer if st.http => s(if st.req.minor == 0 { "1.0" } else { "1.1" }),
        K::ReqLen => Some(Sample::Int(if st.http {
            st.req_body.len()
        } else {
            st.req_chan.input().len()
        } as i64)),
        K::SslFc => Some(Sample::Bool(false)),
        K::Var => arg0.and_then(|n| st.get_var(n)),
        K::Str => arg0.and_then(|a| s(a)),
        K::Int => arg0.map(|a| Sample::Int(a.parse().unwrap_or(0))),
        K::Bool => arg0.map(|a| Sample::Bool(a.parse::<i64>().unwrap_or(0) != 0 || a == "true")),
        K::AlwaysTrue => Some(Sample::Bool(true)),
        K::AlwaysFalse => Some(Sample::Bool(false)),
        K::Env => arg0.and_then(|n| std::env::var(n).ok()).and_then(|v| s(&v)),
        K::Date => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            Some(Sample::Int(
                now + arg0.and_then(|a| a.parse::<i64>().ok()).unwrap_or(0),
            ))
        }
        K::Rand => {
            let r = fastrand_u32();
            let range = arg0.and_then(|a| a.parse::<u64>().ok());
            Some(Sample::Int(match range {
                Some(n) if n > 0 => ((r as u64 * n) >> 32) as i64,
                _ => r as i64,
            }))
        }
        K::UrlParam if st.http => {
            let name = arg0.ok_or("url_param needs a name")?;
            st.req.query().and_then(|q| {
                q.split('&').find_map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k == name).then(|| Sample::Str(v.as_bytes().to_vec()))
                })
            })
        }
        K::ReqCook if st.http => {
            let name = arg0.ok_or("req.cook needs a name")?;
            let mut found = None;
            for h in st.req.get_all("cookie") {
                for c in h.split(|b| *b == b';') {
                    let c = crate::txn::trim(c);
                    if let Some(i) = c.iter().position(|b| *b == b'=')
                        && &c[..i] == name.as_bytes()
                    {
                        found = Some(Sample::Str(c[i + 1..].to_vec()));
                    }
                }
            }
            found
        }
        K::FeName => Some(Sample::Str(st.frontend.as_bytes().to_vec())),
        K::BeName => st
            .backend
            .as_ref()
            .map(|b| Sample::Str(b.as_bytes().to_vec())),
        K::SrvName => st
            .server
            .as_ref()
            .map(|b| Sample::Str(b.as_bytes().to_vec())),
        _ => None,
    })
}

fn fastrand_u32() -> u32 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1) | 1
        );
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 32) as u32
    })
}

/// CRC-32 (IEEE), as HAProxy's `crc32` converter computes it.
pub fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The djb2 hash.
pub fn djb2(data: &[u8]) -> u32 {
    data.iter().fold(5381u32, |h, &c| {
        h.wrapping_shl(5).wrapping_add(h).wrapping_add(c as u32)
    })
}

/// The sdbm hash.
pub fn sdbm(data: &[u8]) -> u32 {
    data.iter().fold(0u32, |h, &c| {
        (c as u32)
            .wrapping_add(h.wrapping_shl(6))
            .wrapping_add(h.wrapping_shl(16))
            .wrapping_sub(h)
    })
}

/// Willy Tarreau's wt6 hash.
pub fn wt6(data: &[u8]) -> u32 {
    let (mut h0, mut h1) = (0xa53c_965au32, 0x5ca6_953au32);
    let (mut step0, mut step1) = (6u32, 18u32);
    for &c in data {
        let t = c as u32;
        h0 = !(h0 ^ t);
        h1 = !(h1.wrapping_add(t));
        let t = h1.rotate_left(step0);
        h1 = h0.rotate_left(step1);
        h0 = t;
        let t = ((h0 >> 16) ^ h1) & 0xffff;
        step0 = t & 0x1f;
        step1 = t >> 11;
    }
    h0 ^ h1
}

/// Bob Jenkins' avalanche, applied when a hash converter gets a non-zero argument.
fn avalanche(mut a: u32) -> u32 {
    a = a.wrapping_add(0x7ed5_5d16).wrapping_add(a << 12);
    a = (a ^ 0xc761_c23c) ^ (a >> 19);
    a = a.wrapping_add(0x1656_67b1).wrapping_add(a << 5);
    a = a.wrapping_add(0xd3a2_646c) ^ (a << 9);
    a = a.wrapping_add(0xfd70_46c5).wrapping_add(a << 3);
    (a ^ 0xb55a_4f09) ^ (a >> 16)
}

/// JSON string escaping (HAProxy's `json` converter, utf8 mode).
pub fn json_escape(data: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(data);
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '/' => out.push_str("\\/"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.into_bytes()
}

/// Percent-decoding (`+` becomes a space).
pub fn url_decode(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        match data[i] {
            b'%' if i + 2 < data.len() => {
                let hex = std::str::from_utf8(&data[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    out
}

/// Expands `\1`..`\9` in a replacement with capture groups.
pub fn expand_groups(repl: &str, caps: &[Option<&[u8]>]) -> Vec<u8> {
    let b = repl.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 1 < b.len() && b[i + 1].is_ascii_digit() {
            let g = (b[i + 1] - b'0') as usize;
            if let Some(Some(c)) = caps.get(g) {
                out.extend_from_slice(c);
            }
            i += 2;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Replaces the first (or every, `global`) match of `re` in `input`.
pub fn regex_replace(re: &lua::Pcre, input: &[u8], repl: &str, global: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = input;
    while let Some(caps) = re.captures(rest) {
        let Some(whole) = caps[0] else { break };
        let start = whole.as_ptr() as usize - rest.as_ptr() as usize;
        let end = start + whole.len();
        out.extend_from_slice(&rest[..start]);
        out.extend_from_slice(&expand_groups(repl, &caps));
        if end == start {
            if end < rest.len() {
                out.push(rest[end]);
            }
            rest = &rest[(end + 1).min(rest.len())..];
        } else {
            rest = &rest[end..];
        }
        if !global || rest.is_empty() {
            break;
        }
    }
    out.extend_from_slice(rest);
    out
}

fn arg_int(c: &Conv, i: usize, ev: &Eval<'_>) -> i64 {
    match c.args.get(i) {
        Some(a) => match a.parse::<i64>() {
            Ok(v) => v,
            Err(_) => ev.txn.borrow().get_var(a).map(|s| s.as_int()).unwrap_or(0),
        },
        None => 0,
    }
}

fn hash_result(c: &Conv, h: u32) -> Sample {
    let h = if c
        .args
        .first()
        .and_then(|a| a.parse::<i64>().ok())
        .unwrap_or(0)
        != 0
    {
        avalanche(h)
    } else {
        h
    };
    Sample::Int(h as i64)
}

/// Runs one converter.
pub fn run_conv(c: &Conv, input: Sample, ev: &Eval<'_>) -> Result<Option<Sample>, String> {
    use ConvKind as K;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let bytes = || input.as_bytes().into_owned();
    Ok(Some(match c.kind {
        K::Lua => {
            let lua = ev
                .lua
                .ok_or_else(|| format!("lua.{}: no Lua state", c.name))?;
            return lua.lua_convert(&c.name, input, &c.args);
        }
        K::Lower => Sample::Str(bytes().to_ascii_lowercase()),
        K::Upper => Sample::Str(bytes().to_ascii_uppercase()),
        K::Base64 => Sample::Str(b64.encode(bytes()).into_bytes()),
        K::B64Dec => match b64.decode(bytes()) {
            Ok(v) => Sample::Str(v),
            Err(_) => return Ok(None),
        },
        K::Hex => Sample::Str(
            bytes()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>()
                .into_bytes(),
        ),
        K::Crc32 => hash_result(c, crc32(&bytes())),
        K::Djb2 => hash_result(c, djb2(&bytes())),
        K::Sdbm => hash_result(c, sdbm(&bytes())),
        K::Wt6 => hash_result(c, wt6(&bytes())),
        K::Json => Sample::Str(json_escape(&bytes())),
        K::UrlDec => Sample::Str(url_decode(&bytes())),
        K::Length => Sample::Int(bytes().len() as i64),
        K::Bytes => {
            let v = bytes();
            let off = arg_int(c, 0, ev).max(0) as usize;
            if off > v.len() {
                return Ok(None);
            }
            let end = if c.args.len() > 1 {
                (off + arg_int(c, 1, ev).max(0) as usize).min(v.len())
            } else {
                v.len()
            };
            Sample::Str(v[off..end].to_vec())
        }
        K::Field | K::Word => {
            let v = bytes();
            let idx = arg_int(c, 0, ev);
            let delims: Vec<u8> = c
                .args
                .get(1)
                .map(|d| d.as_bytes().to_vec())
                .unwrap_or_else(|| b" ".to_vec());
            let mut parts: Vec<&[u8]> = v.split(|b| delims.contains(b)).collect();
            if c.kind == K::Word {
                parts.retain(|p| !p.is_empty());
            }
            let count = c
                .args
                .get(2)
                .and_then(|a| a.parse::<usize>().ok())
                .unwrap_or(1)
                .max(1);
            let start = if idx > 0 {
                idx as usize - 1
            } else if idx < 0 && (-idx) as usize <= parts.len() {
                parts.len() - (-idx) as usize
            } else {
                return Ok(None);
            };
            if start >= parts.len() {
                return Ok(None);
            }
            let end = (start + count).min(parts.len());
            let sep = delims.first().copied().unwrap_or(b' ');
            Sample::Str(parts[start..end].join(&sep))
        }
        K::Regsub => {
            let re = c.re.as_ref().ok_or("regsub: no regex")?;
            let repl = c.args.get(1).map(String::as_str).unwrap_or("");
            let global = c.args.get(2).is_some_and(|f| f.contains('g'));
            Sample::Str(regex_replace(re, &bytes(), repl, global))
        }
        K::Map(method) => {
            let file = c.args.first().ok_or("map needs a file")?;
            let map = ev
                .txn
                .borrow()
                .shared
                .maps
                .get(file, false)
                .map_err(|e| format!("map {file}: {e}"))?;
            let found = map
                .write()
                .ok()
                .and_then(|mut m| m.lookup(method, &bytes()));
            match (found, c.args.get(1)) {
                (Some(v), _) => Sample::Str(v.into_bytes()),
                (None, Some(d)) => Sample::Str(d.as_bytes().to_vec()),
                (None, None) => return Ok(None),
            }
        }
        K::Add => Sample::Int(input.as_int().wrapping_add(arg_int(c, 0, ev))),
        K::Sub => Sample::Int(input.as_int().wrapping_sub(arg_int(c, 0, ev))),
        K::Mul => Sample::Int(input.as_int().wrapping_mul(arg_int(c, 0, ev))),
        K::Div => match arg_int(c, 0, ev) {
            0 => Sample::Int(i64::MAX),
            d => Sample::Int(input.as_int().wrapping_div(d)),
        },
        K::Mod => match arg_int(c, 0, ev) {
            0 => Sample::Int(0),
            d => Sample::Int(input.as_int().wrapping_rem(d)),
        },
        K::Ipmask => {
            let ip = match &input {
                Sample::Ip(ip) => *ip,
                other => match std::str::from_utf8(&other.as_bytes())
                    .ok()
                    .and_then(|s| s.parse().ok())
                {
                    Some(ip) => ip,
                    None => return Ok(None),
                },
            };
            let Some(Pattern::Net(_, bits)) = crate::map::parse_net(&format!(
                "0.0.0.0/{}",
                c.args.first().map(String::as_str).unwrap_or("32")
            )) else {
                return Ok(None);
            };
            match ip {
                IpAddr::V4(v) => {
                    let m = if bits == 0 {
                        0
                    } else {
                        u32::MAX << (32 - bits as u32)
                    };
                    Sample::Ip(IpAddr::V4((u32::from(v) & m).into()))
                }
                v6 => Sample::Ip(v6),
            }
        }
        K::Concat => {
            let mut v = c
                .args
                .first()
                .map(|a| a.as_bytes().to_vec())
                .unwrap_or_default();
            v.splice(0..0, bytes());
            if let Some(var) = c.args.get(1)
                && let Some(s) = ev.txn.borrow().get_var(var)
            {
                v.extend_from_slice(&s.as_bytes());
            }
            if let Some(suffix) = c.args.get(2) {
                v.extend_from_slice(suffix.as_bytes());
            }
            Sample::Str(v)
        }
    }))
}

/// One ACL: an expression, a match method and patterns.
#[derive(Debug, Clone)]
pub struct Acl {
    /// The sample expression.
    pub expr: Expr,
    /// How to match.
    pub method: MatchMethod,
    /// `-i`.
    pub ignore_case: bool,
    /// Literal patterns.
    pub patterns: Vec<Pattern>,
    /// Pattern files (`-f`), looked up at match time so `core.add_acl` counts.
    pub files: Vec<String>,
}

/// Fetch name suffixes that imply a match method (`path_beg`, `hdr_sub(x)`).
const SUFFIXES: &[(&str, MatchMethod)] = &[
    ("_beg", MatchMethod::Beg),
    ("_end", MatchMethod::End),
    ("_sub", MatchMethod::Sub),
    ("_reg", MatchMethod::Reg),
    ("_dir", MatchMethod::Dir),
    ("_dom", MatchMethod::Dom),
    ("_len", MatchMethod::Len),
    ("_ip", MatchMethod::Ip),
    ("_cnt", MatchMethod::Int),
];

/// Parses an ACL's words: `fetch [flags] patterns...`.
pub fn parse_acl(words: &[String], names: &dyn LuaNames) -> Result<Acl, String> {
    let first = words.first().ok_or("missing sample fetch")?;
    let mut implied = None;
    let mut expr_text = first.clone();
    if fetch_by_name(&name_and_args(&split_top(first, ',')[0])?.0).is_none() {
        let (fname, _) = name_and_args(&split_top(first, ',')[0])?;
        for (suf, m) in SUFFIXES {
            if let Some(base) = fname.strip_suffix(suf)
                && fetch_by_name(base).is_some()
            {
                implied = Some(*m);
                let rest = &first[fname.len()..];
                expr_text = if *suf == "_cnt" {
                    format!("{base}_cnt{rest}")
                } else {
                    format!("{base}{rest}")
                };
                break;
            }
        }
    }
    let expr = parse_expr(&expr_text, names)?;
    let mut method = implied;
    let mut ignore_case = false;
    let mut files = Vec::new();
    let mut i = 1;
    while i < words.len() && words[i].starts_with('-') {
        match words[i].as_str() {
            "-i" => ignore_case = true,
            "-m" => {
                i += 1;
                let m = words.get(i).ok_or("-m needs a method")?;
                method = Some(
                    MatchMethod::parse(m).ok_or_else(|| format!("unknown match method '{m}'"))?,
                );
            }
            "-f" => {
                i += 1;
                files.push(words.get(i).ok_or("-f needs a file")?.clone());
            }
            "--" => {
                i += 1;
                break;
            }
            "-u" | "-n" | "-M" => {}
            other => return Err(format!("unknown ACL flag '{other}'")),
        }
        i += 1;
    }
    let method = method.unwrap_or(match expr.fetch.kind {
        FetchKind::Src | FetchKind::Dst => MatchMethod::Ip,
        FetchKind::SrcPort
        | FetchKind::DstPort
        | FetchKind::Status
        | FetchKind::ReqHdrCnt
        | FetchKind::ResHdrCnt
        | FetchKind::HdrCnt
        | FetchKind::Int
        | FetchKind::ReqBodyLen
        | FetchKind::ReqLen
        | FetchKind::Rand
        | FetchKind::Date => MatchMethod::Int,
        FetchKind::AlwaysTrue | FetchKind::AlwaysFalse | FetchKind::SslFc | FetchKind::Bool => {
            MatchMethod::Bool
        }
        _ => MatchMethod::Str,
    });
    let mut patterns = Vec::new();
    let mut rest = words[i..].iter();
    while let Some(w) = rest.next() {
        // Integer operators: `gt 3`, `le 10`, ...
        if matches!(method, MatchMethod::Int | MatchMethod::Len)
            && let Some(op) = ["eq", "ge", "gt", "le", "lt"]
                .iter()
                .find(|o| **o == w.as_str())
        {
            let v: i64 = rest
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("'{op}' needs an integer"))?;
            let (a, b) = match *op {
                "eq" => (v, v),
                "ge" => (v, i64::MAX),
                "gt" => (v.saturating_add(1), i64::MAX),
                "le" => (i64::MIN, v),
                _ => (i64::MIN, v.saturating_sub(1)),
            };
            patterns.push(Pattern::Int(a, b));
            continue;
        }
        patterns.push(crate::map::compile(method, w, ignore_case)?);
    }
    for f in &files {
        if std::fs::metadata(f).is_err() {
            return Err(format!("cannot open ACL file '{f}'"));
        }
    }
    Ok(Acl {
        expr,
        method,
        ignore_case,
        patterns,
        files,
    })
}

impl Acl {
    /// Whether the ACL matches the transaction.
    pub fn matches(&self, ev: &Eval<'_>) -> Result<bool, String> {
        let values = self.expr.eval_all(ev)?;
        match self.method {
            MatchMethod::Found => return Ok(!values.is_empty()),
            MatchMethod::Bool => return Ok(values.iter().any(|v| v.as_bool())),
            _ => {}
        }
        for v in &values {
            let b = v.as_bytes();
            if self
                .patterns
                .iter()
                .any(|p| crate::map::matches(self.method, p, &b, self.ignore_case))
            {
                return Ok(true);
            }
            for f in &self.files {
                let shared = ev.txn.borrow().shared.clone();
                if let Ok(map) = shared.maps.get(f, true)
                    && let Ok(m) = map.read()
                {
                    for (k, _) in &m.entries {
                        if let Ok(p) = crate::map::compile(self.method, k, self.ignore_case)
                            && crate::map::matches(self.method, &p, &b, self.ignore_case)
                        {
                            return Ok(true);
                        }
                    }
                }
            }
        }
        Ok(false)
    }
}

/// A term of a condition: a named ACL or an anonymous one, maybe negated.
#[derive(Debug, Clone)]
pub enum Term {
    /// Reference to `acl NAME` in the proxy (or a predefined one).
    Named(String),
    /// `{ fetch -m ... }`.
    Anon(Box<Acl>),
}

/// `if|unless` condition: OR of ANDs of (possibly negated) terms.
#[derive(Debug, Clone)]
pub struct Cond {
    /// `unless` instead of `if`.
    pub unless: bool,
    /// Alternatives, each a conjunction.
    pub any: Vec<Vec<(bool, Term)>>,
}

/// Predefined ACL names HAProxy knows.
pub const PREDEFINED_ACLS: &[&str] = &[
    "TRUE",
    "FALSE",
    "HTTP",
    "HTTP_1.0",
    "HTTP_1.1",
    "METH_GET",
    "METH_POST",
    "METH_HEAD",
    "METH_PUT",
    "METH_DELETE",
    "METH_OPTIONS",
    "METH_CONNECT",
    "LOCALHOST",
    "REQ_CONTENT",
];

/// Parses the words after `if`/`unless`.
pub fn parse_cond(unless: bool, words: &[String], names: &dyn LuaNames) -> Result<Cond, String> {
    let mut any = vec![Vec::new()];
    let mut i = 0;
    while i < words.len() {
        let w = &words[i];
        if w == "||" || w == "or" {
            any.push(Vec::new());
            i += 1;
            continue;
        }
        let (neg, w) = match w.strip_prefix('!') {
            Some("") => {
                i += 1;
                (
                    true,
                    words.get(i).ok_or("'!' at end of condition")?.as_str(),
                )
            }
            Some(rest) => (true, rest),
            None => (false, w.as_str()),
        };
        let term = if w == "{" {
            let start = i + 1;
            let end = words[start..]
                .iter()
                .position(|x| x == "}")
                .ok_or("missing '}' in condition")?
                + start;
            let acl = parse_acl(&words[start..end], names)?;
            i = end;
            Term::Anon(Box::new(acl))
        } else {
            Term::Named(w.to_string())
        };
        if let Some(last) = any.last_mut() {
            last.push((neg, term));
        }
        i += 1;
    }
    if any.iter().any(|a| a.is_empty()) {
        return Err("empty condition".into());
    }
    Ok(Cond { unless, any })
}

/// Looks named ACLs up (the proxy's `acl` lines).
pub trait AclScope {
    /// The ACL lines with that name (they OR together).
    fn acls(&self, name: &str) -> Option<&[Acl]>;
}

fn predefined(name: &str, ev: &Eval<'_>) -> Option<bool> {
    let st = ev.txn.borrow();
    Some(match name {
        "TRUE" => true,
        "FALSE" => false,
        "HTTP" => st.http,
        "HTTP_1.0" => st.http && st.req.minor == 0,
        "HTTP_1.1" => st.http && st.req.minor == 1,
        "METH_GET" => st.req.method == "GET" || st.req.method == "HEAD",
        "METH_POST" => st.req.method == "POST",
        "METH_HEAD" => st.req.method == "HEAD",
        "METH_PUT" => st.req.method == "PUT",
        "METH_DELETE" => st.req.method == "DELETE",
        "METH_OPTIONS" => st.req.method == "OPTIONS",
        "METH_CONNECT" => st.req.method == "CONNECT",
        "LOCALHOST" => st.src.ip().is_loopback(),
        "REQ_CONTENT" => !st.req_chan.input().is_empty(),
        _ => return None,
    })
}

impl Cond {
    /// Evaluates the condition.
    pub fn eval(&self, scope: &dyn AclScope, ev: &Eval<'_>) -> Result<bool, String> {
        let mut result = false;
        for conj in &self.any {
            let mut all = true;
            for (neg, term) in conj {
                let v = match term {
                    Term::Anon(acl) => acl.matches(ev)?,
                    Term::Named(n) => match scope.acls(n) {
                        Some(list) => {
                            let mut m = false;
                            for a in list {
                                if a.matches(ev)? {
                                    m = true;
                                    break;
                                }
                            }
                            m
                        }
                        None => predefined(n, ev).ok_or_else(|| format!("unknown ACL '{n}'"))?,
                    },
                };
                if v == *neg {
                    all = false;
                    break;
                }
            }
            if all {
                result = true;
                break;
            }
        }
        Ok(result != self.unless)
    }

    /// Named ACLs referenced (for validation).
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.any.iter().flatten().filter_map(|(_, t)| match t {
            Term::Named(n) => Some(n.as_str()),
            Term::Anon(_) => None,
        })
    }
}

/// One piece of a log-format string.
#[derive(Debug, Clone)]
pub enum FmtPart {
    /// Literal text.
    Lit(String),
    /// `%[expr]`.
    Expr(Box<Expr>),
    /// `%ci`, `%ST`, ... (the alias letters).
    Alias(String),
}

/// A parsed log-format string (also used by `set-header` values).
#[derive(Debug, Clone, Default)]
pub struct LogFormat {
    /// The pieces in order.
    pub parts: Vec<FmtPart>,
}

const ALIASES: &[&str] = &[
    "ci", "cp", "fi", "fp", "f", "ft", "b", "s", "ST", "r", "HM", "HU", "HP", "HV", "Tt", "Tr",
    "TR", "Ta", "B", "t", "T", "Ts", "ID", "pid", "H", "bi", "bp", "si", "sp", "U", "CC", "CS",
    "ts", "tsc", "ac", "fc", "bc", "sc", "rc", "sq", "bq", "hr", "hs", "hrl", "hsl", "rt", "lc",
];

impl LogFormat {
    /// Parses a log-format string.
    pub fn parse(text: &str, names: &dyn LuaNames) -> Result<LogFormat, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let b = text.as_bytes();
        let mut i = 0;
        while i < b.len() {
            if b[i] != b'%' {
                let ch = text[i..].chars().next().unwrap_or(' ');
                lit.push(ch);
                i += ch.len_utf8();
                continue;
            }
            if b.get(i + 1) == Some(&b'%') {
                lit.push('%');
                i += 2;
                continue;
            }
            let mut j = i + 1;
            // Optional `{+Q,...}` flags: accepted and ignored.
            if b.get(j) == Some(&b'{') {
                j = text[j..]
                    .find('}')
                    .map(|k| j + k + 1)
                    .ok_or("missing '}' in log-format flags")?;
            }
            if !lit.is_empty() {
                parts.push(FmtPart::Lit(std::mem::take(&mut lit)));
            }
            if b.get(j) == Some(&b'[') {
                let mut depth = 0;
                let mut k = j;
                while k < b.len() {
                    match b[k] {
                        b'[' => depth += 1,
                        b']' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    k += 1;
                }
                if k >= b.len() {
                    return Err(format!("missing ']' in '{text}'"));
                }
                parts.push(FmtPart::Expr(Box::new(parse_expr(&text[j + 1..k], names)?)));
                i = k + 1;
            } else {
                let alias = ALIASES
                    .iter()
                    .filter(|a| text[j..].starts_with(**a))
                    .max_by_key(|a| a.len())
                    .ok_or_else(|| format!("unknown log-format variable at '{}'", &text[i..]))?;
                parts.push(FmtPart::Alias(alias.to_string()));
                i = j + alias.len();
            }
        }
        if !lit.is_empty() {
            parts.push(FmtPart::Lit(lit));
        }
        Ok(LogFormat { parts })
    }

    /// Whether it is a plain literal (fast path).
    pub fn literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [FmtPart::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// Renders the string; `alias` fills `%xx` variables. Missing samples
    /// render as `-` in logs, as nothing elsewhere (`dash`).
    pub fn render(
        &self,
        ev: &Eval<'_>,
        alias: &dyn Fn(&str) -> String,
        dash: bool,
    ) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for p in &self.parts {
            match p {
                FmtPart::Lit(s) => out.extend_from_slice(s.as_bytes()),
                FmtPart::Expr(e) => match e.eval(ev)? {
                    Some(s) => out.extend_from_slice(&s.as_bytes()),
                    None if dash => out.push(b'-'),
                    None => {}
                },
                FmtPart::Alias(a) => out.extend_from_slice(alias(a).as_bytes()),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_match_known_values() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
        assert_eq!(djb2(b""), 5381);
        assert_eq!(djb2(b"a"), 5381 * 33 + 97);
        assert_eq!(sdbm(b"a"), 97);
        assert_ne!(wt6(b"abc"), wt6(b"abd"));
    }

    #[test]
    fn expression_parsing() {
        let e = parse_expr("req.hdr(host,1),lower,regsub(\"^www\\.\",,)", &AnyLuaNames).unwrap();
        assert_eq!(e.fetch.kind, FetchKind::ReqHdr);
        assert_eq!(e.fetch.args, vec!["host", "1"]);
        assert_eq!(e.convs.len(), 2);
        assert!(
            parse_expr("nope", &AnyLuaNames)
                .unwrap_err()
                .contains("unknown sample fetch")
        );
        assert!(
            parse_expr("src,nope", &AnyLuaNames)
                .unwrap_err()
                .contains("unknown converter")
        );
    }

    #[test]
    fn decoding_and_escaping() {
        assert_eq!(url_decode(b"a%20b+c%2"), b"a b c%2".to_vec());
        assert_eq!(json_escape(b"a\"b\n"), b"a\\\"b\\n".to_vec());
        let re = lua::Pcre::new("o").unwrap();
        assert_eq!(regex_replace(&re, b"foo", "0", true), b"f00".to_vec());
        assert_eq!(regex_replace(&re, b"foo", "0", false), b"f0o".to_vec());
    }

    #[test]
    fn log_format_parsing() {
        let f = LogFormat::parse("%ci:%cp [%t] %[src] 100%%", &AnyLuaNames).unwrap();
        assert_eq!(f.parts.len(), 8);
        assert!(LogFormat::parse("%[nope]", &AnyLuaNames).is_err());
    }
}
