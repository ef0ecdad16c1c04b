//! HAProxy's Lua API on one worker thread's interpreter: `core`, `TXN`,
//! `Fetches`, `Converters`, `Channel`, `HTTP`, `AppletHTTP`, `AppletTCP`,
//! `Socket`, `Map`, with the execution contexts and the `tune.lua.*` limits.
//!
//! Each worker thread owns its interpreter (mlua without `send`), so no lock
//! is ever taken around Lua. Functions that look blocking (`core.sleep`,
//! `Socket:receive`, `AppletTCP:getline`, ...) are mlua async functions:
//! calling them from an action suspends that script's coroutine and the
//! thread's event loop serves other connections meanwhile. The instruction
//! hook yields every `tune.lua.forced-yield` instructions for the same
//! reason, and enforces the session/service/task and burst timeouts.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use lua::mlua::{
    self, AnyUserData, Function, HookTriggers, Lua, MetaMethod, Table, UserData, UserDataFields,
    UserDataMethods, Value, Variadic, VmState,
};
use lua::{HostOptions, LibSet, LuaHost};

use crate::config::{Config, Global, ScriptNames};
use crate::map::{MapData, MatchMethod};
use crate::sample::{self, Eval, LuaNames, LuaSampler, Sample};
use crate::shared::Shared;
use crate::socket::LuaSocket;
use crate::txn::Headers as _;
use crate::txn::{Chan, Phase, ReqHead, ResHead, Termination, TxnHandle};

/// Failure to build a worker's Lua state.
#[derive(Debug, thiserror::Error)]
pub enum LuaSetupError {
    /// The interpreter could not be created.
    #[error("{0}")]
    Host(#[from] lua::LuaHostError),
    /// A file failed to load.
    #[error("{loc}: {msg}")]
    Load {
        /// `file:line` of the `lua-load` directive.
        loc: String,
        /// Lua's message.
        msg: String,
    },
    /// Registering the API failed.
    #[error("setting up the HAProxy Lua API: {0}")]
    Api(#[from] mlua::Error),
}

/// Where Lua code is running (HAProxy's execution contexts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ctx {
    /// Loading a file's top level.
    Body,
    /// A `core.register_init` function.
    Init,
    /// Actions, services and tasks.
    Runtime,
    /// A sample fetch.
    Fetch,
    /// A converter.
    Converter,
}

impl Ctx {
    fn name(self) -> &'static str {
        match self {
            Ctx::Body => "body",
            Ctx::Init => "init",
            Ctx::Runtime => "runtime",
            Ctx::Fetch => "sample-fetch",
            Ctx::Converter => "converter",
        }
    }
}

/// A registered action.
#[derive(Clone)]
pub struct ActionReg {
    func: Function,
    /// Bit set of ACTION_KINDS indices.
    kinds: u8,
    nargs: usize,
}

const ACTION_KINDS: [&str; 4] = ["http-req", "http-res", "tcp-req", "tcp-res"];

fn kind_bit(kind: &str) -> u8 {
    ACTION_KINDS
        .iter()
        .position(|k| *k == kind)
        .map_or(0, |i| 1 << i)
}

/// What scripts registered.
#[derive(Default)]
pub struct Registry {
    actions: HashMap<String, ActionReg>,
    fetches: HashMap<String, Function>,
    converters: HashMap<String, Function>,
    services: HashMap<String, (Function, bool)>,
    inits: Vec<Function>,
    tasks: Vec<(Function, Vec<Value>)>,
}

/// Limits from `tune.lua.*`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Instructions between forced yields.
    pub forced_yield: u32,
    /// Actions (and fetches/converters).
    pub session_timeout: Duration,
    /// Services.
    pub service_timeout: Duration,
    /// Tasks.
    pub task_timeout: Option<Duration>,
    /// Longest run without yielding.
    pub burst_timeout: Duration,
}

impl Limits {
    fn from_global(g: &Global) -> Limits {
        Limits {
            forced_yield: g.forced_yield,
            session_timeout: g.session_timeout,
            service_timeout: g.service_timeout,
            task_timeout: g.task_timeout,
            burst_timeout: g.burst_timeout,
        }
    }
}

#[derive(Clone, Copy)]
struct ExecSlot {
    burst_start: Instant,
    used_before: Duration,
    limit: Option<Duration>,
}

/// State reachable from Lua callbacks (stored as app data).
pub struct WorkerCore {
    reg: RefCell<Registry>,
    /// Process-wide state.
    pub shared: Arc<Shared>,
    ctx: Cell<Ctx>,
    exec: Cell<Option<ExecSlot>>,
    limits: Limits,
    /// Worker thread index.
    pub thread_id: usize,
    /// Set while loading a `lua-load` (shared) file on a thread other than 0:
    /// its tasks run on thread 0 only.
    skip_tasks: Cell<bool>,
    /// Set by `txn:done()`/`core.done()`.
    done: Cell<Option<Termination>>,
    /// Native fetches as Lua functions, for `Fetches` (index 0) and for
    /// the seed-era `txn:<fetch>()` methods (index 1), by name.
    fetch_fns: [RefCell<HashMap<String, Function>>; 2],
    conv_fns: RefCell<HashMap<String, Function>>,
    errors: RefCell<lua::ErrorLog>,
    /// Running `core.register_task` tasks, aborted when the state retires.
    tasks: RefCell<Vec<tokio::task::AbortHandle>>,
    /// Finished coroutines kept for the next action or service: creating
    /// one per request (and collecting it later) costs more than the
    /// action itself.
    threads: RefCell<Vec<mlua::Thread>>,
    /// `AppletHTTP.send`, see [`applet_http_send`].
    applet_send: RefCell<Option<Function>>,
}

/// Coroutines kept per worker for reuse.
const THREAD_POOL: usize = 64;

impl WorkerCore {
    /// Sockets need the event loop: not in the body, fetch or converter contexts.
    pub fn check_socket_ctx(&self, what: &str) -> mlua::Result<()> {
        self.check_ctx(what, &[Ctx::Body, Ctx::Fetch, Ctx::Converter])
    }

    fn check_ctx(&self, what: &str, forbidden: &[Ctx]) -> mlua::Result<()> {
        let c = self.ctx.get();
        if forbidden.contains(&c) {
            return Err(mlua::Error::runtime(format!(
                "{what}: not available in the {} context",
                c.name()
            )));
        }
        Ok(())
    }
}

fn core_of(lua: &Lua) -> mlua::Result<Rc<WorkerCore>> {
    lua.app_data_ref::<Rc<WorkerCore>>()
        .map(|c| c.clone())
        .ok_or_else(|| mlua::Error::runtime("moonwire: worker state missing"))
}

/// One worker thread's Lua interpreter with the HAProxy API.
pub struct LuaWorker {
    host: LuaHost,
    core: Rc<WorkerCore>,
}

/// How a Lua action ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Returned normally.
    Continue,
    /// `done`/`close`.
    Terminated(Termination),
    /// Raised an error, ran too long or out of memory (message logged).
    Failed(String),
}

/// Tracks the pure Lua run time of one execution across its polls, so the
/// hook can enforce `tune.lua.*-timeout` without counting sleeps.
struct Tracked<F> {
    fut: F,
    core: Rc<WorkerCore>,
    used: Duration,
    limit: Option<Duration>,
}

impl<F: Future + Unpin> Future for Tracked<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.get_mut();
        let start = Instant::now();
        let prev = this.core.exec.replace(Some(ExecSlot {
            burst_start: start,
            used_before: this.used,
            limit: this.limit,
        }));
        let r = Pin::new(&mut this.fut).poll(cx);
        this.core.exec.set(prev);
        this.used += start.elapsed();
        r
    }
}

/// Lua value → sample.
pub fn lua_to_sample(v: &Value) -> Option<Sample> {
    match v {
        Value::String(s) => Some(Sample::Str(s.as_bytes().to_vec())),
        Value::Integer(i) => Some(Sample::Int(*i)),
        Value::Number(n) => Some(Sample::Int(*n as i64)),
        Value::Boolean(b) => Some(Sample::Bool(*b)),
        _ => None,
    }
}

/// Sample → Lua value (`strings`: always a string, `""` for none).
pub fn sample_to_lua(lua: &Lua, s: Option<Sample>, strings: bool) -> mlua::Result<Value> {
    Ok(match (s, strings) {
        (None, false) => Value::Nil,
        (None, true) => Value::String(lua.create_string("")?),
        (Some(Sample::Int(i)), false) => Value::Integer(i),
        (Some(Sample::Bool(b)), false) => Value::Boolean(b),
        (Some(Sample::Ip(ip)), _) => {
            // Formatted on the stack: an address is at most 45 bytes.
            use std::io::Write as _;
            let mut buf = [0u8; 64];
            let mut w = &mut buf[..];
            let _ = write!(w, "{ip}");
            let n = 64 - w.len();
            Value::String(lua.create_string(&buf[..n])?)
        }
        (Some(s), _) => Value::String(lua.create_string(&*s.as_bytes())?),
    })
}

fn value_to_arg(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        _ => String::new(),
    }
}

fn headers_table(lua: &Lua, fields: &[(String, Vec<u8>)]) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for (n, v) in fields {
        let key = n.to_ascii_lowercase();
        let entry: Table = match t.raw_get::<Option<Table>>(key.as_str())? {
            Some(e) => e,
            None => {
                let e = lua.create_table()?;
                t.raw_set(key.as_str(), e.clone())?;
                e
            }
        };
        let idx = entry.raw_len() as i64
            + if entry.raw_get::<Value>(0)?.is_nil() {
                0
            } else {
                1
            };
        entry.raw_set(idx, lua.create_string(v)?)?;
    }
    Ok(t)
}

// ---------------------------------------------------------------- TXN

/// `TXN` (and the seed-era `txn`).
#[derive(Clone)]
pub struct Txn {
    h: TxnHandle,
}

