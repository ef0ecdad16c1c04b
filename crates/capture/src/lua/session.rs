//! `MolochSession` / `ArkimeSession` objects and the per-interpreter state
//! their methods reach.
//!
//! A session object outlives the callbacks it is passed to (scripts keep it
//! in closures for HTTP responses), so it does not borrow the session: it
//! is a light userdata handle carrying the session's *serial*
//! ([`super::handles`]; the same value for every callback of the session,
//! made without allocating), and the engine *binds* the session's data for
//! exactly the duration of each callback. A method or property finds its
//! session through that binding; used when its session is not the one
//! being called back (or was already saved) it raises a Lua error.
//! Outstanding-operation counts live here, keyed by serial, so
//! `incr_outstanding`/`decr_outstanding` work from any callback.

use ahash::AHashMap as HashMap;
use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;

use crossbeam_channel::Sender;
use lua::mlua::{self, Function, LightUserData, Lua, Table, Value};
use protocols::fields::{FieldId, FieldKind, FieldRegistry};
use protocols::{ScriptSession, SessionMeta, Value as FieldValues};

use super::api::Registrations;
use super::handles::session_serial;
use super::http::HttpResponse;

/// Where the engine keeps a session while scripts know it by serial.
pub(crate) type FlowId = flow::SessionId;

thread_local! {
    /// The serial of the session bound on this thread now (0: none), for
    /// `session:table()`, which runs without Rust's callback machinery.
    static BOUND: Cell<u64> = const { Cell::new(0) };
}

#[derive(Clone, Copy)]
struct Binding {
    serial: u64,
    session: *mut (),
}

/// A callback the script gave when it called `service:request`.
pub(crate) struct PendingRequest {
    /// The response callback.
    pub callback: Function,
    /// The session whose callback made the request (bound again when the
    /// response runs).
    pub serial: Option<u64>,
}

/// State shared by one interpreter's API functions and its driver.
pub(crate) struct Shared {
    pub registry: Arc<FieldRegistry>,
    /// Field ids by number (`Moloch.expression_to_fieldId` results).
    field_ids: Vec<FieldId>,
    protocols_field: Option<FieldId>,
    tags_field: Option<FieldId>,
    binding: Cell<Option<Binding>>,
    next_serial: Cell<u64>,
    /// The engine's handle of the session the next callback is about.
    pub current_flow: Cell<Option<FlowId>>,
    /// Sessions that have script state: serial → engine handle.
    pub live: RefCell<HashMap<u64, FlowId>>,
    outstanding: RefCell<HashMap<u64, u32>>,
    /// Serials whose outstanding count went back to zero.
    pub zeroed: RefCell<Vec<u64>>,
    /// Sessions gone whose `session:table()` entry is still to be dropped.
    pub gone: RefCell<Vec<u64>>,
    /// True while the scripts' top level runs (registration allowed).
    pub loading: Cell<bool>,
    /// True in the start-up pass that only collects registrations.
    pub discovery: bool,
    pub requests: RefCell<HashMap<u64, PendingRequest>>,
    next_request: Cell<u64>,
    /// Where HTTP workers send responses for this interpreter.
    pub responses: Sender<HttpResponse>,
    /// Requests refused because a service was at `maxRequests`.
    pub http_rejected: Cell<u64>,
    /// What the scripts registered while loading.
    pub regs: RefCell<Registrations>,
}

impl Shared {
    pub fn new(
        registry: Arc<FieldRegistry>,
        responses: Sender<HttpResponse>,
        discovery: bool,
    ) -> Shared {
        let field_ids = registry.iter().map(|(id, _)| id).collect();
        let protocols_field = registry.lookup_expr("protocols");
        let tags_field = registry.lookup_expr("tags");
        Shared {
            registry,
            field_ids,
            protocols_field,
            tags_field,
            binding: Cell::new(None),
            next_serial: Cell::new(1),
            current_flow: Cell::new(None),
            live: RefCell::new(HashMap::new()),
            outstanding: RefCell::new(HashMap::new()),
            zeroed: RefCell::new(Vec::new()),
            gone: RefCell::new(Vec::new()),
            loading: Cell::new(true),
            discovery,
            requests: RefCell::new(HashMap::new()),
            next_request: Cell::new(1),
            responses,
            http_rejected: Cell::new(0),
            regs: RefCell::new(Registrations::default()),
        }
    }

