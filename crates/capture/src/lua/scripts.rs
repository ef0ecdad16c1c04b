//! One packet thread's interpreter and the driver that runs its callbacks:
//! it implements the analyzer's [`ScriptHooks`], isolates every callback
//! (errors counted per `script:line`, instruction budget re-armed, memory
//! cap), and delivers HTTP responses.

use std::any::Any;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use crossbeam_channel::{Receiver, unbounded};
use lua::mlua::{self, Function, IntoLua, IntoLuaMulti, LightUserData, Table, Value, ffi};
use lua::{ErrorLog, ErrorSite, LuaHost};
use protocols::fields::FieldRegistry;
use protocols::{ClassifyContext, Direction, HttpEvent, ScriptHooks, ScriptSession};

use super::api::{self, BODY_KINDS, Registrations, http_index};
use super::data;
use super::handles;
use super::http::{self, HttpResponse};
use super::report::{LuaErrorSite, LuaReport};
use super::session::{self as session_api, Callback, LuaSession, Shared};
use super::setup::{LuaSetup, LuaSetupError};

/// Most distinct error sites whose first message is kept.
const MAX_SITES: usize = 256;

/// The serial of a session's script state, if it has one.
pub(crate) fn serial_of(state: &Option<Box<dyn Any>>) -> Option<u64> {
    state
        .as_ref()
        .and_then(|s| s.downcast_ref::<LuaSession>())
        .map(|s| s.serial)
}

/// Whether the value at the top of `l`'s stack is -1 (a callback asking to
/// stop).
///
/// # Safety
/// `l` is a valid state with at least one value on its stack.
unsafe fn is_stop_top(l: *mut ffi::lua_State) -> bool {
    // SAFETY: reading the top value, stack unchanged.
    unsafe {
        // An integer -1 converts to -1.0 exactly.
        ffi::lua_type(l, -1) == ffi::LUA_TNUMBER && ffi::lua_tonumber(l, -1) == -1.0
    }
}

/// What a callback receives after its session object.
#[derive(Clone, Copy)]
enum Args<'a> {
    /// `final` (save hooks).
    Final(bool),
    /// Stream bytes as a Lua string, and the direction (classifiers and
    /// parsers).
    Bytes(&'a mlua::LuaString, i64),
    /// A data handle or nil, and the direction (`http_on`).
    Event(Option<LightUserData>, i64),
    /// A data handle (body feeds).
    Body(LightUserData),
}

fn root_cause(e: &mlua::Error) -> &mlua::Error {
    let mut e = e;
    loop {
        match e {
            mlua::Error::CallbackError { cause, .. } => e = cause,
            mlua::Error::WithContext { cause, .. } => e = cause,
            _ => return e,
        }
    }
}

/// The error's message on one line, prefixed by the script position that
/// raised it when Lua knows it.
fn describe(e: &mlua::Error) -> String {
    let root = root_cause(e);
    let msg = match root {
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => m.clone(),
        other => other.to_string(),
    };
    let first = msg.lines().next().unwrap_or("").trim().to_string();
    if ErrorSite::from_message(&first).0 != "?" {
        return first;
    }
    // An API function failed: the traceback names the script line that
    // called it.
    if let mlua::Error::CallbackError { traceback, .. } = e {
        for line in traceback.lines().map(str::trim) {
            if line.starts_with("[C]") {
                continue;
            }
            let site = ErrorSite::from_message(line).0;
            if site != "?" {
                return format!("{site}: {first}");
            }
        }
    }
    first
}

/// Counters of one interpreter.
#[derive(Default)]
struct Counters {
    callbacks: u64,
    memory: u64,
    errors: ErrorLog,
    first: HashMap<String, String>,
    http_responses: u64,
    http_failures: u64,
    pub delayed_saves: u64,
    pub outstanding_timeouts: u64,
}