/// `Fetches` (`txn.f` / `txn.sf`).
pub struct Fetches {
    h: TxnHandle,
    strings: bool,
}

/// `Converters` (`txn.c` / `txn.sc`).
pub struct Converters {
    h: Option<TxnHandle>,
    strings: bool,
}

/// `Channel` (`txn.req` / `txn.res`).
pub struct Channel {
    h: TxnHandle,
    res: bool,
}

/// `HTTP` (`txn.http`).
pub struct Http {
    h: TxnHandle,
}

fn log_to(lua: &Lua, level: i64, msg: &str) -> mlua::Result<()> {
    let core = core_of(lua)?;
    core.shared.log(level.clamp(0, 7) as u8, msg);
    Ok(())
}

fn set_done(lua: &Lua, how: Termination) -> mlua::Result<()> {
    let core = core_of(lua)?;
    core.done.set(Some(how));
    Err(mlua::Error::runtime(
        "moonwire: transaction terminated by script",
    ))
}

fn add_sample_fields<T: 'static, F: UserDataFields<T>>(fields: &mut F, get: fn(&T) -> TxnHandle) {
    fields.add_field_method_get("f", move |lua, this| {
        lua.create_userdata(Fetches {
            h: get(this),
            strings: false,
        })
    });
    fields.add_field_method_get("sf", move |lua, this| {
        lua.create_userdata(Fetches {
            h: get(this),
            strings: true,
        })
    });
    fields.add_field_method_get("c", move |lua, this| {
        lua.create_userdata(Converters {
            h: Some(get(this)),
            strings: false,
        })
    });
    fields.add_field_method_get("sc", move |lua, this| {
        lua.create_userdata(Converters {
            h: Some(get(this)),
            strings: true,
        })
    });
}

fn add_var_methods<T: 'static, M: UserDataMethods<T>>(methods: &mut M, get: fn(&T) -> TxnHandle) {
    methods.add_method(
        "set_var",
        move |_, this, (name, value, ifexist): (String, Value, Option<bool>)| {
            let h = get(this);
            let mut st = h.borrow_mut();
            if ifexist == Some(true) && st.get_var(&name).is_none() {
                return Ok(());
            }
            match lua_to_sample(&value) {
                Some(s) => {
                    st.set_var(&name, s);
                }
                None => {
                    st.unset_var(&name);
                }
            }
            Ok(())
        },
    );
    methods.add_method("get_var", move |lua, this, name: String| {
        let v = get(this).borrow().get_var(&name);
        sample_to_lua(lua, v, false)
    });
    methods.add_method("unset_var", move |_, this, name: String| {
        Ok(get(this).borrow_mut().unset_var(&name))
    });
    methods.add_method("get_priv", move |_, this, ()| {
        Ok(get(this).borrow().priv_data.clone().unwrap_or(Value::Nil))
    });
    methods.add_method("set_priv", move |_, this, v: Value| {
        get(this).borrow_mut().priv_data = Some(v);
        Ok(())
    });
}

impl UserData for Txn {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        add_sample_fields(fields, |t: &Txn| t.h.clone());
        fields.add_field_method_get("req", |lua, this| {
            lua.create_userdata(Channel {
                h: this.h.clone(),
                res: false,
            })
        });
        fields.add_field_method_get("res", |lua, this| {
            lua.create_userdata(Channel {
                h: this.h.clone(),
                res: true,
            })
        });
        fields.add_field_method_get("http", |lua, this| {
            if this.h.borrow().http {
                Ok(Value::UserData(
                    lua.create_userdata(Http { h: this.h.clone() })?,
                ))
            } else {
                Ok(Value::Nil)
            }
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        add_var_methods(methods, |t: &Txn| t.h.clone());
        methods.add_method("log", |lua, _, (level, msg): (i64, String)| {
            log_to(lua, level, &msg)
        });
        methods.add_method("deflog", |lua, _, msg: String| log_to(lua, 6, &msg));
        methods.add_method("Debug", |lua, _, msg: String| log_to(lua, 7, &msg));
        methods.add_method("Info", |lua, _, msg: String| log_to(lua, 6, &msg));
        methods.add_method("Warning", |lua, _, msg: String| log_to(lua, 4, &msg));
        methods.add_method("Alert", |lua, _, msg: String| log_to(lua, 1, &msg));
        methods.add_method("get_headers", |lua, this, ()| {
            let st = this.h.borrow();
            let fields = if st.phase == Phase::Response {
                st.res
                    .as_ref()
                    .map(|r| r.headers.clone())
                    .unwrap_or_default()
            } else {
                st.req.headers.clone()
            };
            headers_table(lua, &fields)
        });
        methods.add_method("close", |lua, this, ()| {
            this.h.borrow_mut().terminate = Some(Termination::Close);
            set_done(lua, Termination::Close)
        });
        methods.add_method("done", |lua, this, _reply: Option<Value>| {
            this.h.borrow_mut().terminate = Some(Termination::Done);
            set_done(lua, Termination::Done)
        });
        methods.add_method("finish", |lua, this, ()| {
            this.h.borrow_mut().terminate = Some(Termination::Done);
            set_done(lua, Termination::Done)
        });
        methods.add_method("set_loglevel", |_, this, level: i64| {
            if !(0..=7).contains(&level) {
                return Err(mlua::Error::runtime(
                    "set_loglevel: level must be between 0 and 7",
                ));
            }
            this.h.borrow_mut().loglevel = Some(level as u8);
            Ok(())
        });
        methods.add_method("set_tos", |_, _, _tos: i64| Ok(()));
        methods.add_method("set_mark", |_, _, _mark: i64| Ok(()));
        methods.add_method("set_priority_class", |_, this, v: i64| {
            this.h.borrow_mut().priority.0 = v.clamp(-2047, 2047);
            Ok(())
        });
        methods.add_method("set_priority_offset", |_, this, v: i64| {
            this.h.borrow_mut().priority.1 = v.clamp(-524287, 524287);
            Ok(())
        });
        for name in ["get_req_buf", "req_channel"] {
            methods.add_method(name, |lua, this, ()| {
                lua.create_userdata(Channel {
                    h: this.h.clone(),
                    res: false,
                })
            });
        }
        for name in ["get_res_buf", "res_channel"] {
            methods.add_method(name, |lua, this, ()| {
                lua.create_userdata(Channel {
                    h: this.h.clone(),
                    res: true,
                })
            });
        }
        // Seed-era `txn:<fetch>(...)`: every native fetch as a method.
        methods.add_meta_method(MetaMethod::Index, |lua, _this, key: String| {
            if sample::fetch_by_name(&key).is_none() {
                return Ok(Value::Nil);
            }
            let f = fetch_function(lua, &key, true)?;
            Ok(Value::Function(f))
        });
    }
}

/// A function `(self, args...)` that runs native fetch `name` on the TXN
/// (or Fetches) it is called on. Cached per name.
fn fetch_function(lua: &Lua, name: &str, on_txn: bool) -> mlua::Result<Function> {
    let core = core_of(lua)?;
    let cache = &core.fetch_fns[usize::from(on_txn)];
    if let Some(f) = cache.borrow().get(name) {
        return Ok(f.clone());
    }
    let kind = sample::fetch_by_name(name).ok_or_else(|| {
        mlua::Error::runtime(format!("Fetches: sample fetch '{name}' is not implemented"))
    })?;
    let fname = name.to_string();
    // Without arguments (the common `txn.f:src()`) the expression is the
    // same on every call: built once.
    let no_args = sample::Expr {
        fetch: sample::Fetch {
            kind,
            name: fname.clone(),
            args: Vec::new(),
        },
        convs: Vec::new(),
    };
    let f = lua.create_function(move |lua, (ud, args): (AnyUserData, Variadic<Value>)| {
        let (h, strings) = if let Ok(f) = ud.borrow::<Fetches>() {
            (f.h.clone(), f.strings)
        } else if let Ok(t) = ud.borrow::<Txn>() {
            (t.h.clone(), false)
        } else if let Ok(a) = ud.borrow::<AppletHttp>() {
            (a.h.clone(), false)
        } else {
            return Err(mlua::Error::runtime(format!(
                "{fname}: called on a wrong object"
            )));
        };
        let with_args;
        let expr = if args.is_empty() {
            &no_args
        } else {
            with_args = sample::Expr {
                fetch: sample::Fetch {
                    kind,
                    name: fname.clone(),
                    args: args.iter().map(value_to_arg).collect(),
                },
                convs: Vec::new(),
            };
            &with_args
        };
        let v = expr
            .eval(&Eval { txn: &h, lua: None })
            .map_err(|e| mlua::Error::runtime(format!("{fname}: {e}")))?;
        sample_to_lua(lua, v, strings)
    })?;
    cache.borrow_mut().insert(name.to_string(), f.clone());
    Ok(f)
}

fn conv_function(lua: &Lua, name: &str) -> mlua::Result<Function> {
    let core = core_of(lua)?;
    if let Some(f) = core.conv_fns.borrow().get(name) {
        return Ok(f.clone());
    }
    let kind = sample::conv_by_name(name).ok_or_else(|| {
        mlua::Error::runtime(format!("Converters: converter '{name}' is not implemented"))
    })?;
    let cname = name.to_string();
    let f = lua.create_function(
        move |lua, (ud, input, args): (AnyUserData, Value, Variadic<Value>)| {
            let (h, strings) = {
                let c = ud.borrow::<Converters>()?;
                (c.h.clone(), c.strings)
            };
            let args: Vec<String> = args.iter().map(value_to_arg).collect();
            let re = if kind == sample::ConvKind::Regsub {
                let pat = args.first().cloned().unwrap_or_default();
                Some(
                    lua::Pcre::new(&pat)
                        .map_err(|e| mlua::Error::runtime(format!("regsub: {e}")))?,
                )
            } else {
                None
            };
            let conv = sample::Conv {
                kind,
                name: cname.clone(),
                args,
                re,
            };
            let Some(input) = lua_to_sample(&input) else {
                return sample_to_lua(lua, None, strings);
            };
            let h = match h {
                Some(h) => h,
                None => Rc::new(RefCell::new(crate::txn::TxnState::new(
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                    SocketAddr::from(([0, 0, 0, 0], 0)),
                    false,
                    Rc::default(),
                    core_of(lua)?.shared.clone(),
                    "".into(),
                ))),
            };
            let v = sample::run_conv(&conv, input, &Eval { txn: &h, lua: None })
                .map_err(|e| mlua::Error::runtime(format!("{cname}: {e}")))?;
            sample_to_lua(lua, v, strings)
        },
    )?;
    core.conv_fns
        .borrow_mut()
        .insert(name.to_string(), f.clone());
    Ok(f)
}

impl UserData for Fetches {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, _this, key: mlua::LuaString| {
            fetch_function(lua, &key.to_str()?, false)
        });
    }
}

