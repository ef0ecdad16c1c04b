//! Interpreter construction with a memory cap and an instruction budget.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{HookTriggers, Lua, VmState};
use thiserror::Error;

use crate::libs::LibSet;
#[cfg(target_os = "linux")]
use crate::watchdog;

/// How often (in VM instructions) the budget hook runs. Small enough to stop
/// a runaway loop promptly, large enough to cost nothing measurable.
const HOOK_STEP: u32 = 1000;

/// Failure to build an interpreter or load a script into it.
#[derive(Debug, Error)]
pub enum LuaHostError {
    /// The interpreter could not be created or configured.
    #[error("creating Lua interpreter: {0}")]
    Create(#[source] mlua::Error),
    /// A script failed to read, compile or run its top level.
    #[error("loading Lua script {path}: {source}")]
    Load {
        /// The script's path as given.
        path: String,
        /// What went wrong.
        #[source]
        source: mlua::Error,
    },
    /// A script file could not be read.
    #[error("reading Lua script {path}: {source}")]
    Read {
        /// The script's path as given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Limits and libraries for one interpreter.
#[derive(Debug, Clone, Copy)]
pub struct HostOptions {
    /// Memory cap in bytes for the whole interpreter; 0 means no cap.
    pub max_memory: usize,
    /// Instructions one callback may run before it is interrupted; 0 means
    /// no budget.
    pub max_instructions: u64,
    /// Libraries the scripts may open.
    pub libs: LibSet,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            max_memory: 256 << 20,
            max_instructions: 10_000_000,
            libs: LibSet::default(),
        }
    }
}

/// The per-callback instruction budget of one interpreter.
///
/// [`Budget::arm`] before each callback. The budget counts VM instructions
/// with Lua's count hook, in steps of 1000, and interrupts the
/// callback with a Lua error once `max_instructions` are spent, counting it
/// ([`Budget::exceeded`]).
///
/// Lua 5.4 slows every instruction down while any hook is set, so on Linux
/// the main state runs without a hook: a watchdog thread installs the count
/// hook only once a callback has run for 5 to 10 ms of wall-clock time, and
/// the next `arm` removes it again. Instructions are counted from that
/// moment, so a callback is never interrupted before it has run
/// `max_instructions` instructions, and a runaway one is interrupted after
/// at most 10 ms plus `max_instructions` instructions. Coroutines (made by
/// `coroutine.create`/`wrap` or by the host) carry the count hook from their
/// first instruction.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    inner: Rc<BudgetState>,
}

#[derive(Default)]
struct BudgetState {
    steps_per_call: Cell<u64>,
    remaining: Cell<u64>,
    exceeded: Cell<u64>,
    /// The watchdog's registration of the interpreter, while it lives.
    #[cfg(target_os = "linux")]
    watch: Cell<Option<&'static watchdog::Registration>>,
}

impl std::fmt::Debug for BudgetState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetState")
            .field("steps_per_call", &self.steps_per_call)
            .field("remaining", &self.remaining)
            .field("exceeded", &self.exceeded)
            .finish_non_exhaustive()
    }
}

impl Budget {
    /// Restores the full budget; call before every callback.
    #[inline]
    pub fn arm(&self) {
        self.inner.remaining.set(self.inner.steps_per_call.get());
        #[cfg(target_os = "linux")]
        if let Some(w) = self.inner.watch.get() {
            w.callback_starts();
        }
    }

    /// How many callbacks were interrupted for running too long.
    pub fn exceeded(&self) -> u64 {
        self.inner.exceeded.get()
    }
}

/// A sandboxed Lua 5.4 interpreter with its limits.
///
/// Not `Send`: each thread builds its own (scripts never share state across
/// threads).
pub struct LuaHost {
    /// The watchdog's registration (boxed: the budget points at it), freed
    /// before the interpreter.
    #[cfg(target_os = "linux")]
    watch: Option<Box<watchdog::Registration>>,
    lua: Lua,
    budget: Budget,
    options: HostOptions,
}

impl Drop for LuaHost {
    fn drop(&mut self) {
        #[cfg(target_os = "linux")]
        {
            self.budget.inner.watch.set(None);
            self.watch = None;
        }
    }
}

