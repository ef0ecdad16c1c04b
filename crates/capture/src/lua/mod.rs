//! Arkime's capture Lua API (`Moloch*` and `Arkime*` names): scripts listed
//! in `luaFiles` (or `--lua`, or `.lua` files in `parsersDir`) register
//! classifiers, parsers, HTTP and body callbacks and save hooks, and add
//! fields to sessions.
//!
//! Every packet thread builds its own interpreter inside the thread and
//! loads the same files; a session's packets all reach the thread (and so
//! the interpreter) that owns it, and no Lua state is ever shared between
//! threads. Each callback is isolated: a failing one is counted per
//! `script:line` and skipped, an instruction budget interrupts runaway
//! loops, and a memory cap stops memory bombs.
//!
//! Start-up goes through [`LuaSetup`]: read the scripts and limits from the
//! settings, load them once to check them and collect their classifiers,
//! then the packet threads do the rest. [`LuaReport`] is what comes back.

mod api;
mod data;
mod handles;
pub(crate) mod http;
pub(crate) mod report;
pub(crate) mod scripts;
mod session;
pub(crate) mod setup;

pub use report::{LuaErrorSite, LuaReport};
pub use setup::{LuaSetup, LuaSetupError, script_paths};