impl UserData for Converters {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method(MetaMethod::Index, |lua, _this, key: String| {
            conv_function(lua, &key)
        });
    }
}

// ---------------------------------------------------------------- Channel

fn with_chan<R>(this: &Channel, f: impl FnOnce(&mut Chan) -> R) -> R {
    let mut st = this.h.borrow_mut();
    if this.res {
        f(&mut st.res_chan)
    } else {
        f(&mut st.req_chan)
    }
}

fn lua_str(lua: &Lua, b: &[u8]) -> mlua::Result<Value> {
    Ok(Value::String(lua.create_string(b)?))
}

fn check_phase(this: &Channel) -> mlua::Result<()> {
    let st = this.h.borrow();
    if !this.res && st.phase == Phase::Response && !st.http {
        // Allowed: the request channel stays readable in TCP response rules.
        return Ok(());
    }
    if this.res && st.phase == Phase::Request && st.res_chan.buf.is_empty() && !st.http {
        return Ok(());
    }
    Ok(())
}

impl UserData for Channel {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("dup", |lua, this, ()| {
            check_phase(this)?;
            let d = with_chan(this, |c| c.input().to_vec());
            if d.is_empty() && with_chan(this, |c| c.shut) {
                return Ok(Value::Nil);
            }
            lua_str(lua, &d)
        });
        methods.add_method("get", |lua, this, ()| {
            let d = with_chan(this, |c| {
                let out = c.out;
                c.buf.split_off(out)
            });
            if d.is_empty() && with_chan(this, |c| c.shut) {
                return Ok(Value::Nil);
            }
            lua_str(lua, &d)
        });
        methods.add_method("get_line", |lua, this, ()| {
            let d = with_chan(this, |c| {
                let input = c.input();
                let end = input
                    .iter()
                    .position(|b| *b == b'\n')
                    .map_or(input.len(), |i| i + 1);
                let out = c.out;
                c.buf.drain(out..out + end).collect::<Vec<u8>>()
            });
            if d.is_empty() && with_chan(this, |c| c.shut) {
                return Ok(Value::Nil);
            }
            lua_str(lua, &d)
        });
        methods.add_method(
            "line",
            |lua, this, (off, len): (Option<i64>, Option<i64>)| {
                let d = with_chan(this, |c| {
                    let input = c.input();
                    let start = (off.unwrap_or(0).max(0) as usize).min(input.len());
                    let rest = &input[start..];
                    let end = rest
                        .iter()
                        .position(|b| *b == b'\n')
                        .map_or(rest.len(), |i| i + 1);
                    let end = len.map_or(end, |l| end.min(l.max(0) as usize));
                    rest[..end].to_vec()
                });
                lua_str(lua, &d)
            },
        );
        methods.add_method(
            "data",
            |lua, this, (off, len): (Option<i64>, Option<i64>)| {
                let d = with_chan(this, |c| {
                    let input = c.input();
                    let start = (off.unwrap_or(0).max(0) as usize).min(input.len());
                    let end = len.map_or(input.len(), |l| {
                        (start + l.max(0) as usize).min(input.len())
                    });
                    input[start..end].to_vec()
                });
                lua_str(lua, &d)
            },
        );
        methods.add_method(
            "set",
            |_, this, (s, off, len): (mlua::LuaString, Option<i64>, Option<i64>)| {
                let data = s.as_bytes().to_vec();
                Ok(with_chan(this, |c| {
                    let input_len = c.buf.len() - c.out;
                    let start = c.out + (off.unwrap_or(0).max(0) as usize).min(input_len);
                    let end = len.map_or(c.buf.len(), |l| {
                        (start + l.max(0) as usize).min(c.buf.len())
                    });
                    c.buf.splice(start..end, data.iter().copied());
                    data.len() as i64
                }))
            },
        );
        methods.add_method("append", |_, this, s: mlua::LuaString| {
            let data = s.as_bytes().to_vec();
            Ok(with_chan(this, |c| {
                c.buf.extend_from_slice(&data);
                data.len() as i64
            }))
        });
        methods.add_method("prepend", |_, this, s: mlua::LuaString| {
            let data = s.as_bytes().to_vec();
            Ok(with_chan(this, |c| {
                let out = c.out;
                c.buf.splice(out..out, data.iter().copied());
                data.len() as i64
            }))
        });
        methods.add_method(
            "insert",
            |_, this, (s, off): (mlua::LuaString, Option<i64>)| {
                let data = s.as_bytes().to_vec();
                Ok(with_chan(this, |c| {
                    let at = c.out + (off.unwrap_or(0).max(0) as usize).min(c.buf.len() - c.out);
                    c.buf.splice(at..at, data.iter().copied());
                    data.len() as i64
                }))
            },
        );
        methods.add_method(
            "remove",
            |_, this, (off, len): (Option<i64>, Option<i64>)| {
                Ok(with_chan(this, |c| {
                    let input_len = c.buf.len() - c.out;
                    let start = c.out + (off.unwrap_or(0).max(0) as usize).min(input_len);
                    let end = len.map_or(c.buf.len(), |l| {
                        (start + l.max(0) as usize).min(c.buf.len())
                    });
                    c.buf.drain(start..end);
                    (end - start) as i64
                }))
            },
        );
        methods.add_method("send", |_, this, s: mlua::LuaString| {
            let data = s.as_bytes().to_vec();
            Ok(with_chan(this, |c| {
                c.immediate.extend_from_slice(&data);
                data.len() as i64
            }))
        });
        methods.add_method("forward", |_, this, n: i64| {
            Ok(with_chan(this, |c| {
                let n = (n.max(0) as usize).min(c.buf.len() - c.out);
                c.out += n;
                n as i64
            }))
        });
        for name in ["get_in_length", "input"] {
            methods.add_method(name, |_, this, ()| {
                Ok(with_chan(this, |c| (c.buf.len() - c.out) as i64))
            });
        }
        for name in ["get_out_length", "output"] {
            methods.add_method(name, |_, this, ()| Ok(with_chan(this, |c| c.out as i64)));
        }
        methods.add_method("is_full", |_, this, ()| {
            Ok(with_chan(this, |c| c.buf.len() >= 1 << 20))
        });
        methods.add_method("may_recv", |_, this, ()| {
            Ok(with_chan(this, |c| !c.shut && c.buf.len() < 1 << 20))
        });
        methods.add_method("is_resp", |_, this, ()| Ok(this.res));
    }
}

// ---------------------------------------------------------------- HTTP

fn replace_in_header(
    fields: &mut [(String, Vec<u8>)],
    name: &str,
    re: &lua::Pcre,
    repl: &str,
    per_value: bool,
) {
    for (n, v) in fields.iter_mut() {
        if !n.eq_ignore_ascii_case(name) {
            continue;
        }
        if per_value {
            let parts: Vec<Vec<u8>> = v
                .split(|b| *b == b',')
                .map(|p| {
                    let p = crate::txn::trim(p);
                    if re.is_match(p) {
                        sample::regex_replace(re, p, repl, false)
                    } else {
                        p.to_vec()
                    }
                })
                .collect();
            *v = parts.join(&b", "[..]);
        } else if re.is_match(v) {
            *v = sample::regex_replace(re, v, repl, false);
        }
    }
}

/// Applies a header edit to the request or response.
pub fn edit_headers(h: &TxnHandle, res: bool, f: impl FnOnce(&mut Vec<(String, Vec<u8>)>)) {
    let mut st = h.borrow_mut();
    if res {
        if let Some(r) = st.res.as_mut() {
            f(&mut r.headers);
        }
    } else {
        f(&mut st.req.headers);
    }
}