impl Counters {
    fn record(&mut self, e: &mlua::Error, f: Option<&Function>) {
        if matches!(root_cause(e), mlua::Error::MemoryError(_)) {
            self.memory += 1;
        }
        let mut msg = describe(e);
        if ErrorSite::from_message(&msg).0 == "?"
            && let Some(f) = f
        {
            // No position (memory errors, budget interrupts): name the
            // callback's definition instead.
            let info = f.info();
            if let (Some(src), Some(line)) = (info.short_src, info.line_defined) {
                msg = format!("{src}:{line}: {msg} (in callback defined here)");
            }
        }
        if self.errors.record(&msg) && self.first.len() < MAX_SITES {
            let site = ErrorSite::from_message(&msg).0;
            self.first.insert(site, msg);
        }
    }
}

/// Runs one callback `fn(session, args...)` with the budget re-armed and
/// `session` bound, and says whether it returned -1. Failures are counted
/// and yield `None`.
///
/// This is the per-callback path, so it talks to Lua directly: the
/// function (a kept reference, or the global of that name looked up now, as
/// Arkime does), the session object and the arguments are pushed onto the
/// main state and called with one `lua_pcall`, without mlua's per-call
/// error handler, argument conversion or result values. Only a failure
/// goes back through mlua, to turn the error object into an `mlua::Error`.
#[allow(clippy::too_many_arguments)]
fn invoke(
    host: &LuaHost,
    shared: &Shared,
    counters: &mut Counters,
    serial: u64,
    session: &mut ScriptSession<'_>,
    cb: &Callback,
    obj: LightUserData,
    args: Args<'_>,
) -> Option<bool> {
    host.budget().arm();
    counters.callbacks += 1;
    let lua = host.lua();
    let r = shared.bind(serial, session, || {
        lua.exec_raw_lua(|raw| {
            let l = raw.state();
            // SAFETY: `l` is this interpreter's state, not running (hooks
            // are never called from inside Lua), so its stack is ours
            // between the saved top and the restored one. Nothing pushed
            // outside `lua_pcall` allocates (references, integers,
            // booleans, light userdata, raw reads of existing keys), so
            // nothing here can raise a Lua error outside the protected
            // call.
            unsafe {
                let top = ffi::lua_gettop(l);
                if ffi::lua_checkstack(l, 6) == 0 {
                    return Err(mlua::Error::StackError);
                }
                match cb {
                    Callback::Func(f) => f.push_into_stack(raw)?,
                    Callback::Name(n) => {
                        // The globals table stays below the function until
                        // the final settop.
                        ffi::lua_rawgeti(l, ffi::LUA_REGISTRYINDEX, ffi::LUA_RIDX_GLOBALS);
                        n.push_into_stack(raw)?;
                        ffi::lua_rawget(l, -2);
                        if ffi::lua_type(l, -1) != ffi::LUA_TFUNCTION {
                            ffi::lua_settop(l, top);
                            return Err(mlua::Error::runtime(format!(
                                "callback function '{}' is not defined",
                                n.to_string_lossy()
                            )));
                        }
                    }
                }
                ffi::lua_pushlightuserdata(l, obj.0);
                let nargs = match args {
                    Args::Final(last) => {
                        ffi::lua_pushboolean(l, i32::from(last));
                        2
                    }
                    Args::Bytes(s, d) => {
                        s.push_into_stack(raw)?;
                        ffi::lua_pushinteger(l, d);
                        3
                    }
                    Args::Event(h, d) => {
                        match h {
                            Some(h) => ffi::lua_pushlightuserdata(l, h.0),
                            None => ffi::lua_pushnil(l),
                        }
                        ffi::lua_pushinteger(l, d);
                        3
                    }
                    Args::Body(h) => {
                        ffi::lua_pushlightuserdata(l, h.0);
                        2
                    }
                };
                let rc = ffi::lua_pcall(l, nargs, 1, 0);
                if rc != ffi::LUA_OK {
                    let err = match raw.pop_value() {
                        Value::Error(e) => *e,
                        Value::String(m) if rc == ffi::LUA_ERRMEM => {
                            mlua::Error::MemoryError(m.to_string_lossy())
                        }
                        Value::String(m) => mlua::Error::RuntimeError(m.to_string_lossy()),
                        other => mlua::Error::RuntimeError(format!(
                            "(error object is a {} value)",
                            other.type_name()
                        )),
                    };
                    ffi::lua_settop(l, top);
                    return Err(err);
                }
                let stop = is_stop_top(l);
                ffi::lua_settop(l, top);
                Ok(stop)
            }
        })
    });
    match r {
        Ok(stop) => Some(stop),
        Err(e) => {
            // The failing function, to name where it was defined.
            let f = match cb {
                Callback::Func(f) => Some(f.clone()),
                Callback::Name(_) => cb.resolve(lua).ok(),
            };
            counters.record(&e, f.as_ref());
            None
        }
    }
}

