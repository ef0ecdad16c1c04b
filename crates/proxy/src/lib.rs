//! An HAProxy-compatible TCP/HTTP reverse proxy that runs HAProxy
//! configuration files and HAProxy's Lua API (both the seed-era names and
//! current HAProxy's).
//!
//! [`check`] validates configuration files like `haproxy -c`; [`run`]
//! serves until SIGTERM/SIGINT and reloads on SIGHUP; [`Running`] is the
//! same proxy under program control (tests, embedding).

pub mod config;
mod engine;
pub mod http;
pub mod lua_api;
pub mod map;
mod runtime;
pub mod sample;
pub mod shared;
mod socket;
pub mod txn;

pub use config::{Config, ConfigError};
pub use runtime::{ProxyError, ProxyOptions, Running, check, load_config, run};
pub use shared::{LogSink, Shared};