fn http_methods<M: UserDataMethods<Http>>(methods: &mut M) {
    for (res, prefix) in [(false, "req_"), (true, "res_")] {
        for name in ["get_headers", "get_header"] {
            methods.add_method(format!("{prefix}{name}"), move |lua, this, ()| {
                let st = this.h.borrow();
                let fields = if res {
                    st.res
                        .as_ref()
                        .map(|r| r.headers.clone())
                        .unwrap_or_default()
                } else {
                    st.req.headers.clone()
                };
                headers_table(lua, &fields)
            });
        }
        methods.add_method(
            format!("{prefix}add_header"),
            move |_, this, (n, v): (String, mlua::LuaString)| {
                let v = v.as_bytes().to_vec();
                edit_headers(&this.h, res, |f| f.push((n, v)));
                Ok(())
            },
        );
        methods.add_method(format!("{prefix}del_header"), move |_, this, n: String| {
            edit_headers(&this.h, res, |f| {
                f.retain(|(x, _)| !x.eq_ignore_ascii_case(&n))
            });
            Ok(())
        });
        methods.add_method(
            format!("{prefix}set_header"),
            move |_, this, (n, v): (String, mlua::LuaString)| {
                let v = v.as_bytes().to_vec();
                edit_headers(&this.h, res, |f| {
                    f.retain(|(x, _)| !x.eq_ignore_ascii_case(&n));
                    f.push((n, v));
                });
                Ok(())
            },
        );
        for (per_value, suffix) in [(false, "replace_header"), (true, "replace_value")] {
            methods.add_method(
                format!("{prefix}{suffix}"),
                move |_, this, (n, re, repl): (String, String, String)| {
                    let re =
                        lua::Pcre::new(&re).map_err(|e| mlua::Error::runtime(e.to_string()))?;
                    edit_headers(&this.h, res, |f| {
                        replace_in_header(f, &n, &re, &repl, per_value)
                    });
                    Ok(())
                },
            );
        }
    }
    methods.add_method("req_set_method", |_, this, m: String| {
        this.h.borrow_mut().req.method = m;
        Ok(())
    });
    methods.add_method("req_set_path", |_, this, p: String| {
        this.h.borrow_mut().req.set_path(&p);
        Ok(())
    });
    methods.add_method("req_set_query", |_, this, q: String| {
        this.h.borrow_mut().req.set_query(&q);
        Ok(())
    });
    methods.add_method("req_set_uri", |_, this, u: String| {
        this.h.borrow_mut().req.uri = u;
        Ok(())
    });
    methods.add_method(
        "res_set_status",
        |_, this, (code, reason): (i64, Option<String>)| {
            if !(100..=999).contains(&code) {
                return Err(mlua::Error::runtime("res_set_status: invalid status code"));
            }
            let mut st = this.h.borrow_mut();
            let r = st.res.get_or_insert_with(ResHead::default);
            r.status = code as u16;
            r.reason = reason.unwrap_or_default();
            Ok(())
        },
    );
}

impl UserData for Http {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        // Seed-era `txn.http.req.set_header(txn, ...)` tables.
        fields.add_field_function_get("req", |lua, _| seed_http_table(lua, false));
        fields.add_field_function_get("res", |lua, _| seed_http_table(lua, true));
        fields.add_field_function_get("redirect", |lua, _| {
            lua.create_function(|_, (txn, loc): (AnyUserData, String)| {
                let t = txn.borrow::<Txn>()?;
                let mut st = t.h.borrow_mut();
                st.redirect = Some(loc);
                Ok(())
            })
        });
    }
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        http_methods(methods);
    }
}

fn seed_http_table(lua: &Lua, res: bool) -> mlua::Result<Table> {
    let key = if res {
        "moonwire.seed_http_res"
    } else {
        "moonwire.seed_http_req"
    };
    if let Ok(t) = lua.named_registry_value::<Table>(key) {
        return Ok(t);
    }
    // Each seed function takes the TXN first and calls the HTTP method.
    let t: Table = lua
        .load(if res {
            r#"local t = {}
            for _, n in ipairs({"add_header","del_header","set_header","replace_header","replace_value","get_headers"}) do
              t[n] = function(txn, ...) local h = txn.http; return h["res_" .. n](h, ...) end
            end
            return t"#
        } else {
            r#"local t = {}
            for _, n in ipairs({"add_header","del_header","set_header","replace_header","replace_value","get_headers",
                                "set_method","set_path","set_query","set_uri"}) do
              t[n] = function(txn, ...) local h = txn.http; return h["req_" .. n](h, ...) end
            end
            return t"#
        })
        .set_name("=moonwire")
        .eval()?;
    lua.set_named_registry_value(key, t.clone())?;
    Ok(t)
}

// ---------------------------------------------------------------- Applets

/// Streamed applet output on its way to the client: a bounded queue from
/// the service to the engine's writer, both on this thread (cheaper than
/// a thread-safe channel, which would be set up for every request).
#[derive(Default)]
pub struct OutPipe {
    queue: RefCell<std::collections::VecDeque<Vec<u8>>>,
    closed: Cell<bool>,
    reader: Cell<Option<std::task::Waker>>,
    writers: RefCell<Vec<std::task::Waker>>,
}

impl std::fmt::Debug for OutPipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutPipe")
            .field("queued", &self.queue.borrow().len())
            .field("closed", &self.closed.get())
            .finish()
    }
}

/// Buffers in flight before `AppletHTTP:send` waits for the client.
const PIPE_DEPTH: usize = 4;

impl OutPipe {
    /// Queues bytes, waiting while the queue is full.
    pub async fn send(&self, bytes: Vec<u8>) {
        std::future::poll_fn(|cx| {
            if self.has_room() {
                Poll::Ready(())
            } else {
                self.writers.borrow_mut().push(cx.waker().clone());
                Poll::Pending
            }
        })
        .await;
        self.push(bytes);
    }

    /// Whether [`OutPipe::send`] would queue without waiting.
    pub fn has_room(&self) -> bool {
        self.queue.borrow().len() < PIPE_DEPTH
    }

    fn push(&self, bytes: Vec<u8>) {
        self.queue.borrow_mut().push_back(bytes);
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }

    /// The next queued bytes; None once closed and drained.
    pub async fn recv(&self) -> Option<Vec<u8>> {
        std::future::poll_fn(|cx| {
            if let Some(b) = self.queue.borrow_mut().pop_front() {
                for w in self.writers.borrow_mut().drain(..) {
                    w.wake();
                }
                return Poll::Ready(Some(b));
            }
            if self.closed.get() {
                return Poll::Ready(None);
            }
            self.reader.set(Some(cx.waker().clone()));
            Poll::Pending
        })
        .await
    }

    /// No more output will come (the service returned).
    pub fn close(&self) {
        self.closed.set(true);
        if let Some(w) = self.reader.take() {
            w.wake();
        }
    }
}

/// The response an HTTP service builds.
#[derive(Debug, Default)]
pub struct AppletHttpOut {
    /// Status (default 200).
    pub status: u16,
    /// Reason phrase.
    pub reason: Option<String>,
    /// Headers added.
    pub headers: Vec<(String, Vec<u8>)>,
    /// Body sent.
    pub body: Vec<u8>,
    /// Whether `start_response` was called.
    pub started: bool,
    /// Request body bytes not yet read by the service.
    pub req_body: Vec<u8>,
    /// Read offset in `req_body`.
    pub req_pos: usize,
    /// Where streamed output goes (the engine writes it to the client);
    /// None once the service returned.
    pub tx: Option<Rc<OutPipe>>,
    /// Output beyond this many buffered bytes starts streaming.
    pub flush_at: usize,
    /// The client's HTTP minor version.
    pub client_minor: u8,
    /// Whether the client connection may stay open.
    pub keep: bool,
    /// HEAD request: no body bytes are sent.
    pub head_request: bool,
    /// Streaming started: the head was sent.
    pub head_sent: bool,
    /// Streaming with chunked encoding.
    pub chunked: bool,
    /// Streaming until close (HTTP/1.0 client, no length).
    pub until_close: bool,
    /// Body bytes streamed so far.
    pub streamed: u64,
}

impl AppletHttpOut {
    /// The declared Content-Length, if the service set one.
    pub fn declared_len(&self) -> Option<u64> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| std::str::from_utf8(v).ok()?.trim().parse().ok())
    }

    /// The response head as the service built it.
    pub fn res_head(&self) -> ResHead {
        ResHead {
            status: self.status,
            reason: self.reason.clone().unwrap_or_default(),
            minor: 1,
            headers: self.headers.clone(),
        }
    }

    /// Takes the buffered output as bytes ready for the client (the head
    /// first when streaming starts), framed; `last` adds the end of a
    /// chunked body.
    pub fn take_stream_bytes(&mut self, last: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.head_sent {
            self.head_sent = true;
            let declared = self.declared_len().is_some();
            let has_te = self
                .headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"));
            if declared && !has_te {
                // The common case: the head goes out as the service built
                // it, written from its own fields (no copy of them).
                let had_reason = self.reason.is_some();
                let res = ResHead {
                    status: self.status,
                    reason: self.reason.take().unwrap_or_default(),
                    minor: 1,
                    headers: std::mem::take(&mut self.headers),
                };
                crate::http::write_response_head(&mut out, &res, self.client_minor, self.keep);
                self.headers = res.headers;
                self.reason = had_reason.then_some(res.reason);
            } else {
                let mut res = self.res_head();
                res.remove("transfer-encoding");
                if !declared {
                    if self.client_minor >= 1 {
                        self.chunked = true;
                        res.add("transfer-encoding", b"chunked");
                    } else {
                        self.until_close = true;
                        self.keep = false;
                    }
                }
                crate::http::write_response_head(&mut out, &res, self.client_minor, self.keep);
            }
        }
        let body = std::mem::take(&mut self.body);
        if !self.head_request && !body.is_empty() {
            self.streamed += body.len() as u64;
            if self.chunked {
                out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                out.extend_from_slice(&body);
                out.extend_from_slice(b"\r\n");
            } else {
                out.extend_from_slice(&body);
            }
        }
        if last && self.chunked && !self.head_request {
            out.extend_from_slice(b"0\r\n\r\n");
        }
        out
    }
}

/// Buffers `data` from `AppletHTTP:send`. Output is kept until the service
/// returns (one write, with a Content-Length) unless the service declared
/// a length or the output outgrows the buffer: then it streams, and the
/// bytes to queue for the client are returned.
fn applet_buffer(o: &mut AppletHttpOut, data: &[u8]) -> Option<(Rc<OutPipe>, Vec<u8>)> {
    o.started = true;
    o.body.extend_from_slice(data);
    let stream = o.head_sent || o.declared_len().is_some() || o.body.len() >= o.flush_at;
    match &o.tx {
        Some(tx) if stream => {
            let tx = tx.clone();
            Some((tx, o.take_stream_bytes(false)))
        }
        _ => None,
    }
}