/// A packet thread's scripts.
pub(crate) struct LuaScripts {
    host: LuaHost,
    shared: Rc<Shared>,
    regs: Registrations,
    pending_classify: Vec<u32>,
    responses: Receiver<HttpResponse>,
    counters: Counters,
    /// `session:table()` tables by serial.
    tables: Table,
}

impl LuaScripts {
    /// Builds an interpreter, installs the API and loads the scripts.
    /// `discovery` is the start-up pass that only collects registrations
    /// (HTTP requests are refused there).
    pub fn new(
        setup: &LuaSetup,
        registry: Arc<FieldRegistry>,
        discovery: bool,
    ) -> Result<LuaScripts, LuaSetupError> {
        let host = LuaHost::new(setup.options).map_err(|e| LuaSetupError::Host(e.to_string()))?;
        // Callbacks make short-lived garbage (the string of every stream
        // chunk, strings from data:get()): about half the collector work of
        // the incremental mode for a parser called with every chunk.
        host.use_generational_gc()
            .map_err(|e| LuaSetupError::Host(e.to_string()))?;
        let (tx, rx) = unbounded();
        let shared = Rc::new(Shared::new(registry, tx, discovery));
        let lua = host.lua();
        api::install(lua, &shared).map_err(|e| LuaSetupError::Api(e.to_string()))?;
        data::install(lua).map_err(|e| LuaSetupError::Api(e.to_string()))?;
        let tables = lua
            .create_table()
            .map_err(|e| LuaSetupError::Api(e.to_string()))?;
        Self::install_handles(lua, &shared, &tables)
            .map_err(|e| LuaSetupError::Api(e.to_string()))?;
        http::install(lua, &shared).map_err(|e| LuaSetupError::Api(e.to_string()))?;
        for (name, source) in &setup.sources {
            host.load_source(name, source)
                .map_err(|e| LuaSetupError::Host(e.to_string()))?;
        }
        shared.loading.set(false);
        let regs = std::mem::take(&mut *shared.regs.borrow_mut());
        Ok(LuaScripts {
            host,
            shared,
            regs,
            pending_classify: Vec::new(),
            responses: rx,
            counters: Counters::default(),
            tables,
        })
    }

    /// The metatable of session and data handles.
    fn install_handles(lua: &mlua::Lua, shared: &Rc<Shared>, tables: &Table) -> mlua::Result<()> {
        let (data_methods, data_tostring, data_len) = data::borrowed(lua)?;
        let (session_methods, session_property, session_tostring) =
            session_api::session_kinds(lua, shared, tables)?;
        handles::install(
            lua,
            handles::Kinds {
                data_methods,
                data_tostring,
                data_len,
                session_methods,
                session_property,
                session_tostring,
            },
        )
    }

    /// What the scripts registered.
    pub fn registrations(&self) -> &Registrations {
        &self.regs
    }

    /// Shared API state (engine bookkeeping).
    pub fn shared(&self) -> &Rc<Shared> {
        &self.shared
    }

    /// The channel HTTP responses arrive on.
    pub fn responses(&self) -> &Receiver<HttpResponse> {
        &self.responses
    }

    /// Whether requests are still waiting for a response.
    pub fn requests_pending(&self) -> bool {
        !self.shared.requests.borrow().is_empty()
    }

    /// The session a pending request was made for.
    pub fn request_serial(&self, id: u64) -> Option<u64> {
        self.shared
            .requests
            .borrow()
            .get(&id)
            .and_then(|p| p.serial)
    }

    /// Counts a delayed save / a timed-out one.
    pub fn note_delayed_save(&mut self, timed_out: bool) {
        if timed_out {
            self.counters.outstanding_timeouts += 1;
        } else {
            self.counters.delayed_saves += 1;
        }
    }

