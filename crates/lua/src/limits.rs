//! Interpreter construction with a memory cap and an instruction budget.

use std::cell::Cell;
use std::rc::Rc;

use mlua::{HookTriggers, Lua, VmState};
use thiserror::Error;

use crate::libs::LibSet;

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
/// [`Budget::arm`] before each callback; the hook interrupts the callback
/// with a Lua error once the budget is spent, and counts it.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    inner: Rc<BudgetState>,
}

#[derive(Debug, Default)]
struct BudgetState {
    steps_per_call: Cell<u64>,
    remaining: Cell<u64>,
    exceeded: Cell<u64>,
}

impl Budget {
    /// Restores the full budget; call before every callback.
    #[inline]
    pub fn arm(&self) {
        self.inner.remaining.set(self.inner.steps_per_call.get());
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
    lua: Lua,
    budget: Budget,
    options: HostOptions,
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
        }
        Ok(LuaHost {
            lua,
            budget,
            options,
        })
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