/// Builds `AppletHTTP.send`: a synchronous call when the output can be
/// queued at once (nearly always), the waiting one only when the queue to
/// the client is full. An mlua async method would box a future and create
/// an internal userdata on every call.
fn applet_http_send(lua: &Lua) -> mlua::Result<Function> {
    let now = lua.create_function(|_, (ud, s): (AnyUserData, mlua::LuaString)| {
        let this = ud.borrow::<AppletHttp>()?;
        let mut o = this.out.borrow_mut();
        let data = s.as_bytes();
        let streams =
            o.head_sent || o.declared_len().is_some() || o.body.len() + data.len() >= o.flush_at;
        if streams && o.tx.as_ref().is_some_and(|tx| !tx.has_room()) {
            return Ok(false);
        }
        let msg = applet_buffer(&mut o, &data);
        drop(o);
        if let Some((tx, bytes)) = msg {
            tx.push(bytes);
        }
        Ok(true)
    })?;
    let wait = lua.create_async_function(|_, (ud, s): (AnyUserData, mlua::LuaString)| {
        let out = ud.borrow::<AppletHttp>().map(|a| a.out.clone());
        let data = s.as_bytes().to_vec();
        async move {
            let msg = applet_buffer(&mut out?.borrow_mut(), &data);
            if let Some((tx, bytes)) = msg {
                tx.send(bytes).await;
            }
            Ok(())
        }
    })?;
    lua.load(
        "local now, wait = ...\n\
         return function(self, data)\n\
           if not now(self, data) then return wait(self, data) end\n\
         end",
    )
    .set_name("=AppletHTTP.send")
    .call((now, wait))
}

/// `AppletHTTP`.
pub struct AppletHttp {
    h: TxnHandle,
    out: Rc<RefCell<AppletHttpOut>>,
}

impl UserData for AppletHttp {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        add_sample_fields(fields, |a: &AppletHttp| a.h.clone());
        fields.add_field_function_get("send", |lua, _| {
            core_of(lua)?
                .applet_send
                .borrow()
                .clone()
                .ok_or_else(|| mlua::Error::runtime("moonwire: AppletHTTP.send missing"))
        });
        fields.add_field_method_get("method", |_, this| Ok(this.h.borrow().req.method.clone()));
        fields.add_field_method_get("path", |_, this| Ok(this.h.borrow().req.path().to_string()));
        fields.add_field_method_get("qs", |_, this| {
            Ok(this.h.borrow().req.query().unwrap_or("").to_string())
        });
        fields.add_field_method_get("version", |_, this| {
            Ok(if this.h.borrow().req.minor == 0 {
                "1.0"
            } else {
                "1.1"
            })
        });
        fields.add_field_method_get("length", |_, this| {
            Ok(this.out.borrow().req_body.len() as i64)
        });
        fields.add_field_method_get("headers", |lua, this| {
            headers_table(lua, &this.h.borrow().req.headers)
        });
    }
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        add_var_methods(methods, |a: &AppletHttp| a.h.clone());
        methods.add_method(
            "set_status",
            |_, this, (code, reason): (i64, Option<String>)| {
                if !(100..=999).contains(&code) {
                    return Err(mlua::Error::runtime("set_status: invalid status code"));
                }
                let mut o = this.out.borrow_mut();
                o.status = code as u16;
                o.reason = reason;
                Ok(())
            },
        );
        methods.add_method(
            "add_header",
            |_, this, (n, v): (String, mlua::LuaString)| {
                this.out
                    .borrow_mut()
                    .headers
                    .push((n, v.as_bytes().to_vec()));
                Ok(())
            },
        );
        methods.add_method("start_response", |_, this, ()| {
            this.out.borrow_mut().started = true;
            Ok(())
        });
        methods.add_method("getline", |lua, this, ()| {
            let mut o = this.out.borrow_mut();
            let rest = &o.req_body[o.req_pos..];
            let end = rest
                .iter()
                .position(|b| *b == b'\n')
                .map_or(rest.len(), |i| i + 1);
            let line = rest[..end].to_vec();
            o.req_pos += end;
            lua_str(lua, &line)
        });
        methods.add_method("receive", |lua, this, size: Option<i64>| {
            let mut o = this.out.borrow_mut();
            let rest = o.req_body.len() - o.req_pos;
            let n = size.map_or(rest, |s| (s.max(0) as usize).min(rest));
            let start = o.req_pos;
            let d = o.req_body[start..start + n].to_vec();
            o.req_pos += n;
            lua_str(lua, &d)
        });
    }
}

/// The client side of a TCP service.
pub struct TcpClient {
    /// The connection (taken out while an I/O call awaits).
    pub conn: Option<crate::http::Conn>,
    /// Read timeout (`timeout client`).
    pub timeout: Option<Duration>,
}

/// `AppletTCP`.
pub struct AppletTcp {
    h: TxnHandle,
    io: Rc<RefCell<TcpClient>>,
}

async fn applet_read(io: Rc<RefCell<TcpClient>>, want: ReadWant) -> mlua::Result<Option<Vec<u8>>> {
    let (mut conn, timeout) = {
        let mut c = io.borrow_mut();
        (
            c.conn
                .take()
                .ok_or_else(|| mlua::Error::runtime("AppletTCP: connection busy or closed"))?,
            c.timeout,
        )
    };
    let result = async {
        loop {
            let p = conn.pending();
            let ready = match want {
                ReadWant::Line => p.iter().position(|b| *b == b'\n').map(|i| i + 1),
                ReadWant::Bytes(n) => (p.len() >= n).then_some(n),
                ReadWant::Any => (!p.is_empty()).then_some(p.len()),
                ReadWant::All => None,
            };
            if let Some(n) = ready {
                let d = p[..n].to_vec();
                conn.consume(n);
                return Ok(Some(d));
            }
            match conn.fill(timeout).await {
                Ok(0) => {
                    let d = conn.pending().to_vec();
                    let n = d.len();
                    conn.consume(n);
                    return Ok(if d.is_empty() && !matches!(want, ReadWant::All) {
                        None
                    } else {
                        Some(d)
                    });
                }
                Ok(_) => {}
                Err(e) => return Err(mlua::Error::runtime(format!("AppletTCP: {e}"))),
            }
        }
    }
    .await;
    io.borrow_mut().conn = Some(conn);
    result
}

#[derive(Clone, Copy)]
enum ReadWant {
    Line,
    Bytes(usize),
    Any,
    All,
}

impl UserData for AppletTcp {
    fn add_fields<F: UserDataFields<Self>>(fields: &mut F) {
        add_sample_fields(fields, |a: &AppletTcp| a.h.clone());
    }
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        add_var_methods(methods, |a: &AppletTcp| a.h.clone());
        methods.add_async_method("getline", |lua, this, ()| {
            let io = this.io.clone();
            async move {
                let d = applet_read(io, ReadWant::Line).await?;
                Ok(match d {
                    Some(d) => Value::String(lua.create_string(&d)?),
                    None => Value::String(lua.create_string("")?),
                })
            }
        });
        methods.add_async_method("receive", |lua, this, size: Option<i64>| {
            let io = this.io.clone();
            async move {
                let want = match size {
                    Some(n) if n > 0 => ReadWant::Bytes(n as usize),
                    Some(_) => ReadWant::Any,
                    None => ReadWant::All,
                };
                let d = applet_read(io, want).await?;
                Ok(match d {
                    Some(d) => Value::String(lua.create_string(&d)?),
                    None => Value::Nil,
                })
            }
        });
        methods.add_async_method("send", |_, this, s: mlua::LuaString| {
            let io = this.io.clone();
            let data = s.as_bytes().to_vec();
            async move {
                let (mut conn, timeout) = {
                    let mut c = io.borrow_mut();
                    (
                        c.conn.take().ok_or_else(|| {
                            mlua::Error::runtime("AppletTCP: connection busy or closed")
                        })?,
                        c.timeout,
                    )
                };
                let r = conn.write_all(&data, timeout).await;
                io.borrow_mut().conn = Some(conn);
                Ok(match r {
                    Ok(()) => data.len() as i64,
                    Err(_) => -1,
                })
            }
        });
    }
}

// ---------------------------------------------------------------- Map

/// `Map` object.
pub struct LuaMap {
    data: Arc<RwLock<MapData>>,
    method: MatchMethod,
}

impl UserData for LuaMap {
    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_method("lookup", |lua, this, key: Value| {
            let key = value_to_arg(&key);
            let v = this
                .data
                .write()
                .ok()
                .and_then(|mut m| m.lookup(this.method, key.as_bytes()));
            match v {
                Some(v) => lua_str(lua, v.as_bytes()),
                None => Ok(Value::Nil),
            }
        });
        methods.add_method("slookup", |lua, this, key: Value| {
            let key = value_to_arg(&key);
            let v = this
                .data
                .write()
                .ok()
                .and_then(|mut m| m.lookup(this.method, key.as_bytes()));
            lua_str(lua, v.unwrap_or_default().as_bytes())
        });
    }
}

// ---------------------------------------------------------------- core