impl LuaHost {
    /// Builds an interpreter with the given libraries and limits.
    pub fn new(options: HostOptions) -> Result<LuaHost, LuaHostError> {
        let libs = options.libs.libs;
        // The debug library is "unsafe" to mlua; opening it is an explicit
        // choice of the operator in the library list.
        let lua = if libs.contains(mlua::StdLib::DEBUG) {
            unsafe { Lua::unsafe_new_with(libs, mlua::LuaOptions::new()) }
        } else {
            Lua::new_with(libs, mlua::LuaOptions::new()).map_err(LuaHostError::Create)?
        };
        if !options.libs.allow_process_control {
            remove_process_control(&lua).map_err(LuaHostError::Create)?;
        }
        if options.max_memory > 0 {
            lua.set_memory_limit(options.max_memory)
                .map_err(LuaHostError::Create)?;
        }
        let budget = Budget::default();
        #[cfg(target_os = "linux")]
        let mut watch = None;
        if options.max_instructions > 0 {
            let steps = options.max_instructions.div_ceil(HOOK_STEP as u64).max(1);
            budget.inner.steps_per_call.set(steps);
            budget.inner.remaining.set(steps);
            let state = budget.clone();
            let limit = options.max_instructions;
            lua.set_global_hook(
                HookTriggers::new().every_nth_instruction(HOOK_STEP),
                move |_lua, _debug| {
                    let left = state.inner.remaining.get();
                    if left <= 1 {
                        state.inner.exceeded.set(state.inner.exceeded.get() + 1);
                        // Re-arm so the error handler itself can run.
                        state.inner.remaining.set(state.inner.steps_per_call.get());
                        return Err(mlua::Error::RuntimeError(format!(
                            "instruction budget exceeded ({limit} instructions)"
                        )));
                    }
                    state.inner.remaining.set(left - 1);
                    Ok(VmState::Continue)
                },
            )
            .map_err(LuaHostError::Create)?;
            #[cfg(target_os = "linux")]
            {
                watch = watchdog::watch(&lua, HOOK_STEP as i32).map_err(LuaHostError::Create)?;
                if let Some(w) = &watch {
                    // SAFETY: the box's contents stay put until `drop`,
                    // which clears this reference first.
                    let r: &'static watchdog::Registration =
                        unsafe { &*(w.as_ref() as *const watchdog::Registration) };
                    budget.inner.watch.set(Some(r));
                }
            }
        }
        Ok(LuaHost {
            #[cfg(target_os = "linux")]
            watch,
            lua,
            budget,
            options,
        })
    }

    /// Switches the interpreter to Lua's generational collector, for hosts
    /// whose callbacks make mostly short-lived garbage (strings of packet
    /// data, small tables) while the scripts' own state lives long.
    pub fn use_generational_gc(&self) -> Result<(), LuaHostError> {
        // (mlua 0.12 does not export its GcMode, hence the raw call.)
        // SAFETY: switching the collector's mode touches no stack value.
        unsafe {
            self.lua
                .exec_raw::<()>((), |l| {
                    mlua::ffi::lua_gc(l, mlua::ffi::LUA_GCGEN, 0, 0);
                })
                .map_err(LuaHostError::Create)
        }
    }

    /// The interpreter.
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The per-callback instruction budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// The options this interpreter was built with.
    pub fn options(&self) -> &HostOptions {
        &self.options
    }

    /// Reads and runs a script file's top level (with the budget armed).
    pub fn load_file(&self, path: &str) -> Result<(), LuaHostError> {
        let source = std::fs::read(path).map_err(|source| LuaHostError::Read {
            path: path.to_string(),
            source,
        })?;
        self.load_source(path, &source)
    }

    /// Runs a chunk of source under the given chunk name (used in error
    /// positions, so pass the file name).
    pub fn load_source(&self, name: &str, source: &[u8]) -> Result<(), LuaHostError> {
        self.budget.arm();
        self.lua
            .load(source)
            .set_name(format!("@{name}"))
            .exec()
            .map_err(|source| LuaHostError::Load {
                path: name.to_string(),
                source,
            })
    }

    /// Whether the main state has a hook now (tests).
    #[cfg(all(test, target_os = "linux"))]
    fn main_hooked(&self) -> bool {
        let mut hooked = false;
        // SAFETY: reads the main state's hook, stack unchanged.
        unsafe {
            self.lua
                .exec_raw::<()>((), |l| {
                    mlua::ffi::lua_rawgeti(
                        l,
                        mlua::ffi::LUA_REGISTRYINDEX,
                        mlua::ffi::LUA_RIDX_MAINTHREAD,
                    );
                    let main = mlua::ffi::lua_tothread(l, -1);
                    hooked = mlua::ffi::lua_gethook(main).is_some();
                    mlua::ffi::lua_pop(l, 1);
                })
                .unwrap();
        }
        hooked
    }