    fn record(&mut self, e: &mlua::Error, f: Option<&Function>) {
        self.counters.record(e, f);
    }

    /// Runs one callback with the budget re-armed, with `session` bound
    /// when given; failures are counted and yield `None`. A caller that
    /// passed borrowed [`LuaData`] calls [`data::end_callback`] once its
    /// callbacks for those bytes are done.
    fn call(
        &mut self,
        session: Option<(u64, &mut ScriptSession<'_>)>,
        f: &Function,
        args: impl IntoLuaMulti,
    ) -> Option<Value> {
        self.host.budget().arm();
        self.counters.callbacks += 1;
        let r = match session {
            Some((serial, s)) => self.shared.bind(serial, s, || f.call::<Value>(args)),
            None => f.call::<Value>(args),
        };
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.record(&e, Some(f));
                None
            }
        }
    }

    /// The session's script state, made on first use: (serial, handle).
    fn ensure_state(&mut self, session: &mut ScriptSession<'_>) -> Option<(u64, LightUserData)> {
        self.drop_gone_tables();
        if let Some(st) = session
            .state
            .as_ref()
            .and_then(|s| s.downcast_ref::<LuaSession>())
        {
            return Some((st.serial, handles::session_handle(st.serial)));
        }
        if session.state.is_some() {
            return None;
        }
        let serial = self.shared.new_serial();
        if let Some(flow) = self.shared.current_flow.get() {
            self.shared.live.borrow_mut().insert(serial, flow);
        }
        *session.state = Some(Box::new(LuaSession::new(serial, Rc::clone(&self.shared))));
        Some((serial, handles::session_handle(serial)))
    }

    /// Drops the `session:table()` tables of sessions that are gone.
    fn drop_gone_tables(&self) {
        let mut gone = self.shared.gone.borrow_mut();
        if gone.is_empty() {
            return;
        }
        let tables = &self.tables;
        self.host.lua().exec_raw_lua(|raw| {
            let l = raw.state();
            // SAFETY: plain stack operations on this interpreter's idle
            // state, restored before returning; storing nil never
            // allocates (Lua 5.4 does not insert nil values), so nothing
            // can raise outside a protected call.
            unsafe {
                let top = ffi::lua_gettop(l);
                if ffi::lua_checkstack(l, 2) == 0 || tables.push_into_stack(raw).is_err() {
                    ffi::lua_settop(l, top);
                    return;
                }
                for serial in gone.drain(..) {
                    ffi::lua_pushnil(l);
                    ffi::lua_rawseti(l, -2, serial as ffi::lua_Integer);
                }
                ffi::lua_settop(l, top);
            }
        });
    }

    fn lua_state<'s>(session: &'s mut ScriptSession<'_>) -> Option<&'s mut LuaSession> {
        session
            .state
            .as_mut()
            .and_then(|s| s.downcast_mut::<LuaSession>())
    }

    /// Runs the save-time callbacks of one list.
    fn save_list(&mut self, session: &mut ScriptSession<'_>, pre: bool, last: bool) {
        let n = if pre {
            self.regs.pre_save.len()
        } else {
            self.regs.save.len()
        };
        if n == 0 {
            return;
        }
        let Some((serial, obj)) = self.ensure_state(session) else {
            return;
        };
        let Self {
            host,
            shared,
            regs,
            counters,
            ..
        } = self;
        let list = if pre { &regs.pre_save } else { &regs.save };
        for cb in list {
            invoke(
                host,
                shared,
                counters,
                serial,
                session,
                cb,
                obj,
                Args::Final(last),
            );
        }
    }

    /// Runs a response's callback (binding the requesting session when the
    /// engine found it).
    pub fn run_response(&mut self, resp: HttpResponse, session: Option<&mut ScriptSession<'_>>) {
        let Some(p) = self.shared.requests.borrow_mut().remove(&resp.id) else {
            return;
        };
        self.counters.http_responses += 1;
        if resp.code == 0 {
            self.counters.http_failures += 1;
        }
        let body = match self.host.lua().create_string(&resp.body) {
            Ok(b) => b,
            Err(e) => {
                self.record(&e, Some(&p.callback));
                return;
            }
        };
        let bind = match (p.serial, session) {
            (Some(serial), Some(s)) => Some((serial, s)),
            _ => None,
        };
        self.call(bind, &p.callback, (resp.code, body));
    }

    /// This interpreter's counters.
    pub fn report(&self) -> LuaReport {
        self.drop_gone_tables();
        let c = &self.counters;
        let error_sites = c
            .errors
            .sites()
            .into_iter()
            .map(|(site, count)| LuaErrorSite {
                first_message: c.first.get(&site).cloned().unwrap_or_default(),
                site,
                count,
            })
            .collect();
        LuaReport {
            files: Vec::new(),
            interpreters: 1,
            load_failures: Vec::new(),
            callbacks: c.callbacks,
            errors: c.errors.total(),
            instruction_limit_hits: self.host.budget().exceeded(),
            memory_limit_hits: c.memory,
            error_sites,
            memory_in_use: self.host.used_memory() as u64,
            http_responses: c.http_responses,
            http_failures: c.http_failures,
            http_rejected: self.shared.http_rejected.get(),
            delayed_saves: c.delayed_saves,
            outstanding_timeouts: c.outstanding_timeouts,
        }
    }

    fn classify_hook(&mut self, id: u32) {
        if (id as usize) < self.regs.classifiers.len() {
            self.pending_classify.push(id);
        } else {
            // The start-up pass registered more classifiers than this
            // interpreter did (a script registering conditionally).
            self.counters.callbacks += 1;
            self.counters.errors.record(&format!(
                "?: script classifier {id} not registered in this interpreter"
            ));
        }
    }

    fn data_hook(&mut self, session: &mut ScriptSession<'_>, data: &[u8], dir: Direction) {
        if self.pending_classify.is_empty() {
            let parsing = session
                .state
                .as_ref()
                .and_then(|s| s.downcast_ref::<LuaSession>())
                .is_some_and(|s| !s.parsers.is_empty());
            if !parsing {
                return;
            }
        }
        let Some((serial, obj)) = self.ensure_state(session) else {
            self.pending_classify.clear();
            return;
        };
        // Arkime passes stream bytes as a Lua string: one for every
        // callback of this chunk.
        let s = match self.host.lua().create_string(data) {
            Ok(s) => s,
            Err(e) => {
                self.record(&e, None);
                self.pending_classify.clear();
                return;
            }
        };
        let d = dir.index() as i64;
        let Self {
            host,
            shared,
            regs,
            counters,
            pending_classify,
            ..
        } = self;
        for &id in pending_classify.iter() {
            let cb = &regs.classifiers[id as usize].callback;
            invoke(
                host,
                shared,
                counters,
                serial,
                session,
                cb,
                obj,
                Args::Bytes(&s, d),
            );
        }
        pending_classify.clear();
        let n = Self::lua_state(session).map_or(0, |st| st.parsers.len());
        let mut any_stopped = false;
        for i in 0..n {
            let Some(f) = Self::lua_state(session).and_then(|st| st.parsers[i].clone()) else {
                continue;
            };
            let stop = invoke(
                host,
                shared,
                counters,
                serial,
                session,
                &f,
                obj,
                Args::Bytes(&s, d),
            );
            if stop == Some(true)
                && let Some(st) = Self::lua_state(session)
            {
                st.parsers[i] = None;
                any_stopped = true;
            }
        }
        if any_stopped && let Some(st) = Self::lua_state(session) {
            st.parsers.retain(Option::is_some);
        }
    }

    fn http_hook(
        &mut self,
        session: &mut ScriptSession<'_>,
        event: HttpEvent,
        data: Option<&[u8]>,
        dir: Direction,
    ) {
        let at = http_index(event);
        if self.regs.http[at].is_empty() {
            return;
        }
        let Some((serial, obj)) = self.ensure_state(session) else {
            return;
        };
        let d = dir.index() as i64;
        // One handle for every callback of this event.
        let handle = data.map(data::lend);
        let Self {
            host,
            shared,
            regs,
            counters,
            ..
        } = self;
        for (i, cb) in regs.http[at].iter().enumerate() {
            if Self::lua_state(session).is_some_and(|st| st.http_off[at] & (1 << i) != 0) {
                continue;
            }
            let stop = invoke(
                host,
                shared,
                counters,
                serial,
                session,
                cb,
                obj,
                Args::Event(handle, d),
            );
            if stop == Some(true)
                && let Some(st) = Self::lua_state(session)
            {
                st.http_off[at] |= 1 << i;
            }
        }
        data::end_callback();
    }

    fn body_hook(&mut self, session: &mut ScriptSession<'_>, kind: &str, data: &[u8]) {
        let Some(at) = BODY_KINDS.iter().position(|k| *k == kind) else {
            return;
        };
        if self.regs.bodies[at].is_empty() {
            return;
        }
        let Some((serial, obj)) = self.ensure_state(session) else {
            return;
        };
        // One handle for every callback of this piece.
        let handle = data::lend(data);
        let Self {
            host,
            shared,
            regs,
            counters,
            ..
        } = self;
        for (i, cb) in regs.bodies[at].iter().enumerate() {
            let off = Self::lua_state(session)
                .is_some_and(|st| st.body_off.get(at).is_some_and(|m| m & (1 << i) != 0));
            if off {
                continue;
            }
            let stop = invoke(
                host,
                shared,
                counters,
                serial,
                session,
                cb,
                obj,
                Args::Body(handle),
            );
            if stop == Some(true)
                && let Some(st) = Self::lua_state(session)
            {
                if st.body_off.len() <= at {
                    st.body_off.resize(at + 1, 0);
                }
                st.body_off[at] |= 1 << i;
            }
        }
        data::end_callback();
    }

    /// `register_pre_save` callbacks.
    pub fn pre_save(&mut self, session: &mut ScriptSession<'_>, last: bool) {
        self.save_list(session, true, last);
    }

    /// `register_save` callbacks.
    pub fn save(&mut self, session: &mut ScriptSession<'_>, last: bool) {
        self.save_list(session, false, last);
    }
}