fn register_api(lua: &Lua, cfg: &Config) -> mlua::Result<()> {
    let core = lua.create_table()?;
    for (i, name) in crate::shared::LEVELS.iter().enumerate() {
        core.set(*name, i as i64)?;
    }
    core.set(
        "log",
        lua.create_function(|lua, (level, msg): (i64, String)| log_to(lua, level, &msg))?,
    )?;
    for (name, level) in [("Debug", 7), ("Info", 6), ("Warning", 4), ("Alert", 1)] {
        core.set(
            name,
            lua.create_function(move |lua, msg: String| log_to(lua, level, &msg))?,
        )?;
    }

    // Registration functions: body context only (tasks anywhere).
    core.set(
        "register_action",
        lua.create_function(|lua, (name, kinds, func, nargs): (String, Vec<String>, Function, Option<i64>)| {
            let c = core_of(lua)?;
            if c.ctx.get() != Ctx::Body {
                return Err(mlua::Error::runtime("core.register_action: only allowed in the body context"));
            }
            let mut bits = 0u8;
            for k in &kinds {
                let b = kind_bit(k);
                if b == 0 {
                    return Err(mlua::Error::runtime(format!(
                        "core.register_action: unknown action type '{k}' (http-req, http-res, tcp-req, tcp-res)"
                    )));
                }
                bits |= b;
            }
            c.reg.borrow_mut().actions.insert(
                name,
                ActionReg {
                    func,
                    kinds: bits,
                    nargs: nargs.unwrap_or(0).max(0) as usize,
                },
            );
            Ok(())
        })?,
    )?;
    for (fname, which) in [("register_fetches", 0), ("register_converters", 1)] {
        core.set(
            fname,
            lua.create_function(move |lua, (name, func): (String, Function)| {
                let c = core_of(lua)?;
                if c.ctx.get() != Ctx::Body {
                    return Err(mlua::Error::runtime(format!(
                        "core.{fname}: only allowed in the body context"
                    )));
                }
                let mut reg = c.reg.borrow_mut();
                if which == 0 {
                    reg.fetches.insert(name, func);
                } else {
                    reg.converters.insert(name, func);
                }
                Ok(())
            })?,
        )?;
    }
    core.set(
        "register_service",
        lua.create_function(|lua, (name, mode, func): (String, String, Function)| {
            let c = core_of(lua)?;
            if c.ctx.get() != Ctx::Body {
                return Err(mlua::Error::runtime(
                    "core.register_service: only allowed in the body context",
                ));
            }
            let http = match mode.as_str() {
                "http" => true,
                "tcp" => false,
                m => {
                    return Err(mlua::Error::runtime(format!(
                        "core.register_service: unknown mode '{m}' (http or tcp)"
                    )));
                }
            };
            c.reg.borrow_mut().services.insert(name, (func, http));
            Ok(())
        })?,
    )?;
    core.set(
        "register_init",
        lua.create_function(|lua, func: Function| {
            let c = core_of(lua)?;
            if c.ctx.get() != Ctx::Body {
                return Err(mlua::Error::runtime(
                    "core.register_init: only allowed in the body context",
                ));
            }
            c.reg.borrow_mut().inits.push(func);
            Ok(())
        })?,
    )?;
    core.set(
        "register_task",
        lua.create_function(|lua, (func, args): (Function, Variadic<Value>)| {
            let c = core_of(lua)?;
            match c.ctx.get() {
                Ctx::Body | Ctx::Init => {
                    if !c.skip_tasks.get() {
                        c.reg
                            .borrow_mut()
                            .tasks
                            .push((func, args.into_iter().collect()));
                    }
                }
                _ => spawn_task(lua, c, func, args.into_iter().collect()),
            }
            Ok(())
        })?,
    )?;

    // Maps and ACL files.
    core.set(
        "set_map",
        lua.create_function(|lua, (file, key, value): (String, String, String)| {
            let c = core_of(lua)?;
            c.check_ctx("core.set_map", &[Ctx::Body])?;
            let m = c
                .shared
                .maps
                .get(&file, true)
                .map_err(mlua::Error::external)?;
            if let Ok(mut m) = m.write() {
                m.set(&key, &value);
            }
            Ok(())
        })?,
    )?;
    core.set(
        "del_map",
        lua.create_function(|lua, (file, key): (String, String)| {
            let c = core_of(lua)?;
            c.check_ctx("core.del_map", &[Ctx::Body])?;
            let m = c
                .shared
                .maps
                .get(&file, true)
                .map_err(mlua::Error::external)?;
            if let Ok(mut m) = m.write() {
                m.remove(&key);
            }
            Ok(())
        })?,
    )?;
    core.set(
        "add_acl",
        lua.create_function(|lua, (file, key): (String, String)| {
            let c = core_of(lua)?;
            c.check_ctx("core.add_acl", &[Ctx::Body])?;
            let m = c
                .shared
                .maps
                .get(&file, true)
                .map_err(mlua::Error::external)?;
            if let Ok(mut m) = m.write() {
                m.add(&key);
            }
            Ok(())
        })?,
    )?;
    core.set(
        "del_acl",
        lua.create_function(|lua, (file, key): (String, String)| {
            let c = core_of(lua)?;
            c.check_ctx("core.del_acl", &[Ctx::Body])?;
            let m = c
                .shared
                .maps
                .get(&file, true)
                .map_err(mlua::Error::external)?;
            if let Ok(mut m) = m.write() {
                m.remove(&key);
            }
            Ok(())
        })?,
    )?;

    // Time.
    let sleep_impl = |lua: Lua, d: Duration, what: &'static str| async move {
        let c = core_of(&lua)?;
        c.check_ctx(what, &[Ctx::Fetch, Ctx::Converter])?;
        tokio::time::sleep(d).await;
        Ok(())
    };
    core.set(
        "sleep",
        lua.create_async_function(move |lua, secs: f64| {
            sleep_impl(lua, Duration::from_secs_f64(secs.max(0.0)), "core.sleep")
        })?,
    )?;
    core.set(
        "msleep",
        lua.create_async_function(move |lua, ms: i64| {
            sleep_impl(lua, Duration::from_millis(ms.max(0) as u64), "core.msleep")
        })?,
    )?;
    core.set(
        "yield",
        lua.create_async_function(|lua, ()| async move {
            let c = core_of(&lua)?;
            if matches!(c.ctx.get(), Ctx::Fetch | Ctx::Converter) {
                return Ok(());
            }
            tokio::task::yield_now().await;
            Ok(())
        })?,
    )?;
    core.set(
        "now",
        lua.create_function(|lua, ()| {
            let d = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let t = lua.create_table()?;
            t.set("sec", d.as_secs() as i64)?;
            t.set("usec", d.subsec_micros() as i64)?;
            Ok(t)
        })?,
    )?;
    core.set(
        "set_nice",
        lua.create_function(|lua, nice: i64| {
            let c = core_of(lua)?;
            c.check_ctx("core.set_nice", &[Ctx::Body, Ctx::Init])?;
            if !(-1024..=1024).contains(&nice) {
                return Err(mlua::Error::runtime(
                    "core.set_nice: nice must be between -1024 and 1024",
                ));
            }
            Ok(())
        })?,
    )?;
    core.set(
        "done",
        lua.create_function(|lua, _reply: Option<Value>| set_done(lua, Termination::Done))?,
    )?;
    core.set(
        "tcp",
        lua.create_function(|lua, ()| {
            let c = core_of(lua)?;
            c.check_ctx("core.tcp", &[Ctx::Body, Ctx::Fetch, Ctx::Converter])?;
            lua.create_userdata(LuaSocket::new())
        })?,
    )?;
    core.set(
        "get_info",
        lua.create_function(|lua, ()| {
            let c = core_of(lua)?;
            let t = lua.create_table()?;
            t.set("Name", "moonwire")?;
            t.set("Version", env!("CARGO_PKG_VERSION"))?;
            t.set("Pid", std::process::id() as i64)?;
            t.set("Nbthread", c.shared.nbthread as i64)?;
            t.set("Uptime_sec", c.shared.started.elapsed().as_secs() as i64)?;
            t.set(
                "CurrConns",
                c.shared
                    .current_conns
                    .load(std::sync::atomic::Ordering::Relaxed) as i64,
            )?;
            t.set(
                "CumReq",
                c.shared
                    .total_requests
                    .load(std::sync::atomic::Ordering::Relaxed) as i64,
            )?;
            t.set(
                "Lua_errors",
                c.shared
                    .lua_errors
                    .load(std::sync::atomic::Ordering::Relaxed) as i64,
            )?;
            t.set("Thread", c.thread_id as i64 + 1)?;
            Ok(t)
        })?,
    )?;
    core.set("thread", 0)?;

    // Proxies and servers.
    let proxies = lua.create_table()?;
    let frontends = lua.create_table()?;
    let backends = lua.create_table()?;
    let proxy_mt: Table = lua
        .load(
            r#"local P = {} P.__index = P
            function P:get_name() return self.name end
            function P:get_uuid() return self.uuid end
            function P:get_mode() return self.mode end
            function P:get_cap() return self.cap end
            local S = {} S.__index = S
            function S:get_name() return self.name end
            function S:get_addr() return self.addr end
            function S:get_weight() return self.weight end
            function S:get_puid() return self.puid end
            function S:is_draining() return false end
            function S:is_backup() return false end
            return P, S"#,
        )
        .set_name("=moonwire")
        .eval::<(Table, Table)>()
        .map(|(p, s)| {
            let both = lua.create_table().ok();
            if let Some(b) = &both {
                let _ = b.set("p", p);
                let _ = b.set("s", s);
            }
            both
        })?
        .ok_or_else(|| mlua::Error::runtime("proxy metatables"))?;
    let pmt: Table = proxy_mt.get("p")?;
    let smt: Table = proxy_mt.get("s")?;
    for (i, s) in cfg.sections.iter().enumerate() {
        let t = lua.create_table()?;
        t.set("name", s.name.as_str())?;
        t.set("uuid", i as i64 + 1)?;
        t.set(
            "mode",
            if s.mode == crate::config::Mode::Http {
                "http"
            } else {
                "tcp"
            },
        )?;
        let cap = match (s.is_frontend(), s.is_backend()) {
            (true, true) => "frontend,backend",
            (true, false) => "frontend",
            _ => "backend",
        };
        t.set("cap", cap)?;
        let servers = lua.create_table()?;
        for (j, srv) in s.servers.iter().enumerate() {
            let st = lua.create_table()?;
            st.set("name", srv.name.as_str())?;
            st.set("addr", srv.addr.to_string())?;
            st.set("weight", srv.weight as i64)?;
            st.set("puid", j as i64 + 1)?;
            st.set_metatable(Some(smt.clone()))?;
            servers.set(srv.name.as_str(), st)?;
        }
        t.set("servers", servers)?;
        t.set_metatable(Some(pmt.clone()))?;
        proxies.set(s.name.as_str(), t.clone())?;
        if s.is_frontend() {
            frontends.set(s.name.as_str(), t.clone())?;
        }
        if s.is_backend() {
            backends.set(s.name.as_str(), t)?;
        }
    }
    core.set("proxies", proxies)?;
    core.set("frontends", frontends)?;
    core.set("backends", backends)?;
    lua.globals().set("core", core)?;

    // Map class.
    let map = lua.create_table()?;
    for (name, m) in [
        ("int", MatchMethod::Int),
        ("ip", MatchMethod::Ip),
        ("str", MatchMethod::Str),
        ("beg", MatchMethod::Beg),
        ("sub", MatchMethod::Sub),
        ("dir", MatchMethod::Dir),
        ("dom", MatchMethod::Dom),
        ("end", MatchMethod::End),
        ("reg", MatchMethod::Reg),
    ] {
        map.set(name, m.code())?;
        map.set(format!("_{name}"), m.code())?;
    }
    map.set(
        "new",
        lua.create_function(|lua, (file, method): (String, Option<i64>)| {
            let c = core_of(lua)?;
            let method = match method {
                Some(m) => MatchMethod::from_code(m).ok_or_else(|| {
                    mlua::Error::runtime(format!("Map.new: unknown match method {m}"))
                })?,
                None => MatchMethod::Str,
            };
            let data =
                c.shared.maps.get(&file, false).map_err(|e| {
                    mlua::Error::runtime(format!("Map.new: cannot load '{file}': {e}"))
                })?;
            lua.create_userdata(LuaMap { data, method })
        })?,
    )?;
    lua.globals().set("Map", map)?;
    forward_poll_pending_through_coroutines(lua)?;
    Ok(())
}