    /// Bytes of memory the interpreter uses now.
    pub fn used_memory(&self) -> usize {
        self.lua.used_memory()
    }
}

fn remove_process_control(lua: &Lua) -> mlua::Result<()> {
    let globals = lua.globals();
    if let Ok(os) = globals.get::<mlua::Table>("os") {
        os.set("execute", mlua::Value::Nil)?;
        os.set("exit", mlua::Value::Nil)?;
    }
    if let Ok(io) = globals.get::<mlua::Table>("io") {
        io.set("popen", mlua::Value::Nil)?;
    }
    if let Ok(package) = globals.get::<mlua::Table>("package") {
        package.set("loadlib", mlua::Value::Nil)?;
        package.set("cpath", "")?;
        if let Ok(searchers) = package.get::<mlua::Table>("searchers") {
            // Keep the preload and Lua-file searchers; drop the C ones.
            let len = searchers.raw_len();
            for i in (3..=len).rev() {
                searchers.raw_remove(i)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runaway_loop_is_interrupted_and_counted() {
        let host = LuaHost::new(HostOptions {
            max_instructions: 100_000,
            ..HostOptions::default()
        })
        .unwrap();
        host.budget().arm();
        let err = host.lua().load("while true do end").exec().unwrap_err();
        assert!(
            err.to_string().contains("instruction budget exceeded"),
            "{err}"
        );
        assert_eq!(host.budget().exceeded(), 1);
        // The interpreter still works afterwards.
        host.budget().arm();
        let v: i64 = host.lua().load("return 1 + 1").eval().unwrap();
        assert_eq!(v, 2);
    }

    #[test]
    fn runaway_loop_inside_a_coroutine_is_interrupted() {
        let host = LuaHost::new(HostOptions {
            max_instructions: 100_000,
            ..HostOptions::default()
        })
        .unwrap();
        host.budget().arm();
        let err = host
            .lua()
            .load("local co = coroutine.wrap(function() while true do end end) co()")
            .exec()
            .unwrap_err();
        assert!(
            err.to_string().contains("instruction budget exceeded"),
            "{err}"
        );
    }

    #[test]
    fn coroutine_made_in_an_earlier_callback_is_interrupted() {
        let host = LuaHost::new(HostOptions {
            max_instructions: 100_000,
            ..HostOptions::default()
        })
        .unwrap();
        host.budget().arm();
        host.lua()
            .load("co = coroutine.create(function() while true do end end)")
            .exec()
            .unwrap();
        host.budget().arm();
        let (ok, msg): (bool, String) = host
            .lua()
            .load("local ok, e = coroutine.resume(co) return ok, tostring(e)")
            .eval()
            .unwrap();
        assert!(!ok);
        assert!(msg.contains("instruction budget exceeded"), "{msg}");
        assert_eq!(host.budget().exceeded(), 1);
    }

    /// The main state of a host (tests).
    #[cfg(target_os = "linux")]
    fn main_state(host: &LuaHost) -> usize {
        let mut main = 0usize;
        // SAFETY: reads the registry's main-thread entry, stack unchanged.
        unsafe {
            host.lua()
                .exec_raw::<()>((), |l| {
                    mlua::ffi::lua_rawgeti(
                        l,
                        mlua::ffi::LUA_REGISTRYINDEX,
                        mlua::ffi::LUA_RIDX_MAINTHREAD,
                    );
                    main = mlua::ffi::lua_tothread(l, -1) as usize;
                    mlua::ffi::lua_pop(l, 1);
                })
                .unwrap();
        }
        main
    }

    /// Sleeps until `hooked()` says yes (at most 10 s, for a very loaded
    /// machine).
    #[cfg(target_os = "linux")]
    fn wait_for_hook(hooked: impl Fn() -> bool) {
        let start = std::time::Instant::now();
        while !hooked() && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(watchdog::TICK);
        }
    }

    /// A host with a `pause()` function that sleeps until the watchdog has
    /// hooked the callback calling it.
    #[cfg(target_os = "linux")]
    fn host_with_pause(max_instructions: u64) -> LuaHost {
        let host = LuaHost::new(HostOptions {
            max_instructions,
            ..HostOptions::default()
        })
        .unwrap();
        let main = main_state(&host);
        let pause = host
            .lua()
            .create_function(move |_, ()| {
                // SAFETY: reading the hook of this thread's own main state.
                wait_for_hook(|| unsafe {
                    mlua::ffi::lua_gethook(main as *mut mlua::ffi::lua_State).is_some()
                });
                Ok(())
            })
            .unwrap();
        host.lua().globals().set("pause", pause).unwrap();
        host
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn short_callbacks_run_without_a_hook() {
        let host = host_with_pause(1_000_000);
        assert!(!host.main_hooked());
        host.budget().arm();
        let v: i64 = host.lua().load("return 1 + 1").eval().unwrap();
        assert_eq!(v, 2);
        assert!(!host.main_hooked());
        // A callback still running after a tick gets the count hook...
        host.budget().arm();
        host.lua().load("pause()").exec().unwrap();
        assert!(host.main_hooked());
        // ...and the next callback starts without it again.
        host.budget().arm();
        assert!(!host.main_hooked());
        assert_eq!(host.budget().exceeded(), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn long_callback_is_counted_from_when_the_watchdog_hooks_it() {
        let host = host_with_pause(1_000_000);
        // Under the budget once hooked: runs to the end.
        host.budget().arm();
        let n: i64 = host
            .lua()
            .load("pause() local n = 0 for i = 1, 200000 do n = n + 1 end return n")
            .eval()
            .unwrap();
        assert_eq!(n, 200_000);
        assert_eq!(host.budget().exceeded(), 0);
        // Over it: interrupted, counted.
        host.budget().arm();
        let err = host
            .lua()
            .load("pause() local n = 0 for i = 1, 10000000 do n = n + 1 end return n")
            .exec()
            .unwrap_err();
        assert!(
            err.to_string().contains("instruction budget exceeded"),
            "{err}"
        );
        assert_eq!(host.budget().exceeded(), 1);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn idle_interpreter_is_unhooked_by_its_next_callback() {
        let host = host_with_pause(1_000_000);
        host.budget().arm();
        wait_for_hook(|| host.main_hooked());
        assert!(host.main_hooked(), "an idle interpreter looks stuck");
        host.budget().arm();
        assert!(!host.main_hooked());
    }

    #[test]
    fn hooked_coroutine_functions_keep_their_behaviour() {
        let host = LuaHost::new(HostOptions::default()).unwrap();
        host.budget().arm();
        let (a, b, c, err): (i64, i64, String, String) = host
            .lua()
            .load(
                r#"
                local g = coroutine.wrap(function(x)
                  local y = coroutine.yield(x + 1)
                  return y * 2
                end)
                local co = coroutine.create(function(x) return coroutine.yield(x) + 1 end)
                local _, first = coroutine.resume(co, 10)
                local _, second = coroutine.resume(co, first)
                local ok, e = pcall(coroutine.wrap(function() error("boom") end))
                return g(1), g(5), coroutine.status(co) .. second, tostring(e)
                "#,
            )
            .eval()
            .unwrap();
        assert_eq!((a, b), (2, 10));
        assert_eq!(c, "dead11");
        assert!(err.contains("boom") && err.contains(":"), "{err}");
    }

    #[test]
    fn memory_bomb_is_stopped() {
        let host = LuaHost::new(HostOptions {
            max_memory: 4 << 20,
            max_instructions: 0,
            ..HostOptions::default()
        })
        .unwrap();
        let err = host
            .lua()
            .load("local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 100) .. i end")
            .exec()
            .unwrap_err();
        assert!(matches!(err, mlua::Error::MemoryError(_)), "{err}");
        let v: i64 = host.lua().load("return 40 + 2").eval().unwrap();
        assert_eq!(v, 42);
    }

    #[test]
    fn process_control_removed_by_default() {
        let host = LuaHost::new(HostOptions::default()).unwrap();
        let v: bool = host
            .lua()
            .load("return os.execute == nil and io.popen == nil and os.exit == nil and os.time ~= nil")
            .eval()
            .unwrap();
        assert!(v);
    }

    #[test]
    fn library_list_is_honoured() {
        let host = LuaHost::new(HostOptions {
            libs: LibSet::parse("string,table").unwrap(),
            ..HostOptions::default()
        })
        .unwrap();
        let v: bool = host
            .lua()
            .load("return io == nil and os == nil and string ~= nil")
            .eval()
            .unwrap();
        assert!(v);
        assert!(LibSet::parse("nonsense").is_err());
    }

    #[test]
    fn load_error_names_file_and_line() {
        let host = LuaHost::new(HostOptions::default()).unwrap();
        let err = host
            .load_source("t.lua", b"local x = 1\nerror('bad')\n")
            .unwrap_err();
        assert!(err.to_string().contains("t.lua:2"), "{err}");
    }
}