    /// A fresh session serial.
    pub fn new_serial(&self) -> u64 {
        let s = self.next_serial.get();
        self.next_serial.set(s + 1);
        s
    }

    /// A fresh request id.
    pub fn new_request_id(&self) -> u64 {
        let s = self.next_request.get();
        self.next_request.set(s + 1);
        s
    }

    /// The serial of the session bound now, if any.
    pub fn bound_serial(&self) -> Option<u64> {
        self.binding.get().map(|b| b.serial)
    }

    /// Runs `f` with `session` reachable by the methods of session objects
    /// with this serial.
    pub fn bind<R>(
        &self,
        serial: u64,
        session: &mut ScriptSession<'_>,
        f: impl FnOnce() -> R,
    ) -> R {
        let ptr = session as *mut ScriptSession<'_> as *mut ();
        let prev = self.binding.replace(Some(Binding {
            serial,
            session: ptr,
        }));
        let prev_bound = BOUND.with(|b| b.replace(serial));
        let r = f();
        BOUND.with(|b| b.set(prev_bound));
        self.binding.set(prev);
        r
    }

    /// Runs `f` on the session with this serial if it is bound now.
    fn with_session<R>(
        &self,
        serial: u64,
        f: impl FnOnce(&mut ScriptSession<'_>) -> mlua::Result<R>,
    ) -> mlua::Result<R> {
        let Some(b) = self.binding.get().filter(|b| b.serial == serial) else {
            return Err(mlua::Error::runtime(
                "MolochSession used outside the callbacks of its session (it may have been saved already)",
            ));
        };
        // Unbind while in use: a finalizer that runs during `f` and reaches
        // the session gets an error instead of a second mutable alias.
        self.binding.set(None);
        // SAFETY: `bind` stored a pointer to a `ScriptSession` that lives
        // (and is not otherwise used) until `bind` returns, and the binding
        // is only present while `bind` runs.
        let r = f(unsafe { &mut *(b.session as *mut ScriptSession<'_>) });
        self.binding.set(Some(b));
        r
    }

    /// Outstanding operations of a session.
    pub fn outstanding(&self, serial: u64) -> u32 {
        let map = self.outstanding.borrow();
        if map.is_empty() {
            return 0;
        }
        map.get(&serial).copied().unwrap_or(0)
    }

    /// Forgets a session that is gone.
    pub fn forget(&self, serial: u64) {
        self.live.borrow_mut().remove(&serial);
        self.gone.borrow_mut().push(serial);
        let mut out = self.outstanding.borrow_mut();
        if !out.is_empty() {
            out.remove(&serial);
        }
    }

    /// A field from an id number or an expression, with a clear error for
    /// unknown ones.
    pub fn field(&self, f: &Value) -> mlua::Result<FieldId> {
        match f {
            Value::Integer(i) => usize::try_from(*i)
                .ok()
                .and_then(|i| self.field_ids.get(i).copied())
                .ok_or_else(|| mlua::Error::runtime(format!("unknown field id {i}"))),
            Value::Number(n) if n.fract() == 0.0 => self.field(&Value::Integer(*n as i64)),
            Value::String(s) => {
                let expr = s.to_str()?;
                self.registry.lookup_expr(&expr).ok_or_else(|| {
                    mlua::Error::runtime(format!(
                        "unknown field '{}': not an Arkime field; define it in [custom-fields]",
                        &*expr
                    ))
                })
            }
            other => Err(mlua::Error::runtime(format!(
                "field must be an expression string or a field id, not {}",
                other.type_name()
            ))),
        }
    }
}

/// Per-session script state (kept by the engine in the session's
/// `script_state`, dropped with the session).
pub(crate) struct LuaSession {
    pub serial: u64,
    /// `session:register_parser` functions; `None` once one returned -1.
    pub parsers: Vec<Option<Callback>>,
    /// Per HTTP event, callbacks that returned -1 for this session.
    pub http_off: [u32; 8],
    /// Per body kind (index into the body registrations), callbacks that
    /// returned -1.
    pub body_off: Vec<u32>,
    shared: Rc<Shared>,
}

impl LuaSession {
    pub fn new(serial: u64, shared: Rc<Shared>) -> LuaSession {
        LuaSession {
            serial,
            parsers: Vec::new(),
            http_off: [0; 8],
            body_off: Vec::new(),
            shared,
        }
    }
}

impl Drop for LuaSession {
    fn drop(&mut self) {
        self.shared.forget(self.serial);
    }
}

fn state<'s>(session: &'s mut ScriptSession<'_>) -> mlua::Result<&'s mut LuaSession> {
    session
        .state
        .as_mut()
        .and_then(|s| s.downcast_mut::<LuaSession>())
        .ok_or_else(|| mlua::Error::runtime("session has no script state"))
}

fn protocol_name(n: u8) -> String {
    match n {
        1 => "icmp".into(),
        6 => "tcp".into(),
        17 => "udp".into(),
        58 => "icmpv6".into(),
        132 => "sctp".into(),
        other => other.to_string(),
    }
}

fn ip_string(ip: Option<IpAddr>) -> Option<String> {
    ip.map(|i| i.to_string())
}

/// A value for `add_string`/`add_int`, as the field's kind wants it.
fn add_value(
    shared: &Shared,
    session: &mut ScriptSession<'_>,
    id: FieldId,
    value: &Value,
) -> mlua::Result<bool> {
    if Some(id) == shared.protocols_field {
        return Ok(session.fields.add_protocol(&value_string(value)?));
    }
    if Some(id) == shared.tags_field {
        return Ok(session.fields.add_tag(&value_string(value)?));
    }
    let def = shared.registry.def(id);
    if def.is_multi() {
        return Err(mlua::Error::runtime(format!(
            "field '{}' is a multi-field expression; add to one of its fields",
            def.expr
        )));
    }
    match def.kind {
        FieldKind::Integer | FieldKind::Date => {
            let n = value_int(value).ok_or_else(|| {
                mlua::Error::runtime(format!(
                    "field '{}' is an integer field; {} is not an integer",
                    def.expr,
                    value_display(value)
                ))
            })?;
            Ok(session.fields.add_int(id, n))
        }
        FieldKind::Float => {
            let n = match value {
                Value::Integer(i) => *i as f64,
                Value::Number(n) => *n,
                Value::String(s) => s.to_str()?.trim().parse().map_err(|_| {
                    mlua::Error::runtime(format!("field '{}' wants a number", def.expr))
                })?,
                _ => {
                    return Err(mlua::Error::runtime(format!(
                        "field '{}' wants a number",
                        def.expr
                    )));
                }
            };
            Ok(session.fields.add_float(id, n))
        }
        FieldKind::Ip => {
            let s = value_string(value)?;
            let ip: IpAddr = s.trim().parse().map_err(|_| {
                mlua::Error::runtime(format!(
                    "field '{}' wants an IP address, got {s:?}",
                    def.expr
                ))
            })?;
            Ok(session.fields.add_ip(id, ip))
        }
        FieldKind::Object => Err(mlua::Error::runtime(format!(
            "field '{}' is an object field and cannot be set from Lua",
            def.expr
        ))),
        _ => {
            let s = value_string(value)?;
            Ok(session.fields.add_string(&shared.registry, id, &s))
        }
    }
}

fn value_int(v: &Value) -> Option<i64> {
    match v {
        Value::Integer(i) => Some(*i),
        Value::Number(n) if n.is_finite() => Some(n.round() as i64),
        Value::String(s) => {
            let s = s.to_str().ok()?;
            let t = s.trim();
            t.parse::<i64>().ok().or_else(|| {
                t.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f.round() as i64)
            })
        }
        _ => None,
    }
}

fn value_string(v: &Value) -> mlua::Result<String> {
    match v {
        Value::String(s) => Ok(String::from_utf8_lossy(&s.as_bytes()).into_owned()),
        Value::Integer(i) => Ok(i.to_string()),
        Value::Number(n) => Ok(if n.fract() == 0.0 && n.abs() < 1e15 {
            format!("{}", *n as i64)
        } else {
            n.to_string()
        }),
        Value::Boolean(b) => Ok(b.to_string()),
        other => Err(mlua::Error::runtime(format!(
            "expected a string value, got {}",
            other.type_name()
        ))),
    }
}

fn value_display(v: &Value) -> String {
    value_string(v).map_or_else(|_| v.type_name().to_string(), |s| format!("{s:?}"))
}

/// Values of a field as owned data (so no Lua runs while the session is
/// borrowed).
enum Got {
    Nil,
    Str(String),
    Int(i64),
    Strs(Vec<String>),
    Ints(Vec<i64>),
    Floats(Vec<f64>),
}

fn get_field(shared: &Shared, session: &mut ScriptSession<'_>, which: &Value) -> mlua::Result<Got> {
    if let Value::String(s) = which {
        let expr = s.to_str()?;
        let m = session.meta;
        match &*expr {
            "ip.src" => return Ok(ip_string(m.src_ip).map_or(Got::Nil, Got::Str)),
            "ip.dst" => return Ok(ip_string(m.dst_ip).map_or(Got::Nil, Got::Str)),
            "port.src" => return Ok(Got::Int(i64::from(m.src_port))),
            "port.dst" => return Ok(Got::Int(i64::from(m.dst_port))),
            "ip.protocol" => return Ok(Got::Int(i64::from(m.ip_protocol))),
            _ => {}
        }
    }
    let id = shared.field(which)?;
    if Some(id) == shared.protocols_field {
        let p = session.fields.protocols();
        return Ok(if p.is_empty() {
            Got::Nil
        } else {
            Got::Strs(p.to_vec())
        });
    }
    if Some(id) == shared.tags_field {
        let t = session.fields.tags();
        return Ok(if t.is_empty() {
            Got::Nil
        } else {
            Got::Strs(t.to_vec())
        });
    }
    if let Some(strings) = session.fields.strings(id) {
        return Ok(Got::Strs(strings.map(str::to_string).collect()));
    }
    let Some(values) = session.fields.get(id) else {
        return Ok(Got::Nil);
    };
    // `if let` rather than `match`: other value representations (single
    // values written as-is) go through the document form below.
    if let FieldValues::Ints(v) = values {
        return Ok(Got::Ints(v.to_vec()));
    }
    if let FieldValues::Ips(v) = values {
        return Ok(Got::Strs(v.iter().map(ToString::to_string).collect()));
    }
    if let FieldValues::Floats(v) = values {
        return Ok(Got::Floats(v.clone()));
    }
    if let FieldValues::Objects(v) = values {
        return Ok(Got::Strs(v.iter().map(ToString::to_string).collect()));
    }
    Ok(from_document(shared, session, id))
}

/// A field's value as the session document shows it.
fn from_document(shared: &Shared, session: &ScriptSession<'_>, id: FieldId) -> Got {
    let mut doc = serde_json::Map::new();
    session.fields.write_json(&shared.registry, &mut doc);
    let mut v: Option<&serde_json::Value> = None;
    let mut map = Some(&doc);
    for part in shared.registry.def(id).db.split('.') {
        v = map.and_then(|m| m.get(part));
        map = v.and_then(serde_json::Value::as_object);
    }
    let one = |j: &serde_json::Value| match j {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match v {
        None | Some(serde_json::Value::Null) => Got::Nil,
        Some(serde_json::Value::Number(n)) if n.is_i64() => {
            Got::Ints(vec![n.as_i64().unwrap_or(0)])
        }
        Some(serde_json::Value::Array(a)) if a.iter().all(|x| x.is_i64()) => {
            Got::Ints(a.iter().filter_map(serde_json::Value::as_i64).collect())
        }
        Some(serde_json::Value::Array(a)) => Got::Strs(a.iter().map(one).collect()),
        Some(other) => Got::Strs(vec![one(other)]),
    }
}

fn got_to_lua(lua: &Lua, g: Got) -> mlua::Result<Value> {
    Ok(match g {
        Got::Nil => Value::Nil,
        Got::Str(s) => Value::String(lua.create_string(s)?),
        Got::Int(i) => Value::Integer(i),
        Got::Strs(v) => Value::Table(lua.create_sequence_from(v)?),
        Got::Ints(v) => Value::Table(lua.create_sequence_from(v)?),
        Got::Floats(v) => Value::Table(lua.create_sequence_from(v)?),
    })
}

/// A callback given by name (looked up as a global when called, as Arkime
/// does) or as a function value.
#[derive(Clone)]
pub(crate) enum Callback {
    /// A global function's name, looked up at every call as Arkime does
    /// (the Lua string is kept so the lookup allocates nothing).
    Name(mlua::LuaString),
    Func(Function),
}

impl Callback {
    pub fn from_value(v: Value, what: &str) -> mlua::Result<Callback> {
        match v {
            Value::Function(f) => Ok(Callback::Func(f)),
            Value::String(s) => Ok(Callback::Name(s)),
            other => Err(mlua::Error::runtime(format!(
                "{what}: expected a function or a function name, got {}",
                other.type_name()
            ))),
        }
    }

    /// The function to call now.
    pub fn resolve(&self, lua: &Lua) -> mlua::Result<Function> {
        match self {
            Callback::Func(f) => Ok(f.clone()),
            Callback::Name(n) => match lua.globals().raw_get::<Value>(n)? {
                Value::Function(f) => Ok(f),
                _ => Err(mlua::Error::runtime(format!(
                    "callback function '{}' is not defined",
                    n.to_string_lossy()
                ))),
            },
        }
    }
}

fn ip_property(lua: &Lua, ip: Option<IpAddr>) -> mlua::Result<Value> {
    match ip {
        Some(ip) => Ok(Value::String(lua.create_string(ip.to_string())?)),
        None => Ok(Value::Nil),
    }
}

/// `session.srcIp` and the other properties of a session handle (read
/// from the bound session: a handle used outside its session's callbacks
/// raises an error).
fn property(lua: &Lua, meta: &SessionMeta, key: &[u8]) -> mlua::Result<Value> {
    Ok(match key {
        b"srcIp" | b"addr1" => ip_property(lua, meta.src_ip)?,
        b"dstIp" | b"addr2" => ip_property(lua, meta.dst_ip)?,
        b"srcPort" | b"port1" => Value::Integer(i64::from(meta.src_port)),
        b"dstPort" | b"port2" => Value::Integer(i64::from(meta.dst_port)),
        b"protocol" | b"ipProtocol" => {
            Value::String(lua.create_string(protocol_name(meta.ip_protocol))?)
        }
        _ => Value::Nil,
    })
}

fn describe_session(m: &SessionMeta) -> String {
    let ip = |i: Option<IpAddr>| match i {
        Some(IpAddr::V6(a)) => format!("[{a}]"),
        Some(a) => a.to_string(),
        None => "-".into(),
    };
    format!(
        "MolochSession: {} {}:{} -> {}:{}",
        protocol_name(m.ip_protocol),
        ip(m.src_ip),
        m.src_port,
        ip(m.dst_ip),
        m.dst_port
    )
}

/// Adds a session method `name(session, args...)`: `f` gets the shared
/// state and the session's serial.
fn method<A, R, F>(lua: &Lua, t: &Table, shared: &Rc<Shared>, name: &str, f: F) -> mlua::Result<()>
where
    A: mlua::FromLuaMulti,
    R: mlua::IntoLuaMulti,
    F: Fn(&Lua, &Shared, u64, A) -> mlua::Result<R> + 'static,
{
    let sh = Rc::clone(shared);
    t.raw_set(
        name,
        lua.create_function(move |lua, (h, args): (LightUserData, A)| {
            f(lua, &sh, session_serial(h)?, args)
        })?,
    )
}

/// `session:table()`: the session's table in `tables` (the upvalue, by
/// serial), made on first use. The most called method, so a plain C
/// function: no argument conversion, no Rust callback frame.
unsafe extern "C-unwind" fn session_table(l: *mut mlua::ffi::lua_State) -> std::ffi::c_int {
    use mlua::ffi;
    // SAFETY: called by Lua with the handle as first argument; only plain
    // stack operations, and no Rust value with a destructor is alive when
    // Lua raises (luaL_error, or a memory error making the table).
    unsafe {
        let h = ffi::lua_touserdata(l, 1) as usize;
        if ffi::lua_type(l, 1) != ffi::LUA_TLIGHTUSERDATA || h & 1 == 0 {
            return ffi::luaL_error(l, c"session:table(): expected a MolochSession".as_ptr());
        }
        let serial = (h >> 1) as u64;
        if BOUND.with(Cell::get) != serial {
            return ffi::luaL_error(
                l,
                c"MolochSession used outside the callbacks of its session (it may have been saved already)"
                    .as_ptr(),
            );
        }
        let tables = ffi::lua_upvalueindex(1);
        if ffi::lua_rawgeti(l, tables, serial as ffi::lua_Integer) == ffi::LUA_TNIL {
            ffi::lua_pop(l, 1);
            ffi::lua_createtable(l, 0, 0);
            ffi::lua_pushvalue(l, -1);
            ffi::lua_rawseti(l, tables, serial as ffi::lua_Integer);
        }
        1
    }
}

/// What session handles do: (methods, property function, `tostring`).
/// `tables` holds the sessions' `session:table()` tables by serial; the
/// caller removes those of sessions that are gone ([`Shared::gone`]).
pub(crate) fn session_kinds(
    lua: &Lua,
    shared: &Rc<Shared>,
    tables: &Table,
) -> mlua::Result<(Table, Function, Function)> {
    let m = lua.create_table()?;
    method(
        lua,
        &m,
        shared,
        "add_string",
        |_, sh, serial, (field, value): (Value, Value)| {
            let id = sh.field(&field)?;
            sh.with_session(serial, |s| add_value(sh, s, id, &value))
        },
    )?;
    method(
        lua,
        &m,
        shared,
        "add_int",
        |_, sh, serial, (field, value): (Value, Value)| {
            let id = sh.field(&field)?;
            if value_int(&value).is_none() {
                return Err(mlua::Error::runtime(format!(
                    "add_int: {} is not an integer",
                    value_display(&value)
                )));
            }
            sh.with_session(serial, |s| add_value(sh, s, id, &value))
        },
    )?;
    method(
        lua,
        &m,
        shared,
        "add_tag",
        |_, sh, serial, tag: mlua::LuaString| {
            let tag = tag.to_str()?;
            sh.with_session(serial, |s| Ok(s.fields.add_tag(&tag)))
        },
    )?;
    method(
        lua,
        &m,
        shared,
        "add_protocol",
        |_, sh, serial, p: mlua::LuaString| {
            let p = p.to_str()?;
            sh.with_session(serial, |s| Ok(s.fields.add_protocol(&p)))
        },
    )?;
    method(
        lua,
        &m,
        shared,
        "has_protocol",
        |_, sh, serial, p: mlua::LuaString| {
            let p = p.to_str()?;
            sh.with_session(serial, |s| Ok(s.fields.has_protocol(&p)))
        },
    )?;
    method(lua, &m, shared, "get", |lua, sh, serial, which: Value| {
        let got = sh.with_session(serial, |s| get_field(sh, s, &which))?;
        got_to_lua(lua, got)
    })?;
    method(lua, &m, shared, "incr_outstanding", |_, sh, serial, ()| {
        let mut map = sh.outstanding.borrow_mut();
        *map.entry(serial).or_insert(0) += 1;
        Ok(())
    })?;
    method(lua, &m, shared, "decr_outstanding", |_, sh, serial, ()| {
        let mut map = sh.outstanding.borrow_mut();
        if let Some(n) = map.get_mut(&serial) {
            *n -= 1;
            if *n == 0 {
                map.remove(&serial);
                sh.zeroed.borrow_mut().push(serial);
            }
        }
        Ok(())
    })?;
    // SAFETY: pushes `tables` and makes the closure inside exec_raw's
    // protected call, leaving it as the only result.
    let table_fn: Function = unsafe {
        lua.exec_raw(tables, |l| {
            mlua::ffi::lua_pushcclosure(l, session_table, 1);
        })?
    };
    m.raw_set("table", table_fn)?;
    method(
        lua,
        &m,
        shared,
        "register_parser",
        |lua, sh, serial, f: Value| {
            let f = Callback::from_value(f, "register_parser")?.resolve(lua)?;
            sh.with_session(serial, |s| {
                state(s)?.parsers.push(Some(Callback::Func(f)));
                Ok(())
            })
        },
    )?;
    let sh = Rc::clone(shared);
    let property = lua.create_function(move |lua, (h, key): (LightUserData, Value)| {
        let serial = session_serial(h)?;
        let Value::String(key) = key else {
            return Ok(Value::Nil);
        };
        let meta = sh.with_session(serial, |s| Ok(s.meta.clone()))?;
        property(lua, &meta, &key.as_bytes())
    })?;
    let sh = Rc::clone(shared);
    let tostring = lua.create_function(move |_, h: LightUserData| {
        let serial = session_serial(h)?;
        sh.with_session(serial, |s| Ok(describe_session(s.meta)))
    })?;
    Ok((m, property, tostring))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lua::handles::{self, session_handle};
    use protocols::SessionFields;
    use protocols::Transport;

    fn meta(port: u16) -> SessionMeta {
        SessionMeta {
            transport: Transport::Tcp,
            src_ip: Some("10.0.0.1".parse().unwrap()),
            dst_ip: Some("10.0.0.2".parse().unwrap()),
            src_port: port,
            dst_port: 80,
            ip_protocol: 6,
            first_ts_us: 0,
        }
    }

    /// A session handle works (methods, `table()`, properties) only while
    /// its session is bound; kept past that, or used during another
    /// session's callback, it raises errors instead of reaching the wrong
    /// session.
    #[test]
    fn session_handles_reach_only_their_bound_session() {
        let lua = Lua::new();
        let registry = Arc::new(FieldRegistry::builtin());
        let (tx, _rx) = crossbeam_channel::unbounded();
        let shared = Rc::new(Shared::new(Arc::clone(&registry), tx, false));
        let tables = lua.create_table().unwrap();
        let (session_methods, session_property, session_tostring) =
            session_kinds(&lua, &shared, &tables).unwrap();
        let none = lua.create_function(|_, ()| Ok(())).unwrap();
        handles::install(
            &lua,
            handles::Kinds {
                data_methods: lua.create_table().unwrap(),
                data_tostring: none.clone(),
                data_len: none,
                session_methods,
                session_property,
                session_tostring,
            },
        )
        .unwrap();
        let f: Function = lua
            .load(
                r#"
                return function(s, other)
                  local t = s:table()
                  t.n = (t.n or 0) + 1
                  s:add_tag("n" .. t.n)
                  local ok1 = pcall(other.table, other)
                  local ok2 = pcall(other.add_tag, other, "wrong")
                  kept = s
                  return t.n, s.srcPort, s == s, ok1, ok2
                end
                "#,
            )
            .eval()
            .unwrap();
        let (m1, m2) = (meta(1111), meta(2222));
        let (mut f1, mut f2) = (SessionFields::new(), SessionFields::new());
        let mut st1: Option<Box<dyn std::any::Any>> =
            Some(Box::new(LuaSession::new(1, Rc::clone(&shared))));
        let mut st2: Option<Box<dyn std::any::Any>> =
            Some(Box::new(LuaSession::new(2, Rc::clone(&shared))));
        for round in 1..=2 {
            let mut s1 = ScriptSession {
                fields: &mut f1,
                registry: &registry,
                meta: &m1,
                state: &mut st1,
            };
            let r: (i64, i64, bool, bool, bool) = shared.bind(1, &mut s1, || {
                f.call((session_handle(1), session_handle(2))).unwrap()
            });
            // The table persists across the session's callbacks; the other
            // session's handle is refused, for table() and for methods.
            assert_eq!(r, (round, 1111, true, false, false));
        }
        let mut s2 = ScriptSession {
            fields: &mut f2,
            registry: &registry,
            meta: &m2,
            state: &mut st2,
        };
        let r: (i64, i64, bool, bool, bool) = shared.bind(2, &mut s2, || {
            f.call((session_handle(2), session_handle(1))).unwrap()
        });
        assert_eq!(
            r,
            (1, 2222, true, false, false),
            "a fresh table per session"
        );
        assert!(f1.tags().contains(&"n2".to_string()));
        assert!(!f2.tags().contains(&"wrong".to_string()));
        // Unbound: the kept handle raises errors.
        let err = lua.load("return kept:table()").exec().unwrap_err();
        assert!(err.to_string().contains("outside the callbacks"), "{err}");
        assert!(lua.load("return kept.srcPort").exec().is_err());
        drop(st1);
        assert_eq!(shared.gone.borrow().as_slice(), &[1]);
    }
}