/// A script that wraps a yielding call (`core.sleep`, `Socket:receive`)
/// in its own `coroutine.wrap/resume` would receive mlua's internal
/// "pending" marker instead of suspending the request. These replacements
/// pass that marker on to the enclosing coroutine, so the wait still
/// reaches the event loop and the script's coroutine resumes after it.
fn forward_poll_pending_through_coroutines(lua: &Lua) -> mlua::Result<()> {
    let Ok(co) = lua.globals().get::<Table>("coroutine") else {
        return Ok(());
    };
    let f: Function = lua
        .load(
            r#"local co, pending = ...
            local create, resume, status, yield, isyieldable = co.create, co.resume, co.status, co.yield, co.isyieldable
            local function forward(th, ok, ...)
              if ok and select('#', ...) == 1 and (...) == pending and status(th) == "suspended" and isyieldable() then
                yield(pending)
                return forward(th, resume(th))
              end
              return ok, ...
            end
            co.resume = function(th, ...) return forward(th, resume(th, ...)) end
            co.wrap = function(fn)
              local th = create(fn)
              local function unpack_res(ok, ...)
                if not ok then error((...), 2) end
                return ...
              end
              return function(...) return unpack_res(co.resume(th, ...)) end
            end"#,
        )
        .set_name("=moonwire")
        .into_function()?;
    f.call::<()>((co, Lua::poll_pending()))
}

fn spawn_task(lua: &Lua, core: Rc<WorkerCore>, func: Function, args: Vec<Value>) {
    let lua = lua.clone();
    let limit = core.limits.task_timeout;
    let owner = core.clone();
    let handle = tokio::task::spawn_local(async move {
        let fut = func.call_async::<()>(Variadic::from_iter(args));
        let r = Tracked {
            fut,
            core: core.clone(),
            used: Duration::ZERO,
            limit,
        }
        .await;
        if let Err(e) = r
            && core.done.take().is_none()
        {
            report_error(&core, "task", &e.to_string());
        }
        drop(lua);
    });
    let mut tasks = owner.tasks.borrow_mut();
    tasks.retain(|t| !t.is_finished());
    tasks.push(handle.abort_handle());
}

fn report_error(core: &WorkerCore, what: &str, msg: &str) {
    core.shared.count_lua_error();
    // Counted per script:line for `error_sites`; every failure is logged
    // (a request failed because of it).
    core.errors.borrow_mut().record(msg);
    let msg = msg.lines().next().unwrap_or(msg);
    core.shared.log(3, &format!("Lua {what}: {msg}"));
}

