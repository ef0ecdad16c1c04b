//! The packet thread's side of the Lua scripts (a child module of
//! `engine`, so it reaches the thread's sessions directly): one
//! interpreter per packet thread built inside the thread, HTTP responses
//! delivered between batches on the thread that owns the session, and
//! saves delayed while a session has outstanding script operations.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, select};
use flow::SessionId;
use protocols::ScriptSession;

use super::{Entry, PacketBatch, PacketThread, ThreadConfig};
use crate::lua::http::HttpResponse;
use crate::lua::report::LuaReport;
use crate::lua::scripts::{HooksProxy, LuaScripts, serial_of};
use crate::lua::setup::LuaSetup;

/// A packet thread's interpreter and the sessions waiting on it.
pub(crate) struct LuaThread {
    scripts: Rc<RefCell<LuaScripts>>,
    setup: Arc<LuaSetup>,
    /// Sessions whose final save waits for outstanding operations, by
    /// script serial, with the time they give up waiting.
    waiting: HashMap<u64, (Entry, Instant)>,
}

impl LuaThread {
    /// Builds this thread's interpreter and hands it to the analyzer. A
    /// thread whose interpreter fails to load runs without scripts (the
    /// failure is reported; the start-up pass already loaded the same
    /// files successfully, so this is rare).
    pub(super) fn start(
        cfg: &ThreadConfig,
        analyzer: &mut protocols::Analyzer,
    ) -> Option<LuaThread> {
        let setup = cfg.lua.as_ref()?;
        match LuaScripts::new(setup, Arc::clone(&cfg.registry), false) {
            Ok(s) => {
                let scripts = Rc::new(RefCell::new(s));
                analyzer.set_scripts(Box::new(HooksProxy(Rc::clone(&scripts))));
                Some(LuaThread {
                    scripts,
                    setup: Arc::clone(setup),
                    waiting: HashMap::new(),
                })
            }
            Err(e) => {
                setup.merge(&LuaReport {
                    load_failures: vec![format!("a packet thread runs without scripts: {e}")],
                    ..LuaReport::default()
                });
                None
            }
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.waiting.values().map(|(_, d)| *d).min()
    }
}

impl PacketThread {
    /// The next batch of packets; HTTP responses that arrive meanwhile run
    /// their callbacks, and delayed saves whose wait ran out are done.
    pub(super) fn next_batch(&mut self, rx: &Receiver<PacketBatch>) -> Option<PacketBatch> {
        if self.lua.is_none() {
            return rx.recv().ok();
        }
        loop {
            self.lua_poll();
            let lua = self.lua.as_ref()?;
            let responses = lua.scripts.borrow().responses().clone();
            let wait = lua
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            select! {
                recv(rx) -> b => return b.ok(),
                recv(responses) -> r => {
                    if let Ok(r) = r {
                        self.lua_deliver(r);
                    }
                }
                default(wait) => {}
            }
        }
    }

    /// Tells the scripts which session the next callbacks are about.
    pub(super) fn lua_set_current(&self, id: SessionId) {
        if let Some(l) = &self.lua {
            l.scripts.borrow().shared().current_flow.set(Some(id));
        }
    }

    /// Runs responses that arrived and saves sessions that are done
    /// waiting.
    fn lua_poll(&mut self) {
        loop {
            let Some(l) = &self.lua else {
                return;
            };
            let r = l.scripts.borrow().responses().try_recv();
            match r {
                Ok(r) => self.lua_deliver(r),
                Err(_) => break,
            }
        }
        self.lua_save_ready();
    }

    fn lua_deliver(&mut self, r: HttpResponse) {
        let Some(lua) = self.lua.as_mut() else {
            return;
        };
        let mut scripts = lua.scripts.borrow_mut();
        let serial = scripts.request_serial(r.id);
        let flow = serial.and_then(|s| scripts.shared().live.borrow().get(&s).copied());
        let entry: Option<&mut Entry> = match serial {
            Some(s) if lua.waiting.contains_key(&s) => lua.waiting.get_mut(&s).map(|(e, _)| e),
            Some(s) => flow
                .and_then(|f| self.table.get_mut(f))
                .filter(|e| serial_of(&e.app.script_state) == Some(s)),
            None => None,
        };
        match entry {
            Some(e) => {
                let mut session = ScriptSession {
                    fields: &mut e.app.fields,
                    registry: &self.cfg.registry,
                    meta: &e.meta,
                    state: &mut e.app.script_state,
                };
                scripts.run_response(r, Some(&mut session));
            }
            None => scripts.run_response(r, None),
        }
        drop(scripts);
        self.lua_save_ready();
    }

