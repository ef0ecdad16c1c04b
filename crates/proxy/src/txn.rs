//! The state of one transaction (an HTTP request/response pair, or a TCP
//! stream), shared between the proxy engine and the Lua objects (`TXN`,
//! `HTTP`, `Channel`, ...) that scripts hold while it is alive.

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use crate::sample::Sample;
use crate::shared::Shared;

/// A handle on a transaction's state; cheap to clone into Lua objects.
pub type TxnHandle = Rc<RefCell<TxnState>>;

/// Variables of one scope (`sess`, `txn`, `req`, `res`).
pub type VarMap = HashMap<String, Sample>;

/// An HTTP request head as the proxy forwards it.
#[derive(Debug, Clone, Default)]
pub struct ReqHead {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Request target as sent (path and query).
    pub uri: String,
    /// Minor version: 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// Header fields in order; names keep their case.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// An HTTP response head.
#[derive(Debug, Clone, Default)]
pub struct ResHead {
    /// Status code.
    pub status: u16,
    /// Reason phrase.
    pub reason: String,
    /// Minor version.
    pub minor: u8,
    /// Header fields in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Header list helpers shared by request and response heads.
pub trait Headers {
    /// The header fields.
    fn fields(&self) -> &Vec<(String, Vec<u8>)>;
    /// The header fields, mutable.
    fn fields_mut(&mut self) -> &mut Vec<(String, Vec<u8>)>;

    /// Values of all fields named `name` (case-insensitive), whole lines.
    fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.fields()
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
    /// Like [`Headers::values`], borrowed: the trimmed comma-separated
    /// values of all fields named `name`, without copying them.
    fn value_iter<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.get_all(name)
            .flat_map(|v| v.split(|b| *b == b',').map(trim))
    }
    /// Comma-separated values of all fields named `name` (HAProxy's `hdr`).
    fn values(&self, name: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for v in self.get_all(name) {
            for part in v.split(|b| *b == b',') {
                out.push(trim(part).to_vec());
            }
        }
        out
    }
    /// Removes all fields named `name`.
    fn remove(&mut self, name: &str) {
        self.fields_mut()
            .retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
    /// Appends a field.
    fn add(&mut self, name: &str, value: &[u8]) {
        self.fields_mut().push((name.to_string(), value.to_vec()));
    }
    /// Replaces all fields named `name` by one.
    fn set(&mut self, name: &str, value: &[u8]) {
        self.remove(name);
        self.add(name, value);
    }
}

impl Headers for ReqHead {
    fn fields(&self) -> &Vec<(String, Vec<u8>)> {
        &self.headers
    }
    fn fields_mut(&mut self) -> &mut Vec<(String, Vec<u8>)> {
        &mut self.headers
    }
}

impl Headers for ResHead {
    fn fields(&self) -> &Vec<(String, Vec<u8>)> {
        &self.headers
    }
    fn fields_mut(&mut self) -> &mut Vec<(String, Vec<u8>)> {
        &mut self.headers
    }
}

/// Trims optional whitespace (SP, HTAB) at both ends.
pub fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| *b != b' ' && *b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end.max(start)]
}

impl ReqHead {
    /// The path part of the URI (before `?`), absolute-form reduced to its path.
    pub fn path(&self) -> &str {
        let uri = self.uri.as_str();
        let uri = strip_authority(uri);
        match uri.find('?') {
            Some(i) => &uri[..i],
            None => uri,
        }
    }
    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.uri.find('?').map(|i| &self.uri[i + 1..])
    }
    /// Replaces the path, keeping the query.
    pub fn set_path(&mut self, path: &str) {
        self.uri = match self.query() {
            Some(q) => format!("{path}?{q}"),
            None => path.to_string(),
        };
    }
    /// Replaces the query (an empty string removes it; a leading `?` is accepted).
    pub fn set_query(&mut self, query: &str) {
        let path = self.path().to_string();
        let q = query.strip_prefix('?').unwrap_or(query);
        self.uri = if q.is_empty() {
            path
        } else {
            format!("{path}?{q}")
        };
    }
}

fn strip_authority(uri: &str) -> &str {
    if let Some(rest) = uri
        .strip_prefix("http://")
        .or_else(|| uri.strip_prefix("https://"))
    {
        match rest.find('/') {
            Some(i) => &rest[i..],
            None => "/",
        }
    } else {
        uri
    }
}

/// A channel buffer (`txn.req` / `txn.res`): an output part already
/// scheduled for forwarding, followed by an input part scripts inspect.
#[derive(Debug, Default)]
pub struct Chan {
    /// Output bytes followed by input bytes.
    pub buf: Vec<u8>,
    /// Length of the output part at the front of `buf`.
    pub out: usize,
    /// Bytes `Channel.send` asked to send immediately (to the client for
    /// `txn.res`, to the server for `txn.req`).
    pub immediate: Vec<u8>,
    /// Whether the peer closed its side (no more input will come).
    pub shut: bool,
}

impl Chan {
    /// The input part.
    pub fn input(&self) -> &[u8] {
        &self.buf[self.out.min(self.buf.len())..]
    }
    /// Everything to forward: output then input.
    pub fn take_all(&mut self) -> Vec<u8> {
        self.out = 0;
        std::mem::take(&mut self.buf)
    }
}

/// How a script ended the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    /// `txn:done()` / `core.done()` / `txn:finish()`: send what is pending, stop.
    Done,
    /// `txn:close()`: close the session.
    Close,
}

/// Which half of the transaction rules are running on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Request rules.
    Request,
    /// Response rules.
    Response,
}