/// The analyzer's handle on the thread's scripts (the engine keeps
/// another, for save hooks and HTTP responses).
pub(crate) struct HooksProxy(pub Rc<RefCell<LuaScripts>>);

impl ScriptHooks for HooksProxy {
    fn classify(&mut self, id: u32, _cx: &mut ClassifyContext<'_>, _data: &[u8], _dir: Direction) {
        // The classifier needs the session's script state, which the
        // classify context does not carry: it runs from the data hook that
        // follows with the same bytes.
        if let Ok(mut s) = self.0.try_borrow_mut() {
            s.classify_hook(id);
        }
    }

    fn data(&mut self, session: &mut ScriptSession<'_>, data: &[u8], dir: Direction) {
        if let Ok(mut s) = self.0.try_borrow_mut() {
            s.data_hook(session, data, dir);
        }
    }

    fn wants_http(&self, event: HttpEvent) -> bool {
        self.0
            .try_borrow()
            .is_ok_and(|s| !s.regs.http[http_index(event)].is_empty())
    }

    fn http_event(
        &mut self,
        session: &mut ScriptSession<'_>,
        event: HttpEvent,
        data: Option<&[u8]>,
        dir: Direction,
    ) {
        if let Ok(mut s) = self.0.try_borrow_mut() {
            s.http_hook(session, event, data, dir);
        }
    }

    fn wants_body(&self, kind: &str) -> bool {
        self.0.try_borrow().is_ok_and(|s| {
            BODY_KINDS
                .iter()
                .position(|k| *k == kind)
                .is_some_and(|at| !s.regs.bodies[at].is_empty())
        })
    }

    fn body(&mut self, session: &mut ScriptSession<'_>, kind: &str, data: &[u8]) {
        if let Ok(mut s) = self.0.try_borrow_mut() {
            s.body_hook(session, kind, data);
        }
    }

    fn pre_save(&mut self, session: &mut ScriptSession<'_>, last: bool) {
        if let Ok(mut s) = self.0.try_borrow_mut() {
            s.pre_save(session, last);
        }
    }

    fn save(&mut self, session: &mut ScriptSession<'_>, last: bool) {
        if let Ok(mut s) = self.0.try_borrow_mut() {
            s.save(session, last);
        }
    }
}
