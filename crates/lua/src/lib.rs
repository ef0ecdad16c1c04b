//! The Lua host shared by moonwire's three scripting APIs (Arkime capture,
//! HAProxy proxy, Wireshark dissectors).
//!
//! It builds sandboxed Lua 5.4 interpreters ([`LuaHost`]) with a memory cap,
//! an instruction budget per callback and a configurable set of standard
//! libraries, and it accounts for script errors per `script:line`
//! ([`ErrorLog`]). The API families themselves live in the crates that host
//! them; this crate knows nothing about packets or requests.

mod errors;
mod libs;
mod limits;
mod pattern;
#[cfg(target_os = "linux")]
mod watchdog;

pub use errors::{ErrorLog, ErrorSite};
pub use libs::{LibSet, LibSetError};
pub use limits::{Budget, HostOptions, LuaHost, LuaHostError};
pub use pattern::{Glob, Pcre, PcreError};

/// Re-exported so host crates use exactly the same mlua build.
pub use mlua;