/// Everything about one transaction.
pub struct TxnState {
    /// Client address.
    pub src: SocketAddr,
    /// Local (listener) address.
    pub dst: SocketAddr,
    /// HTTP mode (else TCP).
    pub http: bool,
    /// The request head (HTTP mode).
    pub req: ReqHead,
    /// The response head once received or produced.
    pub res: Option<ResHead>,
    /// Buffered request body (complete when `req_body_complete`).
    pub req_body: Vec<u8>,
    /// Whether `req_body` holds the whole body.
    pub req_body_complete: bool,
    /// txn/req/res scoped variables, keyed `scope.name`.
    pub vars: VarMap,
    /// Session-scoped variables (live as long as the client connection).
    pub sess: Rc<RefCell<VarMap>>,
    /// Process-wide state.
    pub shared: Arc<Shared>,
    /// `TXN.set_priv` data.
    pub priv_data: Option<lua::mlua::Value>,
    /// Request channel (TCP mode data from the client).
    pub req_chan: Chan,
    /// Response channel.
    pub res_chan: Chan,
    /// Set by `done`/`close`.
    pub terminate: Option<Termination>,
    /// Frontend name.
    pub frontend: Arc<str>,
    /// Backend chosen, if any.
    pub backend: Option<Arc<str>>,
    /// Server chosen, if any.
    pub server: Option<Arc<str>>,
    /// Request or response rules.
    pub phase: Phase,
    /// A redirect asked by the seed-era `txn.http.redirect`.
    pub redirect: Option<String>,
    /// Log level set by `TXN.set_loglevel` (None: default).
    pub loglevel: Option<u8>,
    /// Scheduling hints set by scripts (accepted, recorded).
    pub priority: (i64, i64),
}

impl TxnState {
    /// A fresh transaction for a connection.
    pub fn new(
        src: SocketAddr,
        dst: SocketAddr,
        http: bool,
        sess: Rc<RefCell<VarMap>>,
        shared: Arc<Shared>,
        frontend: Arc<str>,
    ) -> TxnState {
        TxnState {
            src,
            dst,
            http,
            req: ReqHead::default(),
            res: None,
            req_body: Vec::new(),
            req_body_complete: false,
            vars: VarMap::new(),
            sess,
            shared,
            priv_data: None,
            req_chan: Chan::default(),
            res_chan: Chan::default(),
            terminate: None,
            frontend,
            backend: None,
            server: None,
            phase: Phase::Request,
            redirect: None,
            loglevel: None,
            priority: (0, 0),
        }
    }

    /// Frees what the transaction holds once it is over. Scripts' TXN,
    /// HTTP, applet and channel objects keep this state alive until the
    /// Lua collector finalizes them; releasing it here frees the heads,
    /// bodies and variables with the request instead of in a burst inside
    /// a later collection (and breaks `set_priv` cycles through the TXN).
    /// An object a script kept past its request then sees an empty
    /// transaction.
    pub fn release(&mut self) {
        self.req = ReqHead::default();
        self.res = None;
        self.req_body = Vec::new();
        self.vars = VarMap::new();
        self.priv_data = None;
        self.req_chan = Chan::default();
        self.res_chan = Chan::default();
        self.redirect = None;
    }

    /// Reads a variable `scope.name` (`proc`, `sess`, `txn`, `req`, `res`).
    pub fn get_var(&self, full: &str) -> Option<Sample> {
        let (scope, _) = full.split_once('.')?;
        match scope {
            "proc" => self.shared.get_proc_var(full),
            "sess" => self.sess.borrow().get(full).cloned(),
            "txn" | "req" | "res" => self.vars.get(full).cloned(),
            _ => None,
        }
    }

    /// Sets a variable; false when the scope is unknown.
    pub fn set_var(&mut self, full: &str, value: Sample) -> bool {
        let Some((scope, name)) = full.split_once('.') else {
            return false;
        };
        if name.is_empty() {
            return false;
        }
        match scope {
            "proc" => self.shared.set_proc_var(full, Some(value)),
            "sess" => {
                self.sess.borrow_mut().insert(full.to_string(), value);
            }
            "txn" | "req" | "res" => {
                self.vars.insert(full.to_string(), value);
            }
            _ => return false,
        }
        true
    }

    /// Removes a variable.
    pub fn unset_var(&mut self, full: &str) -> bool {
        let Some((scope, _)) = full.split_once('.') else {
            return false;
        };
        match scope {
            "proc" => self.shared.set_proc_var(full, None),
            "sess" => {
                self.sess.borrow_mut().remove(full);
            }
            "txn" | "req" | "res" => {
                self.vars.remove(full);
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query() {
        let mut r = ReqHead {
            uri: "/a/b?x=1".into(),
            ..Default::default()
        };
        assert_eq!(r.path(), "/a/b");
        assert_eq!(r.query(), Some("x=1"));
        r.set_path("/c");
        assert_eq!(r.uri, "/c?x=1");
        r.set_query("");
        assert_eq!(r.uri, "/c");
        let abs = ReqHead {
            uri: "http://h/p?q".into(),
            ..Default::default()
        };
        assert_eq!(abs.path(), "/p");
    }

    #[test]
    fn header_values_split_on_commas() {
        let mut h = ReqHead::default();
        h.add("X-A", b"1, 2");
        h.add("x-a", b"3");
        assert_eq!(
            h.values("x-A"),
            vec![b"1".to_vec(), b"2".to_vec(), b"3".to_vec()]
        );
        h.set("X-A", b"z");
        assert_eq!(h.get_all("x-a").collect::<Vec<_>>(), vec![&b"z"[..]]);
    }
}