impl LuaWorker {
    /// Builds the interpreter of worker `thread_id`, registers the API and
    /// loads the configured files (their body context). Init functions run
    /// separately ([`LuaWorker::run_inits`]) once the event loop exists.
    pub async fn new(
        cfg: &Config,
        shared: Arc<Shared>,
        thread_id: usize,
    ) -> Result<LuaWorker, LuaSetupError> {
        let g = &cfg.global;
        let libs = LibSet::parse(&g.openlibs).map_err(|e| LuaSetupError::Load {
            loc: "global".into(),
            msg: e.to_string(),
        })?;
        let host = LuaHost::new(HostOptions {
            max_memory: g.lua_maxmem,
            max_instructions: 0,
            libs,
        })?;
        let core = Rc::new(WorkerCore {
            reg: RefCell::new(Registry::default()),
            shared,
            ctx: Cell::new(Ctx::Body),
            exec: Cell::new(None),
            limits: Limits::from_global(g),
            thread_id,
            skip_tasks: Cell::new(false),
            done: Cell::new(None),
            fetch_fns: [RefCell::new(HashMap::new()), RefCell::new(HashMap::new())],
            conv_fns: RefCell::new(HashMap::new()),
            errors: RefCell::new(lua::ErrorLog::default()),
            tasks: RefCell::new(Vec::new()),
            threads: RefCell::new(Vec::new()),
            applet_send: RefCell::new(None),
        });
        let lua = host.lua();
        lua.set_app_data(core.clone());
        // Every request leaves a few small userdata (TXN, HTTP, applet)
        // that pin far larger Rust state; the collector only sees their
        // few Lua bytes. Generational mode frees such young garbage at
        // once instead of letting it pile up until the next full cycle.
        lua.gc_set_mode(mlua::state::GcMode::Generational(
            mlua::state::GcGenParams::default(),
        ));
        register_api(lua, cfg)?;
        *core.applet_send.borrow_mut() = Some(applet_http_send(lua)?);
        // A global hook: mlua installs it on every coroutine it creates
        // (actions run in their own), not only on the main thread.
        let hook_core = core.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(g.forced_yield.max(100)),
            move |_lua, _dbg| {
                let Some(slot) = hook_core.exec.get() else {
                    return Ok(VmState::Continue);
                };
                let burst = slot.burst_start.elapsed();
                if let Some(limit) = slot.limit
                    && slot.used_before + burst > limit
                {
                    return Err(mlua::Error::runtime(format!(
                        "Lua execution timeout ({} ms)",
                        limit.as_millis()
                    )));
                }
                if burst > hook_core.limits.burst_timeout {
                    return Err(mlua::Error::runtime(format!(
                        "Lua burst timeout: ran {} ms without yielding",
                        burst.as_millis()
                    )));
                }
                // Forced yield: only takes effect where the coroutine may
                // yield (actions, services, tasks); elsewhere it continues.
                Ok(VmState::Yield)
            },
        )?;
        if let Ok(package) = lua.globals().get::<Table>("package") {
            for (p, cpath) in &g.lua_prepend_path {
                let key = if *cpath { "cpath" } else { "path" };
                let old: String = package.get(key).unwrap_or_default();
                package.set(key, format!("{p};{old}"))?;
            }
        }
        for f in &g.lua_files {
            let source = std::fs::read(&f.path).map_err(|e| LuaSetupError::Load {
                loc: f.loc.to_string(),
                msg: format!("cannot read {}: {e}", f.path.display()),
            })?;
            core.skip_tasks.set(!f.per_thread && thread_id != 0);
            let chunk = lua
                .load(&source)
                .set_name(format!("@{}", f.path.display()))
                .into_function()
                .map_err(|e| LuaSetupError::Load {
                    loc: f.loc.to_string(),
                    msg: e.to_string(),
                })?;
            let args: Variadic<String> = f.args.iter().cloned().collect();
            let fut = chunk.call_async::<()>(args);
            Tracked {
                fut,
                core: core.clone(),
                used: Duration::ZERO,
                limit: Some(core.limits.session_timeout),
            }
            .await
            .map_err(|e| LuaSetupError::Load {
                loc: f.loc.to_string(),
                msg: e.to_string(),
            })?;
        }
        core.skip_tasks.set(false);
        core.ctx.set(Ctx::Init);
        Ok(LuaWorker { host, core })
    }

    /// Runs the `core.register_init` functions (init context).
    pub async fn run_inits(&self) -> Result<(), String> {
        self.core.ctx.set(Ctx::Init);
        let inits: Vec<Function> = self.core.reg.borrow().inits.clone();
        for f in inits {
            let fut = f.call_async::<()>(());
            Tracked {
                fut,
                core: self.core.clone(),
                used: Duration::ZERO,
                limit: Some(self.core.limits.session_timeout),
            }
            .await
            .map_err(|e| format!("Lua init function failed: {e}"))?;
        }
        self.core.ctx.set(Ctx::Runtime);
        Ok(())
    }

    /// Starts the registered tasks on the current `LocalSet`.
    pub fn start_tasks(&self) {
        self.core.ctx.set(Ctx::Runtime);
        let tasks = std::mem::take(&mut self.core.reg.borrow_mut().tasks);
        for (f, args) in tasks {
            spawn_task(self.host.lua(), self.core.clone(), f, args);
        }
    }

    /// Stops this state's tasks (on reload and stop: a retired
    /// configuration's tasks must not keep running).
    pub fn abort_tasks(&self) {
        for t in self.core.tasks.borrow_mut().drain(..) {
            t.abort();
        }
    }

    /// The shared state.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.core.shared
    }

    /// Memory used by the interpreter now.
    pub fn used_memory(&self) -> usize {
        self.host.used_memory()
    }

    /// Errors per script line so far.
    pub fn error_sites(&self) -> Vec<(String, u64)> {
        self.core.errors.borrow().sites()
    }

    async fn run_async(
        &self,
        what: (&str, &str),
        func: &Function,
        args: mlua::MultiValue,
        limit: Duration,
    ) -> Outcome {
        self.core.done.set(None);
        let r = match self.thread_for(func) {
            Ok(th) => {
                let keep = th.clone();
                match th.into_async::<()>(args) {
                    Ok(fut) => {
                        let r = Tracked {
                            fut,
                            core: self.core.clone(),
                            used: Duration::ZERO,
                            limit: Some(limit),
                        }
                        .await;
                        // Only a coroutine that returned normally is reused;
                        // one that failed is left to the collector. (Request
                        // futures are not cancelled while a script waits,
                        // except when the worker itself shuts down.)
                        if keep.status() == mlua::thread::ThreadStatus::Finished {
                            let mut pool = self.core.threads.borrow_mut();
                            if pool.len() < THREAD_POOL {
                                pool.push(keep);
                            }
                        }
                        r
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let done = self.core.done.take();
        match (r, done) {
            (_, Some(t)) => Outcome::Terminated(t),
            (Ok(()), None) => Outcome::Continue,
            (Err(e), None) => {
                let msg = e.to_string();
                report_error(&self.core, &format!("{} '{}'", what.0, what.1), &msg);
                Outcome::Failed(msg)
            }
        }
    }

    /// A coroutine ready to run `func`: a pooled one reset, or a new one.
    fn thread_for(&self, func: &Function) -> mlua::Result<mlua::Thread> {
        let pooled = self.core.threads.borrow_mut().pop();
        if let Some(th) = pooled
            && th.reset(func.clone()).is_ok()
        {
            return Ok(th);
        }
        self.host.lua().create_thread(func.clone())
    }

    /// Runs registered action `name` (`kind`: http-req, ...) on a transaction.
    pub async fn run_action(
        &self,
        name: &str,
        kind: &str,
        txn: &TxnHandle,
        args: &[String],
    ) -> Outcome {
        let reg = self.core.reg.borrow().actions.get(name).cloned();
        let Some(reg) = reg else {
            return Outcome::Failed(format!("Lua action '{name}' is not registered"));
        };
        if reg.kinds & kind_bit(kind) == 0 {
            return Outcome::Failed(format!("Lua action '{name}' is not registered for {kind}"));
        }
        let lua = self.host.lua();
        let mut mv = mlua::MultiValue::new();
        match lua.create_userdata(Txn { h: txn.clone() }) {
            Ok(ud) => mv.push_back(Value::UserData(ud)),
            Err(e) => return Outcome::Failed(e.to_string()),
        }
        for a in args.iter().take(reg.nargs.max(args.len())) {
            match lua.create_string(a) {
                Ok(s) => mv.push_back(Value::String(s)),
                Err(e) => return Outcome::Failed(e.to_string()),
            }
        }
        self.run_async(
            ("action", name),
            &reg.func,
            mv,
            self.core.limits.session_timeout,
        )
        .await
    }

    /// Runs the seed-era `lua FUNCTION` action: a global function called
    /// with the TXN.
    pub async fn run_function(&self, name: &str, txn: &TxnHandle) -> Outcome {
        let lua = self.host.lua();
        let func: Function = match lua.globals().get::<Option<Function>>(name) {
            Ok(Some(f)) => f,
            _ => return Outcome::Failed(format!("Lua function '{name}' not found")),
        };
        let mut mv = mlua::MultiValue::new();
        match lua.create_userdata(Txn { h: txn.clone() }) {
            Ok(ud) => mv.push_back(Value::UserData(ud)),
            Err(e) => return Outcome::Failed(e.to_string()),
        }
        self.run_async(
            ("function", name),
            &func,
            mv,
            self.core.limits.session_timeout,
        )
        .await
    }

    /// Runs HTTP service `name`; the response is left in `out`.
    pub async fn run_http_service(
        &self,
        name: &str,
        txn: &TxnHandle,
        out: Rc<RefCell<AppletHttpOut>>,
    ) -> Outcome {
        let reg = self.core.reg.borrow().services.get(name).cloned();
        let Some((func, true)) = reg else {
            return Outcome::Failed(format!("Lua HTTP service '{name}' is not registered"));
        };
        let ud = match self.host.lua().create_userdata(AppletHttp {
            h: txn.clone(),
            out,
        }) {
            Ok(ud) => ud,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let mut mv = mlua::MultiValue::new();
        mv.push_back(Value::UserData(ud));
        self.run_async(
            ("service", name),
            &func,
            mv,
            self.core.limits.service_timeout,
        )
        .await
    }

    /// Runs TCP service `name` on the client connection.
    pub async fn run_tcp_service(
        &self,
        name: &str,
        txn: &TxnHandle,
        io: Rc<RefCell<TcpClient>>,
    ) -> Outcome {
        let reg = self.core.reg.borrow().services.get(name).cloned();
        let Some((func, false)) = reg else {
            return Outcome::Failed(format!("Lua TCP service '{name}' is not registered"));
        };
        let ud = match self
            .host
            .lua()
            .create_userdata(AppletTcp { h: txn.clone(), io })
        {
            Ok(ud) => ud,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        let mut mv = mlua::MultiValue::new();
        mv.push_back(Value::UserData(ud));
        self.run_async(
            ("service", name),
            &func,
            mv,
            self.core.limits.service_timeout,
        )
        .await
    }

    fn run_sync(
        &self,
        ctx: Ctx,
        func: &Function,
        args: impl mlua::IntoLuaMulti,
    ) -> mlua::Result<Value> {
        let prev_ctx = self.core.ctx.replace(ctx);
        let prev = self.core.exec.replace(Some(ExecSlot {
            burst_start: Instant::now(),
            used_before: Duration::ZERO,
            limit: Some(
                self.core
                    .limits
                    .session_timeout
                    .min(self.core.limits.burst_timeout),
            ),
        }));
        let r = func.call::<Value>(args);
        self.core.exec.set(prev);
        self.core.ctx.set(prev_ctx);
        r
    }
}

impl LuaSampler for LuaWorker {
    fn lua_fetch(
        &self,
        name: &str,
        txn: &TxnHandle,
        args: &[String],
    ) -> Result<Option<Sample>, String> {
        let func = self.core.reg.borrow().fetches.get(name).cloned();
        let func =
            func.ok_or_else(|| format!("Lua sample fetch 'lua.{name}' is not registered"))?;
        let lua = self.host.lua();
        let ud = lua
            .create_userdata(Txn { h: txn.clone() })
            .map_err(|e| e.to_string())?;
        let r = if args.is_empty() {
            // The common case: no argument list to build.
            self.run_sync(Ctx::Fetch, &func, ud)
        } else {
            let mut mv = mlua::MultiValue::new();
            mv.push_back(Value::UserData(ud));
            for a in args {
                mv.push_back(Value::String(
                    lua.create_string(a).map_err(|e| e.to_string())?,
                ));
            }
            self.run_sync(Ctx::Fetch, &func, mv)
        };
        match r {
            Ok(v) => Ok(lua_to_sample(&v)),
            Err(e) => {
                let msg = e.to_string();
                report_error(&self.core, &format!("sample fetch 'lua.{name}'"), &msg);
                Err(msg)
            }
        }
    }

    fn lua_convert(
        &self,
        name: &str,
        input: Sample,
        args: &[String],
    ) -> Result<Option<Sample>, String> {
        let func = self.core.reg.borrow().converters.get(name).cloned();
        let func = func.ok_or_else(|| format!("Lua converter 'lua.{name}' is not registered"))?;
        let lua = self.host.lua();
        let mut mv = mlua::MultiValue::new();
        mv.push_back(sample_to_lua(lua, Some(input), true).map_err(|e| e.to_string())?);
        for a in args {
            mv.push_back(Value::String(
                lua.create_string(a).map_err(|e| e.to_string())?,
            ));
        }
        match self.run_sync(Ctx::Converter, &func, mv) {
            Ok(v) => Ok(lua_to_sample(&v)),
            Err(e) => {
                let msg = e.to_string();
                report_error(&self.core, &format!("converter 'lua.{name}'"), &msg);
                Err(msg)
            }
        }
    }
}

impl LuaNames for LuaWorker {
    fn has_fetch(&self, name: &str) -> bool {
        self.core.reg.borrow().fetches.contains_key(name)
    }
    fn has_converter(&self, name: &str) -> bool {
        self.core.reg.borrow().converters.contains_key(name)
    }
}

impl ScriptNames for LuaWorker {
    fn has_action(&self, name: &str, kind: &str) -> bool {
        self.core
            .reg
            .borrow()
            .actions
            .get(name)
            .is_some_and(|a| a.kinds & kind_bit(kind) != 0)
    }
    fn has_service(&self, name: &str, http: bool) -> bool {
        self.core
            .reg
            .borrow()
            .services
            .get(name)
            .is_some_and(|(_, h)| *h == http)
    }
    fn has_function(&self, name: &str) -> bool {
        self.host
            .lua()
            .globals()
            .get::<Option<Function>>(name)
            .ok()
            .flatten()
            .is_some()
    }
}

/// Reads the current request head for an applet or action (helper for tests).
pub fn req_of(h: &TxnHandle) -> ReqHead {
    h.borrow().req.clone()
}