    /// Saves waiting sessions whose outstanding count reached zero, and
    /// those whose wait ran out.
    fn lua_save_ready(&mut self) {
        let Some(lua) = self.lua.as_mut() else {
            return;
        };
        let zeroed: Vec<u64> =
            std::mem::take(&mut *lua.scripts.borrow().shared().zeroed.borrow_mut());
        let mut ready = Vec::new();
        for serial in zeroed {
            if let Some((e, _)) = lua.waiting.remove(&serial) {
                ready.push(e);
            }
        }
        if !lua.waiting.is_empty() {
            let now = Instant::now();
            let late: Vec<u64> = lua
                .waiting
                .iter()
                .filter(|(_, (_, d))| *d <= now)
                .map(|(s, _)| *s)
                .collect();
            for s in late {
                if let Some((e, _)) = lua.waiting.remove(&s) {
                    lua.scripts.borrow_mut().note_delayed_save(true);
                    ready.push(e);
                }
            }
        }
        for e in ready {
            self.save_entry(e);
        }
    }

    /// Runs the pre-save hooks of a session being saved for good; returns
    /// it unless a script delayed the save (`incr_outstanding`).
    pub(super) fn lua_pre_save(&mut self, mut e: Entry) -> Option<Entry> {
        let Some(lua) = self.lua.as_mut() else {
            return Some(e);
        };
        let mut scripts = lua.scripts.borrow_mut();
        {
            let mut session = ScriptSession {
                fields: &mut e.app.fields,
                registry: &self.cfg.registry,
                meta: &e.meta,
                state: &mut e.app.script_state,
            };
            scripts.pre_save(&mut session, true);
        }
        let Some(serial) = serial_of(&e.app.script_state) else {
            return Some(e);
        };
        if scripts.shared().outstanding(serial) == 0 {
            return Some(e);
        }
        scripts.note_delayed_save(false);
        // Counts that reached zero before now are not this wait's business.
        scripts
            .shared()
            .zeroed
            .borrow_mut()
            .retain(|s| *s != serial);
        drop(scripts);
        let deadline = Instant::now() + lua.setup.outstanding_timeout;
        lua.waiting.insert(serial, (e, deadline));
        None
    }

    /// Runs the save hooks of a session being saved for good.
    pub(super) fn lua_save_hooks(&mut self, e: &mut Entry) {
        match &self.lua {
            Some(lua) => {
                let mut session = ScriptSession {
                    fields: &mut e.app.fields,
                    registry: &self.cfg.registry,
                    meta: &e.meta,
                    state: &mut e.app.script_state,
                };
                lua.scripts.borrow_mut().save(&mut session, true);
            }
            None => self.analyzer.save_hooks(&mut e.app, &e.meta, true),
        }
    }

    /// After the last packet: waits (bounded by `luaOutstandingTimeout`)
    /// for delayed saves and for responses still on their way, then adds
    /// this thread's counters to the report.
    pub(super) fn lua_finish(&mut self) {
        let Some(lua) = self.lua.as_ref() else {
            return;
        };
        let give_up = Instant::now() + lua.setup.outstanding_timeout;
        loop {
            self.lua_poll();
            let Some(lua) = self.lua.as_ref() else {
                return;
            };
            let pending = lua.scripts.borrow().requests_pending();
            if lua.waiting.is_empty() && !pending {
                break;
            }
            let now = Instant::now();
            if now >= give_up {
                // Whatever still waits is saved as it is.
                if let Some(lua) = self.lua.as_mut() {
                    for (_, d) in lua.waiting.values_mut() {
                        *d = now;
                    }
                }
                self.lua_save_ready();
                break;
            }
            let until = lua.next_deadline().unwrap_or(give_up).min(give_up);
            let responses = lua.scripts.borrow().responses().clone();
            if let Ok(r) = responses.recv_timeout(until.saturating_duration_since(now)) {
                self.lua_deliver(r);
            }
        }
        if let Some(lua) = self.lua.as_ref() {
            let report = lua.scripts.borrow().report();
            lua.setup.merge(&report);
        }
    }
}
